"""``make demo``: run the match-ingestion example DAG in real Airflow against the bundled simulator.

No API token and no network needed: the simulator serves the AI on the Ball API on loopback. Real
Airflow processes (scheduler, triggerer, ...; see ``tests/airflow_harness.py``) run in a throwaway
``AIRFLOW_HOME``; the DAG's sensors defer to the triggerer. At the end every process started here is
stopped and a summary is printed. Exit code 0 only if the run succeeded and nothing was left running.

    python scripts/demo.py [--conf '{"cleanup": true}'] [--workdir DIR] [--timeout SECONDS]
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

# `python scripts/demo.py` puts only scripts/ on sys.path; the harness is test code shared with
# tests/test_e2e.py (`tests.airflow_harness`), so make the repository root importable first.
REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.airflow_harness import (  # noqa: E402 - needs the repository root on sys.path (above)
    AirflowHarness,
    HarnessConfig,
    HarnessError,
    RunReport,
    format_summary,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--conf", default=None, help="run conf as JSON, e.g. '{\"cleanup\": true}'")
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="a new or empty directory for the run's files (default: a new temp dir)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=HarnessConfig.timeout,
        help="seconds from start until the run must have ended (default %(default).0f)",
    )
    parser.add_argument(
        "--video-step-seconds",
        type=float,
        default=None,
        help="seconds a simulated video spends in each preparing status (default: 4 on Airflow 3, 8 on Airflow 2)",
    )
    return parser


def _raise_interrupt(signum: int, frame: FrameType | None) -> NoReturn:
    # SIGTERM (e.g. a CI timeout) takes the same path as Ctrl-C, so every child is stopped.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        extra_conf = json.loads(args.conf or "{}")
    except ValueError as exc:
        parser.error(f"--conf is not valid JSON: {exc}")
    if not isinstance(extra_conf, dict):
        parser.error("--conf must be a JSON object")
    signal.signal(signal.SIGTERM, _raise_interrupt)
    started = time.monotonic()
    harness = AirflowHarness(
        HarnessConfig(workdir=args.workdir, timeout=args.timeout, video_step_seconds=args.video_step_seconds),
        progress=lambda line: print(line, flush=True),
    )
    # Results go into the throwaway directory, not the example's default (/tmp/aiontheball/results).
    conf: dict[str, Any] = {"output_path": str(harness.workdir / "results")} | extra_conf
    report: RunReport | None = None
    try:
        with harness:
            run_id = harness.trigger(conf=conf)
            harness.wait_for_run(run_id)
            report = harness.report(run_id)
            print("Stopping Airflow and the simulator…", flush=True)
        # Leaving the `with` block stopped every process group (and printed how that went).
    except HarnessError as exc:
        print(f"\nThe demo failed: {exc}", file=sys.stderr)
        print(harness.failure_details(15), file=sys.stderr)
        print(f"\nAll logs: {harness.workdir}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # The `with` block has stopped everything by now (a second Ctrl-C only makes that quicker).
        outcome = "still running: " + "; ".join(harness.leftovers) if harness.leftovers else "stopped everything"
        print(f"\nInterrupted; {outcome}. Logs: {harness.workdir}", file=sys.stderr)
        return 130
    assert report is not None  # set unless an exception returned above
    leftovers = harness.leftovers
    print(f"Total demo time {time.monotonic() - started:.0f} s.\n")
    print(format_summary(report))
    print(
        f"\nLogs: {harness.process_dir} (one file per Airflow process), {harness.task_log_dir} (task and trigger logs)"
    )
    if leftovers:
        print("Still running after the stop (a bug; kill them by hand):\n  " + "\n  ".join(leftovers), file=sys.stderr)
        return 1
    if report.state != "success":
        print(f"\nThe run did not succeed (run state: {report.state}); see the errors above.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
