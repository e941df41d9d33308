"""Triggerer scale: N waiting video triggers in one event loop, ours against an HttpAsyncHook baseline.

For each scenario (N, and whether trigger starts are spread over one poll interval or all at once)
and each side (ours, the baseline, optionally the diagnostic ``hook`` and ``floor``; repeated in
interleaved rounds where asked) this script:

1. starts a fresh simulator **process** (its CPU never counts against the client) whose videos take
   ``3 * step`` seconds to become ``available``;
2. creates the N videos over HTTP from this (orchestrating) process and notes, from the simulator's
   request log, when each video was created, hence when it becomes available;
3. starts a **fresh worker process** (so peak RSS of one side never mixes with the other's) that runs
   the N triggers the way the triggerer does: each ``trigger.run()`` async generator consumed by its
   own task in one event loop, created one after the other with an ``await asyncio.sleep(0)`` in
   between (as ``TriggerRunner.create_triggers`` does);
4. reads, around the measured window only: process CPU time, RSS before and peak RSS
   (``/proc/self/status`` ``VmRSS``/``VmHWM``, the peak reset with ``clear_refs``), event-loop lag (a
   ticker sleeping 10 ms records its overshoot), the simulator's counters (API requests, TCP
   connections opened), and the time each trigger's event arrived.

Both sides poll with the same fixed interval ``P``: ours as
``AIOnTheBallVideoTrigger(poll_interval=P, min_poll_interval=P)`` (the adaptive schedule then never
changes the interval), the baseline as ``while True: await hook.run(...); ...; await asyncio.sleep(P)``
with ``airflow.providers.http.hooks.http.HttpAsyncHook`` (which opens a new aiohttp ``ClientSession``,
so a new TCP connection, per call), the shape of the Apache SaaS providers' triggers.

Two figures of their own (ours only, 1,000 triggers on videos that never finish, one run each):

* **burst**: all 1,000 started in the same second, polling at a fixed 5 s (the video trigger's default
  first interval); requests per 1-s window over the first five intervals, from the simulator's log.
  The first poll's jitter should spread them over one interval: busiest second <= 2x the mean rate
  (before it, all 1,000 first polls fell into the first second: 5x).
* **back-pressure**: 1,000 polling every 2 s; one 429 with ``Retry-After: 10`` answered to one of them.
  Requests on the connection during those 10 s: only those already in flight, no new poll.

Run ``python benchmarks/bench_triggerer.py`` (``--smoke`` for a tiny run, ``--help`` for options;
``--figures-only`` for the two figures, ~1 min).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from array import array
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    SimulatorProcess,
    airflow_home,
    base_parser,
    child_env,
    distribution_installed,
    fmt,
    machine_info,
    median,
    new_token,
    percentile,
    proc_status_kib,
    ratio,
    reset_peak_rss,
    table,
    write_json,
)

NAME = "triggerer"
OUR_CONN_ID = "aib_bench"
HTTP_CONN_ID = "aib_bench_http"
SIDES = ("ours", "baseline")
#: Diagnostic sides that split our cost per poll into layers (see ``HookOnlyPoller``, ``FloorPoller``).
DIAGNOSTIC_SIDES = ("hook", "floor")
STARTS = ("spread", "burst")
TICK_SECONDS = 0.010
RSS_SAMPLE_SECONDS = 0.25
#: Statuses after which a video will never become available (as ``statuses.VIDEO_STATUSES``).
VIDEO_FAILED = frozenset({"error", "no_match_detected"})
FIGURES = ("burst", "backpressure")
#: The figures' triggers: 1,000, polling at a fixed interval (poll_interval = min_poll_interval, so the
#: interval jitter is clamped away and only the first poll's spread and the shared back-off act).
FIGURE_N = 1000
#: Burst: the video trigger's default first interval (``min_poll_interval`` = 5 s), five of them (25 s).
BURST_POLL_S = 5.0
BURST_INTERVALS = 5
#: Back-pressure: a 2-s interval (500 polls/s on one connection), one 429 with ``Retry-After: 10``.
BACKPRESSURE_POLL_S = 2.0
BACKPRESSURE_RETRY_AFTER_S = 10
#: A request the simulator logged this soon after the client recorded the pause was already sent (in
#: flight): loopback transit plus the simulator's queue, generously; anything later is a new poll.
IN_FLIGHT_GRACE_S = 0.25
#: Smoke: (N, burst interval, back-pressure interval, Retry-After); the numbers mean nothing.
SMOKE_FIGURES = (10, 0.5, 0.5, 1)


def baseline_available() -> bool:
    """Whether ``apache-airflow-providers-http`` (the baseline's ``HttpAsyncHook``) is installed."""
    return distribution_installed("apache-airflow-providers-http")


# ==================================================================================================
# Worker process: runs one side and measures it
# ==================================================================================================


def make_baseline_trigger_class() -> type:
    """The baseline trigger, built lazily so the orchestrating process never imports Airflow."""
    from airflow.providers.http.hooks.http import HttpAsyncHook
    from airflow.triggers.base import BaseTrigger, TriggerEvent

    class HttpAsyncHookVideoTrigger(BaseTrigger):
        """A typical SaaS-provider trigger: ``HttpAsyncHook.run()`` per poll, then a fixed sleep."""

        def __init__(self, video_id: int, http_conn_id: str, poll_interval: float) -> None:
            super().__init__()
            self.video_id = video_id
            self.http_conn_id = http_conn_id
            self.poll_interval = poll_interval

        def serialize(self) -> tuple[str, dict[str, Any]]:
            return (
                f"{__name__}.HttpAsyncHookVideoTrigger",
                {"video_id": self.video_id, "http_conn_id": self.http_conn_id, "poll_interval": self.poll_interval},
            )

        async def run(self) -> AsyncIterator[TriggerEvent]:
            hook = HttpAsyncHook(method="GET", http_conn_id=self.http_conn_id)
            try:
                while True:
                    response = await hook.run(
                        endpoint=f"api/v1/videos/{self.video_id}", headers={"Accept": "application/json"}
                    )
                    video = (await response.json())["data"]
                    status = video["status"]
                    if status == "available":
                        yield TriggerEvent({"status": "success", "video_id": self.video_id, "video": video})
                        return
                    if status in VIDEO_FAILED:
                        yield TriggerEvent({"status": "failed", "video_id": self.video_id, "video_status": status})
                        return
                    await asyncio.sleep(self.poll_interval)
            except Exception as exc:
                yield TriggerEvent({"status": "error", "video_id": self.video_id, "message": str(exc)})

    return HttpAsyncHookVideoTrigger


class HookOnlyPoller:
    """Diagnostic side ``hook``: our async hook in a bare loop (no trigger, observer, logging, schedule).

    The difference to ``ours`` is what the trigger layer costs per poll.
    """

    def __init__(self, video_id: int, poll_interval: float) -> None:
        self.video_id = video_id
        self.poll_interval = poll_interval

    async def run(self) -> AsyncIterator[dict[str, Any]]:
        from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallAsyncHook

        async with AIOnTheBallAsyncHook(OUR_CONN_ID, retry_limit=0) as hook:
            while True:
                video = await hook.get_video(self.video_id)
                if video["status"] == "available" or video["status"] in VIDEO_FAILED:
                    yield {"status": "success" if video["status"] == "available" else "failed", "video": video}
                    return
                await asyncio.sleep(self.poll_interval)


class FloorPoller:
    """Diagnostic side ``floor``: one shared aiohttp session, a bare GET + JSON decode per poll.

    The least any aiohttp-based trigger can spend per poll; the difference to ``hook`` is what our
    client layer (settings, tenacity, response interpretation) costs.
    """

    _session: Any = None

    def __init__(self, video_id: int, poll_interval: float) -> None:
        self.video_id = video_id
        self.poll_interval = poll_interval

    @classmethod
    def session(cls) -> Any:
        import aiohttp

        if cls._session is None:
            connector = aiohttp.TCPConnector(limit=32, limit_per_host=32, keepalive_timeout=75.0)
            cls._session = aiohttp.ClientSession(connector=connector)
        return cls._session

    async def get(self) -> dict[str, Any]:
        conn = json.loads(os.environ[f"AIRFLOW_CONN_{OUR_CONN_ID.upper()}"])
        url = f"{conn['host']}/videos/{self.video_id}"
        headers = {"Authorization": f"Bearer {conn['password']}", "Accept": "application/json"}
        async with self.session().get(url, headers=headers) as response:
            return json.loads(await response.read())["data"]

    async def run(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            video = await self.get()
            if video["status"] == "available" or video["status"] in VIDEO_FAILED:
                yield {"status": "success" if video["status"] == "available" else "failed", "video": video}
                return
            await asyncio.sleep(self.poll_interval)


async def warm_up(side: str, video_id: int) -> None:
    """One request through the side's client before measuring, so lazy imports are not counted."""
    if side in ("ours", "hook"):
        from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallAsyncHook

        async with AIOnTheBallAsyncHook(OUR_CONN_ID, retry_limit=0) as hook:
            await hook.get_video(video_id)
    elif side == "floor":
        await FloorPoller(video_id, 0.0).get()
    else:
        from airflow.providers.http.hooks.http import HttpAsyncHook

        response = await HttpAsyncHook(method="GET", http_conn_id=HTTP_CONN_ID).run(
            endpoint=f"api/v1/videos/{video_id}", headers={"Accept": "application/json"}
        )
        await response.json()


def trigger_factory(side: str, poll: float) -> Callable[[int], Any]:
    if side == "ours":
        from airflow_provider_aiontheball.triggers.video import AIOnTheBallVideoTrigger

        return lambda video_id: AIOnTheBallVideoTrigger(
            video_id, aiontheball_conn_id=OUR_CONN_ID, poll_interval=poll, min_poll_interval=poll
        )
    if side == "hook":
        return lambda video_id: HookOnlyPoller(video_id, poll)
    if side == "floor":
        return lambda video_id: FloorPoller(video_id, poll)
    trigger_class = make_baseline_trigger_class()
    return lambda video_id: trigger_class(video_id, HTTP_CONN_ID, poll)


class LoopProbe:
    """Event-loop lag ticker, RSS sampler and garbage-collector timer, for calibration and measurement."""

    def __init__(self) -> None:
        self.lag_times = array("d")
        self.lags = array("d")
        self.rss_max_kib = 0
        self.gc_counts = [0, 0, 0]
        self.gc_pauses = [array("d"), array("d"), array("d")]
        self._gc_started = 0.0
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._stop.clear()
        self._tasks = [asyncio.create_task(self._tick()), asyncio.create_task(self._sample_rss())]
        gc.callbacks.append(self._on_gc)

    async def stop(self) -> None:
        gc.callbacks.remove(self._on_gc)
        self._stop.set()
        await asyncio.gather(*self._tasks)

    def clear(self) -> None:
        self.lag_times = array("d")
        self.lags = array("d")
        self.rss_max_kib = 0
        self.gc_counts = [0, 0, 0]
        self.gc_pauses = [array("d"), array("d"), array("d")]

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
            return
        generation = info["generation"]
        self.gc_counts[generation] += 1
        self.gc_pauses[generation].append(time.perf_counter() - self._gc_started)

    def gc_summary(self) -> dict[str, Any]:
        return {
            f"gen{generation}": {
                "collections": self.gc_counts[generation],
                "max_pause_ms": max(self.gc_pauses[generation], default=0.0) * 1000,
                "total_pause_ms": sum(self.gc_pauses[generation]) * 1000,
            }
            for generation in range(3)
        }

    async def _tick(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            await asyncio.sleep(TICK_SECONDS)
            now = time.perf_counter()
            self.lag_times.append(now)
            self.lags.append(max(0.0, now - started - TICK_SECONDS))

    async def _sample_rss(self) -> None:
        while not self._stop.is_set():
            self.rss_max_kib = max(self.rss_max_kib, proc_status_kib("VmRSS") or 0)
            await asyncio.sleep(RSS_SAMPLE_SECONDS)


def machine_cpu_jiffies() -> tuple[int, int] | None:
    """(busy, total) jiffies of all cores from ``/proc/stat``, or ``None`` off Linux."""
    try:
        with open("/proc/stat") as handle:
            fields = [int(x) for x in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_fraction(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def control_stats(control_url: str) -> dict[str, int]:
    """Simulator counters over one fresh connection (counted in the answer itself)."""
    import urllib.request

    with urllib.request.urlopen(control_url + "/stats", timeout=60) as response:
        return json.loads(response.read())


async def measure(
    side: str,
    videos: list[dict[str, Any]],
    poll: float,
    control_url: str,
    calibrate_s: float,
    start: str,
    gc_freeze: bool = False,
) -> dict[str, Any]:
    make_trigger = trigger_factory(side, poll)
    await warm_up(side, videos[0]["id"])
    probe = LoopProbe()

    # The probe's own CPU (ticks, RSS reads) on an idle loop: subtracted from the measured CPU.
    probe.start()
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    await asyncio.sleep(calibrate_s)
    idle_cpu_rate = (time.process_time() - cpu_before) / (time.perf_counter() - wall_before)
    await probe.stop()
    probe.clear()

    stats_before = control_stats(control_url)  # blocking on purpose: outside the measured window
    gc.collect()
    if gc_freeze:
        gc.freeze()  # what-if: long-lived objects (Airflow's imports) moved out of the collector's way
    tracked_before = len(gc.get_objects())
    peak_reset = reset_peak_rss()
    rss_before = proc_status_kib("VmRSS")
    events: list[tuple[int, float, str]] = []

    async def consume(trigger: Any) -> None:
        async for event in trigger.run():
            payload = event if isinstance(event, dict) else event.payload
            events.append((trigger.video_id, time.monotonic(), str(payload.get("status"))))

    probe.start()
    busy0, load0 = machine_cpu_jiffies(), os.getloadavg()
    cpu0, wall0, times0 = time.process_time(), time.perf_counter(), os.times()
    tasks = []
    n = len(videos)
    for index, video in enumerate(videos):
        if start == "spread":
            # Waits deferred at different moments: starts spread evenly over one poll interval.
            await asyncio.sleep(max(0.0, wall0 + index * poll / n - time.perf_counter()))
        else:
            await asyncio.sleep(0)  # as TriggerRunner.create_triggers yields between triggers
        tasks.append(asyncio.create_task(consume(make_trigger(video["id"]))))
    created_s = time.perf_counter() - wall0
    await asyncio.gather(*tasks)
    cpu1, wall1, times1 = time.process_time(), time.perf_counter(), os.times()
    busy1, load1 = machine_cpu_jiffies(), os.getloadavg()
    await probe.stop()
    peak_kib = proc_status_kib("VmHWM")
    stats_after = control_stats(control_url)

    available_at = {v["id"]: v["available_at"] for v in videos}
    latencies = [at - available_at[video_id] for video_id, at, status in events if status == "success"]
    steady_from = wall0 + 2 * poll
    steady_lags = [lag for at, lag in zip(probe.lag_times, probe.lags, strict=True) if at >= steady_from]
    requests = stats_after["requests"] - stats_before["requests"]
    # The "after" stats call opened one connection of its own.
    connections = stats_after["connections_opened"] - stats_before["connections_opened"] - 1
    wall = wall1 - wall0
    cpu = cpu1 - cpu0
    cpu_net = max(0.0, cpu - idle_cpu_rate * wall)
    statuses: dict[str, int] = {}
    for _, _, status in events:
        statuses[status] = statuses.get(status, 0) + 1
    peak_growth = None if peak_kib is None or rss_before is None or not peak_reset else peak_kib - rss_before
    return {
        "side": side,
        "n": n,
        "start": start,
        "poll_interval_s": poll,
        "wall_s": wall,
        "create_triggers_s": created_s,
        "events": statuses,
        "requests": requests,
        "polls_per_trigger": requests / n,
        "connections_opened": connections,
        "cpu_s": cpu,
        "cpu_user_s": times1.user - times0.user,
        "cpu_system_s": times1.system - times0.system,
        "idle_probe_cpu_rate": idle_cpu_rate,
        "cpu_net_s": cpu_net,
        "cpu_per_poll_us": cpu_net / requests * 1e6 if requests else None,
        "cpu_per_poll_raw_us": cpu / requests * 1e6 if requests else None,
        "rss_before_kib": rss_before,
        "rss_peak_kib": peak_kib,
        "rss_sampled_max_kib": probe.rss_max_kib,
        "rss_peak_growth_kib": peak_growth,
        "rss_peak_growth_per_trigger_kib": None if peak_growth is None else peak_growth / n,
        "lag_max_ms": max(probe.lags, default=0.0) * 1000,
        "lag_p99_ms": percentile(probe.lags, 99) * 1000,
        "lag_steady_max_ms": max(steady_lags, default=0.0) * 1000,
        "lag_samples": len(probe.lags),
        # Context for noisy numbers: how busy all cores were (this worker and the simulator included).
        "machine_busy_fraction": busy_fraction(busy0, busy1),
        "load_average_start": [round(x, 2) for x in load0],
        "load_average_end": [round(x, 2) for x in load1],
        "gc": probe.gc_summary(),
        "gc_pause_per_poll_us": sum(sum(p) for p in probe.gc_pauses) / requests * 1e6 if requests else None,
        "gc_frozen": gc_freeze,
        "gc_tracked_objects_before": tracked_before,
        "detection_latency_median_s": median(latencies),
        "detection_latency_p95_s": percentile(latencies, 95),
        "detection_latency_max_s": max(latencies, default=float("nan")),
    }


def worker_main(args: argparse.Namespace) -> int:
    videos = json.loads(Path(args.videos_file).read_text())
    # Everything either side needs is imported before measuring.
    import aiohttp  # noqa: F401
    from airflow.triggers.base import BaseTrigger  # noqa: F401

    result = asyncio.run(
        measure(args.side, videos, args.poll, args.control_url, args.calibrate, args.start, args.gc_freeze)
    )
    Path(args.result_file).write_text(json.dumps(result))
    return 0


def control_call(control_url: str, method: str, path: str, body: Any = None) -> Any:
    """One blocking control call (run in a thread from the worker's loop, or outside the measured window)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        control_url + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


def per_second(times: list[float], start: float, seconds: int) -> list[int]:
    """Requests per 1-s window ``[start + i, start + i + 1)`` for ``i < seconds``."""
    counts = Counter(int(t - start) for t in times if start <= t < start + seconds)
    return [counts.get(i, 0) for i in range(seconds)]


async def measure_figure(
    figure: str, videos: list[dict[str, Any]], poll: float, control_url: str, retry_after: int
) -> dict[str, Any]:
    """Run one figure's triggers (all started at once, like ``measure``'s burst) and read the simulator's log.

    ``time.monotonic`` here is the simulator's clock (``CLOCK_MONOTONIC``, see ``create_videos``).
    """
    from airflow_provider_aiontheball.hooks._async_sessions import request_budgets
    from airflow_provider_aiontheball.triggers.video import AIOnTheBallVideoTrigger

    await warm_up("ours", videos[0]["id"])
    # Back-pressure: every trigger polls once (within one interval), the 429 comes within the next, then
    # its pause and two intervals more.
    duration = BURST_INTERVALS * poll if figure == "burst" else 1.5 * poll + poll + retry_after + 2 * poll
    # The triggers end at this deadline (the videos never finish): the measured window and no longer.
    end_time = time.time() + duration + 0.2

    async def consume(trigger: Any) -> str:
        statuses = [str(event.payload.get("status")) async for event in trigger.run()]
        return ",".join(statuses)

    started = time.monotonic()
    tasks = []
    for video in videos:
        await asyncio.sleep(0)  # as TriggerRunner.create_triggers yields between triggers
        trigger = AIOnTheBallVideoTrigger(
            video["id"], aiontheball_conn_id=OUR_CONN_ID, poll_interval=poll, min_poll_interval=poll, end_time=end_time
        )
        tasks.append(asyncio.create_task(consume(trigger)))
    created_s = time.monotonic() - started
    target = videos[len(videos) // 2]["id"]
    if figure == "backpressure":
        await asyncio.sleep(1.5 * poll)
        fault = {"kind": "status", "status": 429, "retry_after": str(retry_after), "count": 1}
        await asyncio.to_thread(
            control_call, control_url, "POST", "/faults", {**fault, "method": "GET", "path": f"/videos/{target}"}
        )
    events = Counter(await asyncio.gather(*tasks))
    paused_at = request_budgets.get(OUR_CONN_ID).paused_at
    logged = await asyncio.to_thread(control_call, control_url, "GET", "/requests")
    polls = [r for r in logged["requests"] if r["method"] == "GET" and r["time"] >= started]
    result: dict[str, Any] = {"figure": figure, "n": len(videos), "poll_interval_s": poll, "events": dict(events)}
    result["create_triggers_s"] = created_s
    if figure == "burst":
        seconds = int(BURST_INTERVALS * poll)
        counts = per_second([r["time"] for r in polls], started, seconds)
        mean = sum(counts) / seconds
        busiest = max(counts)
        result.update(
            window_s=seconds,
            requests=sum(counts),
            requests_per_second=counts,
            mean_per_s=mean,
            busiest_per_s=busiest,
            busiest_over_mean=busiest / mean if mean else None,
            first_second=counts[0],
        )
        return result
    refused = [r for r in polls if r["status"] == 429]
    result.update(retry_after_s=retry_after, refused=len(refused))
    if not refused or paused_at is None:
        return result
    at = refused[0]["time"]
    during = [r for r in polls if at < r["time"] < at + retry_after]
    in_flight = [r for r in during if r["time"] <= paused_at + IN_FLIGHT_GRACE_S]
    after = [r["time"] for r in polls if r["time"] >= paused_at + IN_FLIGHT_GRACE_S]
    result.update(
        client_paused_after_ms=(paused_at - at) * 1000,
        requests_during_pause=len(during),
        in_flight=len(in_flight),
        in_flight_latest_ms=max(((r["time"] - at) * 1000 for r in in_flight), default=None),
        in_flight_max_per_trigger=max(Counter(r["path"] for r in in_flight).values(), default=0),
        new_polls_during_pause=len(during) - len(in_flight),
        first_new_request_after_s=min(after) - at if after else None,
        rate_before_per_s=sum(at - poll <= r["time"] < at for r in polls) / poll,
        # The held-back polls go out spread over as long again (``Jitter.spread``): context, no target.
        resumed_per_second=per_second(after, at + retry_after, int(2 * poll)),
    )
    return result


def figure_worker_main(args: argparse.Namespace) -> int:
    videos = json.loads(Path(args.videos_file).read_text())
    import aiohttp  # noqa: F401
    from airflow.triggers.base import BaseTrigger  # noqa: F401

    result = asyncio.run(measure_figure(args.figure, videos, args.poll, args.control_url, args.retry_after))
    Path(args.result_file).write_text(json.dumps(result))
    return 0


# ==================================================================================================
# Orchestrator: simulator process, videos, one worker process per side
# ==================================================================================================


def create_videos(sim: SimulatorProcess, token: str, n: int, url_suffix: str = "") -> list[dict[str, Any]]:
    """Create ``n`` videos over one keep-alive connection; return ids and when each becomes available.

    ``url_suffix`` is appended to each video URL (``?sim_outcome=stuck``: videos that never finish).

    The availability time is the simulator's own creation time (its request log, on the simulator's
    ``time.monotonic`` clock) plus ``3 * step``. On Linux ``time.monotonic`` is ``CLOCK_MONOTONIC``,
    shared by all processes, so the workers compare it with their own ``time.monotonic``. The
    simulator's time is checked against this process's send/receive times; if it does not lie between
    them (another OS), the midpoint of the round trip is used instead.
    """
    connection = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=60)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Accept": "application/json"}
    sent: dict[str, tuple[int, float, float]] = {}
    try:
        for index in range(n):
            url = f"https://example.com/bench/{index}.mp4{url_suffix}"
            before = time.monotonic()
            connection.request("POST", "/api/v1/videos", json.dumps({"video_file_url": url}).encode(), headers)
            response = connection.getresponse()
            body = json.loads(response.read())
            after = time.monotonic()
            if response.status != 201:
                raise RuntimeError(f"creating a video answered {response.status}")
            sent[url] = (int(body["data"]["id"]), before, after)
    finally:
        connection.close()
    logged = {
        record["body"]["video_file_url"]: float(record["time"])
        for record in sim.requests()
        if record["method"] == "POST" and isinstance(record.get("body"), dict)
    }
    step = sim.video_step_seconds
    videos = []
    clock_shared = True
    for url, (video_id, before, after) in sent.items():
        created = logged.get(url)
        if created is None or not before - 0.001 <= created <= after + 0.001:
            clock_shared = False
            created = (before + after) / 2
        videos.append({"id": video_id, "available_at": created + 3 * step})
    if not clock_shared:
        print("  note: simulator clock not shared with this process; availability from round-trip midpoints")
    return videos


def run_side(
    side: str,
    n: int,
    start: str,
    *,
    step: float,
    poll: float,
    calibrate: float,
    home: Path,
    workdir: Path,
    py_spy: str | None = None,
    out_dir: Path | None = None,
    gc_freeze: bool = False,
) -> dict[str, Any]:
    token = new_token()
    with SimulatorProcess(token, video_step_seconds=step, env=child_env(home)) as sim:
        created_at = time.monotonic()
        videos = create_videos(sim, token, n)
        label = f"{side}-{n}-{start}"
        videos_file = workdir / f"videos-{label}.json"
        videos_file.write_text(json.dumps(videos))
        result_file = workdir / f"result-{label}.json"
        log_file = workdir / f"worker-{label}.log"
        conn: dict[str, Any]
        if side != "baseline":
            conn = {"conn_type": "aiontheball", "host": sim.base_url, "password": token}
            env = child_env(home, **{f"AIRFLOW_CONN_{OUR_CONN_ID.upper()}": json.dumps(conn)})
        else:
            conn = {
                "conn_type": "http",
                "host": "127.0.0.1",
                "port": sim.port,
                "schema": "http",
                "extra": {"Authorization": f"Bearer {token}"},
            }
            env = child_env(home, **{f"AIRFLOW_CONN_{HTTP_CONN_ID.upper()}": json.dumps(conn)})
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            "--side",
            side,
            "--poll",
            repr(poll),
            "--calibrate",
            repr(calibrate),
            "--start",
            start,
            *(["--gc-freeze"] if gc_freeze else []),
            "--videos-file",
            str(videos_file),
            "--result-file",
            str(result_file),
            "--control-url",
            sim.control_url,
        ]
        profile = None
        if py_spy:
            # speedscope JSON: opens in https://www.speedscope.app and is git-ignored like the results.
            profile = (out_dir or workdir) / f"{NAME}-{label}.speedscope.json"
            profile.parent.mkdir(parents=True, exist_ok=True)
            cmd = [py_spy, "record", "--format", "speedscope", "--rate", "200", "--output", str(profile), "--", *cmd]
        with open(log_file, "wb") as log:
            proc = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=3 * step + 300)
        if proc.returncode != 0:
            tail = log_file.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{label} worker exited with {proc.returncode}:\n{tail}")
        result: dict[str, Any] = json.loads(result_file.read_text())
        if profile is not None:
            result["py_spy_profile"] = str(profile)
        result["video_creation_s"] = videos[-1]["available_at"] - 3 * step - created_at if videos else 0.0
        return result


def run_figure(
    figure: str, n: int, *, poll: float, retry_after: int, step: float, home: Path, workdir: Path
) -> dict[str, Any]:
    """One figure in a fresh simulator and worker process, on ``n`` videos that never finish."""
    token = new_token()
    with SimulatorProcess(token, video_step_seconds=step, env=child_env(home)) as sim:
        videos = create_videos(sim, token, n, url_suffix="?sim_outcome=stuck")
        videos_file = workdir / f"videos-figure-{figure}.json"
        videos_file.write_text(json.dumps(videos))
        result_file = workdir / f"result-figure-{figure}.json"
        log_file = workdir / f"worker-figure-{figure}.log"
        conn = {"conn_type": "aiontheball", "host": sim.base_url, "password": token}
        env = child_env(home, **{f"AIRFLOW_CONN_{OUR_CONN_ID.upper()}": json.dumps(conn)})
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            "--figure",
            figure,
            "--poll",
            repr(poll),
            "--retry-after",
            str(retry_after),
            "--videos-file",
            str(videos_file),
            "--result-file",
            str(result_file),
            "--control-url",
            sim.control_url,
        ]
        with open(log_file, "wb") as log:
            proc = subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=600)
        if proc.returncode != 0:
            tail = log_file.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"figure {figure} worker exited with {proc.returncode}:\n{tail}")
        result: dict[str, Any] = json.loads(result_file.read_text())
        return result


def evaluate_figure(result: dict[str, Any]) -> dict[str, Any]:
    """The figure's target, what was measured, and whether it passed (``None`` when it cannot be told)."""
    n = result["n"]
    if result["figure"] == "burst":
        ratio_ = result.get("busiest_over_mean")
        measured = (
            f"busiest second {result['busiest_per_s']} requests, mean {result['mean_per_s']:.0f}/s = "
            f"{fmt(ratio_, '.2f')}x over {result['window_s']} s; first second {result['first_second']} "
            f"(fixed {result['poll_interval_s']:g}-s interval)"
        )
        passed = None if ratio_ is None else ratio_ <= 2.0
        return {"name": f"Burst: {n} triggers started in the same second", "target": "busiest second <= 2x mean",
                "measured": measured, "passed": passed}  # fmt: skip
    name = f"Back-pressure: one 429 (Retry-After: {result['retry_after_s']}) to 1 of {n} waiting triggers"
    target = "0 new polls on the connection during the pause (in-flight only)"
    if not result.get("refused") or "new_polls_during_pause" not in result:
        return {"name": name, "target": target, "measured": "no 429 was answered", "passed": None}
    new = result["new_polls_during_pause"]
    measured = (
        f"{new} new polls; {result['in_flight']} in flight (<= {fmt(result['in_flight_latest_ms'], '.0f')} ms after "
        f"the 429, at most {result['in_flight_max_per_trigger']} per trigger); next request "
        f"{fmt(result['first_new_request_after_s'], '.2f')} s after it (before: {result['rate_before_per_s']:.0f}/s)"
    )
    return {"name": name, "target": target, "measured": measured, "passed": new == 0}


def print_figures(figures: dict[str, Any]) -> None:
    rows = []
    for figure in figures.values():
        status = "n/a" if figure["passed"] is None else ("PASS" if figure["passed"] else "MISS")
        rows.append([figure["name"], figure["target"], figure["measured"], status])
    print(table(["figure", "target", "measured", "status"], rows, "Jitter and the shared back-off: figures vs targets"))
    for figure in figures.values():
        seconds = figure["result"].get("requests_per_second") or figure["result"].get("resumed_per_second")
        if seconds:
            label = "requests per 1-s window" if figure["result"]["figure"] == "burst" else "after the pause"
            print(f"  {figure['result']['figure']}, {label}: {seconds}")


def scenario_key(n: int, start: str) -> str:
    return f"N={n} {start}"


def summarize(runs: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """ours / baseline ratios per scenario (below 1 means ours uses less)."""
    keys = {
        "cpu_per_poll": "cpu_per_poll_us",
        "rss_per_trigger": "rss_peak_growth_per_trigger_kib",
        "lag_max": "lag_max_ms",
        "connections_opened": "connections_opened",
        "requests": "requests",
        "detection_latency_median": "detection_latency_median_s",
    }
    ratios: dict[str, dict[str, Any]] = {}
    for key, sides in runs.items():
        ours, base = sides.get("ours", {}), sides.get("baseline", {})
        ratios[key] = {name: ratio(ours.get(field), base.get(field)) for name, field in keys.items()}
    return ratios


def print_tables(results: dict[str, Any]) -> None:
    runs: dict[str, dict[str, dict[str, Any]]] = results["runs"]
    headers = [
        "scenario",
        "side",
        "rounds",
        "requests",
        "TCP conns",
        "CPU/poll µs",
        "peak RSS/trigger KiB",
        "max lag ms",
        "steady max lag ms",
        "p99 lag ms",
        "GC µs/poll",
        "full GCs",
        "max full-GC pause ms",
        "detect median s",
        "detect p95 s",
        "events",
    ]
    rows = []
    for key, sides in runs.items():
        for side, r in sides.items():
            if not r.get("available", True):
                rows.append([key, side, *["n/a"] * (len(headers) - 3), r.get("reason", "unavailable")])
                continue
            rows.append(
                [
                    key,
                    side,
                    str(r["rounds"]),
                    fmt(r["requests"], ".0f"),
                    fmt(r["connections_opened"], ".0f"),
                    fmt(r["cpu_per_poll_us"], ".0f"),
                    fmt(r["rss_peak_growth_per_trigger_kib"], ".1f"),
                    fmt(r["lag_max_ms"], ".1f"),
                    fmt(r["lag_steady_max_ms"], ".1f"),
                    fmt(r["lag_p99_ms"], ".1f"),
                    fmt(r["gc_pause_per_poll_us"], ".0f"),
                    fmt(r["gc"]["gen2"]["collections"], "g"),
                    fmt(r["gc"]["gen2"]["max_pause_ms"], ".1f"),
                    fmt(r["detection_latency_median_s"], ".2f"),
                    fmt(r["detection_latency_p95_s"], ".2f"),
                    ", ".join(f"{k}: {v}" for k, v in sorted(r["events"].items())),
                ]
            )
    cfg = results["config"]
    title = (
        f"Triggerer scale: N waiting video triggers, fixed poll interval {cfg['poll_interval_s']:g} s, "
        f"videos available {3 * cfg['video_step_seconds']:g} s after creation"
    )
    print(table(headers, rows, title))
    print()
    ratio_rows = [
        [
            key,
            fmt(r["cpu_per_poll"], ".2f"),
            fmt(r["rss_per_trigger"], ".2f"),
            fmt(r["lag_max"], ".2f"),
            fmt(r["connections_opened"], ".3f"),
            fmt(r["requests"], ".2f"),
            fmt(r["detection_latency_median"], ".2f"),
        ]
        for key, r in results["ratios"].items()
    ]
    print(
        table(
            ["scenario", "CPU/poll", "peak RSS/trigger", "max lag", "TCP conns", "requests", "detect median"],
            ratio_rows,
            "Ratios ours / HttpAsyncHook baseline (same run, server, N and poll interval; below 1 = ours uses less)",
        )
    )


@dataclass(frozen=True)
class Scenario:
    n: int
    start: str = "spread"
    sides: tuple[str, ...] = SIDES
    #: Interleaved rounds (all sides, then all sides again ...); each side's figures are the mean.
    rounds: int = 1

    @property
    def key(self) -> str:
        return scenario_key(self.n, self.start)


def parse_scenario(text: str) -> Scenario:
    """``N[:spread|burst[:side+side...[:rounds]]]``, e.g. ``1000``, ``1000:burst``, ``1000:spread:ours+floor:2``."""
    n, _, rest = text.partition(":")
    start, _, rest = rest.partition(":")
    sides, _, rounds = rest.partition(":")
    start = start or "spread"
    if start not in STARTS:
        raise argparse.ArgumentTypeError(f"start must be one of {', '.join(STARTS)}, got {start!r}")
    chosen = tuple(sides.split("+")) if sides else SIDES
    unknown = set(chosen) - set(SIDES + DIAGNOSTIC_SIDES)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown side(s) {', '.join(sorted(unknown))}")
    return Scenario(int(n), start, chosen, int(rounds or 1))


#: The full run: ~23 s per scenario, side and round. The targets apply to N = 1,000 spread: two
#: interleaved rounds there, with the floor for context (``hook`` runs on demand).
# N = 1,000 is what the targets apply to; the 100-trigger scenario (same figures, smaller N) and a second
# round of the spread scenario were dropped to keep `make bench` within ~10 minutes once the deployment
# benchmark ran three variants (`--scenario 100` and `--scenario 1000:spread:ours+baseline+floor:2` still
# run them).
DEFAULT_SCENARIOS = (
    Scenario(1000, "spread", (*SIDES, "floor")),
    Scenario(1000, "burst"),
)


def aggregate(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One side's figures over its rounds: means of the numbers, the longest GC pause, summed events."""
    if len(rounds) == 1:
        return {**rounds[0], "rounds": 1}
    out: dict[str, Any] = dict(rounds[0])
    for key, value in rounds[0].items():
        values = [r.get(key) for r in rounds]
        if isinstance(value, int | float) and not isinstance(value, bool) and None not in values:
            out[key] = statistics.fmean(values)  # type: ignore[arg-type]
    events: dict[str, int] = {}
    for r in rounds:
        for status, count in r["events"].items():
            events[status] = events.get(status, 0) + count
    out["events"] = events
    out["gc"] = {
        generation: {
            "collections": statistics.fmean(r["gc"][generation]["collections"] for r in rounds),
            "max_pause_ms": max(r["gc"][generation]["max_pause_ms"] for r in rounds),
            "total_pause_ms": statistics.fmean(r["gc"][generation]["total_pause_ms"] for r in rounds),
        }
        for generation in rounds[0]["gc"]
    }
    out["rounds"] = len(rounds)
    out["per_round"] = rounds
    return out


SMOKE_SCENARIOS = (Scenario(10),)


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--scenario",
        type=parse_scenario,
        action="append",
        help="N[:spread|burst[:side+side[:rounds]]], repeatable (default: 1000:spread:ours+baseline+floor, "
        "1000:burst; smoke: 10). spread: trigger starts spread over one poll interval; burst: all started at "
        "once, as after a triggerer restart. Sides: ours, baseline, and the diagnostic hook and floor; "
        "rounds: interleaved repetitions, figures averaged",
    )
    parser.add_argument("--poll", type=float, help="fixed poll interval P in seconds (default 2; smoke 0.25)")
    parser.add_argument("--step", type=float, help="simulator --video-step-seconds (default 7; smoke 1)")
    parser.add_argument("--calibrate", type=float, help="seconds of idle probe calibration (default 0.5)")
    parser.add_argument("--py-spy", help="path of a py-spy binary: profile each worker (speedscope JSON in --out)")
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="what-if: gc.freeze() in the workers before measuring (Airflow's triggerer does not do this)",
    )
    figures_group = parser.add_mutually_exclusive_group()
    figures_group.add_argument(
        "--figures-only", action="store_true", help="only the burst and back-pressure figures (~1 min)"
    )
    figures_group.add_argument("--no-figures", action="store_true", help="skip the burst and back-pressure figures")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--figure", choices=FIGURES, help=argparse.SUPPRESS)
    parser.add_argument("--retry-after", type=int, default=BACKPRESSURE_RETRY_AFTER_S, help=argparse.SUPPRESS)
    parser.add_argument("--side", choices=SIDES + DIAGNOSTIC_SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--start", choices=STARTS, default="spread", help=argparse.SUPPRESS)
    parser.add_argument("--videos-file", help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    parser.add_argument("--control-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return figure_worker_main(args) if args.figure else worker_main(args)

    scenarios = () if args.figures_only else args.scenario or (SMOKE_SCENARIOS if args.smoke else DEFAULT_SCENARIOS)
    poll = args.poll or (0.25 if args.smoke else 2.0)
    step = args.step or (1.0 if args.smoke else 7.0)
    calibrate = args.calibrate or (0.2 if args.smoke else 0.5)
    has_baseline = baseline_available()
    runs: dict[str, dict[str, dict[str, Any]]] = {}
    with airflow_home() as home, tempfile.TemporaryDirectory(prefix="aib-bench-triggerer-") as tmp:
        for scenario in scenarios:
            key, n, start = scenario.key, scenario.n, scenario.start
            runs[key] = {}
            measured: dict[str, list[dict[str, Any]]] = {}
            for round_number in range(1, scenario.rounds + 1):
                for side in scenario.sides:
                    if round_number > 1 and side in DIAGNOSTIC_SIDES:
                        continue  # context only: one round is enough
                    if side == "baseline" and not has_baseline:
                        runs[key][side] = {
                            "available": False,
                            "reason": "baseline unavailable: apache-airflow-providers-http is not installed",
                        }
                        continue
                    print(f"  running {side}, {key}, round {round_number} of {scenario.rounds} ...", flush=True)
                    result = run_side(
                        side,
                        n,
                        start,
                        step=step,
                        poll=poll,
                        calibrate=calibrate,
                        home=home,
                        workdir=Path(tmp),
                        py_spy=args.py_spy,
                        out_dir=args.out,
                        gc_freeze=args.gc_freeze,
                    )
                    measured.setdefault(side, []).append(result)
            for side, rounds in measured.items():
                runs[key][side] = aggregate(rounds)
        figure_n, burst_poll, backpressure_poll, retry_after = (
            SMOKE_FIGURES if args.smoke else (FIGURE_N, BURST_POLL_S, BACKPRESSURE_POLL_S, BACKPRESSURE_RETRY_AFTER_S)
        )
        figures: dict[str, Any] = {}
        for figure in () if args.no_figures else FIGURES:
            print(f"  running figure {figure}, N={figure_n} ...", flush=True)
            result = run_figure(
                figure,
                figure_n,
                poll=burst_poll if figure == "burst" else backpressure_poll,
                retry_after=retry_after,
                step=step,
                home=home,
                workdir=Path(tmp),
            )
            figures[figure] = {**evaluate_figure(result), "result": result}
    results = {
        "benchmark": NAME,
        "smoke": args.smoke,
        "machine": machine_info(),
        "config": {
            "scenarios": [f"{s.key} ({'+'.join(s.sides)}, {s.rounds} round(s))" for s in scenarios],
            "poll_interval_s": poll,
            "video_step_seconds": step,
            "tick_seconds": TICK_SECONDS,
            "calibrate_s": calibrate,
            "baseline": "airflow.providers.http.hooks.http.HttpAsyncHook.run() per poll",
            "baseline_available": has_baseline,
            "gc_freeze": args.gc_freeze,
            "figures": {
                "n": figure_n,
                "burst_poll_interval_s": burst_poll,
                "burst_intervals": BURST_INTERVALS,
                "backpressure_poll_interval_s": backpressure_poll,
                "retry_after_s": retry_after,
                "in_flight_grace_s": IN_FLIGHT_GRACE_S,
            },
        },
        "runs": runs,
        "ratios": summarize(runs),
        "figures": figures,
    }
    if runs:
        print_tables(results)
    if figures:
        print()
        print_figures(figures)
    path = write_json(args.out, NAME, results)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
