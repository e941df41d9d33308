"""Contracts with what users already have: trigger rows stored by the code before the waiting redesign
(classpaths and kwargs) are rebuilt and run to completion, and renamed parameters keep working."""

from __future__ import annotations

import asyncio
import json

import pytest

from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallHook
from airflow_provider_aiontheball.waiting import ANALYSIS_WAIT, VIDEO_WAIT

#: Exactly what the code before the waiting redesign (commit b4af60c, ``triggers/_base.py``'s generic
#: ``serialize``) stored in a trigger row, per trigger; the ids are added per test.
PREVIOUS_RELEASE_ROWS = {
    "video": (
        "airflow_provider_aiontheball.triggers.video.AIOnTheBallVideoTrigger",
        {
            "aiontheball_conn_id": "aiontheball_default",
            "poll_interval": 0.2,
            "end_time": None,
            "min_poll_interval": 0.02,
            "max_consecutive_errors": 10,
            "error_budget_seconds": 900.0,
            "started_at": 1.7e9,
        },
    ),
    "analysis": (
        "airflow_provider_aiontheball.triggers.analysis.AIOnTheBallAnalysisTrigger",
        {
            "aiontheball_conn_id": "aiontheball_default",
            "poll_interval": 0.2,
            "end_time": None,
            "min_poll_interval": 0.02,
            "max_consecutive_errors": 10,
            "error_budget_seconds": 900.0,
            "started_at": 1.7e9,
        },
    ),
}


def import_classpath(classpath: str) -> type:
    """How the triggerer rebuilds a row (Airflow's ``import_string``: module, then attribute)."""
    import importlib

    module, _, name = classpath.rpartition(".")
    return getattr(importlib.import_module(module), name)


def stored_row(kind: str, video_id: int, analysis_id: int | None) -> tuple[str, dict]:
    classpath, kwargs = PREVIOUS_RELEASE_ROWS[kind]
    ids = {"video_id": video_id} if kind == "video" else {"analysis_id": analysis_id, "video_id": video_id}
    return classpath, json.loads(json.dumps({**kwargs, **ids}))  # as read back from the JSON column


def create_video_and_analysis() -> tuple[int, int]:
    with AIOnTheBallHook() as hook:
        video_id = hook.create_video("https://example.com/match.mp4")["id"]
        return video_id, hook.create_analysis(video_id)["id"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("kind", "keys"),
    [
        pytest.param("video", {"status", "video_id", "video_status", "message", "video"}, id="video"),
        pytest.param("analysis", {"status", "analysis_id", "analysis_status", "message", "analysis"}, id="analysis"),
    ],
)
async def test_a_row_of_the_previous_release_is_rebuilt_and_completes(aiontheball_conn, kind, keys):
    video_id, analysis_id = await asyncio.to_thread(create_video_and_analysis)
    classpath, kwargs = stored_row(kind, video_id, analysis_id)
    trigger = import_classpath(classpath)(**kwargs)

    assert trigger.serialize() == (classpath, kwargs), "re-serialized unchanged: same classpath, same kwargs"
    events = await asyncio.wait_for(_collect(trigger), 30)
    assert len(events) == 1
    event = events[0]
    assert set(event) == keys
    policy = {"video": VIDEO_WAIT, "analysis": ANALYSIS_WAIT}[kind]
    assert keys == {"status", "message", policy.kind, policy.id_key, policy.status_key}, "the policy names the keys"
    assert event["status"] == "success"
    assert event[f"{kind}_id"] == (video_id if kind == "video" else analysis_id)
    assert event[kind]["id"] == event[f"{kind}_id"]
    json.dumps(event)
    assert type(event["status"]) is str, "a plain string in the stored event, not an enum"


async def _collect(trigger) -> list[dict]:
    return [event.payload async for event in trigger.run()]


def test_the_analysis_sensor_s_old_max_poll_interval_still_works_with_a_deprecation_warning():
    from airflow_provider_aiontheball.sensors.analysis import AIOnTheBallAnalysisSensor

    with pytest.warns(DeprecationWarning, match="use poll_interval"):
        sensor = AIOnTheBallAnalysisSensor(task_id="wait", analysis_id=1, max_poll_interval=600)
    assert sensor.poll_interval == 600
    assert sensor.max_poll_interval == 600


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param({"poke_interval": 42}, 42, id="defaults-to-poke-interval"),
        pytest.param({"poke_interval": 42, "poll_interval": 90}, 90, id="poll-interval-wins"),
    ],
)
def test_the_video_sensor_s_longest_deferred_interval(kwargs, expected):
    from airflow_provider_aiontheball.sensors.video import AIOnTheBallVideoSensor

    sensor = AIOnTheBallVideoSensor(task_id="wait", video_id=1, **kwargs)
    assert sensor._settings.trigger_kwargs()["poll_interval"] == expected
