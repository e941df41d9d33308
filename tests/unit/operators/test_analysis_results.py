"""AIOnTheBallAnalysisResultsOperator: results into XCom or files, and a clear error before ``done``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_aiontheball.exceptions import AIOnTheBallInputError, AIOnTheBallResultsNotReadyError
from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallHook
from airflow_provider_aiontheball.operators.analysis import AIOnTheBallAnalysisResultsOperator
from tests.helpers import api_requests, task_context

VIDEO_URL = "https://example.com/match.mp4"
QUERY = {"filters": [{"type": "team_possession", "teams": ["team_0"]}], "pad_sec": 0}


@pytest.fixture
def analysis_id(aiontheball_conn) -> int:
    with AIOnTheBallHook() as hook:
        video_id = hook.create_video(VIDEO_URL, home_team_name="Ajax", away_team_name="PSV")["id"]
        analysis_id = hook.create_analysis(video_id)["id"]
    aiontheball_conn.simulator.advance(60)  # done, without sleeping
    return analysis_id


def results_op(analysis_id, **kwargs) -> AIOnTheBallAnalysisResultsOperator:
    return AIOnTheBallAnalysisResultsOperator(task_id="fetch_results", analysis_id=analysis_id, **kwargs)


def test_templated_fields():
    assert set(AIOnTheBallAnalysisResultsOperator.template_fields) == {
        "analysis_id",
        "results",
        "output_path",
        "query",
        "video_id",
    }


def test_summary_by_default_into_xcom(analysis_id):
    fetched = results_op(str(analysis_id)).execute(task_context())
    assert list(fetched) == ["summary"]
    assert fetched["summary"]["teams"]["team_0_name"] == "Ajax"


def test_several_results_into_xcom(analysis_id):
    fetched = results_op(analysis_id, results=["summary", "events", "schema", "query_intervals"], query=QUERY).execute(
        task_context()
    )
    assert isinstance(fetched["events"], list)
    assert "event_type" in fetched["events"][0]
    assert isinstance(fetched["query_intervals"], list)
    assert all(i["type"] == "team_possession" for i in fetched["query_intervals"])
    assert "data_version" in fetched["schema"]


def test_results_written_to_a_local_directory(analysis_id, tmp_path):
    out = tmp_path / "lake" / "match"
    paths = results_op(
        analysis_id, results=("summary", "events", "tracking"), output_path=str(out), tracking_format="parquet"
    ).execute(task_context())
    assert set(paths) == {"summary", "events", "tracking"}
    assert Path(paths["summary"]) == out / f"analysis_{analysis_id}_summary.json"
    assert json.loads(Path(paths["summary"]).read_text())["teams"]["team_1_name"] == "PSV"
    assert isinstance(json.loads(Path(paths["events"]).read_text()), list)
    assert Path(paths["tracking"]).read_bytes()[:4] == b"PAR1"


def test_results_written_to_an_object_storage_uri(analysis_id, tmp_path):
    uri = f"file://{tmp_path}/bucket/prefix"
    paths = results_op(analysis_id, results=("summary", "tracking"), output_path=uri, tracking_format="json").execute(
        task_context()
    )
    assert paths["summary"].startswith("file://")
    written = tmp_path / "bucket" / "prefix"
    assert json.loads((written / f"analysis_{analysis_id}_summary.json").read_text())["metadata"]
    assert json.loads((written / f"analysis_{analysis_id}_tracking.json").read_text())[0]["role"]


def test_results_before_done_are_a_clear_error(aiontheball_conn):
    with AIOnTheBallHook() as hook:
        video_id = hook.create_video(VIDEO_URL)["id"]
        analysis_id = hook.create_analysis(video_id)["id"]
    with pytest.raises(AIOnTheBallResultsNotReadyError, match=rf"analysis {analysis_id} has no results yet") as excinfo:
        results_op(analysis_id).execute(task_context())
    assert not isinstance(excinfo.value, AirflowFailException), "it will be ready later: retries apply"
    assert not [r for r in api_requests(aiontheball_conn) if r["path"].endswith("/summary")]


@pytest.mark.simulator(analysis_get_route=False)
def test_results_before_done_without_analysis_route(aiontheball_conn):
    with AIOnTheBallHook() as hook:
        video_id = hook.create_video(VIDEO_URL)["id"]
        analysis_id = hook.create_analysis(video_id)["id"]
    with pytest.raises(AIOnTheBallResultsNotReadyError, match=r"summary of analysis \d+ is not available \(409"):
        results_op(analysis_id).execute(task_context())


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        pytest.param({"results": ["heatmap"]}, "results", id="unknown-result"),
        pytest.param({"results": []}, "results", id="no-result"),
        pytest.param({"results": ["tracking"]}, "output_path", id="tracking-needs-a-path"),
        pytest.param({"results": ["query_intervals"]}, "query", id="query-missing"),
        pytest.param(
            {"results": ["query_intervals"], "query": {"filters": [{"type": "offside"}]}},
            r"filters\[0\]\.type",
            id="bad-filter",
        ),
        pytest.param({"results": ["query_intervals"], "query": {"filters": [], "speed": 1}}, "query", id="unknown-key"),
        pytest.param(
            {"results": ["tracking"], "output_path": "/tmp/x", "tracking_format": "csv"}, "tracking_format", id="format"
        ),
        pytest.param({"analysis_id": "abc"}, "analysis_id", id="id"),
    ],
)
def test_bad_arguments_fail_before_any_request(aiontheball_conn, kwargs, field):
    kwargs = {"analysis_id": 1247, **kwargs}
    with pytest.raises(AIOnTheBallInputError, match=rf"^{field}"):
        AIOnTheBallAnalysisResultsOperator(task_id="r", **kwargs).execute(task_context())
    assert api_requests(aiontheball_conn) == []
