"""``make e2e-distributed``: the match-ingestion example in a production-shaped Airflow, through fault drills.

PostgreSQL and Redis (Debian's packages), Airflow 3.3.2 with the CeleryExecutor: api-server, scheduler,
dag-processor, two Celery workers and two triggerers, each a separate process, against the bundled
simulator on loopback (``aib_harness/distributed.py``). One run of ``--matches`` mapped matches, and
during it:

1. ``worker-kill``: SIGKILL the Celery worker running one ``create_video`` after its POST reached the API;
2. ``triggerer-kill``: SIGKILL the triggerer holding the most deferred waits;
3. ``outage``: every API request answers 503, first with ``Retry-After``, then without;
4. ``token-rotation``: a new token, the connection changed with ``airflow connections import``, the old
   token revoked.

At the end: the checks and the figures (also written to ``figures.md`` and ``figures.json`` in the workdir).
Exit code 0 only if every check held and nothing was left running.

    python scripts/e2e_distributed.py [--matches N] [--drills worker-kill,outage] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from aib_harness.airflow import run_in
from aib_harness.distributed import (
    DRILL_NAMES,
    DistributedConfig,
    DistributedHarness,
    Drills,
    format_figures,
    match_conf,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--matches", type=int, default=DistributedConfig.matches, help="mapped matches (default %(default)s)"
    )
    parser.add_argument(
        "--drills",
        default=",".join(DRILL_NAMES),
        help="comma-separated drills to run (default: all of %(default)s)",
    )
    parser.add_argument(
        "--analysis-seconds",
        type=float,
        default=DistributedConfig.analysis_seconds,
        help="seconds a simulated analysis runs; the drills happen while analyses run (default %(default).0f)",
    )
    parser.add_argument("--workdir", type=Path, default=None, help="a new or empty directory (default: a temp dir)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DistributedConfig.timeout,
        help="seconds for the whole run (default %(default).0f)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    drills = tuple(name.strip() for name in args.drills.split(",") if name.strip())
    if unknown := sorted(set(drills) - set(DRILL_NAMES)):
        parser.error(f"--drills: unknown {', '.join(unknown)} (known: {', '.join(DRILL_NAMES)})")
    if args.matches < 4:
        parser.error("--matches must be at least 4")
    started = time.monotonic()
    config = DistributedConfig(
        matches=args.matches,
        drills=drills,
        workdir=args.workdir,
        timeout=args.timeout,
        analysis_seconds=args.analysis_seconds,
    )
    harness = DistributedHarness(config, progress=lambda line: print(line, flush=True))
    matches = match_conf(config.matches)
    conf = {"matches": matches, "output_path": str(harness.workdir / "results")}
    drill_run = Drills(
        harness, f"aib_drills__{time.strftime('%Y%m%dT%H%M%S')}", progress=lambda line: print(line, flush=True)
    )

    def run() -> None:
        drill_run.run(matches, conf)
        drill_run.evaluate(harness.report(drill_run.run_id))

    if (code := run_in(harness, run, "Stopping Airflow, the simulator, PostgreSQL and Redis…")) is not None:
        return code
    drill_run.figures["total_wall_seconds"] = round(time.monotonic() - started, 1)
    leftovers = harness.leftovers
    drill_run.check("run", "nothing left running after the stop", not leftovers, "; ".join(leftovers) or "none")
    text = format_figures(drill_run.figures, drill_run.checks, harness)
    (harness.workdir / "figures.md").write_text(text + "\n")
    (harness.workdir / "figures.json").write_text(json.dumps(drill_run.figures, indent=2) + "\n")
    print("\n" + text)
    print(f"\nLogs: {harness.process_dir} (one file per process), {harness.task_log_dir} (task and trigger logs)")
    failed = [c for c in drill_run.checks if not c.ok]
    if failed:
        print(
            f"\n{len(failed)} check(s) failed: " + "; ".join(f"{c.drill}: {c.claim}" for c in failed), file=sys.stderr
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
