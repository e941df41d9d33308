"""The checks-before-upload example DAG in a real ``dag.test()``: it posts only a video that meets the API's
requirements, and no log line carries the presigned URL's signature. On the default and the oldest Airflow:
what differs between versions is Airflow's own logging, not the provider's."""

from __future__ import annotations

import json

import pytest

from tests.helpers import (
    EXAMPLE_DAGS,
    MAKEFILE_AIRFLOW,
    api_requests,
    load_dag_file,
    only_on_airflow,
    states,
    xcom_value,
)

pytestmark = only_on_airflow(MAKEFILE_AIRFLOW, "2.11.2", reason="the default and the oldest Airflow (CI budget)")


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

    # Every line as written but Airflow's own DEBUG line that merges the run's conf into the params before any
    # task code runs (2.x and 3.0; a URL given in a run's conf is the caller's to keep out of logs); Airflow 3's
    # DEBUG line "Sending request MaskSecret(value=...)" carries it as a structured field, never in a message.
    logged = [str(entry.get("event")) for entry in all_logs.structlog_entries]
    logged += [r.getMessage() for r in all_logs.caplog.records]
    leaks = [line for line in logged if signature in line and not line.startswith("Updating task params")]
    assert not leaks, "every log line, the HTTP library's debug lines too"

    assert states(dag_run) == {("create_video", -1): state}
    assert len(api_requests(aiontheball_conn, "POST")) == posted
    if posted:
        measured = xcom_value(dag_run, "create_video", "preflight")
        assert (measured["container"], measured["fps"]) == ("MP4", 25)
        assert signature not in json.dumps(measured)
