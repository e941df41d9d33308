"""Layer 3, reporting: what one DAG run did (:class:`RunReport`), and its printed summary."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aib_harness.logs import ANY_ID, RESOURCE_PATH, LogLine, seconds_between

#: States whose task log holds an error worth showing (upstream_failed tasks never ran: no log).
FAILED_TASK_STATES = frozenset({"failed", "up_for_retry"})
#: Task-instance states worth a progress line when their counts change (not the running/queued churn).
PROGRESS_STATES = ("success", "deferred", "up_for_retry", "failed", "upstream_failed", "skipped")


# --------------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------------


@dataclass
class Deferral:
    """One deferral of a task: from the worker's "Pausing task as DEFERRED" to the next execution start.

    ``trigger_*`` come from the trigger log lines the triggerer wrote inside that window; ``polls`` counts
    the simulator's GETs of the task's resources inside it (the trigger's polls).
    """

    deferred_at: dt.datetime
    resumed_at: dt.datetime | None
    trigger_started_at: dt.datetime | None = None
    trigger_fired_at: dt.datetime | None = None
    triggerer_job_ids: tuple[int, ...] = ()
    polls: int = 0
    #: When the task ended without resuming (the trigger ended it): its end date.
    ended_at: dt.datetime | None = None

    @property
    def seconds_deferred(self) -> float | None:
        """Time without a worker: deferral until the task resumed in a worker, or ended in the triggerer."""
        return seconds_between(self.deferred_at, self.resumed_at or self.ended_at)

    @property
    def seconds_in_triggerer(self) -> float | None:
        """Time the wait spent in the triggerer: deferral until the trigger fired its event."""
        return seconds_between(self.deferred_at, self.trigger_fired_at)


def task_label(task_id: str, map_index: int) -> str:
    """``create_video[2]`` for a mapped task instance, ``create_video`` for an unmapped one."""
    return task_id if map_index < 0 else f"{task_id}[{map_index}]"


@dataclass
class TaskReport:
    """One task instance (one map index) of the run."""

    task_id: str
    map_index: int
    state: str | None
    try_number: int
    start_date: dt.datetime | None
    end_date: dt.datetime | None
    duration: float | None
    worker_logs: list[Path] = field(default_factory=list)
    trigger_logs: list[Path] = field(default_factory=list)
    worker_lines: list[LogLine] = field(default_factory=list)
    trigger_lines: list[LogLine] = field(default_factory=list)
    deferrals: list[Deferral] = field(default_factory=list)
    #: The resources this task logged statuses of, e.g. ["video 790"].
    resources: list[str] = field(default_factory=list)
    #: Times a worker started this task instance — the first start, each resumption after a deferral,
    #: each retry — from Airflow's audit log (see ``WORKER_START_EVENT``).
    worker_starts: int = 0
    #: The same count read from the task logs (``count_execution_starts``), as a cross-check.
    logged_starts: int = 0

    @property
    def ended_in_triggerer(self) -> bool:
        """Deferred, and finished without resuming on a worker (the trigger ended the task)."""
        return bool(self.deferrals) and self.deferrals[-1].resumed_at is None and self.state in ("success", "skipped")

    @property
    def label(self) -> str:
        return task_label(self.task_id, self.map_index)

    @property
    def errors(self) -> list[str]:
        """The error lines of the task's worker logs (with the exception, on Airflow 3)."""
        return [line.message for line in self.worker_lines if line.level in ("error", "critical")]


@dataclass
class RunReport:
    """Everything the demo prints and the e2e test asserts about one DAG run."""

    airflow_version: str
    dag_id: str
    run_id: str
    #: The run's state in the DB when the report was made.
    state: str | None
    #: What waiting for the run ended with: its final state, or "up_for_retry" (see ``fail_on_retry``).
    outcome: str | None
    start_date: dt.datetime | None
    end_date: dt.datetime | None
    tasks: list[TaskReport]
    #: Ids of the TriggererJob rows in the job table (the triggerer processes of this Airflow).
    triggerer_job_ids: set[int]
    #: task label -> triggerer job ids seen on the task's trigger row while the run was polled.
    trigger_assignments: dict[str, set[int]]
    #: The simulator's request log (method, path, status, time on its monotonic clock, token_org, body).
    requests: list[dict[str, Any]]
    #: The simulator's videos at the end (``GET /videos``, every page).
    videos: list[dict[str, Any]]
    #: resource name ("video 790") -> [(time, status)], statuses seen in the task and trigger logs.
    transitions: dict[str, list[tuple[dt.datetime, str]]]
    workdir: Path
    process_logs: dict[str, Path]
    #: task label -> the create operator's XCom ``preflight``: what its checks before upload measured.
    preflight: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def duration(self) -> float | None:
        return seconds_between(self.start_date, self.end_date)

    def tasks_named(self, task_id: str) -> list[TaskReport]:
        return sorted((t for t in self.tasks if t.task_id == task_id), key=lambda t: t.map_index)

    def requests_to(self, method: str, path_pattern: str) -> list[dict[str, Any]]:
        """Requests with this method whose path fully matches the regular expression."""
        pattern = re.compile(path_pattern)
        return [r for r in self.requests if r["method"] == method and pattern.fullmatch(r["path"])]

    @property
    def deferred_tasks(self) -> list[TaskReport]:
        return [t for t in self.tasks if t.deferrals]

    @property
    def worker_starts(self) -> int:
        """Worker starts of every task instance of the run (see ``TaskReport.worker_starts``)."""
        return sum(t.worker_starts for t in self.tasks)

    @property
    def worker_starts_by_task(self) -> list[TaskStarts]:
        """Worker starts per task id (all its map indexes), in the order the tasks first ran."""
        by_task: dict[str, TaskStarts] = {}
        for task in self.tasks:
            entry = by_task.setdefault(task.task_id, TaskStarts(task.task_id))
            entry.instances += 1
            entry.worker_starts += task.worker_starts
            entry.logged_starts += task.logged_starts
            entry.deferred += bool(task.deferrals)
            entry.ended_in_triggerer += task.ended_in_triggerer
        return list(by_task.values())


@dataclass
class TaskStarts:
    """Worker starts of one task id over its task instances (map indexes)."""

    task_id: str
    instances: int = 0
    worker_starts: int = 0
    logged_starts: int = 0
    #: Task instances that deferred at least once, and those of them the triggerer ended.
    deferred: int = 0
    ended_in_triggerer: int = 0

    @property
    def per_instance(self) -> float | None:
        return self.worker_starts / self.instances if self.instances else None


# --------------------------------------------------------------------------------------------------
# The summary
# --------------------------------------------------------------------------------------------------


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _span(values: list[float]) -> str:
    """ "6.2 s" or "6.1-6.4 s" ("?" when empty)."""
    if not values:
        return "?"
    low, high = f"{min(values):.1f}", f"{max(values):.1f}"
    return f"{low} s" if low == high else f"{low}-{high} s"


def _table(rows: list[list[str]], right_aligned: Collection[int] = ()) -> list[str]:
    """Rows as aligned text columns, indented by two spaces; the first row is the header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell.rjust(widths[i]) if i in right_aligned else cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append(("  " + "  ".join(cells)).rstrip())
    return lines


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def format_worker_starts(report: RunReport) -> list[str]:
    """Worker starts per task id, e.g. "wait_for_video: 3 task instances, 6 worker starts (2.0 per wait)":
    what each task cost in worker processes, and above all what a deferred wait cost."""
    by_task = report.worker_starts_by_task
    out = [
        f"Worker starts: {_plural(report.worker_starts, 'worker start')} for "
        f"{_plural(sum(t.instances for t in by_task), 'task instance')} (a worker process ran the task: "
        "its first start, each resumption after a deferral, each retry; from Airflow's audit log)."
    ]
    for task in by_task:
        line = f"  {task.task_id}: {_plural(task.instances, 'task instance')}, {_plural(task.worker_starts, 'worker start')}"
        if task.deferred and task.per_instance is not None:
            ended = f", {task.ended_in_triggerer} ended by the triggerer" if task.ended_in_triggerer else ""
            line += f" ({task.per_instance:.1f} per wait; {task.deferred} deferred{ended})"
        if task.logged_starts != task.worker_starts:
            line += f" [the task logs show {_plural(task.logged_starts, 'start')}]"
        out.append(line)
    return out


def format_preflight(report: RunReport) -> list[str]:
    """The checks before upload, one line per create task: the URL as logged (no query) and the figures."""
    if not report.preflight:
        return []
    out = [f"Checks before upload: {_plural(len(report.preflight), 'video')} checked, each before its POST"]
    for label, figures in sorted(report.preflight.items(), key=lambda item: _label_order(item[0])):
        out.append(f"  {label}: {figures.get('url')}")
        out.append(f"    {figures.get('summary')}")
    return out


def _label_order(label: str) -> tuple[str, int]:
    task_id, _, index = label.partition("[")
    return task_id, int(index.rstrip("]") or -1)


def format_summary(report: RunReport) -> str:
    """A short, readable summary of a run: tasks, deferrals, videos, API requests."""
    state = (report.state or "not found").upper()
    if report.outcome and report.outcome != report.state:
        state += f" (stopped waiting: a task is {report.outcome})"
    elif report.duration is not None:
        state += f" in {_seconds(report.duration)}"
    out = [f"Run {report.run_id} of {report.dag_id} on Airflow {report.airflow_version}: {state}", ""]
    rows = [["task", "map", "state", "try", "duration", "deferred", "in triggerer", "trigger polls"]]
    for task in report.tasks:
        rows.append(
            [
                task.task_id,
                "-" if task.map_index < 0 else str(task.map_index),
                task.state or "none",
                str(task.try_number),
                _seconds(task.duration),
                _seconds(sum(d.seconds_deferred or 0 for d in task.deferrals)) if task.deferrals else "",
                _seconds(sum(d.seconds_in_triggerer or 0 for d in task.deferrals)) if task.deferrals else "",
                str(sum(d.polls for d in task.deferrals)) if task.deferrals else "",
            ]
        )
    out += _table(rows, right_aligned={1, 3, 4, 5, 6, 7})
    failed = [t for t in report.tasks if t.state in FAILED_TASK_STATES]
    if failed:
        out += ["", "Errors:"]
        for task in failed:
            error = task.errors[-1] if task.errors else "(no error line in its log)"
            out.append(f"  {task.label} ({task.state}): {error[:400]}")
            out += [f"    log: {path}" for path in task.worker_logs[-1:]]

    deferred = report.deferred_tasks
    out.append("")
    if deferred:
        deferrals = [d for t in deferred for d in t.deferrals]
        in_triggerer = [d.seconds_in_triggerer for d in deferrals if d.seconds_in_triggerer is not None]
        jobs = sorted({job for d in deferrals for job in d.triggerer_job_ids})
        out += [
            f"Deferred: {len(deferred)} task(s), {len(deferrals)} deferral(s), "
            f"{sum(d.seconds_deferred or 0 for d in deferrals):.1f} s in total without holding a worker slot.",
            f"  Their triggers ran in the triggerer process (job {', '.join(map(str, jobs)) or '?'}): "
            f"{_span(in_triggerer)} each from the deferral until the trigger fired.",
            "  deferred = from the task's deferral to its next start in a worker (or to its end, when the triggerer "
            "ended it); in triggerer = from the deferral to the trigger's event;",
            "  trigger polls = the API requests for the task's video/analysis while it was deferred.",
        ]
    else:
        out.append("Deferred: no task deferred.")

    out.append("")
    out += format_worker_starts(report)

    out.append("")
    polls: Counter[str] = Counter()  # "video 790" -> GET /videos/790 count
    for record in report.requests:
        match = RESOURCE_PATH.match(record["path"])
        if record["method"] == "GET" and match is not None:
            polls[f"{'video' if match['kind'] == 'videos' else 'analysis'} {match['id']}"] += 1

    def seen(name: str) -> str:
        return " → ".join(status for _, status in report.transitions.get(name, [])) or "-"

    videos = sorted(report.videos, key=lambda v: int(v["id"]))
    out.append(f"Videos created: {len(report.requests_to('POST', '/videos'))}")
    if videos:
        rows = [["id", "title", "status at the end", "GETs", "statuses seen (task and trigger logs)"]]
        for video in videos:
            name = f"video {video['id']}"
            rows.append(
                [
                    str(video["id"]),
                    str(video.get("title") or "-"),
                    str(video.get("status")),
                    str(polls[name]),
                    seen(name),
                ]
            )
        out += _table(rows, right_aligned={0, 3})
    analyses = [
        (analysis, video) for video in videos for analysis in video.get("analyses") or [] if isinstance(analysis, dict)
    ]
    analysis_posts = report.requests_to("POST", r"/videos/\d+/analysis")
    out.append(f"Analyses created: {len(analysis_posts)}")
    if analyses:
        rows = [["id", "video", "status at the end", "GETs", "statuses seen (task and trigger logs)"]]
        for analysis, video in sorted(analyses, key=lambda item: int(item[0]["id"])):
            name = f"analysis {analysis['id']}"
            rows.append(
                [str(analysis["id"]), str(video["id"]), str(analysis.get("status")), str(polls[name]), seen(name)]
            )
        out += _table(rows, right_aligned={0, 1, 3})
    out += format_preflight(report)
    endpoints = Counter(f"{r['method']} {ANY_ID.sub('/{id}', r['path'])}" for r in report.requests)
    out.append("API requests: " + ", ".join(f"{n} {endpoint}" for endpoint, n in endpoints.most_common()))
    return "\n".join(out)
