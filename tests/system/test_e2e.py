"""End to end: the match-ingestion example in real Airflow processes with a real triggerer.

The module runs the DAG once, with the harness ``make demo`` uses (``aib_harness/airflow.py``):
the simulator CLI on loopback, a throwaway SQLite ``AIRFLOW_HOME``, and the Airflow components as
separate processes (Airflow 3: api-server, scheduler with the LocalExecutor, dag-processor, triggerer;
Airflow 2: scheduler with the SequentialExecutor, triggerer). Every test then checks one aspect of that
run. About 60 s on Airflow 3.3 and 75 s on Airflow 2.11 on a 2-core machine (the simulator's videos are
ready after 12 s / 24 s, its analyses 14 s later).

Unlike ``dag.test()`` (which runs triggers inside the test process, see ``test_example_dags.py``), here
the sensors really defer: the evidence that their triggers ran in the triggerer process comes from three
independent sources, each asserted: the trigger rows in the DB carried a TriggererJob's id, the triggerer
wrote the trigger's log lines to ``attempt=N.log.trigger.<triggerer job id>.log``, and the worker's own
task log shows the deferral and the resumption but never the trigger firing.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import pytest

from aib_harness.airflow import (
    MATCH_INGESTION_DAG_ID,
    AirflowHarness,
    HarnessConfig,
    example_dag_files,
    example_matches,
)
from aib_harness.logs import FIRED_MARK, status_observations
from aib_harness.processes import HarnessError, group_members, marked_processes, process_table
from aib_harness.report import RunReport, format_summary
from airflow_provider_aiontheball.task_start import supports_start_from_trigger

pytestmark = pytest.mark.e2e

#: What a trigger logs when it ends its task (``task_end.trigger_event``).
ENDED_IN_TRIGGERER = "the task succeeds here, in the triggerer"

#: A fresh token per session: the test checks it never reaches a log.
TOKEN = f"e2e-token-{secrets.token_hex(6)}"


#: A wait started in the triggerer (Airflow 3.3+ only; ``task_start``), run in the same deployment.
START_FROM_TRIGGER_DAG = Path(__file__).parent / "dags" / "aib_start_from_trigger.py"
START_FROM_TRIGGER_DAG_ID = "aib_start_from_trigger"
STARTS_IN_TRIGGERER = supports_start_from_trigger()


@dataclass
class E2ERun:
    harness: AirflowHarness
    report: RunReport
    progress: list[str]
    started_in_triggerer: RunReport | None = None


@pytest.fixture(scope="module")
def e2e(tmp_path_factory: pytest.TempPathFactory) -> E2ERun:
    progress: list[str] = []
    extra = {"dag_files": (*example_dag_files(), START_FROM_TRIGGER_DAG), "other_dag_ids": (START_FROM_TRIGGER_DAG_ID,)}
    harness = AirflowHarness(
        HarnessConfig(
            dag_id=MATCH_INGESTION_DAG_ID,
            token=TOKEN,
            workdir=tmp_path_factory.mktemp("e2e-airflow"),
            **(extra if STARTS_IN_TRIGGERER else {}),  # type: ignore[arg-type]
        ),
        progress=progress.append,
    )
    started = None
    try:
        with harness:  # leaving it stops every process; the tests below check that too
            # Results into the run's directory, not the example's default (/tmp/aiontheball/results).
            report = harness.run_dag("aib_e2e__match_ingestion", {"output_path": str(harness.workdir / "results")})
            if STARTS_IN_TRIGGERER:
                started = harness.run_dag("aib_e2e__start_from_trigger", dag_id=START_FROM_TRIGGER_DAG_ID)
    except HarnessError as exc:
        pytest.fail(f"{exc}\n{harness.failure_details()}\nprogress:\n" + "\n".join(progress))
    return E2ERun(harness, report, progress, started)


def test_the_dag_run_succeeded(e2e: E2ERun) -> None:
    report = e2e.report
    states = {task.label: task.state for task in report.tasks}
    # The whole summary on failure: task states, the failed tasks' errors and log paths.
    assert report.state == "success", "\n" + format_summary(report)
    # Every mapped task (create_video, wait_for_video, ..., whatever the example maps) ran once per match.
    mapped = {task.task_id for task in report.tasks if task.map_index >= 0}
    assert {"create_video", "wait_for_video", "summarize_video"} <= mapped, states
    for task_id in mapped:
        tasks = report.tasks_named(task_id)
        assert [t.map_index for t in tasks] == list(range(len(example_matches()))), states
        assert {t.state for t in tasks} == {"success"}, states
    assert {t.state for t in report.tasks_named("delete_video")} == {"skipped"}, "cleanup is off by default"
    assert {t.state for t in report.tasks} == {"success", "skipped"}, states


def test_each_sensor_waited_in_the_triggerer_and_ended_there(e2e: E2ERun) -> None:
    """One worker start per wait: the sensor pokes once and defers; its trigger polls in the triggerer
    process and ends the task there with its XComs (``task_end``), so no worker resumes it."""
    report = e2e.report
    triggerers = report.triggerer_job_ids
    assert triggerers, "the job table has no TriggererJob: the triggerer never ran"
    deferred = {task.label for task in report.deferred_tasks}
    sensors = {task.label for task in report.tasks_named("wait_for_video")}
    assert len(sensors) == len(example_matches())
    assert sensors <= deferred, "every video sensor deferred (the videos take seconds to prepare)"
    for task in report.deferred_tasks:  # the video and analysis sensors
        label = task.label
        assert task.state == "success", label
        # Deferring did not use up a retry.
        assert task.try_number == 1, label
        # One worker start: the one that deferred (Airflow's audit log, cross-checked with the task log).
        assert task.worker_starts == 1, label
        # The triggerer wrote this task's trigger log, named after the triggerer's job id, holding the
        # trigger's own status lines: the provider's trigger code ran in the triggerer process.
        assert task.trigger_logs, f"{label}: no trigger log"
        assert status_observations(task.trigger_lines), f"{label}: the trigger logged no status"
        assert any(ENDED_IN_TRIGGERER in line.message for line in task.trigger_lines), label
        # The worker never ran the trigger (dag.test() would have: it runs triggers in-process).
        assert not [line for line in task.worker_lines if FIRED_MARK.search(line.message)], label
        # DB evidence, sampled while the run was polled: the trigger row was held by a TriggererJob.
        assert report.trigger_assignments.get(label), f"{label}: its trigger row was never seen assigned"
        assert report.trigger_assignments[label] <= triggerers, label
        for deferral in task.deferrals:
            assert deferral.trigger_fired_at is not None, f"{label}: no trigger event in {task.trigger_logs}"
            assert deferral.deferred_at < deferral.trigger_fired_at, label
            # Ended by the trigger: no worker started the task again.
            assert deferral.resumed_at is None, f"{label} resumed in a worker: {task.worker_logs}"
            assert set(deferral.triggerer_job_ids) <= triggerers, (label, deferral.triggerer_job_ids, triggerers)
            # The trigger polled the API while the task was deferred.
            assert deferral.polls >= 1, label


def test_a_wait_ended_in_the_triggerer_left_the_xcoms_a_worker_would_have(e2e: E2ERun) -> None:
    """The same XComs as execute_complete pushes, readable as values (not a JSON string of them): the
    video, its mp4_source, and on Airflow 3 the extra link's stored URL; downstream tasks used them."""
    report = e2e.report
    by_id = {int(video["id"]): video for video in report.videos}
    for task in report.tasks_named("wait_for_video"):
        rows = e2e.harness.query(
            "SELECT key, value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = ? AND map_index = ?",
            (report.dag_id, report.run_id, task.task_id, task.map_index),
        )
        xcoms = {key: json.loads(value) for key, value in rows}
        video = xcoms.get("return_value")
        assert isinstance(video, dict), (task.label, xcoms)
        assert video["status"] == "available", task.label
        assert int(video["id"]) in by_id, task.label
        assert xcoms["mp4_source"] == video["mp4_source"], task.label
        if e2e.harness.major >= 3:  # Airflow 3's UI reads a finished task's links from XCom only
            assert xcoms["_link_AIOnTheBallVideoLink"] == video["mp4_source"], task.label
    assert {t.state for t in report.tasks_named("summarize_video")} == {"success"}, "they pulled the videos"


@pytest.mark.skipif(not STARTS_IN_TRIGGERER, reason="start_from_trigger with templated ids needs Airflow 3.3+")
def test_a_wait_started_in_the_triggerer_needs_no_worker_at_all(e2e: E2ERun) -> None:
    """``start_from_trigger=True``: the scheduler defers the sensor itself, the triggerer renders its
    templated video id, polls and ends it with its XComs (pulled by ``use_video``): 0 worker starts."""
    report = e2e.started_in_triggerer
    assert report is not None
    assert report.state == "success", "\n" + format_summary(report)
    (wait,) = report.tasks_named("wait_for_video")
    assert wait.state == "success"
    assert wait.try_number == 1
    assert wait.worker_starts == 0, f"a worker started the wait: {wait.worker_logs}"
    assert not wait.worker_logs, wait.worker_logs
    assert report.trigger_assignments.get(wait.label), "its trigger row was never seen assigned to a triggerer"
    assert any(ENDED_IN_TRIGGERER in line.message for line in wait.trigger_lines), wait.trigger_logs
    assert status_observations(wait.trigger_lines), "the trigger logged no status"
    (use,) = report.tasks_named("use_video")
    assert use.state == "success", "it pulled the video dict and its mp4_source"
    assert [t.worker_starts for t in report.tasks_named("create_video")] == [1]


def test_the_simulator_received_the_expected_requests(e2e: E2ERun) -> None:
    report = e2e.report
    matches = example_matches()
    assert report.requests, "the simulator logged no request"
    assert {r["token_org"] for r in report.requests} == {"org-1"}, "every request carried the connection's token"
    assert [r for r in report.requests if r["status"] is None or r["status"] >= 400] == []

    posts = report.requests_to("POST", "/videos")
    assert sorted(p["body"]["title"] for p in posts) == sorted(
        f"{m['home_team_name']} vs {m['away_team_name']}" for m in matches
    )
    assert sorted(p["body"]["video_file_url"] for p in posts) == sorted(m["video_file_url"] for m in matches)
    assert report.requests_to("DELETE", r"/videos/\d+") == [], "cleanup is off by default"

    assert len(report.videos) == len(matches)
    for video in report.videos:
        assert video["status"] == "available", video
        # At least the sensor's first poke (in the worker) and one poll by the trigger.
        assert len(report.requests_to("GET", f"/videos/{video['id']}")) >= 2, video["id"]
        seen = [status for _, status in report.transitions[f"video {video['id']}"]]
        assert seen[-1] == "available", seen


def test_nothing_is_left_running(e2e: E2ERun) -> None:
    harness = e2e.harness
    assert harness.stopped
    assert harness.leftovers == []
    for process in harness.processes:  # the simulator and each Airflow component, and their groups
        assert process.popen.returncode is not None, process.name
        assert group_members(process.pgid) == [], f"process group of {process.name} still has members"
    if not Path("/proc/self/stat").exists():
        pytest.skip("the process-tree checks read /proc (Linux)")
    # Every descendant seen while running (executor workers, task and trigger processes, ...), by pid and
    # start time so that a reused pid does not count.
    assert len(harness.tracked) > len(harness.processes)
    table = process_table()
    running = [
        pid for pid, start in harness.tracked if pid in table and table[pid].start == start and table[pid].running
    ]
    assert running == []
    # Children that left their process group would still carry the marker in their environment.
    assert marked_processes(harness.marker) == []


def test_the_summary_is_readable_and_the_token_stays_secret(e2e: E2ERun) -> None:
    summary = format_summary(e2e.report)
    for task in e2e.report.tasks:
        assert task.task_id in summary
    assert f"Run {e2e.report.run_id} of {e2e.report.dag_id}" in summary
    assert str(e2e.report.state).upper() in summary
    assert f"Deferred: {len(e2e.report.deferred_tasks)} task(s)" in summary
    assert TOKEN not in summary
    assert not [line for line in e2e.progress if TOKEN in line]
    leaked = []
    for directory, _, files in os.walk(e2e.harness.workdir):
        for name in files:
            path = Path(directory, name)
            if path.suffix in (".log", ".cfg") and TOKEN.encode() in path.read_bytes():
                leaked.append(path)
    assert leaked == []
