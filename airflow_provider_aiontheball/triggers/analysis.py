"""Trigger that waits, in the triggerer, for an analysis to be ``done`` — polling near its expected finish.

Its classpath and kwargs are stored in users' trigger rows: only add kwargs with defaults, never rename
or move the class. The wait itself is :func:`airflow_provider_aiontheball.waiting.wait_in_triggerer`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_aiontheball.defaults import (
    DEFAULT_ANALYSIS_MIN_POLL_INTERVAL,
    DEFAULT_ANALYSIS_POLL_INTERVAL,
    DEFAULT_CONN_ID,
    DEFAULT_ERROR_BUDGET_SECONDS,
    DEFAULT_MAX_CONSECUTIVE_ERRORS,
)
from airflow_provider_aiontheball.task_end import bad_input_event, trigger_event
from airflow_provider_aiontheball.validation import id_or_template, validate_id
from airflow_provider_aiontheball.waiting import ANALYSIS_WAIT, Wait, WaitSettings, wait_in_triggerer


class AIOnTheBallAnalysisTrigger(BaseTrigger):
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
        super().__init__()
        self.analysis_id = id_or_template(analysis_id)
        self.aiontheball_conn_id = aiontheball_conn_id
        self.settings = WaitSettings(poll_interval, min_poll_interval, max_consecutive_errors, error_budget_seconds)
        self.end_time = None if end_time is None else float(end_time)
        self.started_at = time.time() if started_at is None else float(started_at)
        self.video_id = None if video_id is None else id_or_template(video_id)
        self.execution_deadline = None if execution_deadline is None else float(execution_deadline)
        self.finish_in_triggerer = dict(finish_in_triggerer) if finish_in_triggerer else None
        self.polled_before = bool(polled_before)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Only ids, the connection id, polling settings and the deadline; never a secret."""
        return (
            "airflow_provider_aiontheball.triggers.analysis.AIOnTheBallAnalysisTrigger",
            {
                "analysis_id": self.analysis_id,
                "aiontheball_conn_id": self.aiontheball_conn_id,
                **self.settings.trigger_kwargs(),
                "end_time": self.end_time,
                "started_at": self.started_at,
                "video_id": self.video_id,
                **({} if self.execution_deadline is None else {"execution_deadline": self.execution_deadline}),
                **({} if self.finish_in_triggerer is None else {"finish_in_triggerer": self.finish_in_triggerer}),
                **({"polled_before": True} if self.polled_before else {}),
            },
        )

    def __repr__(self) -> str:
        return (
            f"AIOnTheBallAnalysisTrigger(analysis_id={self.analysis_id}, "
            f"aiontheball_conn_id={self.aiontheball_conn_id!r}, end_time={self.end_time})"
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            analysis_id = validate_id(self.analysis_id, "analysis_id")
            video_id = validate_id(self.video_id, "video_id", optional=True)
        except ValueError as exc:  # a template rendered in the triggerer (start_from_trigger) to a non-id
            yield bad_input_event(ANALYSIS_WAIT, str(exc))
            return
        wait = Wait(
            ANALYSIS_WAIT,
            analysis_id,
            self.aiontheball_conn_id,
            self.log,
            self.settings,
            started_at=self.started_at,
            end_time=self.end_time,
            polled_before=self.polled_before,
        )
        decision = await wait_in_triggerer(wait, lambda hook: hook.get_analysis(analysis_id, video_id=video_id))
        yield await trigger_event(
            self,
            ANALYSIS_WAIT,
            analysis_id,
            decision,
            execution_deadline=self.execution_deadline,
            finish=self.finish_in_triggerer,
        )
