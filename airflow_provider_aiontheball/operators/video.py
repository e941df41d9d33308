"""Operators that create, update and delete AI on the Ball videos.

A video id travels: :class:`AIOnTheBallCreateVideoOperator` POSTs the video and pushes XCom
``video_id`` (and ``game_name``) at once → a downstream ``AIOnTheBallVideoSensor`` (or the create
operator itself with ``wait_for_available=True``) waits in the triggerer → the video dict is the
task's ``return_value`` for downstream tasks.

DAG files import this module: it imports no HTTP library and builds no hook until ``execute``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

# From where airflow.providers.common.compat.sdk finds it (newest first), without importing that layer:
# it would add to every DAG-file parse (benchmarks/README.md, "DAG-parse cost").
from airflow_provider_aiontheball.defaults import (
    DEFAULT_CONN_ID,
    DEFAULT_PRESIGN_EXPIRES_IN,
    DEFAULT_VIDEO_WAIT_TIMEOUT,
    STATE_KEY_VIDEO,
    XCOM_GAME_NAME,
    XCOM_PREFLIGHT,
    XCOM_VIDEO_ID,
)
from airflow_provider_aiontheball.links.video import AIOnTheBallVideoLink, push_link_xcom, reserve_link_xcom
from airflow_provider_aiontheball.operators._base import AIOnTheBallBaseOperator, CreateTask

if TYPE_CHECKING:
    import datetime
    from collections.abc import Callable

    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_aiontheball.deadlines import DeferralLimit
    from airflow_provider_aiontheball.operators._base import CreationWindow
    from airflow_provider_aiontheball.sources import ObjectSource
    from airflow_provider_aiontheball.triggers.video import AIOnTheBallVideoTrigger

#: Fields of a request that the documented ``GET /videos`` items show, so a video can be recognised by.
_DOCUMENTED_IDENTIFYING_FIELDS = ("title", "home_team_name", "away_team_name")
#: The same, plus the URL for servers that list it (undocumented: coped with, never relied on).
_IDENTIFYING_FIELDS = ("video_file_url", *_DOCUMENTED_IDENTIFYING_FIELDS)


def _same_value(name: str, listed: Any, submitted: Any) -> bool:
    if name == "video_file_url" and isinstance(listed, str):
        # The hooks cut a listed URL to scheme, host and path (hooks/_client.without_url_secrets).
        from airflow_provider_aiontheball.validation import url_identity

        return url_identity(listed) == url_identity(str(submitted))
    if name == "date" and isinstance(listed, str):
        return listed[:10] == str(submitted)  # "2025-01-15" or "2025-01-15T00:00:00Z"
    return bool(listed == submitted)


class AIOnTheBallCreateVideoOperator(CreateTask):
    """Create an AI on the Ball video from a public URL or a file in object storage (S3, GCS, Azure Blob
    Storage, presigned at execute time), and optionally wait until it is ``available``.

    As soon as the POST succeeds the task pushes XCom ``video_id`` and ``game_name``, so downstream
    sensors, the extra link and clean-up tasks work even if a later wait fails. It returns the video
    (XCom ``return_value``): the created video, or with ``wait_for_available=True`` the available one.

    **Retries never duplicate a video, and never take another's** (docs/exactly-once.md, "Exactly
    once"). On Airflow 3.3+ the id is kept in the task state store the moment the
    POST returns, and a retry reattaches to exactly that video (a new one is created only if it is gone
    or failed); a presigned URL re-signed for the retry is the same request. A POST whose answer is
    lost, or that gets a 5xx, is never re-sent: the operator looks for the video it created after the
    POST by the server's clock for up to ``commit_grace_period`` seconds, else fails the try (naming the
    candidates if several match), and the next try looks again first. A refused token or field fails
    the task without retries. Without a task state store (Airflow < 3.3, ``durable=False``) a retry
    looks for a video created since the DAG run started with the same title and team names that no
    other task of the run claims: give each create task a distinct ``title`` or team names.

    Every request field is templated and validated after rendering, before any request: a bad value
    fails the task at once (no retries) with a message naming the field.

    :param video_file_url: where the API downloads the MP4 from: a public http(s) URL, or a path in object
        storage — ``s3://bucket/key``, ``gs://bucket/key``, ``abfs://container/path`` (also ``s3a``, ``gcs``,
        ``abfss``, ``az``, ``wasb(s)://container@account.blob.core.windows.net/path``) or an ``ObjectStoragePath``
        — which the task presigns at execute time with ``source_conn_id`` (docs: "Videos in object storage").
        Required.
    :param source_conn_id: the Airflow connection that presigns an object-storage ``video_file_url``. Default: the
        one the path names (``ObjectStoragePath.conn_id``, ``s3://conn_id@bucket/key``), else the store's
        conventional id: ``aws_default``, ``google_cloud_default``, ``wasb_default``.
    :param presign_expires_in: how long the presigned URL stays valid, in seconds or as a ``timedelta``: the API
        downloads the video some time after the POST (when is not documented). More than the pre-flight margin
        (15 minutes), at most 7 days (the longest S3 and GCS signatures). Default 24 hours.
    :param title: display title. Default: none.
    :param home_team_name: home team name (labels in the summary and queries). Default: none.
    :param away_team_name: away team name. Default: none.
    :param date: match date: ``YYYY-MM-DD``, ``date`` or ``datetime``. Default: none.
    :param start_offset_seconds: seconds trimmed from the start. Default: none.
    :param end_offset_seconds: end offset in seconds; must exceed the start offset. Default: none.
    :param left_start_team: ``home`` or ``away``: which team starts on the left. Default: none.
    :param wait_for_available: wait until the video is ``available`` (or fails). Default False.
    :param preflight: check the video before the POST, as the API will download it (docs: "Checks before
        upload"): reachable without credentials, not an HTML page, a sane size, a presigned URL's expiry,
        MP4, and with the ``media`` extra (PyAV) 1080p or lower, 25 fps and 10 minutes after the offsets.
        ``True`` runs every check, ``False`` none, ``{"fps": False}`` switches the named checks off (the
        others run). A requirement not met fails the task before any POST, without retries, naming the value
        measured and the limit; what was measured is logged and pushed as XCom ``preflight``. Not run when a
        retry reattaches to the video an earlier try created. Default: the connection's ``preflight`` extra
        (true unless set).
    :param deferrable: wait in the triggerer, freeing the worker slot. Default: the
        ``[operators] default_deferrable`` setting.
    :param poll_interval: longest seconds between status polls while waiting. Default 60.
    :param timeout: seconds to wait for ``available`` before failing (retries apply). Default 6 h.
    :param min_poll_interval: seconds between polls right after a status change. Default 5.
    :param max_consecutive_errors: transient failures in a row a wait tolerates. Default 10.
    :param error_budget_seconds: seconds of uninterrupted transient failures a wait tolerates. Default 900.
    :param finish_in_triggerer: when it defers, let the trigger end the task on success (with the same
        XComs), so the wait costs one worker start instead of two; failures and timeouts still resume on a
        worker (see :mod:`airflow_provider_aiontheball.task_end`). Not used with ``outlets``. Default True.
    :param durable: keep the created video's id in the task state store (Airflow 3.3+) so that a retry
        reattaches to it; ignored where Airflow has no task state store. Default True.
    :param commit_grace_period: seconds after a POST of unknown outcome during which the operator keeps
        looking for the video it may have created. Default 60.
    :param partition_by_match: with ``outlets``, put each asset event in the match's partition (the video
        id, see :func:`~airflow_provider_aiontheball.assets.partition_key_of`). Needs Airflow 3.3+; asking
        for it on an older Airflow fails the DAG's parse. Default False.
    :param aiontheball_conn_id: Airflow connection id. Default ``aiontheball_default``.

    With ``outlets``, the asset events carry the match's metadata (``extra``, keys
    :data:`~airflow_provider_aiontheball.assets.EXTRA_KEYS`, ``kind`` ``"video"``; never the URL), at no
    extra request.
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

    default_timeout = DEFAULT_VIDEO_WAIT_TIMEOUT

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
        preflight: bool | Mapping[str, bool] | None = None,
        source_conn_id: str | None = None,
        presign_expires_in: int | datetime.timedelta = DEFAULT_PRESIGN_EXPIRES_IN,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.video_file_url = video_file_url
        self.title = title
        self.home_team_name = home_team_name
        self.away_team_name = away_team_name
        self.date = date
        self.start_offset_seconds = start_offset_seconds
        self.end_offset_seconds = end_offset_seconds
        self.left_start_team = left_start_team
        self.wait_for_available = wait_for_available
        self.preflight = preflight
        self.source_conn_id = source_conn_id
        self.presign_expires_in = presign_expires_in
        self._preflight_summary: str | None = None

    @property
    def request_fields(self) -> dict[str, Any]:
        """The (rendered) fields of the POST, by API name."""
        return {name: getattr(self, name) for name in self.template_fields}

    @property
    def video_file_url(self) -> Any:
        """The source URL (templated). A presigned URL's signature is a credential: see the setter."""
        return self._video_file_url

    @video_file_url.setter
    def video_file_url(self, value: Any) -> None:
        # Mask the URL's secret parts on every assignment, so on every rendering path (mapped tasks too):
        # docs/internals.md, "Masking a presigned URL".
        if isinstance(value, str) and ("?" in value or "@" in value):
            from airflow_provider_aiontheball import _airflow

            _airflow.mask_url_secrets(value)
        self._video_file_url = value

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_aiontheball.exceptions import bad_input_fails_task
        from airflow_provider_aiontheball.preflight import checks_from
        from airflow_provider_aiontheball.validation import video_create_body

        reserve_link_xcom(context)
        fields = self.request_fields
        with bad_input_fails_task():
            source = self._object_source()
            if source is not None:  # every other field first: nothing is signed for a task that cannot run
                video_create_body({**fields, "video_file_url": "https://presigned.invalid/"})
            checks = None if self.preflight is None else checks_from(self.preflight)
        if source is not None:
            fields["video_file_url"] = self._presign(source)
        with bad_input_fails_task():
            body = video_create_body(fields)
        video = self._create_once(
            body,
            context,
            before_post=lambda: self._check_before_upload(body, checks, context),
            source=source,
        )
        video_id = int(video["id"])
        ti = context["ti"]
        ti.xcom_push(key=XCOM_VIDEO_ID, value=video_id)
        ti.xcom_push(key=XCOM_GAME_NAME, value=video.get("game_name"))
        if not self.wait_for_available:
            self._record_asset_events(context, video, body)
            return video
        if self.deferrable:
            self._defer_until_available(video_id, context)  # raises TaskDeferred; resumes in execute_complete
        with self._failure_with_preflight_figures(context):
            video = self._wait_in_process(video_id)
        push_link_xcom(context, video)
        self._record_asset_events(context, video, body)
        return video

    def _record_asset_events(self, context: Context, video: dict[str, Any], submitted: dict[str, Any]) -> None:
        """With outlets: the match's metadata on their asset events (assets.py), from the video and the
        submitted fields (the POST's answer has no team names or date); no request."""
        from airflow_provider_aiontheball import assets

        if not assets.wants_asset_events(self):
            return
        assets.emit_match_events(self, context, "video", video=video, submitted=submitted)

    # -- a video in object storage (sources.py) ----------------------------------------------------

    def _object_source(self) -> ObjectSource | None:
        """The rendered ``video_file_url`` as an object-storage path (``None`` for an http(s) URL), with the
        presign arguments validated; a ``ValueError`` naming the field otherwise."""
        if isinstance(self.video_file_url, str) and self.video_file_url.strip().lower().startswith(("http:", "https:")):
            return None  # no import of sources.py for the common case
        from airflow_provider_aiontheball.sources import parse_source, resolve_conn_id, validate_expires_in

        source = parse_source(self.video_file_url)
        if source is not None:
            validate_expires_in(self.presign_expires_in)
            resolve_conn_id(source, self.source_conn_id)
        return source

    def _presign(self, source: ObjectSource) -> str:
        """A URL the API can download ``source`` from, signed with the store's connection; masked at once."""
        from airflow_provider_aiontheball.sources import presign, resolve_conn_id, validate_expires_in

        return presign(
            source,
            resolve_conn_id(source, self.source_conn_id),
            validate_expires_in(self.presign_expires_in),
            log=self.log,
        )

    # -- exactly-once create (operators/_create.py) ----------------------------------------------

    def _check_before_upload(
        self, body: dict[str, Any], checks: tuple[bool, tuple[str, ...]] | None, context: Context
    ) -> None:
        """The pre-flight checks (``preflight``), just before the POST: a requirement not met fails the task."""
        from airflow_provider_aiontheball import _airflow
        from airflow_provider_aiontheball.exceptions import bad_input_fails_task
        from airflow_provider_aiontheball.preflight import check_video_url

        run, skip = checks if checks is not None else (self.hook.settings.preflight, ())
        if not run:
            where = "preflight=False" if checks is not None else f"the connection {self.aiontheball_conn_id!r}"
            self.log.info("Pre-flight checks are off (%s): the video is not checked before the POST.", where)
            return
        with bad_input_fails_task():
            result = check_video_url(
                body["video_file_url"],
                start_offset_seconds=body.get("start_offset_seconds"),
                end_offset_seconds=body.get("end_offset_seconds"),
                skip=skip,
                on_secret=_airflow.mask_secret,  # a redirect target's signature too, in every log line
            )
        self._preflight_summary = result.summary()
        self.log.info("Pre-flight checks passed: %s", self._preflight_summary)
        context["ti"].xcom_push(key=XCOM_PREFLIGHT, value={**result.as_dict(), "summary": self._preflight_summary})

    @contextmanager
    def _failure_with_preflight_figures(self, context: Context) -> Iterator[None]:
        """A video that ended in a failed status: its message also says what pre-flight measured (this try's)."""
        from airflow_provider_aiontheball.exceptions import AIOnTheBallTerminalError

        try:
            yield
        except AIOnTheBallTerminalError as error:
            summary = self._preflight_summary
            if summary is None:  # resumed after a deferral: this try's figures are in its XCom
                ti = context["ti"]
                try:
                    pushed = ti.xcom_pull(task_ids=ti.task_id, key=XCOM_PREFLIGHT, map_indexes=ti.map_index)
                except Exception:  # the figures are a courtesy: never hide the video's failure behind this
                    pushed = None
                summary = pushed.get("summary") if isinstance(pushed, dict) else None
            if summary is None:
                raise
            raise AIOnTheBallTerminalError(f"{error} Pre-flight measured before the upload: {summary}.") from error

    def _create_once(
        self,
        body: dict[str, Any],
        context: Context,
        before_post: Callable[[], None] = lambda: None,
        source: ObjectSource | None = None,
    ) -> dict[str, Any]:
        """POST the video, or return the one an earlier attempt of this task created. ``source``: the object
        ``body``'s URL was presigned from, which names the file in the fingerprint."""
        from airflow_provider_aiontheball.exceptions import AIOnTheBallNotFoundError
        from airflow_provider_aiontheball.operators._create import CreateSpec, create_exactly_once
        from airflow_provider_aiontheball.statuses import VIDEO_STATUSES
        from airflow_provider_aiontheball.validation import display_url, url_identity, validate_id

        if not any(body.get(name) for name in _DOCUMENTED_IDENTIFYING_FIELDS):
            self.log.warning(
                "No title or team names given: if this task is retried without a task state store, or the "
                "answer to its POST is lost, the video it created cannot be recognised in the API's video list "
                "(which shows neither URL nor date). Set a title to make retries reliably exactly-once."
            )

        def read(video_id: int) -> dict[str, Any] | None:
            try:
                return self.hook.get_video(video_id)
            except AIOnTheBallNotFoundError:
                return None

        spec = CreateSpec(
            kind="video",
            vocabulary=VIDEO_STATUSES,
            state_key=STATE_KEY_VIDEO,
            claim_key=XCOM_VIDEO_ID,
            # A URL presigned at render time, or by this task from an object path, has a new signature at every
            # try: the same file all the same.
            request={
                **body,
                "video_file_url": source.uri if source is not None else url_identity(body["video_file_url"]),
            },
            fields=tuple(body),
            conn_id=self.aiontheball_conn_id,
            post=lambda: self.hook.create_video(**body),
            read=read,
            find=lambda window, known, claimed: self._find_created_videos(body, window, known, claimed),
            # One page (the API's order is undocumented): the videos visible just before the POST, and the
            # server's clock from its Date header.
            snapshot=lambda: [
                i for v in self.hook.list_videos_page() if (i := validate_id(v.get("id"), strict=False)) is not None
            ],
            server_clock=self.hook.server_clock,
            describe=lambda video: f"video {video.get('id')} ({video.get('game_name')})",
            ambiguity_hint="Give each create task a distinct title or team names.",
            before_post=before_post,
        )
        video = create_exactly_once(
            spec,
            context,
            durable=self.durable,
            grace=self.commit_grace_period,
            log=self.log,
        )
        self.log.info(
            "Video %s (%s) has status %s; source %s",
            video.get("id"),
            video.get("game_name"),
            video.get("status"),
            source.uri if source is not None else display_url(body["video_file_url"]),
        )
        self._lineage_id = video.get("id")  # for get_openlineage_facets_on_complete
        return video

    def _find_created_videos(
        self,
        body: dict[str, Any],
        window: Callable[[], CreationWindow],
        known: frozenset[int] | None,
        claimed: frozenset[int],
    ) -> list[dict[str, Any]]:
        """Videos created in the window whose listed fields equal the submitted ones, neither visible before
        the POST (``known``) nor claimed, not failed.

        The documented list shows title and team names (compared when submitted); any other submitted
        field a server happens to list (``video_file_url``, ``date``, offsets) must match too. A video
        sharing no identifying field with the request is never taken for ours.
        """
        from airflow_provider_aiontheball.statuses import VIDEO_STATUSES, Outcome

        videos = list(self.hook.list_videos())
        created_in = window()  # after the listing: its Date headers tell the server's clock
        matches: list[dict[str, Any]] = []
        for video in videos:
            video_id = video.get("id")
            if video_id in claimed or (known is not None and video_id in known):
                continue
            if created_in.admits(video) is not True:
                continue
            compared = [name for name, value in body.items() if value is not None and name in video]
            if not set(compared) & set(_IDENTIFYING_FIELDS):
                continue
            if not all(_same_value(name, video[name], body[name]) for name in compared):
                continue
            if VIDEO_STATUSES.classify(video.get("status")) is Outcome.FAILED:
                self.log.info(
                    "Not reusing video %s: it matches this task's fields but ended in %r.",
                    video_id,
                    video.get("status"),
                )
                continue
            matches.append(video)
        return matches

    # -- waiting ---------------------------------------------------------------------------------

    def _trigger(self, video_id: int, limit: DeferralLimit, context: Context) -> AIOnTheBallVideoTrigger:
        from airflow_provider_aiontheball.task_end import finish_spec
        from airflow_provider_aiontheball.triggers.video import AIOnTheBallVideoTrigger

        return AIOnTheBallVideoTrigger(
            video_id=video_id,
            aiontheball_conn_id=self.aiontheball_conn_id,
            end_time=limit.end_time,
            execution_deadline=limit.execution_deadline,
            finish_in_triggerer=finish_spec(self, context),
            polled_before=True,  # the POST (or reattaching read) just succeeded on this connection
            **self._settings.trigger_kwargs(),
        )

    def _defer_until_available(self, video_id: int, context: Context) -> None:
        from airflow_provider_aiontheball.deadlines import DeferralLimit

        limit = DeferralLimit.of(self, context, self.timeout)  # execution_timeout too
        self.defer(
            trigger=self._trigger(video_id, limit, context),
            method_name="execute_complete",
            timeout=limit.timeout,
        )

    def _wait_in_process(self, video_id: int) -> dict[str, Any]:
        from airflow_provider_aiontheball.waiting import VIDEO_WAIT, Wait, wait_in_process

        # The same policy and schedule as the deferred wait, run in this process.
        wait = Wait(
            VIDEO_WAIT,
            video_id,
            self.aiontheball_conn_id,
            self.log,
            self._settings,
            end_time=time.time() + self.timeout,
        )
        return wait_in_process(wait, lambda: self.hook.get_video(video_id))

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the trigger fired: the available video, or an error (only ``success`` passes)."""
        from airflow_provider_aiontheball.deadlines import timeout_error
        from airflow_provider_aiontheball.exceptions import AIOnTheBallWaitError
        from airflow_provider_aiontheball.task_end import result_from_event

        with self._failure_with_preflight_figures(context):
            video = result_from_event(event, "video", timeout_error(self, context, AIOnTheBallWaitError, event))
        self._lineage_id = video.get("id")  # a resumed task runs no execute(): for OpenLineage
        self.log.info("%s", (event or {}).get("message"))
        push_link_xcom(context, video)
        self._record_asset_events(context, video, self.request_fields)
        return video

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage (the ``[openlineage]`` extra): the source video file in, the AIB video out
        (:mod:`airflow_provider_aiontheball.openlineage`). Called by the OpenLineage listener, never by users."""
        from airflow_provider_aiontheball.openlineage import create_video_lineage

        return create_video_lineage(self)


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
