"""The server: its URLs and connection JSON, connections counted, 200 concurrent GETs, stop and start failures."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
import requests

from airflow_provider_aiontheball.testing.simulator import SimulatorServer
from tests.standalone.simulator._helpers import TOKEN, Api, frozen_simulator, wait_until


def test_connection_json(server: SimulatorServer) -> None:
    assert server.base_url == f"http://127.0.0.1:{server.port}/api/v1"
    assert server.control_url == f"http://127.0.0.1:{server.port}/_control"
    assert json.loads(server.connection_json("abc")) == {
        "conn_type": "aiontheball",
        "host": f"http://127.0.0.1:{server.port}/api/v1",
        "password": "abc",
    }
    assert json.loads(server.connection_json())["password"] == TOKEN


def test_connection_counting(server: SimulatorServer) -> None:
    simulator = server.simulator
    before = simulator.stats["connections_opened"]
    with requests.Session() as session:
        for _ in range(10):
            assert session.get(server.base_url + "/videos", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).ok
        assert simulator.stats["connections_opened"] == before + 1
        assert simulator.stats["connections_open"] >= 1
    for _ in range(5):
        with requests.Session() as session:
            assert session.get(server.base_url + "/videos", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).ok
    assert simulator.stats["connections_opened"] == before + 6
    assert simulator.stats["requests"] == 15
    wait_until(lambda: simulator.stats["connections_open"] == 0)
    # aiohttp enables TCP_NODELAY on every accepted socket; the counter hook checks it.
    assert simulator._connections_without_nodelay == 0


def test_200_concurrent_gets_over_one_session(server: SimulatorServer, api: Api) -> None:
    video = api.create_video()

    async def run() -> list[int]:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with aiohttp.ClientSession(headers=headers) as session:

            async def get() -> int:
                async with session.get(f"{server.base_url}/videos/{video['id']}") as response:
                    await response.json()
                    return response.status

            return await asyncio.gather(*(get() for _ in range(200)))

    opened = server.simulator.stats["connections_opened"]
    statuses = asyncio.run(run())
    assert statuses == [200] * 200
    assert server.simulator.stats["connections_opened"] - opened <= 100  # aiohttp's default pool size


def test_server_stop_is_idempotent_and_port_is_released() -> None:
    server = SimulatorServer(frozen_simulator()).start()
    port = server.port
    assert port > 0
    server.stop()
    server.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/api/v1/videos", timeout=2)


def test_start_failure_is_reported() -> None:
    with SimulatorServer(frozen_simulator()) as first, pytest.raises(RuntimeError, match="failed to start"):
        SimulatorServer(frozen_simulator(), port=first.port).start()
