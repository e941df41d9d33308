"""Webhooks: progress and done deliveries to a real receiver, failures counted, none without a URL."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from aiohttp import web

from airflow_provider_aiontheball.testing.simulator import SimulatorServer
from tests.standalone.simulator._helpers import Api, done_analysis, wait_until


class WebhookReceiver:
    """A small aiohttp app on its own thread that records what it receives."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[tuple[dict[str, str], Any]] = []
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.port = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _handle(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.json()))
        return web.Response(status=self.status)

    def _run(self) -> None:
        async def main() -> None:
            app = web.Application()
            app.router.add_post("/hook", self._handle)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = runner.addresses[0][1]
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._ready.set()
            await self._stop.wait()
            await runner.cleanup()

        asyncio.run(main())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def payloads(self) -> list[Any]:
        return [payload for _, payload in self.received]


def test_webhooks_are_delivered(make_server: Callable[..., SimulatorServer]) -> None:
    with WebhookReceiver() as receiver:
        server = make_server(webhook_url=receiver.url)
        api = Api(server)
        video = api.create_video()
        analysis = api.create_analysis(video["id"])
        server.simulator.advance(7 + 30 * 0.5)  # half-way through running
        wait_until(lambda: len(receiver.received) >= 1)
        server.simulator.advance(10_000)
        wait_until(lambda: any(p["event"] == "analysis_done" for p in receiver.payloads()))
        wait_until(lambda: server.simulator.stats["webhooks_sent"] == len(receiver.received))

    uuid = analysis["uuid"]
    payloads = receiver.payloads()
    assert payloads == [
        *[
            {
                "event": "analysis_completion_rate",
                "analysis_id": uuid,
                "status": "running",
                "completion_rate": rate,
            }
            for rate in range(0, 100, 10)
        ],
        {
            "event": "analysis_completion_rate",
            "analysis_id": uuid,
            "status": "aggregating",
            "completion_rate": 95,
        },
        {"event": "analysis_done", "analysis_id": uuid, "status": "done", "completion_rate": 100},
    ]
    for headers, _ in receiver.received:
        assert headers["User-Agent"] == "AI-on-the-ball"
        assert headers["Content-Type"].startswith("application/json")
    assert server.simulator.stats["webhooks_failed"] == 0


def test_webhook_for_a_failed_analysis(make_server: Callable[..., SimulatorServer]) -> None:
    with WebhookReceiver() as receiver:
        server = make_server(webhook_url=receiver.url)
        server.simulator.script_next_analyses("error", error_at_progress=25)
        api = Api(server)
        analysis = api.create_analysis(api.create_video()["id"])
        server.simulator.advance(10_000)
        wait_until(lambda: any(p["event"] == "analysis_done" for p in receiver.payloads()))
    rates = [(p["status"], p["completion_rate"]) for p in receiver.payloads()]
    assert rates == [("running", 0), ("running", 10), ("running", 20), ("error", 100)]
    assert {p["analysis_id"] for p in receiver.payloads()} == {analysis["uuid"]}


def test_webhook_failures_are_counted(make_server: Callable[..., SimulatorServer]) -> None:
    with WebhookReceiver(status=500) as receiver:
        server = make_server(webhook_url=receiver.url)
        api = Api(server)
        api.create_analysis(api.create_video()["id"])
        server.simulator.advance(10_000)
        wait_until(lambda: server.simulator.stats["webhooks_failed"] == 12)
    assert server.simulator.stats["webhooks_sent"] == 0
    # an unreachable receiver is swallowed and counted too
    unreachable = make_server(webhook_url=f"http://127.0.0.1:{receiver.port}/hook")
    api = Api(unreachable)
    api.create_analysis(api.create_video()["id"])
    unreachable.simulator.advance(10_000)
    wait_until(lambda: unreachable.simulator.stats["webhooks_failed"] == 12)


def test_no_webhooks_without_url(server: SimulatorServer, api: Api) -> None:
    done_analysis(server, api)
    assert server.simulator.stats["webhooks_sent"] == server.simulator.stats["webhooks_failed"] == 0
