"""The provider's task bases: every operator and sensor (:class:`AIOnTheBallBaseOperator`: the connection,
a hook built on first use), every waiting one (:class:`WaitingTask`: the wait kwargs), the two create
operators (:class:`CreateTask`: exactly-once and the wait's timeout); and a create's :class:`CreationWindow`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

# From where airflow.providers.common.compat.sdk finds them (newest first), without importing that layer:
# it would add to every DAG-file parse (benchmarks/README.md, "DAG-parse cost").
from airflow_provider_aiontheball._airflow import BaseOperator, conf

if TYPE_CHECKING:
    from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallHook
    from airflow_provider_aiontheball.waiting import WaitSettings

from airflow_provider_aiontheball.defaults import (
    CLOCK_SKEW_SECONDS,
    DEFAULT_COMMIT_GRACE_PERIOD,
    DEFAULT_CONN_ID,
    DEFAULT_ERROR_BUDGET_SECONDS,
    DEFAULT_MAX_CONSECUTIVE_ERRORS,
    DEFAULT_MIN_POLL_INTERVAL,
    DEFAULT_POLL_INTERVAL,
)

__all__ = [
    "DEFAULT_CONN_ID",
    "AIOnTheBallBaseOperator",
    "CreateTask",
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


class AIOnTheBallBaseOperator(BaseOperator):
    """Base of the provider's operators and sensors: no I/O in the constructor; the hook is built when first
    used.

    Every task keyword below is owned by one base class here, like ``poke_interval`` by Airflow's sensor
    base: Airflow's operator metaclass then applies ``default_args`` to it and ``partial()`` accepts it.

    :param aiontheball_conn_id: Airflow connection id. Default ``aiontheball_default``.
    """

    def __init__(self, *, aiontheball_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.aiontheball_conn_id = aiontheball_conn_id

    @cached_property
    def hook(self) -> AIOnTheBallHook:
        from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallHook

        return AIOnTheBallHook(self.aiontheball_conn_id)

    def _set_partition_by_match(self, partition_by_match: bool) -> None:
        """Set ``partition_by_match`` (the operators that emit asset events), checked at parse time without I/O:
        Airflow 3.3+ and outlets (:func:`~airflow_provider_aiontheball.assets.check_partition_by_match`)."""
        self.partition_by_match = partition_by_match
        if partition_by_match:
            from airflow_provider_aiontheball.assets import check_partition_by_match

            check_partition_by_match(self, partition_by_match)


class WaitingTask(AIOnTheBallBaseOperator):
    """Base of every waiting operator and sensor (a sensor puts Airflow's sensor base after it): the wait
    kwargs. Each task documents them with its own defaults; ``timeout`` stays each task's own (a sensor's is
    Airflow's).

    :param deferrable: wait in the triggerer, freeing the worker slot. Default: the
        ``[operators] default_deferrable`` setting (False unless configured).
    :param poll_interval: longest interval between polls, in seconds. Default: the kind's
        (:attr:`default_poll_interval`).
    :param min_poll_interval: shortest interval (after a status change; an analysis near its finish), in
        seconds. Default: the kind's (:attr:`default_min_poll_interval`).
    :param max_consecutive_errors: transient failures in a row a wait tolerates. Default 10.
    :param error_budget_seconds: seconds of uninterrupted transient failures a wait tolerates. Default 900.
    :param finish_in_triggerer: when it defers, let the trigger end the task on success (see
        :mod:`airflow_provider_aiontheball.task_end`). Default True.
    """

    #: The kind's defaults for ``poll_interval`` (``None``: the task decides, see :attr:`_poll_interval`)
    #: and ``min_poll_interval``.
    default_poll_interval: ClassVar[float | None] = DEFAULT_POLL_INTERVAL
    default_min_poll_interval: ClassVar[float] = DEFAULT_MIN_POLL_INTERVAL

    def __init__(
        self,
        *,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float | None = None,
        min_poll_interval: float | None = None,
        max_consecutive_errors: int = DEFAULT_MAX_CONSECUTIVE_ERRORS,
        error_budget_seconds: float = DEFAULT_ERROR_BUDGET_SECONDS,
        finish_in_triggerer: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.deferrable = deferrable
        self.poll_interval = self.default_poll_interval if poll_interval is None else poll_interval
        self.min_poll_interval = self.default_min_poll_interval if min_poll_interval is None else min_poll_interval
        self.max_consecutive_errors = max_consecutive_errors
        self.error_budget_seconds = error_budget_seconds
        self.finish_in_triggerer = finish_in_triggerer

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


class CreateTask(WaitingTask):
    """Base of the two create operators: exactly-once creation and the optional wait's timeout.

    :param timeout: seconds the optional wait may take before the task fails (retries apply). Default: the
        kind's (:attr:`default_timeout`).
    :param durable: keep the created id in the task state store (Airflow 3.3+) so that a retry reattaches to
        it; ignored where Airflow has no task state store. Default True.
    :param commit_grace_period: seconds after a POST of unknown outcome during which the operator keeps
        looking for what it may have created. Default 60.
    :param partition_by_match: with ``outlets``, put each asset event in the match's partition. Needs Airflow
        3.3+; asking for it on an older Airflow fails the DAG's parse. Default False.
    """

    #: The kind's default ``timeout``.
    default_timeout: ClassVar[float]

    def __init__(
        self,
        *,
        timeout: float | None = None,
        durable: bool = True,
        commit_grace_period: float = DEFAULT_COMMIT_GRACE_PERIOD,
        partition_by_match: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.timeout = self.default_timeout if timeout is None else timeout
        self.durable = durable
        self.commit_grace_period = commit_grace_period
        self._set_partition_by_match(partition_by_match)
