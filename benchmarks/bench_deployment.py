"""Deployment cost per wait: N mapped video waits in real Airflow 3, ours against an HttpSensor anchor.

One throwaway Airflow 3 (``aib_harness/airflow.py``: api-server, scheduler with the LocalExecutor,
dag-processor, triggerer; SQLite) and the simulator run two DAGs with the same N and the same video
timeline: ``aib_bench_wait_ours`` (``AIOnTheBallVideoSensor(deferrable=True)`` mapped over N video ids)
and ``aib_bench_wait_anchor`` (the same on the HTTP provider's ``HttpSensor``, deferring to its
``HttpEventTrigger``; see ``benchmarks/deployment/``). Before each run the N videos are created over
the API, so only the waits are measured; they stay preparing until every wait of the run has deferred,
then ``--available-after`` seconds later all become ``available`` at once (the simulator's control API):
the same rule for both variants, and every wait defers. An unmeasured warm-up comes first; then the
runs alternate (ours, anchor, ours, ...) in the one Airflow.

For each run, from just before the trigger until the run has ended and the executor is idle again:

* **CPU** (user + system) of every Airflow process: each component's process tree, exited members
  included (``tree_cpu_seconds`` in the harness: ``utime + stime + cutime + cstime`` of every process
  in the tree, read before and after; see benchmarks/README.md), ÷ N;
* **worker starts** of the wait task from Airflow's audit log (first starts + resumptions + retries),
  ÷ N.

Airflow 3 only: the harness runs Airflow 2 with the SequentialExecutor (SQLite), one task at a time.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import airflow_major, base_parser, distribution_installed, fmt, machine_info, table, write_json

# The real-process harness, imported as the tests and scripts do (the editable install's path).
from aib_harness.airflow import AirflowHarness, HarnessConfig
from aib_harness.processes import HarnessError, ProcessInfo, descendants, process_table, tree_cpu_seconds
from aib_harness.report import RunReport

NAME = "deployment"
DAG_DIR = Path(__file__).resolve().parent / "deployment"
#: variant -> DAG id; the runs alternate in this order.
VARIANTS = {"ours": "aib_bench_wait_ours", "anchor": "aib_bench_wait_anchor", "start": "aib_bench_wait_start"}
DAG_FILES = {
    "ours": DAG_DIR / "aib_bench_wait_ours.py",
    "anchor": DAG_DIR / "aib_bench_wait_anchor.py",
    "start": DAG_DIR / "aib_bench_wait_start.py",
}
#: The variant whose N waits are unmapped tasks (``wait_for_video_<i>``) started in the triggerer.
START_VARIANT = "start"
WAIT_TASK = "wait_for_video"
HTTP_CONN_ENV = "AIRFLOW_CONN_AIB_BENCH_HTTP"
SKIP_ENV = "AIB_BENCH_SKIP_DEPLOYMENT"
VIDEO_PATH = re.compile(r"^/videos/(?P<id>\d+)$")
#: Titles (``setproctitle``) of LocalExecutor workers with nothing to run.
IDLE_WORKER_TITLE = "<idle>"
#: Seconds to wait, after a run ended, until every executor worker is idle again (its task processes
#: gone): their exit belongs to the run that started them.
IDLE_TIMEOUT = 30.0


class DeploymentHarness(AirflowHarness):
    """The harness plus what the anchor needs: an ``http`` connection to the simulator and the check
    module on the ``PYTHONPATH`` (the triggerer imports it by path)."""

    def _install_connection(self) -> dict[str, str]:
        env = super()._install_connection()
        origin = self.simulator_url.removesuffix("/api/v1")
        host, port = origin.removeprefix("http://").rsplit(":", 1)
        env[HTTP_CONN_ENV] = json.dumps(
            {
                "conn_type": "http",
                "host": host,
                "port": int(port),
                "schema": "http",
                "extra": {"Authorization": f"Bearer {self.api_token}"},
            }
        )
        return env

    def _base_env(self) -> dict[str, str]:
        env = super()._base_env()
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(DAG_DIR), env.get("PYTHONPATH", "")]))
        return env

    # -- what the benchmark reads -------------------------------------------------------------------

    def component_pids(self) -> dict[str, int]:
        return {process.name: process.popen.pid for process in self.components}

    def cpu_by_component(self, table: dict[int, ProcessInfo] | None = None) -> dict[str, float]:
        """CPU seconds used so far by each component's process tree; the scheduler's split into the
        scheduler process itself and its LocalExecutor workers with their task processes."""
        table = process_table() if table is None else table
        pids = self.component_pids()
        trees = tree_cpu_seconds(pids.values(), table)
        ticks = os.sysconf("SC_CLK_TCK")
        cpu = {name: trees[pid] for name, pid in pids.items()}
        scheduler = pids.get("scheduler")
        if scheduler is not None and scheduler in table:
            own = table[scheduler].cpu_ticks / ticks
            cpu["executor workers and tasks"] = cpu.pop("scheduler") - own
            cpu["scheduler"] = own
        return cpu

    def busy_workers(self) -> list[str]:
        """Processes under the scheduler other than idle LocalExecutor workers (task supervisors, task
        processes, workers running a workload), by their titles."""
        pid = self.component_pids().get("scheduler")
        if pid is None:
            return []
        table = process_table()
        busy = []
        for member in descendants([pid], table)[pid] - {pid}:
            if not table[member].running:
                continue
            try:
                title = Path(f"/proc/{member}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if IDLE_WORKER_TITLE not in title:
                busy.append(title.strip()[:80])
        return busy

    def wait_until_executor_idle(self, timeout: float = IDLE_TIMEOUT) -> float:
        """Until no task runs under the scheduler (at most ``timeout`` s); returns the seconds waited."""
        started = time.monotonic()
        while self.busy_workers() and time.monotonic() - started < timeout:
            self.check_components()
            time.sleep(0.25)
        return time.monotonic() - started


class CpuSampler(threading.Thread):
    """A cross-check of the cutime accounting: samples each component tree's processes every second and
    keeps each process's largest own CPU time seen. Its sum misses the last second of each exited process
    and processes shorter than a second, so it is a lower bound of what the trees used."""

    def __init__(self, harness: DeploymentHarness, interval: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.harness = harness
        self.interval = interval
        self.stop_event = threading.Event()
        self.baseline: dict[tuple[int, int], int] = {}
        self.latest: dict[tuple[int, int], int] = {}
        self._sample(self.baseline)

    def _sample(self, into: dict[tuple[int, int], int]) -> None:
        table = process_table()
        pids = self.harness.component_pids().values()
        for tree in descendants(pids, table).values():
            for pid in tree:
                key = (pid, table[pid].start)
                into[key] = max(into.get(key, 0), table[pid].cpu_ticks)

    def run(self) -> None:
        while not self.stop_event.wait(self.interval):
            self._sample(self.latest)

    def finish(self) -> float:
        self.stop_event.set()
        self.join(timeout=5)
        self._sample(self.latest)
        ticks = sum(value - self.baseline.get(key, 0) for key, value in self.latest.items())
        return ticks / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------------------------------


def create_videos(harness: AirflowHarness, n: int, label: str) -> list[int]:
    """Create ``n`` videos through the API (not through Airflow); return their ids."""
    ids = []
    for index in range(n):
        body = json.dumps({"video_file_url": f"https://example.com/bench/{label}-{index}.mp4"}).encode()
        request = urllib.request.Request(
            f"{harness.simulator_url}/videos",
            data=body,
            method="POST",
            headers={
                "Authorization": f"Bearer {harness.api_token}",
                "Content-Type": "application/json",
                "Accept": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # loopback only
            ids.append(int(json.load(response)["data"]["id"]))
    return ids


def control(harness: AirflowHarness, path: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(
        f"{harness.control_url}/{path}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30):  # loopback only
        pass


#: Task-instance states in which a wait no longer needs a worker slot to get going: it deferred, or
#: ended (a failed first poke).
SETTLED_STATES = frozenset({"deferred", "success", "failed", "skipped", "upstream_failed"})


def wait_until_deferred(harness: DeploymentHarness, dag_id: str, run_id: str, n: int, timeout: float = 300) -> int:
    """Until each of the run's ``n`` waits has deferred (or ended); returns how many are deferred then."""
    deadline = time.monotonic() + timeout
    while True:
        harness.check_components()
        # The mapped waits' instances (map index >= 0), or the start variant's unmapped wait_for_video_<i>.
        states = [
            row[0]
            for row in harness.query(
                "SELECT state FROM task_instance WHERE dag_id = ? AND run_id = ? AND "
                "((task_id = ? AND map_index >= 0) OR task_id LIKE ?)",
                (dag_id, run_id, WAIT_TASK, WAIT_TASK + "_%"),  # "_" matches any one character: fine here
            )
        ]
        if len(states) == n and all(state in SETTLED_STATES for state in states):
            return states.count("deferred")
        if time.monotonic() > deadline:
            raise HarnessError(f"the waits of {run_id} did not all defer within {timeout:.0f} s: {Counter(states)}")
        time.sleep(0.5)


def is_wait(task_id: str) -> bool:
    """A wait of any variant: ``wait_for_video`` (mapped) or ``wait_for_video_<i>`` (the start variant)."""
    return task_id == WAIT_TASK or task_id.startswith(WAIT_TASK + "_")


def run_conf(variant: str, ids: list[int], n: int) -> dict[str, Any]:
    """The run's conf: the video ids; the start variant's N fixed tasks need N, so shorter lists repeat."""
    if variant == START_VARIANT:
        ids = [ids[i % len(ids)] for i in range(n)]
    return {"video_ids": ids}


def make_available(harness: AirflowHarness, ids: list[int]) -> None:
    """Every video of the list becomes ``available`` now (the simulator's control API)."""
    for video_id in ids:
        control(harness, f"videos/{video_id}/status", {"status": "available"})


def warm_up(harness: DeploymentHarness, variants: list[str], n: int, start_waits: int) -> float:
    """One small unmeasured run of every variant at once, each wait deferred, then its videos made
    available. Without it the first measured run pays for Airflow's first-use costs — the api-server's
    first requests (~10 s here), the first task the triggerer ends itself (it builds an in-process
    execution API client), the first import of each trigger class — whichever variant runs first.
    Returns the seconds it took."""
    started = time.monotonic()
    runs = {}
    for variant in variants:
        ids = create_videos(harness, n, f"warmup_{variant}")
        run_id = f"aib_bench_warmup_{variant}_{time.strftime('%H%M%S')}"
        harness.trigger(run_id=run_id, conf=run_conf(variant, ids, start_waits), dag_id=VARIANTS[variant])
        runs[variant] = (run_id, ids)
    for variant, (run_id, ids) in runs.items():
        wait_until_deferred(harness, VARIANTS[variant], run_id, start_waits if variant == START_VARIANT else len(ids))
        make_available(harness, ids)
    for variant, (run_id, _) in runs.items():
        state = harness.wait_for_run(run_id, VARIANTS[variant])
        if state != "success":
            raise HarnessError(f"the warm-up run {run_id} ended {state}; logs: {harness.workdir}")
    harness.wait_until_executor_idle()
    return time.monotonic() - started


def run_variant(
    harness: DeploymentHarness, variant: str, round_no: int, n: int, available_after: float
) -> dict[str, Any]:
    """One measured run: N new videos, trigger, every wait deferred, ``available_after`` seconds later
    every video available, the run's end, the executor idle again."""
    dag_id = VARIANTS[variant]
    label = f"{variant}_{round_no}"
    waited_before = harness.wait_until_executor_idle()
    ids = create_videos(harness, n, label)
    sampler = CpuSampler(harness)
    cpu_before = harness.cpu_by_component()
    started = time.monotonic()
    sampler.start()
    run_id = f"aib_bench_{label}_{time.strftime('%H%M%S')}"
    harness.trigger(run_id=run_id, conf=run_conf(variant, ids, n), dag_id=dag_id)
    deferred = wait_until_deferred(harness, dag_id, run_id, n)
    all_deferred = time.monotonic()
    print(f"  {all_deferred - started:5.1f} s  {deferred}/{n} waits deferred; available in {available_after:.0f} s")
    time.sleep(available_after)
    available_at = time.monotonic()
    make_available(harness, ids)
    outcome = harness.wait_for_run(run_id, dag_id)
    ended = time.monotonic()
    waited_after = harness.wait_until_executor_idle()
    cpu_after = harness.cpu_by_component()
    window = time.monotonic() - started
    sampled = sampler.finish()
    report = harness.report(run_id, dag_id)
    return measure(report, variant, round_no, ids, cpu_before, cpu_after, sampled) | {
        "outcome": outcome,
        "window_s": round(window, 1),
        "trigger_to_all_deferred_s": round(all_deferred - started, 1),
        "available_to_end_s": round(ended - available_at, 1),
        "trigger_to_end_s": round(ended - started, 1),
        "idle_wait_before_s": round(waited_before, 1),
        "idle_wait_after_s": round(waited_after, 1),
    }


def measure(
    report: RunReport,
    variant: str,
    round_no: int,
    ids: list[int],
    cpu_before: dict[str, float],
    cpu_after: dict[str, float],
    sampled: float,
) -> dict[str, Any]:
    n = len(ids)
    cpu = {name: round(cpu_after.get(name, 0.0) - cpu_before.get(name, 0.0), 2) for name in cpu_after}
    total = sum(cpu.values())
    waits = [t for t in report.tasks if is_wait(t.task_id)]
    wanted = {str(video_id) for video_id in ids}
    polls = sum(
        1
        for record in report.requests
        if record["method"] == "GET" and (m := VIDEO_PATH.match(record["path"])) and m["id"] in wanted
    )
    starts = sum(t.worker_starts for t in waits)
    return {
        "variant": variant,
        "round": round_no,
        "dag_id": report.dag_id,
        "run_id": report.run_id,
        "state": report.state,
        "n": n,
        "run_duration_s": None if report.duration is None else round(report.duration, 1),
        "cpu_s": round(total, 2),
        "cpu_by_component_s": cpu,
        "cpu_sampled_lower_bound_s": round(sampled, 2),
        "cpu_per_wait_s": total / n if n else None,
        "wait_task_instances": len(waits),
        "wait_states": dict(Counter(t.state or "none" for t in waits)),
        "deferred": sum(1 for t in waits if t.deferrals),
        "ended_in_triggerer": sum(1 for t in waits if t.ended_in_triggerer),
        "worker_starts": starts,
        "worker_starts_logged": sum(t.logged_starts for t in waits),
        "worker_starts_per_wait": starts / n if n else None,
        "worker_starts_all_tasks": report.worker_starts,
        "polls": polls,
        "polls_per_wait": polls / n if n else None,
    }


# --------------------------------------------------------------------------------------------------
# Summary and output
# --------------------------------------------------------------------------------------------------


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    by_variant: dict[str, dict[str, Any]] = {}
    for variant in VARIANTS:
        mine = [r for r in runs if r["variant"] == variant and r["state"] == "success"]
        if not mine:
            continue
        by_variant[variant] = {
            "runs": len(mine),
            "cpu_per_wait_s": mean([r["cpu_per_wait_s"] for r in mine]),
            "worker_starts_per_wait": mean([r["worker_starts_per_wait"] for r in mine]),
            "polls_per_wait": mean([r["polls_per_wait"] for r in mine]),
            "deferred_share": mean([r["deferred"] / r["n"] for r in mine]),
            "run_duration_s": mean([r["run_duration_s"] for r in mine if r["run_duration_s"] is not None]),
        }
    ours, anchor, start = by_variant.get("ours"), by_variant.get("anchor"), by_variant.get(START_VARIANT)
    cpu_ratio = start_ratio = None
    if ours and anchor and ours["cpu_per_wait_s"]:
        cpu_ratio = anchor["cpu_per_wait_s"] / ours["cpu_per_wait_s"]
    if start and anchor and start["cpu_per_wait_s"]:
        start_ratio = anchor["cpu_per_wait_s"] / start["cpu_per_wait_s"]
    # The same ratio for each pair of neighbouring runs (ours k, anchor k): its spread shows the noise.
    pair_ratios = []
    for round_no in sorted({r["round"] for r in runs}):
        pair = {r["variant"]: r for r in runs if r["round"] == round_no and r["state"] == "success"}
        if "ours" in pair and "anchor" in pair and pair["ours"]["cpu_per_wait_s"]:
            pair_ratios.append(pair["anchor"]["cpu_per_wait_s"] / pair["ours"]["cpu_per_wait_s"])
    return {
        "variants": by_variant,
        "cpu_ratio_anchor_over_ours": cpu_ratio,
        "cpu_ratio_per_round": pair_ratios,
        "cpu_target_passed": None if cpu_ratio is None else cpu_ratio >= 3,
        "ours_worker_starts_per_wait": ours["worker_starts_per_wait"] if ours else None,
        "anchor_worker_starts_per_wait": anchor["worker_starts_per_wait"] if anchor else None,
        "starts_target_passed": None if not ours else ours["worker_starts_per_wait"] <= 1.0,
        # start_from_trigger (unmapped waits, Airflow 3.3+): measured next to the others, no target of its own.
        "cpu_ratio_anchor_over_start": start_ratio,
        "start_worker_starts_per_wait": start["worker_starts_per_wait"] if start else None,
    }


COMPONENTS = ("scheduler", "executor workers and tasks", "triggerer", "api-server", "dag-processor")


def print_tables(result: dict[str, Any]) -> None:
    config = result["config"]
    runs = result["runs"]
    rows = []
    for r in runs:
        rows.append(
            [
                str(r["round"]),
                r["variant"],
                str(r["state"]),
                f"{r['deferred']}/{r['n']}",
                str(r["ended_in_triggerer"]),
                fmt(r["worker_starts_per_wait"], ".2f"),
                fmt(r["cpu_s"], ".1f"),
                fmt(r["cpu_per_wait_s"], ".3f"),
                *(fmt(r["cpu_by_component_s"].get(name), ".1f") for name in COMPONENTS),
                fmt(r["polls_per_wait"], ".1f"),
                fmt(r["run_duration_s"], ".0f"),
            ]
        )
    headers = ["round", "variant", "state", "deferred", "ended in triggerer", "worker starts/wait", "CPU s",
               "CPU s/wait", "scheduler s", "workers+tasks s", "triggerer s", "api-server s", "dag-processor s",
               "polls/wait", "run s"]  # fmt: skip
    title = (
        f"Deployment cost: N = {config['waits']} mapped waits, videos available {config['available_after_s']:.0f} s "
        f"after the last wait deferred, polls every {config['poll_seconds']:.0f} s, parallelism {config['parallelism']}"
    )
    print(table(headers, rows, title))
    idle = result.get("idle")
    if idle:
        print(
            f"\nIdle Airflow (no run, {idle['seconds']:.0f} s): {idle['cpu_per_second']:.3f} CPU s/s "
            f"({', '.join(f'{k} {v:.3f}' for k, v in idle['by_component_per_second'].items())})."
        )
    checks = [
        f"{r['variant']} {r['round']}: trees {r['cpu_s']:.1f} s, sampled {r['cpu_sampled_lower_bound_s']:.1f} s"
        for r in runs
    ]
    print("Method check (cutime accounting vs 1 Hz sampling of live processes): " + "; ".join(checks) + ".")
    summary = result["summary"]
    ours = summary["variants"].get("ours", {})
    anchor = summary["variants"].get("anchor", {})
    start = summary["variants"].get(START_VARIANT, {})
    ratio_rows = [
        [
            "CPU s per wait",
            fmt(ours.get("cpu_per_wait_s"), ".3f"),
            fmt(start.get("cpu_per_wait_s"), ".3f"),
            fmt(anchor.get("cpu_per_wait_s"), ".3f"),
            fmt(summary["cpu_ratio_anchor_over_ours"], ".2f") + "x",
            fmt(summary.get("cpu_ratio_anchor_over_start"), ".2f") + "x",
        ],
        [
            "worker starts per wait",
            fmt(ours.get("worker_starts_per_wait"), ".2f"),
            fmt(start.get("worker_starts_per_wait"), ".2f"),
            fmt(anchor.get("worker_starts_per_wait"), ".2f"),
            fmt(
                None
                if not ours.get("worker_starts_per_wait")
                else anchor.get("worker_starts_per_wait", 0) / ours["worker_starts_per_wait"],
                ".2f",
            )
            + "x",
            "",
        ],
        [
            "API polls per wait",
            fmt(ours.get("polls_per_wait"), ".1f"),
            fmt(start.get("polls_per_wait"), ".1f"),
            fmt(anchor.get("polls_per_wait"), ".1f"),
            "",
            "",
        ],
    ]
    headers = ["per wait (mean of runs)", "ours (mapped)", "ours, start_from_trigger (unmapped)", "anchor",
               "anchor / ours", "anchor / start"]  # fmt: skip
    print()
    print(table(headers, ratio_rows, "Ours vs the anchor"))
    if summary["cpu_ratio_per_round"]:
        print("\nCPU ratio per round (anchor / ours): " + ", ".join(f"{x:.2f}" for x in summary["cpu_ratio_per_round"]))


# --------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------


def not_run(args: Any, reason: str) -> dict[str, Any]:
    return {
        "benchmark": NAME,
        "smoke": args.smoke,
        "machine": machine_info(),
        "available": False,
        "reason": reason,
        "config": {},
        "runs": [],
        "summary": {},
    }


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--waits", type=int, default=None, help="mapped waits per run (default 100; smoke 4)")
    parser.add_argument("--rounds", type=int, default=1, help="pairs of runs (ours, anchor), alternating (default 1)")
    parser.add_argument(
        "--available-after",
        type=float,
        default=5.0,
        help="seconds from the moment every wait of a run has deferred until every video is available (default 5)",
    )
    parser.add_argument("--poll-seconds", type=float, default=5.0, help="poll interval of both variants (default 5)")
    parser.add_argument(
        "--parallelism",
        type=int,
        default=8,
        help="[core] parallelism: LocalExecutor workers (default 8; 16 on 2 cores made task starts slow enough to hit "
        "the 30 s DAG-file import timeout)",
    )
    parser.add_argument(
        "--idle-seconds", type=float, default=None, help="idle measurement before the runs (default 5; smoke 2)"
    )
    parser.add_argument("--warmup-waits", type=int, default=1, help="waits per variant in the warm-up run")
    parser.add_argument("--workdir", type=Path, default=None, help="a new or empty directory (default: temp dir)")
    args = parser.parse_args(argv)
    n = args.waits or (4 if args.smoke else 100)
    available_after = args.available_after
    idle_seconds = args.idle_seconds if args.idle_seconds is not None else (2.0 if args.smoke else 5.0)

    reason = None
    if os.environ.get(SKIP_ENV):
        reason = f"skipped ({SKIP_ENV}={os.environ[SKIP_ENV]})"
    elif not Path("/proc/self/stat").exists():
        reason = "needs Linux /proc to account CPU"
    elif airflow_major() < 3:
        reason = "needs Airflow 3: the harness runs Airflow 2 with the SequentialExecutor (SQLite), one task at a time"
    if reason:
        print(f"NOT RUN deployment benchmark: {reason}.")
        write_json(args.out, NAME, not_run(args, reason))
        return 0
    variants = list(VARIANTS)
    anchor_missing = not distribution_installed("apache-airflow-providers-http")
    if anchor_missing:
        print("The anchor needs apache-airflow-providers-http (pip install -e '.[bench]'): running ours only.")
        variants.remove("anchor")
    from airflow_provider_aiontheball.task_start import supports_start_from_trigger

    if not supports_start_from_trigger():
        print("start_from_trigger needs Airflow 3.3+: the 'start' variant is not run.")
        variants.remove(START_VARIANT)

    config = HarnessConfig(
        dag_id=VARIANTS[variants[0]],
        other_dag_ids=tuple(VARIANTS[v] for v in variants[1:]),
        dag_files=tuple(DAG_FILES[v] for v in variants),
        token="bench-" + os.urandom(8).hex(),
        # Videos stay preparing (init for 20 min) until the benchmark makes them available.
        video_step_seconds=1200.0,
        parallelism=args.parallelism,
        timeout=360 + args.rounds * len(variants) * (available_after + 360),
        workdir=args.workdir,
        dag_env={"AIB_BENCH_POLL_SECONDS": repr(args.poll_seconds), "AIB_BENCH_WAITS": str(n)},
    )
    harness = DeploymentHarness(config, progress=lambda line: print(line, flush=True))
    result: dict[str, Any] = {
        "benchmark": NAME,
        "smoke": args.smoke,
        "machine": machine_info(),
        "available": True,
        "config": {
            "waits": n,
            "rounds": args.rounds,
            "variants": {v: VARIANTS[v] for v in variants},
            "anchor_unavailable": anchor_missing,
            "available_after_s": available_after,
            "video_timeline": "preparing (init) until every wait of the run has deferred, then available_after_s "
            "later all available at once (the simulator's control API)",
            "poll_seconds": args.poll_seconds,
            "parallelism": args.parallelism,
            "executor": "LocalExecutor",
            "database": "SQLite",
            "workdir": str(harness.workdir),
        },
        "runs": [],
    }
    began = time.monotonic()
    try:
        with harness:
            print(f"\n--- warm-up: {args.warmup_waits} waits of each variant at once (not measured)", flush=True)
            result["warmup_s"] = round(warm_up(harness, variants, args.warmup_waits, n), 1)
            time.sleep(2)
            before, t0 = harness.cpu_by_component(), time.monotonic()
            time.sleep(idle_seconds)
            after, seconds = harness.cpu_by_component(), time.monotonic() - t0
            # max(0, ...): the scheduler's own time is subtracted from its tree; rounding may leave -0.0.
            by_component = {name: max(0.0, after[name] - before.get(name, 0.0)) / seconds for name in after}
            result["idle"] = {
                "seconds": round(seconds, 1),
                "cpu_per_second": sum(by_component.values()),
                "by_component_per_second": {k: round(v, 4) for k, v in by_component.items()},
            }
            for round_no in range(1, args.rounds + 1):
                for variant in variants:
                    print(f"\n--- round {round_no}: {variant} ({VARIANTS[variant]}), {n} waits", flush=True)
                    run = run_variant(harness, variant, round_no, n, available_after)
                    result["runs"].append(run)
                    print(
                        f"    {run['state']}: {run['deferred']}/{n} deferred, {run['worker_starts']} worker starts, "
                        f"{run['cpu_s']:.1f} CPU s ({run['cpu_per_wait_s']:.3f} per wait), "
                        f"window {run['window_s']:.0f} s",
                        flush=True,
                    )
    except HarnessError as exc:
        print(f"\nThe deployment benchmark failed: {exc}", file=sys.stderr)
        print(harness.failure_details(15), file=sys.stderr)
        result["available"] = False
        result["reason"] = f"Airflow run failed: {str(exc)[:300]}"
        result["summary"] = summarize(result["runs"])
        write_json(args.out, NAME, result)
        return 1
    result["summary"] = summarize(result["runs"])
    result["wall_s"] = round(time.monotonic() - began, 1)
    print()
    print_tables(result)
    # The start variant never defers from a worker (the harness sees deferrals in worker logs): 0 is right.
    unready = [r for r in result["runs"] if r["deferred"] < r["n"] and r["variant"] != START_VARIANT]
    if unready:
        print("\nWARNING: some waits never deferred (their first poke failed?): see the task logs.")
    failed = [r for r in result["runs"] if r["state"] != "success"]
    if failed:
        print(f"\nruns that did not succeed: {', '.join(r['run_id'] for r in failed)}; logs: {harness.workdir}")
    if harness.leftovers:
        print("Still running after the stop:\n  " + "\n  ".join(harness.leftovers), file=sys.stderr)
    print(f"\ntook {result['wall_s']:.0f} s; logs in {harness.workdir}")
    path = write_json(args.out, NAME, result)
    print(f"wrote {path}")
    return 1 if failed or harness.leftovers else 0


if __name__ == "__main__":
    sys.exit(main())
