"""Helpers shared by the simulator's tests (tests/standalone/simulator): a tiny API client, a frozen clock.

Time never passes by sleeping: every simulator here runs on a frozen clock that only
``Simulator.advance`` moves. Real waits are limited to real server behaviour (a slow fault, webhook
delivery, connection close, the CLI subprocess starting): ``wait_until``. Fixtures are in ``conftest.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests

from airflow_provider_aiontheball.testing.simulator import Simulator, SimulatorConfig, SimulatorServer

TOKEN = "test-token"
URL = "https://example.com/match.mp4"


def frozen_simulator(**config: Any) -> Simulator:
    """A simulator whose clock only moves through advance()."""
    return Simulator(SimulatorConfig(**config), clock=lambda: 1_000.0)


class Api:
    """A tiny client: one keep-alive requests.Session with the bearer token."""

    def __init__(self, server: SimulatorServer, token: str | None = TOKEN) -> None:
        self.server = server
        self.session = requests.Session()
        if token is not None:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 10)
        return self.session.request(method, self.server.base_url + path, **kwargs)

    def create_video(self, **fields: Any) -> dict[str, Any]:
        response = self("POST", "/videos", json={"video_file_url": URL, **fields})
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def video(self, video_id: int) -> dict[str, Any]:
        response = self("GET", f"/videos/{video_id}")
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def create_analysis(self, video_id: int, **body: Any) -> dict[str, Any]:
        response = self("POST", f"/videos/{video_id}/analysis", json=body)
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def analysis(self, analysis_id: int) -> dict[str, Any]:
        response = self("GET", f"/analyses/{analysis_id}")
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def close(self) -> None:
        self.session.close()


def done_analysis(server: SimulatorServer, api: Api, **video_fields: Any) -> dict[str, Any]:
    """Create a video and an analysis and advance the clock until the analysis is done."""
    video = api.create_video(**video_fields)
    analysis = api.create_analysis(video["id"])
    server.simulator.advance(10_000)
    assert api.analysis(analysis["id"])["status"] == "done"
    return analysis


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for real server behaviour (not simulated time) to happen."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)
