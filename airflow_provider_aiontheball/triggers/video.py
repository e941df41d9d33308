"""Trigger that waits, in the triggerer, for a video to become ``available`` or fail for good."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_aiontheball.hooks._client import DEFAULT_CONN_ID
from airflow_provider_aiontheball.polling import (
    DEFAULT_ERROR_BUDGET_SECONDS,
    DEFAULT_MAX_CONSECUTIVE_ERRORS,
    DEFAULT_MIN_POLL_INTERVAL,
    DEFAULT_POLL_INTERVAL,
)
from airflow_provider_aiontheball.statuses import VIDEO_STATUSES
from airflow_provider_aiontheball.triggers._base import AIOnTheBallWaitTrigger

if TYPE_CHECKING:
    from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallAsyncHook


class AIOnTheBallVideoTrigger(AIOnTheBallWaitTrigger):
    """Poll ``GET /videos/{id}`` until the video is ``available``, fails, or the deadline passes.

    Polls at once, then every ``min_poll_interval`` seconds after a status change, growing by half each time up to
    ``poll_interval`` while nothing changes. Yields one event:
    ``{"status": "success" | "failed" | "timeout" | "error", "video_id", "video_status", "message"}``
    plus ``"video"`` (the video object) on success.

    :param video_id: the video to wait for.
    :param aiontheball_conn_id: Airflow connection id. Default ``aiontheball_default``.
    :param poll_interval: longest interval between polls, in seconds. Default 60.
    :param end_time: wall-clock deadline, epoch seconds. Default: none.
    :param min_poll_interval: interval after a status change, in seconds. Default 5.
    :param max_consecutive_errors: transient failures in a row tolerated. Default 10.
    :param error_budget_seconds: seconds of uninterrupted transient failures tolerated. Default 900.
    :param started_at: wall-clock start of the whole wait, epoch seconds. Default: now.
    """

    resource = "video"
    vocabulary = VIDEO_STATUSES
    id_kwarg = "video_id"

    def __init__(
        self,
        video_id: int,
        aiontheball_conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        end_time: float | None = None,
        min_poll_interval: float = DEFAULT_MIN_POLL_INTERVAL,
        max_consecutive_errors: int = DEFAULT_MAX_CONSECUTIVE_ERRORS,
        error_budget_seconds: float = DEFAULT_ERROR_BUDGET_SECONDS,
        started_at: float | None = None,
    ) -> None:
        super().__init__(
            video_id,
            aiontheball_conn_id=aiontheball_conn_id,
            poll_interval=poll_interval,
            end_time=end_time,
            min_poll_interval=min_poll_interval,
            max_consecutive_errors=max_consecutive_errors,
            error_budget_seconds=error_budget_seconds,
            started_at=started_at,
        )

    @property
    def video_id(self) -> int:
        return self.resource_id

    async def fetch(self, hook: AIOnTheBallAsyncHook) -> dict[str, Any]:
        return await hook.get_video(self.resource_id)
