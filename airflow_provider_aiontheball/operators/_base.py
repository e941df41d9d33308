"""What every AI on the Ball operator shares: the connection id and a hook built on first use; what every
waiting operator and sensor shares: its wait settings (:class:`WaitingTask`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_aiontheball._airflow import BaseOperator

# From where airflow.providers.common.compat.sdk finds it (newest first), without importing that layer:
# it would add to every DAG-file parse (benchmarks/README.md, "DAG-parse cost").

if TYPE_CHECKING:
    from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallHook
    from airflow_provider_aiontheball.waiting import WaitSettings

from airflow_provider_aiontheball.defaults import (
    CLOCK_SKEW_SECONDS,
    DEFAULT_CONN_ID,
    DEFAULT_ERROR_BUDGET_SECONDS,
    DEFAULT_MAX_CONSECUTIVE_ERRORS,
)

__all__ = [
    "DEFAULT_CONN_ID",
    "AIOnTheBallBaseOperator",
    "ConnectionTask",
    "CreationWindow",
    "WaitingTask",
    "run_started",
]


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def run_started(context: Any) -> dt.datetime | None:
    """When the task's DAG run started: the earliest an earlier try of the task can have created anything."""
    started = getattr(context.get("dag_run"), "start_date", None)
    return _utc(started) if isinstance(started, dt.datetime) else None


def _created_at(resource: dict[str, Any]) -> dt.datetime | None:
    value = resource.get("created_at")
    if not isinstance(value, str):
        return None
    try:
        return _utc(dt.datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


@dataclass(frozen=True)
class CreationWindow:
    """The earliest ``created_at`` that a resource a POST of this task created can carry.

    ``exact``: ``earliest`` is on the server's clock (learnt from its ``Date`` headers, whole seconds), a
    moment the server had provably reached before the POST left: anything created before that second is
    not ours, however skewed our clock. Otherwise ``earliest`` is on our clock (or the scheduler's), and
    :data:`CLOCK_SKEW_SECONDS` of disagreement is allowed.
    """

    earliest: dt.datetime
    exact: bool

    @property
    def bound(self) -> dt.datetime:
        if self.exact:  # the server's timestamps are whole seconds (the docs' examples): compare to the second
            return _utc(self.earliest).replace(microsecond=0)
        return _utc(self.earliest) - dt.timedelta(seconds=CLOCK_SKEW_SECONDS)

    def admits(self, resource: dict[str, Any]) -> bool | None:
        """Whether ``resource`` was created in the window; ``None`` when it does not say when."""
        created = _created_at(resource)
        return None if created is None else created >= self.bound

    def describe(self) -> str:
        clock = "by the server's clock" if self.exact else f"by ours, ±{CLOCK_SKEW_SECONDS:g} s"
        return f"since {self.bound.isoformat()} ({clock})"


class ConnectionTask:
    """The hook of an operator or sensor, built from its ``aiontheball_conn_id`` when first used (a mixin)."""

    aiontheball_conn_id: str

    @cached_property
    def hook(self) -> AIOnTheBallHook:
        from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallHook

        return AIOnTheBallHook(self.aiontheball_conn_id)


class WaitingTask(ConnectionTask):
    """What every waiting operator and sensor shares: its connection, whether it defers and ends in the
    triggerer, its wait settings, and the hook (a mixin before the Airflow base class). Each task keeps its
    own explicit signature, defaults and ``:param:`` text (what ``default_args``, ``partial()`` and the API
    reference read), and passes these on as keywords; ``timeout`` stays each task's own (a sensor's is
    Airflow's).
    """

    deferrable: bool
    finish_in_triggerer: bool
    poll_interval: float | None
    min_poll_interval: float
    max_consecutive_errors: int
    error_budget_seconds: float

    def __init__(
        self,
        *,
        aiontheball_conn_id: str,
        deferrable: bool,
        finish_in_triggerer: bool,
        poll_interval: float | None,
        min_poll_interval: float,
        max_consecutive_errors: int = DEFAULT_MAX_CONSECUTIVE_ERRORS,
        error_budget_seconds: float = DEFAULT_ERROR_BUDGET_SECONDS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.aiontheball_conn_id = aiontheball_conn_id
        self.deferrable = deferrable
        self.finish_in_triggerer = finish_in_triggerer
        self.poll_interval = poll_interval
        self.min_poll_interval = min_poll_interval
        self.max_consecutive_errors = max_consecutive_errors
        self.error_budget_seconds = error_budget_seconds

    @property
    def _poll_interval(self) -> float:
        """The longest interval of the wait (where ``None`` is allowed, the task overrides this: the video
        sensor's falls back to its ``poke_interval``)."""
        return self.poll_interval  # type: ignore[return-value]

    @property
    def _settings(self) -> WaitSettings:
        """The wait's polling settings."""
        from airflow_provider_aiontheball.waiting import WaitSettings

        return WaitSettings(
            self._poll_interval, self.min_poll_interval, self.max_consecutive_errors, self.error_budget_seconds
        )


class AIOnTheBallBaseOperator(ConnectionTask, BaseOperator):
    """Base of the provider's operators: no I/O in the constructor; the hook is built when first used.

    :param aiontheball_conn_id: Airflow connection id. Default ``aiontheball_default``.
    """

    def __init__(self, *, aiontheball_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.aiontheball_conn_id = aiontheball_conn_id
