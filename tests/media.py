"""Real video files for the pre-flight tests, made with PyAV (``aib_harness/media.py``), and a loopback file
server with real Range support (aiohttp's FileResponse) that can also refuse connections on its port for a while,
and a source whose answer a test switches. Imports no Airflow: the standalone and the Airflow tiers both use it.

The files are made once per machine (cached in the temp dir under a name that carries PyAV's version and
the recipes' version), with tiny noisy frames where only the duration matters, and one second long where
only the resolution or frame rate matters: a few seconds to make them all, nothing after.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from aib_harness.media import MATCH_RECIPE, Recipe, make_video, video_cache_dir

RECIPES = {
    # Long files: tiny frames of noise (a realistic share of index to media data), 25 fps.
    "match-11min.mp4": MATCH_RECIPE,  # index (moov) at the end: PyAV's default
    "match-9min.mp4": Recipe("mp4", 64, 36, 25, 540, noise=True, options={"movflags": "faststart"}),
    # One second each: only the resolution, the frame rate or the container matters.
    "full-hd.mp4": Recipe("mp4", 1920, 1080, 25, 1),
    "qhd-1440p.mp4": Recipe("mp4", 2560, 1440, 25, 1),
    "broadcast-50fps.mp4": Recipe("mp4", 64, 36, 50, 1),
    "iphone.mov": Recipe("mov", 64, 36, 25, 1),
    "export.mkv": Recipe("matroska", 64, 36, 25, 1),
}


def make_video_dir() -> Path:
    """The generated files, plus an HTML page, an HTML page named .mp4, an empty file and a truncated MP4."""
    directory = video_cache_dir()
    for name, recipe in RECIPES.items():
        if not (directory / name).exists():
            make_video(directory / name, recipe)
    page = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>Sign in to view</body></html>"
    (directory / "share-page.html").write_bytes(page)
    (directory / "login-page.mp4").write_bytes(page)
    (directory / "empty.mp4").write_bytes(b"")
    # An upload cut short: an MP4's first 4 KiB, its index (at the start) cut off.
    (directory / "cut-short.mp4").write_bytes((directory / "match-9min.mp4").read_bytes()[:4096])
    return directory


@dataclass
class Served:
    """What the loopback server saw: each request's path, Range and Authorization, every request's headers, and
    the file bytes it sent."""

    requests: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    bytes_sent: int = 0

    def reset(self) -> None:
        self.requests.clear()
        self.headers.clear()
        self.bytes_sent = 0


@dataclass
class Server:
    base: str
    seen: Served
    #: Start (``True``) or stop listening on the server's port (see :func:`serving`).
    listen: Callable[[bool], None]

    def refuse_connections(self) -> None:
        """Nothing listens on the port until :meth:`accept_connections`: a connection is refused."""
        self.listen(False)

    def accept_connections(self) -> None:
        self.listen(True)


@dataclass
class Answer:
    """What :func:`switched_handler` answers next: ``file`` (a name in the directory), else ``status``."""

    file: str | None = None
    status: int = 404


def switched_handler(directory: Path, answer: Answer) -> Any:
    """Any path: the file ``answer`` names (with Range support), else ``answer.status`` — one URL whose file is
    replaced, taken down or broken between requests, as a video's source can be between a task's tries."""

    async def switched(request: web.Request) -> web.StreamResponse:
        if answer.file is None:
            return web.Response(status=answer.status)
        return web.FileResponse(directory / answer.file)

    return switched


def file_handler(directory: Path) -> Any:
    """``GET /files/{name}``: the file, with Range support; 404 when there is none."""

    async def file(request: web.Request) -> web.StreamResponse:
        path = directory / request.match_info["name"]
        if not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path)

    return file


@contextmanager
def serving(app: web.Application, seen: Served) -> Iterator[Server]:
    """Serve ``app`` on a free loopback port from a thread, recording what it answered in ``seen``. The port
    stays this process's while the server stops listening (``Server.refuse_connections``): a socket bound to
    it, never listening, holds it (``SO_REUSEPORT``), so no other program takes it meanwhile."""

    async def record(request: web.Request, response: web.StreamResponse) -> None:
        seen.requests.append((request.path, request.headers.get("Range"), request.headers.get("Authorization")))
        seen.headers.append(dict(request.headers))
        if request.path.startswith("/files/"):  # the media's bytes, not a redirect's few words
            seen.bytes_sent += response.content_length or 0

    app.on_response_prepare.append(record)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None)  # its lines would quote the test URLs, secrets and all
    loop.run_until_complete(runner.setup())
    holder = socket.socket()
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    sites: list[web.TCPSite] = []

    async def switch(on: bool) -> None:
        if on and not sites:
            sites.append(web.TCPSite(runner, "127.0.0.1", port, reuse_port=True))
            await sites[0].start()
        elif not on and sites:
            await sites.pop().stop()

    loop.run_until_complete(switch(True))
    thread = threading.Thread(target=loop.run_forever, name="preflight-server", daemon=True)
    thread.start()

    def listen(on: bool) -> None:
        asyncio.run_coroutine_threadsafe(switch(on), loop).result(timeout=10)

    try:
        yield Server(f"http://127.0.0.1:{port}", seen, listen)
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        holder.close()
