"""Resuming a deferred task on the worker: what the trigger's event means to the task (``execute_complete``).

The counterpart of :mod:`~airflow_provider_aiontheball.task_end` (ending the task in the triggerer) and
:mod:`~airflow_provider_aiontheball.task_start` (starting it there). :func:`raise_for` is also the one mapping
of an unsuccessful wait to an exception for the in-process loops (:func:`~airflow_provider_aiontheball.waiting.poll`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn

from airflow_provider_aiontheball.exceptions import AIOnTheBallTerminalError, AIOnTheBallWaitError
from airflow_provider_aiontheball.waiting import EventStatus

__all__ = ["raise_for", "result_from_event"]


def raise_for(
    status: str, message: str, on_timeout: Callable[[str], BaseException], cause: BaseException | None = None
) -> NoReturn:
    """Raise what a finished, unsuccessful wait means to the task: the one mapping for every path.

    :raises AIOnTheBallTerminalError: ``failed`` (no retries).
    :raises on_timeout(message): ``timeout`` (a sensor raises Airflow's sensor timeout so ``soft_fail``
        applies; an operator a retryable error).
    :raises AIOnTheBallWaitError: ``error``, or anything unexpected.
    """
    if status == EventStatus.FAILED:
        raise AIOnTheBallTerminalError(message) from cause
    if status == EventStatus.TIMEOUT:
        raise on_timeout(message) from cause
    raise AIOnTheBallWaitError(message) from cause


def result_from_event(
    event: dict[str, Any] | None, kind: str, on_timeout: Callable[[str], BaseException]
) -> dict[str, Any]:
    """Interpret a trigger event when a deferred task resumes. Fails closed: only ``success`` passes.

    :param kind: ``"video"`` or ``"analysis"``: the key holding the resource in a success event.
    :param on_timeout: builds the exception for a ``timeout`` event (see :func:`raise_for`).
    """
    payload = event if isinstance(event, dict) else {}
    status = payload.get("status")
    message = payload.get("message") or f"unexpected trigger event {event!r}"
    if status == EventStatus.SUCCESS and isinstance(payload.get(kind), dict):
        return dict(payload[kind])
    raise_for(str(status), message, on_timeout)
