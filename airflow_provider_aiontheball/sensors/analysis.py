"""Sensor that waits for an analysis to be ``done`` (poke, reschedule or deferrable)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_aiontheball.defaults import (
    DEFAULT_ANALYSIS_MIN_POLL_INTERVAL,
    DEFAULT_ANALYSIS_POLL_INTERVAL,
    DEFAULT_CONN_ID,
)
from airflow_provider_aiontheball.sensors._base import AIOnTheBallWaitSensor

if TYPE_CHECKING:
    from airflow_provider_aiontheball.triggers.analysis import AIOnTheBallAnalysisTrigger


class AIOnTheBallAnalysisSensor(AIOnTheBallWaitSensor):
    """Wait until an AI on the Ball analysis is ``done`` with results; return the analysis.

    ``done`` succeeds (once ``results_available`` is not false). ``error``, a deleted analysis (404) and
    a refused token fail at once without retries; ``init``, ``waiting_for_video``, ``running``,
    ``aggregating`` and undocumented statuses keep waiting. Task logs show progress as
    ``analysis 1247: running 45% (ETA ~1h 52m)``, a line per 5 % rather than per poll.

    Deferrable mode polls near the expected finish estimated from ``progress``: a few dozen requests
    for a multi-hour analysis, noticed within ``min_poll_interval`` of finishing.

    :param analysis_id: id of the analysis (templated), e.g. the create task's XCom ``analysis_id``.
    :param video_id: the analysed video (templated), used if the server has no ``GET /analyses/{id}``
        route (undocumented endpoint): the analysis is then followed through its video. Default: none.
    :param aiontheball_conn_id: Airflow connection id. Default ``aiontheball_default``.
    :param deferrable: wait in the triggerer. Default: ``[operators] default_deferrable``.
    :param max_poll_interval: longest interval of the deferred wait, in seconds. Default 1800.
    :param min_poll_interval: interval near the finish, in seconds. Default 45.
    :param poke_interval: seconds between pokes in poke/reschedule mode. Default 60.
    :param timeout: seconds before the sensor times out. Default 7 days.
    """

    template_fields: Sequence[str] = ("analysis_id", "video_id")
    ui_color = "#0d47a1"
    ui_fgcolor = "#ffffff"

    resource = "analysis"
    id_field = "analysis_id"

    def __init__(
        self,
        *,
        analysis_id: int | str,
        video_id: int | str | None = None,
        aiontheball_conn_id: str = DEFAULT_CONN_ID,
        max_poll_interval: float = DEFAULT_ANALYSIS_POLL_INTERVAL,
        min_poll_interval: float = DEFAULT_ANALYSIS_MIN_POLL_INTERVAL,
        **kwargs: Any,
    ) -> None:
        super().__init__(aiontheball_conn_id=aiontheball_conn_id, min_poll_interval=min_poll_interval, **kwargs)
        self.analysis_id = analysis_id
        self.video_id = video_id
        self.max_poll_interval = max_poll_interval

    @property
    def _video_id(self) -> int | None:
        from airflow_provider_aiontheball.exceptions import bad_input_fails_task
        from airflow_provider_aiontheball.validation import validate_id

        if self.video_id in (None, "", "None"):
            return None
        with bad_input_fails_task():
            return validate_id(self.video_id, "video_id")

    def fetch(self, resource_id: int) -> dict[str, Any]:
        return self.hook.get_analysis(resource_id, video_id=self._video_id)

    def build_trigger(self, resource_id: int, end_time: float) -> AIOnTheBallAnalysisTrigger:
        from airflow_provider_aiontheball.triggers.analysis import AIOnTheBallAnalysisTrigger

        return AIOnTheBallAnalysisTrigger(
            analysis_id=resource_id,
            aiontheball_conn_id=self.aiontheball_conn_id,
            poll_interval=self.max_poll_interval,
            end_time=end_time,
            min_poll_interval=self.min_poll_interval,
            max_consecutive_errors=self.max_consecutive_errors,
            error_budget_seconds=self.error_budget_seconds,
            video_id=self._video_id,
        )
