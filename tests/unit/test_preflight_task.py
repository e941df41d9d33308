"""The create-video operator checks a video before its POST (``preflight``), against real files served over
loopback with Range support and the simulator: a requirement not met fails the task without retries and
posts nothing; what was measured is logged, pushed as XCom and named again if the API ends the video in
``error``. The checks themselves: tests/standalone/test_preflight.py."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_aiontheball.defaults import VIDEO_REQUIREMENTS, XCOM_PREFLIGHT
from airflow_provider_aiontheball.exceptions import (
    AIOnTheBallConfigurationError,
    AIOnTheBallInputError,
    AIOnTheBallTerminalError,
    bad_input_fails_task,
)
from airflow_provider_aiontheball.operators.video import AIOnTheBallCreateVideoOperator
from airflow_provider_aiontheball.preflight import PreflightUnavailableError, check_video_url
from airflow_provider_aiontheball.sensors.video import AIOnTheBallVideoSensor
from tests.helpers import (
    CONN_ENV,
    FAST_RETRY_EXTRA,
    MAKEFILE_AIRFLOW,
    RecordingStateStore,
    api_requests,
    connection_json,
    durable_context,
    only_on_airflow,
    task_context,
)
from tests.media import Served, Server, file_handler, make_video_dir, serving

pytest.importorskip("av")

# The operator's paths here do not differ between Airflow versions: the default and the oldest Airflow, to keep
# CI within budget (tests/system/test_example_checks_before_upload.py runs the checks in a real dag.test()).
pytestmark = only_on_airflow(MAKEFILE_AIRFLOW, "2.11.2", reason="version-independent: default and oldest Airflow")

SIGNATURE = "5f1c" * 16
MATCH = {"title": "Ajax vs PSV", "home_team_name": "Ajax", "away_team_name": "PSV"}


@pytest.fixture(scope="module")
def files() -> Iterator[Server]:
    from aiohttp import web

    app = web.Application()
    app.router.add_get("/files/{name}", file_handler(make_video_dir()))
    with serving(app, Served()) as server:
        yield server


def source(files: Server, name: str) -> str:
    """A presigned-style URL of a served file (the server ignores the query; its signature is a secret)."""
    return f"{files.base}/files/{name}?X-Amz-Expires=604800&X-Amz-Signature={SIGNATURE}"


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/match.mp4"


def create(url: str, **kwargs: Any) -> AIOnTheBallCreateVideoOperator:
    return AIOnTheBallCreateVideoOperator(task_id="create_video", video_file_url=url, **MATCH, **kwargs)


def posts(simulator: Any) -> list[dict[str, Any]]:
    return api_requests(simulator, "POST", "/videos")


def test_a_requirement_not_met_becomes_an_input_error_that_skips_the_retries() -> None:
    # Expired long ago: the check fails before any request, so no server is needed.
    url = (
        "https://bucket.example.com/matches/ajax-psv.mp4?X-Amz-Date=20200101T000000Z&X-Amz-Expires=3600"
        f"&X-Amz-Signature={SIGNATURE}"
    )

    with pytest.raises(AIOnTheBallInputError) as raised, bad_input_fails_task():
        check_video_url(url)

    assert isinstance(raised.value, AirflowFailException)
    assert str(raised.value).startswith(
        "video_file_url: https://bucket.example.com/matches/ajax-psv.mp4?***: the presigned URL expired"
    )
    assert SIGNATURE not in str(raised.value)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("broadcast-50fps.mp4", "video is 50 fps; the API requires 25 fps", id="50fps"),
        pytest.param("qhd-1440p.mp4", "video is 2560x1440; the API requires 1080p or lower", id="1440p"),
        pytest.param("match-9min.mp4", "video lasts 9m; the API requires at least 10m", id="9-minutes"),
        pytest.param("iphone.mov", "the API supports MP4 only", id="mov"),
        pytest.param("missing.mp4", "answered 404", id="404"),
    ],
)
def test_a_video_that_misses_a_requirement_is_never_posted(
    aiontheball_conn: Any, files: Server, name: str, expected: str
) -> None:
    with pytest.raises(AIOnTheBallInputError) as raised:
        create(source(files, name), preflight=True).execute(task_context())

    assert isinstance(raised.value, AirflowFailException), "no retry changes the file"
    assert expected in str(raised.value)
    assert SIGNATURE not in str(raised.value)
    assert posts(aiontheball_conn) == []


def test_a_video_that_meets_them_is_posted_with_the_figures_logged_and_in_xcom(
    aiontheball_conn: Any, files: Server, all_logs: Any
) -> None:
    context = task_context()
    create(source(files, "match-11min.mp4"), preflight=True).execute(context)

    assert len(posts(aiontheball_conn)) == 1
    measured = context["ti"].xcoms[XCOM_PREFLIGHT]
    assert (measured["container"], measured["fps"], measured["width"], measured["height"]) == ("MP4", 25, 64, 36)
    assert measured["duration_seconds"] == pytest.approx(660, abs=1)
    assert measured["bytes_read"] < 0.02 * measured["size_bytes"]
    assert SIGNATURE not in str(measured)
    # Our own lines; the HTTP library's debug lines quote the URL, which Airflow's secrets masker redacts in a
    # real task (the setter registers the signature): tests/system/test_example_checks_before_upload.py runs one.
    ours = [r.getMessage() for r in all_logs.caplog.records if r.name.startswith(("airflow", "airflow_provider"))]
    assert any(m.startswith("Pre-flight checks passed: HTTP 206") for m in ours + all_logs.messages)
    assert not [m for m in ours if SIGNATURE in m]


def test_checks_switched_off_by_name(aiontheball_conn: Any, files: Server) -> None:
    # A one-second 50 fps clip: only the frame rate and the duration are wrong, and both are switched off.
    create(source(files, "broadcast-50fps.mp4"), preflight={"fps": False, "duration": False}).execute(task_context())

    assert len(posts(aiontheball_conn)) == 1


def test_an_unknown_check_fails_before_any_request(aiontheball_conn: Any) -> None:
    with pytest.raises(AIOnTheBallInputError, match="preflight: unknown check"):
        create(closed_port_url(), preflight={"fsp": False}).execute(task_context())

    assert api_requests(aiontheball_conn) == []


@pytest.mark.parametrize(
    ("connection_says", "task_says", "checked"),
    [
        pytest.param(None, None, True, id="default-on"),
        pytest.param(False, None, False, id="connection-off"),
        pytest.param(False, True, True, id="task-on-beats-connection-off"),
        pytest.param(True, False, False, id="task-off-beats-connection-on"),
        pytest.param("false", None, False, id="connection-off-as-string"),
    ],
)
def test_the_task_then_the_connection_decide(
    simulator: Any,
    monkeypatch: pytest.MonkeyPatch,
    connection_says: Any,
    task_says: bool | None,
    checked: bool,
) -> None:
    extra: dict[str, Any] = dict(FAST_RETRY_EXTRA)
    if connection_says is not None:
        extra["preflight"] = connection_says
    conn = connection_json(simulator.base_url, **extra)
    if connection_says is None:  # as users give it: no preflight key at all
        import json

        parsed = json.loads(conn)
        parsed["extra"].pop("preflight")
        conn = json.dumps(parsed)
    monkeypatch.setenv(CONN_ENV, conn)
    task = create(closed_port_url(), preflight=task_says)

    if checked:  # nothing listens there: the check cannot ask, so the try fails and retries apply
        with pytest.raises(PreflightUnavailableError) as raised:
            task.execute(task_context())
        assert not isinstance(raised.value, AirflowFailException)
        assert posts(simulator) == []
    else:
        task.execute(task_context())
        assert len(posts(simulator)) == 1


def test_a_wrong_connection_setting_names_it(simulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONN_ENV, connection_json(simulator.base_url, preflight="maybe"))

    with pytest.raises(AIOnTheBallConfigurationError, match="preflight must be true or false"):
        create(closed_port_url()).execute(task_context())

    assert posts(simulator) == []


def test_a_retry_that_reattaches_checks_nothing(aiontheball_conn: Any, files: Server) -> None:
    store = RecordingStateStore()
    task = create(source(files, "match-11min.mp4"), preflight=True)
    first = task.execute(durable_context(store, try_number=1))
    files.seen.reset()

    again = create(source(files, "match-11min.mp4"), preflight=True).execute(durable_context(store, try_number=2))

    assert again["id"] == first["id"]
    assert files.seen.requests == [], "the video exists: its source is not fetched again"
    assert len(posts(aiontheball_conn)) == 1


def test_a_retry_after_a_source_that_did_not_answer_creates_without_looking(
    aiontheball_conn: Any, files: Server
) -> None:
    """The failed check left the "no POST got through" record: the retry neither searches the listing for an
    earlier try's video (a grace period of requests and waiting) nor takes another pipeline's."""
    store = RecordingStateStore()
    url = source(files, "match-11min.mp4")
    run_start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)  # known: a retry could look since then
    files.refuse_connections()
    try:
        with pytest.raises(PreflightUnavailableError) as raised:
            create(url, preflight=True).execute(durable_context(store, 1, run_started=run_start))
    finally:
        files.accept_connections()
    assert not isinstance(raised.value, AirflowFailException), "a source that did not answer may answer a retry"
    assert posts(aiontheball_conn) == []
    listings = len(api_requests(aiontheball_conn, "GET", "/videos"))

    created = create(url, preflight=True, commit_grace_period=5).execute(
        durable_context(store, 2, run_started=run_start)
    )

    assert [post["body"]["title"] for post in posts(aiontheball_conn)] == [created["title"]]
    # One listing: the snapshot taken right before the POST. A lookup would list again and again.
    assert len(api_requests(aiontheball_conn, "GET", "/videos")) - listings <= 1


def test_a_video_ending_in_error_names_the_requirements_and_the_figures(aiontheball_conn: Any, files: Server) -> None:
    aiontheball_conn.simulator.script_next_videos("error")

    with pytest.raises(AIOnTheBallTerminalError) as raised:
        create(source(files, "match-11min.mp4"), preflight=True, wait_for_available=True).execute(task_context())

    message = str(raised.value)
    assert "ended with status 'error'" in message
    assert VIDEO_REQUIREMENTS in message
    assert "Pre-flight measured before the upload: HTTP 206" in message
    assert "25 fps" in message.split("Pre-flight measured")[1]
    assert SIGNATURE not in message


def test_a_resumed_task_names_the_figures_of_its_try(files: Server) -> None:
    """After a deferral the failure event resumes the task in a new process: the figures come from its XCom."""
    context = task_context()
    context["ti"].xcom_push(key=XCOM_PREFLIGHT, value={"summary": "HTTP 206, MP4, 1920x1080, 25 fps, 1h 35m"})
    event = {"status": "failed", "video_id": 790, "video_status": "error", "message": "video 790 ended ..."}

    with pytest.raises(AIOnTheBallTerminalError) as raised:
        create(source(files, "match-11min.mp4")).execute_complete(context, event)

    assert str(raised.value) == (
        "video 790 ended ... Pre-flight measured before the upload: HTTP 206, MP4, 1920x1080, 25 fps, 1h 35m."
    )


def test_the_sensor_names_the_requirements_of_a_video_in_error(aiontheball_conn: Any) -> None:
    aiontheball_conn.simulator.script_next_videos("error")
    video = create(closed_port_url(), preflight=False).execute(task_context())
    sensor = AIOnTheBallVideoSensor(
        task_id="wait", video_id=video["id"], mode="poke", deferrable=False, poke_interval=0.05, timeout=30
    )

    with pytest.raises(AIOnTheBallTerminalError) as raised:
        sensor.execute(task_context())

    assert VIDEO_REQUIREMENTS in str(raised.value)


def test_the_figures_never_need_more_than_a_glance_at_the_file(files: Server, tmp_path: Path) -> None:
    files.seen.reset()
    result = check_video_url(source(files, "match-11min.mp4"))

    assert result.bytes_read == files.seen.bytes_sent
    assert result.bytes_read < 0.02 * result.size_bytes
