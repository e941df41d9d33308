"""Asset URIs, their registration with Airflow, and the match metadata on asset events.

Pure helpers are tested directly; Airflow's own ``Asset``/``Dataset`` shows that the provider info
registers the ``aiontheball`` scheme; a real ``dag.test()`` run (create video → create analysis →
results, against the simulator) shows what Airflow stores in its metadata DB: each event's ``extra`` and,
on Airflow 3.3+, its partition key.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import airflow
import pytest

from airflow_provider_aiontheball import assets
from airflow_provider_aiontheball.assets import (
    EXTRA_KEYS,
    analyses_asset,
    analyses_uri,
    analysis_asset,
    analysis_uri,
    event_extra,
    host_of,
    partition_key_of,
    result_facts,
    sanitize_uri,
    supports_partitions,
    video_asset,
    video_uri,
)
from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallHook
from airflow_provider_aiontheball.operators.analysis import AIOnTheBallAnalysisResultsOperator
from airflow_provider_aiontheball.operators.video import AIOnTheBallCreateVideoOperator
from airflow_provider_aiontheball.testing.simulator import Simulator, SimulatorConfig, SimulatorServer
from tests.helpers import (
    CONN_ENV,
    FAST_RETRY_EXTRA,
    FAST_SIMULATOR,
    TOKEN,
    api_requests,
    connection_json,
    states,
    task_context,
    write_dag,
    xcom_value,
)

AIRFLOW_3 = not airflow.__version__.startswith("2.")
PARTITIONS = supports_partitions()
#: A presigned-looking source URL: nothing of its query may reach an asset event.
SIGNATURE = "c0ffee5ca1ab1e0ddba11deadbeef0123456789abcdef"
PRESIGNED = f"https://bucket.example.com/matches/ajax-psv.mp4?X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature={SIGNATURE}"


def outlet(uri: str) -> Any:
    """An outlet of this Airflow: ``Asset`` (3) or ``Dataset`` (2)."""
    try:
        from airflow.sdk import Asset
    except ImportError:
        from airflow.datasets import Dataset

        return Dataset(uri)
    return Asset(uri=uri)


def outlet_events() -> Any:
    """Airflow's real accessor of outlet events, as a task's context holds it."""
    try:
        from airflow.sdk.execution_time.context import OutletEventAccessors
    except ImportError:  # Airflow 2
        from airflow.utils.context import OutletEventAccessors
    return OutletEventAccessors()


# -- URI helpers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        pytest.param(video_uri(789), "aiontheball://aiontheball.nl/videos/789", id="video-default-host"),
        pytest.param(video_uri("0789"), "aiontheball://aiontheball.nl/videos/789", id="video-digit-string"),
        pytest.param(analysis_uri(1247), "aiontheball://aiontheball.nl/analyses/1247", id="analysis"),
        pytest.param(
            analysis_uri(1247, host="127.0.0.1:8123"), "aiontheball://127.0.0.1:8123/analyses/1247", id="analysis-port"
        ),
        pytest.param(analyses_uri(), "aiontheball://aiontheball.nl/analyses", id="analyses"),
        pytest.param(
            analyses_uri(host="Staging.AIOnTheBall.nl"), "aiontheball://staging.aiontheball.nl/analyses", id="host-case"
        ),
    ],
)
def test_uri_helpers_build_the_documented_uris(uri: str, expected: str) -> None:
    assert uri == expected


@pytest.mark.parametrize("bad", [0, -1, True, "abc", "7a", 1.5, None, "", 2**63], ids=repr)
@pytest.mark.parametrize(
    ("build", "parameter"),
    [
        pytest.param(video_uri, "video_id", id="video_uri"),
        pytest.param(analysis_uri, "analysis_id", id="analysis_uri"),
        pytest.param(video_asset, "video_id", id="video_asset"),
        pytest.param(analysis_asset, "analysis_id", id="analysis_asset"),
    ],
)
def test_a_bad_id_is_refused_naming_the_parameter(build: Any, parameter: str, bad: Any) -> None:
    with pytest.raises(ValueError, match=rf"^{parameter}: expected a positive integer id"):
        build(bad)


@pytest.mark.parametrize(
    "host", ["", "user@aiontheball.nl", "aiontheball.nl/api", "aiontheball.nl?x=1", "a b", None], ids=repr
)
def test_a_bad_host_is_refused_naming_the_parameter(host: Any) -> None:
    with pytest.raises(ValueError, match=r"^host: expected a host name"):
        analyses_uri(host=host)


@pytest.mark.parametrize(
    ("base_url", "host"),
    [
        pytest.param("https://aiontheball.nl/api/v1/", "aiontheball.nl", id="documented"),
        pytest.param("https://aiontheball.nl:443/api/v1", "aiontheball.nl", id="default-port-dropped"),
        pytest.param("http://127.0.0.1:8123/api/v1", "127.0.0.1:8123", id="other-port-kept"),
        pytest.param("HTTPS://AIOnTheBall.NL/api/v1", "aiontheball.nl", id="case"),
        pytest.param("http://[::1]:8080/api/v1", "[::1]:8080", id="ipv6"),
        pytest.param("aiontheball.nl/api/v1", "aiontheball.nl", id="no-scheme"),
        pytest.param("https://user:pw@aiontheball.nl/api/v1?token=x", "aiontheball.nl", id="no-userinfo-or-query"),
    ],
)
def test_host_of_a_base_url(base_url: str, host: str) -> None:
    assert host_of(base_url) == host


@pytest.mark.parametrize("base_url", ["", "   ", None, "https:///api/v1", "http://h:notaport/"], ids=repr)
def test_host_of_refuses_what_has_no_host(base_url: Any) -> None:
    with pytest.raises(ValueError, match=r"^base_url: "):
        host_of(base_url)


# -- the URI handler Airflow calls ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "normalised"),
    [
        pytest.param("aiontheball://aiontheball.nl/videos/789", "aiontheball://aiontheball.nl/videos/789", id="video"),
        pytest.param("aiontheball://AIOnTheBall.nl/videos/0789", "aiontheball://aiontheball.nl/videos/789", id="norm"),
        pytest.param("aiontheball://h:8123/analyses/1247", "aiontheball://h:8123/analyses/1247", id="analysis"),
        pytest.param("aiontheball://aiontheball.nl/analyses", "aiontheball://aiontheball.nl/analyses", id="analyses"),
    ],
)
def test_sanitize_uri_accepts_and_normalises(uri: str, normalised: str) -> None:
    assert urlunsplit(sanitize_uri(urlsplit(uri))) == normalised


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        pytest.param("aiontheball:///videos/1", "no host", id="no-host"),
        pytest.param("aiontheball://h/videos", "unknown path", id="videos-collection"),
        pytest.param("aiontheball://h/videos/1/summary", "unknown path", id="too-deep"),
        pytest.param("aiontheball://h/matches/1", "unknown path", id="unknown-kind"),
        pytest.param("aiontheball://h/videos/x", "video_id: expected a positive integer id", id="bad-video-id"),
        pytest.param("aiontheball://h/analyses/0", "analysis_id: expected a positive integer id", id="zero-id"),
        pytest.param("aiontheball://h/analyses/1?sig=abc", "query string is not allowed", id="query"),
    ],
)
def test_sanitize_uri_rejects_other_forms(uri: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as raised:
        sanitize_uri(urlsplit(uri))
    assert "sig=abc" not in str(raised.value)  # a query is never repeated in the error


def test_airflow_normalises_the_scheme_through_the_provider_info() -> None:
    # The handler is found through the provider's entry point (asset-uris / dataset-uris), not imported here.
    assert outlet("aiontheball://AIOnTheBall.nl/videos/0789/").uri == "aiontheball://aiontheball.nl/videos/789"


def test_airflow_refuses_a_malformed_uri_of_the_scheme() -> None:
    if AIRFLOW_3:
        with pytest.raises(ValueError, match="unknown path"):
            outlet("aiontheball://aiontheball.nl/matches/1")
    else:  # Airflow 2 warns (raises only with [core] strict_dataset_uri_validation)
        with pytest.warns(UserWarning, match="unknown path"):
            outlet("aiontheball://aiontheball.nl/matches/1")


@pytest.mark.parametrize(
    ("build", "uri"),
    [
        pytest.param(lambda: video_asset(789), "aiontheball://aiontheball.nl/videos/789", id="video"),
        pytest.param(lambda: analysis_asset(1247, host="h:1"), "aiontheball://h:1/analyses/1247", id="analysis"),
        pytest.param(lambda: analyses_asset(), "aiontheball://aiontheball.nl/analyses", id="analyses"),
    ],
)
def test_asset_helpers_return_this_airflows_asset_class(build: Any, uri: str) -> None:
    asset = build()
    assert type(asset).__name__ == ("Asset" if AIRFLOW_3 else "Dataset")
    assert asset.uri == uri


def test_asset_helpers_pass_extra_and_on_airflow3_other_asset_arguments() -> None:
    assert analyses_asset(extra={"team": "scouting"}).extra == {"team": "scouting"}
    if AIRFLOW_3:
        assert analyses_asset(name="aib_analyses").name == "aib_analyses"
    else:
        with pytest.raises(TypeError, match=r"^name: not supported by Airflow 2's Dataset"):
            analyses_asset(name="aib_analyses")


# -- the event's extra ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "facts"),
    [
        pytest.param("events", [{"label": "pass"}] * 3, {"count": 3}, id="events-count"),
        pytest.param("query_intervals", [], {"count": 0}, id="empty-intervals"),
        pytest.param("schema", {"data_version": 3, "event_types": {}}, {"data_version": 3}, id="schema"),
        pytest.param(
            "summary",
            {"metadata": {"game_date": "2025-01-15", "version": "0.4.98"}},
            {"date": "2025-01-15", "algorithm_version": "0.4.98"},
            id="summary",
        ),
        pytest.param("summary", {"teams": {}}, {}, id="summary-without-metadata"),
        pytest.param("tracking", None, {}, id="tracking-streamed"),
    ],
)
def test_result_facts_read_only_what_the_result_holds(name: str, data: Any, facts: dict[str, Any]) -> None:
    assert result_facts(name, data) == facts


def test_event_extra_has_every_documented_key_and_is_json() -> None:
    extra = event_extra("video", host="aiontheball.nl")
    assert tuple(extra) == EXTRA_KEYS
    assert json.loads(json.dumps(extra)) == extra
    assert extra["results"] == {}
    assert extra["counts"] == {}


def test_event_extra_copies_documented_fields_only() -> None:
    # What a server may add: the submitted URL echoed back, the presigned mp4_source.
    video = {
        "id": 789,
        "status": "available",
        "game_name": "happy-dolphin-42",
        "title": "Ajax vs PSV",
        "home_team_name": "Ajax",
        "away_team_name": "PSV",
        "video_file_url": PRESIGNED,
        "mp4_source": PRESIGNED,
        "date": "2025-01-15T00:00:00Z",
    }
    extra = event_extra("video", host="aiontheball.nl", video=video, submitted={"video_file_url": PRESIGNED})
    text = json.dumps(extra)
    assert SIGNATURE not in text
    assert "?" not in text
    assert extra["date"] == "2025-01-15"
    assert extra["video_uri"] == "aiontheball://aiontheball.nl/videos/789"


def test_event_extra_paths_never_keep_a_query() -> None:
    extra = event_extra(
        "results", host="h", analysis_id=1, results={"summary": f"s3://b/p.json?X-Amz-Signature={SIGNATURE}"}
    )
    assert extra["results"] == {"summary": "s3://b/p.json"}


def test_the_partition_of_a_match_is_its_video_id() -> None:
    assert partition_key_of(789) == partition_key_of("789") == "789"
    with pytest.raises(ValueError, match=r"^video_id: "):
        partition_key_of(0)


@pytest.mark.parametrize(
    ("version", "supported"),
    [
        pytest.param("2.11.2", False, id="2.11"),
        pytest.param("3.0.6", False, id="3.0"),
        pytest.param("3.2.2", False, id="3.2"),
        pytest.param("3.3.0", True, id="3.3"),
        pytest.param("3.10.0", True, id="3.10"),
        pytest.param("4.0.0.dev0", True, id="4.0-dev"),
        pytest.param("main", False, id="unparsable"),
    ],
)
def test_partitions_per_event_need_airflow_3_3(version: str, supported: bool) -> None:
    assert supports_partitions(version) is supported


@pytest.mark.skipif(PARTITIONS, reason=f"Airflow {airflow.__version__} has asset partitions per event")
@pytest.mark.parametrize(
    "make",
    [
        pytest.param(
            lambda: AIOnTheBallAnalysisResultsOperator(
                task_id="r", analysis_id=1, outlets=[analyses_asset()], partition_by_match=True
            ),
            id="results",
        ),
        pytest.param(
            lambda: AIOnTheBallCreateVideoOperator(
                task_id="v", video_file_url="https://e.com/v.mp4", outlets=[analyses_asset()], partition_by_match=True
            ),
            id="create-video",
        ),
    ],
)
def test_asking_for_partitions_before_airflow_3_3_fails_at_parse_time(make: Any) -> None:
    with pytest.raises(ValueError, match=r"^partition_by_match: asset partitions per event need Airflow >= 3\.3"):
        make()


@pytest.mark.skipif(not PARTITIONS, reason=f"Airflow {airflow.__version__} has no asset partitions per event")
def test_partitions_without_outlets_fail_at_parse_time() -> None:
    with pytest.raises(ValueError, match=r"^partition_by_match: the task has no outlets"):
        AIOnTheBallAnalysisResultsOperator(task_id="r", analysis_id=1, partition_by_match=True)


def test_not_asking_for_partitions_works_on_every_airflow() -> None:
    task = AIOnTheBallAnalysisResultsOperator(task_id="r", analysis_id=1, outlets=[analyses_asset()])
    assert task.partition_by_match is False


# -- what a results task costs: one GET of the video, and only with outlets -----------------------


def finished_analysis(server: SimulatorServer) -> tuple[int, int]:
    hook = AIOnTheBallHook()
    video = hook.create_video(
        "https://example.com/m.mp4", title="Ajax vs PSV", home_team_name="Ajax", away_team_name="PSV"
    )
    analysis = hook.create_analysis(video["id"])
    server.simulator.advance(3600)  # the simulator's clock: video available, analysis done
    return int(video["id"]), int(analysis["id"])


def video_reads(server: SimulatorServer, video_id: int) -> int:
    return len(api_requests(server, "GET", f"/videos/{video_id}"))


@pytest.mark.parametrize(
    ("outlets", "extra_reads"),
    [pytest.param(True, 1, id="with-outlets"), pytest.param(False, 0, id="without-outlets")],
)
def test_metadata_costs_one_video_read_and_only_with_outlets(
    aiontheball_conn: SimulatorServer, outlets: bool, extra_reads: int
) -> None:
    video_id, analysis_id = finished_analysis(aiontheball_conn)
    asset = analyses_asset(host=host_of(aiontheball_conn.base_url))
    task = AIOnTheBallAnalysisResultsOperator(
        task_id="results", analysis_id=analysis_id, results=("summary", "events"), outlets=[asset] if outlets else []
    )
    context = {**task_context(), "outlet_events": outlet_events()}
    before = video_reads(aiontheball_conn, video_id)
    task.execute(context)
    assert video_reads(aiontheball_conn, video_id) - before == extra_reads
    if outlets:
        assert context["outlet_events"][asset].extra["game_name"]


# -- a real DAG run, and what Airflow stored ------------------------------------------------------------

DAG_SOURCE = """
import datetime as dt

try:
    from airflow.sdk import DAG, Asset as Outlet
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.datasets import Dataset as Outlet

from airflow_provider_aiontheball.assets import analyses_asset
from airflow_provider_aiontheball.operators.analysis import (
    AIOnTheBallAnalysisResultsOperator,
    AIOnTheBallCreateAnalysisOperator,
)
from airflow_provider_aiontheball.operators.video import AIOnTheBallCreateVideoOperator

WAIT = dict(deferrable=False, poll_interval=0.1, min_poll_interval=0.02)
PARTITION = dict(partition_by_match=True) if {partitions} else {{}}
MATCH_VIDEOS = Outlet("x-aib-test://match-videos")

with DAG("{dag_id}", schedule=None, start_date=dt.datetime(2025, 1, 1), catchup=False) as dag:
    video = AIOnTheBallCreateVideoOperator(
        task_id="create_video",
        video_file_url={url!r},
        title="Ajax vs PSV",
        home_team_name="Ajax",
        away_team_name="PSV",
        date="2025-01-15",
        wait_for_available=True,
        outlets=[MATCH_VIDEOS],
        **WAIT,
        **PARTITION,
    )
    analysis = AIOnTheBallCreateAnalysisOperator(
        task_id="create_analysis",
        video_id="{{{{ ti.xcom_pull(task_ids='create_video', key='video_id') }}}}",
        wait_for_completion=True,
        **WAIT,
    )
    results = AIOnTheBallAnalysisResultsOperator(
        task_id="results",
        analysis_id="{{{{ ti.xcom_pull(task_ids='create_analysis', key='analysis_id') }}}}",
        results=["summary", "events", "schema"],
        output_path={output!r},
        outlets=[analyses_asset(host={host!r})],
        **PARTITION,
    )
    video >> analysis >> results
"""


@dataclass
class Run:
    server: SimulatorServer
    dag_run: Any
    output: Path
    events: dict[str, dict[str, Any]]  # task id -> {"uri", "extra", "partition_key"}
    video: dict[str, Any]  # the video as the server shows it after the run

    def xcom(self, task_id: str, key: str) -> Any:
        return xcom_value(self.dag_run, task_id, key)


def stored_events(dag_id: str) -> dict[str, dict[str, Any]]:
    """The asset (Airflow 3) or dataset (Airflow 2) events a DAG's tasks emitted, from the metadata DB."""
    from airflow.utils.session import create_session

    try:
        from airflow.models.asset import AssetEvent as Event
        from airflow.models.asset import AssetModel as Model

        column = "asset_id"
    except ImportError:  # Airflow 2
        from airflow.models.dataset import DatasetEvent as Event
        from airflow.models.dataset import DatasetModel as Model

        column = "dataset_id"
    found: dict[str, dict[str, Any]] = {}
    with create_session() as session:
        for event in session.query(Event).filter(Event.source_dag_id == dag_id).all():
            model = session.get(Model, getattr(event, column))
            assert event.source_task_id not in found, f"{event.source_task_id} emitted two events"
            found[event.source_task_id] = {
                "uri": model.uri,
                "extra": dict(event.extra or {}),
                "partition_key": getattr(event, "partition_key", None),
            }
    return found


def register_assets(dag: Any) -> None:
    """What the DAG processor does before any run: record the DAG and its assets, without which Airflow
    emits no event for them. ``dag.test()`` does it itself from Airflow 3.1 (it parses the bundle)."""
    if not AIRFLOW_3:
        dag.sync_to_db()
    elif airflow.__version__.startswith("3.0."):
        from airflow.dag_processing.bundles.manager import DagBundlesManager
        from airflow.models.dagbag import DagBag
        from airflow.utils.session import create_session

        with create_session() as session:
            DagBundlesManager().sync_bundles_to_db(session=session)
        with create_session() as session:
            # What Airflow 3.0's DAG processor does with the file: parse it as part of its bundle, then sync.
            folder = Path(dag.fileloc).parent
            bag = DagBag(dag_folder=dag.fileloc, bundle_path=folder, include_examples=False)
            bag.sync_to_db("dags-folder", None, session=session)


@pytest.fixture(scope="module")
def run(airflow_db: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """One pipeline run for the tests below (each asserts one thing about it): a module-scoped simulator
    and connection (the function-scoped fixtures cannot serve a module-scoped run)."""
    config = SimulatorConfig(tokens={TOKEN: "org-1"}, **FAST_SIMULATOR)
    output = tmp_path_factory.mktemp("results")
    with SimulatorServer(Simulator(config)) as server, pytest.MonkeyPatch.context() as patch:
        patch.setenv(CONN_ENV, connection_json(server.base_url, **FAST_RETRY_EXTRA))
        dag_id = "aib_asset_events"
        source = DAG_SOURCE.format(
            dag_id=dag_id, url=PRESIGNED, output=str(output), host=host_of(server.base_url), partitions=PARTITIONS
        )
        dag = write_dag(source, dag_id)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            register_assets(dag)
            dag_run = dag.test()
        video_id = xcom_value(dag_run, "create_video", "video_id")
        yield Run(server, dag_run, output, stored_events(dag_id), AIOnTheBallHook().get_video(video_id))


def test_the_pipeline_succeeded_and_emitted_one_event_per_task_with_outlets(run: Run) -> None:
    assert set(states(run.dag_run).values()) == {"success"}
    assert set(run.events) == {"create_video", "results"}
    assert run.events["results"]["uri"] == analyses_uri(host=host_of(run.server.base_url))


def test_every_event_carries_the_documented_keys(run: Run) -> None:
    for event in run.events.values():
        assert tuple(event["extra"]) == EXTRA_KEYS


def test_the_results_event_names_the_match(run: Run) -> None:
    video_id = run.xcom("create_video", "video_id")
    analysis_id = run.xcom("create_analysis", "analysis_id")
    host = host_of(run.server.base_url)
    extra = run.events["results"]["extra"]
    assert {k: extra[k] for k in ("kind", "video_id", "analysis_id", "video_uri", "analysis_uri")} == {
        "kind": "results",
        "video_id": video_id,
        "analysis_id": analysis_id,
        "video_uri": video_uri(video_id, host=host),
        "analysis_uri": analysis_uri(analysis_id, host=host),
    }
    assert extra["game_name"] == run.video["game_name"]
    assert (extra["title"], extra["home_team_name"], extra["away_team_name"]) == ("Ajax vs PSV", "Ajax", "PSV")
    assert extra["date"] == "2025-01-15"  # the summary's metadata.game_date: the documented video has no date
    assert extra["status"] == "done"


def test_the_results_event_carries_versions_paths_and_counts(run: Run) -> None:
    extra = run.events["results"]["extra"]
    analysis_id = run.xcom("create_analysis", "analysis_id")
    summary = json.loads((run.output / f"analysis_{analysis_id}_summary.json").read_text())
    events = json.loads((run.output / f"analysis_{analysis_id}_events.json").read_text())
    schema = json.loads((run.output / f"analysis_{analysis_id}_schema.json").read_text())
    assert extra["algorithm_version"] == summary["metadata"]["version"]
    assert extra["data_version"] == schema["data_version"]
    assert extra["results"] == {
        name: str(run.output / f"analysis_{analysis_id}_{name}.json") for name in ("summary", "events", "schema")
    }
    assert extra["counts"] == {"events": len(events)}


def test_the_video_event_carries_what_was_submitted(run: Run) -> None:
    extra = run.events["create_video"]["extra"]
    assert extra["kind"] == "video"
    assert extra["video_id"] == run.xcom("create_video", "video_id")
    assert extra["analysis_id"] is None
    assert extra["status"] == "available"
    assert (extra["home_team_name"], extra["away_team_name"], extra["date"]) == ("Ajax", "PSV", "2025-01-15")


def test_no_event_holds_the_presigned_url_or_the_token(run: Run) -> None:
    text = json.dumps(run.events)
    for secret in (SIGNATURE, "X-Amz", "AKIAEXAMPLE", "bucket.example.com", TOKEN):
        assert secret not in text


@pytest.mark.skipif(not PARTITIONS, reason=f"Airflow {airflow.__version__} has no asset partitions per event")
def test_on_airflow_3_3_each_event_is_in_the_matchs_partition(run: Run) -> None:
    video_id = run.xcom("create_video", "video_id")
    assert {task: event["partition_key"] for task, event in run.events.items()} == {
        "create_video": str(video_id),
        "results": str(video_id),
    }


def test_event_kinds_are_closed() -> None:
    with pytest.raises(ValueError, match=r"^kind: "):
        assets.event_extra("summary", host="h")
