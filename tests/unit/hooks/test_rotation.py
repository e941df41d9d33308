"""A token rotated while waits are in flight: the old token is revoked before the connection holds the new
one. A wait that has succeeded on the connection before — the poke before deferring, the create operator's
POST, an earlier poke in reschedule mode — rides it out within its error budget and finishes with the new
token; a wait whose very first request is refused still fails at once (a wrong token, not a rotation)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_aiontheball.exceptions import AIOnTheBallTerminalError
from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallHook
from airflow_provider_aiontheball.operators.video import AIOnTheBallCreateVideoOperator
from airflow_provider_aiontheball.sensors.video import AIOnTheBallVideoSensor
from airflow_provider_aiontheball.triggers.analysis import AIOnTheBallAnalysisTrigger
from airflow_provider_aiontheball.triggers.video import AIOnTheBallVideoTrigger
from tests.helpers import CONN_ENV, FAST_RETRY_EXTRA, TOKEN, api_requests, connection_json, task_context

FAST = {"poll_interval": 0.2, "min_poll_interval": 0.02}
VIDEO_URL = "https://example.com/match.mp4"
NEW_TOKEN = "rotated-token-9f3b2c71"


def revoke(server: Any, token: str = TOKEN) -> None:
    server.simulator.revoke_token(token)


def refused(server: Any) -> int:
    return sum(1 for r in api_requests(server) if r["status"] == 401)


async def rotate_once_refused(server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The operator's half of a rotation: once a request was refused, the connection gets the new token."""
    while not await asyncio.to_thread(refused, server):
        await asyncio.sleep(0.02)
    server.simulator.add_token(NEW_TOKEN, "org-1")
    monkeypatch.setenv(CONN_ENV, connection_json(server.base_url, token=NEW_TOKEN, **FAST_RETRY_EXTRA))


async def run_trigger(trigger: Any) -> dict[str, Any]:
    events = [event.payload async for event in trigger.run()]
    assert len(events) == 1, events
    return events[0]


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["video", "analysis"])
async def test_a_wait_that_succeeded_before_rides_out_a_rotation(aiontheball_conn, monkeypatch, kind):
    video = await asyncio.to_thread(lambda: AIOnTheBallHook().create_video(VIDEO_URL))
    if kind == "video":
        trigger: Any = AIOnTheBallVideoTrigger(video["id"], polled_before=True, **FAST)
    else:
        analysis = await asyncio.to_thread(lambda: AIOnTheBallHook().create_analysis(video["id"]))
        trigger = AIOnTheBallAnalysisTrigger(analysis["id"], polled_before=True, **FAST)
    revoke(aiontheball_conn)  # before the triggerer's first poll: the case that failed for good
    rotation = asyncio.ensure_future(rotate_once_refused(aiontheball_conn, monkeypatch))
    event = await asyncio.wait_for(run_trigger(trigger), 30)
    await rotation
    assert event["status"] == "success", event
    assert refused(aiontheball_conn) >= 1
    orgs = [r["token_org"] for r in api_requests(aiontheball_conn, "GET") if r["status"] == 200]
    assert orgs
    assert set(orgs) == {"org-1"}


@pytest.mark.asyncio
async def test_a_wait_whose_first_request_is_refused_fails_at_once(aiontheball_conn):
    video = await asyncio.to_thread(lambda: AIOnTheBallHook().create_video(VIDEO_URL))
    revoke(aiontheball_conn)
    event = await asyncio.wait_for(run_trigger(AIOnTheBallVideoTrigger(video["id"], **FAST)), 30)
    assert event["status"] == "failed"
    assert "connection 'aiontheball_default' was refused with 401" in event["message"]
    assert refused(aiontheball_conn) == 1, "no budget spent on a wrong token"


def test_polled_before_is_stored_only_when_true_and_survives_a_rebuild():
    _classpath, kwargs = AIOnTheBallVideoTrigger(790, polled_before=True).serialize()
    assert kwargs["polled_before"] is True
    json.dumps(kwargs)
    assert AIOnTheBallVideoTrigger(**kwargs).polled_before is True
    assert "polled_before" not in AIOnTheBallVideoTrigger(790).serialize()[1], "rows of older code stay the same"


@pytest.mark.parametrize(
    ("make_task", "polled_before"),
    [
        pytest.param(
            lambda vid: AIOnTheBallVideoSensor(task_id="wait", video_id=vid, deferrable=True, **FAST),
            True,
            id="sensor-after-its-poke",
        ),
        pytest.param(
            lambda vid: AIOnTheBallCreateVideoOperator(
                task_id="create", video_file_url=VIDEO_URL, wait_for_available=True, deferrable=True, **FAST
            ),
            True,
            id="create-after-its-post",
        ),
    ],
)
def test_a_task_defers_its_wait_saying_it_succeeded_before(aiontheball_conn, make_task, polled_before):
    video_id = AIOnTheBallHook().create_video(VIDEO_URL)["id"]
    with pytest.raises(TaskDeferred) as deferred:
        make_task(video_id).execute(task_context())
    assert deferred.value.trigger.serialize()[1].get("polled_before", False) is polled_before


class RescheduledTaskInstance:
    """The stand-in task instance of a reschedule-mode poke after an earlier one (Airflow 3's question)."""

    def __init__(self, first_reschedule: dt.datetime | None) -> None:
        self.first_reschedule = first_reschedule
        self.xcoms: dict[str, Any] = {}
        self.try_number, self.max_tries, self.map_index = 1, 0, -1
        self.dag_id, self.task_id, self.run_id = "dag", "wait", "run"

    def get_first_reschedule_date(self, context: Any) -> dt.datetime | None:
        return self.first_reschedule

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


@pytest.mark.parametrize(
    ("first_reschedule", "outcome"),
    [
        pytest.param(dt.datetime(2026, 12, 7, tzinfo=dt.UTC), "reschedules", id="after-an-earlier-poke"),
        pytest.param(None, "fails", id="first-poke"),
    ],
)
def test_a_reschedule_mode_poke_during_a_rotation(aiontheball_conn, first_reschedule, outcome):
    video_id = AIOnTheBallHook().create_video(VIDEO_URL)["id"]
    revoke(aiontheball_conn)
    sensor = AIOnTheBallVideoSensor(task_id="wait", video_id=video_id, mode="reschedule", **FAST)
    context = {**task_context(), "ti": RescheduledTaskInstance(first_reschedule)}
    if outcome == "fails":
        with pytest.raises(AIOnTheBallTerminalError, match="was refused with 401"):
            sensor.poke(context)
    else:
        assert sensor.poke(context) is False, "refused once: poke again later, within the error budget"
