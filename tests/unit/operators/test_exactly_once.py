"""Exactly-once creation of videos and analyses, as real ``dag.test()`` runs against a simulator that
returns only the documented fields, under the faults that break naive idempotency.

Each test is a DAG run: it asserts how many videos/analyses exist on the server, which submitted URL
each task's XCom ``video_id`` points to, and the task states. ``durable`` runs use the task state store
where Airflow has it (3.3+); ``fallback`` runs (``durable=False``, and every run on Airflow < 3.3) find
an earlier try's resource by its documented fields.
"""

from __future__ import annotations

import json

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from airflow_provider_aiontheball.exceptions import AIOnTheBallCreateOutcomeUnknownError
from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallHook
from airflow_provider_aiontheball.operators.video import AIOnTheBallCreateVideoOperator
from tests.helpers import (
    HAS_TASK_STATE_STORE,
    RecordingStateStore,
    api_requests,
    durable_context,
    inject,
    states,
    task_context,
    task_instances,
    write_dag,
    xcom_value,
)

URL_A = "https://example.com/matches/ajax-psv-camera-a.mp4"
URL_B = "https://example.com/matches/ajax-psv-camera-b.mp4"
SAME_MATCH = 'title="Ajax vs PSV", home_team_name="Ajax", away_team_name="PSV"'

PATHS = [pytest.param(True, id="durable"), pytest.param(False, id="fallback")]

HEADER = """
import datetime as dt

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG

from airflow_provider_aiontheball.operators.analysis import AIOnTheBallCreateAnalysisOperator
from airflow_provider_aiontheball.operators.video import AIOnTheBallCreateVideoOperator

RETRY = dict(retries=2, retry_delay=dt.timedelta(seconds=0))
WAIT = dict(poll_interval=0.1, min_poll_interval=0.02, max_consecutive_errors=1)
"""


def dag_source(dag_id: str, body: str) -> str:
    return (
        HEADER
        + f'\nwith DAG("{dag_id}", schedule=None, start_date=dt.datetime(2025, 1, 1), catchup=False) as dag:\n'
        + "\n".join("    " + line for line in body.strip().splitlines())
        + "\n"
    )


def run(dag_id: str, body: str):
    dag = write_dag(dag_source(dag_id, body), dag_id)
    return dag.test()


def videos_on(server) -> dict[int, dict]:
    """Every video on the server, by id, with the fields its POST submitted."""
    return {v["id"]: server.simulator.submitted_video(v["id"]) for v in AIOnTheBallHook().list_videos()}


def url_of(server, dag_run, task_id: str, map_index: int = -1) -> str:
    video_id = xcom_value(dag_run, task_id, "video_id", map_index)
    assert isinstance(video_id, int), f"{task_id}[{map_index}] pushed no video_id"
    return server.simulator.submitted_video(video_id)["video_file_url"]


def try_number(dag_run, task_id: str, map_index: int = -1) -> int:
    return task_instances(dag_run)[(task_id, map_index)].try_number


def create_posts(server) -> list[dict]:
    return api_requests(server, "POST", "/videos")


def lists(server) -> list[dict]:
    """``GET /videos`` sent after the first ``POST /videos``: lookups of what a POST created. (The one page
    read right before each POST, for the server's clock and the videos it already lists, is not one.)"""
    log = api_requests(server)
    first_post = next((i for i, r in enumerate(log) if (r["method"], r["path"]) == ("POST", "/videos")), len(log))
    return [r for r in log[first_post + 1 :] if (r["method"], r["path"]) == ("GET", "/videos")]


# --------------------------------------------------------------------------------------------------
# 1. False reuse: same title and teams, different URLs
# --------------------------------------------------------------------------------------------------

TWO_TASKS = f"""
a = AIOnTheBallCreateVideoOperator(task_id="camera_a", video_file_url="{URL_A}", {SAME_MATCH},
                                   durable={{durable}}, commit_grace_period=0.5, **RETRY)
b = AIOnTheBallCreateVideoOperator(task_id="camera_b", video_file_url="{URL_B}", {SAME_MATCH},
                                   durable={{durable}}, commit_grace_period=0.5, **RETRY)
a >> b
"""

MAPPED = f"""
AIOnTheBallCreateVideoOperator.partial(task_id="camera", {SAME_MATCH}, durable={{durable}},
                                       commit_grace_period=0.5, **RETRY).expand(video_file_url=["{URL_A}", "{URL_B}"])
"""


@pytest.mark.parametrize("durable", PATHS)
def test_a_second_camera_angle_is_not_taken_for_the_first(airflow_db, aiontheball_conn, durable):
    # camera_b's first POST is refused with a 503 before anything is created (a proxy's answer: its
    # outcome is unknown to the client). Its retry must not "reuse" camera_a's video, whose title and
    # teams are the same: the only fields the documented list shows.
    inject(
        aiontheball_conn, kind="status", status=503, method="POST", path="/videos", body_match={"video_file_url": URL_B}
    )
    dag_run = run(f"false_reuse_two_tasks_{durable}", TWO_TASKS.format(durable=durable))
    assert set(states(dag_run).values()) == {"success"}, states(dag_run)
    assert sorted(v["video_file_url"] for v in videos_on(aiontheball_conn).values()) == [URL_A, URL_B]
    assert url_of(aiontheball_conn, dag_run, "camera_a") == URL_A
    assert url_of(aiontheball_conn, dag_run, "camera_b") == URL_B
    assert try_number(dag_run, "camera_b") == 2, "the 503 try failed instead of re-sending the POST"
    assert len(create_posts(aiontheball_conn)) == 3


@pytest.mark.parametrize("durable", PATHS)
def test_mapped_instances_never_take_each_others_video(airflow_db, aiontheball_conn, durable):
    # The connection drops before the server reads camera B's POST: nothing was created, but the
    # client cannot know. Whatever the order of the map indexes, B must end on a video of its own.
    inject(aiontheball_conn, kind="drop", method="POST", path="/videos", body_match={"video_file_url": URL_B})
    dag_run = run(f"false_reuse_mapped_{durable}", MAPPED.format(durable=durable))
    assert set(states(dag_run).values()) == {"success"}, states(dag_run)
    assert sorted(v["video_file_url"] for v in videos_on(aiontheball_conn).values()) == [URL_A, URL_B]
    assert [url_of(aiontheball_conn, dag_run, "camera", i) for i in (0, 1)] == [URL_A, URL_B]


# --------------------------------------------------------------------------------------------------
# 2. Lost POST response, committed late;  3. 503/504 after commit
# --------------------------------------------------------------------------------------------------

ONE_TASK = f"""
AIOnTheBallCreateVideoOperator(task_id="create_video", video_file_url="{URL_A}", {SAME_MATCH},
                               durable={{durable}}, commit_grace_period={{grace}}, retries={{retries}},
                               retry_delay=dt.timedelta(seconds=0))
"""

AFTER_COMMIT_FAULTS = [
    pytest.param({"kind": "drop_after_processing"}, id="lost-response"),
    pytest.param({"kind": "status_after_processing", "status": 503}, id="503-after-commit"),
    pytest.param({"kind": "status_after_processing", "status": 504, "retry_after": "1"}, id="504-after-commit"),
]


@pytest.mark.simulator(commit_delay_seconds=1.5)
@pytest.mark.parametrize("fault", AFTER_COMMIT_FAULTS)
@pytest.mark.parametrize("durable", PATHS)
def test_a_post_of_unknown_outcome_is_found_not_resent(airflow_db, aiontheball_conn, all_logs, durable, fault):
    # The server creates the video, the client never learns it (lost answer, or a proxy's 5xx), and
    # the video is listed only 1.5 s later. Listing at once and POSTing again would make two.
    inject(aiontheball_conn, method="POST", path="/videos", **fault)
    dag_run = run(f"unknown_outcome_{durable}_{fault['kind']}", ONE_TASK.format(durable=durable, grace=10, retries=0))
    assert states(dag_run) == {("create_video", -1): "success"}
    assert len(create_posts(aiontheball_conn)) == 1, "the POST was re-sent"
    assert list(videos_on(aiontheball_conn)) == [790]
    assert xcom_value(dag_run, "create_video", "video_id") == 790
    assert len(lists(aiontheball_conn)) >= 2, "looked again with back-off until the late commit showed"
    assert any("Not re-sending it" in m for m in all_logs.messages)


@pytest.mark.simulator(commit_delay_seconds=30)
@pytest.mark.parametrize("durable", PATHS)
def test_a_post_still_unseen_after_the_grace_period_fails_the_try_without_resending(
    airflow_db, aiontheball_conn, durable
):
    inject(aiontheball_conn, kind="drop_after_processing", method="POST", path="/videos")
    dag_run = run(f"unknown_outcome_grace_{durable}", ONE_TASK.format(durable=durable, grace=1, retries=0))
    assert states(dag_run) == {("create_video", -1): "failed"}
    assert len(create_posts(aiontheball_conn)) == 1, "never re-sent in the same try"
    assert aiontheball_conn.simulator.submitted_video(790) is not None, "the server did create it"


@pytest.mark.simulator(commit_delay_seconds=30)
def test_the_unknown_outcome_error_says_what_happened_and_what_comes_next(aiontheball_conn):
    inject(aiontheball_conn, kind="status_after_processing", status=502, method="POST", path="/videos")
    task = AIOnTheBallCreateVideoOperator(
        task_id="create_video", video_file_url=URL_A, title="Ajax vs PSV", commit_grace_period=0.2
    )
    with pytest.raises(AIOnTheBallCreateOutcomeUnknownError) as excinfo:
        task.execute(task_context())
    assert not isinstance(excinfo.value, AirflowFailException), "retries apply: the next try looks again first"
    message = str(excinfo.value)
    assert "502" in message
    assert "It was not sent again, so no duplicate exists" in message
    assert "the next try of this task looks for it again before creating one" in message


# --------------------------------------------------------------------------------------------------
# 4. A failed video or analysis is never reused;  durable reattach vs fallback lookup
# --------------------------------------------------------------------------------------------------

WAITING_VIDEO = f"""
AIOnTheBallCreateVideoOperator(task_id="create_video", video_file_url="{URL_A}", {SAME_MATCH},
                               wait_for_available=True, deferrable=False, durable={{durable}}, **WAIT, **RETRY)
"""


@pytest.mark.simulator(video_step_seconds=0.01)
@pytest.mark.parametrize("durable", PATHS)
def test_a_video_that_ended_in_error_is_not_reused_by_the_retry(airflow_db, aiontheball_conn, all_logs, durable):
    # Try 1 creates a video that fails (scripted) and then fails itself on a 500 while waiting; the
    # retry must create a new video instead of re-attaching to the failed one forever.
    aiontheball_conn.simulator.script_next_videos("error")
    inject(aiontheball_conn, kind="status", status=500, method="GET", path="/videos/790")
    # A short grace: the fallback's lookup for what try 1 created goes on that long before creating.
    source = WAITING_VIDEO.format(durable=durable).replace("**WAIT,", "**WAIT, commit_grace_period=0.2,")
    dag_run = run(f"failed_video_{durable}", source)
    assert states(dag_run) == {("create_video", -1): "success"}
    assert try_number(dag_run, "create_video") == 2
    assert list(videos_on(aiontheball_conn)) == [790, 791]
    assert aiontheball_conn.simulator.video_json(790)["status"] == "error"
    assert xcom_value(dag_run, "create_video", "video_id") == 791
    assert any("ended in 'error'" in m for m in all_logs.messages)


@pytest.mark.skipif(not HAS_TASK_STATE_STORE, reason="the stored id exists only with a task state store (3.3+)")
def test_a_stored_video_that_is_gone_is_replaced(airflow_db, aiontheball_conn, all_logs):
    # Try 1 creates video 790 and fails on a 500 while waiting; by try 2 the stored video answers 404
    # (deleted, or a cleared run whose state outlived its video). The retry must create a new one.
    inject(aiontheball_conn, kind="status", status=500, method="GET", path="/videos/790")
    inject(aiontheball_conn, kind="status", status=404, method="GET", path="/videos/790", count=100)
    source = WAITING_VIDEO.format(durable=True).replace("**WAIT,", "**WAIT, commit_grace_period=0.2,")
    dag_run = run("gone_video", source)
    assert states(dag_run) == {("create_video", -1): "success"}
    assert try_number(dag_run, "create_video") == 2
    assert xcom_value(dag_run, "create_video", "video_id") == 791
    assert any("no longer exists; creating a new one" in m for m in all_logs.messages)


@pytest.mark.parametrize("durable", PATHS)
def test_a_crashed_try_is_continued_on_the_same_video(airflow_db, aiontheball_conn, durable):
    # Try 1 creates the video and dies while waiting (its error budget is spent on a 500). The retry
    # must continue on that video: with a task state store by its stored id, without any lookup.
    inject(aiontheball_conn, kind="status", status=500, method="GET", path="/videos/790")
    dag_run = run(f"crashed_video_{durable}", WAITING_VIDEO.format(durable=durable))
    lookups = lists(aiontheball_conn)
    assert states(dag_run) == {("create_video", -1): "success"}
    assert try_number(dag_run, "create_video") == 2
    assert len(create_posts(aiontheball_conn)) == 1
    assert list(videos_on(aiontheball_conn)) == [790]
    assert xcom_value(dag_run, "create_video", "video_id") == 790
    if durable and HAS_TASK_STATE_STORE:
        assert lookups == [], "reattached by the stored id: no list lookup"
    else:
        assert len(lookups) == 1, "found by its documented fields"


@pytest.mark.parametrize("durable", PATHS)
def test_videos_another_run_made_before_the_post_are_never_taken(airflow_db, aiontheball_conn, all_logs, durable):
    # Another pipeline created two videos with this task's title and teams moments before. Try 1's POST
    # gets a 503 from a proxy that never reached the API: neither video is this task's (the server's clock
    # says they came before the POST), so try 1 takes none and fails; try 2 creates this task's own.
    hook = AIOnTheBallHook()
    others = [
        hook.create_video(
            f"https://example.com/other-{i}.mp4", title="Ajax vs PSV", home_team_name="Ajax", away_team_name="PSV"
        )["id"]
        for i in range(2)
    ]
    inject(
        aiontheball_conn, kind="status", status=503, method="POST", path="/videos", body_match={"video_file_url": URL_A}
    )
    dag_run = run(f"foreign_{durable}", ONE_TASK.format(durable=durable, grace=2, retries=1))
    assert states(dag_run) == {("create_video", -1): "success"}
    assert try_number(dag_run, "create_video") == 2
    assert xcom_value(dag_run, "create_video", "video_id") not in others
    assert url_of(aiontheball_conn, dag_run, "create_video") == URL_A
    assert len(videos_on(aiontheball_conn)) == 3
    assert any(m.startswith("The outcome of the POST is unknown") for m in all_logs.messages)


# --------------------------------------------------------------------------------------------------
# 5. Analyses, also on servers without GET /analyses/{id}
# --------------------------------------------------------------------------------------------------

VIDEO_THEN_ANALYSIS = f"""
video = AIOnTheBallCreateVideoOperator(task_id="create_video", video_file_url="{URL_A}", {SAME_MATCH})
analysis = AIOnTheBallCreateAnalysisOperator(
    task_id="create_analysis", video_id="{{{{{{{{ ti.xcom_pull(task_ids='create_video', key='video_id') }}}}}}}}",
    wait_for_completion={{wait}}, deferrable=False, timeout={{timeout}}, durable={{durable}},
    commit_grace_period=10, **WAIT, **RETRY)
video >> analysis
"""

ROUTES = [pytest.param(True, id="with-get-analysis"), pytest.param(False, id="without-get-analysis")]


def analyses_on(server, video_id: int = 790) -> list[int]:
    return [a["id"] for a in server.simulator.video_json(video_id)["analyses"]]


def analysis_posts(server) -> list[dict]:
    return api_requests(server, "POST", "/videos/790/analysis")


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"kind": "drop_after_processing"}, id="lost-response"),
        pytest.param({"kind": "status_after_processing", "status": 503}, id="503-after-commit"),
    ],
)
@pytest.mark.parametrize("durable", PATHS)
def test_an_analysis_post_of_unknown_outcome_is_found_not_resent(airflow_db, aiontheball_conn, durable, fault, route):
    aiontheball_conn.simulator.config.analysis_get_route = route
    aiontheball_conn.simulator.config.commit_delay_seconds = 1.0
    inject(aiontheball_conn, method="POST", path="/videos/790/analysis", **fault)
    dag_run = run(
        f"analysis_unknown_{durable}_{fault['kind']}_{route}",
        VIDEO_THEN_ANALYSIS.format(wait=False, timeout=60, durable=durable),
    )
    assert set(states(dag_run).values()) == {"success"}, states(dag_run)
    assert len(analysis_posts(aiontheball_conn)) == 1, "the POST was re-sent"
    assert analyses_on(aiontheball_conn) == [1247]
    assert xcom_value(dag_run, "create_analysis", "analysis_id") == 1247


# The analysis runs an hour of simulator time, so try 1 can only time out, however slow the machine; a
# retry moves the simulator clock past the analysis's end before it executes (pre_execute runs in the
# task, on every Airflow), so the retry finds it done on its first poll. No wall-clock race either way.
AFTER_AN_HOUR_ON_RETRY = """
def after_an_hour_on_retry(context):
    if context["ti"].try_number > 1:
        import json, urllib.request
        request = urllib.request.Request("{control}/advance", data=json.dumps({{"seconds": 7200}}).encode(),
                                         headers={{"Content-Type": "application/json"}}, method="POST")
        urllib.request.urlopen(request, timeout=10).close()
"""


@pytest.mark.simulator(analysis_seconds=3600, analysis_init_seconds=0.01, video_step_seconds=0.01)
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("durable", PATHS)
def test_a_crashed_analysis_wait_continues_on_the_same_analysis(airflow_db, aiontheball_conn, durable, route):
    # Try 1 starts the analysis and times out waiting for it; the retry must wait for that analysis,
    # not start a second multi-hour one — also when the server has no GET /analyses/{id}.
    aiontheball_conn.simulator.config.analysis_get_route = route
    body = AFTER_AN_HOUR_ON_RETRY.format(control=aiontheball_conn.control_url) + VIDEO_THEN_ANALYSIS.format(
        wait=True, timeout=0.3, durable=durable
    ).replace("**WAIT, **RETRY)", "**WAIT, **RETRY, pre_execute=after_an_hour_on_retry)")
    dag_run = run(f"analysis_crash_{durable}_{route}", body)
    assert set(states(dag_run).values()) == {"success"}, states(dag_run)
    assert try_number(dag_run, "create_analysis") >= 2
    assert len(analysis_posts(aiontheball_conn)) == 1
    assert analyses_on(aiontheball_conn) == [1247]


@pytest.mark.simulator(analysis_seconds=0.05, analysis_init_seconds=0.01, video_step_seconds=0.01)
@pytest.mark.parametrize("durable", PATHS)
def test_an_analysis_that_ended_in_error_is_not_reused(airflow_db, aiontheball_conn, all_logs, durable):
    aiontheball_conn.simulator.script_next_analyses("error", error_at_progress=0)
    inject(aiontheball_conn, kind="status", status=500, method="GET", path="/analyses/1247")
    # A short grace: the fallback's lookup for what try 1 created goes on that long before creating.
    source = VIDEO_THEN_ANALYSIS.format(wait=True, timeout=60, durable=durable)
    dag_run = run(f"analysis_failed_{durable}", source.replace("commit_grace_period=10", "commit_grace_period=0.2"))
    assert set(states(dag_run).values()) == {"success"}, states(dag_run)
    assert analyses_on(aiontheball_conn) == [1247, 1248]
    assert aiontheball_conn.simulator.analysis_json(1247)["status"] == "error"
    assert xcom_value(dag_run, "create_analysis", "analysis_id") == 1248
    assert any("ended in 'error'" in m for m in all_logs.messages)


# --------------------------------------------------------------------------------------------------
# The durable record itself (execute() called directly, with a stand-in for Airflow's store)
# --------------------------------------------------------------------------------------------------


def test_the_record_holds_a_fingerprint_never_the_url(aiontheball_conn):
    store = RecordingStateStore()
    presigned = f"{URL_A}?X-Amz-Signature=0123456789abcdef0123456789abcdef"
    AIOnTheBallCreateVideoOperator(task_id="create_video", video_file_url=presigned, title="Ajax vs PSV").execute(
        durable_context(store, 1)
    )
    (record,) = store.values.values()
    assert record["id"] == 790
    assert set(record) == {"request", "posted_at", "posted_after", "known_ids", "id"}
    assert "X-Amz-Signature" not in json.dumps(store.values)


def test_changed_inputs_after_a_clear_create_a_new_video(aiontheball_conn, all_logs):
    store = RecordingStateStore()
    AIOnTheBallCreateVideoOperator(task_id="create_video", video_file_url=URL_A, title="Ajax vs PSV").execute(
        durable_context(store, 1)
    )
    # The user fixed the source URL and cleared the task: the stored video is of the old URL.
    video = AIOnTheBallCreateVideoOperator(task_id="create_video", video_file_url=URL_B, title="Ajax vs PSV").execute(
        durable_context(store, 2)
    )
    assert video["id"] == 791
    assert aiontheball_conn.simulator.submitted_video(791)["video_file_url"] == URL_B
    assert any("from other inputs; creating a new one" in m for m in all_logs.messages)


def test_same_inputs_after_a_clear_reattach_without_a_lookup(aiontheball_conn):
    store = RecordingStateStore()
    task = AIOnTheBallCreateVideoOperator(task_id="create_video", video_file_url=URL_A, title="Ajax vs PSV")
    first = task.execute(durable_context(store, 1))
    second = task.execute(durable_context(store, 2))
    assert second["id"] == first["id"]
    assert len(create_posts(aiontheball_conn)) == 1
    assert lists(aiontheball_conn) == []
