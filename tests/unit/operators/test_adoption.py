"""A create task adopts a video or analysis only when its own POST provably created it, by the server's
clock and the documented fields; a refused POST leaves nothing in flight; a re-signed URL is the same
request. Each test drives ``execute()`` tries against the simulator, with a task state store kept across
them the way Airflow 3.3 keeps it (``RecordingStateStore``) or none (the fallback of older Airflow).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_aiontheball.exceptions import AIOnTheBallCreateOutcomeUnknownError
from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallHook
from airflow_provider_aiontheball.operators.analysis import AIOnTheBallCreateAnalysisOperator
from airflow_provider_aiontheball.operators.video import AIOnTheBallCreateVideoOperator
from tests.helpers import (
    CONN_ENV,
    FAST_RETRY_EXTRA,
    RecordingStateStore,
    api_requests,
    connection_json,
    durable_context,
    inject,
    task_context,
)

URL = "https://bucket.example/matches/ajax-psv.mp4"
MATCH = {"title": "Ajax vs PSV", "home_team_name": "Ajax", "away_team_name": "PSV"}
STATE_KEY = "aiontheball_create_video"


def create_task(url: str = URL, grace: float = 0.5, **kwargs: Any) -> AIOnTheBallCreateVideoOperator:
    return AIOnTheBallCreateVideoOperator(
        task_id="create_video", video_file_url=url, commit_grace_period=grace, **MATCH, **kwargs
    )


def posts(server: Any) -> list[dict[str, Any]]:
    return api_requests(server, "POST", "/videos")


def signed(signature: str) -> str:
    return f"{URL}?X-Amz-Expires=3600&X-Amz-Signature={signature}"


@pytest.mark.simulator(commit_delay_seconds=2)
def test_a_retry_with_a_re_signed_url_finds_the_video_of_the_first_signature(aiontheball_conn):
    """Try 1's answer is lost and its video listed too late for its grace; try 2 renders a fresh signature
    (the natural way to give a retry an unexpired URL): still the same request, so it looks, never POSTs."""
    store = RecordingStateStore()
    inject(aiontheball_conn, kind="drop_after_processing", method="POST", path="/videos")
    with pytest.raises(AIOnTheBallCreateOutcomeUnknownError):
        create_task(signed("a" * 40)).execute(durable_context(store, 1))
    video = create_task(signed("b" * 40), grace=10).execute(durable_context(store, 2))
    assert video["id"] == 790
    assert len(posts(aiontheball_conn)) == 1


@pytest.mark.simulator(commit_delay_seconds=1)
@pytest.mark.parametrize(
    "skew", [pytest.param(600, id="worker-10-min-ahead"), pytest.param(-600, id="worker-10-min-behind")]
)
def test_the_lookup_runs_on_the_servers_clock_whatever_the_workers(aiontheball_conn, skew):
    """A worker clock 10 minutes off: its own video (answer lost) is still found, and a same-match video
    another run created 5 minutes (server time) before the POST is still not taken."""
    task = create_task(grace=10)
    foreign = AIOnTheBallHook().create_video("https://bucket.example/other.mp4", **MATCH)["id"]
    aiontheball_conn.simulator.backdate_video(foreign, 300)
    task.hook.server_clock.local = lambda: time.time() + skew
    inject(aiontheball_conn, kind="drop_after_processing", method="POST", path="/videos")
    video = task.execute(durable_context(RecordingStateStore(), 1))
    assert video["id"] != foreign
    assert aiontheball_conn.simulator.submitted_video(video["id"])["video_file_url"] == URL
    assert len(posts(aiontheball_conn)) == 2, "the foreign video's POST and this task's one"


def test_a_video_another_run_created_moments_before_the_post_is_never_adopted(aiontheball_conn):
    """The review's case: another run created this match's video a moment earlier; this run's POST gets a
    proxy's 503 that never reached the API. The try fails (outcome unknown), and the retry creates its own."""
    foreign = AIOnTheBallHook().create_video("https://bucket.example/other.mp4", **MATCH)["id"]
    store = RecordingStateStore()
    inject(
        aiontheball_conn, kind="status", status=503, method="POST", path="/videos", body_match={"video_file_url": URL}
    )
    with pytest.raises(AIOnTheBallCreateOutcomeUnknownError, match="no video it may have created became visible"):
        create_task().execute(durable_context(store, 1))
    video = create_task().execute(durable_context(store, 2))
    assert video["id"] != foreign
    assert aiontheball_conn.simulator.submitted_video(video["id"])["video_file_url"] == URL


def test_without_a_record_a_video_made_before_the_run_started_is_never_adopted(aiontheball_conn):
    """Airflow < 3.3 (no task state store): a retry knows only when the DAG run started (the scheduler's
    clock, so 120 s of skew allowed). A same-match video made before that is not the earlier try's."""
    foreign = AIOnTheBallHook().create_video("https://bucket.example/other.mp4", **MATCH)["id"]
    aiontheball_conn.simulator.backdate_video(foreign, 180)
    run_start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    inject(
        aiontheball_conn, kind="status", status=503, method="POST", path="/videos", body_match={"video_file_url": URL}
    )
    with pytest.raises(AIOnTheBallCreateOutcomeUnknownError):
        create_task(durable=False).execute(task_context(1, run_started=run_start))
    video = create_task(durable=False).execute(task_context(2, run_started=run_start))
    assert video["id"] != foreign
    assert aiontheball_conn.simulator.submitted_video(video["id"])["video_file_url"] == URL


@pytest.mark.simulator(commit_delay_seconds=1.5)
def test_two_candidates_after_the_post_fail_the_try_naming_both(aiontheball_conn):
    """This task's POST was carried out (answer lost) and another run created the same match right after:
    the documented fields cannot tell the two apart, so the try fails naming both and takes neither."""
    inject(aiontheball_conn, kind="drop_after_processing", method="POST", path="/videos")

    def another_run_right_after_the_post() -> None:
        while not posts(aiontheball_conn):
            time.sleep(0.01)
        AIOnTheBallHook().create_video("https://bucket.example/other.mp4", **MATCH)

    other = threading.Thread(target=another_run_right_after_the_post)
    other.start()
    store = RecordingStateStore()
    with pytest.raises(
        AIOnTheBallCreateOutcomeUnknownError, match=r"which of video 790 \(.*\), video 791 \(.*\) it created"
    ):
        create_task(grace=10).execute(durable_context(store, 1))
    other.join(timeout=10)
    assert "id" not in store.get(STATE_KEY)
    with pytest.raises(AIOnTheBallCreateOutcomeUnknownError, match=r"video 790 .*video 791"):
        create_task(grace=10).execute(durable_context(store, 2))  # the retry cannot tell them apart either
    assert len(posts(aiontheball_conn)) == 2


@pytest.mark.parametrize(
    ("setup", "error"),
    [
        pytest.param(
            {"title": "x" * 300}, r"^title: The title field must not be greater than 255 characters", id="422-field"
        ),
        pytest.param(
            {"token": "wrong-token"}, r"connection 'aiontheball_default': the API refused its token", id="401-token"
        ),
    ],
)
def test_a_definite_refusal_clears_the_record_and_fails_without_retries(aiontheball_conn, monkeypatch, setup, error):
    if "token" in setup:
        monkeypatch.setenv(
            CONN_ENV, connection_json(aiontheball_conn.base_url, token=setup["token"], **FAST_RETRY_EXTRA)
        )
    task = AIOnTheBallCreateVideoOperator(
        task_id="create_video", video_file_url=URL, title=setup.get("title", "Ajax vs PSV")
    )
    store = RecordingStateStore()
    with pytest.raises(AirflowFailException, match=error):
        task.execute(durable_context(store, 1))
    assert "posted_at" not in store.get(STATE_KEY), "nothing in flight: a later try must not look for it"
    sent = [r["method"] for r in api_requests(aiontheball_conn) if r["path"] == "/videos"]
    # The field: one POST, no lookup after it. The token: refused by the page read before the POST.
    assert sent == (["GET", "POST"] if "title" in setup else ["GET"])


def test_a_later_try_without_a_record_looks_before_it_creates(aiontheball_conn):
    """[state_store] clear_on_success, or retention, removed the record: a cleared task's next try is not
    taken for a first one; it finds the video its earlier try created, claimed by no other task."""
    run_start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    first = create_task().execute(durable_context(RecordingStateStore(), 1))
    context = durable_context(RecordingStateStore(), 2, run_started=run_start)
    again = create_task().execute(context)
    assert again["id"] == first["id"]
    assert len(posts(aiontheball_conn)) == 1
    assert context["task_state_store"].get(STATE_KEY)["id"] == first["id"], "recorded for the tries after"


def test_an_analysis_another_run_started_before_the_post_is_never_adopted(aiontheball_conn):
    hook = AIOnTheBallHook()
    video_id = hook.create_video(URL, **MATCH)["id"]
    foreign = hook.create_analysis(video_id)["id"]
    inject(aiontheball_conn, kind="status", status=503, method="POST", path=f"/videos/{video_id}/analysis")
    task = AIOnTheBallCreateAnalysisOperator(task_id="create_analysis", video_id=video_id, commit_grace_period=0.5)
    store = RecordingStateStore()
    with pytest.raises(AIOnTheBallCreateOutcomeUnknownError):
        task.execute(durable_context(store, 1))
    analysis = task.execute(durable_context(store, 2))
    assert analysis["id"] != foreign
    assert len(api_requests(aiontheball_conn, "POST", f"/videos/{video_id}/analysis")) == 3
