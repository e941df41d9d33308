"""Run every benchmark, then print the targets against what was measured (``make bench``).

Each benchmark runs as its own process (``bench_polling.py``, ``bench_triggerer.py``,
``bench_parse.py``, ``bench_deployment.py``), prints its tables and writes ``<out>/<name>.json``; this
script then reads the JSON files and writes ``<out>/summary.json``. Missing a target is a finding, not an
error: the exit code is non-zero only when a benchmark itself failed.

``bench_deployment.py`` starts a real Airflow 3 (scheduler, LocalExecutor, triggerer, ...); where Airflow
cannot start, skip it with ``--skip-deployment`` or ``AIB_BENCH_SKIP_DEPLOYMENT=1`` (it then says so in
the output and the summary, never silently).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BENCH_DIR, base_parser, fmt, machine_info, table, write_json

BENCHMARKS = ("polling", "triggerer", "parse", "deployment")
#: Set for bench_deployment.py by --skip-deployment (it reads the same variable itself).
SKIP_DEPLOYMENT_ENV = "AIB_BENCH_SKIP_DEPLOYMENT"


@dataclass(frozen=True)
class Check:
    name: str
    target: str
    #: (measured text, passed or None when it cannot be told) from the loaded results.
    evaluate: Callable[[dict[str, Any]], tuple[str, bool | None]]


def _trigger_run(results: dict[str, Any], start: str = "spread") -> tuple[str, dict[str, Any]] | None:
    """The scenario the trigger targets apply to: N = 1,000 (or the largest N run, e.g. in a smoke run)."""
    runs = results.get("triggerer", {}).get("runs", {})
    candidates = [(int(key.split()[0].removeprefix("N=")), key) for key in runs if key.endswith(f" {start}")]
    if not candidates:
        return None
    _, key = max(candidates)
    return key, runs[key]


def _ours(results: dict[str, Any], field: str, start: str = "spread") -> tuple[str, float | None]:
    found = _trigger_run(results, start)
    if found is None:
        return "not run", None
    key, sides = found
    value = sides.get("ours", {}).get(field)
    return key, value


def cpu_per_poll(results: dict[str, Any]) -> tuple[str, bool | None]:
    key, value = _ours(results, "cpu_per_poll_us")
    if value is None:
        return key, None
    return f"{value:.0f} µs ({key})", value <= 150


def cpu_ratio(results: dict[str, Any]) -> tuple[str, bool | None]:
    found = _trigger_run(results)
    if found is None:
        return "not run", None
    key, sides = found
    ours = sides.get("ours", {}).get("cpu_per_poll_us")
    base = sides.get("baseline", {}).get("cpu_per_poll_us")
    if ours is None or base is None or not ours:
        reason = sides.get("baseline", {}).get("reason", "baseline unavailable")
        return f"{reason} ({key})", None
    factor = base / ours
    return f"baseline {base:.0f} µs / ours {ours:.0f} µs = {factor:.2f}x lower ({key})", factor >= 2


def rss_per_trigger(results: dict[str, Any]) -> tuple[str, bool | None]:
    key, value = _ours(results, "rss_peak_growth_per_trigger_kib")
    if value is None:
        return key, None
    return f"{value:.1f} KiB ({key})", value <= 30


def lag(start: str) -> Callable[[dict[str, Any]], tuple[str, bool | None]]:
    def evaluate(results: dict[str, Any]) -> tuple[str, bool | None]:
        found = _trigger_run(results, start)
        if found is None:
            return "not run", None
        key, sides = found
        ours = sides.get("ours", {})
        value = ours.get("lag_max_ms")
        if value is None:
            return key, None
        gc_pause = ours.get("gc", {}).get("gen2", {}).get("max_pause_ms", 0.0)
        return f"{value:.0f} ms; longest full GC {gc_pause:.0f} ms ({key})", value <= 100

    return evaluate


def parse_cost(results: dict[str, Any]) -> tuple[str, bool | None]:
    parse = results.get("parse")
    if not parse:
        return "not run", None
    value = parse.get("target", {}).get("import_ms_median")
    if value is None:
        return "no operators or sensors found", None
    return f"{value:.1f} ms over `{parse['config']['baseline']}`", value <= 10


def analysis_waits(results: dict[str, Any]) -> tuple[str, bool | None]:
    polling = results.get("polling")
    if not polling:
        return "not run", None
    target = polling["target"]
    latency, calls_p95, calls_mean = target["latency_p95_s"], target["calls_p95"], target["calls_mean"]
    text = f"p95 detection {latency:.0f} s, calls p95 {calls_p95:.0f} (mean {calls_mean:.1f}) [{target['policy']}]"
    fixed = polling["populations"]["analyses_4h"]["policies"].get("fixed 60 s")
    if fixed:
        text += f"; fixed 60 s: {fixed['calls_mean']:.0f} calls"
    return text, bool(math.isfinite(latency) and latency <= 60 and calls_p95 <= 40)


def figure(name: str) -> Callable[[dict[str, Any]], tuple[str, bool | None]]:
    """A figure ``bench_triggerer.py`` evaluated itself (``burst``, ``backpressure``)."""

    def evaluate(results: dict[str, Any]) -> tuple[str, bool | None]:
        found = results.get("triggerer", {}).get("figures", {}).get(name)
        if not found:
            return "not run", None
        return str(found["measured"]), found["passed"]

    return evaluate


def _deployment(results: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """(why there is nothing to judge, or None; the deployment results)."""
    deployment = results.get("deployment")
    if not deployment:
        return "not run", {}
    if not deployment.get("available", True):
        return f"not run: {deployment.get('reason', 'unknown reason')}", {}
    return None, deployment


def deployment_cpu(results: dict[str, Any]) -> tuple[str, bool | None]:
    missing, deployment = _deployment(results)
    if missing:
        return missing, None
    summary, n = deployment["summary"], deployment["config"]["waits"]
    ours, anchor = summary["variants"].get("ours"), summary["variants"].get("anchor")
    factor = summary.get("cpu_ratio_anchor_over_ours")
    if not ours or not anchor or factor is None:
        return f"anchor unavailable (N={n})", None
    return (
        f"anchor {anchor['cpu_per_wait_s']:.2f} s / ours {ours['cpu_per_wait_s']:.2f} s per wait = {factor:.2f}x "
        f"less (N={n}, {ours['runs']}+{anchor['runs']} runs)",
        factor >= 3,
    )


def deployment_starts(results: dict[str, Any]) -> tuple[str, bool | None]:
    missing, deployment = _deployment(results)
    if missing:
        return missing, None
    variants = deployment["summary"]["variants"]
    ours, anchor = variants.get("ours"), variants.get("anchor")
    if not ours:
        return "no successful run", None
    text = f"ours {ours['worker_starts_per_wait']:.2f}"
    if anchor:
        text += f", anchor {anchor['worker_starts_per_wait']:.2f}"
    return f"{text} per wait (N={deployment['config']['waits']})", ours["worker_starts_per_wait"] <= 1.0


def deployment_start_from_trigger(results: dict[str, Any]) -> tuple[str, bool | None]:
    """The unmapped waits started in the triggerer (``start_from_trigger``, 3.3+): no worker start at all."""
    missing, deployment = _deployment(results)
    if missing:
        return missing, None
    summary = deployment["summary"]
    starts = summary.get("start_worker_starts_per_wait")
    if starts is None:
        return "not run (needs Airflow 3.3+)", None
    ratio = summary.get("cpu_ratio_anchor_over_start")
    cpu = "" if ratio is None else f"; CPU per wait {ratio:.2f}x less than the anchor"
    return f"{starts:.2f} per wait (N={deployment['config']['waits']}){cpu}", starts == 0


CHECKS = (
    Check("Trigger CPU per poll, N = 1,000", "<= 150 µs", cpu_per_poll),
    Check("Trigger CPU per poll vs HttpAsyncHook, same run", ">= 2x lower", cpu_ratio),
    Check("Peak RSS per waiting trigger, N = 1,000", "<= 30 KiB", rss_per_trigger),
    Check("Max event-loop lag, N = 1,000 (starts spread)", "<= 100 ms", lag("spread")),
    Check("Max event-loop lag, N = 1,000 (all start at once)", "<= 100 ms", lag("burst")),
    Check("Import of operators + sensors modules", "<= 10 ms over baseline", parse_cost),
    Check("Analysis waits, ~4 h", "p95 detection <= 60 s with <= 40 calls (p95)", analysis_waits),
    Check("Burst: 1,000 triggers started in the same second", "busiest second <= 2x the mean rate", figure("burst")),
    Check(
        "Back-pressure: one 429 (Retry-After: 10) to 1 of 1,000 waits",
        "0 new polls on that connection during the 10 s",
        figure("backpressure"),
    ),
    Check("Deployment CPU per wait vs HttpSensor, real Airflow 3", ">= 3x less", deployment_cpu),
    Check("Worker starts per deferred wait, real Airflow 3", "1 (HttpSensor: 2)", deployment_starts),
    Check("Worker starts per wait with start_from_trigger, Airflow 3.3", "0", deployment_start_from_trigger),
)


def run_benchmark(
    name: str, out: Path, smoke: bool, install: bool, skip_deployment: bool = False
) -> tuple[bool, float]:
    cmd = [sys.executable, str(BENCH_DIR / f"bench_{name}.py"), "--out", str(out)]
    if smoke:
        cmd.append("--smoke")
    if name == "parse" and install and not smoke:
        cmd.append("--install-dbt-cloud")
    env = None
    if name == "deployment" and skip_deployment:
        env = os.environ | {SKIP_DEPLOYMENT_ENV: "--skip-deployment"}
    print(f"\n=== {name}: {' '.join(Path(part).name if part.endswith('.py') else part for part in cmd[1:])}\n")
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env)
    if name == "deployment" and proc.returncode != 0:
        print(
            f"\nbench_deployment.py failed (above: why). Where Airflow cannot start, skip it with "
            f"--skip-deployment or {SKIP_DEPLOYMENT_ENV}=1."
        )
    return proc.returncode == 0, time.perf_counter() - started


def summarize(out: Path, smoke: bool, failures: list[str], durations: dict[str, float]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name in BENCHMARKS:
        path = out / f"{name}.json"
        if path.exists():
            results[name] = json.loads(path.read_text())
    rows = []
    for check in CHECKS:
        measured, passed = check.evaluate(results)
        status = "n/a" if passed is None else ("PASS" if passed else "MISS")
        rows.append({"name": check.name, "target": check.target, "measured": measured, "status": status})
    summary: dict[str, Any] = {
        "benchmark": "summary",
        "smoke": smoke,
        "machine": machine_info(),
        "checks": rows,
        "failures": failures,
        "durations_s": durations,
        "results_found": sorted(results),
    }
    title = "Targets vs measured" + (" (SMOKE RUN: tiny sizes, the numbers mean nothing)" if smoke else "")
    machine = summary["machine"]
    print(
        f"\nmachine: {machine['nproc']} cores, {machine['cpu_model']}, {machine['memory_gib']} GiB RAM, "
        f"Python {machine['python']}, Airflow {machine['apache_airflow']}, load average {machine['load_average']}"
    )
    print()
    print(
        table(
            ["target", "goal", "measured", "status"],
            [[r["name"], r["target"], r["measured"], r["status"]] for r in rows],
            title,
        )
    )
    if failures:
        print(f"\nbenchmarks that failed: {', '.join(failures)}")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(BENCHMARKS)}")
    parser.add_argument("--no-install", action="store_true", help="do not pip install the dbt Cloud provider")
    parser.add_argument(
        "--skip-deployment",
        action="store_true",
        help=f"do not start Airflow for bench_deployment.py (same as {SKIP_DEPLOYMENT_ENV}=1); the results say so",
    )
    parser.add_argument(
        "--summarize-only", action="store_true", help="only read existing results in --out and print the summary"
    )
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",")] if args.only else list(BENCHMARKS)
    unknown = set(chosen) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    failures: list[str] = []
    durations: dict[str, float] = {}
    if not args.summarize_only:
        started = time.perf_counter()
        for name in chosen:
            ok, seconds = run_benchmark(name, args.out, args.smoke, not args.no_install, args.skip_deployment)
            durations[name] = round(seconds, 1)
            if not ok:
                failures.append(name)
        durations["total"] = round(time.perf_counter() - started, 1)
    summary = summarize(args.out, args.smoke, failures, durations)
    path = write_json(args.out, "summary", summary)
    if durations:
        print(f"\ntook {fmt(durations.get('total'), '.0f')} s; wrote {path}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
