"""Trigger that waits, in the triggerer, for an analysis to be ``done`` — polling near its expected finish.

Its classpath and kwargs are stored in users' trigger rows: only add kwargs with defaults, never rename
or move the class. The wait itself is :class:`airflow_provider_aiontheball.waiting.WaitTrigger`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from airflow_provider_aiontheball.defaults import (
    DEFAULT_ANALYSIS_MIN_POLL_INTERVAL,
    DEFAULT_ANALYSIS_POLL_INTERVAL,
    DEFAULT_CONN_ID,
    DEFAULT_ERROR_BUDGET_SECONDS,
    DEFAULT_MAX_CONSECUTIVE_ERRORS,
)
from airflow_provider_aiontheball.validation import id_or_template, validate_id
from airflow_provider_aiontheball.waiting import ANALYSIS_WAIT, WaitSettings, WaitTrigger

if TYPE_CHECKING:
    from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallAsyncHook


class AIOnTheBallAnalysisTrigger(WaitTrigger):
    """Poll an analysis until it is ``done`` with results available, fails, or the deadline passes.

    The analysis reports ``progress`` (0-100); the trigger estimates when it will finish from the rate
    progress rises and sleeps half the remaining time (between ``min_poll_interval`` and
    ``poll_interval``), then polls every ``min_poll_interval`` through the last few percent. Simulated
    over hundreds of 1-6 h analyses with noisy progress this needs far fewer calls than fixed polling and
    notices the finish within ``min_poll_interval`` (benchmarks/README.md, "Requests per wait"). Without
    progress it backs off adaptively up to 5 minutes. Failures, serialization and deadline as the video
    trigger. Yields one event::

        {"status": "success" | "failed" | "timeout" | "error", "analysis_id": 1247,
         "analysis_status": "done", "message": "...", "analysis": {...}}   # "analysis" on success only

    :param analysis_id: the analysis to wait for. Strings are accepted for both ids for a sensor started in
        the triggerer (``start_from_trigger``): Airflow renders their templates there, the trigger validates.
    :param aiontheball_conn_id: Airflow connection id. Default ``aiontheball_default``.
    :param poll_interval: longest interval between polls, in seconds. Default 1800.
    :param end_time: wall-clock deadline, epoch seconds. Default: none.
    :param min_poll_interval: interval near the finish, in seconds. Default 45.
    :param max_consecutive_errors: transient failures in a row tolerated. Default 10.
    :param error_budget_seconds: seconds of uninterrupted transient failures tolerated. Default 900.
    :param started_at: wall-clock start of the whole wait, epoch seconds. Default: now.
    :param video_id: the analysed video; lets the trigger follow the analysis through
        ``GET /videos/{id}`` if the server has no ``GET /analyses/{id}`` (undocumented). Default: none.
    :param execution_deadline: when the deferring task's ``execution_timeout`` runs out, epoch seconds;
        echoed in the event (``"execution_deadline"``) so the resumed task can tell it from the wait's own
        timeout. Default: none (kwarg and event key then absent: rows stored before it rebuild unchanged).
    :param finish_in_triggerer: end the task here on success (``TaskSuccessEvent`` with ``return_value``
        when ``push_return_value``) and skip it on a timeout when ``skip_on_timeout`` (see
        :mod:`airflow_provider_aiontheball.task_end`). Default: none, every outcome resumes the task on a
        worker (rows stored before this kwarg rebuild unchanged).
    :param polled_before: a request of this wait succeeded before it deferred (the sensor's poke, the create
        operator's POST): a refused token is then a rotation in progress, tolerated within the error budget
        while the hook reloads the connection. Default False: a first refusal ends the wait (a wrong token);
        the kwarg is stored only when true (rows stored before it rebuild unchanged).
    """

    policy = ANALYSIS_WAIT

    def __init__(
        self,
        analysis_id: int | str,
        aiontheball_conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float = DEFAULT_ANALYSIS_POLL_INTERVAL,
        end_time: float | None = None,
        min_poll_interval: float = DEFAULT_ANALYSIS_MIN_POLL_INTERVAL,
        max_consecutive_errors: int = DEFAULT_MAX_CONSECUTIVE_ERRORS,
        error_budget_seconds: float = DEFAULT_ERROR_BUDGET_SECONDS,
        started_at: float | None = None,
        video_id: int | str | None = None,
        execution_deadline: float | None = None,
        finish_in_triggerer: dict[str, bool] | None = None,
        polled_before: bool = False,
    ) -> None:
        super().__init__(
            aiontheball_conn_id=aiontheball_conn_id,
            settings=WaitSettings(poll_interval, min_poll_interval, max_consecutive_errors, error_budget_seconds),
            end_time=end_time,
            started_at=started_at,
            execution_deadline=execution_deadline,
            finish_in_triggerer=finish_in_triggerer,
            polled_before=polled_before,
        )
        self.analysis_id = id_or_template(analysis_id)
        self.video_id = None if video_id is None else id_or_template(video_id)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Only ids, the connection id, polling settings and the deadline; never a secret."""
        return (
            "airflow_provider_aiontheball.triggers.analysis.AIOnTheBallAnalysisTrigger",
            {"analysis_id": self.analysis_id, "video_id": self.video_id, **self.wait_kwargs()},
        )

    def target(self) -> tuple[int, Callable[[AIOnTheBallAsyncHook], Awaitable[dict[str, Any]]]]:
        analysis_id = validate_id(self.analysis_id, "analysis_id")
        video_id = validate_id(self.video_id, "video_id", optional=True)
        return analysis_id, lambda hook: hook.get_analysis(analysis_id, video_id=video_id)
