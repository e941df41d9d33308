"""``execution_timeout`` while deferred: every deferrable wait ends when the task's execution timeout runs out.

Airflow documents ``execution_timeout`` as counted over a try's whole runtime, deferrals included.
Airflow 2 caps a deferral at it; Airflow 3 (3.0-3.3) does not, so without our own cap a deferred sensor
or create-with-wait would wait until its (much longer) ``timeout``. A wait ended by the execution
timeout fails as Airflow's ``AirflowTaskTimeout`` (retries apply, ``soft_fail`` does not skip it).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import (
    AirflowSensorTimeout,
    AirflowSkipException,
    AirflowTaskTimeout,
    TaskDeferred,
)

from airflow_provider_aiontheball.deadlines import DeferralLimit, execution_deadline
from airflow_provider_aiontheball.exceptions import AIOnTheBallWaitError
from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallHook
from airflow_provider_aiontheball.operators.analysis import AIOnTheBallCreateAnalysisOperator
from airflow_provider_aiontheball.operators.video import AIOnTheBallCreateVideoOperator
from airflow_provider_aiontheball.sensors.analysis import AIOnTheBallAnalysisSensor
from airflow_provider_aiontheball.sensors.video import AIOnTheBallVideoSensor
from airflow_provider_aiontheball.triggers.analysis import AIOnTheBallAnalysisTrigger
from airflow_provider_aiontheball.triggers.video import AIOnTheBallVideoTrigger
from tests.helpers import task_context, task_states_of, write_dag

VIDEO_URL = "https://example.com/match.mp4"
EXECUTION_TIMEOUT = dt.timedelta(seconds=60)


def video_sensor(**kw: Any) -> AIOnTheBallVideoSensor:
    video_id = AIOnTheBallHook().create_video(VIDEO_URL)["id"]
    return AIOnTheBallVideoSensor(task_id="wait_for_video", video_id=video_id, deferrable=True, **kw)


def analysis_sensor(**kw: Any) -> AIOnTheBallAnalysisSensor:
    with AIOnTheBallHook() as hook:
        analysis_id = hook.create_analysis(hook.create_video(VIDEO_URL)["id"])["id"]
    return AIOnTheBallAnalysisSensor(task_id="wait_for_analysis", analysis_id=analysis_id, deferrable=True, **kw)


def create_video(**kw: Any) -> AIOnTheBallCreateVideoOperator:
    return AIOnTheBallCreateVideoOperator(
        task_id="create_video", video_file_url=VIDEO_URL, wait_for_available=True, deferrable=True, **kw
    )


def create_analysis(**kw: Any) -> AIOnTheBallCreateAnalysisOperator:
    video_id = AIOnTheBallHook().create_video(VIDEO_URL)["id"]
    return AIOnTheBallCreateAnalysisOperator(
        task_id="create_analysis", video_id=video_id, wait_for_completion=True, deferrable=True, **kw
    )


#: Every task that defers a wait, and what its wait's own timeout raises.
DEFERRING = [
    pytest.param(video_sensor, AirflowSensorTimeout, id="video-sensor"),
    pytest.param(analysis_sensor, AirflowSensorTimeout, id="analysis-sensor"),
    pytest.param(create_video, AIOnTheBallWaitError, id="create-video-with-wait"),
    pytest.param(create_analysis, AIOnTheBallWaitError, id="create-analysis-with-wait"),
]
SENSORS = DEFERRING[:2]


def started(seconds_ago: float) -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds_ago)


def deferral(task: Any, context: dict[str, Any]) -> TaskDeferred:
    with pytest.raises(TaskDeferred) as excinfo:
        task.execute(context)
    return excinfo.value


@pytest.mark.parametrize(("make_task", "wait_timeout"), DEFERRING)
def test_the_deferral_ends_when_the_execution_timeout_runs_out(aiontheball_conn, make_task, wait_timeout):
    """50 s into a try with a 60 s execution timeout, a 1 h wait defers for the remaining 10 s only."""
    try_started = started(50)
    task = make_task(timeout=3600, execution_timeout=EXECUTION_TIMEOUT)
    before = time.time()
    deferred = deferral(task, task_context(try_started=try_started))
    after = time.time()
    deadline = try_started.timestamp() + EXECUTION_TIMEOUT.total_seconds()
    assert deferred.trigger.end_time == pytest.approx(deadline, abs=0.01), "the trigger's own deadline"
    # What was left of the 10 s when it deferred, however long the poke before took on a loaded machine.
    assert deadline - after <= deferred.timeout.total_seconds() <= deadline - before, "Airflow's deferral timeout"


@pytest.mark.parametrize(("make_task", "wait_timeout"), DEFERRING)
def test_the_wait_timeout_still_applies_when_it_is_earlier(aiontheball_conn, make_task, wait_timeout):
    deferred = deferral(
        make_task(timeout=30, execution_timeout=EXECUTION_TIMEOUT), task_context(try_started=started(1))
    )
    assert deferred.timeout == pytest.approx(dt.timedelta(seconds=30), abs=dt.timedelta(seconds=1))


@pytest.mark.parametrize(
    ("make_task", "extra"),
    [
        pytest.param(video_sensor, {}, id="video-sensor"),
        pytest.param(video_sensor, {"soft_fail": True}, id="video-sensor-soft-fail"),
        pytest.param(analysis_sensor, {}, id="analysis-sensor"),
        pytest.param(analysis_sensor, {"soft_fail": True}, id="analysis-sensor-soft-fail"),
        pytest.param(create_video, {}, id="create-video-with-wait"),
        pytest.param(create_analysis, {}, id="create-analysis-with-wait"),
    ],
)
@pytest.mark.parametrize(
    "resumed_started",
    [
        pytest.param(None, id="start-date-kept"),  # a real deployment keeps the try's start_date
        pytest.param(0, id="start-date-reset"),  # dag.test() on 3.3 starts the resumed task anew
    ],
)
def test_a_timeout_event_after_the_execution_timeout_is_a_task_timeout(
    aiontheball_conn, make_task, extra, resumed_started
):
    task = make_task(timeout=3600, execution_timeout=EXECUTION_TIMEOUT, **extra)
    try_started = started(61)
    deferred = deferral(task, task_context(try_started=try_started))
    assert deferred.timeout == dt.timedelta(0), "already past the execution timeout: the trigger ends at once"
    event = asyncio.run(first_event(deferred.trigger))  # the real trigger, at its deadline
    assert event["status"] == "timeout"
    resumed = task_context(try_started=try_started if resumed_started is None else started(resumed_started))
    with pytest.raises(AirflowTaskTimeout, match=r"execution_timeout \(0:01:00\) exceeded while deferred"):
        task.resume_execution("execute_complete", {"event": event, **(deferred.kwargs or {})}, resumed)


async def first_event(trigger: Any) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("the trigger yielded no event")


@pytest.mark.parametrize(("make_task", "wait_timeout"), DEFERRING)
def test_a_timeout_event_before_the_execution_timeout_is_the_waits_own(aiontheball_conn, make_task, wait_timeout):
    task = make_task(timeout=30, execution_timeout=EXECUTION_TIMEOUT)
    event = {"status": "timeout", "message": "did not finish before the deadline"}
    with pytest.raises(wait_timeout):
        task.resume_execution("execute_complete", {"event": event}, task_context(try_started=started(31)))


def airflow_deferral_timeout() -> str:
    try:
        from airflow.sdk.bases.operator import TriggerFailureReason

        return str(TriggerFailureReason.TRIGGER_TIMEOUT.value)
    except ImportError:  # Airflow 2
        return "Trigger/execution timeout"


@pytest.mark.parametrize(("make_task", "wait_timeout"), SENSORS)
@pytest.mark.parametrize(
    ("seconds_in", "expected"),
    [
        pytest.param(61, AirflowTaskTimeout, id="past-the-execution-timeout-fails"),
        pytest.param(10, AirflowSkipException, id="the-sensor-timeout-soft-fails"),
    ],
)
def test_airflows_own_deferral_timeout_tells_the_two_timeouts_apart(
    aiontheball_conn, make_task: Callable[..., Any], wait_timeout, seconds_in, expected
):
    """Airflow 2 ends a deferral at the execution timeout itself and reports it like a sensor timeout."""
    task = make_task(timeout=5, execution_timeout=EXECUTION_TIMEOUT, soft_fail=True)
    with pytest.raises(expected):
        task.resume_execution(
            "__fail__", {"error": airflow_deferral_timeout()}, task_context(try_started=started(seconds_in))
        )


@pytest.mark.parametrize(
    ("context", "deadline"),
    [
        pytest.param({}, None, id="no-task-instance"),
        pytest.param(task_context(), None, id="no-start-date"),
        pytest.param(task_context(try_started=dt.datetime(2025, 1, 1, 12, 0)), 1735733000.0, id="naive-is-utc"),
        pytest.param(task_context(try_started=dt.datetime(2025, 1, 1, 12, 0, tzinfo=dt.UTC)), 1735733000.0, id="utc"),
    ],
)
def test_execution_deadline_counts_from_the_start_of_the_try(context, deadline):
    task = AIOnTheBallVideoSensor(task_id="w", video_id=1, execution_timeout=dt.timedelta(seconds=200))
    assert execution_deadline(task, context) == deadline


def test_without_a_start_date_the_execution_timeout_counts_from_the_deferral():
    task = AIOnTheBallVideoSensor(task_id="w", video_id=1, execution_timeout=dt.timedelta(seconds=20))
    limit = DeferralLimit.of(task, task_context(), 30, now=1000.0)
    assert limit == DeferralLimit(1020.0, dt.timedelta(seconds=20), 1020.0)


def test_without_an_execution_timeout_the_wait_timeout_alone_decides():
    task = AIOnTheBallVideoSensor(task_id="w", video_id=1)
    limit = DeferralLimit.of(task, task_context(try_started=started(10**6)), 30, now=1000.0)
    assert limit == DeferralLimit(1030.0, dt.timedelta(seconds=30))


EXECUTION_TIMEOUT_DAG = """
import datetime as dt

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_aiontheball.sensors.video import AIOnTheBallVideoSensor

with DAG("execution_timeout_while_deferred", schedule=None, start_date=dt.datetime(2025, 1, 1), catchup=False) as dag:
    AIOnTheBallVideoSensor(
        task_id="wait_for_video", video_id=790, deferrable=True, poke_interval=0.5, timeout=60, soft_fail=True,
        execution_timeout=dt.timedelta(seconds=3), retries=0,
    )
"""


def test_a_deferred_sensor_fails_at_its_execution_timeout_in_a_real_run(airflow_db, aiontheball_conn):
    """A video stuck forever, a 60 s soft-fail sensor, a 3 s execution timeout: the task fails (a sensor
    timeout would have skipped it, after 60 s)."""
    AIOnTheBallHook().create_video(f"{VIDEO_URL}?sim_outcome=stuck")
    dag = write_dag(EXECUTION_TIMEOUT_DAG, "execution_timeout_while_deferred")
    try:
        dag.test()
    except AirflowTaskTimeout:
        pass  # Airflow 2's dag.test() re-raises it (a BaseException) after marking the task failed
    assert task_states_of(dag.dag_id) == {("wait_for_video", -1): "failed"}


@pytest.mark.parametrize(
    "trigger",
    [
        pytest.param(AIOnTheBallVideoTrigger(video_id=1, end_time=100.0, execution_deadline=100.0), id="video"),
        pytest.param(
            AIOnTheBallAnalysisTrigger(analysis_id=2, end_time=100.0, execution_deadline=100.0), id="analysis"
        ),
    ],
)
def test_a_triggerer_restart_keeps_the_execution_deadline(trigger):
    classpath, kwargs = trigger.serialize()
    rebuilt = type(trigger)(**json.loads(json.dumps(kwargs)))  # as read back from the trigger row
    assert rebuilt.serialize() == (classpath, kwargs)
    assert rebuilt.execution_deadline == 100.0
