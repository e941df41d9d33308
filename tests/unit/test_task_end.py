"""Finishing a deferred wait in the triggerer (``task_end``): which outcomes end the task there, with which
XComs, and which resume on a worker. The triggers run in an event loop against the simulator; the
real-triggerer evidence (one worker start per wait, the XComs downstream tasks pull) is in
``test_e2e.py``."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

import pytest
from airflow.triggers.base import TaskSkippedEvent, TaskSuccessEvent, TriggerEvent

from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallHook
from airflow_provider_aiontheball.sensors.analysis import AIOnTheBallAnalysisSensor
from airflow_provider_aiontheball.sensors.video import AIOnTheBallVideoSensor
from airflow_provider_aiontheball.task_end import _AIRFLOW_3, finish_spec
from airflow_provider_aiontheball.triggers.analysis import AIOnTheBallAnalysisTrigger
from airflow_provider_aiontheball.triggers.video import AIOnTheBallVideoTrigger
from tests.helpers import task_context

FAST = {"poll_interval": 0.2, "min_poll_interval": 0.02}
VIDEO_URL = "https://example.com/match.mp4"
ENDS = {"push_return_value": True, "skip_on_timeout": False}
SKIPS = {"push_return_value": True, "skip_on_timeout": True}


def create_video(url: str = VIDEO_URL) -> int:
    with AIOnTheBallHook() as hook:
        return int(hook.create_video(url)["id"])


def create_analysis(video_id: int) -> int:
    with AIOnTheBallHook() as hook:
        return int(hook.create_analysis(video_id)["id"])


async def only_event(trigger: Any, timeout: float = 15) -> TriggerEvent:
    async def consume() -> list[TriggerEvent]:
        return [event async for event in trigger.run()]

    events = await asyncio.wait_for(consume(), timeout)
    assert len(events) == 1, events
    return events[0]


# -- success --------------------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.skipif(_AIRFLOW_3, reason="Airflow 2: the event carries the XComs (Airflow 3: test_e2e.py)")
@pytest.mark.parametrize("push", [pytest.param(True, id="do_xcom_push"), pytest.param(False, id="no-xcom-push")])
async def test_video_success_ends_the_task_with_the_xcoms_execute_complete_pushes(aiontheball_conn, push):
    video_id = await asyncio.to_thread(create_video)
    spec = {"push_return_value": push, "skip_on_timeout": False}
    event = await only_event(AIOnTheBallVideoTrigger(video_id, finish_in_triggerer=spec, **FAST))
    assert isinstance(event, TaskSuccessEvent)
    video = event.payload["video"]
    expected = {"mp4_source": video["mp4_source"], **({"return_value": video} if push else {})}
    assert event.xcoms == expected
    assert video["id"] == video_id
    assert video["status"] == "available"


@pytest.mark.asyncio
@pytest.mark.skipif(_AIRFLOW_3, reason="Airflow 2: the event carries the XComs (Airflow 3: test_e2e.py)")
async def test_analysis_success_ends_the_task_with_its_return_value(aiontheball_conn):
    video_id = await asyncio.to_thread(create_video)
    analysis_id = await asyncio.to_thread(create_analysis, video_id)
    trigger = AIOnTheBallAnalysisTrigger(analysis_id, video_id=video_id, finish_in_triggerer=ENDS, **FAST)
    event = await only_event(trigger, timeout=30)
    assert isinstance(event, TaskSuccessEvent)
    assert event.xcoms == {"return_value": event.payload["analysis"]}
    assert event.payload["analysis"]["status"] == "done"


@pytest.mark.asyncio
@pytest.mark.skipif(not _AIRFLOW_3, reason="Airflow 3 sets the XComs through the Task SDK of a triggerer")
async def test_without_a_task_instance_airflow_3_resumes_on_a_worker(aiontheball_conn):
    # Outside a triggerer (no task instance to set XComs for) the task must not end without its XComs.
    video_id = await asyncio.to_thread(create_video)
    event = await only_event(AIOnTheBallVideoTrigger(video_id, finish_in_triggerer=ENDS, **FAST))
    assert type(event) is TriggerEvent
    assert event.payload["status"] == "success"
    assert event.payload["video"]["id"] == video_id


@pytest.mark.asyncio
async def test_an_end_event_keeps_the_ordinary_payload(aiontheball_conn):
    """dag.test() does not honour end events: it resumes the task with the payload, which must be ours."""
    event = await only_event(AIOnTheBallVideoTrigger(1, end_time=time.time() - 1, finish_in_triggerer=SKIPS, **FAST))
    assert isinstance(event, TaskSkippedEvent)
    assert event.payload["status"] == "timeout"
    assert event.payload["video_id"] == 1
    assert "did not finish before the deadline" in event.payload["message"]


# -- timeouts and failures ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_soft_fail_timeout_is_skipped_in_the_triggerer(aiontheball_conn, all_logs):
    video_id = await asyncio.to_thread(create_video)
    trigger = AIOnTheBallVideoTrigger(video_id, end_time=time.time() - 1, finish_in_triggerer=SKIPS, **FAST)
    event = await only_event(trigger)
    assert isinstance(event, TaskSkippedEvent)
    assert any("skipped here, in the triggerer" in m for m in all_logs.messages), all_logs.messages


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("url", "end_in", "spec", "execution_deadline_in", "status"),
    [
        pytest.param(f"{VIDEO_URL}?sim_outcome=error", None, SKIPS, None, "failed", id="failed-video"),
        pytest.param(VIDEO_URL, -1, ENDS, None, "timeout", id="timeout-without-soft-fail"),
        pytest.param(VIDEO_URL, -1, SKIPS, -1, "timeout", id="soft-fail-but-execution-timeout-ran-out"),
        pytest.param(VIDEO_URL, None, None, None, "success", id="not-asked-to-finish"),
    ],
)
async def test_outcomes_that_resume_on_a_worker(aiontheball_conn, url, end_in, spec, execution_deadline_in, status):
    """A terminal failure must fail without retries and a plain timeout raise the sensor timeout (or, past
    the execution_timeout, AirflowTaskTimeout): execute_complete decides, on a worker, as before."""
    video_id = await asyncio.to_thread(create_video, url)
    now = time.time()
    trigger = AIOnTheBallVideoTrigger(
        video_id,
        end_time=None if end_in is None else now + end_in,
        execution_deadline=None if execution_deadline_in is None else now + execution_deadline_in,
        finish_in_triggerer=spec,
        **FAST,
    )
    event = await only_event(trigger)
    assert type(event) is TriggerEvent
    assert event.payload["status"] == status


# -- when the trigger is asked to finish ------------------------------------------------------------------


def _sensor(**kwargs: Any) -> AIOnTheBallVideoSensor:
    return AIOnTheBallVideoSensor(task_id="wait", video_id=1, deferrable=True, **kwargs)


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        pytest.param(lambda: _sensor(), ENDS, id="sensor"),
        pytest.param(lambda: _sensor(soft_fail=True), SKIPS, id="soft-fail-sensor"),
        pytest.param(lambda: _sensor(do_xcom_push=False), {**ENDS, "push_return_value": False}, id="no-xcom-push"),
        pytest.param(lambda: _sensor(finish_in_triggerer=False), None, id="opted-out"),
        pytest.param(lambda: _sensor(multiple_outputs=True), None, id="multiple-outputs"),
        pytest.param(
            lambda: AIOnTheBallAnalysisSensor(task_id="wait", analysis_id=1, deferrable=True, soft_fail=True),
            SKIPS,
            id="analysis-sensor",
        ),
    ],
)
def test_finish_spec(build, expected):
    assert finish_spec(build(), task_context(), sensor=True) == expected


def test_no_finish_for_a_task_with_outlets():
    # Asset events are emitted by the worker's task runner only: ending in the triggerer would lose them.
    from airflow.providers.common.compat.sdk import DAG

    try:
        from airflow.sdk import Asset
    except ImportError:  # Airflow 2
        from airflow.datasets import Dataset as Asset

    with DAG("outlets", schedule=None, start_date=dt.datetime(2025, 1, 1)):
        sensor = _sensor(outlets=[Asset("aiontheball://aiontheball.nl/videos/1")])
    assert finish_spec(sensor, task_context(), sensor=True) is None


def test_no_finish_when_a_mapped_downstream_expands_over_the_return_value():
    """The worker records the length of a value that a downstream task maps over; an end event does not."""
    from airflow.providers.common.compat.sdk import DAG, task

    with DAG("maps_over", schedule=None, start_date=dt.datetime(2025, 1, 1)):
        sensor = _sensor()
        task(lambda key: key, task_id="per_key").expand(key=sensor.output)
        alone = AIOnTheBallVideoSensor(task_id="alone", video_id=2, deferrable=True)
    assert finish_spec(sensor, task_context(), sensor=True) is None
    assert finish_spec(alone, task_context(), sensor=True) == ENDS
    mapped_ti = task_context()
    mapped_ti["ti"].map_index = 0  # a mapped wait's downstream maps over its instances, not its value
    assert finish_spec(sensor, mapped_ti, sensor=True) == ENDS


def test_an_operator_timeout_is_never_skipped():
    from airflow_provider_aiontheball.operators.video import AIOnTheBallCreateVideoOperator

    operator = AIOnTheBallCreateVideoOperator(task_id="create", video_file_url=VIDEO_URL, wait_for_available=True)
    assert finish_spec(operator, task_context()) == ENDS


# -- the stored contract ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "trigger",
    [
        pytest.param(lambda spec: AIOnTheBallVideoTrigger(7, finish_in_triggerer=spec), id="video"),
        pytest.param(lambda spec: AIOnTheBallAnalysisTrigger(8, finish_in_triggerer=spec), id="analysis"),
    ],
)
def test_the_kwarg_is_stored_only_when_set_and_rebuilds(trigger):
    _, plain = trigger(None).serialize()
    assert "finish_in_triggerer" not in plain, "rows of tasks that resume on a worker stay as before"
    classpath, kwargs = trigger(SKIPS).serialize()
    assert kwargs["finish_in_triggerer"] == SKIPS
    cls = AIOnTheBallVideoTrigger if classpath.endswith("VideoTrigger") else AIOnTheBallAnalysisTrigger
    assert cls(**kwargs).serialize() == (classpath, kwargs)
