"""Sensor that waits for a video to become ``available`` (poke, reschedule or deferrable).

DAG files import this module: it imports no HTTP library, no hook and no waiting machinery at module
level (the hook is built on first use, :mod:`~airflow_provider_aiontheball.waiting` when poking).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_aiontheball._airflow import AirflowSensorTimeout, PokeReturnValue
from airflow_provider_aiontheball.links.video import AIOnTheBallVideoLink, push_link_xcom, reserve_link_xcom
from airflow_provider_aiontheball.sensors._base import SoftFailOnDeferralTimeout

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_aiontheball.waiting import Wait


class AIOnTheBallVideoSensor(SoftFailOnDeferralTimeout):
    """Wait until an AI on the Ball video is ``available``; return the video (XCom ``return_value``).

    ``available`` succeeds. ``error`` and ``no_match_detected``, a deleted video (404) and a refused
    token (401/403) fail the task at once, without retries. ``init``, ``downloading``,
    ``locally_available`` and any undocumented status (logged once) keep waiting. Transient API
    trouble (connection errors, 429, 5xx) is tolerated within an error budget; past it the task fails
    and Airflow's retries apply.

    In deferrable mode the sensor pokes once (no deferral if the video is already available or
    failed), then frees its worker slot and waits in the triggerer (polling adaptively: soon after a
    change, backing off up to ``poll_interval`` while nothing changes), until ``timeout``, so ``timeout``
    and ``soft_fail`` behave as in poke mode; an ``execution_timeout`` that runs out first ends the wait
    with ``AirflowTaskTimeout`` (counted over the whole try, as Airflow documents; Airflow 3 itself does
    not apply it to deferrals).

    :param video_id: id of the video (templated), e.g.
        ``"{{ ti.xcom_pull(task_ids='create_video', key='video_id') }}"`` or an ``XComArg``.
    :param aiontheball_conn_id: Airflow connection id. Default ``aiontheball_default``.
    :param deferrable: wait in the triggerer instead of a worker slot. Default: the
        ``[operators] default_deferrable`` setting (False unless configured).
    :param poll_interval: longest interval between polls of the deferred wait, in seconds. Default:
        ``poke_interval``.
    :param min_poll_interval: seconds between polls right after a status change (deferrable mode).
        Default 5.
    :param max_consecutive_errors: transient failures in a row tolerated. Default 10.
    :param error_budget_seconds: seconds of uninterrupted transient failures tolerated. Default 900.
    :param finish_in_triggerer: in deferrable mode, let the trigger end the task when the video is
        available (with the same XComs) or a ``soft_fail`` wait times out, so the wait costs one worker
        start instead of two; failures still resume on a worker (see
        :mod:`airflow_provider_aiontheball.task_end`). Not used with ``outlets``. Default True.
    :param start_from_trigger: start the wait in the triggerer: the scheduler defers the task itself, so a
        wait that succeeds runs no worker at all (Airflow 3.3+, not for mapped tasks; implies ``deferrable``;
        see :mod:`airflow_provider_aiontheball.task_start`). ``video_id`` must then be an int or a
        template string (rendered in the triggerer; an ``xcom_pull`` there needs ``map_indexes=-1``), not an
        ``XComArg``. There is no first poke, and ``timeout`` is Airflow's trigger timeout. On older Airflow:
        a warning at parse time, and the sensor defers from a worker. Default False.
    :param poke_interval: seconds between pokes in poke/reschedule mode. Default 60.
    :param timeout: seconds before the sensor times out (then ``soft_fail`` decides). Default 7 days.
    """

    template_fields: Sequence[str] = ("video_id",)
    operator_extra_links = (AIOnTheBallVideoLink(),)
    _trigger_classpath = "airflow_provider_aiontheball.triggers.video.AIOnTheBallVideoTrigger"
    _trigger_id_fields = ("video_id",)
    ui_color = "#2e7d32"
    ui_fgcolor = "#ffffff"

    default_poll_interval = None  # its poke_interval

    def __init__(
        self,
        *,
        video_id: int | str,
        start_from_trigger: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.video_id = video_id
        if start_from_trigger:
            self._start_in_triggerer()

    @property
    def _video_id(self) -> int:
        """The rendered id, validated (raises :class:`AIOnTheBallInputError` naming the field)."""
        from airflow_provider_aiontheball.exceptions import bad_input_fails_task
        from airflow_provider_aiontheball.validation import validate_id

        with bad_input_fails_task():
            return validate_id(self.video_id, "video_id")

    @property
    def _poll_interval(self) -> float:
        return self.poke_interval if self.poll_interval is None else self.poll_interval

    @cached_property
    def _wait(self) -> Wait:
        from airflow_provider_aiontheball.waiting import VIDEO_WAIT, Wait

        # Wall clock for the error budget in reschedule mode: the streak continues in a later poke's process.
        clock = time.time if self.reschedule else time.monotonic
        return Wait(
            VIDEO_WAIT, self._video_id, self.aiontheball_conn_id, self.log, self._settings, budget_clock=clock,
            announce_delay=False,
        )  # fmt: skip

    def execute(self, context: Context) -> Any:
        video_id = self._video_id  # bad input fails here, before any request
        reserve_link_xcom(context)
        if not self.deferrable:
            return super().execute(context)
        # Poke once first: a video that is already available (or failed) needs no triggerer round trip.
        result = self.poke(context)
        if isinstance(result, PokeReturnValue) and result.is_done:
            return result.xcom_value
        from airflow_provider_aiontheball.deadlines import DeferralLimit
        from airflow_provider_aiontheball.task_end import finish_spec
        from airflow_provider_aiontheball.triggers.video import AIOnTheBallVideoTrigger

        limit = DeferralLimit.of(self, context, self.timeout)  # execution_timeout too
        self.defer(
            trigger=AIOnTheBallVideoTrigger(
                video_id=video_id,
                aiontheball_conn_id=self.aiontheball_conn_id,
                end_time=limit.end_time,
                execution_deadline=limit.execution_deadline,
                finish_in_triggerer=finish_spec(self, context, sensor=True),
                polled_before=self._wait.succeeded_before,  # the poke just before deferring
                **self._settings.trigger_kwargs(),
            ),
            method_name="execute_complete",
            timeout=limit.timeout,
        )

    def poke(self, context: Context) -> PokeReturnValue | bool:
        """One poll: done (with the video as XCom), still waiting, or an exception that ends the task."""
        from airflow_provider_aiontheball.waiting import poke

        video_id = self._video_id
        video = poke(self._wait, lambda: self.hook.get_video(video_id), context, reschedule=self.reschedule)
        if video is None:
            return False
        push_link_xcom(context, video)
        return PokeReturnValue(is_done=True, xcom_value=video)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Resume after the trigger fired. Fails closed: only a ``success`` event passes."""
        from airflow_provider_aiontheball.deadlines import timeout_error
        from airflow_provider_aiontheball.task_end import result_from_event

        video = result_from_event(event, "video", timeout_error(self, context, AirflowSensorTimeout, event))
        self.log.info("%s", (event or {}).get("message"))
        push_link_xcom(context, video)
        return video
