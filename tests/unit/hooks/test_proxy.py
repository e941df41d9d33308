"""Both hooks honour the proxy environment variables alike, and ``~/.netrc`` never touches our token.

A tiny forward proxy on loopback (absolute-form ``GET http://127.0.0.1:PORT/...`` only, one request
per connection) records what it forwards to the simulator. Each test runs one request through the
sync hook (``requests``) and the async hook (aiohttp, as the triggers use it) with the same
environment: the async hook must follow exactly the same proxy decision, and a netrc entry for the
API host must change neither the token the API sees nor the outcome.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest

from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallAsyncHook, AIOnTheBallHook

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
#: Bounds of the test proxy: request head size and how long it waits on either side.
MAX_HEAD_BYTES = 64 * 1024
IO_TIMEOUT_SECONDS = 10.0


@dataclass
class Proxied:
    """One request the proxy forwarded."""

    method: str
    url: str
    headers: dict[str, str]  #: names lowercased


@dataclass
class ForwardProxy:
    """An HTTP forward proxy on 127.0.0.1 in a background thread with its own event loop.

    Only forwards plain-HTTP absolute-form requests to 127.0.0.1 (anything else gets a 502), asks the
    target for ``Connection: close`` and relays its answer until EOF, so no body parsing is needed.
    """

    port: int = 0
    forwarded: list[Proxied] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def paths(self) -> list[str]:
        with self._lock:
            return [urlsplit(p.url).path for p in self.forwarded]

    def last(self) -> Proxied:
        with self._lock:
            return self.forwarded[-1]

    async def handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(self.forward(client_reader, client_writer), IO_TIMEOUT_SECONDS)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            pass
        finally:
            client_writer.close()

    async def forward(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        head = await client_reader.readuntil(b"\r\n\r\n")
        request_line, *header_lines = head.decode("latin-1").split("\r\n")[:-2]
        method, url, version = request_line.split(" ")
        target = urlsplit(url)
        if target.scheme != "http" or target.hostname != "127.0.0.1" or target.port is None:
            client_writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        headers = {name.lower(): value for name, _, value in (line.partition(": ") for line in header_lines)}
        with self._lock:
            self.forwarded.append(Proxied(method, url, headers))
        body = await client_reader.readexactly(int(headers.get("content-length", "0")))
        upstream_headers = {k: v for k, v in headers.items() if not k.startswith(("proxy-", "connection"))}
        upstream_headers["Connection"] = "close"
        origin_form = target.path + (f"?{target.query}" if target.query else "")
        upstream_head = f"{method} {origin_form} {version}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in upstream_headers.items()
        )
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", target.port)
        try:
            upstream_writer.write(upstream_head.encode("latin-1") + b"\r\n" + body)
            while chunk := await upstream_reader.read(65536):
                client_writer.write(chunk)
                await client_writer.drain()
        finally:
            upstream_writer.close()

    def serve(self, ready: threading.Event, stop: threading.Event) -> None:
        async def main() -> None:
            server = await asyncio.start_server(self.handle, "127.0.0.1", 0, limit=MAX_HEAD_BYTES)
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            async with server:
                await asyncio.to_thread(stop.wait)

        asyncio.run(main())


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    proxy, ready, stop = ForwardProxy(), threading.Event(), threading.Event()
    thread = threading.Thread(target=proxy.serve, args=(ready, stop), name="test-forward-proxy", daemon=True)
    thread.start()
    assert ready.wait(10), "the test proxy did not start"
    try:
        yield proxy
    finally:
        stop.set()
        thread.join(10)


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No proxy variable (either case) nor ``NETRC`` from the developer's environment; ``~`` empty."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.delenv("NETRC", raising=False)
    return monkeypatch


@pytest.fixture
def video_id(aiontheball_conn, no_proxy_env) -> int:
    """A video on the simulator, created before any proxy variable is set."""
    with AIOnTheBallHook() as hook:
        return int(hook.create_video("https://example.com/match.mp4")["id"])


def sync_get_video(video_id: int) -> dict:
    with AIOnTheBallHook() as hook:
        return hook.get_video(video_id)


async def get_video(client: str, video_id: int) -> dict:
    """``GET /videos/{id}`` through the sync hook (in a thread) or the async hook (in this loop)."""
    if client == "sync":
        return await asyncio.to_thread(sync_get_video, video_id)
    return await AIOnTheBallAsyncHook().get_video(video_id)


def video_gets(server, video_id: int) -> list:
    """The simulator's log of ``GET /videos/{id}`` (read in-process: no HTTP, so never proxied)."""
    return [r for r in server.simulator.requests if r.method == "GET" and r.path.endswith(f"/videos/{video_id}")]


CLIENTS = [pytest.param("sync", id="sync-hook"), pytest.param("async", id="async-hook")]


@pytest.mark.asyncio
@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize(
    "variable",
    [
        pytest.param("HTTP_PROXY", id="HTTP_PROXY"),
        pytest.param("http_proxy", id="http_proxy"),
        pytest.param("ALL_PROXY", id="ALL_PROXY-fallback"),
    ],
)
async def test_proxy_from_environment_is_used(aiontheball_conn, no_proxy_env, proxy, video_id, client, variable):
    no_proxy_env.setenv(variable, proxy.url)
    video = await get_video(client, video_id)
    assert video["id"] == video_id
    assert proxy.paths() == [urlsplit(aiontheball_conn.base_url).path + f"/videos/{video_id}"]
    assert video_gets(aiontheball_conn, video_id)[-1].token_org == "org-1"


@pytest.mark.asyncio
@pytest.mark.parametrize("client", CLIENTS)
async def test_lowercase_variable_wins_over_uppercase(aiontheball_conn, no_proxy_env, proxy, video_id, client):
    no_proxy_env.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # discard port: unusable if chosen
    no_proxy_env.setenv("http_proxy", proxy.url)
    assert (await get_video(client, video_id))["id"] == video_id
    assert len(proxy.paths()) == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize(
    "env",
    [
        pytest.param({"NO_PROXY": "127.0.0.1"}, id="NO_PROXY-ip"),
        pytest.param({"no_proxy": "localhost,127.0.0.1"}, id="no_proxy-list"),
        pytest.param({"NO_PROXY": "127.0.0.0/8"}, id="NO_PROXY-cidr"),
        pytest.param({"NO_PROXY": "*"}, id="NO_PROXY-star"),
    ],
)
async def test_no_proxy_bypasses_the_proxy(aiontheball_conn, no_proxy_env, proxy, video_id, client, env):
    no_proxy_env.setenv("HTTP_PROXY", proxy.url)
    for name, value in env.items():
        no_proxy_env.setenv(name, value)
    assert (await get_video(client, video_id))["id"] == video_id
    assert proxy.paths() == []
    assert len(video_gets(aiontheball_conn, video_id)) == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("client", CLIENTS)
async def test_https_proxy_is_not_used_for_http(aiontheball_conn, no_proxy_env, proxy, video_id, client):
    no_proxy_env.setenv("HTTPS_PROXY", proxy.url)
    assert (await get_video(client, video_id))["id"] == video_id
    assert proxy.paths() == []


@pytest.mark.asyncio
@pytest.mark.parametrize("client", CLIENTS)
async def test_proxy_credentials_come_from_the_proxy_url(aiontheball_conn, no_proxy_env, proxy, video_id, client):
    no_proxy_env.setenv("HTTP_PROXY", proxy.url.replace("http://", "http://proxy-user:proxy-pass@"))
    assert (await get_video(client, video_id))["id"] == video_id
    assert proxy.last().headers.get("proxy-authorization") == "Basic cHJveHktdXNlcjpwcm94eS1wYXNz"


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "client",
    [
        pytest.param("sync", id="sync-hook"),
        pytest.param("async", id="async-hook"),
    ],
)
@pytest.mark.parametrize("via_proxy", [pytest.param(False, id="direct"), pytest.param(True, id="via-proxy")])
async def test_netrc_entry_for_the_api_host_changes_nothing(
    aiontheball_conn, no_proxy_env, proxy, video_id, tmp_path, client, via_proxy
):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login x password y\n")  # the API host, and the proxy's
    netrc.chmod(0o600)
    no_proxy_env.setenv("NETRC", str(netrc))
    if via_proxy:
        no_proxy_env.setenv("HTTP_PROXY", proxy.url)
    video = await get_video(client, video_id)
    assert video["id"] == video_id
    assert video_gets(aiontheball_conn, video_id)[-1].token_org == "org-1"
    if via_proxy:
        forwarded = proxy.last()
        assert forwarded.headers["authorization"].startswith("Bearer ")
        assert "proxy-authorization" not in forwarded.headers
    else:
        assert proxy.paths() == []
