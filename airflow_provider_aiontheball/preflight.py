"""Pre-flight checks of a video URL against the API's documented requirements, before ``POST /videos``.

The Videos page lists them: a public URL the API can download directly, MP4 only, 1080p or lower,
25 fps, at least 10 minutes. The API downloads the file after the POST and, when one of them is not met,
ends the video in ``error`` with no reason, minutes to hours later. :func:`check_video_url` measures the
same things in a second or two, reading only the file's first bytes and its index over HTTP ranges:

- **reachable** — a ranged ``GET`` without credentials (as the API sends it) answers 200 or 206;
- **content_type** — the answer is not an HTML page (a login or error page served with 200);
- **size** — neither 0 bytes nor more than a cap (``defaults.PREFLIGHT_MAX_VIDEO_BYTES``);
- **expiry** — a presigned URL (S3 ``X-Amz-*``, GCS ``X-Goog-*``, Azure SAS ``se=``) outlasts a margin;
- **container** — MP4 (an ISO-BMFF ``ftyp`` brand other than QuickTime's), from the first bytes;
- **resolution**, **fps**, **duration** — from the file's header, read by PyAV (FFmpeg) through
  :class:`HTTPRangeFile`; PyAV is the optional ``media`` extra. Without it these three are skipped and the
  result says so and how to enable them.

A requirement not met raises :class:`VideoRequirementError`, a ``ValueError`` whose message starts with
the field and names the value measured and the documented limit (``video is 50 fps; the API requires
25 fps``); operators turn it into ``AIOnTheBallInputError`` with ``exceptions.bad_input_fails_task``, which
fails the task without retries. A server that is down or a network error raises :class:`PreflightUnavailableError`
(retries apply). No message ever contains the URL's query (a presigned URL's signature): URLs are shown
through ``validation.display_url``.

No Airflow import, and ``requests`` and ``av`` are imported only when a check runs.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urljoin, urlsplit

from airflow_provider_aiontheball.defaults import (
    MAX_DOWNLOAD_REDIRECTS,
    PREFLIGHT_BLOCK_BYTES,
    PREFLIGHT_CONNECT_TIMEOUT,
    PREFLIGHT_EXPIRY_MARGIN_SECONDS,
    PREFLIGHT_MAX_READ_BYTES,
    PREFLIGHT_MAX_VIDEO_BYTES,
    PREFLIGHT_READ_TIMEOUT,
    VIDEO_FPS_TOLERANCE,
    VIDEO_MAX_HEIGHT,
    VIDEO_MAX_WIDTH,
    VIDEO_MIN_DURATION_SECONDS,
    VIDEO_REQUIRED_FPS,
)
from airflow_provider_aiontheball.polling import format_duration
from airflow_provider_aiontheball.validation import (
    display_url,
    hide_url_queries_in_http_logs,
    url_secrets,
    validate_integer,
    validate_video_file_url,
)

if TYPE_CHECKING:
    import requests

#: Every check, in the order they run; each can be switched off by name (``skip=``).
CHECKS: tuple[str, ...] = (
    "expiry",
    "reachable",
    "content_type",
    "size",
    "container",
    "resolution",
    "fps",
    "duration",
)
#: The checks that need PyAV (the ``media`` extra) and range requests.
MEDIA_CHECKS: tuple[str, ...] = ("resolution", "fps", "duration")
MEDIA_EXTRA_HINT = "pip install 'airflow-provider-aiontheball[media]'"
#: :func:`container_of` for bytes of no known container.
UNRECOGNISED = "not a recognised video container"

# ISO-BMFF major brands of MP4 files (ISO/IEC 14496-12/-14, and what encoders write for them).
_MP4_BRANDS = frozenset(
    {"isom", "iso2", "iso3", "iso4", "iso5", "iso6", "iso7", "iso8", "iso9", "mp41", "mp42", "mp71", "avc1"}
    | {"dash", "M4V ", "M4VH", "M4VP", "mmp4", "MSNV", "f4v ", "XAVC", "hvc1", "av01"}
)
# Brands that are ISO-BMFF but not an MP4 video: the API would refuse them like any other format.
_OTHER_BRANDS = {"qt  ": "QuickTime MOV", "M4A ": "M4A audio", "M4B ": "M4B audiobook", "crx ": "Canon CR3"}
_HTML_START = re.compile(rb"^\s*(<!doctype\s+html|<html|<head|<body|<\?xml[^>]*>\s*<html)", re.IGNORECASE)
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)\s*$", re.IGNORECASE)
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
# A query string inside a message (requests quotes "url: /path?X-Amz-Signature=..."), up to a space or quote.
_QUERY = re.compile(r"\?[^\s'\")]+")


@dataclass
class PreflightResult:
    """What pre-flight measured; every figure is ``None`` when it was not measured (see :attr:`skipped`).

    :param url: the URL as shown in logs (no query, no credentials).
    :param status: HTTP status of the first ranged ``GET`` (after redirects).
    :param size_bytes: the file's size (``Content-Range`` total, else ``Content-Length``).
    :param content_type: the ``Content-Type`` the server sent.
    :param expires_at: when a presigned URL stops working (UTC), parsed from its query.
    :param container: ``"MP4"``, or what the file is instead (``"QuickTime MOV"``, ``"Matroska/WebM"``, ...).
    :param width: frame width in pixels.
    :param height: frame height in pixels.
    :param fps: average frame rate of the first video stream.
    :param duration_seconds: the file's duration.
    :param usable_seconds: the duration left after ``start_offset_seconds`` / ``end_offset_seconds``.
    :param bytes_read: response body bytes received over all requests.
    :param requests: HTTP requests sent.
    :param probe_seconds: wall time of the whole pre-flight.
    :param skipped: check name → why it did not run.
    """

    url: str
    status: int | None = None
    size_bytes: int | None = None
    content_type: str | None = None
    expires_at: dt.datetime | None = None
    container: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    duration_seconds: float | None = None
    usable_seconds: float | None = None
    bytes_read: int = 0
    requests: int = 0
    probe_seconds: float = 0.0
    skipped: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The figures as JSON-serialisable values (for XCom and log lines)."""
        values = asdict(self)
        values["expires_at"] = self.expires_at.isoformat() if self.expires_at else None
        return values

    def summary(self) -> str:
        """One line of the measured figures, e.g. for the task log or an error message."""
        parts = [f"HTTP {self.status}" if self.status is not None else "not reached"]
        if self.size_bytes is not None:
            parts.append(_size(self.size_bytes))
        if self.container:
            parts.append(self.container)
        if self.width is not None and self.height is not None:
            parts.append(f"{self.width}x{self.height}")
        if self.fps is not None:
            parts.append(f"{_number(self.fps)} fps")
        if self.duration_seconds is not None:
            parts.append(format_duration(self.duration_seconds))
        if self.expires_at is not None:
            parts.append(f"expires {self.expires_at:%Y-%m-%dT%H:%M:%SZ}")
        line = ", ".join(parts)
        line += f"; read {_size(self.bytes_read)} in {self.requests} request(s), {self.probe_seconds:.2f} s"
        if self.skipped:
            line += "; skipped: " + ", ".join(f"{name} ({why})" for name, why in self.skipped.items())
        return line


@dataclass(frozen=True)
class Failure:
    """One requirement not met.

    :param check: the check's name (one of :data:`CHECKS`).
    :param measured: what was measured, as a phrase (``"video is 50 fps"``).
    :param limit: the documented requirement (``"the API requires 25 fps"``).
    """

    check: str
    measured: str
    limit: str

    def __str__(self) -> str:
        return f"{self.measured}; {self.limit}"


class VideoRequirementError(ValueError):
    """The video at the URL does not meet a documented requirement; the same URL would fail again.

    :param failures: every requirement not met.
    :param result: what pre-flight measured (possibly partial).
    :param field: the task argument that holds the URL.
    """

    def __init__(self, failures: list[Failure], result: PreflightResult, field: str = "video_file_url") -> None:
        self.failures = failures
        self.result = result
        self.field = field
        reasons = ". ".join(str(failure) for failure in failures)
        super().__init__(
            f"{field}: {result.url}: {reasons} (checked before upload; pre-flight measured: {result.summary()})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.failures, self.result, self.field))


class RedirectLoopError(OSError):
    """The URL redirects more than ``defaults.MAX_DOWNLOAD_REDIRECTS`` times."""


class PreflightUnavailableError(ConnectionError):
    """The server could not be asked (network error, timeout, 5xx, 429): nothing is known about the video
    yet, and a later try may succeed."""


def check_video_url(
    url: str,
    *,
    start_offset_seconds: int | str | None = None,
    end_offset_seconds: int | str | None = None,
    skip: Collection[str] = (),
    expiry_margin_seconds: float = PREFLIGHT_EXPIRY_MARGIN_SECONDS,
    max_video_bytes: int = PREFLIGHT_MAX_VIDEO_BYTES,
    max_read_bytes: int = PREFLIGHT_MAX_READ_BYTES,
    timeout: tuple[float, float] = (PREFLIGHT_CONNECT_TIMEOUT, PREFLIGHT_READ_TIMEOUT),
    now: dt.datetime | None = None,
    field: str = "video_file_url",
    on_secret: Callable[[str], None] | None = None,
) -> PreflightResult:
    """Check ``url`` as the API will see it and return what was measured.

    :param url: the ``video_file_url`` about to be sent (http or https).
    :param start_offset_seconds: the ``start_offset_seconds`` about to be sent: the duration is counted from it.
    :param end_offset_seconds: the ``end_offset_seconds`` about to be sent, read as the position where the
        analysed part ends (the Videos page's example sends ``0`` and ``5400`` for a 5400-second video).
    :param skip: names of checks (:data:`CHECKS`) not to run.
    :param expiry_margin_seconds: how long a presigned URL must still be valid.
    :param max_video_bytes: largest size accepted.
    :param max_read_bytes: most bytes the media probe may read; past it the media checks are skipped.
    :param timeout: seconds to connect and to wait for each response.
    :param now: the current time (UTC), for tests; defaults to the clock.
    :param field: the task argument named in error messages.
    :param on_secret: called with each secret part of the URL, and of every redirect target before it is
        requested (a task passes Airflow's ``mask_secret``: the HTTP library's debug lines quote each URL).
    :raises VideoRequirementError: a requirement is not met (a ``ValueError``: no retry will change it).
    :raises PreflightUnavailableError: the server could not be asked; a retry may succeed.
    """
    url = validate_video_file_url(url, field)
    if start_offset_seconds is not None:  # a rendered template gives "120": read it as the POST will
        start_offset_seconds = validate_integer(start_offset_seconds, "start_offset_seconds")
    if end_offset_seconds is not None:
        end_offset_seconds = validate_integer(end_offset_seconds, "end_offset_seconds")
    _known_checks(skip)
    if on_secret is not None:
        for secret in url_secrets(url):
            on_secret(secret)
    started = time.monotonic()
    result = PreflightResult(url=display_url(url))
    result.skipped.update((name, "switched off") for name in CHECKS if name in skip)
    options = _Options(
        start_offset_seconds=start_offset_seconds,
        end_offset_seconds=end_offset_seconds,
        skip=set(skip),
        expiry_margin_seconds=expiry_margin_seconds,
        max_video_bytes=max_video_bytes,
        max_read_bytes=max_read_bytes,
        timeout=timeout,
        now=now,
        field=field,
        started=started,
        on_secret=on_secret,
    )
    try:
        _run(url, result, options)
    finally:
        result.probe_seconds = time.monotonic() - started
    return result


@dataclass(frozen=True, kw_only=True)
class _Options:
    start_offset_seconds: int | None
    end_offset_seconds: int | None
    skip: set[str]
    expiry_margin_seconds: float
    max_video_bytes: int
    max_read_bytes: int
    timeout: tuple[float, float]
    now: dt.datetime | None
    field: str
    started: float
    on_secret: Callable[[str], None] | None = None

    def runs(self, check: str) -> bool:
        return check not in self.skip


def _run(url: str, result: PreflightResult, options: _Options) -> None:
    def fail(*failures: Failure) -> VideoRequirementError:
        result.probe_seconds = time.monotonic() - options.started  # the message shows it
        return VideoRequirementError(list(failures), result, options.field)

    result.expires_at = presigned_expiry(url)
    if options.runs("expiry") and result.expires_at is not None:
        now = options.now or dt.datetime.now(dt.UTC)
        failure = expiry_failure(result.expires_at, now, options.expiry_margin_seconds)
        if failure:  # an expired signature would only be refused (403): say why without asking
            raise fail(failure)

    http_checks = ("reachable", "content_type", "size", "container", *MEDIA_CHECKS)
    if not any(options.runs(name) for name in http_checks):
        return
    with _anonymous_session(options.on_secret) as session:
        reader = HTTPRangeFile(session, url, timeout=options.timeout, max_read_bytes=options.max_read_bytes)
        try:
            first = reader.open()
        except RedirectLoopError:
            raise fail(
                Failure(
                    "reachable",
                    f"the URL redirects more than {MAX_DOWNLOAD_REDIRECTS} times",
                    "the API requires a URL it can download directly",
                )
            ) from None
        finally:
            result.bytes_read, result.requests = reader.bytes_read, reader.requests
        result.status, result.content_type, result.size_bytes = reader.status, reader.content_type, reader.size

        failure = status_failure(reader.status, result.size_bytes)
        if failure and options.runs("reachable"):
            raise fail(failure)
        if failure:  # switched off, but an error page says nothing about the video: check nothing else
            why = f"the URL answered {reader.status}"
            result.skipped.update((name, why) for name in http_checks if name not in result.skipped)
            return
        if options.runs("content_type"):
            failure = html_failure(reader.content_type, first)
            if failure:
                raise fail(failure)
        if options.runs("size"):
            failure = size_failure(result.size_bytes, options.max_video_bytes)
            if failure:
                raise fail(failure)
        if result.size_bytes == 0:
            return  # nothing to probe; the size check, if on, said so
        result.container = container_of(first)
        failures = []
        if options.runs("container") and result.container != "MP4":
            failures.append(
                Failure("container", f"video is {result.container}", "the API supports MP4 only (Videos page)")
            )
        wanted = [name for name in MEDIA_CHECKS if options.runs(name)]
        if wanted:
            why_not = _media_unavailable(reader, result.container)
            if why_not:
                result.skipped.update((name, why_not) for name in wanted)
            else:
                try:
                    failures += _probe_media(reader, result, options)
                finally:
                    result.bytes_read, result.requests = reader.bytes_read, reader.requests
        if failures:
            raise fail(*failures)


# -- pure checks ------------------------------------------------------------------------------------


def presigned_expiry(url: str) -> dt.datetime | None:
    """When a presigned URL expires (UTC), from its query; ``None`` for a URL that is not presigned.

    Understands S3 SigV4 (``X-Amz-Date`` + ``X-Amz-Expires``), GCS V4 (``X-Goog-Date`` + ``X-Goog-Expires``),
    an Azure SAS (``se=``, ISO 8601), and the V2 form of S3 and GCS (``Expires=`` epoch seconds with a
    ``Signature``). Parameter names are matched case-blind, as S3 does.

    :param url: the URL.
    """
    params = {name.lower(): value for name, value in parse_qsl(urlsplit(url).query, keep_blank_values=True)}
    for prefix in ("x-amz-", "x-goog-"):
        date, expires = params.get(prefix + "date"), params.get(prefix + "expires")
        if date and expires and expires.strip().isdigit():
            try:
                signed = dt.datetime.strptime(date.strip(), _AMZ_DATE).replace(tzinfo=dt.UTC)
            except ValueError:
                return None
            return signed + dt.timedelta(seconds=int(expires))
    if "se" in params and "sig" in params:
        return _sas_time(params["se"])
    if "expires" in params and "signature" in params and params["expires"].strip().isdigit():
        return dt.datetime.fromtimestamp(int(params["expires"]), dt.UTC)
    return None


def _sas_time(value: str) -> dt.datetime | None:
    # SAS times are ISO 8601 in UTC: "2026-12-08T10:00:00Z", "2026-12-08T10:00Z" or a bare date "2026-12-08".
    try:
        parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=parsed.tzinfo or dt.UTC)


def expiry_failure(expires_at: dt.datetime, now: dt.datetime, margin_seconds: float) -> Failure | None:
    """The failure of a presigned URL that is expired or expires within ``margin_seconds`` of ``now``.

    :param expires_at: when the URL stops working.
    :param now: the current time (aware).
    :param margin_seconds: how long it must still work.
    """
    left = (expires_at - now).total_seconds()
    if left >= margin_seconds:
        return None
    when = f"{expires_at:%Y-%m-%dT%H:%M:%SZ}"
    measured = (
        f"the presigned URL expired {format_duration(-left)} ago ({when})"
        if left <= 0
        else f"the presigned URL expires in {format_duration(left)} ({when})"
    )
    return Failure(
        "expiry",
        measured,
        f"the API downloads the video after the upload request, so it must stay valid for at least "
        f"{format_duration(margin_seconds)} (expiry_margin_seconds); presign it for longer",
    )


def status_failure(status: int | None, size: int | None) -> Failure | None:
    """The failure of an HTTP answer the API could not download from.

    :param status: the status of the ranged ``GET`` (after redirects).
    :param size: the size the server announced, if any (a 416 on an empty file is not a reachability failure).
    """
    if status in (200, 206) or (status == 416 and size == 0):
        return None
    hint = {
        401: " (it needs credentials)",
        403: " (a private object, or an expired or wrong signature)",
        404: " (no such file)",
        410: " (gone)",
    }.get(status or 0, "")
    return Failure(
        "reachable",
        f"a GET without credentials answered {status}{hint}",
        "the API requires a public URL it can download directly (200 or 206)",
    )


def html_failure(content_type: str | None, first_bytes: bytes) -> Failure | None:
    """The failure of an answer that is an HTML page (by ``Content-Type`` or by its first bytes).

    :param content_type: the ``Content-Type`` header, if any.
    :param first_bytes: the start of the body.
    """
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type in ("text/html", "application/xhtml+xml") or _HTML_START.match(first_bytes[:512]):
        return Failure(
            "content_type",
            f"the URL serves an HTML page ({content_type or 'no Content-Type'}), not a video",
            "the API requires a direct link to the MP4 file (a login, sharing or error page cannot be analysed)",
        )
    return None


def size_failure(size: int | None, max_bytes: int) -> Failure | None:
    """The failure of an empty or absurdly large file; an unknown size passes.

    :param size: bytes, if the server said.
    :param max_bytes: largest size accepted.
    """
    if size == 0:
        return Failure("size", "the file is 0 bytes", "the API requires a video of at least 10 minutes")
    if size is not None and size > max_bytes:
        return Failure(
            "size",
            f"the file is {_size(size)}",
            f"pre-flight accepts at most {_size(max_bytes)} (max_video_bytes; a 90-minute 1080p match is 3-15 GB)",
        )
    return None


def container_of(first_bytes: bytes) -> str:
    """The container format named by a file's first bytes: ``"MP4"`` or what it is instead.

    MP4 and QuickTime MOV share one structure (and FFmpeg's demuxer name, ``mov,mp4,...``); the ``ftyp``
    box's major brand tells them apart, with its compatible brands for the rarer MP4 brands.

    :param first_bytes: at least the first 12 bytes of the file.
    """
    head = first_bytes[:64]
    if head[4:8] == b"ftyp" and len(head) >= 12:
        major = head[8:12].decode("latin-1")
        if major in _OTHER_BRANDS:
            return _OTHER_BRANDS[major]
        if major[:3] in ("3gp", "3g2"):
            return "3GPP"
        box_size = int.from_bytes(head[0:4], "big")
        compatible = {head[i : i + 4].decode("latin-1") for i in range(16, min(box_size, len(head)) - 3, 4)}
        if major in _MP4_BRANDS or compatible & {"isom", "mp41", "mp42", "iso2"}:
            return "MP4"
        return f"ISO media with brand {major.strip()!r}"
    if head[4:8] in (b"moov", b"wide", b"mdat", b"free", b"skip", b"pnot"):
        return "QuickTime MOV"  # old QuickTime files start without an ftyp box
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "Matroska/WebM"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "AVI"
    if head.startswith(b"FLV"):
        return "FLV"
    if head[:1] == b"\x47" and len(head) > 188 and first_bytes[188:189] == b"\x47":
        return "MPEG-TS"
    if head.startswith((b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3")):
        return "MPEG-PS"
    return UNRECOGNISED


def media_failures(
    result: PreflightResult, start_offset_seconds: int | None, end_offset_seconds: int | None, skip: Collection[str]
) -> list[Failure]:
    """The resolution, fps and duration failures of measured figures; fills ``result.usable_seconds``.

    :param result: the measured figures.
    :param start_offset_seconds: where the analysed part starts (default 0).
    :param end_offset_seconds: where it ends (default: the end of the file).
    :param skip: checks not to run.
    """
    failures = []
    too_large = (result.width or 0) > VIDEO_MAX_WIDTH or (result.height or 0) > VIDEO_MAX_HEIGHT
    if "resolution" not in skip and too_large:
        failures.append(
            Failure(
                "resolution",
                f"video is {result.width}x{result.height}",
                f"the API requires 1080p or lower (at most {VIDEO_MAX_WIDTH}x{VIDEO_MAX_HEIGHT})",
            )
        )
    if "fps" not in skip and result.fps is not None and abs(result.fps - VIDEO_REQUIRED_FPS) > VIDEO_FPS_TOLERANCE:
        failures.append(
            Failure("fps", f"video is {_number(result.fps)} fps", f"the API requires {VIDEO_REQUIRED_FPS} fps")
        )
    if result.duration_seconds is not None:
        start = start_offset_seconds or 0
        end = (
            result.duration_seconds if end_offset_seconds is None else min(end_offset_seconds, result.duration_seconds)
        )
        result.usable_seconds = max(0.0, end - start)
        if "duration" not in skip and result.usable_seconds < VIDEO_MIN_DURATION_SECONDS:
            trimmed = ""
            if start_offset_seconds or end_offset_seconds is not None:
                trimmed = (
                    f" between start_offset_seconds={start_offset_seconds or 0} and "
                    f"end_offset_seconds={end_offset_seconds if end_offset_seconds is not None else 'the end'}"
                    f" (the file lasts {format_duration(result.duration_seconds)})"
                )
            failures.append(
                Failure(
                    "duration",
                    f"video lasts {format_duration(result.usable_seconds)}{trimmed}",
                    f"the API requires at least {format_duration(VIDEO_MIN_DURATION_SECONDS)}",
                )
            )
    return failures


# -- HTTP -------------------------------------------------------------------------------------------


def _anonymous_session(on_secret: Callable[[str], None] | None = None) -> requests.Session:
    """A session that sends no credentials, even on redirects: the API downloads anonymously, and
    requests would otherwise add ``~/.netrc`` credentials (its ``trust_env``, kept for proxies and CA
    bundles from the environment). ``on_secret`` gets a redirect target's secrets before it is requested."""
    import requests

    hide_url_queries_in_http_logs()

    class AnonymousSession(requests.Session):
        def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: requests.Response) -> None:
            prepared_request.headers.pop("Authorization", None)

    session = AnonymousSession()
    session.max_redirects = MAX_DOWNLOAD_REDIRECTS
    # Byte ranges of the file itself: a compressed answer would make them ranges of something else.
    session.headers["Accept-Encoding"] = "identity"
    if on_secret is not None:

        def mask_redirect_target(response: requests.Response, *args: Any, **kwargs: Any) -> None:
            if response.is_redirect:
                for secret in url_secrets(urljoin(response.url, response.headers.get("Location", ""))):
                    on_secret(secret)

        session.hooks["response"].append(mask_redirect_target)
    return session


def _no_auth(request: requests.PreparedRequest) -> requests.PreparedRequest:
    # An explicit auth stops requests from looking up ~/.netrc for the first request.
    return request


class HTTPRangeFile(io.RawIOBase):
    """A read-only, seekable file over HTTP range requests, for ``av.open``: each read fetches only the
    blocks it lacks (``defaults.PREFLIGHT_BLOCK_BYTES`` each, adjacent ones in one request) and
    keeps them, and :attr:`bytes_read` counts every body byte received.

    Redirects are followed once, by :meth:`open`; the later ranges go to where they led. This assumes the
    API follows redirects too (a presigned object-storage URL behind a short link is common), and that a
    redirect's target stays valid for the few seconds of the probe.

    :param session: the session to send requests with (see ``_anonymous_session``).
    :param url: the file's URL.
    :param timeout: seconds to connect and to wait for each response.
    :param max_read_bytes: a read that would pass this many bytes ends the file instead (the probe is never a
        download); :attr:`error` then says so.
    :param block_bytes: the cache's block size.
    """

    def __init__(
        self,
        session: requests.Session,
        url: str,
        *,
        timeout: tuple[float, float] = (PREFLIGHT_CONNECT_TIMEOUT, PREFLIGHT_READ_TIMEOUT),
        max_read_bytes: int = PREFLIGHT_MAX_READ_BYTES,
        block_bytes: int = PREFLIGHT_BLOCK_BYTES,
    ) -> None:
        super().__init__()
        self._session = session
        self._url = url
        self._secrets = url_secrets(url)
        self._timeout = timeout
        self._max_read_bytes = max_read_bytes
        self._block = block_bytes
        self._blocks: dict[int, bytes] = {}
        self._position = 0
        self.bytes_read = 0
        self.requests = 0
        self.status: int | None = None
        self.content_type: str | None = None
        self.size: int | None = None
        self.ranges = False
        #: Why a read failed (the read budget, a network error, a wrong answer); reads return ``b""`` after it.
        self.error: OSError | None = None

    # -- the first request --------------------------------------------------------------------------

    def open(self) -> bytes:
        """Send the first ranged ``GET`` (redirects followed) and return the first block's bytes (fewer
        for a small file; empty for an error status). Sets :attr:`status`, :attr:`content_type`,
        :attr:`size` and :attr:`ranges`.

        :raises PreflightUnavailableError: on a network error, a timeout, a 5xx or a 429.
        """
        response = self._get(0, self._block - 1, stream=True)
        with response:
            self.status = response.status_code
            self.content_type = response.headers.get("Content-Type")
            total = _content_range_total(response.headers.get("Content-Range"))
            if self.status == 206:
                self.size, self.ranges = total, True
            elif self.status == 200:
                length = response.headers.get("Content-Length", "")
                self.size = int(length) if length.isdigit() else None
            elif self.status == 416:
                self.size = total  # "bytes */0": an empty file has no byte 0
            if self.status >= 500 or self.status == 429:
                raise PreflightUnavailableError(
                    f"{display_url(self._url)}: the server answered {self.status} to a ranged GET; "
                    "nothing is known about the video yet"
                )
            if self.status not in (200, 206):
                return b""
            # A server that ignores Range sends the whole file: take one block and drop the connection.
            body = self._read_body(response, self._block)
            self._url = response.url  # later ranges skip the redirects (see the class docstring)
            self._secrets += url_secrets(self._url)
        if self.ranges and self.size is not None and len(body) == min(self._block, self.size):
            self._blocks[0] = body  # the probe's first read is then free
        return body

    def _get(self, first: int, last: int, *, stream: bool = False) -> requests.Response:
        import requests

        self.requests += 1
        try:
            return self._session.get(
                self._url,
                headers={"Range": f"bytes={first}-{last}"},
                auth=_no_auth,
                timeout=self._timeout,
                allow_redirects=True,
                stream=stream,
            )
        except requests.TooManyRedirects:
            raise RedirectLoopError(f"{display_url(self._url)}: more than {MAX_DOWNLOAD_REDIRECTS} redirects") from None
        except requests.RequestException as exc:
            # requests' messages quote the URL with its query: keep only what is safe.
            raise PreflightUnavailableError(
                f"{display_url(self._url)}: {type(exc).__name__}: {self.scrub(str(exc))}"
            ) from None

    def _read_body(self, response: requests.Response, limit: int) -> bytes:
        chunks, received = [], 0
        for chunk in response.iter_content(chunk_size=min(limit, 1024 * 1024)):
            chunks.append(chunk[: limit - received])
            received += len(chunk)
            if received >= limit:
                break
        body = b"".join(chunks)
        self.bytes_read += min(received, limit)
        return body

    def scrub(self, text: str) -> str:
        """``text`` without the URL's secrets, cut to 300 characters: the known ones, then any query string
        (a redirect's target brings its own, unknown until it is followed)."""
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return _QUERY.sub("?***", text)[:300]

    # -- file-like ----------------------------------------------------------------------------------

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self.ranges

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            position = offset
        elif whence == io.SEEK_CUR:
            position = self._position + offset
        elif whence == io.SEEK_END and self.size is not None:
            position = self.size + offset
        else:
            raise OSError(f"cannot seek with whence={whence} (size unknown)")
        if position < 0:
            raise OSError(f"negative seek position {position}")
        self._position = position
        return position

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        if self.size is None:
            raise OSError("the file's size is unknown: it cannot be read by ranges")
        end = self.size if size is None or size < 0 else min(self.size, self._position + size)
        if end <= self._position:
            return b""
        first, last = self._position // self._block, (end - 1) // self._block
        missing = [index for index in range(first, last + 1) if index not in self._blocks]
        if missing and self.error is not None:
            return b""
        while missing:  # one request per run of adjacent missing blocks
            run_end = 0
            while run_end + 1 < len(missing) and missing[run_end + 1] == missing[run_end] + 1:
                run_end += 1
            try:
                self._fetch(missing[0], missing[run_end])
            except OSError as exc:
                # FFmpeg drops exceptions raised in its read callback (PyAV prints them): end the file
                # here and keep the reason for the caller.
                self.error = exc
                return b""
            missing = missing[run_end + 1 :]
        data = b"".join(self._blocks[index] for index in range(first, last + 1))
        offset = self._position - first * self._block
        data = data[offset : offset + end - self._position]
        self._position += len(data)
        return data

    def _fetch(self, first_block: int, last_block: int) -> None:
        assert self.size is not None
        start = first_block * self._block
        stop = min((last_block + 1) * self._block, self.size)
        if self.bytes_read + (stop - start) > self._max_read_bytes:
            raise OSError(
                f"the media probe would read more than {_size(self._max_read_bytes)} (max_read_bytes): "
                "the file's index was not found near its start or end"
            )
        with self._get(start, stop - 1, stream=True) as response:
            got = _content_range_start(response.headers.get("Content-Range"))
            if response.status_code >= 500 or response.status_code == 429:
                raise PreflightUnavailableError(
                    f"{display_url(self._url)}: the server answered {response.status_code} to a range request"
                )
            if response.status_code != 206 or got != start:
                raise OSError(f"a range request answered {response.status_code} ({got=} for {start=})")
            body = self._read_body(response, stop - start)
        if len(body) != stop - start:
            raise OSError(f"a range request returned {len(body)} bytes of {stop - start}")
        for index in range(first_block, last_block + 1):
            self._blocks[index] = body[(index - first_block) * self._block : (index - first_block + 1) * self._block]


def _content_range_total(header: str | None) -> int | None:
    match = _CONTENT_RANGE.match(header or "")
    return int(match.group(3)) if match and match.group(3) != "*" else None


def _content_range_start(header: str | None) -> int | None:
    match = _CONTENT_RANGE.match(header or "")
    return int(match.group(1)) if match and match.group(1) is not None else None


# -- the media probe --------------------------------------------------------------------------------


def _media_unavailable(reader: HTTPRangeFile, container: str | None) -> str | None:
    """Why the media probe cannot run, or ``None`` when it can."""
    try:
        import av  # noqa: F401
    except ImportError:
        return f"PyAV is not installed; {MEDIA_EXTRA_HINT} to check them before upload"
    if not reader.ranges:
        return "the server does not answer range requests; reading the header would download the whole file"
    if reader.size is None:
        return "the server does not say the file's size (Content-Range total '*')"
    if container == UNRECOGNISED:
        return "the file is not a recognised video container"
    return None


def _probe_media(reader: HTTPRangeFile, result: PreflightResult, options: _Options) -> list[Failure]:
    import av

    reader.seek(0)
    unreadable: Exception | None = None
    has_video = True
    try:
        with av.open(reader, mode="r") as container:
            has_video = bool(container.streams.video)
            if has_video:
                stream = container.streams.video[0]
                result.width = stream.codec_context.width or None
                result.height = stream.codec_context.height or None
                rate = stream.average_rate or stream.guessed_rate or stream.base_rate
                result.fps = float(rate) if rate else None
                if container.duration is not None:
                    result.duration_seconds = container.duration / av.time_base
                elif stream.duration is not None and stream.time_base is not None:
                    result.duration_seconds = float(stream.duration * stream.time_base)
    except (av.FFmpegError, OSError) as exc:
        unreadable = exc
    # A failed read shows up in FFmpeg as a short file: the reader's own error comes first.
    if isinstance(reader.error, PreflightUnavailableError):
        raise reader.error  # the server stopped answering mid-probe: a retry may check everything
    if reader.error is not None:
        # The read budget, or a range answered wrongly: the media is unknown, not wrong.
        why = f"the header could not be read: {reader.scrub(str(reader.error))}"
        result.width = result.height = result.fps = result.duration_seconds = None
        result.skipped.update((name, why) for name in MEDIA_CHECKS)
        return []
    if unreadable is not None:
        words = getattr(unreadable, "strerror", None) or str(unreadable)  # without "[Errno -1094995529]"
        what = f"the file cannot be read as a video (FFmpeg: {reader.scrub(words)})"
        return [Failure("container", what, "the API requires an MP4 video")]
    if not has_video:
        return [Failure("container", "the file has no video stream", "the API requires an MP4 video")]
    return media_failures(result, options.start_offset_seconds, options.end_offset_seconds, options.skip)


# -- wording ----------------------------------------------------------------------------------------


def _number(value: float) -> str:
    return str(round(value)) if abs(value - round(value)) < 0.005 else f"{value:.2f}"


def _size(size: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def checks_from(value: bool | Mapping[str, bool]) -> tuple[bool, tuple[str, ...]]:
    """Read an operator's ``preflight`` argument: ``(run at all, checks to skip)``.

    :param value: ``True`` (every check), ``False`` (none) or ``{check: bool}`` (the named checks on or
        off, the others on).
    """
    if isinstance(value, bool):
        return value, ()
    if isinstance(value, Mapping):
        _known_checks(value)
        return True, tuple(name for name in CHECKS if value.get(name, True) is False)
    raise ValueError(f"preflight: expected True, False or a mapping of check names to booleans, got {value!r}")


def _known_checks(names: Collection[str]) -> None:
    unknown = sorted(set(names) - set(CHECKS))
    if unknown:
        raise ValueError(f"preflight: unknown check(s) {', '.join(unknown)}; the checks are {', '.join(CHECKS)}")
