"""A connection that cannot be made says where it went and what failed: the name did not resolve, the
server refused, or nothing answered in time — for the sync and the async hook alike, never retried as if
the request might have been carried out."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from airflow_provider_aiontheball.exceptions import AIOnTheBallTimeoutError, AIOnTheBallTransportError
from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallAsyncHook, AIOnTheBallHook
from tests.helpers import CONN_ENV, connection_json


@pytest.fixture
def refusing_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def unanswering_port() -> Iterator[int]:
    """A loopback port whose listener never accepts and whose queue is full: new connections hang."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = int(server.getsockname()[1])
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    yield port
    for sock in (*fillers, server):
        sock.close()


def get_video(flavour: str) -> None:
    if flavour == "sync":
        AIOnTheBallHook().get_video(1)
        return

    async def run() -> None:
        async with AIOnTheBallAsyncHook() as hook:
            await hook.get_video(1)

    asyncio.run(run())


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        pytest.param("dns", r"could not resolve the host name aib-no-such-host\.invalid \(DNS\)", id="dns"),
        pytest.param("refused", r"connection refused by 127\.0\.0\.1:{port}", id="refused"),
        pytest.param("timeout", r"no connection to 127\.0\.0\.1:{port} within 0\.5 s \(timed out\)", id="timeout"),
    ],
)
def test_a_failed_connection_names_the_server_and_what_failed(
    monkeypatch, refusing_port, unanswering_port, flavour, failure, expected
):
    port = unanswering_port if failure == "timeout" else refusing_port
    host = "aib-no-such-host.invalid" if failure == "dns" else f"127.0.0.1:{port}"
    scheme = "https" if failure == "dns" else "http"
    extra = {"retry_limit": 1, "retry_min_wait": 0.01, "connect_timeout": 0.5}
    monkeypatch.setenv(CONN_ENV, connection_json(f"{scheme}://{host}/api/v1", **extra))
    error = AIOnTheBallTimeoutError if failure == "timeout" else AIOnTheBallTransportError
    with pytest.raises(error, match=expected.format(port=port)) as excinfo:
        get_video(flavour)
    assert not excinfo.value.may_have_reached_server, "it never left: safe to re-send, even a POST"
