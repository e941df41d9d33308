"""Counting worker starts in the real-process harness (``aib_harness/airflow.py``), without Airflow.

``make demo`` prints, and ``benchmarks/bench_deployment.py`` divides by N, how many times a worker
process started each task instance. The count comes from Airflow's audit log (table ``log``, one
``running`` row per start on Airflow 2.11 and 3.x) and is cross-checked against the task logs (one
"::group::Pre ..." line per execution). Both are read here from samples of what Airflow 3.3.2 and 2.11.2
wrote in real runs.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from aib_harness.airflow import AirflowHarness, HarnessConfig
from aib_harness.logs import (
    WORKER_START_EVENT,
    LogLine,
    count_execution_starts,
    read_log_lines,
    status_observations,
    stray_trigger_lines,
    utc,
)
from aib_harness.report import Deferral, RunReport, TaskReport, format_worker_starts

DAG_ID = "example_aiontheball_match_ingestion"
RUN_ID = "aib_demo__20261203T115627"


def _json_line(timestamp: str, event: str, **extra: object) -> str:
    return json.dumps({"timestamp": timestamp, "level": "info", "event": event, "logger": "task", **extra})


#: A deferred sensor on Airflow 3.3.2 (attempt=1.log): poke, defer, resume, succeed. Every execution logs
#: "DAG bundles loaded" as well, which must not be counted a second time.
AIRFLOW_3_DEFERRED = [
    _json_line("2026-12-03T11:56:58.544548Z", "::group::Pre Execute"),
    _json_line("2026-12-03T11:56:58.568566Z", "DAG bundles loaded: dags-folder", map_index=0),
    _json_line("2026-12-03T11:56:58.965814Z", "Worker startup parse complete"),
    _json_line("2026-12-03T11:56:59.209290Z", "::endgroup::"),
    _json_line("2026-12-03T11:57:00.211462Z", "video 790: downloading"),
    _json_line("2026-12-03T11:57:00.222061Z", "::group::Post Execute"),
    _json_line("2026-12-03T11:57:00.228866Z", "Pausing task as DEFERRED. "),
    _json_line("2026-12-03T11:57:00.380294Z", "::endgroup::"),
    _json_line("2026-12-03T11:57:08.812685Z", "::group::Pre Execute"),
    _json_line("2026-12-03T11:57:08.880958Z", "DAG bundles loaded: dags-folder", map_index=0),
    _json_line("2026-12-03T11:57:10.079596Z", "video 790 is available after 7 s"),
    _json_line("2026-12-03T11:57:10.145551Z", "::group::Post Execute"),
    _json_line("2026-12-03T11:57:10.457959Z", "::endgroup::"),
]

#: The same on Airflow 2.11.2 (text lines).
AIRFLOW_2_DEFERRED = [
    "[2026-12-03T11:58:33.397+0000] {local_task_job_runner.py:123} INFO - ::group::Pre task execution logs",
    "[2026-12-03T11:58:33.448+0000] {taskinstance.py:2885} INFO - Starting attempt 1 of 3",
    "[2026-12-03T11:58:33.977+0000] {taskinstance.py:297} INFO - Pausing task as DEFERRED. dag_id=x, task_id=y",
    "[2026-12-03T11:58:33.978+0000] {taskinstance.py:349} INFO - ::group::Post task execution logs",
    "[2026-12-03T11:58:33.991+0000] {local_task_job_runner.py:245} INFO - ::endgroup::",
    "[2026-12-03T11:59:08.719+0000] {local_task_job_runner.py:123} INFO - ::group::Pre task execution logs",
    "[2026-12-03T11:59:08.775+0000] {taskinstance.py:2883} INFO - Resuming after deferral",
    "[2026-12-03T11:59:09.053+0000] {taskinstance.py:349} INFO - ::group::Post task execution logs",
]


def _lines(raw: list[str], tmp_path: Path) -> list[LogLine]:
    path = tmp_path / "attempt=1.log"
    path.write_text("\n".join(raw) + "\n")
    return read_log_lines(path)


@pytest.mark.parametrize("raw", [AIRFLOW_3_DEFERRED, AIRFLOW_2_DEFERRED], ids=["airflow-3.3", "airflow-2.11"])
def test_a_deferred_and_resumed_task_started_twice(raw: list[str], tmp_path: Path) -> None:
    assert count_execution_starts(_lines(raw, tmp_path)) == 2


def test_a_task_the_triggerer_ended_started_once(tmp_path: Path) -> None:
    # The trigger ended the task (TaskSuccessEvent): its worker log stops after the deferral.
    assert count_execution_starts(_lines(AIRFLOW_3_DEFERRED[:8], tmp_path)) == 1


def test_airflow_3_0_and_3_1_are_counted_by_their_bundle_lines(tmp_path: Path) -> None:
    # No "::group::Pre Execute" there; the task runner logs "DAG bundles loaded" once per execution.
    raw = [line for line in AIRFLOW_3_DEFERRED if "::group::" not in line]
    assert count_execution_starts(_lines(raw, tmp_path)) == 2


#: What Airflow 3.0.6's triggerer wrote to its own stdout (processes/triggerer.log) in a CI run, when it
#: handled a trigger's "finished" state change before the trigger's last log lines: the lines of trigger
#: ID 6 (analysis 1249) that its attempt=1.log.trigger.2.log lacks, between lines of other triggers.
TRIGGERER_STDOUT = [
    "[2026-12-04T19:16:37.845+0000] {plugins.py:37} INFO - setup plugin alembic.autogenerate.schemas",
    "2026-12-04 19:17:19 [info     ] analysis 1247 is done after 22 s; the task succeeds here, in the "
    "triggerer, without resuming on a worker. [airflow_provider_aiontheball.triggers.analysis."
    "AIOnTheBallAnalysisTrigger] [airflow.jobs.triggerer_job_runner]",
    "2026-12-04 19:17:21 [info     ] analysis 1249 is done after 23 s; the task succeeds here, in the "
    "triggerer, without resuming on a worker. [airflow_provider_aiontheball.triggers.analysis."
    "AIOnTheBallAnalysisTrigger] [airflow.jobs.triggerer_job_runner]",
    "2026-12-04 19:17:21 [info     ] Trigger fired event            [airflow.jobs.triggerer_job_runner] "
    f"name='{DAG_ID}/run/wait_for_analysis/2/1 (ID 6)' result=\"TriggerEvent<{{'status': 'success'}}>\"",
    f"2026-12-04 19:17:21 [info     ] trigger completed              [airflow.jobs.triggerer_job_runner] "
    f"name='{DAG_ID}/run/wait_for_analysis/2/1 (ID 6)'",
    f"2026-12-04 19:17:22 [info     ] trigger completed              [airflow.jobs.triggerer_job_runner] "
    f"name='{DAG_ID}/run/wait_for_analysis/12/1 (ID 9)'",
]


#: The same on Airflow 3.3.2 (processes/triggerer-1.log of a make e2e-distributed run): ISO timestamps,
#: and the provider's lines without the runner's logger name.
TRIGGERER_STDOUT_3_3 = [
    "2026-12-04T20:20:53.152296Z [info     ] video 809 is available after 4 s; the task succeeds here, in the "
    "triggerer, without resuming on a worker. [airflow_provider_aiontheball.triggers.video.AIOnTheBallVideoTrigger] "
    f"dag_id={DAG_ID} loc=triggerer_job_runner.py:1046 map_index=19 run_id=run task_id=wait_for_video try_number=1",
    "2026-12-04T20:20:53.152563Z [info     ] Trigger fired event            [airflow.jobs.triggerer_job_runner] "
    f"dag_id={DAG_ID} loc=triggerer_job_runner.py:1046 map_index=19 name='{DAG_ID}/run/wait_for_video/19/1 (ID 60)' "
    "result=\"TriggerEvent<{'status': 'success'}>\"",
    "2026-12-04T20:20:53.152852Z [info     ] trigger completed              [airflow.jobs.triggerer_job_runner] "
    f"dag_id={DAG_ID} map_index=19 name='{DAG_ID}/run/wait_for_video/19/1 (ID 60)' try_number=1",
    "2026-12-04T20:20:54.000001Z [info     ] video 8090: available [airflow_provider_aiontheball.triggers.video."
    "AIOnTheBallVideoTrigger] map_index=1",
    "2026-12-04T20:20:55.152852Z [info     ] trigger completed              [airflow.jobs.triggerer_job_runner] "
    f"name='{DAG_ID}/run/wait_for_video/19/2 (ID 61)'",
]


@pytest.mark.parametrize(
    ("raw", "trigger", "resource", "first_time"),
    [
        (TRIGGERER_STDOUT, "wait_for_analysis/2/1", "analysis 1249", "2026-12-04T19:17:21"),
        (TRIGGERER_STDOUT_3_3, "wait_for_video/19/1", "video 809", "2026-12-04T20:20:53.152296Z"),
    ],
    ids=["airflow-3.0", "airflow-3.3"],
)
def test_a_triggers_last_lines_are_found_in_the_triggerers_own_log(
    raw: list[str], trigger: str, resource: str, first_time: str, tmp_path: Path
) -> None:
    """Lines of one trigger that went to the triggerer's stdout: its own (by resource) and Airflow's (by
    trigger name); none of another trigger (another map index or try, another video or analysis)."""
    path = tmp_path / "triggerer.log"
    path.write_text("\n".join(raw) + "\n")
    lines = stray_trigger_lines(path, [f"{DAG_ID}/run/{trigger}"], [resource])
    assert [line.message.split(" after ")[0] for line in lines] == [
        f"{resource} is {'done' if resource.startswith('analysis') else 'available'}",
        "Trigger fired event",
        "trigger completed",
    ]
    assert "the task succeeds here, in the triggerer" in lines[0].message
    assert lines[0].time == utc(first_time)
    assert len(status_observations(lines)) == 1, "read as a status line"


def _audit_db(path: Path, rows: list[tuple[str, str, str, int | None, str]]) -> None:
    """A metadata DB with Airflow's audit-log table (the columns the harness reads, as in 2.11 and 3.x)."""
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE log (id INTEGER PRIMARY KEY, dttm TEXT, dag_id TEXT, task_id TEXT, map_index INTEGER, "
            "event TEXT, run_id TEXT, try_number INTEGER, extra TEXT)"
        )
        db.executemany("INSERT INTO log (dag_id, run_id, task_id, map_index, event) VALUES (?, ?, ?, ?, ?)", rows)


def test_worker_starts_come_from_the_audit_log(tmp_path: Path) -> None:
    harness = AirflowHarness(HarnessConfig(workdir=tmp_path / "run"))
    harness.db_path = tmp_path / "airflow.db"
    running = WORKER_START_EVENT
    _audit_db(
        harness.db_path,
        [
            (DAG_ID, RUN_ID, "matches_to_ingest", -1, running),
            (DAG_ID, RUN_ID, "matches_to_ingest", -1, "success"),
            # A deferred wait: started, deferred, resumed.
            (DAG_ID, RUN_ID, "wait_for_video", 0, running),
            (DAG_ID, RUN_ID, "wait_for_video", 0, "deferred"),
            (DAG_ID, RUN_ID, "wait_for_video", 0, running),
            # Ended by the triggerer: one start.
            (DAG_ID, RUN_ID, "wait_for_video", 1, running),
            # Airflow 2's CLI rows carry no run id; another run's and another DAG's starts are not this run's.
            (DAG_ID, None, "wait_for_video", None, "cli_task_run"),  # type: ignore[list-item]
            (DAG_ID, "another_run", "wait_for_video", 0, running),
            ("another_dag", RUN_ID, "wait_for_video", 0, running),
        ],
    )
    assert harness.worker_starts(DAG_ID, RUN_ID) == {
        ("matches_to_ingest", -1): 1,
        ("wait_for_video", 0): 2,
        ("wait_for_video", 1): 1,
    }


def _task(task_id: str, map_index: int, starts: int, *, deferred: bool = False, resumed: bool = True) -> TaskReport:
    task = TaskReport(task_id, map_index, "success", 1, None, None, 1.0, worker_starts=starts, logged_starts=starts)
    if deferred:
        at = utc("2026-12-03T11:57:00Z")
        assert at is not None
        task.deferrals.append(Deferral(deferred_at=at, resumed_at=at if resumed else None))
    return task


def _report(tasks: list[TaskReport]) -> RunReport:
    return RunReport(
        "3.3.2", DAG_ID, RUN_ID, "success", "success", None, None, tasks, set(), {}, [], [], {}, Path("."), {}
    )


def test_the_summary_shows_what_a_deferred_wait_cost() -> None:
    report = _report(
        [
            _task("matches_to_ingest", -1, 1),
            *(_task("wait_for_video", i, 2, deferred=True) for i in range(3)),
            *(_task("wait_for_analysis", i, 1, deferred=True, resumed=False) for i in range(2)),
        ]
    )
    assert report.worker_starts == 9
    lines = format_worker_starts(report)
    assert lines[0].startswith("Worker starts: 9 worker starts for 6 task instances")
    assert "  matches_to_ingest: 1 task instance, 1 worker start" in lines
    assert "  wait_for_video: 3 task instances, 6 worker starts (2.0 per wait; 3 deferred)" in lines
    assert (
        "  wait_for_analysis: 2 task instances, 2 worker starts (1.0 per wait; 2 deferred, 2 ended by the triggerer)"
        in lines
    )


def test_the_summary_flags_task_logs_that_disagree_with_the_audit_log() -> None:
    task = _task("wait_for_video", 0, 2, deferred=True)
    task.logged_starts = 1
    (line,) = format_worker_starts(_report([task]))[1:]
    assert line.endswith("[the task logs show 1 start]")
