"""``make demo``: run the match-ingestion example DAG in real Airflow against the bundled simulator.

No API token and no network needed: the simulator serves the AI on the Ball API on loopback. Real
Airflow processes (scheduler, triggerer, ...; see ``aib_harness/airflow.py``) run in a throwaway
``AIRFLOW_HOME``; the DAG's sensors defer to the triggerer. At the end every process started here is
stopped and a summary is printed: tasks, deferrals, the worker starts of each task id (what a deferred
wait costs in worker processes), videos and API requests. Exit code 0 only if the run succeeded and
nothing was left running.

With ``--keep-running`` the web UI is served too, and after the run Airflow stays up (the UI's URL and
how to log in are printed) until Ctrl-C stops everything. With ``--browser-check`` headless Chromium
checks the UI after the run (``aib_harness/browser.py``; screenshots next to the logs).

    python scripts/demo.py [--conf '{"cleanup": true}'] [--workdir DIR] [--timeout SECONDS] [--keep-running]
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

from aib_harness.airflow import AirflowHarness, HarnessConfig, run_in
from aib_harness.report import RunReport, format_summary


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
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="serve the web UI and leave Airflow up after the run, until Ctrl-C",
    )
    parser.add_argument(
        "--browser-check",
        action="store_true",
        help="after the run, check the connection form and the extra link in headless Chromium",
    )
    return parser


def _keep_running(harness: AirflowHarness) -> None:
    """Until Ctrl-C (or a component exiting): print where the UI is and how to log in."""
    login = (
        "no login needed (every visitor is admin: a throwaway local instance)"
        if harness.major >= 3
        else f"log in as admin / {harness.ui_password} (a throwaway user of this instance)"
    )
    print(f"\nAirflow {harness.version} stays up. Open {harness.ui_url}/ : {login}.", flush=True)
    print(f"The run: {harness.ui_url}/dags/{harness.config.dag_id}. Press Ctrl-C to stop everything.", flush=True)
    # Ctrl-C stops everything even where the shell that started this ignores SIGINT (a background job).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        while True:
            harness.check_components()
            time.sleep(1)  # a person is looking at the UI; nothing to wait for
    except KeyboardInterrupt:
        print("\nCtrl-C: stopping…", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        extra_conf = json.loads(args.conf or "{}")
    except ValueError as exc:
        parser.error(f"--conf is not valid JSON: {exc}")
    if not isinstance(extra_conf, dict):
        parser.error("--conf must be a JSON object")
    started = time.monotonic()
    harness = AirflowHarness(
        HarnessConfig(
            workdir=args.workdir,
            timeout=args.timeout,
            video_step_seconds=args.video_step_seconds,
            ui=args.keep_running or args.browser_check,
        ),
        progress=lambda line: print(line, flush=True),
    )
    # Results go into the throwaway directory, not the example's default (/tmp/aiontheball/results).
    conf: dict[str, Any] = {"output_path": str(harness.workdir / "results")} | extra_conf
    report: RunReport | None = None
    browser_failures: list[str] = []

    def run() -> None:
        nonlocal report
        run_id = harness.trigger(conf=conf)
        harness.wait_for_run(run_id)
        report = harness.report(run_id)
        if args.browser_check:
            from aib_harness.browser import check_ui

            browser_failures.extend(check_ui(harness, report, harness.workdir / "screenshots"))
        if args.keep_running:
            print(format_summary(report))
            _keep_running(harness)

    if (code := run_in(harness, run, "Stopping Airflow and the simulator…")) is not None:
        return code
    assert report is not None  # set unless an exception returned above
    leftovers = harness.leftovers
    print(f"Total demo time {time.monotonic() - started:.0f} s.\n")
    if not args.keep_running:
        print(format_summary(report))
    print(
        f"\nLogs: {harness.process_dir} (one file per Airflow process), {harness.task_log_dir} (task and trigger logs)"
    )
    if leftovers:
        print("Still running after the stop (a bug; kill them by hand):\n  " + "\n  ".join(leftovers), file=sys.stderr)
        return 1
    if browser_failures:
        print("\nThe UI check failed:\n  " + "\n  ".join(browser_failures), file=sys.stderr)
        return 1
    if report.state != "success":
        print(f"\nThe run did not succeed (run state: {report.state}); see the errors above.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
