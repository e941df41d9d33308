"""One request budget per connection per triggerer: a 429 pauses every trigger on the connection, and
``max_requests_per_second`` caps them together.

The budget's own rules run on a virtual clock (injected clock and sleep: no waiting). The behaviour in an
event loop runs many triggers against the simulator and reads its request log: the simulator serves from
a thread of this process, so its timestamps are this process's ``time.monotonic``, the budget's clock.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import Counter
from typing import Any

import pytest

from airflow_provider_aiontheball.exceptions import (
    AIOnTheBallConfigurationError,
    AIOnTheBallRateLimitError,
    AIOnTheBallServerError,
)
from airflow_provider_aiontheball.hooks._async_sessions import RequestBudget, request_budgets
from airflow_provider_aiontheball.hooks._client import connection_backoff
from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallAsyncHook, AIOnTheBallHook
from airflow_provider_aiontheball.polling import Jitter
from airflow_provider_aiontheball.triggers.video import AIOnTheBallVideoTrigger
from tests.helpers import OTHER_TOKEN, TOKEN, api_requests, connection_json, inject

STUCK_URL = "https://example.com/match.mp4?sim_outcome=stuck"


class VirtualTime:
    """An injected clock and sleep: sleeping moves the clock, nothing waits. Tasks that sleep at the same
    moment all start sleeping before any wakes (a yield comes first), as on a real loop."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        start = self.now
        await asyncio.sleep(0)
        self.now = max(self.now, start + seconds)


def virtual_budget(max_per_second: float | None = None, seed: int = 1) -> tuple[RequestBudget, VirtualTime]:
    vt = VirtualTime()
    budget = RequestBudget(max_per_second, clock=vt.clock, sleep=vt.sleep, jitter=Jitter(rng=random.Random(seed)))
    return budget, vt


# -- the budget's rules, on a virtual clock -------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("seed", range(20))
async def test_a_pause_lets_nothing_through_before_the_server_s_time(seed):
    budget, vt = virtual_budget(seed=seed)
    budget.pause(10.0)
    await budget.acquire()
    assert 110.0 <= vt.now < 120.0, "the server's 10 s, never shortened; spread over at most as long again"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("pause", "window"),
    [pytest.param(10.0, 10.0, id="10s-over-10s"), pytest.param(300.0, 60.0, id="300s-over-at-most-60s")],
)
async def test_held_back_requests_resume_spread_over_the_pause_never_before_its_end(pause, window):
    """1,000 polls held by a pause do not all go out at its last instant, but as fast as they came due."""
    budget, vt = virtual_budget()
    budget.pause(pause)
    await asyncio.gather(*(budget.acquire() for _ in range(1000)))
    assert len(vt.sleeps) == 1000
    assert all(pause <= s < pause + window for s in vt.sleeps)
    per_tenth = Counter(int((s - pause) / window * 10) for s in vt.sleeps)
    assert len(per_tenth) == 10, per_tenth
    assert max(per_tenth.values()) <= 2 * 100, per_tenth


@pytest.mark.asyncio
async def test_a_shorter_pause_never_shortens_a_running_one():
    budget, vt = virtual_budget()
    assert budget.pause(10.0) is True
    assert budget.pause(2.0) is False, "already paused for longer: nothing to log"
    assert budget.paused_for() == 10.0
    vt.now += 5
    assert budget.pause(8.0) is True, "ends later than the first: extended"
    assert budget.paused_for() == 8.0
    assert budget.paused_at == 100.0, "still the same pause"


@pytest.mark.asyncio
async def test_without_a_pause_or_a_cap_nothing_waits():
    budget, vt = virtual_budget()
    for _ in range(100):
        await budget.acquire()
    assert vt.now == 100.0


@pytest.mark.asyncio
@pytest.mark.parametrize("rate", [pytest.param(4.0, id="4-per-s"), pytest.param(0.5, id="1-per-2s")])
async def test_the_cap_allows_at_most_its_rate_in_any_second(rate):
    budget, vt = virtual_budget(max_per_second=rate)
    granted = []
    for _ in range(40):
        await budget.acquire()
        granted.append(vt.now)
    for start in granted:
        assert sum(start <= t < start + 1.0 for t in granted) <= max(1, rate)
    assert all(b - a >= 1 / rate - 1e-9 for a, b in itertools.pairwise(granted))
    assert granted[-1] - granted[0] == pytest.approx(39 / rate), "and no slower than the cap"


def test_what_asks_the_whole_connection_to_back_off():
    assert connection_backoff(429, 7.0) == 7.0
    assert connection_backoff(429, None) == 1.0, "a 429 without Retry-After: the 1-s floor"
    assert connection_backoff(503, 7.0) == 7.0
    assert connection_backoff(503, None) is None, "a bare 503 concerns one wait only"
    assert connection_backoff(500, 7.0) is None
    assert connection_backoff(502, 7.0) is None


@pytest.mark.asyncio
async def test_a_cancelled_waiter_propagates_and_frees_its_turn():
    budget = RequestBudget(0.5)  # real clock and asyncio.sleep: a turn every 2 s
    await budget.acquire()
    waiting = asyncio.create_task(budget.acquire())
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    budget.pause(30)
    paused = asyncio.create_task(budget.acquire())
    await asyncio.sleep(0.05)
    paused.cancel()
    with pytest.raises(asyncio.CancelledError):
        await paused
    assert not budget._turn.locked()


def test_one_budget_per_event_loop_and_connection():
    async def budgets() -> tuple[RequestBudget, RequestBudget, RequestBudget]:
        return request_budgets.get("one"), request_budgets.get("one"), request_budgets.get("two")

    one, same, two = asyncio.run(budgets())
    assert one is same
    assert one is not two
    other_loop, _, _ = asyncio.run(budgets())
    assert other_loop is not one


@pytest.mark.asyncio
async def test_the_cap_follows_the_connection_s_current_setting():
    budget = request_budgets.get("rate_changes", 5.0)
    assert budget.max_per_second == 5.0
    assert request_budgets.get("rate_changes", None) is budget
    assert budget.max_per_second is None


# -- many triggers in one event loop, against the simulator ----------------------------------------------


def create_stuck_videos(conn_id: str, count: int) -> list[int]:
    with AIOnTheBallHook(conn_id) as hook:
        return [hook.create_video(STUCK_URL)["id"] for _ in range(count)]


async def run_triggers(triggers: list[AIOnTheBallVideoTrigger]) -> list[dict[str, Any]]:
    async def consume(trigger: AIOnTheBallVideoTrigger) -> dict[str, Any]:
        events = [event.payload async for event in trigger.run()]
        assert len(events) == 1
        return events[0]

    return await asyncio.wait_for(asyncio.gather(*(consume(t) for t in triggers)), 30)


@pytest.fixture
def two_connections(simulator, monkeypatch):
    """``aib_one`` (organisation 1) and ``aib_two`` (organisation 2) on the same simulator."""
    monkeypatch.setenv("AIRFLOW_CONN_AIB_ONE", connection_json(simulator.base_url, token=TOKEN))
    monkeypatch.setenv("AIRFLOW_CONN_AIB_TWO", connection_json(simulator.base_url, token=OTHER_TOKEN))
    return simulator


@pytest.mark.asyncio
async def test_one_429_pauses_every_trigger_on_its_connection_and_no_other(two_connections, monkeypatch, all_logs):
    server = two_connections
    ones = await asyncio.to_thread(create_stuck_videos, "aib_one", 10)
    twos = await asyncio.to_thread(create_stuck_videos, "aib_two", 3)
    end_time = time.time() + 3.0
    fast = {"poll_interval": 0.05, "min_poll_interval": 0.05, "end_time": end_time}
    triggers = [AIOnTheBallVideoTrigger(v, aiontheball_conn_id="aib_one", **fast) for v in ones]
    triggers += [AIOnTheBallVideoTrigger(v, aiontheball_conn_id="aib_two", **fast) for v in twos]
    monkeypatch.setattr(time, "sleep", lambda seconds: pytest.fail("time.sleep on the event loop"))
    running = asyncio.ensure_future(run_triggers(triggers))
    while len(await asyncio.to_thread(api_requests, server, "GET")) < 30:  # every trigger polling
        await asyncio.sleep(0.02)
    await asyncio.to_thread(
        inject, server, kind="status", status=429, retry_after="1", count=1, method="GET", path=f"/videos/{ones[0]}"
    )
    events = await running
    assert {e["status"] for e in events} == {"timeout"}, "nothing else went wrong"

    logged = api_requests(server, "GET")
    (refused,) = [r for r in logged if r["status"] == 429]
    paused_at = request_budgets.get("aib_one").paused_at
    assert paused_at is not None
    assert refused["time"] <= paused_at, "same clock: the client paused after the server answered"
    one = [r for r in logged if r["token_org"] == "org-1" and r["time"] > refused["time"]]
    in_flight = [r for r in one if r["time"] < refused["time"] + 1.0]
    # Sent before the client saw the 429: at most one per trigger, and they arrived at once.
    assert max(Counter(r["path"] for r in in_flight).values(), default=0) <= 1, in_flight
    assert all(r["time"] < paused_at + 0.1 for r in in_flight), in_flight
    resumed = [r for r in one if r["time"] >= paused_at + 0.1]
    assert resumed, "the connection resumed after the pause"
    assert min(r["time"] for r in resumed) >= paused_at + 1.0, "nothing new was sent for the server's 1 s"
    two = [r for r in logged if r["token_org"] == "org-2" and refused["time"] < r["time"] < paused_at + 1.0]
    assert len(two) >= 10, f"the other connection kept polling during the pause ({len(two)} requests)"
    assert sum("poll failed with 429" in m for m in all_logs.messages) == 1, "only the trigger that was refused"
    assert sum("asked connection 'aib_one' to back off" in m for m in all_logs.messages) == 1


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("status", "retry_after", "pause"),
    [
        pytest.param(429, "2", 2.0, id="429-retry-after"),
        pytest.param(429, None, 1.0, id="429-bare-pauses-1s"),
        pytest.param(503, "2", 2.0, id="503-retry-after"),
        pytest.param(503, None, 0.0, id="503-bare-no-pause"),
        pytest.param(500, "2", 0.0, id="500-no-pause"),
    ],
)
async def test_which_answers_pause_the_connection(two_connections, status, retry_after, pause):
    (video_id,) = await asyncio.to_thread(create_stuck_videos, "aib_one", 1)
    inject(two_connections, kind="status", status=status, retry_after=retry_after, count=1, method="GET")
    async with AIOnTheBallAsyncHook("aib_one", retry_limit=0) as hook:
        with pytest.raises(AIOnTheBallRateLimitError if status == 429 else AIOnTheBallServerError):
            await hook.get_video(video_id)
    paused_for = request_budgets.get("aib_one").paused_for()
    assert pause - 0.5 < paused_for <= pause if pause else paused_for == 0.0
    assert request_budgets.get("aib_two").paused_for() == 0.0


@pytest.mark.asyncio
async def test_max_requests_per_second_caps_the_whole_connection(two_connections, monkeypatch):
    server = two_connections
    monkeypatch.setenv(
        "AIRFLOW_CONN_AIB_CAPPED", connection_json(server.base_url, token=TOKEN, max_requests_per_second=5)
    )
    capped = await asyncio.to_thread(create_stuck_videos, "aib_one", 20)
    free = await asyncio.to_thread(create_stuck_videos, "aib_two", 3)
    end_time = time.time() + 2.2
    fast = {"poll_interval": 0.02, "min_poll_interval": 0.02, "end_time": end_time}
    triggers = [AIOnTheBallVideoTrigger(v, aiontheball_conn_id="aib_capped", **fast) for v in capped]
    triggers += [AIOnTheBallVideoTrigger(v, aiontheball_conn_id="aib_two", **fast) for v in free]
    events = await run_triggers(triggers)
    assert {e["status"] for e in events} == {"timeout"}
    logged = api_requests(server, "GET")
    times = sorted(r["time"] for r in logged if r["token_org"] == "org-1")
    # Spaced >= 0.2 s when sent; a window 50 ms short of a second absorbs the loopback's arrival jitter.
    busiest = max(sum(start <= t < start + 0.95 for t in times) for start in times)
    assert busiest <= 5, f"{busiest} requests within one second"
    assert len(times) >= 8, f"capped, not starved: {len(times)} requests in 2.2 s"
    assert sum(r["token_org"] == "org-2" for r in logged) > 3 * len(times), "other connections are not capped"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "value",
    [
        pytest.param("fast", id="word"),
        pytest.param(0, id="zero"),
        pytest.param(-2, id="negative"),
        pytest.param(True, id="boolean"),
        pytest.param("inf", id="infinite"),
    ],
)
async def test_a_bad_max_requests_per_second_fails_naming_it_before_any_request(simulator, monkeypatch, value):
    monkeypatch.setenv("AIRFLOW_CONN_AIB_BAD", connection_json(simulator.base_url, max_requests_per_second=value))
    (event,) = [e.payload async for e in AIOnTheBallVideoTrigger(790, aiontheball_conn_id="aib_bad").run()]
    assert event["status"] == "error"
    assert "max_requests_per_second" in event["message"]
    assert "'aib_bad'" in event["message"]
    with pytest.raises(AIOnTheBallConfigurationError, match="max_requests_per_second"):
        await asyncio.to_thread(lambda: AIOnTheBallHook("aib_bad").get_video(790))
    assert api_requests(simulator) == [], "refused before any request"


def test_tasks_accept_the_extra_and_are_not_capped(simulator, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_AIB_CAPPED", connection_json(simulator.base_url, max_requests_per_second=0.5))
    with AIOnTheBallHook("aib_capped") as hook:
        assert hook.settings.max_requests_per_second == 0.5
        video_id = hook.create_video(STUCK_URL)["id"]
        for _ in range(3):
            assert hook.get_video(video_id)["id"] == video_id
    times = [r["time"] for r in api_requests(simulator)]
    assert times[-1] - times[0] < 2.0, "the sync hook does not apply the triggerer's cap (0.5/s would take 6 s)"
