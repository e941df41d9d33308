"""Hooks for the AI on the Ball (AIB) Insight API.

* :class:`AIOnTheBallHook` — synchronous (``requests``), for tasks: auth, video CRUD, analyses, results.
* :class:`AIOnTheBallAsyncHook` — asynchronous (``aiohttp``), for triggers: polls without blocking the
  triggerer's event loop, on a session shared by every trigger of that loop.

Both send the same requests and read the answers the same way; only the transport differs. See
docs/internals.md, "The hooks and their shared client".
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import tenacity
from airflow.providers.common.compat.sdk import BaseHook

from airflow_provider_aiontheball import _airflow
from airflow_provider_aiontheball.defaults import (
    CONN_TYPE,
    DEFAULT_CONN_ID,
    DEFAULT_POOL_LIMIT,
    DOWNLOAD_CHUNK_BYTES,
    MAX_DOWNLOAD_REDIRECTS,
    PARSE_OFF_LOOP_BYTES,
)
from airflow_provider_aiontheball.exceptions import (
    AIOnTheBallAuthError,
    AIOnTheBallConfigurationError,
    AIOnTheBallError,
    AIOnTheBallNotFoundError,
    AIOnTheBallRouteMissingError,
)
from airflow_provider_aiontheball.files import replace_durably
from airflow_provider_aiontheball.get_provider_info import CONN_FIELDS, HOOK_NAME, get_ui_field_behaviour
from airflow_provider_aiontheball.hooks import _endpoints as endpoints
from airflow_provider_aiontheball.hooks._async_sessions import (
    RequestBudget,
    request_budgets,
    shared_sessions,
    shared_settings,
)
from airflow_provider_aiontheball.hooks._client import (
    USER_AGENT,
    ApiRequest,
    ClientSettings,
    ConnectFailure,
    PageGuard,
    ServerClock,
    already_done,
    body_too_large,
    connect_error,
    connect_timeout_error,
    interpret_response,
    next_page_request,
    outcome_unknown,
    page_is_last,
    page_items,
    read_timeout_error,
    redirect_target,
    resolve_settings,
    retry_options,
    safe_url,
    transport_error,
)
from airflow_provider_aiontheball.validation import hide_url_queries_in_http_logs

if TYPE_CHECKING:
    import aiohttp
    import requests

__all__ = ["DEFAULT_CONN_ID", "AIOnTheBallAsyncHook", "AIOnTheBallHook"]


def _route_missing(exc: AIOnTheBallNotFoundError) -> bool:
    # Laravel answers an unknown route with "The route api/v1/... could not be found." and a missing
    # model with "No query results for model [...]". Only the former means the endpoint is absent.
    detail = exc.detail.lower()
    return "route" in detail and "could not be found" in detail


def _explain_missing_analysis_route(exc: AIOnTheBallNotFoundError) -> AIOnTheBallNotFoundError:
    if not _route_missing(exc):
        return exc
    return AIOnTheBallRouteMissingError(
        status_code=exc.status_code,
        method=exc.method,
        path=exc.path,
        detail="this server has no GET /analyses/{id} route (the endpoint is implied by the API's Quick "
        f"Start but not documented); server said: {exc.detail}",
    )


@dataclass(frozen=True)
class _Done:
    value: Any


def _resume(steps: Generator[ApiRequest, Any, Any], outcome: Any) -> ApiRequest | _Done:
    """Send a request's result (or throw its error) into a lookup; its next request, or ``_Done``."""
    try:
        return steps.throw(outcome) if isinstance(outcome, BaseException) else steps.send(outcome)
    except StopIteration as finished:
        return _Done(finished.value)


def analysis_in_video(video: dict[str, Any], analysis_id: int | str) -> dict[str, Any] | None:
    """The ``{id, status}`` entry of ``analysis_id`` in a video's documented ``analyses`` list, if any."""
    for entry in video.get("analyses") or []:
        if isinstance(entry, dict) and str(entry.get("id")) == str(analysis_id):
            return {**entry, "video_id": video.get("id")}
    return None


class _AIOnTheBallHookBase(BaseHook):
    """What both hooks share: constructor arguments, connection → settings, the analysis lookup."""

    conn_name_attr = "aiontheball_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONN_TYPE
    hook_name = HOOK_NAME

    def __init__(
        self,
        aiontheball_conn_id: str = DEFAULT_CONN_ID,
        *,
        timeout: float | tuple[float, float] | None = None,
        retry_limit: int | None = None,
        retry_min_wait: float | None = None,
        retry_max_wait: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.aiontheball_conn_id = aiontheball_conn_id
        self._overrides: dict[str, Any] = {
            "timeout": timeout,
            "retry_limit": retry_limit,
            "retry_min_wait": retry_min_wait,
            "retry_max_wait": retry_max_wait,
        }

    #: Set once the server answered that it has no ``GET /analyses/{id}`` route (see ``get_analysis``).
    _analysis_route_missing: bool = False

    @cached_property
    def server_clock(self) -> ServerClock:
        """The API server's time, from the ``Date`` of this hook's responses (the create operators
        tell what their own POST created by it)."""
        return ServerClock()

    def _note_missing_analysis_route(self, video_id: int | str) -> None:
        self._analysis_route_missing = True
        self.log.warning(
            "This server has no GET /analyses/{id} route (the API documents none); following analyses through "
            "GET /videos/%s instead, which reports their status but not their progress.",
            video_id,
        )

    def _analysis_lookup(
        self, analysis_id: int | str, video_id: int | str | None
    ) -> Generator[ApiRequest, Any, dict[str, Any]]:
        """How to read an analysis, as steps both hooks run: each yielded request's result (or error)
        is sent back in. ``GET /analyses/{id}`` first; if the server has no such route and the video is
        known, the video's ``analyses`` list."""
        if not self._analysis_route_missing:
            try:
                return (yield endpoints.get_analysis(analysis_id))  # type: ignore[no-any-return]
            except AIOnTheBallNotFoundError as exc:
                if video_id is None:
                    raise _explain_missing_analysis_route(exc) from None
                entry = analysis_in_video((yield endpoints.get_video(video_id)), analysis_id)
                if entry is None:
                    raise _explain_missing_analysis_route(exc) from None
                self._note_missing_analysis_route(video_id)
                return entry
        if video_id is None:
            raise AIOnTheBallConfigurationError("this server has no GET /analyses/{id} route: give the video_id")
        entry = analysis_in_video((yield endpoints.get_video(video_id)), analysis_id)
        if entry is None:
            raise AIOnTheBallNotFoundError(
                status_code=404,
                method="GET",
                path=f"/videos/{video_id}",
                detail=f"analysis {analysis_id} is no longer listed in video {video_id}",
            )
        return entry

    def _settings_from(self, conn: Any, extra: dict[str, Any]) -> ClientSettings:
        return resolve_settings(
            self.aiontheball_conn_id,
            host=conn.host,
            password=conn.password,
            port=conn.port,
            extra=extra,
            **self._overrides,
        )

    def _rotated(self, stale: ClientSettings, fresh: ClientSettings) -> bool:
        """Whether a request the API refused (401/403) with ``stale`` may be sent again with ``fresh``:
        the connection now holds another token for the same base URL (a rotation). A refused request
        was not carried out, so re-sending is safe; an unchanged token fails as it is."""
        if fresh.token == stale.token or fresh.base_url != stale.base_url:
            return False
        self.log.info(
            "The API refused the token and connection %r now holds a different one (rotated): retrying with it.",
            self.aiontheball_conn_id,
        )
        return True

    def __repr__(self) -> str:
        return f"{type(self).__name__}(aiontheball_conn_id={self.aiontheball_conn_id!r})"


class AIOnTheBallHook(_AIOnTheBallHookBase):
    """Synchronous client of the AI on the Ball API, for use inside tasks.

    Nothing is fetched or sent when the hook is built: the connection is read on the first request,
    and one ``requests.Session`` per hook is reused for every request (keep-alive).

    :param aiontheball_conn_id: Airflow connection id; the token is its password, the optional base
        URL its host. Default ``aiontheball_default``.
    :param timeout: read timeout in seconds, or a ``(connect, read)`` pair. Default: the connection's
        ``timeout``/``connect_timeout`` extras, else 10 s to connect and 60 s to read.
    :param retry_limit: retries after a transient failure (connection error, 429, 502-504). Default:
        the connection's ``retry_limit`` extra, else 5.
    :param retry_min_wait: first backoff step in seconds (doubles per retry, with jitter). Default 1.
    :param retry_max_wait: cap of each backoff step and of ``Retry-After``. Default 60.
    """

    # -- connection form (Airflow 2; Airflow 3 reads the same constants from provider info) --------

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Return custom field behaviour for the connection form."""
        return get_ui_field_behaviour()

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Return the extra fields of the connection form (Airflow 2's Flask UI)."""
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
        from flask_babel import lazy_gettext
        from wtforms import IntegerField, StringField
        from wtforms.validators import NumberRange, Optional

        widgets: dict[str, Any] = {}
        for name, spec in CONN_FIELDS.items():
            field_class = IntegerField if "integer" in spec["schema"]["type"] else StringField
            validators = [Optional()]
            if field_class is IntegerField and "minimum" in spec["schema"]:
                validators.append(NumberRange(min=spec["schema"]["minimum"]))
            widgets[name] = field_class(
                lazy_gettext(spec["label"]),
                widget=BS3TextFieldWidget(),
                validators=validators,
                description=spec["description"],
            )
        return widgets

    # -- plumbing -------------------------------------------------------------------------------

    @cached_property
    def settings(self) -> ClientSettings:
        """Base URL, token, timeouts and retry policy, read from the connection on first use."""
        conn = self.get_connection(self.aiontheball_conn_id)
        return self._settings_from(conn, conn.extra_dejson)

    @cached_property
    def session(self) -> requests.Session:
        import requests

        return requests.Session()

    def close(self) -> None:
        """Close the hook's HTTP session (its pooled keep-alive connections)."""
        if "session" in self.__dict__:
            self.session.close()
            del self.__dict__["session"]

    def __enter__(self) -> AIOnTheBallHook:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def run(self, request: ApiRequest) -> Any:
        """Send ``request`` with the retry policy and return the interpreted result.

        A 401/403 makes the hook read the connection again, once: if its token changed (rotated), the
        request is sent again with the new one (a refused request was not carried out).
        """
        settings = self.settings
        try:
            return self._run_with(settings, request)
        except AIOnTheBallAuthError:
            fresh = self._reload_settings()
            if not self._rotated(settings, fresh):
                raise
            return self._run_with(fresh, request)

    def _reload_settings(self) -> ClientSettings:
        self.__dict__.pop("settings", None)
        return self.settings

    def _run_with(self, settings: ClientSettings, request: ApiRequest) -> Any:
        if settings.retry.retry_limit == 0:
            return self._send_once(settings, request)
        unknown = False  # an earlier attempt may have been carried out

        def attempt() -> Any:
            nonlocal unknown
            try:
                return self._send_once(settings, request)
            except AIOnTheBallError as exc:
                if unknown and already_done(request, exc):
                    self.log.info("%s: an earlier attempt already did it (%s)", request.display, exc.status_code)
                    return None
                unknown = unknown or outcome_unknown(exc)
                raise

        return tenacity.Retrying(**retry_options(settings, request, self.log))(attempt)

    def _send_once(self, settings: ClientSettings, request: ApiRequest, stream_to: IO[bytes] | None = None) -> Any:
        """One attempt of ``request``. A download (``stream_to``) follows redirects to another host without
        the token; every other answer is read up to ``max_response_bytes`` and interpreted."""
        import requests

        if stream_to is not None:  # a download may be redirected to a signed URL, which urllib3 would log
            hide_url_queries_in_http_logs()
        body = request.body_bytes()
        url, params, headers = settings.url(request.path), list(request.params) or None, None
        started = time.monotonic()
        for hops in range(MAX_DOWNLOAD_REDIRECTS + 1):
            try:
                response = self.session.request(
                    request.method,
                    url,
                    params=params,
                    data=body,
                    headers=headers or settings.headers(has_body=body is not None),
                    timeout=(settings.connect_timeout, settings.read_timeout),
                    allow_redirects=False,  # a redirect elsewhere must not take the token along
                    stream=True,  # read below, within max_response_bytes
                    # An explicit (no-op) auth: without one, requests replaces our Authorization header with
                    # Basic auth from a ~/.netrc entry for the API host. Proxies still come from the environment.
                    auth=_keep_authorization_header,
                )
                with response:
                    if hops == 0:  # the API's own clock, not a CDN's
                        self.server_clock.observe(response.headers.get("Date"))
                    status = response.status_code
                    if stream_to is not None and status in _REDIRECTS:
                        url = redirect_target(settings, request, url, status, response.headers.get("Location"), hops)
                        _airflow.mask_url_secrets(url)  # a CDN's signature: masked in every log line, urllib3's too
                        self.log.info("%s: the download is served from %s", request.display, safe_url(url))
                        params, body, headers = None, None, {"User-Agent": USER_AGENT}  # never the token
                        continue
                    if stream_to is not None and 200 <= status < 300:
                        for chunk in response.iter_content(chunk_size=DOWNLOAD_CHUNK_BYTES):
                            stream_to.write(chunk)
                        content = b""
                    else:
                        content = _read_capped(response, settings, request)
            except requests.exceptions.ConnectTimeout:
                raise connect_timeout_error(settings, request, url) from None
            except requests.exceptions.ReadTimeout:
                raise read_timeout_error(settings, request) from None
            except requests.exceptions.RequestException as exc:
                if (kind := _connect_failure(exc)) is not None:
                    raise connect_error(settings, request, kind, _root_reason(exc), url) from None
                raise transport_error(settings, request, _requests_reason(exc), may_have_reached_server=True) from None
            self.log.debug(
                "AI on the Ball API: %s -> %s in %.0f ms",
                request.display,
                status,
                (time.monotonic() - started) * 1000,
            )
            return interpret_response(settings, request, status, response.headers, content)
        raise AssertionError("unreachable: redirect_target refuses one hop too many")  # pragma: no cover

    # -- videos ----------------------------------------------------------------------------------

    def list_videos(self) -> Iterator[dict[str, Any]]:
        """Yield every video of the organization, following pagination across all pages."""
        request: ApiRequest | None = endpoints.list_videos()
        guard = PageGuard()  # a server looping its links, or never ending them, must not loop us forever
        while request is not None:
            page = self.run(request)
            items = page_items(page)
            if not guard.admit(request, page, items):
                return
            yield from items
            request = None if page_is_last(page) else next_page_request(self.settings, request, page)

    def list_videos_page(self) -> list[dict[str, Any]]:
        """The first page of ``GET /videos`` (one request; the API documents no order or page size)."""
        return page_items(self.run(endpoints.list_videos()))

    def get_video(self, video_id: int | str) -> dict[str, Any]:
        """Return video ``video_id`` (``GET /videos/{id}``), including ``status`` and ``mp4_source``."""
        return self.run(endpoints.get_video(video_id))  # type: ignore[no-any-return]

    def create_video(
        self,
        video_file_url: str,
        *,
        title: str | None = None,
        home_team_name: str | None = None,
        away_team_name: str | None = None,
        date: Any = None,
        start_offset_seconds: int | None = None,
        end_offset_seconds: int | None = None,
        left_start_team: str | None = None,
    ) -> dict[str, Any]:
        """Create a video from a public URL (``POST /videos``) and return it (with ``id`` and ``status``).

        Fields left ``None`` are not sent. ``date`` accepts ``YYYY-MM-DD``, ``date`` or ``datetime``.
        Never re-sent after the request may have reached the server (see the create operator for
        idempotent retries).
        """
        fields = {
            "video_file_url": video_file_url,
            "title": title,
            "home_team_name": home_team_name,
            "away_team_name": away_team_name,
            "date": date,
            "start_offset_seconds": start_offset_seconds,
            "end_offset_seconds": end_offset_seconds,
            "left_start_team": left_start_team,
        }
        return self.run(endpoints.create_video(fields))  # type: ignore[no-any-return]

    def update_video(self, video_id: int | str, **fields: Any) -> dict[str, Any]:
        """Update a video's metadata (``PUT /videos/{id}``) and return the updated video.

        Allowed fields: title, home_team_name, away_team_name, date, start_offset_seconds,
        end_offset_seconds; ``None`` values are not sent.
        """
        return self.run(endpoints.update_video(video_id, fields))  # type: ignore[no-any-return]

    def delete_video(self, video_id: int | str) -> None:
        """Delete a video and, irreversibly, all its analyses (``DELETE /videos/{id}``, 204)."""
        self.run(endpoints.delete_video(video_id))

    # -- analyses and results --------------------------------------------------------------------

    def create_analysis(self, video_id: int | str, fps: int | None = None) -> dict[str, Any]:
        """Start an analysis of a video (``POST /videos/{id}/analysis``); the video need not be ready."""
        return self.run(endpoints.create_analysis(video_id, fps))  # type: ignore[no-any-return]

    def get_analysis(self, analysis_id: int | str, video_id: int | str | None = None) -> dict[str, Any]:
        """Return an analysis (``GET /analyses/{id}``: implied by the docs, envelope assumed either way).

        :param video_id: the analysis's video. When given and the server turns out to have no
            ``GET /analyses/{id}`` route, the analysis is read from the video's documented
            ``analyses`` list instead (``{id, status}`` only: no progress), and that is logged once.
        """
        steps = self._analysis_lookup(analysis_id, video_id)
        step: ApiRequest | _Done = next(steps)
        while isinstance(step, ApiRequest):
            try:
                result = self.run(step)
            except AIOnTheBallError as exc:
                step = _resume(steps, exc)
            else:
                step = _resume(steps, result)
        return step.value  # type: ignore[no-any-return]

    def get_summary(self, analysis_id: int | str) -> dict[str, Any]:
        """Return an analysis's summary (a bare JSON object: teams, possession, players)."""
        return self.run(endpoints.get_summary(analysis_id))  # type: ignore[no-any-return]

    def get_events(self, analysis_id: int | str) -> list[dict[str, Any]]:
        """Return an analysis's events (a bare JSON array of ``{start, end, label, event_type}``)."""
        return self.run(endpoints.get_events(analysis_id))  # type: ignore[no-any-return]

    def get_schema(self, analysis_id: int | str) -> dict[str, Any]:
        """Return what an analysis supports: event types, filters, frame_state (bare JSON object)."""
        return self.run(endpoints.get_schema(analysis_id))  # type: ignore[no-any-return]

    def query_intervals(
        self,
        analysis_id: int | str,
        filters: list[dict[str, Any]],
        operator: str = "AND",
        pad_sec: int | None = None,
        gap_fill_sec: int | None = None,
        merge_results: bool | None = None,
        include_pixel_coords: bool | None = None,
        existing_filters: list[dict[str, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """Return the intervals where ``filters`` hold (a bare array of ``{start, end, label, type}``).

        Options left ``None`` take the server's defaults (pad 5 s, gap fill 5 s, merge on).
        """
        request = endpoints.query_intervals(
            analysis_id,
            filters,
            operator=operator,
            pad_sec=pad_sec,
            gap_fill_sec=gap_fill_sec,
            merge_results=merge_results,
            include_pixel_coords=include_pixel_coords,
            existing_filters=existing_filters,
        )
        return self.run(request)  # type: ignore[no-any-return]

    def download_tracking(
        self, analysis_id: int | str, destination: str | Path | IO[bytes], format: str = "parquet"
    ) -> str | Path | IO[bytes]:
        """Stream an analysis's tracking file to a local path or a binary file-like object.

        The file (20-500 MB) is written chunk by chunk and never held whole in memory. A path is
        written through a temporary sibling and renamed, so a failed download leaves no partial file.

        :return: ``destination``.
        """
        request = endpoints.download_tracking(analysis_id, format)
        settings = self.settings
        options = retry_options(settings, request, self.log)
        if not isinstance(destination, str | Path):
            handle = destination
            start = handle.tell() if handle.seekable() else None
            if start is None:  # cannot rewind what an interrupted attempt wrote: no retry
                options["stop"] = tenacity.stop_after_attempt(1)

            def write_to_handle() -> None:
                if start is not None:  # a retry starts the file again
                    handle.seek(start)
                    handle.truncate()
                self._send_once(settings, request, handle)

            tenacity.Retrying(**options)(write_to_handle)
            return destination
        target = Path(destination)
        partial = target.with_name(target.name + ".part")
        target.parent.mkdir(parents=True, exist_ok=True)

        def write_to_path() -> None:
            with partial.open("wb") as file:  # a retry starts the file again
                self._send_once(settings, request, file)

        try:
            tenacity.Retrying(**options)(write_to_path)
            replace_durably(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        return destination

    # -- connection test -------------------------------------------------------------------------

    def test_connection(self) -> tuple[bool, str]:
        """Check the base URL and token with one ``GET /videos`` (first page only), sent once: the UI's
        Test button answers within one connect (or read) timeout, never after the retry policy's back-off."""
        try:
            settings = self.settings
            page = self._send_once(settings, endpoints.list_videos())
        except (AIOnTheBallError, ValueError) as exc:
            return False, str(exc)
        meta = page.get("meta") if isinstance(page, dict) else None
        total = meta.get("total") if isinstance(meta, dict) else None
        count = total if isinstance(total, int) else len(page_items(page))
        return True, f"Connected to the AI on the Ball API at {settings.base_url}: {count} video(s) visible."


def _keep_authorization_header(request: Any) -> Any:
    """``requests`` auth that leaves the prepared request as it is (see ``_send_once``)."""
    return request


#: Redirect statuses a download follows.
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def _read_capped(response: requests.Response, settings: ClientSettings, request: ApiRequest) -> bytes:
    """The decoded body, refused past ``max_response_bytes`` (a gzip body can inflate a thousandfold)."""
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=64 * 1024):
        size += len(chunk)
        if size > settings.max_response_bytes:
            raise body_too_large(settings, request, response.status_code)
        chunks.append(chunk)
    return b"".join(chunks)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps (``reason``, a nested first argument, the context), each once."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        reason = getattr(current, "reason", None)
        nested = current.args[0] if current.args and isinstance(current.args[0], BaseException) else None
        current = reason if isinstance(reason, BaseException) else nested or current.__context__


def _connect_failure(exc: Exception) -> ConnectFailure | None:
    """Why a ``requests`` error never reached the server (DNS, refused, other), or ``None`` if it may have."""
    import urllib3.exceptions

    for cause in _causes(exc):
        if isinstance(cause, urllib3.exceptions.NameResolutionError):
            return "dns"
        if isinstance(cause, urllib3.exceptions.NewConnectionError):
            refused = any(isinstance(c, ConnectionRefusedError) for c in _causes(cause))
            return "refused" if refused else "other"
    return None


def _root_reason(exc: BaseException) -> str:
    """The innermost OS-level reason of a connection failure, e.g. ``[Errno 111] Connection refused``."""
    innermost = [c for c in _causes(exc) if isinstance(c, OSError) and c.strerror]
    return f"[Errno {innermost[-1].errno}] {innermost[-1].strerror}" if innermost else ""


def _requests_reason(exc: Exception) -> str:
    text = str(exc)
    if "RemoteDisconnected" in text or "Connection aborted" in text or "ConnectionReset" in text:
        return "the server closed the connection without a response"
    return f"{type(exc).__name__}: {text}"


class AIOnTheBallAsyncHook(_AIOnTheBallHookBase):
    """Asynchronous client of the AI on the Ball API, for triggers (never blocks the event loop).

    The connection is fetched with ``get_async_connection`` (no sync DB or supervisor call inside the
    loop). HTTP goes through one ``aiohttp.ClientSession`` per (event loop, base URL), shared by every
    trigger of the triggerer process; use the hook as ``async with hook:`` to hold it for many
    requests. Headers, timeouts, error classes and the retry policy are the sync hook's.

    Every request first waits for the connection's request budget in this event loop
    (:class:`~airflow_provider_aiontheball.hooks._async_sessions.RequestBudget`): after a 429 (or a 503
    with ``Retry-After``) seen by any hook of the loop on the same connection id, no request on it is
    sent until the time the server asked for; the connection extra ``max_requests_per_second`` caps
    their rate together (default: no cap).

    :param aiontheball_conn_id: Airflow connection id. Default ``aiontheball_default``.
    :param timeout: read timeout in seconds or ``(connect, read)``; as in :class:`AIOnTheBallHook`.
    :param retry_limit: retries of transient failures inside one call. Triggers pass 0 and apply their
        own error budget between polls instead. Default: as in :class:`AIOnTheBallHook`.
    :param retry_min_wait: first backoff step in seconds. Default 1.
    :param retry_max_wait: cap of backoff and ``Retry-After``. Default 60.
    :param pool_limit: connections of the shared session, if this hook creates it. Default 32.
    """

    def __init__(
        self,
        aiontheball_conn_id: str = DEFAULT_CONN_ID,
        *,
        pool_limit: int = DEFAULT_POOL_LIMIT,
        **kwargs: Any,
    ) -> None:
        super().__init__(aiontheball_conn_id, **kwargs)
        self.pool_limit = pool_limit
        self._settings: ClientSettings | None = None
        self._session: aiohttp.ClientSession | None = None
        self._client_timeout: aiohttp.ClientTimeout | None = None

    async def get_settings(self) -> ClientSettings:
        """Read the connection (without blocking the loop) on first use and return the settings.

        Hooks of the same event loop share a connection's settings for a minute (see
        :mod:`~airflow_provider_aiontheball.hooks._async_sessions`).
        """
        if self._settings is None:
            self._settings = await shared_settings.get(self._settings_key, self._load_settings)
        return self._settings

    @property
    def _settings_key(self) -> tuple[Any, ...]:
        """What hooks of one event loop share settings by: the connection and the overrides."""
        return (self.aiontheball_conn_id, tuple(sorted(self._overrides.items())))

    async def _load_settings(self) -> ClientSettings:
        from airflow.providers.common.compat.connection import get_async_connection, get_async_extra_dejson

        conn = await get_async_connection(self.aiontheball_conn_id, hook=type(self))
        extra = await get_async_extra_dejson(conn)
        return self._settings_from(conn, extra)

    async def __aenter__(self) -> AIOnTheBallAsyncHook:
        settings = await self.get_settings()
        if self._session is None:
            self._session = shared_sessions.acquire(settings.base_url, pool_limit=self.pool_limit)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Give back the shared session (closed when its last user gives it back)."""
        session, self._session = self._session, None
        if session is not None and self._settings is not None:
            await shared_sessions.release(self._settings.base_url, session)

    async def run(self, request: ApiRequest) -> Any:
        """Send ``request`` with the retry policy and return the interpreted result.

        A 401/403 makes the hook load the connection again (bypassing the shared minute), once: if the
        token changed (rotated), the request is sent again with it, as in :meth:`AIOnTheBallHook.run`.
        """
        if self._session is None:  # one-off use outside ``async with``: borrow the session for this call
            async with self:
                return await self.run(request)
        settings = await self.get_settings()
        try:
            return await self._run_with(settings, request)
        except AIOnTheBallAuthError:
            fresh = await shared_settings.refresh(self._settings_key, self._load_settings, stale=settings)
            if fresh.base_url == settings.base_url:
                self._settings = fresh  # the next refusal reloads again (a revocation may precede the new token)
            if not self._rotated(settings, fresh):
                raise
            return await self._run_with(fresh, request)

    async def _run_with(self, settings: ClientSettings, request: ApiRequest) -> Any:
        if settings.retry.retry_limit == 0:
            # Triggers retry between polls, within their error budget. Skipping tenacity here is not
            # only cheaper: its per-call retry state is cyclic garbage, and at 1,000 triggers the
            # full GC collections it caused paused the triggerer's loop (benchmarks/README.md, "Findings").
            return await self._send_once(settings, request)
        retrying = tenacity.AsyncRetrying(**retry_options(settings, request, self.log))
        return await retrying(self._send_once, settings, request)

    def _back_off(self, budget: RequestBudget, seconds: float) -> None:
        if budget.pause(seconds):  # logged when the pause starts or grows, not for every refused request
            self.log.warning(
                "AI on the Ball API asked connection %r to back off: no request on it leaves this event loop "
                "for %.1f s (every trigger using it waits; requests already sent are not cancelled).",
                self.aiontheball_conn_id,
                seconds,
            )

    async def _send_once(self, settings: ClientSettings, request: ApiRequest) -> Any:
        import asyncio

        import aiohttp

        assert self._session is not None
        # The one request path of the async hook: every request waits for the connection's shared budget
        # here, and every answer that asks the connection to back off feeds it (interpret_response).
        budget = request_budgets.get(settings.conn_id, settings.max_requests_per_second)
        await budget.acquire()
        if self._client_timeout is None:
            # ``connect`` bounds the wait for a free pooled connection as well as the handshake: without
            # it a burst that fills the pool queues forever.
            self._client_timeout = aiohttp.ClientTimeout(
                total=None,
                connect=settings.connect_timeout + settings.read_timeout,
                sock_connect=settings.connect_timeout,
                sock_read=settings.read_timeout,
            )
        body = request.body_bytes()
        try:
            async with self._session.request(
                request.method,
                settings.url(request.path),
                params=list(request.params) or None,
                data=body,
                headers=settings.headers(has_body=body is not None),
                timeout=self._client_timeout,
                allow_redirects=False,
            ) as response:
                self.server_clock.observe(response.headers.get("Date"))
                content = bytearray()
                async for chunk in response.content.iter_chunked(64 * 1024):  # decompressed as it comes
                    content += chunk
                    if len(content) > settings.max_response_bytes:
                        raise body_too_large(settings, request, response.status)
                status, headers = response.status, response.headers
        except aiohttp.ConnectionTimeoutError:
            raise connect_timeout_error(settings, request) from None
        except (aiohttp.ServerTimeoutError, TimeoutError):
            raise read_timeout_error(settings, request) from None
        except aiohttp.ClientConnectorError as exc:
            kind: ConnectFailure = (
                "dns"
                if isinstance(exc, aiohttp.ClientConnectorDNSError)
                else "refused"
                if isinstance(exc.os_error, ConnectionRefusedError)
                else "other"
            )
            raise connect_error(settings, request, kind, str(exc.os_error.strerror or "")) from None
        except aiohttp.ServerDisconnectedError:
            raise transport_error(
                settings,
                request,
                "the server closed the connection without a response",
                may_have_reached_server=True,
            ) from None
        except aiohttp.ClientError as exc:
            raise transport_error(
                settings, request, f"{type(exc).__name__}: {exc}", may_have_reached_server=True
            ) from None
        if 200 <= status < 300 and len(content) > PARSE_OFF_LOOP_BYTES:
            # Decoding a large body takes milliseconds to seconds: not on the event loop every wait shares.
            return await asyncio.to_thread(interpret_response, settings, request, status, headers, bytes(content))
        return interpret_response(
            settings,
            request,
            status,
            headers,
            bytes(content),
            on_backoff=lambda seconds: self._back_off(budget, seconds),
        )

    async def list_videos(self) -> list[dict[str, Any]]:
        """Return every video of the organization (``GET /videos``), one request per page.

        A failed page raises: a caller comparing listings (the analysis-done watcher) must not mistake a page
        it did not get for videos that are gone. Pagination as in :meth:`AIOnTheBallHook.list_videos`: the
        same links, and the same guard, which ends a listing whose server repeats or never ends its pages.
        """
        request: ApiRequest | None = endpoints.list_videos()
        guard = PageGuard()
        videos: list[dict[str, Any]] = []
        while request is not None:
            page = await self.run(request)
            items = page_items(page)
            if not guard.admit(request, page, items):
                break
            videos.extend(items)
            request = None if page_is_last(page) else next_page_request(await self.get_settings(), request, page)
        return videos

    async def get_video(self, video_id: int | str) -> dict[str, Any]:
        """Return video ``video_id`` (``GET /videos/{id}``)."""
        return await self.run(endpoints.get_video(video_id))  # type: ignore[no-any-return]

    async def get_analysis(self, analysis_id: int | str, video_id: int | str | None = None) -> dict[str, Any]:
        """Return an analysis (``GET /analyses/{id}``, undocumented; either envelope accepted).

        :param video_id: as in :meth:`AIOnTheBallHook.get_analysis`: the fallback when the server has no
            ``GET /analyses/{id}`` route.
        """
        steps = self._analysis_lookup(analysis_id, video_id)
        step: ApiRequest | _Done = next(steps)
        while isinstance(step, ApiRequest):
            try:
                result = await self.run(step)
            except AIOnTheBallError as exc:
                step = _resume(steps, exc)
            else:
                step = _resume(steps, result)
        return step.value  # type: ignore[no-any-return]
