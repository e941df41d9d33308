"""``make demo``: run the match-ingestion example DAG in real Airflow against the bundled simulator.

No API token and no network needed: the simulator serves the AI on the Ball API on loopback. Real
Airflow processes (scheduler, triggerer, ...; see ``aib_harness/airflow.py``) run in a throwaway
``AIRFLOW_HOME``; the DAG's sensors defer to the triggerer. At the end every process started here is
stopped and a summary is printed: tasks, deferrals, the worker starts of each task id (what a deferred
wait costs in worker processes), videos and API requests. Exit code 0 only if the run succeeded and
nothing was left running.

With ``--source s3`` (``make demo-object-storage``) the matches' videos are real MP4 files (11 minutes,
25 fps, tiny frames) in moto's S3 server on loopback: the run ingests ``s3://`` paths, which the create
operator presigns through the ``aws_default`` connection, and checks each presigned URL before its POST (the
connection's ``preflight`` extra on); the summary shows what those checks measured, and the demo fails if a
video was posted unchecked.

With ``--keep-running`` the web UI is served too, and after the run Airflow stays up (the UI's URL and
how to log in are printed) until Ctrl-C stops everything. With ``--browser-check`` headless Chromium
checks the UI after the run (``aib_harness/browser.py``; screenshots next to the logs).

    python scripts/demo.py [--source s3] [--conf '{"cleanup": true}'] [--workdir DIR] [--timeout SECONDS]
                           [--keep-running] [--browser-check]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aib_harness.airflow import AirflowHarness, HarnessConfig, example_matches, run_in
from aib_harness.logs import find_secrets
from aib_harness.report import RunReport, format_summary

#: A presigned URL's signature in clear (SigV4: 64 hex digits); masked it reads ``X-Amz-Signature=***`` or ``?***``.
SIGNATURE_IN_CLEAR = re.compile(rb"X-Amz-Signature=[0-9a-f]{64}")
#: The bucket of ``--source s3``; each match's video is at ``s3://BUCKET/season-2025/<its file name>``.
BUCKET = "aib-demo-matches"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--source",
        choices=("https", "s3"),
        default="https",
        help="https: the example's public URLs (the simulator downloads nothing); s3: real MP4s in a loopback S3 "
        "server, presigned and checked before upload (default %(default)s)",
    )
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


@contextlib.contextmanager
def _s3_matches(progress: Any) -> Iterator[tuple[list[dict[str, Any]], dict[str, str], str]]:
    """moto's S3 server with the example's matches as real MP4 files: the matches with ``s3://`` paths, the
    ``aws_default`` connection (JSON in its environment variable) the create operator signs with, its secret."""
    from aib_harness.media import match_video, s3_server

    progress("Making the match video (11 min, 25 fps; cached) and starting moto's S3 server on loopback…")
    video = match_video()
    with s3_server() as server:
        client = server.client()
        client.create_bucket(Bucket=BUCKET)
        matches = []
        for match in example_matches():
            key = "season-2025/" + match["video_file_url"].rsplit("/", 1)[-1]
            client.upload_file(str(video), BUCKET, key)
            matches.append({**match, "video_file_url": f"s3://{BUCKET}/{key}"})
        progress(f"Uploaded {len(matches)} videos of {video.stat().st_size} bytes to s3://{BUCKET}/season-2025/.")
        yield matches, {"AIRFLOW_CONN_AWS_DEFAULT": json.dumps(server.connection())}, server.secret_key


def _unchecked(report: RunReport) -> list[str]:
    """Create tasks that succeeded without pre-flight figures (``--source s3`` asks for them all)."""
    return [
        task.label
        for task in report.tasks_named("create_video")
        if task.state == "success" and "summary" not in report.preflight.get(task.label, {})
    ]


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        return _main(parser, args, stack)


def _main(parser: argparse.ArgumentParser, args: argparse.Namespace, stack: contextlib.ExitStack) -> int:
    try:
        extra_conf = json.loads(args.conf or "{}")
    except ValueError as exc:
        parser.error(f"--conf is not valid JSON: {exc}")
    if not isinstance(extra_conf, dict):
        parser.error("--conf must be a JSON object")
    started = time.monotonic()

    def progress(line: str) -> None:
        print(line, flush=True)

    source_conf: dict[str, Any] = {}
    source_env: dict[str, str] = {}
    secrets: list[str] = []
    if args.source == "s3":
        matches, source_env, aws_secret = stack.enter_context(_s3_matches(progress))
        source_conf = {"matches": matches}
        secrets.append(aws_secret)
    harness = AirflowHarness(
        HarnessConfig(
            workdir=args.workdir,
            timeout=args.timeout,
            video_step_seconds=args.video_step_seconds,
            preflight=args.source == "s3",
            dag_env=HarnessConfig().dag_env | source_env,
            ui=args.keep_running or args.browser_check,
        ),
        progress=progress,
    )
    # Results go into the throwaway directory, not the example's default (/tmp/aiontheball/results).
    conf: dict[str, Any] = {"output_path": str(harness.workdir / "results")} | source_conf | extra_conf
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
    if args.source == "s3" and (unchecked := _unchecked(report)):
        print(f"\nPosted without checks before upload: {', '.join(unchecked)}", file=sys.stderr)
        return 1
    # The token, the storage's secret key and the presigned URLs' signatures: in no log, config or DB file.
    if leaks := find_secrets(harness.workdir, [harness.config.token, *secrets], [SIGNATURE_IN_CLEAR]):
        print("\nSecrets in the run's files:\n  " + "\n  ".join(leaks), file=sys.stderr)
        return 1
    if report.state != "success":
        print(f"\nThe run did not succeed (run state: {report.state}); see the errors above.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
