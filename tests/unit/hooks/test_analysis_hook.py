"""Analysis endpoints of AIOnTheBallHook against the simulator: shapes exactly as documented."""

from __future__ import annotations

import io
import json

import pytest
import requests

from airflow_provider_aiontheball.exceptions import AIOnTheBallConflictError, AIOnTheBallNotFoundError
from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallHook
from tests.helpers import api_requests

VIDEO_URL = "https://example.com/match.mp4"


@pytest.fixture
def hook(aiontheball_conn):
    with AIOnTheBallHook() as hook:
        yield hook


@pytest.fixture
def done_analysis(hook, aiontheball_conn):
    """An analysis that is done, made so by moving the simulator's clock forward (no sleeping)."""
    video = hook.create_video(VIDEO_URL, home_team_name="Ajax", away_team_name="PSV")
    analysis = hook.create_analysis(video["id"])
    aiontheball_conn.simulator.advance(60)
    return analysis


def test_create_analysis_right_after_the_video(hook, aiontheball_conn):
    video = hook.create_video(VIDEO_URL)
    analysis = hook.create_analysis(video["id"], fps=25)
    assert analysis["video_id"] == video["id"]
    assert analysis["status"] == "init"
    assert api_requests(aiontheball_conn, "POST")[-1]["body"] == {"fps": 25}
    aiontheball_conn.simulator.advance(0.15)
    assert hook.get_analysis(analysis["id"])["status"] == "waiting_for_video"


def test_create_analysis_without_fps_sends_an_empty_body(hook, aiontheball_conn):
    video = hook.create_video(VIDEO_URL)
    hook.create_analysis(video["id"])
    assert api_requests(aiontheball_conn, "POST")[-1]["body"] == {}


@pytest.mark.parametrize("fps", [0, -1, "fast", 2.5])
def test_fps_validated_before_any_request(hook, aiontheball_conn, fps):
    with pytest.raises(ValueError, match=r"^fps: "):
        hook.create_analysis(790, fps=fps)
    assert api_requests(aiontheball_conn) == []


@pytest.mark.simulator(analysis_get_envelope=False)
def test_get_analysis_accepts_a_bare_object(hook):
    video = hook.create_video(VIDEO_URL)
    analysis = hook.create_analysis(video["id"])
    assert hook.get_analysis(analysis["id"])["id"] == analysis["id"]


@pytest.mark.simulator(analysis_get_route=False)
def test_missing_analysis_route_is_said_clearly(hook):
    video = hook.create_video(VIDEO_URL)
    analysis = hook.create_analysis(video["id"])
    with pytest.raises(AIOnTheBallNotFoundError, match=r"this server has no GET /analyses/\{id\} route"):
        hook.get_analysis(analysis["id"])


@pytest.mark.simulator(analysis_get_route=False)
def test_missing_analysis_route_falls_back_to_the_video(hook, all_logs):
    video = hook.create_video(VIDEO_URL)
    analysis = hook.create_analysis(video["id"])
    found = hook.get_analysis(analysis["id"], video_id=video["id"])
    assert found["id"] == analysis["id"]
    assert found["status"] in {"init", "waiting_for_video"}
    hook.get_analysis(analysis["id"], video_id=video["id"])
    notes = [m for m in all_logs.messages if "no GET /analyses/{id} route" in m]
    assert len(notes) == 1, "said once, then the video is used directly"


def test_missing_analysis_is_not_found(hook):
    with pytest.raises(AIOnTheBallNotFoundError) as excinfo:
        hook.get_analysis(999_999)
    assert "route" not in excinfo.value.detail


def test_summary_is_a_bare_object_with_documented_sections(hook, done_analysis):
    summary = hook.get_summary(done_analysis["id"])
    assert {"metadata", "teams", "match_stats", "possession", "players"} <= set(summary)
    assert summary["teams"] == {"team_0_name": "Ajax", "team_1_name": "PSV"}
    shares = summary["possession"]["summary"]
    assert round(sum(part["pct"] for part in shares.values())) == 100


def test_events_are_a_bare_array_with_event_type(hook, done_analysis):
    events = hook.get_events(done_analysis["id"])
    assert isinstance(events, list)
    assert events
    assert all(set(e) == {"start", "end", "label", "event_type"} for e in events)


def test_schema_is_a_bare_object(hook, done_analysis):
    schema = hook.get_schema(done_analysis["id"])
    assert {"data_version", "event_types", "filters"} <= set(schema)


def test_query_intervals_are_a_bare_array_with_type(hook, done_analysis, aiontheball_conn):
    intervals = hook.query_intervals(
        done_analysis["id"], [{"type": "team_possession", "teams": ["team_0"]}], operator="OR", pad_sec=0
    )
    assert isinstance(intervals, list)
    assert all({"start", "end", "label", "type"} <= set(i) for i in intervals)
    assert api_requests(aiontheball_conn, "POST")[-1]["body"] == {
        "operator": "OR",
        "filters": [{"type": "team_possession", "teams": ["team_0"]}],
        "pad_sec": 0,
    }


def test_query_rejects_unknown_filter_before_any_request(hook, aiontheball_conn):
    with pytest.raises(ValueError, match="unknown filter type 'offside'"):
        hook.query_intervals(1247, [{"type": "offside"}])
    assert api_requests(aiontheball_conn) == []


def test_query_intervals_is_retried_as_a_read(hook, done_analysis, aiontheball_conn):
    requests.post(
        f"{aiontheball_conn.control_url}/faults",
        json={"kind": "status", "status": 502, "count": 1, "method": "POST"},
        timeout=5,
    ).raise_for_status()
    assert isinstance(hook.query_intervals(done_analysis["id"], [{"type": "scene"}]), list)


def test_download_tracking_parquet_to_a_path(hook, done_analysis, tmp_path):
    target = tmp_path / "out" / "tracking.parquet"
    assert hook.download_tracking(done_analysis["id"], target) == target
    data = target.read_bytes()
    assert data[:4] == b"PAR1"
    assert data[-4:] == b"PAR1"
    assert not list(target.parent.glob("*.part")), "no partial file left behind"


def test_download_tracking_json_to_a_file_object(hook, done_analysis):
    buffer = io.BytesIO()
    hook.download_tracking(done_analysis["id"], buffer, format="json")
    rows = json.loads(buffer.getvalue())
    assert {"timestamp", "role", "player_id", "x", "y"} <= set(rows[0])


def test_download_tracking_rejects_unknown_format(hook):
    with pytest.raises(ValueError, match=r"^format: "):
        hook.download_tracking(1247, io.BytesIO(), format="csv")


def test_interrupted_download_leaves_no_partial_file(hook, done_analysis, aiontheball_conn, tmp_path):
    requests.post(
        f"{aiontheball_conn.control_url}/faults", json={"kind": "status", "status": 500, "count": 1}, timeout=5
    ).raise_for_status()
    with pytest.raises(Exception):
        hook.download_tracking(done_analysis["id"], tmp_path / "t.parquet")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("status", "error"),
    [
        pytest.param(409, AIOnTheBallConflictError, id="409"),
        pytest.param(404, AIOnTheBallNotFoundError, id="404"),
    ],
)
def test_results_before_done_are_typed_errors(aiontheball_conn, status, error):
    aiontheball_conn.simulator.config.results_before_done_status = status
    with AIOnTheBallHook() as hook:
        video = hook.create_video(VIDEO_URL)
        analysis = hook.create_analysis(video["id"])
        with pytest.raises(error, match="not done"):
            hook.get_summary(analysis["id"])
