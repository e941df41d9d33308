"""Jitter on every polling schedule: bounded, seeded in tests, never shortening Retry-After or the deadline.

Pure parts run on a virtual wall clock and seeded ``random.Random`` (no sleeping); the triggerer's first
poll is checked against the simulator's request log, whose clock is this process's ``time.monotonic``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_aiontheball.defaults import DEFAULT_POLL_JITTER
from airflow_provider_aiontheball.exceptions import AIOnTheBallRateLimitError, AIOnTheBallServerError
from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallHook
from airflow_provider_aiontheball.polling import Jitter
from airflow_provider_aiontheball.waiting import (
    ANALYSIS_WAIT,
    VIDEO_WAIT,
    EventStatus,
    Wait,
    WaitPolicy,
    WaitSettings,
    poke,
    wait_in_process,
    wait_in_triggerer,
)
from tests.helpers import api_requests

LOG = logging.getLogger("tests.jitter")
F = DEFAULT_POLL_JITTER
SEEDS = range(200)
VIDEO_SETTINGS = WaitSettings(poll_interval=60.0, min_poll_interval=5.0)
ANALYSIS_SETTINGS = WaitSettings(poll_interval=1800.0, min_poll_interval=45.0)


class VirtualClock:
    """A wall clock that only moves when told to."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_wait(
    policy: WaitPolicy,
    settings: WaitSettings,
    jitter: Jitter,
    clock: VirtualClock | None = None,
    end_time: float | None = None,
) -> Wait:
    clock = clock or VirtualClock()
    return Wait(
        policy,
        1,
        "aiontheball_default",
        LOG,
        settings,
        started_at=clock(),
        end_time=end_time,
        wall_clock=clock,
        jitter=jitter,
    )


def rate_limited(retry_after: float | None) -> AIOnTheBallRateLimitError:
    return AIOnTheBallRateLimitError(
        status_code=429, method="GET", path="/videos/1", detail="Too Many Attempts.", retry_after=retry_after
    )


def server_error() -> AIOnTheBallServerError:
    return AIOnTheBallServerError(status_code=503, method="GET", path="/videos/1", detail="Service Unavailable")


#: A step: (seconds on the virtual clock since the previous poll, what the poll returned).
Step = tuple[float, Any]


def video(status: str) -> dict[str, Any]:
    return {"id": 1, "status": status}


def analysis(status: str, progress: float | None) -> dict[str, Any]:
    return {"id": 1, "status": status, "progress": progress}


SCENARIOS: dict[str, tuple[WaitPolicy, WaitSettings, list[Step]]] = {
    "video-after-each-change": (
        VIDEO_WAIT,
        VIDEO_SETTINGS,
        [(0, video("init")), (5, video("downloading")), (5, video("locally_available"))],
    ),
    "video-growing-to-cap": (VIDEO_WAIT, VIDEO_SETTINGS, [(10, video("downloading")) for _ in range(12)]),
    "video-failures-back-off": (
        VIDEO_WAIT,
        VIDEO_SETTINGS,
        [(0, video("downloading"))] + [(5, server_error()) for _ in range(6)],
    ),
    "analysis-far-from-finish": (
        ANALYSIS_WAIT,
        ANALYSIS_SETTINGS,
        [(600, analysis("running", p)) for p in (1, 4, 7, 10, 13)],
    ),
    "analysis-near-finish": (
        ANALYSIS_WAIT,
        ANALYSIS_SETTINGS,
        [(600, analysis("running", p)) for p in (10, 40, 70, 96, 97, 97.5, 98)],
    ),
    "analysis-stalled-at-99": (
        ANALYSIS_WAIT,
        ANALYSIS_SETTINGS,
        [(600, analysis("aggregating", p)) for p in (20, 50, 80, 99, 99, 99, 99, 99, 99)],
    ),
    "analysis-without-progress": (
        ANALYSIS_WAIT,
        ANALYSIS_SETTINGS,
        [(60, analysis("waiting_for_video", None)) for _ in range(8)],
    ),
}


def run(policy: WaitPolicy, settings: WaitSettings, steps: list[Step], jitter: Jitter) -> tuple[Wait, list[float]]:
    """The delays a wait decides for ``steps``, on a virtual clock (the steps fix when each poll happens)."""
    clock = VirtualClock()
    wait = make_wait(policy, settings, jitter, clock)
    delays = []
    for elapsed, polled in steps:
        clock.now += elapsed
        decision = wait.decide(polled)
        assert decision.status is None, decision.message
        delays.append(decision.delay)
    return wait, delays


@pytest.mark.parametrize("name", list(SCENARIOS), ids=list(SCENARIOS))
def test_every_interval_stays_within_its_jitter_bounds(name):
    """Each delay is its schedule's interval times [1 - f, 1 + f], within the schedule's min and max."""
    policy, settings, steps = SCENARIOS[name]
    unjittered, nominal = run(policy, settings, steps, Jitter(fraction=0.0))
    floor, cap = unjittered.schedule.min_interval, unjittered.schedule.max_interval
    per_step: list[list[float]] = [[] for _ in steps]
    for seed in SEEDS:
        _, delays = run(policy, settings, steps, Jitter(rng=random.Random(seed)))
        for index, delay in enumerate(delays):
            per_step[index].append(delay)
    for expected, seen in zip(nominal, per_step, strict=True):
        assert all(expected * (1 - F) <= d <= expected * (1 + F) for d in seen), (expected, min(seen), max(seen))
        assert all(min(floor, expected) <= d <= max(cap, expected) for d in seen), (floor, cap, min(seen), max(seen))
        if floor < expected < cap:
            # Jittered for real, on both sides, not just clamped back to the interval.
            assert min(seen) < expected < max(seen), (expected, min(seen), max(seen))


def test_a_user_s_longest_interval_stays_the_longest():
    _, delays = run(*SCENARIOS["video-growing-to-cap"][:2], SCENARIOS["video-growing-to-cap"][2], Jitter())
    assert max(delays) <= VIDEO_SETTINGS.poll_interval
    assert delays[-1] >= VIDEO_SETTINGS.poll_interval * (1 - F)


@pytest.mark.parametrize(
    ("min_poll_interval", "spread"),
    [
        pytest.param(5.0, 5.0, id="video-default-5s"),
        pytest.param(45.0, 45.0, id="analysis-default-45s"),
        pytest.param(600.0, 60.0, id="long-first-interval-capped-at-60s"),
    ],
)
def test_first_polls_of_1000_waits_spread_over_one_interval(min_poll_interval, spread):
    """1,000 waits deferred in the same second: no 1-s window gets more than twice its share."""
    seeds = random.Random(2024)
    settings = WaitSettings(poll_interval=max(60.0, min_poll_interval), min_poll_interval=min_poll_interval)
    delays = [
        make_wait(VIDEO_WAIT, settings, Jitter(rng=random.Random(seeds.random()))).first_poll_delay()
        for _ in range(1000)
    ]
    assert all(0.0 <= d < spread for d in delays)
    per_second = Counter(int(d) for d in delays)
    mean = len(delays) / spread
    assert max(per_second.values()) <= 2 * mean, per_second.most_common(3)
    assert len(per_second) == int(spread), "every second of the interval gets polls"


@pytest.mark.parametrize(
    ("policy", "settings", "retry_after"),
    [
        pytest.param(VIDEO_WAIT, VIDEO_SETTINGS, 1.0, id="video-1s"),
        pytest.param(VIDEO_WAIT, VIDEO_SETTINGS, 7.5, id="video-7.5s"),
        pytest.param(VIDEO_WAIT, VIDEO_SETTINGS, 300.0, id="video-300s-beyond-the-cap"),
        pytest.param(ANALYSIS_WAIT, ANALYSIS_SETTINGS, 2.0, id="analysis-2s-below-the-floor"),
    ],
)
def test_retry_after_is_never_shortened(policy, settings, retry_after):
    for seed in SEEDS:
        wait = make_wait(policy, settings, Jitter(rng=random.Random(seed)))
        decision = wait.decide(rate_limited(retry_after))
        assert retry_after <= decision.delay <= retry_after * (1 + F)


def test_the_deadline_is_honoured_exactly():
    clock = VirtualClock()
    wait = make_wait(VIDEO_WAIT, VIDEO_SETTINGS, Jitter(rng=random.Random(1)), clock, end_time=clock() + 0.25)
    assert wait.first_poll_delay() <= 0.25
    assert wait.decide(video("downloading")).delay == pytest.approx(0.25)
    assert wait.decide(rate_limited(10.0)).delay == pytest.approx(0.25), "Retry-After does not outlast the deadline"
    clock.now += 0.25
    assert wait.first_poll_delay() == 0.0
    assert wait.expired() is not None


@pytest.mark.asyncio
async def test_a_first_poll_delayed_past_the_deadline_ends_on_time_without_polling(aiontheball_conn):
    """The first-poll delay is bounded by the deadline: a wait resumed just before it times out on time."""
    video_id = await asyncio.to_thread(lambda: AIOnTheBallHook().create_video("https://example.com/a.mp4")["id"])
    settings = WaitSettings(poll_interval=60.0, min_poll_interval=50.0)
    seed = next(s for s in SEEDS if Jitter(rng=random.Random(s)).first_poll(50.0) > 5)  # well past the deadline
    started = time.time()
    wait = Wait(VIDEO_WAIT, video_id, "aiontheball_default", LOG, settings, end_time=started + 0.3,
                jitter=Jitter(rng=random.Random(seed)))  # fmt: skip
    decision = await wait_in_triggerer(wait, lambda hook: hook.get_video(video_id))
    assert decision.status is EventStatus.TIMEOUT
    assert time.time() - started < 2.0, "woke at the deadline, not after the first-poll delay"
    assert api_requests(aiontheball_conn, "GET") == []


@pytest.mark.asyncio
async def test_the_triggerer_s_first_poll_waits_its_seeded_spread(aiontheball_conn):
    video_id = await asyncio.to_thread(lambda: AIOnTheBallHook().create_video("https://example.com/b.mp4")["id"])
    settings = WaitSettings(poll_interval=0.5, min_poll_interval=0.5)
    expected = Jitter(rng=random.Random(5)).first_poll(0.5)
    wait = Wait(VIDEO_WAIT, video_id, "aiontheball_default", LOG, settings, jitter=Jitter(rng=random.Random(5)))
    assert wait.first_poll_delay() == expected
    wait = Wait(VIDEO_WAIT, video_id, "aiontheball_default", LOG, settings, jitter=Jitter(rng=random.Random(5)))
    started = time.monotonic()  # the simulator's clock, in this process
    decision = await wait_in_triggerer(wait, lambda hook: hook.get_video(video_id))
    assert decision.status is EventStatus.SUCCESS
    first = api_requests(aiontheball_conn, "GET")[0]["time"]
    assert first - started >= expected - 0.001, (first - started, expected)


def test_sync_pokes_and_in_process_waits_poll_at_once(aiontheball_conn):
    """No first-poll delay outside the triggerer: a poke polls immediately, and so does an in-process wait."""
    with AIOnTheBallHook() as hook:
        video_id = hook.create_video("https://example.com/c.mp4")["id"]
        settings = WaitSettings(poll_interval=0.1, min_poll_interval=0.02)
        assert poke(Wait(VIDEO_WAIT, video_id, "aiontheball_default", LOG, settings),
                    lambda: hook.get_video(video_id), {}, reschedule=False) is None  # fmt: skip
        assert len(api_requests(aiontheball_conn, "GET")) == 1
        sleeps: list[float] = []

        def sleep(seconds: float) -> None:
            sleeps.append(seconds)
            time.sleep(seconds)  # the simulator's video moves on in real time

        wait = Wait(VIDEO_WAIT, video_id, "aiontheball_default", LOG, settings)
        polls_before = len(api_requests(aiontheball_conn, "GET"))
        assert wait_in_process(wait, lambda: hook.get_video(video_id), sleep=sleep)["status"] == "available"
        polls = len(api_requests(aiontheball_conn, "GET")) - polls_before
        assert polls == len(sleeps) + 1, "a poll before every sleep: the first one at once"


def schedule_of(seed: int) -> tuple[float, list[float]]:
    jitter = Jitter(rng=random.Random(seed))
    policy, settings, steps = SCENARIOS["video-growing-to-cap"]
    first = make_wait(policy, settings, jitter).first_poll_delay()
    _, delays = run(policy, settings, steps, jitter)
    return first, delays


def test_same_seed_same_schedule():
    assert schedule_of(42) == schedule_of(42)
    assert schedule_of(42) != schedule_of(43)


def test_production_draws_from_one_unseeded_source_and_a_fork_reseeds_it():
    """No Mersenne Twister per wait (2.5 KB each); a forked worker does not repeat its parent's jitter."""
    import os

    from airflow_provider_aiontheball.polling import DEFAULT_JITTER

    make: Callable[[], Wait] = lambda: Wait(VIDEO_WAIT, 1, "c", LOG, VIDEO_SETTINGS)  # noqa: E731
    assert make().jitter.rng is make().jitter.rng is DEFAULT_JITTER.rng
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next draw, then exit at once
        os.write(write, repr(DEFAULT_JITTER.rng.random()).encode())
        os._exit(0)
    os.close(write)
    child = float(os.read(read, 64))
    os.close(read)
    os.waitpid(pid, 0)
    assert child != DEFAULT_JITTER.rng.random()


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"fraction": 1.0}, id="fraction-1"),
        pytest.param({"fraction": -0.1}, id="fraction-negative"),
        pytest.param({"max_spread": -1.0}, id="spread-negative"),
    ],
)
def test_jitter_rejects_unbounded_settings(kwargs):
    with pytest.raises(ValueError):
        Jitter(**kwargs)
