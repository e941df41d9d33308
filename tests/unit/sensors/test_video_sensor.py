"""AIOnTheBallVideoSensor: poke, reschedule and deferrable modes; failure semantics; soft_fail."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import requests
from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
)

from airflow_provider_aiontheball.exceptions import (
    AIOnTheBallInputError,
    AIOnTheBallTerminalError,
    AIOnTheBallWaitError,
)
from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallHook
from airflow_provider_aiontheball.sensors.analysis import AIOnTheBallAnalysisSensor
from airflow_provider_aiontheball.sensors.video import AIOnTheBallVideoSensor
from airflow_provider_aiontheball.triggers.video import AIOnTheBallVideoTrigger
from tests.helpers import CONN_ENV, api_requests, connection_json, task_context

VIDEO_URL = "https://example.com/match.mp4"
FAST_POKE = {"poke_interval": 0.05, "timeout": 30}


def create_video(url: str = VIDEO_URL) -> int:
    return AIOnTheBallHook().create_video(url)["id"]


def sensor(video_id, **kwargs) -> AIOnTheBallVideoSensor:
    return AIOnTheBallVideoSensor(task_id="wait_for_video", video_id=video_id, **{**FAST_POKE, **kwargs})


def test_video_id_is_templated():
    assert "video_id" in AIOnTheBallVideoSensor.template_fields


def test_constructor_does_no_io(simulator, monkeypatch):
    monkeypatch.delenv(CONN_ENV, raising=False)
    sensor("{{ ti.xcom_pull(task_ids='create_video', key='video_id') }}", aiontheball_conn_id="nope")
    assert api_requests(simulator) == []


def test_poke_mode_returns_the_video(aiontheball_conn):
    video_id = create_video()
    context = task_context()
    video = sensor(str(video_id), mode="poke", deferrable=False).execute(context)
    assert video["id"] == video_id
    assert context["ti"].xcoms["mp4_source"] == video["mp4_source"], "for the extra link"
    assert video["status"] == "available"
    assert {"duration", "game_name", "mp4_source"} <= set(video)


@pytest.mark.parametrize(
    "outcome", [pytest.param("error", id="error"), pytest.param("no_match_detected", id="no-match")]
)
def test_poke_mode_terminal_status_fails_without_retry(aiontheball_conn, outcome):
    video_id = create_video(f"{VIDEO_URL}?sim_outcome={outcome}")
    with pytest.raises(AIOnTheBallTerminalError, match=outcome) as excinfo:
        sensor(video_id, deferrable=False).execute(task_context())
    assert isinstance(excinfo.value, AirflowFailException)


def test_poke_mode_deleted_video_fails_without_retry(aiontheball_conn):
    with pytest.raises(AIOnTheBallTerminalError, match="video 4242 no longer exists"):
        sensor(4242, deferrable=False).execute(task_context())


def test_poke_mode_bad_token_fails_naming_connection(simulator, monkeypatch):
    monkeypatch.setenv(CONN_ENV, connection_json(simulator.base_url, token="bad", retry_limit=0))
    with pytest.raises(AIOnTheBallTerminalError, match="connection 'aiontheball_default' was refused with 401"):
        sensor(790, deferrable=False).execute(task_context())


def test_poke_mode_transient_failures_beyond_budget_fail_normally(aiontheball_conn):
    video_id = create_video()
    requests.post(
        f"{aiontheball_conn.control_url}/faults", json={"kind": "status", "status": 503, "count": 100}, timeout=5
    )
    with pytest.raises(AIOnTheBallWaitError, match="503") as excinfo:
        sensor(video_id, deferrable=False, max_consecutive_errors=2).execute(task_context())
    assert not isinstance(excinfo.value, AirflowFailException), "Airflow's retries apply"


def test_reschedule_mode_frees_the_slot_between_pokes(airflow_db, aiontheball_conn):
    from airflow.exceptions import AirflowRescheduleException

    video_id = create_video()
    task = sensor(video_id, mode="reschedule", deferrable=False, poke_interval=30)
    with pytest.raises(AirflowRescheduleException) as excinfo:
        task.execute(task_context())
    assert excinfo.value.reschedule_date > dt.datetime.now(dt.UTC) + dt.timedelta(seconds=25)
    aiontheball_conn.simulator.advance(60)  # the video became available meanwhile
    rescheduled = sensor(video_id, mode="reschedule", deferrable=False, poke_interval=30)
    assert rescheduled.execute(task_context())["status"] == "available"


def test_poke_mode_timeout_and_soft_fail(aiontheball_conn):
    video_id = create_video(f"{VIDEO_URL}?sim_outcome=stuck")
    with pytest.raises(AirflowSensorTimeout):
        sensor(video_id, deferrable=False, timeout=0.2).execute(task_context())
    with pytest.raises(AirflowSkipException):
        sensor(video_id, deferrable=False, timeout=0.2, soft_fail=True).execute(task_context())


@pytest.mark.parametrize(
    ("bad_id", "words"),
    [
        pytest.param("abc", "video_id: expected an integer", id="word"),
        pytest.param("0", "video_id: must be at least 1", id="zero"),
    ],
)
def test_bad_rendered_id_fails_before_any_request(aiontheball_conn, bad_id, words):
    with pytest.raises(AIOnTheBallInputError, match=words) as excinfo:
        sensor(bad_id, deferrable=True).execute(task_context())
    assert isinstance(excinfo.value, ValueError)
    assert isinstance(excinfo.value, AirflowFailException)
    assert api_requests(aiontheball_conn) == []


def test_deferrable_defers_with_trigger_and_timeout(aiontheball_conn):
    video_id = create_video(f"{VIDEO_URL}?sim_outcome=stuck")
    task = sensor(video_id, deferrable=True, poke_interval=42, timeout=600, min_poll_interval=3)
    before = time.time()
    with pytest.raises(TaskDeferred) as excinfo:
        task.execute(task_context())
    deferred = excinfo.value
    assert deferred.method_name == "execute_complete"
    assert deferred.timeout == dt.timedelta(seconds=600)
    trigger = deferred.trigger
    assert isinstance(trigger, AIOnTheBallVideoTrigger)
    assert trigger.video_id == video_id
    assert trigger.serialize()[1]["poll_interval"] == 42
    assert trigger.serialize()[1]["min_poll_interval"] == 3
    assert before + 600 <= trigger.end_time <= time.time() + 600
    assert len(api_requests(aiontheball_conn)) == 2, "one POST to create, one poke before deferring"


def test_deferrable_does_not_defer_when_already_available(aiontheball_conn):
    video_id = create_video()
    aiontheball_conn.simulator.set_video_status(video_id, "available")
    video = sensor(video_id, deferrable=True).execute(task_context())
    assert video["id"] == video_id


def test_deferrable_does_not_defer_when_already_failed(aiontheball_conn):
    video_id = create_video()
    aiontheball_conn.simulator.set_video_status(video_id, "error")
    with pytest.raises(AIOnTheBallTerminalError):
        sensor(video_id, deferrable=True).execute(task_context())


def test_default_deferrable_follows_airflow_config(monkeypatch):
    assert sensor(1).deferrable is False


EVENTS = [
    pytest.param(
        {"status": "failed", "message": "video 1 ended with status 'error'"}, AIOnTheBallTerminalError, id="failed"
    ),
    pytest.param({"status": "timeout", "message": "video 1 did not finish"}, AirflowSensorTimeout, id="timeout"),
    pytest.param({"status": "error", "message": "gave up"}, AIOnTheBallWaitError, id="error"),
    pytest.param({"status": "success", "message": "no video in it"}, AIOnTheBallWaitError, id="success-without-video"),
    pytest.param({"status": "weird"}, AIOnTheBallWaitError, id="unknown-status"),
    pytest.param(None, AIOnTheBallWaitError, id="no-event"),
]


@pytest.mark.parametrize(("event", "error"), EVENTS)
def test_execute_complete_fails_closed(event, error):
    with pytest.raises(error):
        sensor(1).execute_complete({}, event)


def test_execute_complete_returns_the_video_on_success():
    video = {"id": 1, "status": "available", "mp4_source": "https://cdn.example/1.mp4"}
    event = {"status": "success", "video_id": 1, "video_status": "available", "message": "ok", "video": video}
    context = task_context()
    assert sensor(1).execute_complete(context, event) == video
    assert context["ti"].xcoms == {"mp4_source": "https://cdn.example/1.mp4"}


SENSORS = [
    pytest.param(
        lambda **kw: sensor(1, **kw),
        {"status": "timeout", "video_id": 1, "video_status": "downloading", "message": "late"},
        id="video",
    ),
    pytest.param(
        lambda **kw: AIOnTheBallAnalysisSensor(task_id="wait_for_analysis", analysis_id=2, **{**FAST_POKE, **kw}),
        {"status": "timeout", "analysis_id": 2, "analysis_status": "running", "message": "late"},
        id="analysis",
    ),
]


@pytest.mark.parametrize(("make_sensor", "timeout_event"), SENSORS)
@pytest.mark.parametrize(
    ("soft_fail", "expected"),
    [pytest.param(True, AirflowSkipException, id="soft-fail-skips"), pytest.param(False, Exception, id="fails")],
)
def test_deferred_timeout_respects_soft_fail(make_sensor, timeout_event, soft_fail, expected):
    """Airflow's own deferral timeout (``__fail__``) and our trigger's timeout event both honour soft_fail
    (Airflow 3.0 itself does not skip on its deferral timeout: the sensors' shared base does)."""
    try:
        from airflow.sdk.bases.operator import TriggerFailureReason

        airflow_timeout = TriggerFailureReason.TRIGGER_TIMEOUT.value
    except ImportError:  # Airflow 2
        airflow_timeout = "Trigger/execution timeout"
    task = make_sensor(soft_fail=soft_fail)
    with pytest.raises(expected) as excinfo:
        task.resume_execution("__fail__", {"error": airflow_timeout}, {})
    if not soft_fail:
        assert not isinstance(excinfo.value, AirflowSkipException)
    with pytest.raises(expected) as excinfo:
        task.resume_execution("execute_complete", {"event": timeout_event}, {})
    if not soft_fail:
        assert isinstance(excinfo.value, AirflowSensorTimeout)


def test_terminal_failure_is_skipped_with_soft_fail_in_poke_mode(aiontheball_conn):
    video_id = create_video(f"{VIDEO_URL}?sim_outcome=error")
    with pytest.raises(AirflowSkipException):
        sensor(video_id, deferrable=False, soft_fail=True).execute(task_context())
