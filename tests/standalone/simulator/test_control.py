"""The control routes and state helpers: the request log, stats, reset, advancing the clock."""

from __future__ import annotations

import json

import pytest
import requests

from airflow_provider_aiontheball.testing.simulator import Fault, RequestRecord, SimulatorServer
from tests.standalone.simulator._helpers import TOKEN, URL, Api


def test_request_log(server: SimulatorServer, api: Api) -> None:
    api.create_video(title="logged")
    api("GET", "/videos", params={"page": 2})
    requests.get(server.base_url + "/videos", headers={"Authorization": "Bearer bad"}, timeout=10)
    records = server.simulator.requests
    assert [(r.method, r.path, r.status) for r in records] == [
        ("POST", "/videos", 201),
        ("GET", "/videos", 200),
        ("GET", "/videos", 401),
    ]
    assert records[0].body == {"video_file_url": URL, "title": "logged"}
    assert records[0].token_org == "org-1"
    assert records[1].query == {"page": "2"}
    assert records[1].body is None
    assert records[2].token_org is None
    assert all(isinstance(r, RequestRecord) and r.time == 1_000.0 for r in records)

    response = requests.get(server.control_url + "/requests", timeout=10)
    assert response.status_code == 200
    logged = response.json()["requests"]
    assert logged[0] == {
        "method": "POST",
        "path": "/videos",
        "query": {},
        "status": 201,
        "token_org": "org-1",
        "time": 1000.0,
        "body": {"video_file_url": URL, "title": "logged"},
        "authorization": True,
    }
    assert TOKEN not in response.text
    assert "bad" not in json.dumps([r["token_org"] for r in logged])

    assert requests.delete(server.control_url + "/requests", timeout=10).status_code == 204
    assert server.simulator.requests == []
    api("GET", "/videos")
    server.simulator.clear_requests()
    assert server.simulator.requests == []


def test_stats_route(server: SimulatorServer, api: Api) -> None:
    api("GET", "/videos")
    api("GET", "/videos")
    stats = requests.get(server.control_url + "/stats", timeout=10).json()
    assert set(stats) == {
        "connections_opened",
        "connections_open",
        "requests",
        "webhooks_sent",
        "webhooks_failed",
    }
    assert stats["requests"] == 2
    assert stats["webhooks_sent"] == stats["webhooks_failed"] == 0


def test_reset_keeps_connection_counters(server: SimulatorServer, api: Api) -> None:
    api.create_video()
    server.simulator.add_fault(Fault(kind="status", status=500, count=5))
    server.simulator.script_next_videos("error")
    opened = server.simulator.stats["connections_opened"]
    assert requests.post(server.control_url + "/reset", timeout=10).status_code == 204
    assert server.simulator.faults == []
    assert server.simulator.requests == []
    listing = api("GET", "/videos").json()
    assert listing["meta"]["total"] == 0
    video = api.create_video()
    assert video["id"] == 790  # ids start over
    server.simulator.advance(100)
    assert api.video(790)["status"] == "available"  # the script was cleared too
    assert server.simulator.stats["connections_opened"] >= opened


def test_advance_control_route(server: SimulatorServer, api: Api) -> None:
    video = api.create_video()
    response = requests.post(server.control_url + "/advance", json={"seconds": 10}, timeout=10)
    assert response.status_code == 200
    assert response.json() == {"time": 1010.0}
    assert api.video(video["id"])["status"] == "available"
    assert requests.post(server.control_url + "/advance", json={"seconds": -1}, timeout=10).status_code == 400
    assert requests.post(server.control_url + "/advance", json={}, timeout=10).status_code == 400
    with pytest.raises(ValueError):
        server.simulator.advance(-5)


def test_direct_state_helpers(server: SimulatorServer, api: Api) -> None:
    video = api.create_video()
    analysis = api.create_analysis(video["id"])
    assert server.simulator.video_json(video["id"]) == api.video(video["id"])
    assert server.simulator.analysis_json(analysis["id"]) == api.analysis(analysis["id"])
    assert server.simulator.video_json(1) is None
    assert server.simulator.analysis_json(1) is None
