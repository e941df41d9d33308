"""Requests per wait: our adaptive / progress-aware polling against fixed 30 s and 60 s, on a virtual clock.

Many simulated waits, no real sleeping. Each wait has a status timeline (below); a policy polls it
at ``t = 0`` (the wait starts when the resource is created) and then after whatever interval it
chooses, until it sees the resource finished. Per policy we count API calls per wait and the
detection latency (time of the poll that saw the finish minus the moment it finished).

Our policies are the **production scheduling code**, driven exactly as ``waiting.Wait.decide``
drives it: ``policy.new_schedule(trigger.settings)`` once, then after each in-progress observation
``policy.next_interval(schedule, resource, now)``; the finish is recognised with the trigger's own
status vocabulary (and ``is_ready``, where the trigger has it). Videos use
``AIOnTheBallVideoTrigger(video_id, poll_interval=60)`` with its defaults; analyses use
``AIOnTheBallAnalysisTrigger(analysis_id)`` with its defaults (or, on a checkout without that module,
``ProgressSchedule()`` driven directly, marked in the results).

Timelines (seeded, reproducible):

* video, ready after U(2, 20) min: ``init`` → ``downloading`` → ``locally_available`` →
  ``available``, the three step lengths cut at two uniform random points;
* analysis, finished after U(1, 6) h (and a population of exactly 4 h for the target):
  ``init`` U(10, 120) s → ``waiting_for_video`` (half of them 0, half U(1, 15) min) → ``running``
  with progress 0 → 95 at an uneven speed (12 segments at U(0.6, 1.4) times the mean speed, 0-3 plateaus of
  U(3, 12) min where it does not move) and ±2 points of uniform jitter on every reading →
  ``aggregating`` for 3-8 % of the total (3-20 min), progress rising 95 → 99 across it (as the
  package's simulator does) → ``done`` (progress 100, ``results_available`` true).

The target population ("4 h") finishes after U(3.9, 4.1) h, so that the fixed pollers' phase is not
aligned with the finish. A sensitivity population ("4 h, stall at 99 %") is the same except that
aggregating reaches 99 % halfway and then stays there until ``done`` (a long final aggregation).
"""

from __future__ import annotations

import bisect
import itertools
import math
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import airflow_home, base_parser, fmt, machine_info, percentile, table, write_json

NAME = "polling"
#: The virtual clock starts at a realistic epoch value (the triggers receive wall-clock ``now``).
EPOCH = 1_780_000_000.0
FIXED_INTERVALS = (30.0, 60.0)
#: A policy that needs more calls than this for one wait is broken; stop instead of looping forever.
MAX_CALLS = 100_000
TARGET_HOURS = 4.0


# ==================================================================================================
# Timelines
# ==================================================================================================


def _jitter(seed: int, t: float, amplitude: float) -> float:
    """Deterministic noise in [-amplitude, amplitude] for a reading at time ``t`` (splitmix64 hash),
    so every policy reading the same wait at the same moment sees the same value."""
    x = (seed * 0x9E3779B97F4A7C15 + int(t * 1000)) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    x ^= x >> 31
    return (x / 2**64 * 2 - 1) * amplitude


@dataclass
class Timeline:
    """One resource's statuses over virtual time; ``finish`` is when it reached its success status."""

    kind: str
    finish: float
    #: (start time, status) in time order.
    phases: list[tuple[float, str]]
    seed: int = 0
    #: Running phase: (start, end) and the piecewise-linear progress curve as (time, base progress) knots.
    running: tuple[float, float] = (0.0, 0.0)
    knots_t: list[float] = field(default_factory=list)
    knots_p: list[float] = field(default_factory=list)
    #: Aggregating phase: (start, time progress reaches 99).
    aggregating: tuple[float, float] = (0.0, 0.0)
    _starts: list[float] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self._starts = [start for start, _ in self.phases]

    def status_at(self, t: float) -> str:
        return self.phases[max(0, bisect.bisect_right(self._starts, t) - 1)][1]

    def observe(self, t: float) -> dict[str, Any]:
        """What ``GET /videos/{id}`` or ``GET /analyses/{id}`` would answer at ``t``."""
        status = self.status_at(t)
        if self.kind == "video":
            return {"status": status}
        return {"status": status, "progress": self._progress(status, t), "results_available": status == "done"}

    def _progress(self, status: str, t: float) -> float:
        if status == "done":
            return 100.0
        if status == "running":
            i = min(max(bisect.bisect_right(self.knots_t, t) - 1, 0), len(self.knots_t) - 2)
            t0, t1 = self.knots_t[i], self.knots_t[i + 1]
            p0, p1 = self.knots_p[i], self.knots_p[i + 1]
            base = p0 + (p1 - p0) * (t - t0) / (t1 - t0) if t1 > t0 else p1
            return round(min(95.0, max(0.0, base + _jitter(self.seed, t, 2.0))), 1)
        if status == "aggregating":
            start, full = self.aggregating
            return round(95.0 + 4.0 * min(1.0, (t - start) / (full - start)), 1) if full > start else 99.0
        return 0.0


def video_timeline(rng: random.Random) -> Timeline:
    ready = rng.uniform(120, 1200)
    a, b = sorted((rng.uniform(0, ready), rng.uniform(0, ready)))
    phases = [(0.0, "init"), (a, "downloading"), (b, "locally_available"), (ready, "available")]
    return Timeline("video", ready, phases)


def analysis_timeline(rng: random.Random, total: float, *, stall: bool = False) -> Timeline:
    init = rng.uniform(10, 120)
    waiting = 0.0 if rng.random() < 0.5 else rng.uniform(60, 900)
    aggregating = min(max(total * rng.uniform(0.03, 0.08), 180.0), 1200.0)
    run_start = init + waiting
    run_end = total - aggregating
    # Uneven speed: 12 segments, plus plateaus (speed 0) inserted at random moments.
    run_length = run_end - run_start
    plateaus = sorted((rng.uniform(0, 1), rng.uniform(180, 720)) for _ in range(rng.randint(0, 3)))
    still = sum(length for _, length in plateaus)
    if still > 0.4 * run_length:  # short analyses: plateaus at most 40 % of the running time
        plateaus = [(position, length * 0.4 * run_length / still) for position, length in plateaus]
    moving = run_length - sum(length for _, length in plateaus)
    speeds = [rng.uniform(0.6, 1.4) for _ in range(12)]
    work = [0.0]
    for speed in speeds:
        work.append(work[-1] + speed)
    # Knots in "moving time", then stretched by the plateaus.
    knots: list[tuple[float, float]] = [(i / 12 * moving, 95.0 * work[i] / work[-1]) for i in range(13)]
    for position, length in reversed(plateaus):
        at = position * moving
        progress = _interpolate(knots, at)
        shifted = [(t + length, p) if t > at else (t, p) for t, p in knots]
        knots = sorted([*shifted, (at, progress), (at + length, progress)])
    knots_t = [run_start + t for t, _ in knots]
    knots_p = [p for _, p in knots]
    full = run_end + aggregating * (0.5 if stall else 1.0)
    phases = [
        (0.0, "init"),
        (init, "waiting_for_video"),
        (run_start, "running"),
        (run_end, "aggregating"),
        (total, "done"),
    ]
    if waiting == 0.0:
        phases.pop(1)
    return Timeline(
        "analysis",
        total,
        phases,
        seed=rng.getrandbits(63),
        running=(run_start, run_end),
        knots_t=knots_t,
        knots_p=knots_p,
        aggregating=(run_end, full),
    )


def _interpolate(knots: list[tuple[float, float]], t: float) -> float:
    for (t0, p0), (t1, p1) in itertools.pairwise(knots):
        if t0 <= t <= t1:
            return p0 if t1 == t0 else p0 + (p1 - p0) * (t - t0) / (t1 - t0)
    return knots[-1][1]


# ==================================================================================================
# Policies
# ==================================================================================================


@dataclass
class Policy:
    """How one wait is polled: ``start()`` returns a fresh per-wait state; ``next_delay`` the interval."""

    name: str
    start: Callable[[], Any]
    next_delay: Callable[[Any, dict[str, Any], float], float]
    is_finished: Callable[[dict[str, Any]], bool]


def fixed_policy(interval: float, success: str) -> Policy:
    return Policy(
        name=f"fixed {interval:g} s",
        start=lambda: None,
        next_delay=lambda state, resource, now: interval,
        is_finished=lambda resource: resource.get("status") == success,
    )


def trigger_policy(trigger: Any, policy: Any) -> Policy:
    """The production schedule of ``trigger`` (its settings, its kind's ``WaitPolicy``), as ``Wait.decide`` uses it."""
    from airflow_provider_aiontheball.statuses import Outcome

    def is_finished(resource: dict[str, Any]) -> bool:
        return policy.vocabulary.classify(resource.get("status")) is Outcome.SUCCESS and policy.ready(resource)

    return Policy(
        name="ours",
        start=lambda: policy.new_schedule(trigger.settings),
        next_delay=lambda schedule, resource, now: float(policy.next_interval(schedule, resource, now)),
        is_finished=is_finished,
    )


def progress_schedule_policy() -> Policy:
    """Fallback while ``triggers/analysis.py`` does not exist: ``ProgressSchedule()`` driven directly."""
    from airflow_provider_aiontheball.polling import ProgressSchedule

    return Policy(
        name="ours (ProgressSchedule directly)",
        start=ProgressSchedule,
        next_delay=lambda schedule, resource, now: float(
            schedule.after_observation(resource.get("status"), resource.get("progress"), now)
        ),
        is_finished=lambda resource: resource.get("status") == "done",
    )


def our_video_policy() -> Policy:
    from airflow_provider_aiontheball.triggers.video import AIOnTheBallVideoTrigger
    from airflow_provider_aiontheball.waiting import VIDEO_WAIT

    return trigger_policy(AIOnTheBallVideoTrigger(1, poll_interval=60), VIDEO_WAIT)


def our_analysis_policy() -> tuple[Policy, str]:
    """Our analysis policy and where it comes from."""
    try:
        from airflow_provider_aiontheball.triggers.analysis import AIOnTheBallAnalysisTrigger
    except ImportError:
        return progress_schedule_policy(), "ProgressSchedule() driven directly (triggers/analysis.py missing)"
    from airflow_provider_aiontheball.waiting import ANALYSIS_WAIT

    return trigger_policy(
        AIOnTheBallAnalysisTrigger(1), ANALYSIS_WAIT
    ), "AIOnTheBallAnalysisTrigger(analysis_id) defaults"


# ==================================================================================================
# Simulation
# ==================================================================================================


@dataclass
class WaitResult:
    calls: int
    latency: float
    calls_by_status: Counter[str]


def simulate(policy: Policy, timeline: Timeline) -> WaitResult:
    """Poll ``timeline`` with ``policy`` on a virtual clock, as the trigger's run loop would."""
    state = policy.start()
    t, calls = 0.0, 0
    by_status: Counter[str] = Counter()
    while True:
        resource = timeline.observe(t)
        calls += 1
        by_status[resource["status"]] += 1
        if policy.is_finished(resource):
            return WaitResult(calls, t - timeline.finish, by_status)
        if calls >= MAX_CALLS:
            raise RuntimeError(f"{policy.name}: more than {MAX_CALLS} calls for one wait")
        delay = policy.next_delay(state, resource, EPOCH + t)
        if not math.isfinite(delay) or delay < 0:
            raise RuntimeError(f"{policy.name}: invalid interval {delay!r}")
        t += delay


def summarize(results: list[WaitResult], timelines: list[Timeline]) -> dict[str, Any]:
    calls = [r.calls for r in results]
    latencies = [r.latency for r in results]
    hours = sum(t.finish for t in timelines) / 3600
    statuses = sorted({s for r in results for s in r.calls_by_status})
    return {
        "waits": len(results),
        "calls_mean": sum(calls) / len(calls),
        "calls_median": percentile(calls, 50),
        "calls_p95": percentile(calls, 95),
        "calls_max": max(calls),
        "calls_per_hour_waited": sum(calls) / hours if hours else None,
        "latency_median_s": percentile(latencies, 50),
        "latency_p95_s": percentile(latencies, 95),
        "latency_max_s": max(latencies),
        "calls_by_status_mean": {s: sum(r.calls_by_status[s] for r in results) / len(results) for s in statuses},
    }


def run_population(name: str, timelines: list[Timeline], policies: list[Policy], description: str) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description, "policies": {}}
    for policy in policies:
        out["policies"][policy.name] = summarize([simulate(policy, tl) for tl in timelines], timelines)
    return out


def print_tables(results: dict[str, Any]) -> None:
    headers = [
        "waits",
        "policy",
        "calls mean",
        "calls median",
        "calls p95",
        "calls max",
        "detect median s",
        "detect p95 s",
        "detect max s",
    ]
    for population in results["populations"].values():
        rows = [
            [
                str(stats["waits"]),
                policy,
                fmt(stats["calls_mean"], ".1f"),
                fmt(stats["calls_median"], ".0f"),
                fmt(stats["calls_p95"], ".0f"),
                str(stats["calls_max"]),
                fmt(stats["latency_median_s"], ".1f"),
                fmt(stats["latency_p95_s"], ".1f"),
                fmt(stats["latency_max_s"], ".1f"),
            ]
            for policy, stats in population["policies"].items()
        ]
        print(table(headers, rows, population["description"]))
        ours = next((s for p, s in population["policies"].items() if p.startswith("ours")), None)
        if ours:
            split = ", ".join(f"{s} {n:.1f}" for s, n in ours["calls_by_status_mean"].items())
            print(f"\nours, mean calls by status seen: {split}")
        print()


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--waits", type=int, help="waits per population (default 2000; smoke 20)")
    parser.add_argument("--seed", type=int, default=2026, help="random seed (default 2026)")
    args = parser.parse_args(argv)
    waits = args.waits or (20 if args.smoke else 2000)
    with airflow_home() as home:
        # The triggers import Airflow here; never let it read or write the developer's ~/airflow.
        os.environ["AIRFLOW_HOME"] = str(home)
        os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        results = run(waits, args.seed, args.smoke)
    print_tables(results)
    path = write_json(args.out, NAME, results)
    print(f"wrote {path}")
    return 0


def run(waits: int, seed: int, smoke: bool) -> dict[str, Any]:
    started = time.perf_counter()
    rng = random.Random(seed)

    video_policies = [our_video_policy(), *(fixed_policy(i, "available") for i in FIXED_INTERVALS)]
    analysis_policy, analysis_source = our_analysis_policy()
    analysis_policies = [analysis_policy, *(fixed_policy(i, "done") for i in FIXED_INTERVALS)]

    videos = [video_timeline(rng) for _ in range(waits)]
    mixed = [analysis_timeline(rng, rng.uniform(3600, 6 * 3600)) for _ in range(waits)]
    four_hours = [analysis_timeline(rng, rng.uniform(3.9, 4.1) * 3600) for _ in range(waits)]
    stalled = [analysis_timeline(rng, rng.uniform(3.9, 4.1) * 3600, stall=True) for _ in range(waits)]
    populations = {
        "videos": run_population("videos", videos, video_policies, f"Videos ready after 2-20 min ({waits} waits)"),
        "analyses_1_6h": run_population(
            "analyses_1_6h", mixed, analysis_policies, f"Analyses finishing after 1-6 h ({waits} waits)"
        ),
        "analyses_4h": run_population(
            "analyses_4h", four_hours, analysis_policies, f"Analyses finishing after ~4 h ({waits} waits)"
        ),
        "analyses_4h_stall": run_population(
            "analyses_4h_stall",
            stalled,
            analysis_policies,
            f"Sensitivity: ~4 h analyses whose aggregation sits at 99 % for its second half ({waits} waits)",
        ),
    }
    four = populations["analyses_4h"]["policies"][analysis_policy.name]
    results = {
        "benchmark": NAME,
        "smoke": smoke,
        "machine": machine_info(),
        "config": {
            "waits_per_population": waits,
            "seed": seed,
            "video_policy": "AIOnTheBallVideoTrigger(video_id, poll_interval=60) defaults",
            "analysis_policy": analysis_source,
            "fixed_intervals_s": list(FIXED_INTERVALS),
        },
        "populations": populations,
        "target": {
            "description": "4-h analysis: p95 detection latency <= 60 s with <= 40 API calls (p95)",
            "policy": analysis_policy.name,
            "latency_p95_s": four["latency_p95_s"],
            "calls_p95": four["calls_p95"],
            "calls_mean": four["calls_mean"],
            "passed": four["latency_p95_s"] <= 60 and four["calls_p95"] <= 40,
        },
        "elapsed_s": time.perf_counter() - started,
    }
    return results


if __name__ == "__main__":
    sys.exit(main())
