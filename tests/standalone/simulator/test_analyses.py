"""Analyses: lifecycle and progress over the clock, failures and scripts, validation, GET route options."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import requests

from airflow_provider_aiontheball.statuses import AnalysisStatus
from airflow_provider_aiontheball.testing.simulator import SimulatorServer
from tests.standalone.simulator._helpers import Api


def test_analysis_lifecycle(server: SimulatorServer, api: Api) -> None:
    simulator = server.simulator
    video = api.create_video(title="Team A vs Team B")
    analysis = api.create_analysis(video["id"], fps=25)
    assert analysis == {
        "id": 1247,
        "uuid": analysis["uuid"],
        "video_id": video["id"],
        "status": "init",
        "algorithm_version": "0.4.98",
        "parameters": {"fps": 25},
        "created_at": analysis["created_at"],
        "results_available": False,
        "progress": 0,
        "video": {"id": video["id"], "title": "Team A vs Team B"},
    }
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", analysis["uuid"])
    assert api.video(video["id"])["analyses"] == [{"id": 1247, "status": "init"}]

    simulator.advance(1.0)  # init over; the video is still downloading
    assert api.analysis(1247)["status"] == "waiting_for_video"
    simulator.advance(5.0)  # the video becomes available at +6 s
    current = api.analysis(1247)
    assert (current["status"], current["progress"]) == ("running", 0)

    statuses, progress = [], []
    for _ in range(70):
        simulator.advance(0.5)
        data = api.analysis(1247)
        statuses.append(data["status"])
        progress.append(data["progress"])
        assert data["results_available"] is (data["status"] == "done")
    assert progress == sorted(progress), "progress must never decrease"
    assert all(value == round(value, 1) for value in progress)
    running = [p for s, p in zip(statuses, progress, strict=True) if s == "running"]
    aggregating = [p for s, p in zip(statuses, progress, strict=True) if s == "aggregating"]
    assert running
    assert max(running) <= 95
    assert min(running) > 0
    assert aggregating
    assert all(95 <= p <= 99 for p in aggregating)
    assert statuses[-1] == "done"
    assert progress[-1] == 100
    assert [s for s in dict.fromkeys(statuses)] == ["running", "aggregating", "done"]
    assert all(s in set(AnalysisStatus) for s in statuses)
    assert api.video(video["id"])["analyses"] == [{"id": 1247, "status": "done"}]


def test_progress_has_some_noise_but_is_steady(server: SimulatorServer, api: Api) -> None:
    simulator = server.simulator
    video = api.create_video()
    simulator.set_video_status(video["id"], "available")
    analysis = api.create_analysis(video["id"])
    simulator.advance(1.0)
    deltas, last = [], 0.0
    for _ in range(30):
        simulator.advance(1.0)
        value = api.analysis(analysis["id"])["progress"]
        deltas.append(value - last)
        last = value
    assert len({round(d, 1) for d in deltas[:-5]}) > 1  # not a perfectly straight line
    assert all(d >= 0 for d in deltas)


def test_analysis_on_a_ready_video_skips_waiting(server: SimulatorServer, api: Api) -> None:
    video = api.create_video()
    server.simulator.advance(6)
    analysis = api.create_analysis(video["id"])
    server.simulator.advance(1.0)
    assert api.analysis(analysis["id"])["status"] == "running"


@pytest.mark.parametrize("outcome", ["error", "no_match_detected"])
def test_analysis_fails_when_its_video_fails(server: SimulatorServer, api: Api, outcome: str) -> None:
    server.simulator.script_next_videos(outcome)
    video = api.create_video()
    analysis = api.create_analysis(video["id"])
    server.simulator.advance(1.0)
    assert api.analysis(analysis["id"])["status"] == "waiting_for_video"
    server.simulator.advance(100)
    data = api.analysis(analysis["id"])
    assert (data["status"], data["results_available"]) == ("error", False)


def test_scripted_analysis_error_at_progress(server: SimulatorServer, api: Api) -> None:
    server.simulator.script_next_analyses("error", error_at_progress=40)
    video = api.create_video()
    failing = api.create_analysis(video["id"])
    normal = api.create_analysis(video["id"])
    server.simulator.advance(7 + 30 * 0.3)  # before 40 %
    assert api.analysis(failing["id"])["status"] == "running"
    server.simulator.advance(10_000)
    data = api.analysis(failing["id"])
    assert (data["status"], data["progress"]) == ("error", 40)
    assert api.analysis(normal["id"])["status"] == "done"
    response = api("GET", f"/analyses/{failing['id']}/summary")
    assert response.status_code == 409
    assert response.json() == {"message": f"Analysis {failing['id']} is not done yet (status: error)."}


def test_analysis_script_via_control_and_set_outcome(server: SimulatorServer, api: Api) -> None:
    response = requests.post(
        server.control_url + "/script",
        json={"resource": "analysis", "outcome": "error", "count": 1, "error_at_progress": 97},
        timeout=10,
    )
    assert response.status_code == 201
    video = api.create_video()
    failing = api.create_analysis(video["id"])
    rescued = api.create_analysis(video["id"])
    server.simulator.set_analysis_outcome(rescued["id"], "error", error_at_progress=10)
    server.simulator.set_analysis_outcome(rescued["id"], "done")
    server.simulator.advance(6 + 30 + 1)  # aggregating runs 36-39 s after creation; 97 % is at 37.5 s
    assert api.analysis(failing["id"])["status"] == "aggregating"
    server.simulator.advance(100)
    assert api.analysis(failing["id"])["status"] == "error"
    assert api.analysis(rescued["id"])["status"] == "done"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param({"fps": "25"}, "The fps field must be an integer.", id="string"),
        pytest.param({"fps": 2.5}, "The fps field must be an integer.", id="float"),
        pytest.param({"fps": True}, "The fps field must be an integer.", id="bool"),
        pytest.param({"fps": 0}, "The fps field must be at least 1.", id="zero"),
        pytest.param({"fps": -25}, "The fps field must be at least 1.", id="negative"),
    ],
)
def test_create_analysis_validation(api: Api, body: dict[str, Any], message: str) -> None:
    video = api.create_video()
    response = api("POST", f"/videos/{video['id']}/analysis", json=body)
    assert response.status_code == 422
    assert response.json() == {"message": message, "errors": {"fps": [message]}}


def test_create_analysis_defaults(api: Api) -> None:
    video = api.create_video()
    assert api.create_analysis(video["id"])["parameters"] == {"fps": 25}
    response = api("POST", f"/videos/{video['id']}/analysis")  # no body at all
    assert response.status_code == 201
    assert api.create_analysis(video["id"], fps=10)["parameters"] == {"fps": 10}
    assert api("POST", "/videos/999/analysis", json={}).status_code == 404


def test_deleting_a_video_deletes_its_analyses(api: Api) -> None:
    video = api.create_video()
    analysis = api.create_analysis(video["id"])
    assert api("DELETE", f"/videos/{video['id']}").status_code == 204
    assert api("GET", f"/analyses/{analysis['id']}").status_code == 404


def test_analysis_get_route_can_be_switched_off(make_server: Callable[..., SimulatorServer]) -> None:
    server = make_server(analysis_get_route=False)
    api = Api(server)
    analysis = api.create_analysis(api.create_video()["id"])
    response = api("GET", f"/analyses/{analysis['id']}")
    assert response.status_code == 404
    assert response.json() == {"message": f"The route api/v1/analyses/{analysis['id']} could not be found."}
    server.simulator.advance(10_000)
    assert api("GET", f"/analyses/{analysis['id']}/events").status_code == 200  # results still served
    assert api.video(analysis["video_id"])["analyses"][0]["status"] == "done"  # poll through the video


def test_analysis_get_without_envelope(make_server: Callable[..., SimulatorServer]) -> None:
    api = Api(make_server(analysis_get_envelope=False))
    analysis = api.create_analysis(api.create_video()["id"])
    body = api("GET", f"/analyses/{analysis['id']}").json()
    assert "data" not in body
    assert body["id"] == analysis["id"]
    assert body["status"] == "init"
