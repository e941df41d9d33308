"""Waiting for analyses: the trigger, the sensor and the create operator against the simulator."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import re
import time

import pytest
import requests
from airflow.providers.common.compat.sdk import AirflowFailException, TaskDeferred

from airflow_provider_aiontheball.exceptions import AIOnTheBallInputError, AIOnTheBallTerminalError
from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallHook
from airflow_provider_aiontheball.operators.analysis import AIOnTheBallCreateAnalysisOperator
from airflow_provider_aiontheball.sensors.analysis import AIOnTheBallAnalysisSensor
from airflow_provider_aiontheball.triggers.analysis import AIOnTheBallAnalysisTrigger
from airflow_provider_aiontheball.waiting import ANALYSIS_WAIT
from tests.helpers import TOKEN, api_requests, task_context

VIDEO_URL = "https://example.com/match.mp4"
#: The simulator's analysis runs ~1.5 s; poll fast by configuration.
FAST = {"poll_interval": 0.3, "min_poll_interval": 0.05}


def new_video_and_analysis(url: str = VIDEO_URL) -> tuple[int, int]:
    with AIOnTheBallHook() as hook:
        video_id = hook.create_video(url)["id"]
        return video_id, hook.create_analysis(video_id)["id"]


async def collect(trigger, timeout: float = 20) -> list[dict]:
    async def consume() -> list[dict]:
        return [event.payload async for event in trigger.run()]

    return await asyncio.wait_for(consume(), timeout)


def only_event(events: list[dict]) -> dict:
    assert len(events) == 1, events
    json.dumps(events[0])
    return events[0]


# -- trigger ----------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_trigger_follows_an_analysis_created_before_its_video_was_ready(aiontheball_conn, all_logs):
    _, analysis_id = await asyncio.to_thread(new_video_and_analysis)
    event = only_event(await collect(AIOnTheBallAnalysisTrigger(analysis_id, **FAST)))
    assert event["status"] == "success"
    assert event["analysis_id"] == analysis_id
    assert event["analysis_status"] == "done"
    assert event["analysis"]["results_available"] is True
    assert set(event) == {"status", "analysis_id", "analysis_status", "message", "analysis"}
    lines = [m for m in all_logs.messages if m.startswith(f"analysis {analysis_id}: ")]
    assert any("waiting_for_video" in m for m in lines), lines
    progress_lines = [m for m in lines if re.search(r": running \d+%", m)]
    assert progress_lines, lines
    assert any("(ETA ~" in m for m in progress_lines), "an estimate once progress is rising"


@pytest.mark.asyncio
async def test_trigger_logs_progress_per_meaningful_step_not_per_poll(aiontheball_conn, all_logs):
    _, analysis_id = await asyncio.to_thread(new_video_and_analysis)
    await collect(AIOnTheBallAnalysisTrigger(analysis_id, poll_interval=0.05, min_poll_interval=0.02))
    polls = len(api_requests(aiontheball_conn, "GET"))
    progress_lines = [m for m in all_logs.messages if re.search(rf"^analysis {analysis_id}: \w+ \d+%", m)]
    assert len(progress_lines) < polls / 2, f"{len(progress_lines)} progress lines for {polls} polls"
    percents = [int(re.search(r"(\d+)%", m).group(1)) for m in progress_lines if " running " in m]
    # At least PROGRESS_LOG_STEP (5) points apart; the lines show whole percents, rounded half to even, so two
    # lines 5.0 points apart may read 4 apart (33.5% → "34%", 38.5% → "38%").
    assert all(b - a >= 4 for a, b in itertools.pairwise(percents)), percents


@pytest.mark.asyncio
async def test_trigger_failed_analysis(aiontheball_conn):
    aiontheball_conn.simulator.script_next_analyses("error")
    _, analysis_id = await asyncio.to_thread(new_video_and_analysis)
    event = only_event(await collect(AIOnTheBallAnalysisTrigger(analysis_id, **FAST)))
    assert event["status"] == "failed"
    assert event["analysis_status"] == "error"


@pytest.mark.asyncio
async def test_trigger_analysis_fails_when_its_video_fails(aiontheball_conn):
    _, analysis_id = await asyncio.to_thread(new_video_and_analysis, f"{VIDEO_URL}?sim_outcome=no_match_detected")
    event = only_event(await collect(AIOnTheBallAnalysisTrigger(analysis_id, **FAST)))
    assert event["status"] == "failed"


@pytest.mark.asyncio
@pytest.mark.simulator(analysis_get_route=False)
async def test_trigger_without_analysis_route_follows_the_video(aiontheball_conn, all_logs):
    video_id, analysis_id = await asyncio.to_thread(new_video_and_analysis)
    trigger = AIOnTheBallAnalysisTrigger(analysis_id, video_id=video_id, **FAST)
    event = only_event(await collect(trigger))
    assert event["status"] == "success"
    assert sum("no GET /analyses/{id} route" in m for m in all_logs.messages) == 1


@pytest.mark.asyncio
@pytest.mark.simulator(analysis_get_route=False)
async def test_trigger_without_analysis_route_and_video_says_so(aiontheball_conn):
    _, analysis_id = await asyncio.to_thread(new_video_and_analysis)
    event = only_event(await collect(AIOnTheBallAnalysisTrigger(analysis_id, **FAST)))
    assert event["status"] == "failed"
    assert "no GET /analyses/{id} route" in event["message"]


@pytest.mark.asyncio
async def test_trigger_deadline(aiontheball_conn):
    _, analysis_id = await asyncio.to_thread(new_video_and_analysis, f"{VIDEO_URL}?sim_outcome=stuck")
    trigger = AIOnTheBallAnalysisTrigger(analysis_id, end_time=time.time() + 0.5, **FAST)
    event = only_event(await collect(trigger))
    assert event["status"] == "timeout"
    assert event["analysis_status"] == "waiting_for_video"


def test_trigger_serializes_ids_and_settings_only(aiontheball_conn):
    trigger = AIOnTheBallAnalysisTrigger(1247, video_id=790, end_time=1.5e9)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_aiontheball.triggers.analysis.AIOnTheBallAnalysisTrigger"
    assert kwargs["analysis_id"] == 1247
    assert kwargs["video_id"] == 790
    assert kwargs["end_time"] == 1.5e9
    rebuilt = AIOnTheBallAnalysisTrigger(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert TOKEN not in json.dumps(kwargs) + repr(trigger)


def test_done_without_results_keeps_waiting():
    assert not ANALYSIS_WAIT.ready({"status": "done", "results_available": False})
    assert ANALYSIS_WAIT.ready({"status": "done", "results_available": True})
    assert ANALYSIS_WAIT.ready({"status": "done"}), "from a video's analyses list, which has no such field"


@pytest.mark.asyncio
async def test_trigger_shares_the_session_with_video_triggers(aiontheball_conn):
    from airflow_provider_aiontheball.triggers.video import AIOnTheBallVideoTrigger

    video_id, analysis_id = await asyncio.to_thread(new_video_and_analysis)
    before = requests.get(f"{aiontheball_conn.control_url}/stats", timeout=5).json()["connections_opened"]
    events = await asyncio.gather(
        collect(AIOnTheBallVideoTrigger(video_id, poll_interval=0.1, min_poll_interval=0.05)),
        collect(AIOnTheBallAnalysisTrigger(analysis_id, **FAST)),
    )
    assert [only_event(e)["status"] for e in events] == ["success", "success"]
    after = requests.get(f"{aiontheball_conn.control_url}/stats", timeout=5).json()["connections_opened"]
    assert after - before <= 3, "two concurrent waits reuse keep-alive connections of one session"


# -- sensor -----------------------------------------------------------------------------------------


def sensor(analysis_id, **kwargs) -> AIOnTheBallAnalysisSensor:
    return AIOnTheBallAnalysisSensor(
        task_id="wait_for_analysis", analysis_id=analysis_id, **{"poke_interval": 0.1, "timeout": 30, **kwargs}
    )


def test_sensor_templates_ids():
    assert set(AIOnTheBallAnalysisSensor.template_fields) == {"analysis_id", "video_id"}


def test_sensor_poke_mode_returns_the_analysis(aiontheball_conn, all_logs):
    _, analysis_id = new_video_and_analysis()
    analysis = sensor(str(analysis_id), deferrable=False).execute(task_context())
    assert analysis["status"] == "done"
    assert any(re.search(rf"analysis {analysis_id}: running \d+%", m) for m in all_logs.messages)


def test_sensor_poke_mode_error_fails_without_retry(aiontheball_conn):
    aiontheball_conn.simulator.script_next_analyses("error")
    _, analysis_id = new_video_and_analysis()
    with pytest.raises(AIOnTheBallTerminalError) as excinfo:
        sensor(analysis_id, deferrable=False).execute(task_context())
    assert isinstance(excinfo.value, AirflowFailException)


def test_sensor_defers_with_progress_aware_trigger(aiontheball_conn):
    video_id, analysis_id = new_video_and_analysis()
    task = sensor(analysis_id, video_id=str(video_id), deferrable=True, timeout=7200)
    with pytest.raises(TaskDeferred) as excinfo:
        task.execute(task_context())
    trigger = excinfo.value.trigger
    assert isinstance(trigger, AIOnTheBallAnalysisTrigger)
    assert trigger.analysis_id == analysis_id
    assert trigger.video_id == video_id
    assert trigger.serialize()[1]["poll_interval"] == 1800, "max interval is not the 60 s poke interval"
    assert trigger.serialize()[1]["min_poll_interval"] == 45
    assert excinfo.value.timeout == dt.timedelta(seconds=7200)


def test_sensor_does_not_defer_when_done(aiontheball_conn):
    _, analysis_id = new_video_and_analysis()
    aiontheball_conn.simulator.advance(60)
    assert sensor(analysis_id, deferrable=True).execute(task_context())["status"] == "done"


def test_sensor_execute_complete(aiontheball_conn):
    analysis = {"id": 1, "status": "done", "results_available": True}
    event = {"status": "success", "analysis_id": 1, "analysis_status": "done", "message": "m", "analysis": analysis}
    assert sensor(1).execute_complete(task_context(), event) == analysis
    with pytest.raises(AIOnTheBallTerminalError):
        sensor(1).execute_complete(task_context(), {"status": "failed", "message": "analysis 1 ended"})


# -- create operator --------------------------------------------------------------------------------


def create_op(video_id, **kwargs) -> AIOnTheBallCreateAnalysisOperator:
    return AIOnTheBallCreateAnalysisOperator(task_id="create_analysis", video_id=video_id, **kwargs)


def test_create_pushes_analysis_id_and_returns_it(aiontheball_conn):
    video_id = AIOnTheBallHook().create_video(VIDEO_URL)["id"]
    context = task_context()
    analysis = create_op(str(video_id), fps="25").execute(context)
    assert context["ti"].xcoms["analysis_id"] == analysis["id"]
    assert api_requests(aiontheball_conn, "POST")[-1]["body"] == {"fps": 25}


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        pytest.param({"video_id": "x"}, "video_id", id="video-id"),
        pytest.param({"video_id": 1, "fps": "0"}, "fps", id="fps-zero"),
        pytest.param({"video_id": 1, "fps": 12.5}, "fps", id="fps-float"),
    ],
)
def test_create_validates_before_any_request(aiontheball_conn, kwargs, field):
    with pytest.raises(AIOnTheBallInputError, match=rf"^{field}: "):
        AIOnTheBallCreateAnalysisOperator(task_id="c", **kwargs).execute(task_context())
    assert api_requests(aiontheball_conn) == []


def test_create_and_wait_in_process(aiontheball_conn):
    video_id = AIOnTheBallHook().create_video(VIDEO_URL)["id"]
    analysis = create_op(video_id, wait_for_completion=True, deferrable=False, **FAST).execute(task_context())
    assert analysis["status"] == "done"


def test_create_and_defer(aiontheball_conn):
    video_id = AIOnTheBallHook().create_video(VIDEO_URL)["id"]
    context = task_context()
    with pytest.raises(TaskDeferred) as excinfo:
        create_op(video_id, wait_for_completion=True, deferrable=True).execute(context)
    trigger = excinfo.value.trigger
    assert isinstance(trigger, AIOnTheBallAnalysisTrigger)
    assert trigger.analysis_id == context["ti"].xcoms["analysis_id"]
    assert trigger.video_id == video_id


def test_retried_create_reuses_the_analysis_of_an_earlier_try(aiontheball_conn, all_logs):
    video_id = AIOnTheBallHook().create_video(VIDEO_URL)["id"]
    run_started = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    first = create_op(video_id).execute(task_context(1, run_started))
    second = create_op(video_id).execute(task_context(2, run_started))
    assert second["id"] == first["id"]
    assert len([r for r in api_requests(aiontheball_conn, "POST") if r["path"].endswith("/analysis")]) == 1
    assert any("Reusing analysis" in m for m in all_logs.messages)


def test_lost_create_response_reuses_the_started_analysis(aiontheball_conn):
    video_id = AIOnTheBallHook().create_video(VIDEO_URL)["id"]
    requests.post(
        f"{aiontheball_conn.control_url}/faults",
        json={"kind": "drop_after_processing", "count": 1, "method": "POST"},
        timeout=5,
    ).raise_for_status()
    analysis = create_op(video_id).execute(task_context())
    assert [a["id"] for a in AIOnTheBallHook().get_video(video_id)["analyses"]] == [analysis["id"]]
