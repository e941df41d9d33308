"""Sensor that waits for an analysis to be ``done`` (poke, reschedule or deferrable).

DAG files import this module: it imports no HTTP library, no hook and no waiting machinery at module
level (the hook is built on first use, :mod:`~airflow_provider_aiontheball.waiting` when poking).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_aiontheball._airflow import AirflowSensorTimeout, PokeReturnValue
from airflow_provider_aiontheball.defaults import (
    DEFAULT_ANALYSIS_MIN_POLL_INTERVAL,
    DEFAULT_ANALYSIS_POLL_INTERVAL,
)
from airflow_provider_aiontheball.sensors._base import SoftFailOnDeferralTimeout

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_aiontheball.waiting import Wait


class AIOnTheBallAnalysisSensor(SoftFailOnDeferralTimeout):
    """Wait until an AI on the Ball analysis is ``done`` with results; return the analysis.

    ``done`` succeeds (once ``results_available`` is not false). ``error``, a deleted analysis (404) and
    a refused token fail at once without retries; ``init``, ``waiting_for_video``, ``running``,
    ``aggregating`` and undocumented statuses keep waiting. Task logs show progress as
    ``analysis 1247: running 45% (ETA ~1h 52m)``, a line per 5 % rather than per poll.

    Deferrable mode pokes once, then polls in the triggerer near the expected finish estimated from
    ``progress``: a few dozen requests for a multi-hour analysis, noticed within ``min_poll_interval``
    of finishing. ``timeout`` and ``soft_fail`` behave as in poke mode; an ``execution_timeout`` that runs
    out first ends a deferred wait with ``AirflowTaskTimeout`` (as for the video sensor).

    :param analysis_id: id of the analysis (templated), e.g. the create task's XCom ``analysis_id``.
    :param video_id: the analysed video (templated), used if the server has no ``GET /analyses/{id}``
        route (undocumented endpoint): the analysis is then followed through its video. Default: none.
    :param aiontheball_conn_id: Airflow connection id. Default ``aiontheball_default``.
    :param deferrable: wait in the triggerer. Default: ``[operators] default_deferrable``.
    :param poll_interval: longest interval of the deferred wait, in seconds. Default 1800.
    :param min_poll_interval: interval near the finish, in seconds. Default 45.
    :param max_consecutive_errors: transient failures in a row tolerated. Default 10.
    :param error_budget_seconds: seconds of uninterrupted transient failures tolerated. Default 900.
    :param max_poll_interval: deprecated name of ``poll_interval``.
    :param poke_interval: seconds between pokes in poke/reschedule mode. Default 60.
    :param timeout: seconds before the sensor times out. Default 7 days.
    :param finish_in_triggerer: in deferrable mode, let the trigger end the task when the analysis is
        done (with the same ``return_value``) or a ``soft_fail`` wait times out, so the wait costs one
        worker start instead of two; failures still resume on a worker (see
        :mod:`airflow_provider_aiontheball.task_end`). Not used with ``outlets``. Default True.
    :param start_from_trigger: start the wait in the triggerer: the scheduler defers the task itself, so a
        wait that succeeds runs no worker at all (Airflow 3.3+, not for mapped tasks; implies ``deferrable``;
        see :mod:`airflow_provider_aiontheball.task_start`). ``analysis_id`` and ``video_id`` must then be an int or a
        template string (rendered in the triggerer; an ``xcom_pull`` there needs ``map_indexes=-1``), not an
        ``XComArg``. There is no first poke, and ``timeout`` is Airflow's trigger timeout. On older Airflow:
        a warning at parse time, and the sensor defers from a worker. Default False.
    """

    template_fields: Sequence[str] = ("analysis_id", "video_id")
    _trigger_classpath = "airflow_provider_aiontheball.triggers.analysis.AIOnTheBallAnalysisTrigger"
    _trigger_id_fields = ("analysis_id", "video_id")
    ui_color = "#0d47a1"
    ui_fgcolor = "#ffffff"

    default_poll_interval = DEFAULT_ANALYSIS_POLL_INTERVAL
    default_min_poll_interval = DEFAULT_ANALYSIS_MIN_POLL_INTERVAL

    def __init__(
        self,
        *,
        analysis_id: int | str,
        video_id: int | str | None = None,
        max_poll_interval: float | None = None,
        start_from_trigger: bool = False,
        **kwargs: Any,
    ) -> None:
        if max_poll_interval is not None:
            warnings.warn(
                "AIOnTheBallAnalysisSensor(max_poll_interval=...) is deprecated: use poll_interval, the name "
                "every other operator, sensor and trigger of this provider uses.",
                DeprecationWarning,
                stacklevel=2,
            )
            kwargs["poll_interval"] = max_poll_interval
        super().__init__(**kwargs)
        self.analysis_id = analysis_id
        self.video_id = video_id
        if start_from_trigger:
            self._start_in_triggerer()

    @property
    def max_poll_interval(self) -> float | None:
        """Deprecated name of :attr:`poll_interval`."""
        return self.poll_interval

    @property
    def _ids(self) -> tuple[int, int | None]:
        """The rendered ids, validated (raises :class:`AIOnTheBallInputError` naming the field)."""
        from airflow_provider_aiontheball.exceptions import bad_input_fails_task
        from airflow_provider_aiontheball.validation import validate_id

        with bad_input_fails_task():
            analysis_id = validate_id(self.analysis_id, "analysis_id")
            video_id = validate_id(self.video_id, "video_id", optional=True)
        return analysis_id, video_id

    @cached_property
    def _wait(self) -> Wait:
        from airflow_provider_aiontheball.waiting import ANALYSIS_WAIT, Wait

        # Wall clock for the error budget in reschedule mode: the streak continues in a later poke's process.
        clock = time.time if self.reschedule else time.monotonic
        return Wait(
            ANALYSIS_WAIT, self._ids[0], self.aiontheball_conn_id, self.log, self._settings, budget_clock=clock,
            announce_delay=False,
        )  # fmt: skip

    def execute(self, context: Context) -> Any:
        analysis_id, video_id = self._ids  # bad input fails here, before any request
        if not self.deferrable:
            return super().execute(context)
        # Poke once first: an analysis that is already done (or failed) needs no triggerer round trip.
        result = self.poke(context)
        if isinstance(result, PokeReturnValue) and result.is_done:
            return result.xcom_value
        from airflow_provider_aiontheball.deadlines import DeferralLimit
        from airflow_provider_aiontheball.task_end import finish_spec
        from airflow_provider_aiontheball.triggers.analysis import AIOnTheBallAnalysisTrigger

        limit = DeferralLimit.of(self, context, self.timeout)  # execution_timeout too
        self.defer(
            trigger=AIOnTheBallAnalysisTrigger(
                analysis_id=analysis_id,
                aiontheball_conn_id=self.aiontheball_conn_id,
                end_time=limit.end_time,
                execution_deadline=limit.execution_deadline,
                video_id=video_id,
                finish_in_triggerer=finish_spec(self, context, sensor=True),
                polled_before=self._wait.succeeded_before,  # the poke just before deferring
                **self._settings.trigger_kwargs(),
            ),
            method_name="execute_complete",
            timeout=limit.timeout,
        )

    def poke(self, context: Context) -> PokeReturnValue | bool:
        """One poll: done (with the analysis as XCom), still waiting, or an exception that ends the task."""
        from airflow_provider_aiontheball.waiting import poke

        analysis_id, video_id = self._ids
        analysis = poke(
            self._wait,
            lambda: self.hook.get_analysis(analysis_id, video_id=video_id),
            context,
            reschedule=self.reschedule,
        )
        return False if analysis is None else PokeReturnValue(is_done=True, xcom_value=analysis)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Resume after the trigger fired. Fails closed: only a ``success`` event passes."""
        from airflow_provider_aiontheball.deadlines import timeout_error
        from airflow_provider_aiontheball.task_end import result_from_event

        analysis = result_from_event(event, "analysis", timeout_error(self, context, AirflowSensorTimeout, event))
        self.log.info("%s", (event or {}).get("message"))
        return analysis
