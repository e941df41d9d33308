"""Operators that start an analysis of a video and fetch its results into the pipeline.

An analysis id travels: :class:`AIOnTheBallCreateAnalysisOperator` POSTs ``/videos/{id}/analysis`` —
right after the video is created, the API does not need the video to be ready — and pushes XCom
``analysis_id`` → an ``AIOnTheBallAnalysisSensor`` (or the create operator with
``wait_for_completion=True``) waits in the triggerer, polling near the expected finish →
:class:`AIOnTheBallAnalysisResultsOperator` fetches summary, events, schema, query intervals or the
tracking file, into XCom or to files.

DAG files import this module: it imports no HTTP library and builds no hook until ``execute``.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

# From where airflow.providers.common.compat.sdk finds it (newest first), without importing that layer:
# it would add to every DAG-file parse (benchmarks/README.md, "DAG-parse cost").
from airflow_provider_aiontheball.defaults import (
    DEFAULT_ANALYSIS_MIN_POLL_INTERVAL,
    DEFAULT_ANALYSIS_POLL_INTERVAL,
    DEFAULT_ANALYSIS_WAIT_TIMEOUT,
    DEFAULT_CONN_ID,
    STATE_KEY_ANALYSIS,
    XCOM_ANALYSIS_ID,
)
from airflow_provider_aiontheball.operators._base import AIOnTheBallBaseOperator, CreateTask

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_aiontheball.deadlines import DeferralLimit
    from airflow_provider_aiontheball.operators._base import CreationWindow
    from airflow_provider_aiontheball.triggers.analysis import AIOnTheBallAnalysisTrigger

#: What the results operator can fetch.
RESULT_KINDS: tuple[str, ...] = ("summary", "events", "schema", "tracking", "query_intervals")
#: Keyword arguments of ``query_intervals`` besides the analysis id (the ``query`` dict's keys).
QUERY_KEYS: tuple[str, ...] = (
    "filters",
    "operator",
    "pad_sec",
    "gap_fill_sec",
    "merge_results",
    "include_pixel_coords",
    "existing_filters",
)


class AIOnTheBallCreateAnalysisOperator(CreateTask):
    """Start an analysis of a video, and optionally wait until it is ``done``.

    The video need not be ready: the API queues the analysis as ``waiting_for_video``. The task pushes
    XCom ``analysis_id`` as soon as the POST succeeds and returns the analysis (XCom ``return_value``),
    or with ``wait_for_completion=True`` the finished one.

    A retried task never starts a second multi-hour analysis, also on servers without ``GET
    /analyses/{id}`` (undocumented): on Airflow 3.3+ the id is kept in the task state store the
    moment the POST returns and a retry reattaches to it; a POST whose answer is lost (or gets a
    5xx) is never re-sent — the analysis it may have started is looked for among the video's
    ``analyses`` that were not there before the POST. Without a task state store a retry reuses an
    analysis of the video, unclaimed by other tasks of the DAG run, created since the run started
    (see docs/exactly-once.md, "Exactly once").

    :param video_id: the video to analyse (templated).
    :param fps: frames per second to analyse (positive integer, templated). Default: the server's (25).
    :param wait_for_completion: wait until the analysis is ``done`` (or fails). Default False.
    :param deferrable: wait in the triggerer. Default: ``[operators] default_deferrable``.
    :param poll_interval: longest interval between polls while waiting, in seconds. Default 1800.
    :param min_poll_interval: interval near the expected finish, in seconds. Default 45.
    :param timeout: seconds to wait before failing (retries apply). Default 12 h.
    :param max_consecutive_errors: transient failures in a row a wait tolerates. Default 10.
    :param error_budget_seconds: seconds of uninterrupted transient failures a wait tolerates. Default 900.
    :param finish_in_triggerer: when it defers, let the trigger end the task on success (with the same
        XComs), so the wait costs one worker start instead of two; failures and timeouts still resume on a
        worker (see :mod:`airflow_provider_aiontheball.task_end`). Not used with ``outlets``. Default True.
    :param durable: keep the started analysis's id in the task state store (Airflow 3.3+) so that a
        retry reattaches to it; ignored where Airflow has no task state store. Default True.
    :param commit_grace_period: seconds after a POST of unknown outcome during which the operator keeps
        looking for the analysis it may have started. Default 60.
    :param partition_by_match: with ``outlets``, put each asset event in the match's partition (the video
        id, see :func:`~airflow_provider_aiontheball.assets.partition_key_of`). Needs Airflow 3.3+; asking
        for it on an older Airflow fails the DAG's parse. Default False.
    :param aiontheball_conn_id: Airflow connection id. Default ``aiontheball_default``.

    With ``outlets``, the asset events carry the match's metadata (``extra``, keys
    :data:`~airflow_provider_aiontheball.assets.EXTRA_KEYS`, ``kind`` ``"analysis"``); without
    ``wait_for_completion`` they say the analysis *started* (``status``): put outlets meaning "results
    are there" on the results task.
    """

    template_fields: Sequence[str] = ("video_id", "fps")
    ui_color = "#0d47a1"
    ui_fgcolor = "#ffffff"

    default_poll_interval = DEFAULT_ANALYSIS_POLL_INTERVAL
    default_min_poll_interval = DEFAULT_ANALYSIS_MIN_POLL_INTERVAL
    default_timeout = DEFAULT_ANALYSIS_WAIT_TIMEOUT

    def __init__(
        self,
        *,
        video_id: int | str,
        fps: int | str | None = None,
        wait_for_completion: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.video_id = video_id
        self.fps = fps
        self.wait_for_completion = wait_for_completion

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_aiontheball.exceptions import bad_input_fails_task
        from airflow_provider_aiontheball.validation import analysis_create_body, validate_id

        with bad_input_fails_task():
            video_id = validate_id(self.video_id, "video_id")
            body = analysis_create_body(self.fps)
        analysis = self._create_once(video_id, body, context)
        analysis_id = int(analysis["id"])
        context["ti"].xcom_push(key=XCOM_ANALYSIS_ID, value=analysis_id)
        if not self.wait_for_completion:
            self._record_asset_events(context, analysis, video_id)
            return analysis
        if self.deferrable:
            # Raises TaskDeferred; the task resumes in execute_complete.
            from airflow_provider_aiontheball.deadlines import DeferralLimit

            limit = DeferralLimit.of(self, context, self.timeout)  # execution_timeout too
            self.defer(
                trigger=self._trigger(analysis_id, video_id, limit, context),
                method_name="execute_complete",
                timeout=limit.timeout,
            )
        analysis = self._wait_in_process(analysis_id, video_id)
        self._record_asset_events(context, analysis, video_id)
        return analysis

    def _create_once(self, video_id: int, body: dict[str, Any], context: Context) -> dict[str, Any]:
        """POST the analysis, or return the one an earlier attempt of this task started (operators/_create.py)."""
        from airflow_provider_aiontheball.exceptions import AIOnTheBallNotFoundError
        from airflow_provider_aiontheball.operators._create import CreateSpec, create_exactly_once
        from airflow_provider_aiontheball.statuses import ANALYSIS_STATUSES

        def read(analysis_id: int) -> dict[str, Any] | None:
            try:
                analysis = self.hook.get_analysis(analysis_id, video_id=video_id)
            except AIOnTheBallNotFoundError:
                return None
            if str(analysis.get("video_id", video_id)) != str(video_id):
                return None  # an analysis of another video: not what this task started
            return analysis

        def snapshot() -> list[int]:
            # The analyses the video has right before the POST: whatever appears later and no other
            # task claims is what a POST of unknown outcome created (no creation time needed).
            return sorted(entry["id"] for entry in self._video_analyses(video_id)[1])

        spec = CreateSpec(
            kind="analysis",
            vocabulary=ANALYSIS_STATUSES,
            state_key=STATE_KEY_ANALYSIS,
            claim_key=XCOM_ANALYSIS_ID,
            request={"video_id": video_id, **body},
            fields=tuple(body),
            conn_id=self.aiontheball_conn_id,
            post=lambda: self.hook.create_analysis(video_id, **body),
            read=read,
            find=lambda window, known, claimed: self._find_created_analyses(video_id, body, window, known, claimed),
            snapshot=snapshot,
            server_clock=self.hook.server_clock,
            describe=lambda analysis: f"analysis {analysis.get('id')} of video {video_id}",
            ambiguity_hint="Give each analysis of a video its own task (their XComs tell them apart).",
        )
        analysis = create_exactly_once(
            spec,
            context,
            durable=self.durable,
            grace=self.commit_grace_period,
            log=self.log,
        )
        self.log.info("Analysis %s of video %s has status %s.", analysis.get("id"), video_id, analysis.get("status"))
        self._lineage_id = analysis.get("id")  # for get_openlineage_facets_on_complete
        return analysis

    def _video_analyses(self, video_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The video, and its documented ``analyses`` (``{id, status}`` each) that have an id (as an ``int``)."""
        from airflow_provider_aiontheball.validation import validate_id

        video = self.hook.get_video(video_id)
        self._seen_video = video  # game name and teams for the asset events, without another request
        entries = [e for e in video.get("analyses") or [] if isinstance(e, dict)]
        ids = [validate_id(e.get("id"), strict=False) for e in entries]
        return video, [{**e, "id": i} for e, i in zip(entries, ids, strict=True) if i is not None]

    def _find_created_analyses(
        self,
        video_id: int,
        body: dict[str, Any],
        window: Callable[[], CreationWindow],
        known: frozenset[int] | None,
        claimed: frozenset[int],
    ) -> list[dict[str, Any]]:
        """Analyses of the video that an earlier attempt of this task may have started.

        With ``known`` (the ids that existed right before the POST): every other unclaimed one not created
        before the window where the server has ``GET /analyses/{id}`` with ``created_at``. Without it (a
        retry without a record): those created in the window, told by ``created_at``; where the server
        shows none, only a video itself created in the window tells that all its analyses are that recent.
        Failed analyses and, where readable, another ``fps`` are never taken.
        """
        from airflow_provider_aiontheball.statuses import ANALYSIS_STATUSES, Outcome

        video, entries = self._video_analyses(video_id)
        created_in = window()
        video_recent = created_in.admits(video)
        found: list[dict[str, Any]] = []
        for entry in entries:
            analysis_id = entry["id"]
            if analysis_id in claimed or (known is not None and analysis_id in known):
                continue
            if ANALYSIS_STATUSES.classify(entry.get("status")) is Outcome.FAILED:
                self.log.info("Not reusing analysis %s: it ended in %r.", analysis_id, entry.get("status"))
                continue
            analysis = self.hook.get_analysis(analysis_id, video_id=video_id)
            if known is not None and created_in.admits(analysis) is False:
                continue  # created before this task's POST (another run's, moments earlier)
            if known is None:
                recent = created_in.admits(analysis)
                if recent is None:
                    recent = video_recent
                if not recent:
                    if recent is None:
                        self.log.info(
                            "Cannot tell when analysis %s was created (the server shows no created_at): not "
                            "taking it for this task's.",
                            analysis_id,
                        )
                    continue
            fps = (analysis.get("parameters") or {}).get("fps")
            if "fps" in body and fps is not None and fps != body["fps"]:
                continue
            found.append(analysis)
        return found

    def _record_asset_events(self, context: Context, analysis: dict[str, Any], video_id: int | None) -> None:
        """With outlets: the match's metadata on their asset events (assets.py). The video's name and teams
        come from the video read before the POST, else from one ``GET /videos/{id}``."""
        from airflow_provider_aiontheball import assets
        from airflow_provider_aiontheball.exceptions import AIOnTheBallError

        if not assets.wants_asset_events(self):
            return
        video_id = assets.video_id_of(analysis) or video_id
        video = getattr(self, "_seen_video", None)
        if video_id is not None and (not isinstance(video, dict) or str(video.get("id")) != str(video_id)):
            try:
                video = self.hook.get_video(video_id)
            except AIOnTheBallError as exc:
                self.log.warning("Asset events without the video's name and teams: %s", exc)
                video = None
        assets.emit_match_events(self, context, "analysis", video_id=video_id, video=video, analysis=analysis)

    def _trigger(
        self, analysis_id: int, video_id: int, limit: DeferralLimit, context: Context
    ) -> AIOnTheBallAnalysisTrigger:
        from airflow_provider_aiontheball.task_end import finish_spec
        from airflow_provider_aiontheball.triggers.analysis import AIOnTheBallAnalysisTrigger

        return AIOnTheBallAnalysisTrigger(
            analysis_id=analysis_id,
            aiontheball_conn_id=self.aiontheball_conn_id,
            end_time=limit.end_time,
            execution_deadline=limit.execution_deadline,
            finish_in_triggerer=finish_spec(self, context),
            polled_before=True,  # the POST (or reattaching read) just succeeded on this connection
            video_id=video_id,
            **self._settings.trigger_kwargs(),
        )

    def _wait_in_process(self, analysis_id: int, video_id: int) -> dict[str, Any]:
        from airflow_provider_aiontheball.waiting import ANALYSIS_WAIT, Wait, wait_in_process

        # The same policy and schedule as the deferred wait, run in this process.
        wait = Wait(
            ANALYSIS_WAIT,
            analysis_id,
            self.aiontheball_conn_id,
            self.log,
            self._settings,
            end_time=time.time() + self.timeout,
        )
        return wait_in_process(wait, lambda: self.hook.get_analysis(analysis_id, video_id=video_id))

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the trigger fired: the finished analysis, or an error (only ``success`` passes)."""
        from airflow_provider_aiontheball.deadlines import timeout_error
        from airflow_provider_aiontheball.exceptions import AIOnTheBallWaitError
        from airflow_provider_aiontheball.task_end import result_from_event

        analysis = result_from_event(event, "analysis", timeout_error(self, context, AIOnTheBallWaitError, event))
        self._lineage_id = analysis.get("id")  # a resumed task runs no execute(): for OpenLineage
        self.log.info("%s", (event or {}).get("message"))
        from airflow_provider_aiontheball.validation import validate_id

        self._record_asset_events(context, analysis, validate_id(self.video_id, "video_id", optional=True))
        return analysis

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage (the ``[openlineage]`` extra): the AIB video in, the AIB analysis out
        (:mod:`airflow_provider_aiontheball.openlineage`). Called by the OpenLineage listener, never by users."""
        from airflow_provider_aiontheball.openlineage import create_analysis_lineage

        return create_analysis_lineage(self)


class AIOnTheBallAnalysisResultsOperator(AIOnTheBallBaseOperator):
    """Fetch a finished analysis's results into XCom or files.

    ``results`` names what to fetch: ``summary`` (a JSON object), ``events`` (a JSON array of
    ``{start, end, label, event_type}``), ``schema``, ``query_intervals`` (the intervals matching
    ``query``; a JSON array of ``{start, end, label, type}``) and ``tracking`` (the per-frame tracking
    file, 20-500 MB: only with ``output_path``; streamed, never held in memory).

    Without ``output_path`` the task returns ``{name: result}`` (XCom: keep it to small results).
    With ``output_path`` — a local directory or an object-storage URI such as ``s3://bucket/prefix``
    (any ``ObjectStoragePath`` scheme; on S3, GCS or Azure its filesystem package, ``s3fs``, ``gcsfs`` or
    ``adlfs``, is checked for before the first request) — each result is written to
    ``analysis_<id>_<name>.<json|parquet>`` there and the task returns ``{name: path}``. Each file is
    written under a temporary name beside it (``<name>.<random>.part``) and moved into place only when
    complete: a failed or interrupted task leaves nothing under the final name (an earlier complete file
    stays) and removes its temporary file.

    The analysis must be ``done``: that is checked first, and results requested earlier fail with
    :class:`~airflow_provider_aiontheball.exceptions.AIOnTheBallResultsNotReadyError` (retries apply).

    :param analysis_id: the analysis (templated).
    :param results: names of the results to fetch (templated). Default ``("summary",)``.
    :param output_path: directory or URI to write results to (templated). Default: results go to XCom.
    :param query: for ``query_intervals``: a dict with ``filters`` (required) and optionally ``operator``,
        ``pad_sec``, ``gap_fill_sec``, ``merge_results``, ``include_pixel_coords``, ``existing_filters``
        (templated). Default: none.
    :param tracking_format: ``parquet`` or ``json``. Default ``parquet``.
    :param video_id: the analysed video (templated); lets the done-check work on a server without
        ``GET /analyses/{id}``. Default: none.
    :param partition_by_match: with ``outlets``, put each asset event in the match's partition (the video
        id, see :func:`~airflow_provider_aiontheball.assets.partition_key_of`). Needs Airflow 3.3+; asking
        for it on an older Airflow fails the DAG's parse. Default False.
    :param aiontheball_conn_id: Airflow connection id. Default ``aiontheball_default``.

    With ``outlets``, each success attaches the match's metadata to the outlets' asset events (``extra``,
    keys :data:`~airflow_provider_aiontheball.assets.EXTRA_KEYS`): at the cost of one ``GET /videos/{id}``
    (game name and teams), only when there are outlets.
    """

    template_fields: Sequence[str] = ("analysis_id", "results", "output_path", "query", "video_id")
    ui_color = "#0d47a1"
    ui_fgcolor = "#ffffff"

    def __init__(
        self,
        *,
        analysis_id: int | str,
        results: Sequence[str] = ("summary",),
        output_path: str | None = None,
        query: dict[str, Any] | None = None,
        tracking_format: str = "parquet",
        video_id: int | str | None = None,
        partition_by_match: bool = False,
        aiontheball_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(aiontheball_conn_id=aiontheball_conn_id, **kwargs)
        self.analysis_id = analysis_id
        self.results = results
        self.output_path = output_path
        self.query = query
        self.tracking_format = tracking_format
        self.video_id = video_id
        self._set_partition_by_match(partition_by_match)

    def _validated(self) -> tuple[int, int | None, list[str], dict[str, Any] | None]:
        from airflow_provider_aiontheball.validation import (
            query_intervals_body,
            validate_id,
            validate_tracking_format,
        )

        analysis_id = validate_id(self.analysis_id, "analysis_id")
        video_id = validate_id(self.video_id, "video_id", optional=True)
        names = [self.results] if isinstance(self.results, str) else list(self.results)
        if not names:
            raise ValueError(f"results: name at least one of {', '.join(RESULT_KINDS)}")
        for name in names:
            if name not in RESULT_KINDS:
                raise ValueError(f"results: unknown result {name!r}; known: {', '.join(RESULT_KINDS)}")
        if "tracking" in names:
            validate_tracking_format(self.tracking_format, "tracking_format")
            if not self.output_path:
                raise ValueError("output_path: required for 'tracking' (20-500 MB files do not belong in XCom)")
        query = None
        if "query_intervals" in names:
            if not isinstance(self.query, dict) or "filters" not in self.query:
                raise ValueError("query: 'query_intervals' needs query={'filters': [...], ...}")
            unknown = sorted(set(self.query) - set(QUERY_KEYS))
            if unknown:
                raise ValueError(f"query: unknown key {unknown[0]!r}; allowed: {', '.join(QUERY_KEYS)}")
            query_intervals_body(**self.query)  # validates filters, operator and options
            query = dict(self.query)
        return analysis_id, video_id, names, query

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_aiontheball.exceptions import bad_input_fails_task

        with bad_input_fails_task():
            analysis_id, video_id, names, query = self._validated()
        if self.output_path and "://" in str(self.output_path):
            from airflow_provider_aiontheball.sources import require_filesystem

            require_filesystem(self.output_path)  # s3fs, gcsfs, adlfs: missing, it fails before any request
        analysis = self._require_done(analysis_id, video_id)
        self._result_facts: dict[str, dict[str, Any]] = {}  # filled by _fetch, for the asset events
        fetched: dict[str, Any] = {}
        for name in names:
            fetched[name] = self._fetch(name, analysis_id, query)
        self._record_asset_events(context, analysis_id, video_id, analysis, fetched)
        return fetched

    def _require_done(self, analysis_id: int, video_id: int | None) -> dict[str, Any] | None:
        """Fail unless the analysis is done; return it (``None`` where the server cannot show it)."""
        from airflow_provider_aiontheball.exceptions import (
            AIOnTheBallResultsNotReadyError,
            AIOnTheBallRouteMissingError,
        )
        from airflow_provider_aiontheball.statuses import ANALYSIS_STATUSES, Outcome

        try:
            analysis = self.hook.get_analysis(analysis_id, video_id=video_id)
        except AIOnTheBallRouteMissingError as exc:
            self.log.warning("Cannot check that analysis %s is done first: %s", analysis_id, exc.detail)
            return None
        status = analysis.get("status")
        if ANALYSIS_STATUSES.classify(status) is not Outcome.SUCCESS or analysis.get("results_available") is False:
            progress = analysis.get("progress")
            raise AIOnTheBallResultsNotReadyError(
                f"analysis {analysis_id} has no results yet: status {status!r}"
                + (f", {progress}% done" if progress is not None else "")
                + "; wait for it with AIOnTheBallAnalysisSensor or wait_for_completion=True"
            )
        return analysis

    def _record_asset_events(
        self,
        context: Context,
        analysis_id: int,
        video_id: int | None,
        analysis: dict[str, Any] | None,
        fetched: dict[str, Any],
    ) -> None:
        """With outlets: the match's metadata on their asset events (assets.py). Reuses the analysis the
        done-check read; the one request added is ``GET /videos/{id}`` for the game name and teams."""
        from airflow_provider_aiontheball import assets
        from airflow_provider_aiontheball.exceptions import AIOnTheBallError

        if not assets.wants_asset_events(self):
            return
        video_id = video_id or assets.video_id_of(analysis)
        video = None
        if video_id is not None:
            try:
                video = self.hook.get_video(video_id)
            except AIOnTheBallError as exc:  # the results are written: metadata without the video's fields
                self.log.warning("Asset events without the video's name and teams: %s", exc)
        assets.emit_match_events(
            self,
            context,
            "results",
            video_id=video_id,
            analysis_id=analysis_id,
            video=video,
            analysis=analysis,
            results={name: value if self.output_path else None for name, value in fetched.items()},
            facts=getattr(self, "_result_facts", None),
        )

    def _fetch(self, name: str, analysis_id: int, query: dict[str, Any] | None) -> Any:
        from airflow_provider_aiontheball.exceptions import (
            AIOnTheBallConflictError,
            AIOnTheBallNotFoundError,
            AIOnTheBallResultsNotReadyError,
        )

        try:
            if name == "tracking":
                return self._download_tracking(analysis_id)
            getter = {
                "summary": self.hook.get_summary,
                "events": self.hook.get_events,
                "schema": self.hook.get_schema,
                "query_intervals": lambda a: self.hook.query_intervals(a, **(query or {})),
            }[name]
            data = getter(analysis_id)
        except (AIOnTheBallConflictError, AIOnTheBallNotFoundError) as exc:
            # The docs do not say what results endpoints answer before ``done`` (409 and 404 seen as plausible).
            raise AIOnTheBallResultsNotReadyError(
                f"{name} of analysis {analysis_id} is not available ({exc.status_code}: {exc.detail})"
            ) from exc
        size = len(data) if isinstance(data, list) else None
        self.log.info("Fetched %s of analysis %s%s", name, analysis_id, f": {size} item(s)" if size is not None else "")
        if hasattr(self, "_result_facts"):
            from airflow_provider_aiontheball.assets import result_facts

            self._result_facts[name] = result_facts(name, data)
        if not self.output_path:
            return data
        target = self._target(f"analysis_{analysis_id}_{name}.json")
        with self._written_atomically(target) as partial, partial.open("w") as handle:
            json.dump(data, handle)
        self.log.info("Wrote %s to %s", name, target)
        return str(target)

    def _download_tracking(self, analysis_id: int) -> str:
        target = self._target(f"analysis_{analysis_id}_tracking.{self.tracking_format}")
        # A handle on the temporary file: the hook rewinds it for a retry when it is seekable (local files)
        # and does not retry an interrupted download it cannot rewind (most object-store uploads).
        with self._written_atomically(target) as partial, partial.open("wb") as handle:
            self.hook.download_tracking(analysis_id, handle, format=self.tracking_format)
        self.log.info("Wrote tracking (%s) to %s", self.tracking_format, target)
        return str(target)

    @contextlib.contextmanager
    def _written_atomically(self, target: Any) -> Iterator[Any]:
        """Yield a temporary sibling of ``target`` (a ``Path`` or ``ObjectStoragePath``) to write; move it
        onto ``target`` when the block succeeds.

        The temporary name, ``<name>.<random>.part``, is in the same directory or prefix, so the move stays
        within one filesystem or bucket. On any failure the temporary file is removed (best effort, the
        original error is raised) and ``target`` is neither created nor replaced.
        """
        partial = target.with_name(f"{target.name}.{secrets.token_hex(8)}.part")
        try:
            yield partial
            # Not ``isinstance(partial, Path)``: on Airflow 2 an ObjectStoragePath is a ``pathlib.Path`` too.
            if "://" not in str(self.output_path):
                from airflow_provider_aiontheball.files import replace_durably

                replace_durably(partial, target)  # one rename(2), after fsync: atomic and durable
            else:
                # ObjectStoragePath's own move (fsspec ``mv``): a rename on local and HDFS-like filesystems; on
                # object stores (S3, GCS, Azure Blob) a server-side copy then a delete of the temporary object.
                # Not atomic as a whole, but the copy publishes the final object complete or not at all.
                partial.move(target)
        except BaseException:
            self._remove_partial(partial)
            raise

    def _remove_partial(self, partial: Any) -> None:
        """Remove a temporary result file, if it exists; a failure to do so is logged, never raised."""
        try:
            partial.unlink(missing_ok=True)
        except Exception as exc:
            self.log.warning("Could not remove the temporary file %s: %s", partial, exc)

    def _target(self, filename: str) -> Any:
        """``output_path / filename``: a local ``Path`` (directories created) or an ``ObjectStoragePath``."""
        assert self.output_path
        if "://" in str(self.output_path):
            from airflow.providers.common.compat.sdk import ObjectStoragePath

            base = ObjectStoragePath(str(self.output_path))
            base.mkdir(parents=True, exist_ok=True)
            return base / filename
        local = Path(str(self.output_path))
        local.mkdir(parents=True, exist_ok=True)
        return local / filename

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage (the ``[openlineage]`` extra): the AIB analysis in, the written result files out, with
        their columns (:mod:`airflow_provider_aiontheball.openlineage`). Called by the OpenLineage listener."""
        from airflow_provider_aiontheball.openlineage import results_lineage

        return results_lineage(self)

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Any:
        """OpenLineage on failure: the analysis only (a failed task leaves no file under the final names)."""
        from airflow_provider_aiontheball.openlineage import results_lineage

        return results_lineage(self, written=False)
