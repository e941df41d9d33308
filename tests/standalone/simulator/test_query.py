"""Query intervals: filters, operators, padding and merging, windows; request validation."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_aiontheball.testing.simulator import SimulatorServer
from tests.standalone.simulator._helpers import Api, done_analysis


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
