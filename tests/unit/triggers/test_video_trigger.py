"""AIOnTheBallVideoTrigger in an event loop against the simulator: outcomes, deadline, budget, restarts."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time

import pytest
import requests

from airflow_provider_aiontheball.hooks._async_sessions import shared_sessions
from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallHook
from airflow_provider_aiontheball.triggers.video import AIOnTheBallVideoTrigger
from tests.helpers import OTHER_TOKEN, TOKEN, api_requests, connection_json, inject, stats

#: Short intervals by configuration: the simulator moves a video one status every 0.2 s.
FAST = {"poll_interval": 0.2, "min_poll_interval": 0.02}
VIDEO_URL = "https://example.com/match.mp4"


def create_video(url: str = VIDEO_URL) -> int:
    with AIOnTheBallHook() as hook:
        return hook.create_video(url)["id"]


async def collect(trigger: AIOnTheBallVideoTrigger, timeout: float = 15) -> list[dict]:
    """Run the trigger to its end like the triggerer does; return every event payload it yielded."""

    async def consume() -> list[dict]:
        return [event.payload async for event in trigger.run()]

    return await asyncio.wait_for(consume(), timeout)


def only_event(events: list[dict]) -> dict:
    assert len(events) == 1, f"exactly one event, got {events}"
    json.dumps(events[0])  # the triggerer stores it as JSON
    return events[0]


@pytest.mark.asyncio
async def test_success_returns_the_video(aiontheball_conn, all_logs):
    video_id = await asyncio.to_thread(create_video)
    event = only_event(await collect(AIOnTheBallVideoTrigger(video_id, **FAST)))
    assert event["status"] == "success"
    assert event["video_id"] == video_id
    assert event["video_status"] == "available"
    assert event["video"]["id"] == video_id
    assert event["video"]["mp4_source"]
    assert set(event) == {"status", "video_id", "video_status", "message", "video"}
    transitions = [m for m in all_logs.messages if f"video {video_id}: " in m and "→" in m]
    assert any("downloading → locally_available after" in m for m in transitions), transitions
    assert len(transitions) == len(set(transitions)), "each transition logged once, not every poll"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "outcome", [pytest.param("error", id="error"), pytest.param("no_match_detected", id="no-match")]
)
async def test_terminal_failure_statuses(aiontheball_conn, outcome):
    video_id = await asyncio.to_thread(create_video, f"{VIDEO_URL}?sim_outcome={outcome}")
    event = only_event(await collect(AIOnTheBallVideoTrigger(video_id, **FAST)))
    assert event["status"] == "failed"
    assert event["video_status"] == outcome
    assert outcome in event["message"]
    assert "video" not in event


@pytest.mark.asyncio
async def test_unknown_status_is_in_progress_and_logged_once(aiontheball_conn, all_logs):
    video_id = await asyncio.to_thread(create_video, f"{VIDEO_URL}?sim_outcome=status:created")
    event = only_event(await collect(AIOnTheBallVideoTrigger(video_id, **FAST)))
    assert event["status"] == "success"
    warnings = [m for m in all_logs.messages if "'created'" in m and "does not list" in m]
    assert len(warnings) == 1, warnings


@pytest.mark.asyncio
async def test_video_deleted_mid_wait_fails(aiontheball_conn):
    video_id = await asyncio.to_thread(create_video, f"{VIDEO_URL}?sim_outcome=stuck")
    task = asyncio.ensure_future(collect(AIOnTheBallVideoTrigger(video_id, **FAST)))
    while not await asyncio.to_thread(api_requests, aiontheball_conn, "GET"):
        await asyncio.sleep(0.02)
    await asyncio.to_thread(lambda: AIOnTheBallHook().delete_video(video_id))
    event = only_event(await task)
    assert event["status"] == "failed"
    assert f"video {video_id} no longer exists" in event["message"]


@pytest.mark.asyncio
async def test_bad_token_fails_naming_the_connection(simulator, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_AIB_BAD", connection_json(simulator.base_url, token="not-the-token"))
    event = only_event(await collect(AIOnTheBallVideoTrigger(790, aiontheball_conn_id="aib_bad", **FAST)))
    assert event["status"] == "failed"
    assert "'aib_bad'" in event["message"]
    assert "401" in event["message"]
    assert "not-the-token" not in event["message"]


@pytest.mark.asyncio
async def test_deadline_gives_one_timeout_event(aiontheball_conn):
    video_id = await asyncio.to_thread(create_video, f"{VIDEO_URL}?sim_outcome=stuck")
    started = time.time()
    trigger = AIOnTheBallVideoTrigger(video_id, end_time=started + 0.6, started_at=started - 3725, **FAST)
    event = only_event(await collect(trigger))
    assert event["status"] == "timeout"
    assert event["video_status"] == "downloading"
    assert "still downloading after 1h 2m" in event["message"], "human-readable, from the whole wait"
    assert time.time() - started < 2, "woke at the deadline, not a poll interval later"


@pytest.mark.asyncio
async def test_past_deadline_is_checked_before_evaluating(aiontheball_conn):
    video_id = await asyncio.to_thread(create_video)
    event = only_event(await collect(AIOnTheBallVideoTrigger(video_id, end_time=time.time() - 1, **FAST)))
    assert event["status"] == "timeout"
    assert api_requests(aiontheball_conn, "GET") == [], "no poll after the deadline"


@pytest.mark.asyncio
async def test_serialize_rebuild_continues_the_same_wait(aiontheball_conn):
    video_id = await asyncio.to_thread(create_video)
    end_time = time.time() + 30
    first = AIOnTheBallVideoTrigger(video_id, end_time=end_time, **FAST)
    classpath, kwargs = first.serialize()
    assert classpath == "airflow_provider_aiontheball.triggers.video.AIOnTheBallVideoTrigger"
    json.dumps(kwargs)
    # The triggerer dies mid-wait...
    task = asyncio.ensure_future(collect(first))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # ...and a new one rebuilds the trigger from the stored kwargs.
    rebuilt = AIOnTheBallVideoTrigger(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert rebuilt.end_time == end_time
    assert rebuilt.started_at == first.started_at
    event = only_event(await collect(rebuilt))
    assert event["status"] == "success"


def test_serialized_kwargs_hold_no_secret(aiontheball_conn):
    trigger = AIOnTheBallVideoTrigger(790, end_time=123.0)
    _, kwargs = trigger.serialize()
    assert set(kwargs) == {
        "video_id",
        "aiontheball_conn_id",
        "poll_interval",
        "end_time",
        "min_poll_interval",
        "max_consecutive_errors",
        "error_budget_seconds",
        "started_at",
    }
    for text in (json.dumps(kwargs), repr(trigger), str(trigger)):
        assert TOKEN not in text
        assert "Bearer" not in text


@pytest.mark.asyncio
async def test_transient_faults_within_budget_are_tolerated(aiontheball_conn, all_logs):
    video_id = await asyncio.to_thread(create_video)
    inject(aiontheball_conn, kind="status", status=503, count=2, method="GET")
    inject(aiontheball_conn, kind="drop", count=1, method="GET")
    event = only_event(await collect(AIOnTheBallVideoTrigger(video_id, **FAST)))
    assert event["status"] == "success"
    assert sum("poll failed with 503" in m for m in all_logs.messages) == 2


@pytest.mark.asyncio
async def test_transient_faults_beyond_budget_give_an_error_event(aiontheball_conn):
    video_id = await asyncio.to_thread(create_video)
    inject(aiontheball_conn, kind="status", status=502, count=50, method="GET")
    trigger = AIOnTheBallVideoTrigger(video_id, max_consecutive_errors=3, **FAST)
    event = only_event(await collect(trigger))
    assert event["status"] == "error"
    assert "3 failure(s) in a row" in event["message"]
    assert "502" in event["message"], "says what kept failing"
    assert len(api_requests(aiontheball_conn, "GET")) == 3


@pytest.mark.asyncio
async def test_error_budget_in_time(aiontheball_conn):
    video_id = await asyncio.to_thread(create_video)
    inject(aiontheball_conn, kind="status", status=500, count=500, method="GET")
    trigger = AIOnTheBallVideoTrigger(video_id, max_consecutive_errors=1000, error_budget_seconds=0.3, **FAST)
    event = only_event(await collect(trigger))
    assert event["status"] == "error"
    assert "500" in event["message"]


@pytest.mark.asyncio
async def test_retry_after_sets_the_next_interval(aiontheball_conn):
    video_id = await asyncio.to_thread(create_video)
    inject(aiontheball_conn, kind="status", status=429, retry_after="0.6", count=1, method="GET")
    event = only_event(await collect(AIOnTheBallVideoTrigger(video_id, **FAST)))
    assert event["status"] == "success"
    polls = api_requests(aiontheball_conn, "GET")
    assert polls[0]["status"] == 429
    gap = polls[1]["time"] - polls[0]["time"]
    assert gap >= 0.55, f"next poll {gap:.2f}s after the 429, as Retry-After asked (min interval is 0.02 s)"


@pytest.mark.asyncio
async def test_adaptive_interval_grows_while_nothing_changes(aiontheball_conn):
    video_id = await asyncio.to_thread(create_video, f"{VIDEO_URL}?sim_outcome=stuck")
    trigger = AIOnTheBallVideoTrigger(video_id, poll_interval=0.3, min_poll_interval=0.02, end_time=time.time() + 1.5)
    event = only_event(await collect(trigger))
    assert event["status"] == "timeout"
    times = [r["time"] for r in api_requests(aiontheball_conn, "GET")]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[-1] > gaps[1] * 3, f"backs off while the status stays the same: {gaps}"
    assert max(gaps) < 0.45, "never beyond poll_interval (plus request time)"


@pytest.mark.asyncio
async def test_cancellation_propagates_and_releases_the_session(aiontheball_conn):
    video_id = await asyncio.to_thread(create_video, f"{VIDEO_URL}?sim_outcome=stuck")
    task = asyncio.ensure_future(collect(AIOnTheBallVideoTrigger(video_id, **FAST)))
    while not await asyncio.to_thread(api_requests, aiontheball_conn, "GET"):
        await asyncio.sleep(0.02)
    assert shared_sessions.users(aiontheball_conn.base_url) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert shared_sessions.users(aiontheball_conn.base_url) == 0


@pytest.mark.asyncio
async def test_many_triggers_share_one_bounded_pool(aiontheball_conn):
    video_ids = await asyncio.to_thread(lambda: [create_video() for _ in range(200)])
    before = stats(aiontheball_conn)["connections_opened"]
    triggers = [AIOnTheBallVideoTrigger(v, **FAST) for v in video_ids]
    results = await asyncio.gather(*(collect(t, timeout=60) for t in triggers))
    assert all(only_event(events)["status"] == "success" for events in results)
    opened = stats(aiontheball_conn)["connections_opened"] - before - 1  # minus this stats call
    from airflow_provider_aiontheball.hooks._async_sessions import DEFAULT_POOL_LIMIT

    assert opened <= DEFAULT_POOL_LIMIT, f"{opened} connections for 200 concurrent triggers"
    assert shared_sessions.users(aiontheball_conn.base_url) == 0


@pytest.mark.asyncio
async def test_two_connections_share_a_session_but_not_a_token(simulator, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ORG_ONE", connection_json(simulator.base_url, token=TOKEN))
    monkeypatch.setenv("AIRFLOW_CONN_ORG_TWO", connection_json(simulator.base_url, token=OTHER_TOKEN))
    one = await asyncio.to_thread(lambda: AIOnTheBallHook("org_one").create_video(VIDEO_URL)["id"])
    two = await asyncio.to_thread(lambda: AIOnTheBallHook("org_two").create_video(VIDEO_URL)["id"])
    events = await asyncio.gather(
        collect(AIOnTheBallVideoTrigger(one, aiontheball_conn_id="org_one", **FAST)),
        collect(AIOnTheBallVideoTrigger(two, aiontheball_conn_id="org_two", **FAST)),
    )
    assert [only_event(e)["status"] for e in events] == ["success", "success"]
    orgs = {r["token_org"] for r in api_requests(simulator, "GET")}
    assert orgs == {"org-1", "org-2"}, "each poll carried its own connection's token"


@pytest.mark.asyncio
async def test_nothing_blocking_runs_on_the_event_loop(aiontheball_conn, monkeypatch):
    """Connection lookup and HTTP in the trigger never use the sync paths on the loop's thread."""
    from airflow.providers.common.compat.sdk import BaseHook

    loop_thread = threading.get_ident()
    original_get_connection = BaseHook.get_connection.__func__

    def guarded_get_connection(cls, *args, **kwargs):
        assert threading.get_ident() != loop_thread, "sync get_connection called on the event loop"
        return original_get_connection(cls, *args, **kwargs)

    def no_requests(*args, **kwargs):
        raise AssertionError("requests used inside the event loop")

    video_id = await asyncio.to_thread(create_video)
    monkeypatch.setattr(BaseHook, "get_connection", classmethod(guarded_get_connection))
    monkeypatch.setattr(requests.Session, "request", no_requests)
    monkeypatch.setattr(time, "sleep", no_requests)
    event = only_event(await collect(AIOnTheBallVideoTrigger(video_id, **FAST)))
    assert event["status"] == "success"


@pytest.mark.asyncio
async def test_missing_connection_is_an_error_event(simulator):
    event = only_event(await collect(AIOnTheBallVideoTrigger(790, aiontheball_conn_id="no_such_conn", **FAST)))
    assert event["status"] == "error"
    assert "no_such_conn" in event["message"]


@pytest.mark.asyncio
async def test_token_never_in_trigger_logs_or_events(aiontheball_conn, all_logs):
    video_id = await asyncio.to_thread(create_video)
    inject(aiontheball_conn, kind="status", status=503, count=2, method="GET")
    inject(aiontheball_conn, kind="malformed", count=1, method="GET")
    events = await collect(AIOnTheBallVideoTrigger(video_id, **FAST))
    events += await collect(AIOnTheBallVideoTrigger(999_999, **FAST))
    assert [e["status"] for e in events] == ["success", "failed"]
    assert any("poll failed" in m for m in all_logs.messages)
    for text in (all_logs.text, json.dumps(events)):
        assert TOKEN not in text


@pytest.mark.asyncio
async def test_many_triggers_fetch_the_connection_once(aiontheball_conn, monkeypatch):
    """A triggerer restart resumes many waits at once: one connection lookup serves them all."""
    from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallAsyncHook

    loads = 0
    original = AIOnTheBallAsyncHook._load_settings

    async def counting_load(self):
        nonlocal loads
        loads += 1
        return await original(self)

    monkeypatch.setattr(AIOnTheBallAsyncHook, "_load_settings", counting_load)
    video_ids = await asyncio.to_thread(lambda: [create_video() for _ in range(20)])
    results = await asyncio.gather(*(collect(AIOnTheBallVideoTrigger(v, **FAST)) for v in video_ids))
    assert [only_event(r)["status"] for r in results] == ["success"] * 20
    assert loads == 1


@pytest.mark.asyncio
async def test_a_failed_connection_lookup_is_not_shared(simulator, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_AIONTHEBALL_DEFAULT", raising=False)
    event = only_event(await collect(AIOnTheBallVideoTrigger(790, **FAST)))
    assert event["status"] == "error"
    monkeypatch.setenv("AIRFLOW_CONN_AIONTHEBALL_DEFAULT", connection_json(simulator.base_url))
    video_id = await asyncio.to_thread(create_video)
    assert only_event(await collect(AIOnTheBallVideoTrigger(video_id, **FAST)))["status"] == "success"


@pytest.mark.asyncio
async def test_shared_settings_expire():
    from airflow_provider_aiontheball.hooks._async_sessions import SharedSettings

    cache, loads = SharedSettings(ttl=0.0), []

    async def load():
        loads.append(1)
        return object()

    first = await cache.get("conn", load)
    second = await cache.get("conn", load)
    assert first is not second
    assert len(loads) == 2
    fresh = SharedSettings(ttl=60)
    assert await fresh.get("conn", load) is await fresh.get("conn", load)
