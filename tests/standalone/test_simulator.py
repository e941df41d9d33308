"""Tests of the AI on the Ball API simulator, over real HTTP on loopback (no mocks).

Time never passes by sleeping: every simulator here runs on a frozen clock that only
``Simulator.advance`` moves. Real waits are limited to real server behaviour (a slow fault, webhook
delivery, connection close, the CLI subprocess starting).
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests
from aiohttp import web

from airflow_provider_aiontheball.statuses import AnalysisStatus, VideoStatus
from airflow_provider_aiontheball.testing.simulator import (
    Fault,
    RequestRecord,
    Simulator,
    SimulatorConfig,
    SimulatorServer,
    tracking_sample_rows,
)
from tests.helpers import REPO

TOKEN = "test-token"
URL = "https://example.com/match.mp4"


def frozen_simulator(**config: Any) -> Simulator:
    """A simulator whose clock only moves through advance()."""
    return Simulator(SimulatorConfig(**config), clock=lambda: 1_000.0)


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


@pytest.fixture
def api(server: SimulatorServer) -> Iterator[Api]:
    client = Api(server)
    yield client
    client.close()


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


# --------------------------------------------------------------------------------------------------
# Auth, organisations, routing
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing-header"),
        pytest.param({"Authorization": "Bearer wrong-token"}, id="unknown-token"),
        pytest.param({"Authorization": "Bearer "}, id="empty-token"),
        pytest.param({"Authorization": f"Basic {TOKEN}"}, id="wrong-scheme"),
    ],
)
@pytest.mark.parametrize("path", ["/videos", "/videos/790", "/analyses/1247/summary"])
def test_bad_or_missing_token_is_401(server: SimulatorServer, headers: dict[str, str], path: str) -> None:
    response = requests.get(server.base_url + path, headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {"message": "Unauthenticated."}


def test_bearer_scheme_is_case_insensitive(server: SimulatorServer) -> None:
    response = requests.get(server.base_url + "/videos", headers={"Authorization": f"bearer {TOKEN}"}, timeout=10)
    assert response.status_code == 200


def test_other_organisation_sees_404(make_server: Callable[..., SimulatorServer]) -> None:
    server = make_server(tokens={"token-a": "org-a", "token-b": "org-b"})
    alice, bob = Api(server, "token-a"), Api(server, "token-b")
    video = alice.create_video(title="Alice's match")
    analysis = alice.create_analysis(video["id"])
    expected = {"message": f"No query results for model [App\\Models\\Video] {video['id']}"}
    for method in ("GET", "PUT", "DELETE"):
        response = bob(method, f"/videos/{video['id']}", json={})
        assert (response.status_code, response.json()) == (404, expected), method
    assert bob("POST", f"/videos/{video['id']}/analysis", json={}).status_code == 404
    response = bob("GET", f"/analyses/{analysis['id']}")
    assert response.status_code == 404
    assert response.json() == {"message": f"No query results for model [App\\Models\\Analysis] {analysis['id']}"}
    assert bob("GET", "/videos").json()["data"] == []
    assert [v["id"] for v in alice("GET", "/videos").json()["data"]] == [video["id"]]
    assert alice.video(video["id"])["title"] == "Alice's match"


# --------------------------------------------------------------------------------------------------
# Token control
# --------------------------------------------------------------------------------------------------

SECRET = "s3cret-drill-token-91c4"


def _tokens(method: str, server: SimulatorServer, **kwargs: Any) -> requests.Response:
    response = requests.request(method, server.control_url + "/tokens", timeout=10, **kwargs)
    assert SECRET not in response.text, "a token must never be echoed"
    return response


@pytest.mark.parametrize(
    ("body", "organisation"),
    [
        pytest.param({"token": SECRET}, "org-1", id="default-organisation"),
        pytest.param({"token": SECRET, "organisation": "org-drill"}, "org-drill", id="named-organisation"),
    ],
)
def test_token_control_adds_then_revokes(server: SimulatorServer, body: dict[str, str], organisation: str) -> None:
    client = Api(server, SECRET)
    try:
        assert client("GET", "/videos").status_code == 401
        response = _tokens("POST", server, json=body)
        assert response.status_code == 201
        assert response.json() == {"organisation": organisation, "tokens": 2}  # test-token and the new one
        assert client("GET", "/videos").status_code == 200
        video = client.create_video()
        assert server.simulator.requests[-1].token_org == organisation
        assert _tokens("DELETE", server, json={"token": SECRET}).status_code == 204
        response = client("GET", f"/videos/{video['id']}")
        assert (response.status_code, response.json()) == (401, {"message": "Unauthenticated."})
        assert server.simulator.config.tokens == {TOKEN: "org-1"}
    finally:
        client.close()


def test_adding_a_known_token_remaps_its_organisation(server: SimulatorServer, api: Api) -> None:
    video = api.create_video()
    response = _tokens("POST", server, json={"token": SECRET, "organisation": "org-2"})
    assert response.json() == {"organisation": "org-2", "tokens": 2}
    client = Api(server, SECRET)
    try:
        assert client("GET", f"/videos/{video['id']}").status_code == 404  # org-2 does not own it
        response = _tokens("POST", server, json={"token": SECRET, "organisation": "org-1"})
        assert (response.status_code, response.json()) == (201, {"organisation": "org-1", "tokens": 2})
        assert client.video(video["id"])["id"] == video["id"]
    finally:
        client.close()


@pytest.mark.parametrize("history", ["never-added", "already-revoked"])
def test_revoking_a_token_that_is_not_accepted_is_404(server: SimulatorServer, history: str) -> None:
    if history == "already-revoked":
        server.simulator.add_token(SECRET)
        assert server.simulator.revoke_token(SECRET) is True
    response = _tokens("DELETE", server, json={"token": SECRET})
    assert response.status_code == 404
    assert set(response.json()) == {"message"}
    assert server.simulator.config.tokens == {TOKEN: "org-1"}


@pytest.mark.parametrize("method", ["POST", "DELETE"])
@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({}, "token", id="token-missing"),
        pytest.param({"token": ""}, "token", id="token-empty"),
        pytest.param({"token": "   "}, "token", id="token-blank"),
        pytest.param({"token": 12345}, "token", id="token-not-a-string"),
        pytest.param({"token": None}, "token", id="token-null"),
        pytest.param({"token": SECRET, "colour": "red"}, "colour", id="unknown-field"),
        pytest.param([SECRET], "body", id="body-not-an-object"),
    ],
)
def test_bad_token_bodies_are_400_naming_the_field(server: SimulatorServer, method: str, body: Any, field: str) -> None:
    response = _tokens(method, server, json=body)
    assert response.status_code == 400
    assert field in response.json()["message"]
    assert server.simulator.config.tokens == {TOKEN: "org-1"}


@pytest.mark.parametrize(
    "organisation",
    [pytest.param("", id="empty"), pytest.param(7, id="not-a-string"), pytest.param(None, id="null")],
)
def test_bad_organisation_is_400_naming_the_field(server: SimulatorServer, organisation: Any) -> None:
    response = _tokens("POST", server, json={"token": SECRET, "organisation": organisation})
    assert response.status_code == 400
    assert "organisation" in response.json()["message"]
    assert SECRET not in server.simulator.config.tokens


@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_malformed_token_body_is_400(server: SimulatorServer, method: str) -> None:
    response = _tokens(method, server, data=b'{"token": "' + SECRET.encode())
    assert (response.status_code, response.json()) == (400, {"message": "Malformed JSON body."})


def test_token_python_api(server: SimulatorServer) -> None:
    simulator = server.simulator
    simulator.add_token(SECRET, organisation="org-3")
    assert simulator.config.tokens == {TOKEN: "org-1", SECRET: "org-3"}
    client = Api(server, SECRET)
    try:
        assert client("GET", "/videos").status_code == 200
        assert simulator.revoke_token(SECRET) is True
        assert simulator.revoke_token(SECRET) is False
        assert client("GET", "/videos").status_code == 401
    finally:
        client.close()
    with pytest.raises(ValueError, match="token"):
        simulator.add_token("")
    with pytest.raises(ValueError, match="organisation"):
        simulator.add_token(SECRET, organisation="")
    assert simulator.config.tokens == {TOKEN: "org-1"}


def test_unknown_route_and_wrong_method(api: Api) -> None:
    response = api("GET", "/xyz")
    assert response.status_code == 404
    assert response.json() == {"message": "The route api/v1/xyz could not be found."}
    # Laravel resolves routes before authentication: no token needed to get the 404.
    assert requests.get(api.server.base_url + "/nope", timeout=10).status_code == 404
    response = api("PATCH", "/videos")
    assert response.status_code == 405
    assert response.json()["message"].startswith("The PATCH method is not supported for route api/v1/videos.")


def test_non_integer_ids_are_404(api: Api) -> None:
    for path in ("/videos/abc", "/videos/-1", "/analyses/1.5", "/analyses/x/summary"):
        response = api("GET", path)
        assert response.status_code == 404, path
        assert response.json()["message"].startswith("No query results for model"), path


# --------------------------------------------------------------------------------------------------
# Videos
# --------------------------------------------------------------------------------------------------


#: The fields the docs show for ``GET /videos`` items, and for ``GET /videos/{id}`` (plus ``mp4_source``).
DOCUMENTED_LIST_FIELDS = {
    "id",
    "status",
    "game_name",
    "title",
    "created_at",
    "home_team_name",
    "away_team_name",
    "duration",
    "analyses",
}
DOCUMENTED_GET_FIELDS = DOCUMENTED_LIST_FIELDS | {"mp4_source"}
SUBMITTED_ONLY_FIELDS = {"video_file_url", "date", "start_offset_seconds", "end_offset_seconds", "left_start_team"}


def test_video_objects_carry_only_documented_fields_by_default(api: Api) -> None:
    api.create_video(date="2025-01-15", start_offset_seconds=0, left_start_team="home")
    (listed,) = api("GET", "/videos").json()["data"]
    assert set(listed) == DOCUMENTED_LIST_FIELDS, "no video_file_url: a client cannot match by URL"
    assert set(api.video(listed["id"])) == DOCUMENTED_GET_FIELDS


def test_echoing_submitted_fields_is_opt_in(make_server: Callable[..., SimulatorServer]) -> None:
    client = Api(make_server(echo_submitted_fields=True))
    try:
        created = client.create_video(date="2025-01-15", left_start_team="away")
        (listed,) = client("GET", "/videos").json()["data"]
        for view in (created, listed, client.video(created["id"])):
            assert set(view) >= SUBMITTED_ONLY_FIELDS
            assert view["video_file_url"] == URL
            assert view["left_start_team"] == "away"
    finally:
        client.close()


def test_commit_delay_hides_new_videos_and_analyses_from_lists_only(
    make_server: Callable[..., SimulatorServer],
) -> None:
    server = make_server(commit_delay_seconds=5)
    client = Api(server)
    try:
        video = client.create_video()
        assert client("GET", "/videos").json()["data"] == [], "not listed yet"
        assert client("GET", "/videos").json()["meta"]["total"] == 0
        assert client.video(video["id"])["id"] == video["id"], "found by id at once"
        analysis = client.create_analysis(video["id"])
        assert client.analysis(analysis["id"])["id"] == analysis["id"]
        server.simulator.advance(5)
        (listed,) = client("GET", "/videos").json()["data"]
        assert listed["id"] == video["id"]
        assert [entry["id"] for entry in listed["analyses"]] == [analysis["id"]]
    finally:
        client.close()


def test_video_ready_after_gets_holds_the_final_status_until_that_many_reads(
    make_server: Callable[..., SimulatorServer],
) -> None:
    """The e2e knob: however late the first GET comes, the video is still preparing then, and its
    analysis starts only once the video has been reported available."""
    server = make_server(video_step_seconds=1, video_ready_after_gets=3, analysis_seconds=10)
    client = Api(server)
    try:
        video = client.create_video()
        analysis = client.create_analysis(video["id"])
        server.simulator.advance(60)  # long past the 3 s timeline
        assert client.video(video["id"])["status"] == "locally_available", "1st GET"
        assert client.analysis(analysis["id"])["status"] == "waiting_for_video", "queued behind its video"
        server.simulator.advance(60)
        assert client.video(video["id"])["status"] == "locally_available", "2nd GET"
        server.simulator.advance(0.5)
        assert client.video(video["id"])["status"] == "available", "3rd GET"
        assert client.video(video["id"])["status"] == "available", "and from then on"
        server.simulator.advance(2)
        assert client.analysis(analysis["id"])["status"] == "running", "its timeline starts from then"
        other = client.create_video()
        server.simulator.set_video_status(other["id"], "available")
        assert client.video(other["id"])["status"] == "available", "a forced status is never held back"
    finally:
        client.close()


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


def test_video_create_get_update_delete_round_trip(api: Api, server: SimulatorServer) -> None:
    response = api(
        "POST",
        "/videos",
        json={
            "video_file_url": URL,
            "title": "Team A vs Team B",
            "home_team_name": "Team A",
            "away_team_name": "Team B",
            "date": "2025-01-15",
            "start_offset_seconds": 0,
            "end_offset_seconds": 5400,
            "left_start_team": "home",
            "unknown_field": "ignored",
        },
    )
    assert response.status_code == 201
    assert response.headers["Content-Type"].startswith("application/json")
    created = response.json()["data"]
    assert created["id"] == 790
    assert created["status"] == "init"
    assert re.fullmatch(r"[a-z]+-[a-z]+-\d{2}", created["game_name"])
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", created["created_at"])
    # Only what the docs' create example shows.
    assert set(created) == {"id", "status", "game_name", "title", "created_at"}

    fetched = api.video(790)
    assert set(fetched) == DOCUMENTED_GET_FIELDS
    assert {k: fetched[k] for k in created} == created
    assert fetched["duration"] is None
    assert fetched["mp4_source"] is None
    assert fetched["analyses"] == []

    response = api("PUT", "/videos/790", json={"title": "Renamed", "end_offset_seconds": 3000, "video_file_url": "x"})
    assert response.status_code == 200
    updated = response.json()["data"]
    assert updated["title"] == "Renamed"
    assert set(updated) == DOCUMENTED_GET_FIELDS
    assert api.video(790)["title"] == "Renamed"
    submitted = server.simulator.submitted_video(790)
    assert submitted["end_offset_seconds"] == 3000
    assert submitted["video_file_url"] == URL  # not updatable: ignored

    response = api("DELETE", "/videos/790")
    assert response.status_code == 204
    assert response.content == b""
    response = api("GET", "/videos/790")
    assert response.status_code == 404
    assert response.json() == {"message": "No query results for model [App\\Models\\Video] 790"}


def test_game_names_are_unique(api: Api) -> None:
    names = {api.create_video()["game_name"] for _ in range(60)}
    assert len(names) == 60


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        pytest.param({}, "video_file_url", "The video file url field is required.", id="url-missing"),
        pytest.param({"video_file_url": ""}, "video_file_url", "The video file url field is required.", id="url-empty"),
        pytest.param(
            {"video_file_url": "not a url"},
            "video_file_url",
            "The video file url field must be a valid URL.",
            id="url-garbage",
        ),
        pytest.param(
            {"video_file_url": "ftp://example.com/a.mp4"},
            "video_file_url",
            "The video file url field must be a valid URL.",
            id="url-not-http",
        ),
        pytest.param(
            {"video_file_url": 42},
            "video_file_url",
            "The video file url field must be a valid URL.",
            id="url-number",
        ),
        pytest.param({"date": "15-01-2025"}, "date", "The date field must match the format Y-m-d.", id="date-format"),
        pytest.param(
            {"date": "2025-02-30"},
            "date",
            "The date field must match the format Y-m-d.",
            id="date-impossible",
        ),
        pytest.param(
            {"start_offset_seconds": "10"},
            "start_offset_seconds",
            "The start offset seconds field must be an integer.",
            id="start-string",
        ),
        pytest.param(
            {"start_offset_seconds": 1.5},
            "start_offset_seconds",
            "The start offset seconds field must be an integer.",
            id="start-float",
        ),
        pytest.param(
            {"start_offset_seconds": True},
            "start_offset_seconds",
            "The start offset seconds field must be an integer.",
            id="start-bool",
        ),
        pytest.param(
            {"start_offset_seconds": -1},
            "start_offset_seconds",
            "The start offset seconds field must be at least 0.",
            id="start-negative",
        ),
        pytest.param(
            {"end_offset_seconds": -5},
            "end_offset_seconds",
            "The end offset seconds field must be at least 0.",
            id="end-negative",
        ),
        pytest.param(
            {"start_offset_seconds": 100, "end_offset_seconds": 100},
            "end_offset_seconds",
            "The end offset seconds field must be greater than start offset seconds.",
            id="end-equals-start",
        ),
        pytest.param(
            {"start_offset_seconds": 100, "end_offset_seconds": 50},
            "end_offset_seconds",
            "The end offset seconds field must be greater than start offset seconds.",
            id="end-before-start",
        ),
        pytest.param(
            {"left_start_team": "left"},
            "left_start_team",
            "The selected left start team is invalid.",
            id="left-start-team",
        ),
        pytest.param({"title": 12}, "title", "The title field must be a string.", id="title-not-string"),
        pytest.param(
            {"title": "x" * 256},
            "title",
            "The title field must not be greater than 255 characters.",
            id="title-too-long",
        ),
        pytest.param(
            {"home_team_name": ["A"]},
            "home_team_name",
            "The home team name field must be a string.",
            id="home-not-string",
        ),
        pytest.param(
            {"away_team_name": "y" * 300},
            "away_team_name",
            "The away team name field must not be greater than 255 characters.",
            id="away-too-long",
        ),
    ],
)
def test_create_video_validation(api: Api, body: dict[str, Any], field: str, message: str) -> None:
    payload = {"video_file_url": URL, **body} if field != "video_file_url" else body
    response = api("POST", "/videos", json=payload)
    assert response.status_code == 422
    assert response.json() == {"message": message, "errors": {field: [message]}}
    assert api("GET", "/videos").json()["meta"]["total"] == 0


def test_validation_message_counts_the_other_errors(api: Api) -> None:
    response = api("POST", "/videos", json={"date": "nope", "left_start_team": "left"})
    assert response.status_code == 422
    body = response.json()
    assert body["message"] == "The video file url field is required. (and 2 more errors)"
    assert set(body["errors"]) == {"video_file_url", "date", "left_start_team"}
    body = api("POST", "/videos", json={"video_file_url": URL, "date": "x", "title": 1}).json()
    assert body["message"] == "The title field must be a string. (and 1 more error)"


def test_nulls_are_accepted_for_optional_fields(api: Api) -> None:
    video = api.create_video(title=None, date=None, start_offset_seconds=None, left_start_team=None)
    assert video["title"] is None
    assert api.server.simulator.submitted_video(video["id"])["date"] is None


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b""], ids=["garbage", "array", "empty"])
def test_create_video_with_a_body_that_is_not_a_json_object(api: Api, body: bytes) -> None:
    response = api("POST", "/videos", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["errors"] == {"video_file_url": ["The video file url field is required."]}


def test_update_video_validation(api: Api) -> None:
    video = api.create_video(start_offset_seconds=600)
    response = api("PUT", f"/videos/{video['id']}", json={"end_offset_seconds": 300})
    assert response.status_code == 422
    assert response.json()["errors"] == {
        "end_offset_seconds": ["The end offset seconds field must be greater than start offset seconds."]
    }
    response = api("PUT", f"/videos/{video['id']}", json={"date": "2025/01/01", "title": 5})
    assert response.status_code == 422
    assert set(response.json()["errors"]) == {"date", "title"}
    # left_start_team is not in the docs' PUT table: ignored like any unknown field.
    response = api("PUT", f"/videos/{video['id']}", json={"left_start_team": "away", "home_team_name": "H"})
    assert response.status_code == 200
    assert api.server.simulator.submitted_video(video["id"])["left_start_team"] is None
    assert response.json()["data"]["home_team_name"] == "H"


def test_pagination_over_40_videos(api: Api) -> None:
    ids = [api.create_video(title=f"match {n}")["id"] for n in range(40)]
    pages = []
    url: str | None = api.server.base_url + "/videos"
    while url is not None:
        response = api.session.get(url, timeout=10)
        assert response.status_code == 200
        pages.append(response.json())
        url = pages[-1]["links"]["next"]
    assert len(pages) == 3
    assert [len(page["data"]) for page in pages] == [15, 15, 10]
    assert [video["id"] for page in pages for video in page["data"]] == ids  # oldest first
    path = api.server.base_url + "/videos"
    first, second, last = pages
    assert first["links"] == {
        "first": f"{path}?page=1",
        "last": f"{path}?page=3",
        "prev": None,
        "next": f"{path}?page=2",
    }
    assert second["links"]["prev"] == f"{path}?page=1"
    assert last["links"]["next"] is None
    assert first["meta"] == {
        "current_page": 1,
        "from": 1,
        "last_page": 3,
        "path": path,
        "per_page": 15,
        "to": 15,
        "total": 40,
    }
    assert last["meta"]["from"] == 31
    assert last["meta"]["to"] == 40
    item = first["data"][0]
    assert {
        "id",
        "status",
        "game_name",
        "title",
        "created_at",
        "home_team_name",
        "away_team_name",
        "duration",
        "analyses",
    } <= set(item)
    assert "mp4_source" not in item  # the docs' list example has none
    beyond = api("GET", "/videos", params={"page": 9}).json()
    assert beyond["data"] == []
    assert beyond["meta"]["from"] is None
    assert beyond["meta"]["current_page"] == 9
    assert api("GET", "/videos", params={"page": "abc"}).json()["meta"]["current_page"] == 1


def test_empty_list(api: Api) -> None:
    body = api("GET", "/videos").json()
    assert body["data"] == []
    assert body["meta"]["total"] == 0
    assert body["meta"]["last_page"] == 1
    assert body["links"]["next"] is None


def test_per_page_is_configurable(make_server: Callable[..., SimulatorServer]) -> None:
    api = Api(make_server(per_page=4))
    for _ in range(9):
        api.create_video()
    assert api("GET", "/videos").json()["meta"]["last_page"] == 3


def test_video_status_progression_follows_the_clock(server: SimulatorServer, api: Api) -> None:
    video = api.create_video(start_offset_seconds=60, end_offset_seconds=3660)
    seen = []
    for _ in range(5):
        data = api.video(video["id"])
        seen.append((data["status"], data["duration"], data["mp4_source"]))
        server.simulator.advance(2.0)
    assert seen == [
        ("init", None, None),
        ("downloading", None, None),
        ("locally_available", None, None),
        ("available", 3600, "https://cdn.aiontheball.test/videos/790.mp4"),
        ("available", 3600, "https://cdn.aiontheball.test/videos/790.mp4"),
    ]
    assert all(status in set(VideoStatus) for status, _, _ in seen)
    assert api.create_video()["status"] == "init"
    server.simulator.advance(6)
    assert api.video(791)["duration"] == 5400


def _statuses(server: SimulatorServer, api: Api, video_id: int, steps: int = 5) -> list[str]:
    seen = []
    for _ in range(steps):
        seen.append(api.video(video_id)["status"])
        server.simulator.advance(2.0)
    return seen


OUTCOME_SEQUENCES = {
    "available": ["init", "downloading", "locally_available", "available", "available"],
    "error": ["init", "downloading", "error", "error", "error"],
    "no_match_detected": [
        "init",
        "downloading",
        "locally_available",
        "no_match_detected",
        "no_match_detected",
    ],
    "stuck": ["init", "downloading", "downloading", "downloading", "downloading"],
    "status:created": ["created", "downloading", "locally_available", "available", "available"],
}


@pytest.mark.parametrize("how", ["python", "url-parameter", "control-route"])
@pytest.mark.parametrize("outcome", list(OUTCOME_SEQUENCES))
def test_scripted_video_outcomes(server: SimulatorServer, api: Api, outcome: str, how: str) -> None:
    url = URL
    if how == "python":
        server.simulator.script_next_videos(outcome)
    elif how == "control-route":
        response = requests.post(
            server.control_url + "/script",
            json={"resource": "video", "outcome": outcome, "count": 1},
            timeout=10,
        )
        assert response.status_code == 201
    else:
        url = f"{URL}?sim_outcome={outcome}"
    video = api.create_video(video_file_url=url)
    assert _statuses(server, api, video["id"]) == OUTCOME_SEQUENCES[outcome]
    # the script is used up: the next video is normal
    assert _statuses(server, api, api.create_video()["id"]) == OUTCOME_SEQUENCES["available"]


def test_stuck_video_stays_downloading(server: SimulatorServer, api: Api) -> None:
    server.simulator.script_next_videos("stuck")
    video = api.create_video()
    server.simulator.advance(1_000_000)
    assert api.video(video["id"])["status"] == "downloading"


def test_script_count_and_url_precedence(server: SimulatorServer, api: Api) -> None:
    server.simulator.script_next_videos("error", count=2)
    url_video = api.create_video(video_file_url=f"{URL}?sim_outcome=no_match_detected")  # does not consume
    scripted = [api.create_video()["id"] for _ in range(3)]
    server.simulator.advance(100)
    assert api.video(url_video["id"])["status"] == "no_match_detected"
    assert [api.video(i)["status"] for i in scripted] == ["error", "error", "available"]


def test_invalid_outcomes_are_rejected(server: SimulatorServer, api: Api) -> None:
    response = api("POST", "/videos", json={"video_file_url": f"{URL}?sim_outcome=explode"})
    assert response.status_code == 422
    assert list(response.json()["errors"]) == ["video_file_url"]
    with pytest.raises(ValueError):
        server.simulator.script_next_videos("explode")
    with pytest.raises(ValueError):
        server.simulator.script_next_analyses("running")
    response = requests.post(server.control_url + "/script", json={"resource": "video", "outcome": "x"}, timeout=10)
    assert response.status_code == 400
    response = requests.post(server.control_url + "/script", json={"resource": "user", "outcome": "done"}, timeout=10)
    assert response.status_code == 400


def test_set_video_status(server: SimulatorServer, api: Api) -> None:
    video = api.create_video()
    server.simulator.set_video_status(video["id"], "available")
    assert api.video(video["id"])["status"] == "available"
    response = requests.post(server.control_url + f"/videos/{video['id']}/status", json={"status": "error"}, timeout=10)
    assert response.status_code == 200
    assert response.json()["data"]["status"] == "error"
    server.simulator.advance(100)
    assert api.video(video["id"])["status"] == "error"  # forced statuses stick
    server.simulator.set_video_status(video["id"], "transcoding")  # undocumented values are allowed
    assert api.video(video["id"])["status"] == "transcoding"
    assert (
        requests.post(server.control_url + "/videos/999/status", json={"status": "error"}, timeout=10).status_code
        == 404
    )
    with pytest.raises(KeyError):
        server.simulator.set_video_status(999, "error")


# --------------------------------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------------------------------


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


def test_the_cdn_serves_tracking_files_without_a_token_and_logs_what_came(server: SimulatorServer, api: Api) -> None:
    analysis = done_analysis(server, api)
    via_api = api("GET", f"/analyses/{analysis['id']}/tracking/download").content
    cdn = server.base_url.replace("/api/v1", f"/_cdn/tracking/{analysis['id']}")
    response = requests.get(cdn, params={"X-Amz-Signature": "sig"}, timeout=10)
    assert response.status_code == 200
    assert response.content == via_api
    assert requests.get(cdn.replace(str(analysis["id"]), "999"), timeout=10).status_code == 404
    logged = [r for r in server.simulator.requests if r.path.startswith("/_cdn/")]
    assert [(r.status, r.authorization, r.query) for r in logged] == [
        (200, False, {"X-Amz-Signature": "sig"}),
        (404, False, {}),
    ]


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


# --------------------------------------------------------------------------------------------------
# Request log, stats, connections
# --------------------------------------------------------------------------------------------------


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


def test_connection_json(server: SimulatorServer) -> None:
    assert server.base_url == f"http://127.0.0.1:{server.port}/api/v1"
    assert server.control_url == f"http://127.0.0.1:{server.port}/_control"
    assert json.loads(server.connection_json("abc")) == {
        "conn_type": "aiontheball",
        "host": f"http://127.0.0.1:{server.port}/api/v1",
        "password": "abc",
    }
    assert json.loads(server.connection_json())["password"] == TOKEN


# --------------------------------------------------------------------------------------------------
# Analyses
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------

RESULT_REQUESTS = [
    pytest.param("GET", "/summary", None, id="summary"),
    pytest.param("GET", "/events", None, id="events"),
    pytest.param("GET", "/schema", None, id="schema"),
    pytest.param("POST", "/query-intervals", {"filters": []}, id="query-intervals"),
    pytest.param("GET", "/tracking/download", None, id="tracking"),
]


@pytest.mark.parametrize("configured", [409, 404])
@pytest.mark.parametrize(("method", "suffix", "body"), RESULT_REQUESTS)
def test_results_before_done_use_the_configured_status(
    make_server: Callable[..., SimulatorServer], configured: int, method: str, suffix: str, body: Any
) -> None:
    server = make_server(results_before_done_status=configured)
    api = Api(server)
    analysis = api.create_analysis(api.create_video()["id"])
    server.simulator.advance(8)
    response = api(method, f"/analyses/{analysis['id']}{suffix}", json=body)
    assert response.status_code == configured
    assert response.json() == {"message": f"Analysis {analysis['id']} is not done yet (status: running)."}
    server.simulator.advance(10_000)
    assert api(method, f"/analyses/{analysis['id']}{suffix}", json=body).status_code == 200


@pytest.mark.parametrize(("method", "suffix", "body"), RESULT_REQUESTS)
def test_results_of_unknown_analysis_are_404(api: Api, method: str, suffix: str, body: Any) -> None:
    response = api(method, f"/analyses/4242{suffix}", json=body)
    assert response.status_code == 404
    assert response.json() == {"message": "No query results for model [App\\Models\\Analysis] 4242"}


@pytest.mark.parametrize(
    ("left_start_team", "expected"),
    [(None, ("Team A", "Team B")), ("home", ("Team A", "Team B")), ("away", ("Team B", "Team A"))],
    ids=["default", "home-left", "away-left"],
)
def test_summary_shape(
    server: SimulatorServer, api: Api, left_start_team: str | None, expected: tuple[str, str]
) -> None:
    analysis = done_analysis(
        server,
        api,
        home_team_name="Team A",
        away_team_name="Team B",
        date="2025-01-15",
        left_start_team=left_start_team,
    )
    response = api("GET", f"/analyses/{analysis['id']}/summary")
    assert response.status_code == 200
    summary = response.json()
    assert set(summary) == {"metadata", "teams", "match_stats", "possession", "players"}
    metadata = summary["metadata"]
    assert metadata["game_date"] == "2025-01-15"
    assert metadata["game_id"] == f"2025-01-15_hub-{analysis['id']}"
    assert metadata["version"] == "0.4.98"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.000Z", metadata["generated_at"])
    assert metadata["video_length_sec"] == 5400
    assert summary["teams"] == {"team_0_name": expected[0], "team_1_name": expected[1]}
    stats = summary["match_stats"]
    assert set(stats["event_counts"]) == {"team_possession", "player_possession", "scene", "match_timeline"}
    assert stats["event_counts"]["match_timeline"] == 1
    assert stats["total_durations_sec"]["match_timeline"] == 5400
    assert stats["analysable_duration_sec"] + stats["non_analysable_duration_sec"] == pytest.approx(5400)
    possession = summary["possession"]
    pcts = [possession["summary"][key]["pct"] for key in ("team_0", "team_1", "unknown")]
    assert sum(pcts) == pytest.approx(100, abs=1e-9)
    assert all(0 <= p <= 100 for p in pcts)
    assert len(possession["per_minute"]) == 90
    for row in possession["per_minute"]:
        assert set(row) == {"minute", "team_0_pct", "team_1_pct", "unknown_pct"}
        assert row["team_0_pct"] + row["team_1_pct"] + row["unknown_pct"] == pytest.approx(100, abs=1e-9)
        assert min(row["team_0_pct"], row["team_1_pct"], row["unknown_pct"]) >= 0
    players = summary["players"]
    assert len(players) == 22
    assert [p["player_id"] for p in players[:2]] == ["0-1", "0-2"]
    for player in players:
        team_index = int(player["player_id"].split("-")[0])
        assert player["team_id"] == f"team_{team_index}"
        assert player["name"] == f"{expected[team_index]} #{player['jersey_number']}"
        player_stats = player["stats"]
        buckets = player_stats["distance_by_speed_bucket"]
        assert set(buckets) == {"walking_m", "jogging_m", "running_m", "sprinting_m"}
        assert sum(buckets.values()) == pytest.approx(player_stats["total_distance_m"], abs=0.011)
        assert set(player_stats["ball_actions"]) == {"passes", "drives", "shots"}
        assert 0 < player_stats["avg_speed_kmh"] < player_stats["max_speed_kmh"]
    assert sum(p["stats"]["ball_actions"]["passes"] for p in players) > 0
    # deterministic: the same answer every time
    assert api("GET", f"/analyses/{analysis['id']}/summary").json() == summary


def test_summary_default_team_names(server: SimulatorServer, api: Api) -> None:
    analysis = done_analysis(server, api, end_offset_seconds=1200)
    summary = api("GET", f"/analyses/{analysis['id']}/summary").json()
    assert summary["teams"] == {"team_0_name": "Home", "team_1_name": "Away"}
    assert summary["metadata"]["video_length_sec"] == 1200
    assert len(summary["possession"]["per_minute"]) == 20


def test_events_shape(server: SimulatorServer, api: Api) -> None:
    analysis = done_analysis(server, api, home_team_name="Team A", away_team_name="Team B")
    response = api("GET", f"/analyses/{analysis['id']}/events")
    assert response.status_code == 200
    events = response.json()
    assert isinstance(events, list)
    assert len(events) > 500
    types = {event["event_type"] for event in events}
    assert types == {
        "team_possession",
        "player_possession",
        "scene",
        "match_timeline",
        "pass",
        "drive",
        "shot",
        "tackle",
        "ball_phase",
    }
    for event in events:
        assert set(event) == {"start", "end", "label", "event_type"}
        assert 0 <= event["start"] <= event["end"] <= 5400
        for value in (event["start"], event["end"]):
            assert abs(value / 0.04 - round(value / 0.04)) < 1e-6, value
    labels = {t: {e["label"] for e in events if e["event_type"] == t} for t in types}
    assert labels["team_possession"] == {"Team A", "Team B"}
    assert labels["scene"] == {"analysable", "not analysable"}
    assert labels["match_timeline"] == {"full_game"}
    assert labels["pass"] == {"pass"}
    assert labels["ball_phase"] <= {"in_play", "out_of_bounds", "in_bounds_stoppage", "half_kickoff"}
    assert all(re.fullmatch(r"[01]-\d+", label) for label in labels["player_possession"])
    assert all(e["start"] == e["end"] for e in events if e["event_type"] in ("pass", "drive", "shot", "tackle"))
    assert api("GET", f"/analyses/{analysis['id']}/events").json() == events


def test_schema_shape(server: SimulatorServer, api: Api) -> None:
    analysis = done_analysis(server, api)
    schema = api("GET", f"/analyses/{analysis['id']}/schema").json()
    assert set(schema) == {"data_version", "engine_version", "event_types", "filters", "frame_state"}
    assert schema["data_version"] == 3
    assert {"pass", "shot", "tackle", "drive"} <= set(schema["event_types"])
    body_part = schema["event_types"]["pass"]["properties"][0]
    assert body_part == {"name": "body_part", "type": "str", "enum": ["head", "both_hands", "unknown"]}
    assert [f["type"] for f in schema["filters"]] == [
        "event_property",
        "frame_state",
        "ball_location",
        "player_ball_proximity",
        "team_possession",
        "player_possession",
        "match_timeline",
        "scene",
        "ball_action",
    ]
    assert schema["frame_state"]["available"] is True
    assert {c["name"] for c in schema["frame_state"]["columns"]} >= {"timestamp", "player_id", "speed_mps"}


def _query(api: Api, analysis_id: int, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = api("POST", f"/analyses/{analysis_id}/query-intervals", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert isinstance(result, list)
    for interval in result:
        assert set(interval) == {"start", "end", "label", "type"}
        assert interval["start"] <= interval["end"]
    return result


def test_query_intervals(server: SimulatorServer, api: Api) -> None:
    analysis = done_analysis(server, api, home_team_name="Team A", away_team_name="Team B", left_start_team="away")
    aid = analysis["id"]
    team_0 = _query(
        api,
        aid,
        {"filters": [{"type": "team_possession", "teams": ["team_0"]}], "pad_sec": 0, "gap_fill_sec": 0},
    )
    assert team_0
    assert {i["label"] for i in team_0} == {"Team B"}  # the away team started on the left
    assert {i["type"] for i in team_0} == {"team_possession"}
    assert team_0 == sorted(team_0, key=lambda i: i["start"])

    # defaults: pad 5 s and gap fill 5 s make fewer, longer intervals
    padded = _query(api, aid, {"filters": [{"type": "team_possession", "teams": ["team_0"]}]})
    assert len(padded) < len(team_0)
    assert sum(i["end"] - i["start"] for i in padded) > sum(i["end"] - i["start"] for i in team_0)

    unmerged = _query(api, aid, {"filters": [{"type": "ball_action", "actions": ["pass"]}], "merge_results": False})
    merged = _query(api, aid, {"filters": [{"type": "ball_action", "actions": ["pass"]}]})
    assert len(unmerged) > len(merged)
    assert all(round(i["end"] - i["start"], 2) <= 10 for i in unmerged)  # each pass padded by 5 s each side

    both = {"filters": [{"type": "team_possession", "teams": ["team_0"]}, {"type": "ball_location", "x_min": 70}]}
    and_result = _query(api, aid, {**both, "operator": "AND", "pad_sec": 0, "gap_fill_sec": 0})
    or_result = _query(api, aid, {**both, "operator": "OR", "pad_sec": 0, "gap_fill_sec": 0})
    assert 0 < sum(i["end"] - i["start"] for i in and_result) < sum(i["end"] - i["start"] for i in team_0)
    assert {i["type"] for i in or_result} == {"team_possession", "ball_location"}
    assert {i["label"] for i in and_result} == {"Team B"}

    players = _query(
        api,
        aid,
        {
            "operator": "OR",
            "filters": [
                {"type": "player_possession", "players": ["0-10"]},
                {"type": "player_possession", "players": ["0-7"]},
            ],
        },
    )
    assert {i["label"] for i in players} == {"0-10", "0-7"}

    windowed = _query(
        api,
        aid,
        {
            "filters": [{"type": "match_timeline", "periods": ["full_game"]}],
            "existing_filters": [{"start": 100, "end": 200, "name": "w"}],
            "pad_sec": 0,
        },
    )
    assert windowed == [{"start": 100.0, "end": 200.0, "label": "full_game", "type": "match_timeline"}]
    assert _query(api, aid, {"filters": [{"type": "match_timeline", "periods": ["first_half"]}]}) == []
    assert _query(api, aid, {"filters": []}) == []
    assert _query(api, aid, {}) == []

    others = [
        {
            "type": "event_property",
            "event_type": "shot",
            "properties": [{"field": "body_part", "eq": "head"}],
        },
        {
            "type": "event_property",
            "event_type": "pass",
            "properties": [{"field": "length_cm", "gte": 2000}],
            "teams": ["team_1"],
        },
        {
            "type": "frame_state",
            "players": ["0-10"],
            "column": "speed_mps",
            "gte": 7.0,
            "min_duration_ms": 1000,
        },
        {"type": "player_ball_proximity", "players": ["0-10", "0-7"], "threshold": 5},
        {"type": "scene", "is_analysable": False},
        {"type": "ball_action"},
        {
            "type": "ball_location",
            "x_min": 88.5,
            "y_min": 13.85,
            "y_max": 54.15,
            "team_side_perspective": "team_1",
        },
    ]
    for item in others:
        assert _query(api, aid, {"filters": [item]}), item
    # deterministic
    assert _query(api, aid, {"filters": others[2:4], "operator": "OR"}) == _query(
        api, aid, {"filters": others[2:4], "operator": "OR"}
    )


@pytest.mark.parametrize(
    ("body", "key"),
    [
        pytest.param({"operator": "XOR", "filters": []}, "operator", id="operator"),
        pytest.param({"filters": "team_possession"}, "filters", id="filters-not-array"),
        pytest.param({"filters": ["team_possession"]}, "filters.0", id="filter-not-object"),
        pytest.param({"filters": [{"teams": ["team_0"]}]}, "filters.0.type", id="type-missing"),
        pytest.param({"filters": [{"type": "possession"}]}, "filters.0.type", id="type-unknown"),
        pytest.param(
            {"filters": [{"type": "scene"}, {"type": "match_timeline"}]},
            "filters.1.periods",
            id="periods-missing",
        ),
        pytest.param(
            {"filters": [{"type": "team_possession", "teams": ["team_2"]}]},
            "filters.0.teams.0",
            id="bad-team",
        ),
        pytest.param(
            {"filters": [{"type": "frame_state", "players": ["0-10"]}]},
            "filters.0.column",
            id="column-missing",
        ),
        pytest.param({"filters": [{"type": "ball_location", "x_min": 200}]}, "filters.0.x_min", id="x-out-of-range"),
        pytest.param(
            {"filters": [{"type": "event_property", "properties": []}]},
            "filters.0.event_type",
            id="event-type",
        ),
        pytest.param({"pad_sec": -1}, "pad_sec", id="pad-negative"),
        pytest.param({"gap_fill_sec": "5"}, "gap_fill_sec", id="gap-string"),
        pytest.param({"merge_results": "yes"}, "merge_results", id="merge-not-bool"),
        pytest.param({"existing_filters": [{"start": 10}]}, "existing_filters.0.end", id="window-end-missing"),
    ],
)
def test_query_intervals_validation(server: SimulatorServer, api: Api, body: dict[str, Any], key: str) -> None:
    analysis = done_analysis(server, api)
    response = api("POST", f"/analyses/{analysis['id']}/query-intervals", json=body)
    assert response.status_code == 422
    payload = response.json()
    assert key in payload["errors"]
    assert (
        payload["message"] == payload["errors"][next(iter(payload["errors"]))][0] or "more error" in payload["message"]
    )


def test_query_intervals_validation_runs_before_the_done_check(api: Api) -> None:
    analysis = api.create_analysis(api.create_video()["id"])
    response = api("POST", f"/analyses/{analysis['id']}/query-intervals", json={"filters": [{"type": "x"}]})
    assert response.status_code == 422


def test_tracking_download(server: SimulatorServer, api: Api) -> None:
    analysis = done_analysis(server, api)
    aid = analysis["id"]
    response = api("GET", f"/analyses/{aid}/tracking/download", params={"format": "parquet"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"] == f"attachment; filename=tracking_{aid}.parquet"
    assert response.headers.get("Transfer-Encoding") == "chunked"
    assert response.content[:4] == b"PAR1"
    assert response.content[-4:] == b"PAR1"
    default = api("GET", f"/analyses/{aid}/tracking/download")
    assert default.content == response.content  # parquet is the default

    response = api("GET", f"/analyses/{aid}/tracking/download", params={"format": "json"})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers["Content-Disposition"] == f"attachment; filename=tracking_{aid}.json"
    rows = response.json()
    assert rows == tracking_sample_rows()
    assert len(rows) == 480
    assert {tuple(row) for row in rows} == {
        ("timestamp", "role", "player_id", "player_id_conf", "x", "y", "bbox_x", "bbox_y")
    }
    assert {row["role"] for row in rows} == {"player", "goal_keeper", "ball", "referee"}
    timestamps = sorted({row["timestamp"] for row in rows})
    assert {b - a for a, b in itertools.pairwise(timestamps)} == {40}
    assert all(0 <= row["x"] <= 10500 and 0 <= row["y"] <= 6800 for row in rows)
    assert any(row["player_id"] is None and row["role"] == "player" for row in rows)

    response = api("GET", f"/analyses/{aid}/tracking/download", params={"format": "csv"})
    assert response.status_code == 422
    assert response.json() == {
        "message": "The selected format is invalid.",
        "errors": {"format": ["The selected format is invalid."]},
    }


def test_embedded_parquet_matches_the_json_rows() -> None:
    pq = pytest.importorskip("pyarrow.parquet")  # not a dependency; only checked where available
    from airflow_provider_aiontheball.testing.simulator import _tracking_parquet

    table = pq.read_table(io.BytesIO(_tracking_parquet()))
    assert table.to_pylist() == tracking_sample_rows()
    assert str(table.schema.field("player_id_conf").type) == "halffloat"


def test_embedded_parquet_checksum() -> None:
    import hashlib

    from airflow_provider_aiontheball.testing._tracking_sample import TRACKING_PARQUET_SHA256
    from airflow_provider_aiontheball.testing.simulator import _tracking_parquet

    assert hashlib.sha256(_tracking_parquet()).hexdigest() == TRACKING_PARQUET_SHA256


# --------------------------------------------------------------------------------------------------
# Webhooks
# --------------------------------------------------------------------------------------------------


class WebhookReceiver:
    """A small aiohttp app on its own thread that records what it receives."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[tuple[dict[str, str], Any]] = []
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.port = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _handle(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.json()))
        return web.Response(status=self.status)

    def _run(self) -> None:
        async def main() -> None:
            app = web.Application()
            app.router.add_post("/hook", self._handle)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = runner.addresses[0][1]
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._ready.set()
            await self._stop.wait()
            await runner.cleanup()

        asyncio.run(main())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def payloads(self) -> list[Any]:
        return [payload for _, payload in self.received]


def test_webhooks_are_delivered(make_server: Callable[..., SimulatorServer]) -> None:
    with WebhookReceiver() as receiver:
        server = make_server(webhook_url=receiver.url)
        api = Api(server)
        video = api.create_video()
        analysis = api.create_analysis(video["id"])
        server.simulator.advance(7 + 30 * 0.5)  # half-way through running
        wait_until(lambda: len(receiver.received) >= 1)
        server.simulator.advance(10_000)
        wait_until(lambda: any(p["event"] == "analysis_done" for p in receiver.payloads()))
        wait_until(lambda: server.simulator.stats["webhooks_sent"] == len(receiver.received))

    uuid = analysis["uuid"]
    payloads = receiver.payloads()
    assert payloads == [
        *[
            {
                "event": "analysis_completion_rate",
                "analysis_id": uuid,
                "status": "running",
                "completion_rate": rate,
            }
            for rate in range(0, 100, 10)
        ],
        {
            "event": "analysis_completion_rate",
            "analysis_id": uuid,
            "status": "aggregating",
            "completion_rate": 95,
        },
        {"event": "analysis_done", "analysis_id": uuid, "status": "done", "completion_rate": 100},
    ]
    for headers, _ in receiver.received:
        assert headers["User-Agent"] == "AI-on-the-ball"
        assert headers["Content-Type"].startswith("application/json")
    assert server.simulator.stats["webhooks_failed"] == 0


def test_webhook_for_a_failed_analysis(make_server: Callable[..., SimulatorServer]) -> None:
    with WebhookReceiver() as receiver:
        server = make_server(webhook_url=receiver.url)
        server.simulator.script_next_analyses("error", error_at_progress=25)
        api = Api(server)
        analysis = api.create_analysis(api.create_video()["id"])
        server.simulator.advance(10_000)
        wait_until(lambda: any(p["event"] == "analysis_done" for p in receiver.payloads()))
    rates = [(p["status"], p["completion_rate"]) for p in receiver.payloads()]
    assert rates == [("running", 0), ("running", 10), ("running", 20), ("error", 100)]
    assert {p["analysis_id"] for p in receiver.payloads()} == {analysis["uuid"]}


def test_webhook_failures_are_counted(make_server: Callable[..., SimulatorServer]) -> None:
    with WebhookReceiver(status=500) as receiver:
        server = make_server(webhook_url=receiver.url)
        api = Api(server)
        api.create_analysis(api.create_video()["id"])
        server.simulator.advance(10_000)
        wait_until(lambda: server.simulator.stats["webhooks_failed"] == 12)
    assert server.simulator.stats["webhooks_sent"] == 0
    # an unreachable receiver is swallowed and counted too
    unreachable = make_server(webhook_url=f"http://127.0.0.1:{receiver.port}/hook")
    api = Api(unreachable)
    api.create_analysis(api.create_video()["id"])
    unreachable.simulator.advance(10_000)
    wait_until(lambda: unreachable.simulator.stats["webhooks_failed"] == 12)


def test_no_webhooks_without_url(server: SimulatorServer, api: Api) -> None:
    done_analysis(server, api)
    assert server.simulator.stats["webhooks_sent"] == server.simulator.stats["webhooks_failed"] == 0


# --------------------------------------------------------------------------------------------------
# Load, CLI, packaging
# --------------------------------------------------------------------------------------------------


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


def test_direct_state_helpers(server: SimulatorServer, api: Api) -> None:
    video = api.create_video()
    analysis = api.create_analysis(video["id"])
    assert server.simulator.video_json(video["id"]) == api.video(video["id"])
    assert server.simulator.analysis_json(analysis["id"]) == api.analysis(analysis["id"])
    assert server.simulator.video_json(1) is None
    assert server.simulator.analysis_json(1) is None


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


def test_simulator_does_not_import_airflow() -> None:
    code = (
        "import sys; import airflow_provider_aiontheball.testing.simulator; "
        "bad = sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_cli_serves_and_exits_on_sigterm(tmp_path: Path) -> None:
    secret = "cli-secret-token-8d1f"
    ready = tmp_path / "ready"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_aiontheball.testing.simulator",
            "--port",
            "0",
            "--token",
            secret,
            "--token",
            "second-token",
            "--video-step-seconds",
            "0",
            "--ready-file",
            str(ready),
        ],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: ready.exists() and ready.read_text().strip() != "", timeout=30)
        base_url = ready.read_text().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/api/v1", base_url)
        headers = {"Authorization": f"Bearer {secret}"}
        created = requests.post(base_url + "/videos", json={"video_file_url": URL}, headers=headers, timeout=10)
        assert created.status_code == 201
        assert created.json()["data"]["status"] == "available"  # --video-step-seconds 0
        assert requests.get(base_url + "/videos", headers=headers, timeout=10).json()["meta"]["total"] == 1
        other = {"Authorization": "Bearer second-token"}
        assert requests.get(base_url + "/videos", headers=other, timeout=10).json()["meta"]["total"] == 0
        assert requests.get(base_url + "/videos", timeout=10).status_code == 401
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert stdout.strip() == f"AI on the Ball simulator listening on {base_url}"
    assert secret not in stdout + stderr
    assert "second-token" not in stdout + stderr


def test_cli_exits_on_sigint(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_aiontheball.testing.simulator",
            "--port",
            "0",
            "--ready-file",
            str(ready),
        ],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: ready.exists() and ready.read_text().strip() != "", timeout=30)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
