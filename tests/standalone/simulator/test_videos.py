"""Videos: fields, create/get/update/delete, validation, pagination, status over the clock, scripted outcomes."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import requests

from airflow_provider_aiontheball.statuses import VideoStatus
from airflow_provider_aiontheball.testing.simulator import SimulatorServer
from tests.standalone.simulator._helpers import URL, Api

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
