"""Faults: status, drop, slow, malformed, redirect and inflate, before or after processing; their control route."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import requests

from airflow_provider_aiontheball.testing.simulator import Fault, SimulatorServer
from tests.standalone.simulator._helpers import TOKEN, URL, Api, wait_until


def test_status_after_processing_creates_then_answers_the_fault(api: Api, server: SimulatorServer) -> None:
    server.simulator.add_fault(Fault(kind="status_after_processing", status=503, method="POST", path="/videos"))
    response = api("POST", "/videos", json={"video_file_url": URL})
    assert response.status_code == 503
    assert [v["id"] for v in api("GET", "/videos").json()["data"]] == [790], "created all the same"


def test_faults_can_target_one_request_body(api: Api, server: SimulatorServer) -> None:
    other = "https://example.com/other.mp4"
    server.simulator.add_fault(Fault(kind="status", status=503, method="POST", body_match={"video_file_url": other}))
    assert api("POST", "/videos", json={"video_file_url": URL}).status_code == 201
    assert api("POST", "/videos", json={"video_file_url": other}).status_code == 503
    assert api("POST", "/videos", json={"video_file_url": other}).status_code == 201


@pytest.mark.parametrize("retry_after", ["7", "Wed, 21 Oct 2037 07:28:00 GMT"], ids=["seconds", "http-date"])
def test_status_fault_with_retry_after_does_not_process(server: SimulatorServer, api: Api, retry_after: str) -> None:
    server.simulator.add_fault(Fault(kind="status", status=429, retry_after=retry_after, method="POST", path="/videos"))
    response = api("POST", "/videos", json={"video_file_url": URL})
    assert response.status_code == 429
    assert response.headers["Retry-After"] == retry_after
    assert response.json() == {"message": "Too Many Attempts."}
    assert api("GET", "/videos").json()["meta"]["total"] == 0  # not processed
    assert api("POST", "/videos", json={"video_file_url": URL}).status_code == 201  # fault used up


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_status_fault_codes_and_counts(server: SimulatorServer, api: Api, status: int) -> None:
    server.simulator.add_fault(Fault(kind="status", status=status, count=2))
    assert [api("GET", "/videos").status_code for _ in range(3)] == [status, status, 200]
    assert "Retry-After" not in api("GET", "/videos").headers


def test_faults_match_method_and_path_segments_fifo(server: SimulatorServer, api: Api) -> None:
    api.create_video()
    server.simulator.add_fault(Fault(kind="status", status=503, method="GET", path="/videos/790"))
    server.simulator.add_fault(Fault(kind="status", status=500))
    assert api("GET", "/videos/7901").status_code == 500  # not the /videos/790 fault: consumes the catch-all
    assert api("PUT", "/videos/790", json={}).status_code == 200
    assert api("GET", "/videos/790/analysis").status_code == 503  # a sub-path matches (the route is POST-only)
    assert api("GET", "/videos/790").status_code == 200
    assert server.simulator.faults == []


def test_drop_fault_closes_without_response(server: SimulatorServer, api: Api) -> None:
    server.simulator.add_fault(Fault(kind="drop", method="POST"))
    with pytest.raises(requests.ConnectionError):
        api("POST", "/videos", json={"video_file_url": URL})
    assert api("GET", "/videos").json()["meta"]["total"] == 0  # dropped before processing
    record = next(r for r in server.simulator.requests if r.method == "POST")
    assert record.status is None


def test_drop_after_processing_loses_the_response_but_creates_the_video(server: SimulatorServer, api: Api) -> None:
    server.simulator.add_fault(Fault(kind="drop_after_processing", method="POST", path="/videos"))
    with pytest.raises(requests.ConnectionError):
        api("POST", "/videos", json={"video_file_url": URL, "title": "lost response"})
    listing = api("GET", "/videos").json()
    assert listing["meta"]["total"] == 1
    assert listing["data"][0]["title"] == "lost response"
    assert server.simulator.requests[0].status is None


def test_slow_fault_delays_then_answers(server: SimulatorServer, api: Api) -> None:
    server.simulator.add_fault(Fault(kind="slow", delay=0.2))
    started = time.monotonic()
    response = api("GET", "/videos")
    assert time.monotonic() - started >= 0.2
    assert response.status_code == 200
    server.simulator.add_fault(Fault(kind="slow", delay=2))
    with pytest.raises(requests.ReadTimeout):
        api("GET", "/videos", timeout=0.2)


@pytest.mark.parametrize("how", ["python", "control-route"])
def test_slow_after_processing_creates_the_video_before_answering(server: SimulatorServer, api: Api, how: str) -> None:
    fault = {"kind": "slow_after_processing", "delay": 1.5, "method": "POST", "path": "/videos"}
    if how == "python":
        server.simulator.add_fault(Fault(**fault))
    else:
        assert requests.post(server.control_url + "/faults", json=fault, timeout=10).status_code == 201
    answer: dict[str, Any] = {}

    def post() -> None:
        client = Api(server)  # its own session: requests.Session is not shared across threads
        try:
            started = time.monotonic()
            answer["response"] = client("POST", "/videos", json={"video_file_url": URL, "title": "held"})
            answer["elapsed"] = time.monotonic() - started
        finally:
            client.close()

    poster = threading.Thread(target=post)
    poster.start()
    try:
        # the POST has committed: the video is listed while its answer is still held back
        wait_until(lambda: api("GET", "/videos").json()["meta"]["total"] == 1, timeout=5)
        assert poster.is_alive(), "the POST was answered before the listing showed its video"
        (held,) = [r for r in server.simulator.requests if r.method == "POST"]
        assert held.status is None  # not answered yet
        assert api("GET", "/videos").json()["data"][0]["title"] == "held"
    finally:
        poster.join(timeout=10)
    assert not poster.is_alive()
    response = answer["response"]
    assert response.status_code == 201  # then the normal answer
    assert response.json()["data"]["id"] == 790
    assert answer["elapsed"] >= 1.5
    assert [(r.method, r.status) for r in server.simulator.requests if r.method == "POST"] == [("POST", 201)]
    assert server.simulator.faults == []
    assert api("POST", "/videos", json={"video_file_url": URL}).status_code == 201  # fault used up


def test_malformed_faults(server: SimulatorServer, api: Api) -> None:
    server.simulator.add_fault(Fault(kind="malformed"))
    response = api("GET", "/videos")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.text == "<html>oops"
    server.simulator.add_fault(Fault(kind="malformed", body='{"data": ', content_type="application/json"))
    response = api("GET", "/videos")
    assert response.headers["Content-Type"].startswith("application/json")
    with pytest.raises(ValueError):
        response.json()


def test_redirect_fault_answers_its_location_without_processing(server: SimulatorServer, api: Api) -> None:
    server.simulator.add_fault(Fault(kind="redirect", status=307, location="https://cdn.example/v.mp4?sig=s"))
    response = api("POST", "/videos", json={"video_file_url": URL}, allow_redirects=False)
    assert (response.status_code, response.headers["Location"]) == (307, "https://cdn.example/v.mp4?sig=s")
    server.simulator.add_fault(Fault(kind="redirect", location="/elsewhere"))  # a 503 default becomes a 302
    assert api("GET", "/videos", allow_redirects=False).status_code == 302
    assert api("GET", "/videos").json()["data"] == [], "the redirected POST created nothing"
    with pytest.raises(ValueError, match="location"):
        Fault(kind="redirect")


def test_inflate_fault_sends_a_small_gzip_body_that_decompresses_to_its_size(server: SimulatorServer) -> None:
    server.simulator.add_fault(Fault(kind="inflate", size=8 * 1024 * 1024))
    response = requests.get(
        server.base_url + "/videos", headers={"Authorization": f"Bearer {TOKEN}"}, stream=True, timeout=10
    )
    compressed = len(response.raw.read(decode_content=False))
    response.close()
    assert response.headers["Content-Encoding"] == "gzip"
    assert compressed < 64 * 1024
    server.simulator.add_fault(Fault(kind="inflate", size=8 * 1024 * 1024))
    body = requests.get(server.base_url + "/videos", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert len(body.content) == 8 * 1024 * 1024
    assert body.json()["data"]["id"] == 1


def test_fault_control_routes(server: SimulatorServer, api: Api) -> None:
    control = server.control_url
    response = requests.post(
        control + "/faults",
        json={"kind": "status", "status": 503, "count": 2, "retry_after": "1"},
        timeout=10,
    )
    assert response.status_code == 201
    assert requests.get(control + "/faults", timeout=10).json()["faults"][0]["count"] == 2
    assert api("GET", "/videos").status_code == 503
    assert requests.get(control + "/faults", timeout=10).json()["faults"][0]["count"] == 1
    assert requests.delete(control + "/faults", timeout=10).status_code == 204
    assert api("GET", "/videos").status_code == 200
    bad_faults: list[dict[str, Any]] = [
        {"kind": "explode"},
        {"count": 1},
        {"kind": "status", "count": 0},
        {"kind": "drop", "colour": "red"},
    ]
    for bad in bad_faults:
        response = requests.post(control + "/faults", json=bad, timeout=10)
        assert response.status_code == 400, bad
        assert "message" in response.json()
    assert requests.post(control + "/faults", data=b"{", timeout=10).status_code == 400
    # control routes are never served under the API prefix
    assert api("GET", "/_control/stats").status_code == 404


def test_faults_only_apply_to_api_requests(server: SimulatorServer, api: Api) -> None:
    server.simulator.add_fault(Fault(kind="status", status=500))
    assert requests.get(server.control_url + "/stats", timeout=10).status_code == 200
    assert api("GET", "/videos").status_code == 500
