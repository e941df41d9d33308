"""The sensor behaviour shared by the video and analysis sensors: poke, reschedule or defer.

DAG files import the sensors, so this module imports no HTTP library and no hook at module level:
the hook is built on first use (``cached_property``) and the trigger class when deferring.
"""

from __future__ import annotations

import time
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.common.compat.sdk import AirflowSensorTimeout, BaseSensorOperator, PokeReturnValue, conf

from airflow_provider_aiontheball.defaults import (
    DEFAULT_CONN_ID,
    DEFAULT_ERROR_BUDGET_SECONDS,
    DEFAULT_MAX_CONSECUTIVE_ERRORS,
    DEFAULT_MIN_POLL_INTERVAL,
)

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_aiontheball._waiting import WaitObserver
    from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallHook
    from airflow_provider_aiontheball.polling import ErrorBudget
    from airflow_provider_aiontheball.statuses import StatusVocabulary
    from airflow_provider_aiontheball.triggers._base import AIOnTheBallWaitTrigger


#: Task state store key of a reschedule-mode sensor's error streak (renaming it loses stored streaks).
STATE_KEY_POKE_ERRORS = "aiontheball_poke_errors"


class AIOnTheBallWaitSensor(BaseSensorOperator):
    """Wait for a video or analysis to finish; subclasses fix the resource kind.

    In deferrable mode the sensor pokes once (no deferral if the resource is already done or failed),
    then hands the wait to a trigger with ``timeout=timedelta(seconds=self.timeout)``, so Airflow's
    own sensor timeout (and ``soft_fail``) apply exactly as in poke mode.
    """

    #: ``"video"`` or ``"analysis"``.
    resource: ClassVar[str]
    #: Name of the templated id attribute (``video_id`` / ``analysis_id``).
    id_field: ClassVar[str]

    def __init__(
        self,
        *,
        aiontheball_conn_id: str = DEFAULT_CONN_ID,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        min_poll_interval: float = DEFAULT_MIN_POLL_INTERVAL,
        max_consecutive_errors: int = DEFAULT_MAX_CONSECUTIVE_ERRORS,
        error_budget_seconds: float = DEFAULT_ERROR_BUDGET_SECONDS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.aiontheball_conn_id = aiontheball_conn_id
        self.deferrable = deferrable
        self.min_poll_interval = min_poll_interval
        self.max_consecutive_errors = max_consecutive_errors
        self.error_budget_seconds = error_budget_seconds

    # -- what subclasses provide --------------------------------------------------------------------

    def fetch(self, resource_id: int) -> dict[str, Any]:
        raise NotImplementedError

    def build_trigger(self, resource_id: int, end_time: float) -> AIOnTheBallWaitTrigger:
        raise NotImplementedError

    # -- shared machinery ---------------------------------------------------------------------------

    @cached_property
    def hook(self) -> AIOnTheBallHook:
        from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallHook

        return AIOnTheBallHook(self.aiontheball_conn_id)

    @property
    def vocabulary(self) -> StatusVocabulary:
        from airflow_provider_aiontheball.statuses import VOCABULARIES

        return VOCABULARIES[self.resource]

    @property
    def resource_id(self) -> int:
        """The rendered id, validated (raises :class:`AIOnTheBallInputError` naming the field)."""
        from airflow_provider_aiontheball.exceptions import bad_input_fails_task
        from airflow_provider_aiontheball.validation import validate_id

        with bad_input_fails_task():
            return validate_id(getattr(self, self.id_field), self.id_field)

    @cached_property
    def _trigger_for_schedule(self) -> AIOnTheBallWaitTrigger:
        # The trigger knows the polling schedule and how to read the resource; poke mode reuses both.
        return self.build_trigger(self.resource_id, end_time=time.time() + self.timeout)

    @cached_property
    def _schedule(self) -> Any:
        return self._trigger_for_schedule.new_schedule()

    @cached_property
    def _observer(self) -> WaitObserver:
        from airflow_provider_aiontheball._waiting import WaitObserver

        trigger = self._trigger_for_schedule
        return WaitObserver(
            self.vocabulary,
            self.resource_id,
            self.aiontheball_conn_id,
            self.log,
            describe=trigger.describe_state,
            ready=trigger.is_ready,
        )

    @cached_property
    def _budget(self) -> ErrorBudget:
        from airflow_provider_aiontheball.polling import ErrorBudget

        # Wall clock in reschedule mode: the streak may continue in a later poke's process.
        clock = time.time if self.reschedule else time.monotonic
        return ErrorBudget(self.max_consecutive_errors, self.error_budget_seconds, clock=clock)

    @cached_property
    def _started(self) -> float:
        return time.monotonic()

    def poke(self, context: Context) -> PokeReturnValue | bool:
        """One poll: done (with the resource as XCom), still waiting, or an exception that ends the task."""
        from airflow_provider_aiontheball._waiting import poll_once

        resource_id = self.resource_id
        # In reschedule mode every poke is a new run: the error budget's streak is kept in the task
        # state store (Airflow 3.3+), so a persistent 5xx fails the task after the budget, not only at
        # the sensor's timeout. Without a store (Airflow < 3.3) each poke starts a new streak.
        store = context.get("task_state_store") if self.reschedule else None
        saved = store.get(STATE_KEY_POKE_ERRORS) if store is not None else None
        if store is not None:
            self._budget.restore(saved)
        try:
            resource = poll_once(
                self._observer, self._budget, lambda: self.fetch(resource_id), time.monotonic() - self._started
            )
        except Exception:
            if saved is not None:
                store.delete(STATE_KEY_POKE_ERRORS)  # type: ignore[union-attr]  # a retry starts a new budget
            raise
        if store is not None and (streak := self._budget.state()) != saved:
            if streak is not None:
                store.set(STATE_KEY_POKE_ERRORS, streak)
            else:
                store.delete(STATE_KEY_POKE_ERRORS)
        if resource is None:
            last = self._observer.last_resource
            if last is not None and not self._budget.consecutive:  # progress line with an ETA, if any
                self._trigger_for_schedule.next_interval(self._schedule, last, time.time())
                self._observer.report_progress(last, getattr(self._schedule, "eta_seconds", lambda: None)())
            return False
        self.on_success(context, resource)
        return PokeReturnValue(is_done=True, xcom_value=resource)

    def execute(self, context: Context) -> Any:
        resource_id = self.resource_id  # bad input fails here, before any request
        if not self.deferrable:
            return super().execute(context)
        # Poke once first: a resource that is already done (or failed) needs no triggerer round trip.
        result = self.poke(context)
        if isinstance(result, PokeReturnValue) and result.is_done:
            return result.xcom_value
        self.defer(
            trigger=self.build_trigger(resource_id, end_time=time.time() + self.timeout),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def on_success(self, context: Context, resource: dict[str, Any]) -> None:
        """Called once with the finished resource, before it is returned (XCom ``return_value``)."""

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Resume after the trigger fired. Fails closed: only a ``success`` event passes."""
        from airflow_provider_aiontheball._waiting import result_from_event

        resource = result_from_event(event, self.resource, AirflowSensorTimeout)
        self.log.info("%s", (event or {}).get("message"))
        self.on_success(context, resource)
        return resource
