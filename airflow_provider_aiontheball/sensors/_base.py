"""What the provider's sensors share beyond Airflow's ``BaseSensorOperator``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_aiontheball._airflow import AirflowSensorTimeout, AirflowSkipException, BaseSensorOperator
from airflow_provider_aiontheball.operators._base import WaitingTask

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context


class SoftFailOnDeferralTimeout(WaitingTask, BaseSensorOperator):
    """What both sensors share: starting in the triggerer, and the deferral timeout's meaning.

    ``soft_fail`` also skips when Airflow itself ends a deferred wait at its ``timeout``; a deferral
    Airflow ended at the task's ``execution_timeout`` fails as ``AirflowTaskTimeout`` instead.

    Airflow 3.0's sensor turns its deferral timeout (the trigger's ``timeout``, ``__fail__``) into
    ``AirflowSensorTimeout`` without consulting ``soft_fail`` (3.1 and 2.11 do), so a soft-fail sensor
    would fail there instead of being skipped. Our trigger's own timeout event already skips.
    """

    #: The trigger a ``start_from_trigger`` wait starts, and the templated id fields it renders (each sensor).
    _trigger_classpath: str = ""
    _trigger_id_fields: tuple[str, ...] = ()

    def _start_in_triggerer(self) -> None:
        """Set ``start_trigger_args`` (:mod:`airflow_provider_aiontheball.task_start`); called by ``__init__``
        when the user asks for ``start_from_trigger``, once every attribute is set."""
        from airflow_provider_aiontheball.task_start import start_in_triggerer

        self.deferrable = True  # deferred either way: from the scheduler, or from a worker where it cannot be
        args = start_in_triggerer(
            self,
            trigger_cls=self._trigger_classpath,
            ids={field: getattr(self, field) for field in self._trigger_id_fields},
            trigger_kwargs={"aiontheball_conn_id": self.aiontheball_conn_id, **self._settings.trigger_kwargs()},
        )
        if args is not None:
            self.start_trigger_args = args
            self.start_from_trigger = True

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        from airflow_provider_aiontheball.deadlines import execution_timed_out, task_timeout_error

        if next_method == "__fail__" and execution_timed_out(self, context):
            # Airflow 2 ends a deferral at the execution_timeout itself and reports it like the sensor's own
            # timeout, which soft_fail would skip: it is a task that ran too long (retries apply).
            error = (next_kwargs or {}).get("error")
            raise task_timeout_error(self, f"Airflow ended the deferral ({error})")
        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except AirflowSensorTimeout as error:
            if self.soft_fail or getattr(self, "never_fail", False):
                raise AirflowSkipException(f"Skipping: soft_fail is set and the wait timed out ({error})") from error
            raise
