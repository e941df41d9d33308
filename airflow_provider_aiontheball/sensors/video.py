"""Sensor that waits for a video to become ``available`` (poke, reschedule or deferrable)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_aiontheball.defaults import DEFAULT_CONN_ID
from airflow_provider_aiontheball.links.video import XCOM_MP4_SOURCE, AIOnTheBallVideoLink, reserve_link_xcom
from airflow_provider_aiontheball.sensors._base import AIOnTheBallWaitSensor

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_aiontheball.triggers.video import AIOnTheBallVideoTrigger


class AIOnTheBallVideoSensor(AIOnTheBallWaitSensor):
    """Wait until an AI on the Ball video is ``available``; return the video (XCom ``return_value``).

    ``available`` succeeds. ``error`` and ``no_match_detected``, a deleted video (404) and a refused
    token (401/403) fail the task at once, without retries. ``init``, ``downloading``,
    ``locally_available`` and any undocumented status (logged once) keep waiting. Transient API
    trouble (connection errors, 429, 5xx) is tolerated within an error budget; past it the task fails
    and Airflow's retries apply.

    In deferrable mode the sensor pokes once, then frees its worker slot and waits in the triggerer
    (polling adaptively: soon after a change, backing off up to ``poke_interval`` while nothing
    changes). ``timeout`` and ``soft_fail`` behave as in poke mode.

    :param video_id: id of the video (templated), e.g.
        ``"{{ ti.xcom_pull(task_ids='create_video', key='video_id') }}"`` or an ``XComArg``.
    :param aiontheball_conn_id: Airflow connection id. Default ``aiontheball_default``.
    :param deferrable: wait in the triggerer instead of a worker slot. Default: the
        ``[operators] default_deferrable`` setting (False unless configured).
    :param min_poll_interval: seconds between polls right after a status change (deferrable mode).
        Default 5.
    :param max_consecutive_errors: transient failures in a row tolerated. Default 10.
    :param error_budget_seconds: seconds of uninterrupted transient failures tolerated. Default 900.
    :param poke_interval: seconds between pokes, and the longest interval of the deferred wait.
        Default 60.
    :param timeout: seconds before the sensor times out (then ``soft_fail`` decides). Default 7 days.
    """

    template_fields: Sequence[str] = ("video_id",)
    operator_extra_links = (AIOnTheBallVideoLink(),)
    ui_color = "#2e7d32"
    ui_fgcolor = "#ffffff"

    resource = "video"
    id_field = "video_id"

    def __init__(
        self,
        *,
        video_id: int | str,
        aiontheball_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(aiontheball_conn_id=aiontheball_conn_id, **kwargs)
        self.video_id = video_id

    def fetch(self, resource_id: int) -> dict[str, Any]:
        return self.hook.get_video(resource_id)

    def execute(self, context: Context) -> Any:
        reserve_link_xcom(context)
        return super().execute(context)

    def on_success(self, context: Context, resource: dict[str, Any]) -> None:
        # For the "AI on the Ball video" link: built from XCom, never by calling the API on page load.
        if resource.get("mp4_source"):
            context["ti"].xcom_push(key=XCOM_MP4_SOURCE, value=resource["mp4_source"])

    def build_trigger(self, resource_id: int, end_time: float) -> AIOnTheBallVideoTrigger:
        from airflow_provider_aiontheball.triggers.video import AIOnTheBallVideoTrigger

        return AIOnTheBallVideoTrigger(
            video_id=resource_id,
            aiontheball_conn_id=self.aiontheball_conn_id,
            poll_interval=self.poke_interval,
            end_time=end_time,
            min_poll_interval=self.min_poll_interval,
            max_consecutive_errors=self.max_consecutive_errors,
            error_budget_seconds=self.error_budget_seconds,
        )
