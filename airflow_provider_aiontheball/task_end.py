"""Ending a deferred wait's task in the triggerer, so a wait costs one worker start instead of two.

A deferred task normally starts on a worker twice: once to defer, once to resume in
``execute_complete``. Airflow (2.10+; every version we support) also lets a trigger end its task itself
with ``TaskSuccessEvent`` / ``TaskSkippedEvent`` and the task's XComs: the triggerer sets the state,
pushes the XComs and queues the success callback for the DAG processor. Every executor: the triggerer
does it, no worker is involved. Our triggers do that for the outcomes whose meaning does not depend on
the worker:

* **success**: the task succeeds in the triggerer with exactly the XComs ``execute_complete`` would
  push — ``return_value`` (unless ``do_xcom_push=False``), and for a video ``mp4_source`` and, on
  Airflow 3, the extra link's stored URL (Airflow 3 stores a task's links as XComs when the task ends
  on a worker; here no worker ends it);
* **timeout of a ``soft_fail`` sensor**: skipped in the triggerer, unless the task's
  ``execution_timeout`` is what ran out (that fails as ``AirflowTaskTimeout``, retries applying).

Everything else — a failed video or analysis, a timeout without ``soft_fail``, an error — resumes on the
worker as before, where ``execute_complete`` raises the same exception as ever: fail-without-retry for a
terminal failure (Airflow 3.3 would route a ``TaskFailedEvent`` to a retry), the sensor timeout, and the
failure callback with the exception. Failures are rare; the second worker start there buys the exact
semantics.

Not used (the task resumes on the worker) when the task has ``outlets`` — asset events are emitted by
the worker's task runner only — when it sets ``multiple_outputs``, when OpenLineage is enabled (its
listener, which emits the task's COMPLETE event with the lineage, runs only in the worker's task runner;
a task the triggerer ends emits none), or when the user passes ``finish_in_triggerer=False``.

``dag.test()`` (every version) does not honour task-end events: it resumes the task with the event's
payload. Our end events keep the usual payload, so that resume takes the ordinary path.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import airflow

if TYPE_CHECKING:
    from airflow.triggers.base import TriggerEvent

    from airflow_provider_aiontheball.waiting import Decision, WaitPolicy

__all__ = ["bad_input_event", "finish_spec", "trigger_event"]


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
            # Airflow 3 stores a TaskSuccessEvent's XComs JSON-encoded a second time (the triggerer's
            # XComModel.set(serialize=True)), so a downstream task would pull a string instead of the dict.
            # Set them the way a worker does: through the Task SDK (the configured XCom backend, then the
            # execution API), which the triggerer serves to its triggers.
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
