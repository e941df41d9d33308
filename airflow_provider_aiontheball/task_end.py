"""How a finished wait ends its task: in the triggerer (:func:`trigger_event`), or on the worker when the
task resumes (:func:`result_from_event`; :func:`raise_for`, the one mapping of an unsuccessful wait to an
exception, also for the in-process loops).

Ending in the triggerer saves a worker start: on success (and on a ``soft_fail`` sensor's timeout) our
triggers end the task with ``TaskSuccessEvent`` / ``TaskSkippedEvent`` and the XComs ``execute_complete``
would push; everything else resumes on the worker. Not with ``outlets``, ``multiple_outputs``, OpenLineage
or ``finish_in_triggerer=False``. Why, and what Airflow does underneath: docs/internals.md, "Ending a wait
in the triggerer".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

import airflow

from airflow_provider_aiontheball.exceptions import AIOnTheBallTerminalError, AIOnTheBallWaitError

if TYPE_CHECKING:
    from airflow.triggers.base import TriggerEvent

    from airflow_provider_aiontheball.waiting import Decision, WaitPolicy

__all__ = ["bad_input_event", "finish_spec", "raise_for", "result_from_event", "trigger_event"]


def finish_spec(task: Any, context: Any, *, sensor: bool = False) -> dict[str, bool] | None:
    """What the trigger needs to end ``task`` itself (its ``finish_in_triggerer`` kwarg), or ``None``
    when the task must resume on a worker (module doc).

    :param sensor: ``task`` is a sensor: a timeout skips it when it has ``soft_fail`` (or ``never_fail``);
        an operator's timeout is a retryable failure, which resumes on a worker.
    """
    soft_fail = sensor and bool(getattr(task, "soft_fail", False) or getattr(task, "never_fail", False))
    if not getattr(task, "finish_in_triggerer", True):
        return None
    if getattr(task, "outlets", None) or getattr(task, "multiple_outputs", False):
        return None
    if _openlineage_enabled():
        return None
    if _maps_downstream(task, context):
        return None
    return {"push_return_value": bool(getattr(task, "do_xcom_push", True)), "skip_on_timeout": bool(soft_fail)}


def _openlineage_enabled() -> bool:
    """Whether the OpenLineage provider is installed and emitting, checked on the worker when the task
    defers (never at parse time): its config reads are cached, so this is cheap."""
    from airflow_provider_aiontheball.openlineage import enabled

    return enabled()


def _maps_downstream(task: Any, context: Any) -> bool:
    """Whether a mapped downstream task expands over this unmapped task's return value: the worker then
    records the value's length for the scheduler, which no task-end event does."""
    ti = context.get("ti") if context else None
    if getattr(ti, "map_index", -1) not in (-1, None):
        return False  # a mapped task's downstream maps over its instances, not over its value's length
    try:
        return next(iter(task.iter_mapped_dependants()), None) is not None
    except RuntimeError:  # not attached to a DAG (execute() called directly): no downstream at all
        return False


async def trigger_event(
    trigger: Any,
    policy: WaitPolicy,
    resource_id: int,
    decision: Decision,
    *,
    execution_deadline: float | None,
    finish: dict[str, Any] | None,
    xcoms_of: Callable[[dict[str, Any]], dict[str, Any]] = lambda resource: {},
    now: Callable[[], float] = time.time,
) -> TriggerEvent:
    """The one event a trigger yields when its wait is over (both triggers).

    The payload is ``{"status", "<kind>_id", "<kind>_status", "message"}`` plus the resource on success
    and the ``execution_deadline`` when the task deferred with one. With ``finish`` (see
    :func:`finish_spec`) a success, and a skippable timeout, end the task in the triggerer; if its XComs
    cannot be stored from here the event resumes the task on a worker instead (nothing is lost).

    :param trigger: the trigger (its ``log``, and on Airflow 3 its ``task_instance``, whose XComs it sets).
    :param xcoms_of: the XComs besides ``return_value`` that the task pushes on success (the video's link).
    """
    from airflow.triggers.base import TaskSkippedEvent, TaskSuccessEvent, TriggerEvent

    from airflow_provider_aiontheball.waiting import EventStatus

    payload: dict[str, Any] = {
        "status": str(decision.status),
        policy.id_key: resource_id,
        policy.status_key: decision.last_status,
        "message": decision.message,
    }
    if decision.resource is not None:
        payload[policy.kind] = decision.resource
    if execution_deadline is not None:
        payload["execution_deadline"] = execution_deadline
    if not finish:
        return TriggerEvent(payload)
    event: TriggerEvent
    if decision.status is EventStatus.SUCCESS and decision.resource is not None:
        xcoms = dict(xcoms_of(decision.resource))
        if finish.get("push_return_value", True):
            xcoms["return_value"] = decision.resource
        if _AIRFLOW_3:
            # Airflow 3's triggerer would JSON-encode these XComs twice: set them through the Task SDK, as a
            # worker does (docs/internals.md, "Ending a wait in the triggerer").
            if not await _set_xcoms_through_sdk(trigger, xcoms):
                return TriggerEvent(payload)
            xcoms = {}
        event = TaskSuccessEvent(xcoms=xcoms or None)
        ending = "the task succeeds here, in the triggerer, without resuming on a worker"
    elif (
        decision.status is EventStatus.TIMEOUT
        and finish.get("skip_on_timeout")
        and (execution_deadline is None or now() < execution_deadline)
    ):
        event = TaskSkippedEvent()
        ending = "soft_fail is set: the task is skipped here, in the triggerer"
    else:
        return TriggerEvent(payload)
    trigger.log.info("%s; %s.", decision.message, ending)
    # What dag.test() resumes the task with (it does not honour end events): the ordinary payload, not the
    # state name the end event carries; the triggerer ignores it. Airflow 3 does not serialize it across.
    event.payload = payload
    return event


def bad_input_event(policy: WaitPolicy, message: str) -> TriggerEvent:
    """The event of a wait that cannot start: an id the triggerer rendered (``start_from_trigger``) is not
    an id. It resumes the task on a worker, where ``execute_complete`` fails it without retries with
    ``message`` (which names the field); nothing was requested."""
    from airflow.triggers.base import TriggerEvent

    from airflow_provider_aiontheball.waiting import EventStatus

    return TriggerEvent(
        {"status": str(EventStatus.FAILED), policy.id_key: None, policy.status_key: None, "message": message}
    )


# -- on the worker, when the task resumes ------------------------------------------------------------------


def raise_for(
    status: str, message: str, on_timeout: Callable[[str], BaseException], cause: BaseException | None = None
) -> NoReturn:
    """Raise what a finished, unsuccessful wait means to the task: the one mapping for every path.

    :raises AIOnTheBallTerminalError: ``failed`` (no retries).
    :raises on_timeout(message): ``timeout`` (a sensor raises Airflow's sensor timeout so ``soft_fail``
        applies; an operator a retryable error).
    :raises AIOnTheBallWaitError: ``error``, or anything unexpected.
    """
    from airflow_provider_aiontheball.waiting import EventStatus

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
    from airflow_provider_aiontheball.waiting import EventStatus

    payload = event if isinstance(event, dict) else {}
    status = payload.get("status")
    message = payload.get("message") or f"unexpected trigger event {event!r}"
    if status == EventStatus.SUCCESS and isinstance(payload.get(kind), dict):
        return dict(payload[kind])
    raise_for(str(status), message, on_timeout)


_AIRFLOW_3 = not airflow.__version__.startswith("2.")


async def _set_xcoms_through_sdk(trigger: Any, xcoms: dict[str, Any]) -> bool:
    """Set ``xcoms`` for the trigger's task instance through the Task SDK; ``False`` if that cannot be done
    here (no task instance or no supervisor channel, e.g. a trigger run outside a triggerer, or the SDK
    refused): the caller then resumes the task on a worker, which pushes them itself.

    Sends ``SetXCom`` with the triggerer's *async* channel, from the event loop: Airflow 3.0's channel is
    not thread-safe (a blocking ``XCom.set`` from a thread there crashed the trigger runner with "Response
    read out of order"). The value is serialized by the configured XCom backend in a thread (a custom
    backend may upload it).
    """
    ti = getattr(trigger, "task_instance", None)
    keys = ("dag_id", "task_id", "run_id", "map_index")
    if ti is None or any(getattr(ti, key, None) is None for key in keys):
        return False
    try:
        from airflow.providers.common.compat.sdk import XCom
        from airflow.sdk.execution_time import task_runner
        from airflow.sdk.execution_time.comms import SetXCom
    except ImportError:
        return False
    asend = getattr(getattr(task_runner, "SUPERVISOR_COMMS", None), "asend", None)
    if asend is None:
        return False
    where = {"dag_id": ti.dag_id, "task_id": ti.task_id, "run_id": ti.run_id, "map_index": ti.map_index}
    try:
        for key, value in xcoms.items():
            serialized = await asyncio.to_thread(XCom.serialize_value, value, key=key, **where)
            await asend(SetXCom(key=key, value=serialized, **where))
    except Exception as exc:
        trigger.log.warning(
            "Could not store the task's XComs from the triggerer (%s: %s); the task resumes on a worker instead.",
            type(exc).__name__,
            exc,
        )
        return False
    return True
