"""``execution_timeout`` while deferred (Airflow 3 does not apply it): the deadline a deferred wait is given
(:class:`DeferralLimit`), whether it ran out, and the ``AirflowTaskTimeout`` a resumed task raises then."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["DeferralLimit", "execution_deadline", "execution_timed_out", "task_timeout_error", "timeout_error"]


@dataclass(frozen=True)
class DeferralLimit:
    """When a deferred wait must end: its ``end_time`` for the trigger (epoch seconds) and the same moment
    as the ``timeout`` for ``self.defer``.

    The wait's own ``timeout`` counts from now; the task's ``execution_timeout`` counts from the start of
    this try — Airflow documents it "over the total runtime, not individual executions in-between
    deferrals" — so the earlier of the two ends the wait. Airflow 2 caps a deferral at the execution
    timeout itself; Airflow 3 (3.0-3.3, "TODO: handle timeout in case of deferral" in its task runner)
    does not, and a deferred task would wait past its ``execution_timeout``.
    """

    end_time: float
    timeout: dt.timedelta
    execution_deadline: float | None = None

    @classmethod
    def of(cls, task: Any, context: Any, timeout_seconds: float, now: float | None = None) -> DeferralLimit:
        now = time.time() if now is None else now
        end_time = now + timeout_seconds
        deadline = execution_deadline(task, context)
        if deadline is None and getattr(task, "execution_timeout", None):
            # No start date to count from (Airflow 2's dag.test()): count from now, a little late, never lost.
            deadline = now + task.execution_timeout.total_seconds()
        if deadline is not None:
            end_time = min(end_time, deadline)
        return cls(end_time, dt.timedelta(seconds=max(0.0, end_time - now)), deadline)


def execution_deadline(task: Any, context: Any) -> float | None:
    """The epoch second at which this try's ``execution_timeout`` runs out, or ``None`` without one.

    Counted from the task instance's ``start_date``, which Airflow keeps when a task resumes from a
    deferral (2.x and 3.x).
    """
    execution_timeout = getattr(task, "execution_timeout", None)
    started = getattr(context.get("ti") if context else None, "start_date", None)
    if not execution_timeout or not isinstance(started, dt.datetime):
        return None
    if started.tzinfo is None:  # Airflow stores UTC
        started = started.replace(tzinfo=dt.UTC)
    return started.timestamp() + execution_timeout.total_seconds()


def execution_timed_out(task: Any, context: Any, deadline: float | None = None, now: float | None = None) -> bool:
    """Whether this try's ``execution_timeout`` has run out (never, without one).

    :param deadline: the deadline the task deferred with (its trigger echoes it in the event); default:
        counted from the task instance's ``start_date``.
    """
    deadline = execution_deadline(task, context) if deadline is None else deadline
    return deadline is not None and (time.time() if now is None else now) >= deadline


def timeout_error(
    task: Any,
    context: Any,
    wait_timeout: Callable[[str], BaseException],
    event: dict[str, Any] | None = None,
) -> Callable[[str], BaseException]:
    """What a timed-out deferred wait raises: Airflow's ``AirflowTaskTimeout`` once the task's
    ``execution_timeout`` has run out (retries apply, ``soft_fail`` does not: as for any task that runs
    too long), else ``wait_timeout`` (the sensor's timeout, or the operator's retryable wait error)."""
    # The trigger echoes the deadline it was given: not every Airflow keeps the try's start_date when a task
    # resumes (dag.test() on 3.3 starts it anew), so the event is the reliable witness.
    deadline = event.get("execution_deadline") if isinstance(event, dict) else None
    if not execution_timed_out(task, context, deadline if isinstance(deadline, int | float) else None):
        return wait_timeout
    return lambda message: task_timeout_error(task, message)


def task_timeout_error(task: Any, message: str) -> BaseException:
    """Airflow's ``AirflowTaskTimeout`` for a deferred wait the task's ``execution_timeout`` ended."""
    from airflow.providers.common.compat.sdk import AirflowTaskTimeout

    return AirflowTaskTimeout(f"execution_timeout ({task.execution_timeout}) exceeded while deferred: {message}")
