"""Layer 2, log parsing: Airflow's task and trigger log lines (text or JSON), worker starts, deferrals,
status observations, stray trigger lines.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from airflow_provider_aiontheball.statuses import AnalysisStatus, VideoStatus

#: What a task log says when a task defers (identical in Airflow 2.11 and 3.x).
DEFERRED_MARK = "Pausing task as DEFERRED"
#: Each execution of a task starts with one of these: a log group ("::group::Pre Execute" in Airflow
#: 3.2+, "::group::Pre task execution logs" in Airflow 2), or on Airflow 3.0 and 3.1, which have no
#: such group, the task runner loading the DAG bundles. The first one after a deferral is the resumption.
EXECUTION_START_MARKS = ("::group::Pre", "DAG bundles loaded")
#: Airflow's audit log (table ``log``) gets a row with this event each time a worker starts a task
#: instance: Airflow 2.11 in ``TaskInstance._check_and_change_state_before_execution``, Airflow 3 in the
#: execution API's ``ti_run`` (queued → running; a client repeating its request for the same start adds
#: none; 3.0 and 3.1 write no such row at all, and the task logs' starts count instead). A task the
#: triggerer ends (``TaskSuccessEvent``) gets none. It counts first starts, resumptions
#: after a deferral and retries alike, whatever the executor, so it is the count of worker starts.
WORKER_START_EVENT = "running"
#: The triggerer's line when a trigger yields its event ("Trigger fired event" / "Trigger ... fired: ...").
FIRED_MARK = re.compile(r"\bfired\b", re.IGNORECASE)
TRIGGER_LOG_NAME = re.compile(r"^attempt=(?P<attempt>\d+)\.log\.trigger\.(?P<job>\d+)\.log$")
WORKER_LOG_NAME = re.compile(r"^attempt=(?P<attempt>\d+)\.log$")
#: Airflow 2's text log format: ``[2025-01-01T12:00:00.123+0000] {file.py:12} INFO - message``.
TEXT_LOG_LINE = re.compile(r"^\[(?P<time>[^\]]+)\] \{[^}]*\} (?P<level>[A-Z]+) - (?P<message>.*)$")
#: A line the triggerer wrote to its own log (``processes/triggerer*.log``) through its fallback logger:
#: ``2026-12-04 19:17:21 [info     ] <message> [<logger>] [airflow.jobs.triggerer_job_runner] name='...'`` on
#: 3.0, ``2026-12-04T20:20:53.152296Z [info     ] <message> [<logger>] dag_id=... name='...'`` on 3.3.
#: Airflow 3's triggerer gets a trigger's log lines on one socket and its "finished" state change on
#: another; when the state change is handled first, the trigger's file logger is already closed and its
#: last lines (the final status, "Trigger fired event", "trigger completed") land here instead of in
#: ``attempt=N.log.trigger.JOB.log`` (seen on 3.0.6 and 3.3.2 on a loaded CI machine; apache/airflow#66158 is a
#: related report of lost trigger lines).
STRAY_TRIGGER_LINE = re.compile(
    r"^(?P<time>\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d+)?Z?)\s+\[(?P<level>[a-z]+)\s*\]\s+(?P<message>.*?)"
    r"\s+\[(?P<logger>[\w.]+)\](?:\s+\[airflow\.jobs\.triggerer_job_runner\])?(?P<fields>.*)$"
)
#: The provider's status lines: ``video 790: init``, ``video 790: init → downloading after 2 s``,
#: ``video 790 is available after 6 s`` (same for analyses); the status is checked against the vocabulary.
STATUS_LINE = re.compile(r"^(?P<kind>video|analysis) (?P<id>\d+)(?::| is) (?:.*→ )?(?P<status>[a-z_]+)")
KNOWN_STATUSES = {"video": {s.value for s in VideoStatus}, "analysis": {s.value for s in AnalysisStatus}}
#: API paths of one resource, to count the polls of each video/analysis in the simulator's request log.
RESOURCE_PATH = re.compile(r"^/(?P<kind>videos|analyses)/(?P<id>\d+)$")
ANY_ID = re.compile(r"/\d+")


def utc(value: str | dt.datetime | None) -> dt.datetime | None:
    """A timestamp from the DB (naive UTC text from SQLite, a datetime from PostgreSQL) or a log (ISO 8601
    with offset) as an aware datetime."""
    if not value:
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def seconds_between(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    return None if start is None or end is None else (end - start).total_seconds()


# --------------------------------------------------------------------------------------------------
# Logs
# --------------------------------------------------------------------------------------------------


def never_started(lines: Sequence[LogLine]) -> bool:
    """Whether a try's task log shows no execution start (a task handed to a worker that died before running it)."""
    return not any(mark in line.message for line in lines for mark in EXECUTION_START_MARKS)


def find_secrets(root: Path, secrets_: Iterable[str], patterns: Iterable[re.Pattern[bytes]] = ()) -> list[str]:
    """Files under ``root`` that contain any of ``secrets_`` or match any of ``patterns`` (secrets whose value is
    not known here, such as a signature made in a worker), as ``path: which``; the secret is not shown."""
    needles = [(f"secret #{index}", value.encode()) for index, value in enumerate(secrets_, start=1) if value]
    regexes = list(patterns)
    found = []
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        found += [f"{path}: {which}" for which, needle in needles if needle in data]
        found += [f"{path}: pattern {regex.pattern!r}" for regex in regexes if regex.search(data)]
    return found


@dataclass(frozen=True)
class LogLine:
    time: dt.datetime
    message: str
    level: str = "info"


def read_log_lines(path: Path) -> list[LogLine]:
    """Timestamped lines of a task or trigger log: JSON lines (Airflow 3) or text lines (Airflow 2).

    Lines without a timestamp (tracebacks, continuation lines) are skipped.
    """
    lines = []
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    for raw in text.splitlines():
        stamp: str | None = None
        message, level = "", "info"
        if raw.startswith("{"):
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if isinstance(record, dict):
                stamp, message, level = record.get("timestamp"), str(record.get("event", "")), str(record.get("level"))
                # Airflow 3 puts the exception in a structured field, not in the message.
                details = record.get("error_detail")
                if isinstance(details, list) and details and isinstance(details[-1], dict):
                    message += f": {details[-1].get('exc_type')}: {details[-1].get('exc_value')}"
        elif (match := TEXT_LOG_LINE.match(raw)) is not None:
            stamp, message, level = match["time"], match["message"], match["level"]
        when = utc(stamp)
        if when is not None:
            lines.append(LogLine(when, message, level.lower()))
    return lines


def stray_trigger_lines(path: Path, trigger_names: Iterable[str], resources: Iterable[str]) -> list[LogLine]:
    """The lines of one trigger that its triggerer wrote to its own log (see ``STRAY_TRIGGER_LINE``):
    Airflow's lines name the trigger (``name='<dag>/<run>/<task>/<map>/<try> (ID n)'``); the provider's
    trigger lines name their video or analysis (``analysis 1249 is done ...``)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    prefixes = tuple(f"{name} " for name in resources) + tuple(f"{name}:" for name in resources)
    named = tuple(f"name='{name} (ID " for name in trigger_names)
    lines = []
    for raw in text.splitlines():
        if (match := STRAY_TRIGGER_LINE.match(raw)) is None:
            continue
        message, logger = match["message"], match["logger"]
        ours = logger.startswith("airflow_provider_aiontheball.triggers") and message.startswith(prefixes)
        airflows = any(name in match["fields"] for name in named)
        if (ours or airflows) and (when := utc(match["time"])) is not None:
            lines.append(LogLine(when, message, match["level"]))
    return lines


def count_execution_starts(lines: Sequence[LogLine]) -> int:
    """How many times a worker started the task, read from its task log lines (``attempt=N.log``; one
    attempt's file holds the first start and every resumption after a deferral): each execution opens
    with a "::group::Pre ..." line (Airflow 2.11 and 3.2+); Airflow 3.0 and 3.1 have no such group, and
    their task runner logs "DAG bundles loaded" once per execution instead."""
    groups = sum(1 for line in lines if EXECUTION_START_MARKS[0] in line.message)
    if groups:
        return groups
    return sum(1 for line in lines if EXECUTION_START_MARKS[1] in line.message)


def status_observations(lines: Sequence[LogLine]) -> list[tuple[str, dt.datetime, str]]:
    """(resource name, time, status) for every provider status line, e.g. ("video 790", t, "downloading")."""
    seen = []
    for line in lines:
        match = STATUS_LINE.match(line.message)
        if match is not None and match["status"] in KNOWN_STATUSES[match["kind"]]:
            seen.append((f"{match['kind']} {match['id']}", line.time, match["status"]))
    return seen
