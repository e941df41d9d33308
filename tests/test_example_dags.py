"""The example DAGs import cleanly and run green with ``dag.test()`` against the simulator."""

from __future__ import annotations

import json
import logging

import pytest
import requests

from tests.helpers import EXAMPLE_DAGS, api_requests, load_dag_file, states

EXAMPLE_FILES = sorted(EXAMPLE_DAGS.glob("example_*.py"))


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


# How cheap the example DAG files are to parse (no HTTP or retry library): tests/test_import_cost.py.
