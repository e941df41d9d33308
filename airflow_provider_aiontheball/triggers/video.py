"""Trigger that waits, in the triggerer, for a video to become ``available`` or fail for good.

Its classpath and kwargs are stored in users' trigger rows: only add kwargs with defaults, never rename
or move the class. The wait itself is :class:`airflow_provider_aiontheball.waiting.WaitTrigger`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from airflow_provider_aiontheball.defaults import (
    DEFAULT_CONN_ID,
    DEFAULT_ERROR_BUDGET_SECONDS,
    DEFAULT_MAX_CONSECUTIVE_ERRORS,
    DEFAULT_MIN_POLL_INTERVAL,
    DEFAULT_POLL_INTERVAL,
)
from airflow_provider_aiontheball.links.video import link_xcoms
from airflow_provider_aiontheball.validation import id_or_template, validate_id
from airflow_provider_aiontheball.waiting import VIDEO_WAIT, WaitSettings, WaitTrigger

if TYPE_CHECKING:
    from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallAsyncHook


class AIOnTheBallVideoTrigger(WaitTrigger):
    """Poll ``GET /videos/{id}`` until the video is ``available``, fails, or the deadline passes.

    Polls first at a random moment within ``min_poll_interval`` (waits deferred together spread out; the
    sensor poked just before deferring), then every ``min_poll_interval`` seconds after a status change,
    growing by half each time up to ``poll_interval`` while nothing changes (each interval ±10 %).
    Transient failures (connection errors, timeouts, 429, 5xx, garbled bodies) are tolerated within the
    error budget; ``Retry-After`` sets the next interval. Serializes ids, the connection id, settings
    and a wall-clock deadline — never a token — so a triggerer restart rebuilds the same wait with the
    same deadline. Yields one event::

        {"status": "success" | "failed" | "timeout" | "error", "video_id": 790,
         "video_status": "available", "message": "...", "video": {...}}   # "video" on success only

    :param video_id: the video to wait for. A string is accepted for a sensor started in the triggerer
        (``start_from_trigger``): Airflow renders its template there, and the trigger validates the result.
    :param aiontheball_conn_id: Airflow connection id. Default ``aiontheball_default``.
    :param poll_interval: longest interval between polls, in seconds. Default 60.
    :param end_time: wall-clock deadline, epoch seconds. Default: none.
    :param min_poll_interval: interval after a status change, in seconds. Default 5.
    :param max_consecutive_errors: transient failures in a row tolerated. Default 10.
    :param error_budget_seconds: seconds of uninterrupted transient failures tolerated. Default 900.
    :param execution_deadline: when the deferring task's ``execution_timeout`` runs out, epoch seconds;
        echoed in the event (``"execution_deadline"``) so the resumed task can tell it from the wait's own
        timeout. Default: none (kwarg and event key then absent: rows stored before it rebuild unchanged).
    :param finish_in_triggerer: end the task here on success (``TaskSuccessEvent`` with its XComs:
        ``return_value`` when ``push_return_value``, ``mp4_source`` and the extra link's URL) and skip it on
        a timeout when ``skip_on_timeout`` (see :mod:`airflow_provider_aiontheball.task_end`); built by
        :func:`~airflow_provider_aiontheball.task_end.finish_spec`. Default: none, every outcome resumes
        the task on a worker (rows stored before this kwarg rebuild unchanged).
    :param started_at: wall-clock start of the whole wait, epoch seconds (messages after a triggerer
        restart still say how long the whole wait took). Default: now.
    :param polled_before: a request of this wait succeeded before it deferred (the sensor's poke, the create
        operator's POST): a refused token is then a rotation in progress, tolerated within the error budget
        while the hook reloads the connection. Default False: a first refusal ends the wait (a wrong token);
        the kwarg is stored only when true (rows stored before it rebuild unchanged).
    """

    policy = VIDEO_WAIT

    def __init__(
        self,
        video_id: int | str,
        aiontheball_conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        end_time: float | None = None,
        min_poll_interval: float = DEFAULT_MIN_POLL_INTERVAL,
        max_consecutive_errors: int = DEFAULT_MAX_CONSECUTIVE_ERRORS,
        error_budget_seconds: float = DEFAULT_ERROR_BUDGET_SECONDS,
        started_at: float | None = None,
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
        self.video_id = id_or_template(video_id)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Only ids, the connection id, polling settings and the deadline; never a secret."""
        return (
            "airflow_provider_aiontheball.triggers.video.AIOnTheBallVideoTrigger",
            {"video_id": self.video_id, **self.wait_kwargs()},
        )

    def target(self) -> tuple[int, Callable[[AIOnTheBallAsyncHook], Awaitable[dict[str, Any]]]]:
        video_id = validate_id(self.video_id, "video_id")
        return video_id, lambda hook: hook.get_video(video_id)

    def xcoms_of(self, resource: dict[str, Any]) -> dict[str, Any]:
        return link_xcoms(resource)
