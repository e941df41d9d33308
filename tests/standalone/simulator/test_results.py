"""Results of a done analysis: summary, events, schema, tracking download (API and CDN), the embedded parquet."""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Callable
from typing import Any

import pytest
import requests

from airflow_provider_aiontheball.testing.simulator import SimulatorServer, tracking_sample_rows
from tests.standalone.simulator._helpers import Api, done_analysis

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
