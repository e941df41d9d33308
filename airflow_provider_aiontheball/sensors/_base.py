"""What the provider's sensors share beyond Airflow's ``BaseSensorOperator``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_aiontheball._airflow import AirflowSensorTimeout, AirflowSkipException, BaseSensorOperator

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context


class SoftFailOnDeferralTimeout(BaseSensorOperator):
    """``soft_fail`` also skips when Airflow itself ends a deferred wait at its ``timeout``; a deferral
    Airflow ended at the task's ``execution_timeout`` fails as ``AirflowTaskTimeout`` instead.

    Airflow 3.0's sensor turns its deferral timeout (the trigger's ``timeout``, ``__fail__``) into
    ``AirflowSensorTimeout`` without consulting ``soft_fail`` (3.1 and 2.11 do), so a soft-fail sensor
    would fail there instead of being skipped. Our trigger's own timeout event already skips.
    """

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        from airflow_provider_aiontheball.waiting import execution_timed_out, task_timeout_error

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
