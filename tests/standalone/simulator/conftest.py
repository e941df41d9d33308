"""Fixtures of the simulator's tests: servers on loopback with a frozen clock, and a client of one.

Helpers (the client, the frozen simulator) are in ``_helpers.py``; see its docstring for how time passes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider_aiontheball.testing.simulator import SimulatorServer
from tests.standalone.simulator._helpers import Api, frozen_simulator


@pytest.fixture
def make_server() -> Iterator[Callable[..., SimulatorServer]]:
    servers: list[SimulatorServer] = []

    def factory(**config: Any) -> SimulatorServer:
        server = SimulatorServer(frozen_simulator(**config)).start()
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()


@pytest.fixture
def server(make_server: Callable[..., SimulatorServer]) -> SimulatorServer:
    return make_server()


@pytest.fixture
def api(server: SimulatorServer) -> Iterator[Api]:
    client = Api(server)
    yield client
    client.close()
