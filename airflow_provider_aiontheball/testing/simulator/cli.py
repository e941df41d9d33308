"""The command line: ``python -m airflow_provider_aiontheball.testing.simulator --help``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from airflow_provider_aiontheball.testing.simulator.app import Simulator
from airflow_provider_aiontheball.testing.simulator.config import API_PREFIX, SimulatorConfig
from airflow_provider_aiontheball.testing.simulator.server import _serve


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_aiontheball.testing.simulator",
        description="Serve an offline simulator of the AI on the Ball Insight API v1.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (0 picks a free one; default 8765)")
    parser.add_argument(
        "--token",
        action="append",
        default=None,
        help="accepted bearer token; repeat for several organisations (org-1, org-2, ...). "
        "Default: test-token. Tokens are never printed.",
    )
    parser.add_argument("--video-step-seconds", type=float, default=2.0)
    parser.add_argument("--analysis-seconds", type=float, default=30.0)
    parser.add_argument("--per-page", type=int, default=15)
    parser.add_argument("--webhook-url", default=None, help="POST webhooks to this URL")
    parser.add_argument(
        "--commit-delay-seconds",
        type=float,
        default=0.0,
        help="list a created video (and show a created analysis on its video) only this long after its POST",
    )
    parser.add_argument(
        "--echo-submitted-fields",
        action="store_true",
        help="echo video_file_url, date, offsets and left_start_team on video objects (the docs return none)",
    )
    parser.add_argument(
        "--video-ready-after-gets",
        type=int,
        default=0,
        help="a video reaches its final status no sooner than the answer to this many GET /videos/{id} "
        "(default 0: time alone decides)",
    )
    parser.add_argument("--ready-file", default=None, help="write the base URL to this file once listening")
    return parser


def _write_text(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


async def _run_cli(args: argparse.Namespace) -> int:
    tokens = args.token or ["test-token"]
    config = SimulatorConfig(
        tokens={token: f"org-{index}" for index, token in enumerate(tokens, start=1)},
        video_step_seconds=args.video_step_seconds,
        analysis_seconds=args.analysis_seconds,
        per_page=args.per_page,
        webhook_url=args.webhook_url,
        commit_delay_seconds=args.commit_delay_seconds,
        echo_submitted_fields=args.echo_submitted_fields,
        video_ready_after_gets=args.video_ready_after_gets,
    )
    simulator = Simulator(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    runner, port = await _serve(simulator, args.host, args.port)
    try:
        base_url = f"http://{args.host}:{port}{API_PREFIX}"
        print(f"AI on the Ball simulator listening on {base_url}", flush=True)
        if args.ready_file:
            await asyncio.to_thread(_write_text, args.ready_file, base_url + "\n")
        await stop.wait()
    finally:
        await runner.cleanup()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the simulator until SIGTERM/SIGINT; return the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(_run_cli(args))
    except OSError as exc:
        print(f"AI on the Ball simulator could not listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # pragma: no cover - SIGINT before the handler was installed
        return 0
