"""Operators that create, update and delete AI on the Ball videos.

A video id travels: :class:`AIOnTheBallCreateVideoOperator` POSTs the video and pushes XCom
``video_id`` (and ``game_name``) at once → a downstream ``AIOnTheBallVideoSensor`` (or the create
operator itself with ``wait_for_available=True``) waits in the triggerer → the video dict is the
task's ``return_value`` for downstream tasks.

DAG files import this module: it imports no HTTP library and builds no hook until ``execute``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import conf

from airflow_provider_aiontheball.defaults import (
    DEFAULT_CONN_ID,
    DEFAULT_ERROR_BUDGET_SECONDS,
    DEFAULT_MAX_CONSECUTIVE_ERRORS,
    DEFAULT_MIN_POLL_INTERVAL,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_VIDEO_WAIT_TIMEOUT,
)
from airflow_provider_aiontheball.links.video import (
    XCOM_GAME_NAME,
    XCOM_MP4_SOURCE,
    XCOM_VIDEO_ID,
    AIOnTheBallVideoLink,
    reserve_link_xcom,
)
from airflow_provider_aiontheball.operators._base import AIOnTheBallBaseOperator, created_since, run_started

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_aiontheball.triggers.video import AIOnTheBallVideoTrigger

#: Fields an earlier attempt's video can be recognised by in ``GET /videos`` (documented list fields).
_IDENTIFYING_FIELDS = ("video_file_url", "title", "home_team_name", "away_team_name")


class AIOnTheBallCreateVideoOperator(AIOnTheBallBaseOperator):
    """Create an AI on the Ball video from a public URL, and optionally wait until it is ``available``.

    As soon as the POST succeeds the task pushes XCom ``video_id`` and ``game_name``, so downstream
    sensors, the extra link and clean-up tasks work even if a later wait fails. It returns the video
    (XCom ``return_value``): the created video, or with ``wait_for_available=True`` the available one.

    **Retries never duplicate a video.** When a new try starts after an earlier try of the same DAG
    run failed or crashed, or when the response to the POST was lost (timeout, connection reset), the
    operator first looks for the video that attempt may have created — same submitted fields, created
    since the DAG run started — and reuses it, saying so in the log. To be recognisable a video needs a
    ``title`` or team names (the API's video list shows those), so set at least one.

    Every request field is templated and validated after rendering, before any request: a bad value
    fails the task at once (no retries) with a message naming the field.

    :param video_file_url: public http(s) URL of the MP4 (the API downloads it). Required.
    :param title: display title. Default: none.
    :param home_team_name: home team name (labels in the summary and queries). Default: none.
    :param away_team_name: away team name. Default: none.
    :param date: match date: ``YYYY-MM-DD``, ``date`` or ``datetime``. Default: none.
    :param start_offset_seconds: seconds trimmed from the start. Default: none.
    :param end_offset_seconds: end offset in seconds; must exceed the start offset. Default: none.
    :param left_start_team: ``home`` or ``away``: which team starts on the left. Default: none.
    :param wait_for_available: wait until the video is ``available`` (or fails). Default False.
    :param deferrable: wait in the triggerer, freeing the worker slot. Default: the
        ``[operators] default_deferrable`` setting.
    :param poll_interval: longest seconds between status polls while waiting. Default 60.
    :param timeout: seconds to wait for ``available`` before failing (retries apply). Default 6 h.
    :param min_poll_interval: seconds between polls right after a status change. Default 5.
    :param aiontheball_conn_id: Airflow connection id. Default ``aiontheball_default``.
    """

    template_fields: Sequence[str] = (
        "video_file_url",
        "title",
        "home_team_name",
        "away_team_name",
        "date",
        "start_offset_seconds",
        "end_offset_seconds",
        "left_start_team",
    )
    operator_extra_links = (AIOnTheBallVideoLink(),)
    ui_color = "#1b5e20"
    ui_fgcolor = "#ffffff"

    def __init__(
        self,
        *,
        video_file_url: str,
        title: str | None = None,
        home_team_name: str | None = None,
        away_team_name: str | None = None,
        date: Any = None,
        start_offset_seconds: int | str | None = None,
        end_offset_seconds: int | str | None = None,
        left_start_team: str | None = None,
        wait_for_available: bool = False,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        timeout: float = DEFAULT_VIDEO_WAIT_TIMEOUT,
        min_poll_interval: float = DEFAULT_MIN_POLL_INTERVAL,
        max_consecutive_errors: int = DEFAULT_MAX_CONSECUTIVE_ERRORS,
        error_budget_seconds: float = DEFAULT_ERROR_BUDGET_SECONDS,
        aiontheball_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(aiontheball_conn_id=aiontheball_conn_id, **kwargs)
        self.video_file_url = video_file_url
        self.title = title
        self.home_team_name = home_team_name
        self.away_team_name = away_team_name
        self.date = date
        self.start_offset_seconds = start_offset_seconds
        self.end_offset_seconds = end_offset_seconds
        self.left_start_team = left_start_team
        self.wait_for_available = wait_for_available
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.min_poll_interval = min_poll_interval
        self.max_consecutive_errors = max_consecutive_errors
        self.error_budget_seconds = error_budget_seconds

    @property
    def request_fields(self) -> dict[str, Any]:
        """The (rendered) fields of the POST, by API name."""
        return {name: getattr(self, name) for name in self.template_fields}

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_aiontheball.exceptions import bad_input_fails_task
        from airflow_provider_aiontheball.validation import video_create_body

        reserve_link_xcom(context)
        with bad_input_fails_task():
            body = video_create_body(self.request_fields)
        video = self._create_once(body, context)
        video_id = int(video["id"])
        ti = context["ti"]
        ti.xcom_push(key=XCOM_VIDEO_ID, value=video_id)
        ti.xcom_push(key=XCOM_GAME_NAME, value=video.get("game_name"))
        if not self.wait_for_available:
            return video
        if self.deferrable:
            self._defer_until_available(video_id)  # raises TaskDeferred; the task resumes in execute_complete
        video = self._wait_in_process(video_id)
        self._push_link(context, video)
        return video

    # -- idempotent create ---------------------------------------------------------------------

    def _create_once(self, body: dict[str, Any], context: Context) -> dict[str, Any]:
        """POST the video unless an earlier attempt of this task already created it."""
        from airflow_provider_aiontheball.exceptions import AIOnTheBallTransportError

        try_number = getattr(context["ti"], "try_number", 1) or 1
        if try_number > 1:
            since = run_started(context)
            if since is None:
                self.log.warning(
                    "Try %d, but the DAG run's start is unknown: cannot look for an earlier try's video.", try_number
                )
            elif (earlier := self._find_created_video(body, since)) is not None:
                self.log.info(
                    "Reusing video %s (%s): an earlier try of this task created it with the same fields "
                    "(this is try %d); not creating a duplicate.",
                    earlier["id"],
                    earlier.get("game_name"),
                    try_number,
                )
                return earlier
        posted_at = dt.datetime.now(dt.UTC)
        try:
            video = self.hook.create_video(**body)
        except AIOnTheBallTransportError as exc:
            if not exc.may_have_reached_server:
                raise
            # The server may have created the video and only the answer was lost.
            self.log.warning(
                "The response to POST /videos was lost (%s); looking for the video it may have created.", exc.reason
            )
            earlier = self._find_created_video(body, posted_at)
            if earlier is not None:
                self.log.info(
                    "Reusing video %s (%s): the lost POST did create it; not creating a duplicate.",
                    earlier["id"],
                    earlier.get("game_name"),
                )
                return earlier
            self.log.info("No video was created by the lost POST; sending it again.")
            video = self.hook.create_video(**body)
        self.log.info(
            "Created video %s (%s) with status %s from %s",
            video.get("id"),
            video.get("game_name"),
            video.get("status"),
            body["video_file_url"],
        )
        return video

    def _find_created_video(self, body: dict[str, Any], since: dt.datetime) -> dict[str, Any] | None:
        """The newest video created since ``since`` whose listed fields equal the submitted ones.

        Only fields the list shows are compared: it documents title and team names; the URL, date and
        offsets are compared too when a server includes them. A video that shares no identifying
        field with the request is never taken for ours.
        """
        if not any(body.get(name) for name in _IDENTIFYING_FIELDS[1:]):
            self.log.warning(
                "No title or team names were given: an earlier attempt's video can only be recognised if the "
                "API's video list shows its URL. Set a title to make retries reliably idempotent."
            )
        matches: list[dict[str, Any]] = []
        for video in self.hook.list_videos():
            shared = [name for name in body if name in video]
            if not created_since(video, since) or not set(shared) & set(_IDENTIFYING_FIELDS):
                continue
            if all(video[name] == body[name] for name in shared):
                matches.append(video)
        if len(matches) > 1:
            self.log.warning(
                "Several videos match the submitted fields (ids %s); reusing the newest.",
                ", ".join(str(video["id"]) for video in matches),
            )
        return max(matches, key=lambda video: str(video["created_at"])) if matches else None

    # -- waiting ---------------------------------------------------------------------------------

    def _trigger(self, video_id: int) -> AIOnTheBallVideoTrigger:
        from airflow_provider_aiontheball.triggers.video import AIOnTheBallVideoTrigger

        return AIOnTheBallVideoTrigger(
            video_id=video_id,
            aiontheball_conn_id=self.aiontheball_conn_id,
            poll_interval=self.poll_interval,
            end_time=time.time() + self.timeout,
            min_poll_interval=self.min_poll_interval,
            max_consecutive_errors=self.max_consecutive_errors,
            error_budget_seconds=self.error_budget_seconds,
        )

    def _defer_until_available(self, video_id: int) -> None:
        self.defer(
            trigger=self._trigger(video_id),
            method_name="execute_complete",
            timeout=dt.timedelta(seconds=self.timeout),
        )

    def _wait_in_process(self, video_id: int) -> dict[str, Any]:
        from airflow_provider_aiontheball._waiting import WaitObserver, wait_sync
        from airflow_provider_aiontheball.polling import ErrorBudget
        from airflow_provider_aiontheball.statuses import VIDEO_STATUSES

        trigger = self._trigger(video_id)  # the same schedule as the deferred wait, run in-process
        return wait_sync(
            WaitObserver(VIDEO_STATUSES, video_id, self.aiontheball_conn_id, self.log),
            ErrorBudget(self.max_consecutive_errors, self.error_budget_seconds),
            trigger.new_schedule(),
            lambda: self.hook.get_video(video_id),
            self.timeout,
            next_interval=trigger.next_interval,
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the trigger fired: the available video, or an error (only ``success`` passes)."""
        from airflow_provider_aiontheball._waiting import result_from_event
        from airflow_provider_aiontheball.exceptions import AIOnTheBallWaitError

        video = result_from_event(event, "video", AIOnTheBallWaitError)
        self.log.info("%s", (event or {}).get("message"))
        self._push_link(context, video)
        return video

    @staticmethod
    def _push_link(context: Context, video: dict[str, Any]) -> None:
        if video.get("mp4_source"):
            context["ti"].xcom_push(key=XCOM_MP4_SOURCE, value=video["mp4_source"])


class AIOnTheBallUpdateVideoOperator(AIOnTheBallBaseOperator):
    """Update a video's metadata (``PUT /videos/{id}``) and return the updated video.

    Only the fields the API's update documents can be changed; fields left ``None`` are not sent.
    All are templated and validated after rendering, before any request.

    :param video_id: the video to update (templated; e.g. the create task's XCom ``video_id``).
    :param title: new display title. Default: unchanged.
    :param home_team_name: new home team name. Default: unchanged.
    :param away_team_name: new away team name. Default: unchanged.
    :param date: new match date (``YYYY-MM-DD``, ``date`` or ``datetime``). Default: unchanged.
    :param start_offset_seconds: new start offset. Default: unchanged.
    :param end_offset_seconds: new end offset. Default: unchanged.
    :param aiontheball_conn_id: Airflow connection id. Default ``aiontheball_default``.
    """

    #: The fields ``PUT /videos/{id}`` documents (``validation.VIDEO_UPDATE_FIELDS``), plus the id.
    template_fields: Sequence[str] = (
        "video_id",
        "title",
        "home_team_name",
        "away_team_name",
        "date",
        "start_offset_seconds",
        "end_offset_seconds",
    )
    ui_color = "#1b5e20"
    ui_fgcolor = "#ffffff"

    def __init__(
        self,
        *,
        video_id: int | str,
        title: str | None = None,
        home_team_name: str | None = None,
        away_team_name: str | None = None,
        date: Any = None,
        start_offset_seconds: int | str | None = None,
        end_offset_seconds: int | str | None = None,
        aiontheball_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(aiontheball_conn_id=aiontheball_conn_id, **kwargs)
        self.video_id = video_id
        self.title = title
        self.home_team_name = home_team_name
        self.away_team_name = away_team_name
        self.date = date
        self.start_offset_seconds = start_offset_seconds
        self.end_offset_seconds = end_offset_seconds

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_aiontheball.exceptions import bad_input_fails_task
        from airflow_provider_aiontheball.validation import VIDEO_UPDATE_FIELDS, validate_id, video_update_body

        with bad_input_fails_task():
            video_id = validate_id(self.video_id)
            body = video_update_body({name: getattr(self, name) for name in VIDEO_UPDATE_FIELDS})
        video = self.hook.update_video(video_id, **body)
        self.log.info("Updated video %s: %s", video_id, ", ".join(sorted(body)))
        return video


class AIOnTheBallDeleteVideoOperator(AIOnTheBallBaseOperator):
    """Delete a video — irreversibly, with all its analyses (``DELETE /videos/{id}``).

    :param video_id: the video to delete (templated).
    :param missing_ok: treat a video that no longer exists (404) as deleted. Default True, so a
        clean-up task can run again safely.
    :param aiontheball_conn_id: Airflow connection id. Default ``aiontheball_default``.
    """

    template_fields: Sequence[str] = ("video_id",)
    ui_color = "#b71c1c"
    ui_fgcolor = "#ffffff"

    def __init__(
        self,
        *,
        video_id: int | str,
        missing_ok: bool = True,
        aiontheball_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(aiontheball_conn_id=aiontheball_conn_id, **kwargs)
        self.video_id = video_id
        self.missing_ok = missing_ok

    def execute(self, context: Context) -> int:
        from airflow_provider_aiontheball.exceptions import (
            AIOnTheBallNotFoundError,
            AIOnTheBallTerminalError,
            bad_input_fails_task,
        )
        from airflow_provider_aiontheball.validation import validate_id

        with bad_input_fails_task():
            video_id = validate_id(self.video_id)
        self.log.warning("Deleting video %s and all its analyses; this cannot be undone.", video_id)
        try:
            self.hook.delete_video(video_id)
        except AIOnTheBallNotFoundError as exc:
            if not self.missing_ok:
                raise AIOnTheBallTerminalError(
                    f"video {video_id} cannot be deleted: it does not exist ({exc.detail})"
                ) from exc
            self.log.info("Video %s does not exist (already deleted?); nothing to do.", video_id)
            return video_id
        self.log.info("Deleted video %s.", video_id)
        return video_id
