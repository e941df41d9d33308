"""Serving a :class:`Simulator` over TCP: :class:`SimulatorServer` (a background thread) and the runner."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from typing import Any

from aiohttp import web

from airflow_provider_aiontheball.testing.simulator.app import Simulator
from airflow_provider_aiontheball.testing.simulator.config import API_PREFIX, CONTROL_PREFIX


def _count_connections(server: web.Server, simulator: Simulator) -> None:
    """Count TCP connections accepted by ``server`` in ``simulator``'s stats.

    aiohttp's low-level :class:`aiohttp.web.Server` is told about every accepted connection
    (``connection_made``, called by the protocol right after it enables TCP_NODELAY) and every closed
    one (``connection_lost``). There is no public hook, so the two bound methods of this one server
    instance are wrapped.
    """
    original_made = server.connection_made
    original_lost = server.connection_lost

    def connection_made(handler: Any, transport: asyncio.Transport) -> None:
        simulator._connection_made(transport)
        original_made(handler, transport)

    def connection_lost(handler: Any, exc: BaseException | None = None) -> None:
        simulator._connection_lost()
        original_lost(handler, exc)

    server.connection_made = connection_made  # type: ignore[method-assign]
    server.connection_lost = connection_lost  # type: ignore[method-assign]


async def _serve(
    simulator: Simulator, host: str, port: int, *, shutdown_timeout: float = 2.0
) -> tuple[web.AppRunner, int]:
    """Start serving ``simulator`` on ``host:port``; return the runner and the bound port."""
    runner = web.AppRunner(
        simulator.app(),
        access_log=None,  # keeps per-request cost down; headers (tokens) are never logged anyway
        keepalive_timeout=75.0,
        shutdown_timeout=shutdown_timeout,
    )
    await runner.setup()
    assert runner.server is not None
    _count_connections(runner.server, simulator)
    site = web.TCPSite(runner, host, port, backlog=2048, reuse_address=True)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = next((address[1] for address in runner.addresses if isinstance(address, tuple)), port)
    return runner, int(bound)


class SimulatorServer:
    """Serve a :class:`Simulator` on loopback from a background thread with its own event loop.

    Use as a context manager or call :meth:`start` / :meth:`stop`. ``port=0`` picks a free port.
    """

    def __init__(self, simulator: Simulator | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.simulator = simulator or Simulator()
        self.host = host
        self.port = port
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}{API_PREFIX}"

    @property
    def control_url(self) -> str:
        return f"http://{self.host}:{self.port}{CONTROL_PREFIX}"

    def connection_json(self, token: str = "test-token") -> str:
        """The JSON form of an Airflow connection (for ``AIRFLOW_CONN_*``) pointing at this server."""
        return json.dumps({"conn_type": "aiontheball", "host": self.base_url, "password": token})

    def start(self) -> SimulatorServer:
        if self._thread is not None:
            raise RuntimeError("SimulatorServer already started")
        self._thread = threading.Thread(target=self._run, name="aiontheball-simulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=30):
            raise RuntimeError("SimulatorServer did not start within 30 s")
        if self._error is not None:
            self._thread.join(timeout=5)
            self._thread = None
            raise RuntimeError(f"SimulatorServer failed to start: {self._error!r}") from self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            try:
                runner, self.port = loop.run_until_complete(_serve(self.simulator, self.host, self.port))
                self._stop_event = asyncio.Event()
            except BaseException as exc:
                self._error = exc
                return
            finally:
                self._ready.set()
            loop.run_until_complete(self._stop_event.wait())
            loop.run_until_complete(runner.cleanup())
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self) -> None:
        thread, loop, stop_event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        if loop is not None and stop_event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop_event.set)
        thread.join(timeout=30)
        self._thread = None

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
