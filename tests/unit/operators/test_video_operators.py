"""Create / update / delete video operators against the simulator, including idempotent retries."""

from __future__ import annotations

import datetime as dt

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, TaskDeferred

from airflow_provider_aiontheball.exceptions import (
    AIOnTheBallInputError,
    AIOnTheBallTerminalError,
    AIOnTheBallWaitError,
)
from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallHook
from airflow_provider_aiontheball.operators.video import (
    AIOnTheBallCreateVideoOperator,
    AIOnTheBallDeleteVideoOperator,
    AIOnTheBallUpdateVideoOperator,
)
from airflow_provider_aiontheball.triggers.video import AIOnTheBallVideoTrigger
from tests.helpers import CONN_ENV, api_requests, inject, task_context

VIDEO_URL = "https://example.com/ajax-psv.mp4"
MATCH = {"title": "Ajax vs PSV", "home_team_name": "Ajax", "away_team_name": "PSV", "date": "2025-01-15"}


def videos_on_server() -> list[dict]:
    return list(AIOnTheBallHook().list_videos())


def create_op(**kwargs) -> AIOnTheBallCreateVideoOperator:
    return AIOnTheBallCreateVideoOperator(task_id="create_video", **{"video_file_url": VIDEO_URL, **MATCH, **kwargs})


def test_every_request_field_is_templated():
    assert set(AIOnTheBallCreateVideoOperator.template_fields) == {
        "video_file_url",
        "title",
        "home_team_name",
        "away_team_name",
        "date",
        "start_offset_seconds",
        "end_offset_seconds",
        "left_start_team",
    }
    assert set(AIOnTheBallUpdateVideoOperator.template_fields) == {
        "video_id",
        "title",
        "home_team_name",
        "away_team_name",
        "date",
        "start_offset_seconds",
        "end_offset_seconds",
    }
    assert AIOnTheBallDeleteVideoOperator.template_fields == ("video_id",)
    # The operators spell the field lists out (cheap DAG parsing); they must not drift from the API's.
    from airflow_provider_aiontheball.validation import VIDEO_CREATE_FIELDS, VIDEO_UPDATE_FIELDS

    assert tuple(AIOnTheBallCreateVideoOperator.template_fields) == VIDEO_CREATE_FIELDS
    assert tuple(AIOnTheBallUpdateVideoOperator.template_fields) == ("video_id", *VIDEO_UPDATE_FIELDS)


@pytest.mark.parametrize(
    "cls", [AIOnTheBallCreateVideoOperator, AIOnTheBallUpdateVideoOperator, AIOnTheBallDeleteVideoOperator]
)
def test_constructors_are_keyword_only(cls):
    from airflow.providers.common.compat.sdk import AirflowException

    with pytest.raises((TypeError, AirflowException)):  # Airflow 2's metaclass raises its own error
        cls("x")


def test_constructors_do_no_io(simulator, monkeypatch):
    monkeypatch.delenv(CONN_ENV, raising=False)
    create_op(aiontheball_conn_id="missing", wait_for_available=True, deferrable=True)
    AIOnTheBallUpdateVideoOperator(task_id="u", video_id="{{ x }}", title="t", aiontheball_conn_id="missing")
    AIOnTheBallDeleteVideoOperator(task_id="d", video_id="{{ x }}", aiontheball_conn_id="missing")
    assert api_requests(simulator) == []


def test_create_pushes_ids_and_returns_the_video(aiontheball_conn):
    context = task_context()
    video = create_op().execute(context)
    assert video["id"] == context["ti"].xcoms["video_id"]
    assert video["game_name"] == context["ti"].xcoms["game_name"]
    assert video["status"] == "init"
    posted = api_requests(aiontheball_conn, "POST")[0]["body"]
    assert posted == {"video_file_url": VIDEO_URL, **MATCH}


BAD_RENDERED_VALUES = [
    pytest.param({"video_file_url": "not-a-url"}, "video_file_url", id="url"),
    pytest.param({"date": "15/01/2025"}, "date", id="date"),
    pytest.param({"start_offset_seconds": "-5"}, "start_offset_seconds", id="negative-offset-from-template"),
    pytest.param(
        {"start_offset_seconds": "100", "end_offset_seconds": "10"}, "end_offset_seconds", id="end-before-start"
    ),
    pytest.param({"left_start_team": "north"}, "left_start_team", id="side"),
]


@pytest.mark.parametrize(("fields", "name"), BAD_RENDERED_VALUES)
def test_bad_values_fail_before_any_request(aiontheball_conn, fields, name):
    with pytest.raises(AIOnTheBallInputError, match=rf"^{name}: ") as excinfo:
        create_op(**fields).execute(task_context())
    assert isinstance(excinfo.value, AirflowFailException), "the same input would fail again: no retries"
    assert api_requests(aiontheball_conn) == []


def test_wait_in_process_returns_available_video(aiontheball_conn):
    context = task_context()
    video = create_op(wait_for_available=True, deferrable=False, poll_interval=0.1, min_poll_interval=0.02).execute(
        context
    )
    assert video["status"] == "available"
    assert context["ti"].xcoms["mp4_source"] == video["mp4_source"]


def test_ids_are_pushed_before_a_failing_wait(aiontheball_conn):
    context = task_context()
    task = create_op(
        video_file_url=f"{VIDEO_URL}?sim_outcome=error",
        wait_for_available=True,
        deferrable=False,
        poll_interval=0.1,
        min_poll_interval=0.02,
    )
    with pytest.raises(AIOnTheBallTerminalError, match="'error'"):
        task.execute(context)
    assert isinstance(context["ti"].xcoms["video_id"], int), "clean-up tasks can still find the video"


def test_wait_in_process_times_out(aiontheball_conn):
    task = create_op(
        video_file_url=f"{VIDEO_URL}?sim_outcome=stuck",
        wait_for_available=True,
        deferrable=False,
        poll_interval=0.1,
        min_poll_interval=0.02,
        timeout=0.3,
    )
    with pytest.raises(AIOnTheBallWaitError, match="did not finish before the deadline"):
        task.execute(task_context())


def test_deferrable_wait_defers_to_the_video_trigger(aiontheball_conn):
    context = task_context()
    with pytest.raises(TaskDeferred) as excinfo:
        create_op(wait_for_available=True, deferrable=True, poll_interval=30, timeout=900).execute(context)
    trigger = excinfo.value.trigger
    assert isinstance(trigger, AIOnTheBallVideoTrigger)
    assert trigger.video_id == context["ti"].xcoms["video_id"], "XCom pushed before deferring"
    assert trigger.serialize()[1]["poll_interval"] == 30
    assert excinfo.value.timeout == dt.timedelta(seconds=900)
    assert excinfo.value.method_name == "execute_complete"


@pytest.mark.parametrize(
    ("event", "error"),
    [
        pytest.param({"status": "failed", "message": "m"}, AIOnTheBallTerminalError, id="failed"),
        pytest.param({"status": "timeout", "message": "m"}, AIOnTheBallWaitError, id="timeout"),
        pytest.param({"status": "error", "message": "m"}, AIOnTheBallWaitError, id="error"),
        pytest.param(None, AIOnTheBallWaitError, id="none"),
    ],
)
def test_execute_complete_fails_closed(event, error):
    with pytest.raises(error):
        create_op().execute_complete(task_context(), event)


def test_execute_complete_returns_the_video():
    video = {"id": 5, "status": "available", "mp4_source": "https://cdn.example/5.mp4"}
    context = task_context()
    assert create_op().execute_complete(context, {"status": "success", "video": video, "message": "ok"}) == video
    assert context["ti"].xcoms["mp4_source"] == video["mp4_source"]


# -- idempotent create ------------------------------------------------------------------------------


def test_lost_post_response_reuses_the_created_video(aiontheball_conn, all_logs):
    inject(aiontheball_conn, kind="drop_after_processing", count=1, method="POST")
    context = task_context()
    video = create_op().execute(context)
    assert [v["id"] for v in videos_on_server()] == [video["id"]], "no duplicate"
    assert len(api_requests(aiontheball_conn, "POST")) == 1, "not posted again"
    assert any("the POST did create it" in m for m in all_logs.messages)


def test_lost_post_that_created_nothing_is_sent_by_the_next_try_only(aiontheball_conn):
    # The connection drops before the server processes the request: nothing was created, but the
    # client cannot know that. It does not re-send; the next try looks first, then creates.
    from airflow_provider_aiontheball.exceptions import AIOnTheBallCreateOutcomeUnknownError

    inject(aiontheball_conn, kind="drop", count=1, method="POST")
    run_started = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    with pytest.raises(AIOnTheBallCreateOutcomeUnknownError):
        create_op(commit_grace_period=0.3).execute(task_context(1, run_started))
    assert len(api_requests(aiontheball_conn, "POST")) == 1
    video = create_op(commit_grace_period=0.3).execute(task_context(2, run_started))
    assert [v["id"] for v in videos_on_server()] == [video["id"]]
    assert len(api_requests(aiontheball_conn, "POST")) == 2


def test_new_try_reuses_the_video_of_an_earlier_try(aiontheball_conn, all_logs):
    run_started = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    first = create_op().execute(task_context(try_number=1, run_started=run_started))
    # The worker crashed after the POST; Airflow starts try 2.
    second_context = task_context(try_number=2, run_started=run_started)
    second = create_op().execute(second_context)
    assert second["id"] == first["id"]
    assert second_context["ti"].xcoms["video_id"] == first["id"]
    assert len(api_requests(aiontheball_conn, "POST")) == 1
    assert any("Reusing video" in m and "try 2" in m for m in all_logs.messages)


# A retry looks for what an earlier try created for commit_grace_period before creating: short here.
def test_new_try_creates_when_fields_differ(aiontheball_conn):
    run_started = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    create_op().execute(task_context(1, run_started))
    other = create_op(title="Ajax vs PSV (second half)", commit_grace_period=0.2).execute(task_context(2, run_started))
    assert len(videos_on_server()) == 2
    assert other["title"] == "Ajax vs PSV (second half)"


def test_new_try_ignores_videos_from_before_the_run(aiontheball_conn):
    create_op().execute(task_context(1))  # yesterday's run of the same match
    later_run = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    create_op(commit_grace_period=0.2).execute(task_context(2, later_run))
    assert len(videos_on_server()) == 2


# -- update and delete ----------------------------------------------------------------------------


def test_update_returns_the_updated_video(aiontheball_conn):
    video_id = create_op().execute(task_context())["id"]
    updated = AIOnTheBallUpdateVideoOperator(
        task_id="u", video_id=str(video_id), title="Final", end_offset_seconds="5400"
    ).execute(task_context())
    assert updated["title"] == "Final"
    assert api_requests(aiontheball_conn, "PUT")[0]["body"] == {"title": "Final", "end_offset_seconds": 5400}


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        pytest.param({"video_id": "abc", "title": "t"}, "video_id", id="id"),
        pytest.param({"video_id": 1}, "fields", id="nothing-to-update"),
        pytest.param({"video_id": 1, "date": "yesterday"}, "date", id="date"),
    ],
)
def test_update_validates_before_any_request(aiontheball_conn, kwargs, name):
    with pytest.raises(AIOnTheBallInputError, match=rf"^{name}: "):
        AIOnTheBallUpdateVideoOperator(task_id="u", **kwargs).execute(task_context())
    assert api_requests(aiontheball_conn) == []


def test_delete_is_logged_as_irreversible(aiontheball_conn, all_logs):
    video_id = create_op().execute(task_context())["id"]
    assert AIOnTheBallDeleteVideoOperator(task_id="d", video_id=video_id).execute(task_context()) == video_id
    assert videos_on_server() == []
    assert any("cannot be undone" in m for m in all_logs.messages)


def test_delete_missing_video_is_fine_when_missing_ok(aiontheball_conn, all_logs):
    AIOnTheBallDeleteVideoOperator(task_id="d", video_id=999).execute(task_context())
    assert any("does not exist" in m for m in all_logs.messages)


def test_delete_missing_video_fails_when_not_missing_ok(aiontheball_conn):
    with pytest.raises(AIOnTheBallTerminalError, match="video 999 cannot be deleted"):
        AIOnTheBallDeleteVideoOperator(task_id="d", video_id=999, missing_ok=False).execute(task_context())
