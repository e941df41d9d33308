"""OpenLineage: what the create-video, create-analysis and results operators report, as the OpenLineage
provider emits it in a real ``dag.test()`` run with a file transport; the dataset naming; and that a task
whose lineage must be emitted never ends in the triggerer.

The DAG runs in a child process started with ``AIRFLOW__OPENLINEAGE__TRANSPORT`` set, as a user's worker
starts: the provider's plugin decides at import whether to register its listener, once per process, so
setting the variable inside this pytest process (where other tests already loaded the plugins) would not
enable it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_provider_aiontheball.assets import host_of
from airflow_provider_aiontheball.testing.simulator import Simulator, SimulatorConfig, SimulatorServer
from tests.helpers import CONN_ENV, FAST_RETRY_EXTRA, FAST_SIMULATOR, REPO, TOKEN, connection_json

pytest.importorskip(
    "airflow.providers.openlineage",
    reason="apache-airflow-providers-openlineage is not installed (the [openlineage] extra)",
)

SECRET = "X-Amz-Signature=secret-signature-4b1f9e"
VIDEO_URL = f"https://example.com/matches/ajax-psv.mp4?X-Amz-Credential=AKIA-key&{SECRET}#t=10"
QUERY = {"filters": [{"type": "team_possession", "teams": ["team_0"]}], "pad_sec": 0}

DAG_FILE = """
import datetime as dt
import json
from pathlib import Path
import sys

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG

from airflow_provider_aiontheball.operators.analysis import (
    AIOnTheBallAnalysisResultsOperator,
    AIOnTheBallCreateAnalysisOperator,
)
from airflow_provider_aiontheball.operators.video import AIOnTheBallCreateVideoOperator

WAIT = dict(poll_interval=0.1, min_poll_interval=0.02)

with DAG("{dag_id}", schedule=None, start_date=dt.datetime(2025, 1, 1), catchup=False) as dag:
    video = AIOnTheBallCreateVideoOperator(
        task_id="create_video", video_file_url={url!r}, title="Ajax vs PSV",
        wait_for_available=True, deferrable=True, **WAIT,
    )
    analysis = AIOnTheBallCreateAnalysisOperator(
        task_id="create_analysis", video_id="{{{{ ti.xcom_pull(task_ids='create_video', key='video_id') }}}}",
        wait_for_completion=True, deferrable=False, **WAIT,
    )
    to_files = AIOnTheBallAnalysisResultsOperator(
        task_id="results_to_files",
        analysis_id="{{{{ ti.xcom_pull(task_ids='create_analysis', key='analysis_id') }}}}",
        results=["events", "query_intervals", "tracking", "summary"], query={query!r}, output_path={out!r},
    )
    to_xcom = AIOnTheBallAnalysisResultsOperator(
        task_id="results_to_xcom",
        analysis_id="{{{{ ti.xcom_pull(task_ids='create_analysis', key='analysis_id') }}}}",
    )
    video >> analysis >> [to_files, to_xcom]

if __name__ == "__main__":
    sys.path.insert(0, {repo!r})
    from tests.helpers import reuse_in_process_execution_api

    reuse_in_process_execution_api()  # as the test process does (Airflow 3.0-3.2)
    run = dag.test()
    # A file, not stdout: the listener's threads log to stdout and can land inside a printed line.
    states = {{ti.task_id: str(ti.state) for ti in run.get_task_instances()}}
    Path({states!r}).write_text(json.dumps(states))
"""


def run_with_openlineage(
    tmp_path: Path, dag_id: str, conn_env: dict[str, str], **dag_args: object
) -> tuple[dict[str, str], list[dict]]:
    """Run the DAG in a child process with the file transport; its task states and the emitted events."""
    events_file = tmp_path / "openlineage.jsonl"
    dag_file = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / f"{dag_id}.py"
    states_file = tmp_path / "task_states.json"
    dag_file.write_text(DAG_FILE.format(dag_id=dag_id, repo=str(REPO), states=str(states_file), **dag_args))
    env = {
        **os.environ,
        **conn_env,
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events_file), "append": True}
        ),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "aib-tests",
    }
    proc = subprocess.run(
        [sys.executable, str(dag_file)], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    task_states = json.loads(states_file.read_text())
    assert events_file.exists(), "no OpenLineage event was written:\n" + proc.stderr[-3000:]
    events = [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]
    return task_states, events


def complete_events(events: list[dict], dag_id: str) -> dict[str, dict]:
    """The COMPLETE run event of each task, by task id (job name ``<dag_id>.<task_id>``)."""
    found = {}
    for event in events:
        name = event.get("job", {}).get("name", "")
        if event.get("eventType") == "COMPLETE" and name.startswith(f"{dag_id}."):
            found[name.removeprefix(f"{dag_id}.")] = event
    return found


def names(datasets: list[dict]) -> list[tuple[str, str]]:
    return [(d["namespace"], d["name"]) for d in datasets]


@pytest.fixture(scope="module")
def lineage_run(airflow_db, tmp_path_factory):
    """One run for the tests below (each checks one task's event): a simulator of its own, since the
    ``simulator`` fixture is per test; the connection goes to the child process only."""
    tmp_path = tmp_path_factory.mktemp("openlineage")
    dag_id = "openlineage_lineage"
    out = tmp_path / "results"
    config = SimulatorConfig(tokens={TOKEN: "org-1"}, **FAST_SIMULATOR)
    with SimulatorServer(Simulator(config)) as server:
        conn = {CONN_ENV: connection_json(server.base_url, **FAST_RETRY_EXTRA)}
        task_states, events = run_with_openlineage(tmp_path, dag_id, conn, url=VIDEO_URL, query=QUERY, out=str(out))
    assert set(task_states.values()) == {"success"}, task_states
    return {
        "events": events,
        "complete": complete_events(events, dag_id),
        "out": out,
        "aib": f"aiontheball://{host_of(server.base_url)}",
        "raw": (tmp_path / "openlineage.jsonl").read_text(),
    }


def test_create_video_reads_the_source_url_without_its_query_and_writes_the_video(lineage_run):
    event = lineage_run["complete"]["create_video"]
    assert names(event["inputs"]) == [("https://example.com", "/matches/ajax-psv.mp4")]
    assert names(event["outputs"]) == [(lineage_run["aib"], "videos/790")]


def test_create_analysis_reads_the_video_and_writes_the_analysis(lineage_run):
    event = lineage_run["complete"]["create_analysis"]
    assert names(event["inputs"]) == [(lineage_run["aib"], "videos/790")]
    [(namespace, name)] = names(event["outputs"])
    assert namespace == lineage_run["aib"]
    assert name.startswith("analyses/")
    assert name.removeprefix("analyses/").isdigit()


def test_results_read_the_analysis_and_write_each_file_with_its_columns(lineage_run):
    analysis = lineage_run["complete"]["create_analysis"]["outputs"][0]
    analysis_id = analysis["name"].removeprefix("analyses/")
    event = lineage_run["complete"]["results_to_files"]
    assert names(event["inputs"]) == [(analysis["namespace"], analysis["name"])]
    out = lineage_run["out"]
    outputs = {d["name"]: d for d in event["outputs"]}
    expected = {
        str(out / f"analysis_{analysis_id}_{name}")
        for name in ("events.json", "query_intervals.json", "tracking.parquet", "summary.json")
    }
    assert set(outputs) == expected
    assert {d["namespace"] for d in outputs.values()} == {"file"}
    assert all(Path(name).exists() for name in outputs), "a reported output was not written"

    def columns(name: str) -> list[str]:
        return [f["name"] for f in outputs[str(out / f"analysis_{analysis_id}_{name}")]["facets"]["schema"]["fields"]]

    assert columns("events.json") == ["start", "end", "label", "event_type"]
    assert columns("query_intervals.json") == ["start", "end", "label", "type"]
    assert columns("tracking.parquet") == [
        "timestamp", "role", "player_id", "player_id_conf", "x", "y", "bbox_x", "bbox_y"
    ]  # fmt: skip
    summary = outputs[str(out / f"analysis_{analysis_id}_summary.json")]["facets"]
    assert "schema" not in summary
    assert "summary" in summary["documentation"]["description"].lower()


def test_results_kept_in_xcom_report_the_analysis_and_no_file(lineage_run):
    event = lineage_run["complete"]["results_to_xcom"]
    assert names(event["inputs"]) == names(lineage_run["complete"]["create_analysis"]["outputs"])
    assert event["outputs"] == []


def test_no_signature_query_or_token_reaches_the_lineage(lineage_run):
    raw = lineage_run["raw"]
    assert lineage_run["complete"], "no COMPLETE events to check"
    for secret in ("secret-signature-4b1f9e", "X-Amz-Signature", "X-Amz-Credential", "AKIA-key", "?X-Amz", TOKEN):
        assert secret not in raw, f"{secret!r} appears in the emitted OpenLineage events"


# -- dataset naming -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param(VIDEO_URL, ("https://example.com", "/matches/ajax-psv.mp4"), id="presigned-query-dropped"),
        pytest.param("https://user:pw@cdn.example.com:8443/a.mp4", ("https://cdn.example.com:8443", "/a.mp4"),
                     id="credentials-dropped-port-kept"),
        pytest.param("HTTP://Example.com/x/y.mp4", ("http://example.com", "/x/y.mp4"), id="scheme-and-host-lowered"),
        pytest.param("not a url", None, id="not-a-url"),
    ],
)  # fmt: skip
def test_source_dataset_naming(url, expected):
    from airflow_provider_aiontheball.openlineage import source_dataset

    dataset = source_dataset(url)
    assert (None if dataset is None else (dataset.namespace, dataset.name)) == expected


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        pytest.param("/data/out/analysis_1_events.json", ("file", "/data/out/analysis_1_events.json"), id="local"),
        pytest.param("file:///data/out/a.json", ("file", "/data/out/a.json"), id="file-uri"),
        pytest.param("s3://My-Bucket/prefix/a.json", ("s3://My-Bucket", "prefix/a.json"), id="s3"),
        pytest.param("gcs://bucket/a.json", ("gs://bucket", "a.json"), id="gcs-is-gs"),
        pytest.param("memory://somewhere/a.json", ("memory://somewhere", "/a.json"), id="other-scheme"),
    ],
)  # fmt: skip
def test_result_file_dataset_naming(location, expected):
    from airflow_provider_aiontheball.openlineage import location_dataset

    dataset = location_dataset(location)
    assert (dataset.namespace, dataset.name) == expected


def test_a_relative_local_path_is_named_by_its_absolute_path(tmp_path, monkeypatch):
    from airflow_provider_aiontheball.openlineage import location_dataset

    monkeypatch.chdir(tmp_path)
    assert location_dataset("out/a.json").name == str(tmp_path / "out" / "a.json")


def test_asset_converter_names_the_same_dataset_as_the_operators():
    from airflow_provider_aiontheball.assets import analysis_asset, video_asset
    from airflow_provider_aiontheball.openlineage import asset_to_openlineage

    video = asset_to_openlineage(video_asset(789, host="127.0.0.1:8123"), None)
    analysis = asset_to_openlineage(analysis_asset(1247), None)
    assert (video.namespace, video.name) == ("aiontheball://127.0.0.1:8123", "videos/789")
    assert (analysis.namespace, analysis.name) == ("aiontheball://aiontheball.nl", "analyses/1247")


# -- the triggerer-finish interaction ---------------------------------------------------------------

TRANSPORT = json.dumps({"type": "console"})


@pytest.mark.parametrize(
    ("env", "ends_in_triggerer"),
    [
        pytest.param({}, True, id="openlineage-not-configured"),
        pytest.param({"AIRFLOW__OPENLINEAGE__TRANSPORT": TRANSPORT}, False, id="openlineage-enabled"),
        pytest.param({"AIRFLOW__OPENLINEAGE__TRANSPORT": TRANSPORT, "AIRFLOW__OPENLINEAGE__DISABLED": "true"}, True,
                     id="openlineage-disabled"),
    ],
)  # fmt: skip
def test_a_task_whose_lineage_is_emitted_resumes_on_the_worker(monkeypatch, env, ends_in_triggerer):
    # The OpenLineage listener runs only in the worker's task runner: a task ended by the triggerer would
    # emit no COMPLETE event (and no lineage). The provider reads its config at each call under pytest.
    from airflow_provider_aiontheball.operators.video import AIOnTheBallCreateVideoOperator
    from airflow_provider_aiontheball.task_end import finish_spec

    for name in ("AIRFLOW__OPENLINEAGE__TRANSPORT", "AIRFLOW__OPENLINEAGE__DISABLED", "OPENLINEAGE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    task = AIOnTheBallCreateVideoOperator(task_id="create_video", video_file_url="https://example.com/a.mp4")
    assert (finish_spec(task, {}) is not None) is ends_in_triggerer


def test_a_failed_results_task_reports_the_analysis_but_no_file(aiontheball_conn, tmp_path):
    # A failed task leaves nothing under the final file names (atomic writes): no output may be claimed.
    from airflow_provider_aiontheball.operators.analysis import AIOnTheBallAnalysisResultsOperator

    task = AIOnTheBallAnalysisResultsOperator(
        task_id="results", analysis_id="1247", results=["events"], output_path=str(tmp_path)
    )
    failed = task.get_openlineage_facets_on_failure(None)
    assert [(d.namespace, d.name) for d in failed.inputs] == [
        (f"aiontheball://{host_of(aiontheball_conn.base_url)}", "analyses/1247")
    ]
    assert failed.outputs == []
    assert [(d.namespace, d.name) for d in task.get_openlineage_facets_on_complete(None).outputs] == [
        ("file", str(tmp_path / "analysis_1247_events.json"))
    ]
