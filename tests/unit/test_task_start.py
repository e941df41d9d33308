"""Starting a sensor's wait in the triggerer (``start_from_trigger``, ``task_start``): what the sensors put
in ``start_trigger_args`` at parse time, what they refuse, the fallback before Airflow 3.3, and how the
triggers treat ids Airflow rendered in the triggerer. The real-Airflow evidence (the scheduler defers the
task, 0 worker starts, the XComs a downstream task pulls) is in ``test_e2e.py``."""

from __future__ import annotations

import asyncio
import datetime as dt
import warnings
from typing import Any

import pytest

from airflow_provider_aiontheball.exceptions import AIOnTheBallTerminalError
from airflow_provider_aiontheball.sensors.analysis import AIOnTheBallAnalysisSensor
from airflow_provider_aiontheball.sensors.video import AIOnTheBallVideoSensor
from airflow_provider_aiontheball.task_start import supports_start_from_trigger
from airflow_provider_aiontheball.triggers.analysis import AIOnTheBallAnalysisTrigger
from airflow_provider_aiontheball.triggers.video import AIOnTheBallVideoTrigger
from tests.helpers import api_requests, task_context

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG  # type: ignore[attr-defined,no-redef]

STARTS = supports_start_from_trigger()
needs_3_3 = pytest.mark.skipif(not STARTS, reason="start_from_trigger with templated ids needs Airflow 3.3+")
before_3_3 = pytest.mark.skipif(STARTS, reason="the fallback applies before Airflow 3.3 only")

VIDEO_ID = "{{ ti.xcom_pull(task_ids='create_video', key='video_id', map_indexes=-1) }}"
VIDEO_CLASSPATH = "airflow_provider_aiontheball.triggers.video.AIOnTheBallVideoTrigger"
ANALYSIS_CLASSPATH = "airflow_provider_aiontheball.triggers.analysis.AIOnTheBallAnalysisTrigger"


def in_dag(build: Any) -> Any:
    with DAG("start_from_trigger", schedule=None, start_date=dt.datetime(2025, 1, 1)):
        return build()


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        pytest.param("2.11.2", False, id="2.11"),
        pytest.param("3.2.2", False, id="3.2"),
        pytest.param("3.3.0", True, id="3.3.0"),
        pytest.param("3.3.2", True, id="3.3.2"),
        pytest.param("3.10.0", True, id="3.10"),
        pytest.param("4.0.0.dev0", True, id="4.0-dev"),
        pytest.param("main", False, id="unparsable"),
    ],
)
def test_which_airflow_starts_waits_in_the_triggerer(version, expected):
    assert supports_start_from_trigger(version) is expected


@needs_3_3
def test_the_video_sensor_hands_the_scheduler_its_trigger_with_the_template_unrendered():
    sensor = in_dag(
        lambda: AIOnTheBallVideoSensor(
            task_id="wait", video_id=VIDEO_ID, start_from_trigger=True, poll_interval=30, timeout=600
        )
    )
    assert sensor.start_from_trigger is True
    assert sensor.deferrable is True
    args = sensor.start_trigger_args
    assert args.trigger_cls == VIDEO_CLASSPATH
    assert args.next_method == "execute_complete"
    assert args.timeout == dt.timedelta(seconds=600), "the sensor timeout is Airflow's trigger timeout"
    assert args.trigger_kwargs == {
        "video_id": VIDEO_ID,  # rendered by the triggerer, not at parse time
        "aiontheball_conn_id": "aiontheball_default",
        "poll_interval": 30.0,
        "min_poll_interval": 5.0,
        "max_consecutive_errors": 10,
        "error_budget_seconds": 900.0,
        "finish_in_triggerer": {"push_return_value": True, "skip_on_timeout": False},
    }
    # The trigger's kwargs are a stored contract: they must rebuild the trigger class as they are.
    assert AIOnTheBallVideoTrigger(**args.trigger_kwargs).video_id == VIDEO_ID


@needs_3_3
def test_the_analysis_sensor_hands_over_both_ids_and_soft_fail():
    sensor = in_dag(
        lambda: AIOnTheBallAnalysisSensor(
            task_id="wait",
            analysis_id="{{ params.analysis_id }}",
            video_id=790,
            start_from_trigger=True,
            soft_fail=True,
        )
    )
    kwargs = sensor.start_trigger_args.trigger_kwargs
    assert sensor.start_trigger_args.trigger_cls == ANALYSIS_CLASSPATH
    assert (kwargs["analysis_id"], kwargs["video_id"]) == ("{{ params.analysis_id }}", 790)
    assert kwargs["finish_in_triggerer"] == {"push_return_value": True, "skip_on_timeout": True}


@needs_3_3
def test_a_sensor_with_outlets_starts_in_the_triggerer_but_ends_on_a_worker():
    from airflow.sdk import Asset

    sensor = in_dag(
        lambda: AIOnTheBallVideoSensor(
            task_id="wait",
            video_id=VIDEO_ID,
            start_from_trigger=True,
            outlets=[Asset("aiontheball://aiontheball.nl/videos/1")],
        )
    )
    assert sensor.start_from_trigger is True
    assert "finish_in_triggerer" not in sensor.start_trigger_args.trigger_kwargs, "asset events need a worker"


@needs_3_3
def test_the_serialized_dag_keeps_the_start_for_the_scheduler():
    from airflow.serialization.serialized_objects import DagSerialization

    with DAG("start_from_trigger_serialized", schedule=None, start_date=dt.datetime(2025, 1, 1)) as dag:
        AIOnTheBallVideoSensor(task_id="wait", video_id=VIDEO_ID, start_from_trigger=True, timeout=600)
    task = DagSerialization.from_dict(DagSerialization.to_dict(dag)).get_task("wait")
    assert task.start_from_trigger is True
    assert task.start_trigger_args.trigger_cls == VIDEO_CLASSPATH
    assert task.start_trigger_args.timeout == dt.timedelta(seconds=600)


@pytest.mark.parametrize(
    ("video_id", "message"),
    [
        pytest.param(
            "{{ ti.xcom_pull(task_ids='create_video', key='video_id') }}", "add map_indexes=-1", id="xcom-pull-all-maps"
        ),
        pytest.param(object(), "not object", id="not-an-id-or-template"),
        pytest.param(True, "not bool", id="bool"),
    ],
)
def test_ids_the_triggerer_cannot_render_fail_at_parse_time_naming_the_field(video_id, message):
    with pytest.raises(ValueError, match=rf"^video_id: with start_from_trigger=True .*{message}"):
        in_dag(lambda: AIOnTheBallVideoSensor(task_id="wait", video_id=video_id, start_from_trigger=True))


@before_3_3
def test_before_3_3_it_warns_once_at_parse_time_and_defers_from_a_worker():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sensor = in_dag(lambda: AIOnTheBallVideoSensor(task_id="wait", video_id=VIDEO_ID, start_from_trigger=True))
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert len(messages) == 1, messages
    assert "needs Airflow >= 3.3" in messages[0], messages
    assert sensor.start_from_trigger is False
    assert sensor.start_trigger_args is None
    assert sensor.deferrable is True, "it still waits in the triggerer, deferred by a worker"


def test_not_asking_changes_nothing():
    sensor = in_dag(lambda: AIOnTheBallVideoSensor(task_id="wait", video_id=VIDEO_ID))
    assert sensor.start_from_trigger is False
    assert sensor.start_trigger_args is None
    assert sensor.deferrable is False


# -- ids rendered in the triggerer -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        pytest.param(790, 790, id="int"),
        pytest.param("790", 790, id="rendered-digits"),
        pytest.param(" 790 ", 790, id="rendered-with-spaces"),
        pytest.param(VIDEO_ID, VIDEO_ID, id="template-kept-for-the-triggerer"),
    ],
)
def test_a_trigger_keeps_an_id_or_the_template_airflow_renders(raw, stored):
    assert AIOnTheBallVideoTrigger(raw).video_id == stored
    assert AIOnTheBallVideoTrigger(raw).serialize()[1]["video_id"] == stored


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("trigger", "field"),
    [
        pytest.param(AIOnTheBallVideoTrigger("None"), "video_id", id="video-None"),
        pytest.param(AIOnTheBallVideoTrigger("abc"), "video_id", id="video-not-a-number"),
        pytest.param(AIOnTheBallAnalysisTrigger("-3"), "analysis_id", id="analysis-negative"),
        pytest.param(AIOnTheBallAnalysisTrigger(1247, video_id="x"), "video_id", id="analysis-bad-video"),
    ],
)
async def test_an_id_that_rendered_to_no_id_fails_the_task_without_a_request(aiontheball_conn, trigger, field):
    events = await asyncio.wait_for(_collect(trigger), 10)
    assert len(events) == 1
    assert events[0].payload["status"] == "failed"
    assert events[0].payload["message"].startswith(f"{field}: ")
    assert api_requests(aiontheball_conn) == [], "nothing was requested with it"
    sensor = AIOnTheBallVideoSensor(task_id="wait", video_id=1)
    with pytest.raises(AIOnTheBallTerminalError, match=f"^{field}: "):  # fails without retries, naming it
        sensor.execute_complete(task_context(), events[0].payload)


async def _collect(trigger: Any) -> list[Any]:
    return [event async for event in trigger.run()]
