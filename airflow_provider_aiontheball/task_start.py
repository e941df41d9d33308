"""Starting a sensor's wait in the triggerer (``start_from_trigger=True``): a wait with no worker start.

The scheduler defers the task straight to the triggerer from its ``start_trigger_args``; only on Airflow
3.3+ (the first to render templated trigger kwargs), never for mapped tasks. What differs from a wait
deferred by a worker: see docs/internals.md, "Starting a wait in the triggerer".
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Mapping
from typing import Any

import airflow

__all__ = ["START_FROM_TRIGGER_MIN_AIRFLOW", "start_in_triggerer", "supports_start_from_trigger"]

#: The first Airflow whose triggerer renders templated trigger kwargs of ``start_from_trigger`` tasks.
START_FROM_TRIGGER_MIN_AIRFLOW = (3, 3)


def supports_start_from_trigger(version: str = airflow.__version__) -> bool:
    """Whether this Airflow renders a ``start_from_trigger`` task's templated trigger kwargs (3.3+)."""
    try:
        major, minor = (int(part) for part in version.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= START_FROM_TRIGGER_MIN_AIRFLOW


def start_in_triggerer(
    task: Any, *, trigger_cls: str, ids: Mapping[str, Any], trigger_kwargs: Mapping[str, Any]
) -> Any | None:
    """The ``start_trigger_args`` for ``task`` (a sensor that asked for ``start_from_trigger``), or ``None``
    (with a warning) where this Airflow cannot start it in the triggerer.

    :param trigger_cls: the trigger's classpath.
    :param ids: the templated id fields, by name (an ``int`` or a Jinja string; rendered in the triggerer).
    :param trigger_kwargs: the trigger's other kwargs (connection id, polling settings).
    :raises ValueError: an id is neither an int nor a string (e.g. an ``XComArg``, which only a worker
        resolves), naming the field.
    """
    for name, value in ids.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | str)):
            raise ValueError(
                f"{name}: with start_from_trigger=True it must be an int or a template string such as "
                f"\"{{{{ ti.xcom_pull(task_ids='create_video', key='video_id', map_indexes=-1) }}}}\" (rendered in "
                f"the triggerer), "
                f"not {type(value).__name__}: an XComArg is resolved on a worker only"
            )
        if isinstance(value, str) and "xcom_pull(" in value and "map_indexes" not in value:
            # Without map_indexes, xcom_pull asks for every map index (GetXComSequenceSlice), a request Airflow
            # 3.3's triggerer does not serve: the rendering hangs and the wait stays deferred until its timeout.
            raise ValueError(
                f"{name}: with start_from_trigger=True an xcom_pull must name its map index, which the triggerer "
                f"needs: add map_indexes=-1, e.g. \"{{{{ ti.xcom_pull(task_ids='create_video', key='video_id', "
                f'map_indexes=-1) }}}}"; got {value!r}'
            )
    if not supports_start_from_trigger():
        warnings.warn(
            f"{type(task).__name__}(task_id={getattr(task, 'task_id', None)!r}, start_from_trigger=True) needs "
            f"Airflow >= 3.3 (this is {airflow.__version__}): the sensor defers from a worker instead.",
            UserWarning,
            stacklevel=3,
        )
        return None
    from airflow.triggers.base import StartTriggerArgs

    from airflow_provider_aiontheball.task_end import finish_spec

    # Decided now, at parse time: the task's outlets, multiple_outputs and do_xcom_push are known; a mapped
    # downstream over a sensor's return value (a dict) is not, and is not supported with this option.
    finish = finish_spec(task, None, sensor=True)
    timeout = getattr(task, "timeout", None)
    return StartTriggerArgs(
        trigger_cls=trigger_cls,
        next_method="execute_complete",
        trigger_kwargs={
            **ids,
            **trigger_kwargs,
            **({"finish_in_triggerer": finish} if finish else {}),
        },
        next_kwargs=None,
        # Airflow's trigger timeout is the deadline (the kwargs are fixed at parse time, so no absolute
        # end_time can be in them); the scheduler shortens it to the execution_timeout itself.
        timeout=None if timeout is None else dt.timedelta(seconds=float(timeout)),
    )
