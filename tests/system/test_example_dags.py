"""The example DAGs import cleanly and run green with ``dag.test()`` against the simulator."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
from pathlib import Path
from types import ModuleType

import pytest
import requests

from tests.helpers import EXAMPLE_DAGS, api_requests, load_dag_file, states, xcom_value

EXAMPLE_FILES = sorted(EXAMPLE_DAGS.glob("example_*.py"))
AIRFLOW_3 = int(importlib.metadata.version("apache-airflow").split(".")[0]) >= 3


def test_there_are_examples():
    names = {path.name for path in EXAMPLE_FILES}
    assert {"example_aiontheball_match_ingestion.py", "example_aiontheball_minimal.py"} <= names


def test_examples_import_without_errors():
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 2
        from airflow.models.dagbag import DagBag
    bag = DagBag(dag_folder=str(EXAMPLE_DAGS))  # examples are off: AIRFLOW__CORE__LOAD_EXAMPLES=False
    assert bag.import_errors == {}
    assert {"example_aiontheball_match_ingestion", "example_aiontheball_minimal"} <= set(bag.dag_ids)
    # The event-driven pair needs AssetWatcher (Airflow 3); on Airflow 2 its file defines no DAG.
    event_driven = {"example_aiontheball_event_driven_start", "example_aiontheball_event_driven_results"}
    assert event_driven & set(bag.dag_ids) == (event_driven if AIRFLOW_3 else set())


# The video is available 9 s after it is created: dag.test() on Airflow 3.0-3.2 takes 2-3 s to start a
# task, and the sensor must still find it not ready on its first poke, so that it defers.
@pytest.mark.simulator(video_step_seconds=3.0)
def test_minimal_example_runs_green(airflow_db, aiontheball_conn):
    dag = load_dag_file(EXAMPLE_DAGS / "example_aiontheball_minimal.py")
    dag_run = dag.test()
    assert str(dag_run.state) == "success", states(dag_run)
    assert set(states(dag_run).values()) == {"success"}
    posts, deletes = api_requests(aiontheball_conn, "POST"), api_requests(aiontheball_conn, "DELETE")
    assert len(posts) == 1
    assert len(deletes) == 1
    assert len(api_requests(aiontheball_conn, "GET")) >= 2, "the sensor poked, deferred, and the trigger polled"
    assert aiontheball_conn.simulator.video_json(790) is None, "deleted"
    assert extra_link(dag, dag_run, "wait_for_video") == "https://cdn.aiontheball.test/videos/790.mp4"


def extra_link(dag, dag_run, task_id: str) -> str:
    """The "AI on the Ball video" link of a finished task, the way each Airflow version serves it."""
    (ti,) = [ti for ti in dag_run.get_task_instances() if ti.task_id == task_id]
    try:  # Airflow 3: the worker stores each link in XCom when the task ends
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        with create_session() as session:
            row = (
                session.query(XComModel)
                .filter_by(dag_id=dag.dag_id, run_id=dag_run.run_id, task_id=task_id, key="_link_AIOnTheBallVideoLink")
                .one()
            )
            value = row.value
            return json.loads(value) if isinstance(value, str) and value.startswith('"') else value
    except ImportError:  # Airflow 2: the webserver asks the link class, which reads XCom
        from airflow_provider_aiontheball.links.video import AIOnTheBallVideoLink

        return AIOnTheBallVideoLink().get_link(dag.get_task(task_id), ti_key=ti.key)


@pytest.fixture
def match_ingestion(monkeypatch, tmp_path):
    """The match-ingestion DAG with polling fit for the simulator's seconds-long analyses."""
    monkeypatch.setenv("AIONTHEBALL_EXAMPLE_ANALYSIS_MIN_POLL_SECONDS", "0.2")
    return load_dag_file(EXAMPLE_DAGS / "example_aiontheball_match_ingestion.py")


def test_match_ingestion_runs_green_for_every_match(airflow_db, aiontheball_conn, match_ingestion, tmp_path, caplog):
    caplog.set_level(logging.INFO)  # stdlib only: the DAG's own logger
    dag_run = match_ingestion.test(run_conf={"output_path": str(tmp_path / "results")})
    task_states = states(dag_run)
    assert str(dag_run.state) == "success", task_states
    for task_id in (
        "create_video",
        "wait_for_video",
        "summarize_video",
        "create_analysis",
        "wait_for_analysis",
        "fetch_results",
        "report_possession",
    ):
        assert [task_states[(task_id, i)] for i in range(3)] == ["success"] * 3, task_states
    written = sorted(p.name for p in (tmp_path / "results").rglob("*.json"))
    assert len(written) == 6, written
    assert any(name.endswith("_summary.json") for name in written)
    assert any(r.getMessage().startswith("Possession: Ajax ") for r in caplog.records)
    deletes = {state for (task_id, _), state in task_states.items() if task_id == "delete_video"}
    assert deletes == {"skipped"}, "cleanup is off by default"
    assert api_requests(aiontheball_conn, "DELETE") == []
    posted = {r["body"]["title"]: r["body"] for r in api_requests(aiontheball_conn, "POST") if r["path"] == "/videos"}
    assert set(posted) == {"Ajax vs PSV", "Feyenoord vs AZ", "Twente vs Utrecht"}, "titles derived from the teams"
    assert posted["Twente vs Utrecht"]["left_start_team"] == "away"


def test_match_ingestion_with_params_and_cleanup(airflow_db, aiontheball_conn, match_ingestion, tmp_path):
    dag = match_ingestion
    matches = [
        {"video_file_url": "https://example.com/a.mp4", "home_team_name": "A", "away_team_name": "B"},
        {"video_file_url": "https://example.com/c.mp4", "title": "C vs D", "date": "2025-03-01"},
    ]
    dag_run = dag.test(run_conf={"matches": matches, "cleanup": True, "output_path": f"file://{tmp_path}/lake"})
    task_states = states(dag_run)
    assert str(dag_run.state) == "success", task_states
    assert [task_states[("delete_video", i)] for i in range(2)] == ["success"] * 2
    assert len(api_requests(aiontheball_conn, "DELETE")) == 2
    remaining = requests.get(
        f"{aiontheball_conn.base_url}/videos",
        headers={"Authorization": "Bearer test-token-4f9c2a7e1b", "Accept": "application/json"},
        timeout=5,
    ).json()["data"]
    assert remaining == []


# How cheap the example DAG files are to parse (no HTTP or retry library): tests/unit/test_import_cost.py.


# -- the event-driven pair (example_aiontheball_event_driven.py; Airflow 3 only) ---------------------------

needs_asset_watcher = pytest.mark.skipif(not AIRFLOW_3, reason="AssetWatcher (event-driven scheduling) is Airflow 3")


def load_event_driven(monkeypatch: pytest.MonkeyPatch, results: Path) -> ModuleType:
    """The example file (two DAGs) copied into the dags folder and imported; results go to ``results``."""
    monkeypatch.setenv("AIONTHEBALL_EXAMPLE_RESULTS_PATH", str(results))
    target = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / "example_aiontheball_event_driven.py"
    shutil.copyfile(EXAMPLE_DAGS / target.name, target)
    spec = importlib.util.spec_from_file_location(f"dag_under_test_{target.stem}", target)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_asset_watcher
@pytest.mark.simulator(video_step_seconds=60.0)  # videos still preparing when the run ends
def test_event_driven_start_creates_videos_and_analyses_without_waiting(
    airflow_db, aiontheball_conn, monkeypatch, tmp_path
):
    example = load_event_driven(monkeypatch, tmp_path / "results")
    dag_run = example.example_aiontheball_event_driven_start_dag.test()
    task_states = states(dag_run)
    assert str(dag_run.state) == "success", task_states
    assert set(task_states.values()) == {"success"}
    assert len(api_requests(aiontheball_conn, "POST", "/videos")) == 3
    analyses = [r for r in api_requests(aiontheball_conn, "POST") if r["path"].endswith("/analysis")]
    assert len(analyses) == 3
    # Nothing waited: the analyses are queued behind their videos, still preparing.
    for video_id in (790, 791, 792):
        video = aiontheball_conn.simulator.video_json(video_id)
        assert video["status"] != "available", video
        assert [entry["status"] for entry in video["analyses"]] in (["init"], ["waiting_for_video"]), video


@needs_asset_watcher
@pytest.mark.skipif(
    importlib.metadata.version("apache-airflow").startswith("3.0."),
    reason="dag.test() on Airflow 3.0 leaves the DAG's assets inactive, so the task's inlet fails the run "
    "(AirflowInactiveAssetInInletOrOutletException); tests/system/test_event_driven_e2e.py runs it in real Airflow 3.0",
)
def test_event_driven_results_stores_the_analyses_asked_for_by_hand(
    airflow_db, aiontheball_conn, monkeypatch, tmp_path
):
    """A manual run (no asset events) with ``analysis_ids``: one results task per analysis, its files."""
    example = load_event_driven(monkeypatch, tmp_path / "results")
    example.example_aiontheball_event_driven_start_dag.test()
    aiontheball_conn.simulator.advance(3600)  # every analysis done
    dag_run = example.example_aiontheball_event_driven_results_dag.test(run_conf={"analysis_ids": [1248, 1247, 1248]})
    task_states = states(dag_run)
    assert str(dag_run.state) == "success", task_states
    assert sorted(key for key in task_states if key[0] == "fetch_results") == [
        ("fetch_results", 0),
        ("fetch_results", 1),
    ]
    written = sorted(path.name for path in (tmp_path / "results").iterdir())
    assert written == [f"analysis_{i}_{name}.json" for i in (1247, 1248) for name in ("events", "summary")]


class _Event:
    def __init__(self, payload, timestamp=None):
        self.extra = {"from_trigger": True, "payload": payload}
        self.timestamp = timestamp


@needs_asset_watcher
@pytest.mark.parametrize(
    ("payloads", "requested", "expected"),
    [
        pytest.param([], [], [], id="nothing"),
        pytest.param(
            [{"analysis_id": 7, "video_id": 3}, {"analysis_id": 5, "video_id": 2}, {"analysis_id": 7, "video_id": 3}],
            [],
            [{"analysis_id": 5, "video_id": 2}, {"analysis_id": 7, "video_id": 3}],
            id="repeated-event-fetched-once-in-id-order",
        ),
        pytest.param(
            [{"analysis_id": 5, "video_id": 2}],
            [5, 9],
            [{"analysis_id": 5, "video_id": 2}, {"analysis_id": 9}],
            id="by-hand-adds-without-repeating",
        ),
    ],
)
def test_event_driven_results_deduplicates_by_analysis_id(monkeypatch, tmp_path, payloads, requested, expected):
    example = load_event_driven(monkeypatch, tmp_path)
    assert example.analyses_to_fetch([_Event(p) for p in payloads], requested) == expected


@needs_asset_watcher
def test_event_driven_results_also_takes_events_stored_while_its_run_was_queued(monkeypatch, tmp_path):
    """``stranded_events``: the asset's events after the run's cut-off (``run_after``) up to its start."""
    import datetime as dt

    example = load_event_driven(monkeypatch, tmp_path)
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    at = [t0 + dt.timedelta(seconds=s) for s in range(5)]
    events = [_Event({"analysis_id": i}, timestamp=when) for i, when in enumerate(at)]
    late = example.stranded_events(events, after=at[1], up_to=at[3])  # Airflow 3.0/3.1: a plain list
    assert [e.extra["payload"]["analysis_id"] for e in late] == [2, 3]


# -- the examples the documentation site includes (docs/: videos, analyses and results, offline tests) ----


def test_video_lifecycle_example_creates_updates_and_deletes(airflow_db, aiontheball_conn):
    dag = load_dag_file(EXAMPLE_DAGS / "example_aiontheball_video_lifecycle.py")
    dag_run = dag.test()
    task_states = states(dag_run)
    assert str(dag_run.state) == "success", task_states
    assert set(task_states.values()) == {"success"}
    (post,) = api_requests(aiontheball_conn, "POST", "/videos")
    assert post["body"]["title"] == "Ajax vs PSV"
    (put,) = api_requests(aiontheball_conn, "PUT")
    assert put["path"] == "/videos/790"
    assert put["body"] == {"title": "Ajax - PSV (Eredivisie)", "date": "2025-01-16"}, "only the fields given"
    assert len(api_requests(aiontheball_conn, "DELETE")) == 1
    assert aiontheball_conn.simulator.video_json(790) is None, "deleted"
    described = xcom_value(dag_run, "describe_video", "return_value")
    assert described == {"id": 790, "title": "Ajax - PSV (Eredivisie)", "status": "available", "listed": True}


def test_analysis_results_example_writes_results_and_returns_small_ones(
    airflow_db, aiontheball_conn, monkeypatch, tmp_path
):
    monkeypatch.setenv("AIONTHEBALL_EXAMPLE_ANALYSIS_MIN_POLL_SECONDS", "0.2")
    dag = load_dag_file(EXAMPLE_DAGS / "example_aiontheball_analysis_results.py")
    dag_run = dag.test(run_conf={"output_path": str(tmp_path / "results")})
    task_states = states(dag_run)
    assert str(dag_run.state) == "success", task_states
    assert set(task_states.values()) == {"success"}
    written = sorted(path.name for path in (tmp_path / "results").rglob("analysis_*"))
    assert written == [f"analysis_1247_{name}.json" for name in ("events", "query_intervals", "tracking")]
    small = xcom_value(dag_run, "summary_to_xcom", "return_value")
    assert set(small) == {"summary", "schema"}
    (query,) = [r for r in api_requests(aiontheball_conn, "POST") if r["path"].endswith("/query-intervals")]
    assert query["body"]["filters"] == [{"type": "team_possession", "teams": ["team_0"]}]


def test_offline_test_example_runs_its_dag_against_its_own_simulator(airflow_db, monkeypatch):
    """``run_offline``: the simulator, the connection and ``dag.test()`` as the docs show them (no fixture)."""
    monkeypatch.delenv("AIRFLOW_CONN_AIONTHEBALL_DEFAULT", raising=False)
    target = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / "example_aiontheball_offline_test.py"
    shutil.copyfile(EXAMPLE_DAGS / target.name, target)  # Airflow 3.3: dag.test() runs dags-folder DAGs only
    spec = importlib.util.spec_from_file_location(f"dag_under_test_{target.stem}", target)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag_run = module.run_offline(module.example_aiontheball_offline_test_dag)
    task_states = states(dag_run)
    assert str(dag_run.state) == "success", task_states
    assert set(task_states.values()) == {"success"}
    assert "AIRFLOW_CONN_AIONTHEBALL_DEFAULT" not in os.environ, "the connection was set for the run only"


@pytest.fixture(scope="module")
def video_files():
    """Real MP4 files on a loopback server with Range support (tests/media.py)."""
    pytest.importorskip("av")
    from aiohttp import web

    from tests.media import Served, file_handler, make_video_dir, serving

    app = web.Application()
    app.router.add_get("/files/{name}", file_handler(make_video_dir()))
    with serving(app, Served()) as server:
        yield server


@pytest.mark.parametrize(
    ("name", "state", "posted"),
    [
        pytest.param("match-11min.mp4", "success", 1, id="meets-the-requirements"),
        pytest.param("broadcast-50fps.mp4", "failed", 0, id="50fps"),
    ],
)
def test_checks_before_upload_example_posts_only_a_video_that_meets_the_requirements(
    airflow_db, aiontheball_conn, video_files, all_logs, name, state, posted
):
    dag = load_dag_file(EXAMPLE_DAGS / "example_aiontheball_checks_before_upload.py")
    # A signature of its own per case: the secrets masker is process-wide.
    signature = f"secret-signature-{name}-0123"
    url = f"{video_files.base}/files/{name}?X-Amz-Expires=604800&X-Amz-Signature={signature}"

    dag_run = dag.test(run_conf={"video_url": url})

    # Every line as written but Airflow 2's own DEBUG line that merges the run's conf into the params before any
    # task code runs (a URL given in a run's conf is the caller's to keep out of logs); Airflow 3's DEBUG line
    # "Sending request MaskSecret(value=...)" carries it as a structured field, never in a message.
    logged = [str(entry.get("event")) for entry in all_logs.structlog_entries]
    logged += [r.getMessage() for r in all_logs.caplog.records if r.name != "airflow.models.param"]
    assert not [line for line in logged if signature in line], "every log line, the HTTP library's debug lines too"

    assert states(dag_run) == {("create_video", -1): state}
    assert len(api_requests(aiontheball_conn, "POST")) == posted
    if posted:
        measured = xcom_value(dag_run, "create_video", "preflight")
        assert (measured["container"], measured["fps"]) == ("MP4", 25)
        assert signature not in json.dumps(measured)
