"""The simulator's vocabulary: constants, :class:`SimulatorConfig`, :class:`Fault` and
:class:`RequestRecord`."""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal, get_args

API_PREFIX: Final = "/api/v1"
CONTROL_PREFIX: Final = "/_control"
#: Public copies of result files, as a CDN would serve them: no token; a ``redirect`` fault points there.
CDN_PREFIX: Final = "/_cdn"
ALGORITHM_VERSION: Final = "0.4.98"
DEFAULT_FPS: Final = 25
#: Video length when the client gave no end offset (assumed (docs silent); the docs' examples use 5400).
DEFAULT_DURATION_SECONDS: Final = 5400
MP4_SOURCE_TEMPLATE: Final = "https://cdn.aiontheball.test/videos/{id}.mp4"
WEBHOOK_USER_AGENT: Final = "AI-on-the-ball"
WEBHOOK_TIMEOUT_SECONDS: Final = 5.0
WEBHOOK_TICK_SECONDS: Final = 0.2
#: Namespace of the deterministic per-analysis UUIDs that webhooks carry.
ANALYSIS_UUID_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "https://aiontheball.nl/api/v1/analyses")

VIDEO_OUTCOMES: Final = ("available", "error", "no_match_detected", "stuck")
ANALYSIS_OUTCOMES: Final = ("done", "error")
#: How a fault answers (see :class:`Fault`); ``FAULT_KINDS`` is the same list at run time.
FaultKind = Literal[
    "status",
    "status_after_processing",
    "drop",
    "drop_after_processing",
    "slow",
    "slow_after_processing",
    "malformed",
    "truncate",
    "redirect",
    "inflate",
]
FAULT_KINDS: Final[tuple[str, ...]] = get_args(FaultKind)

FILTER_TYPES: Final = (
    "event_property",
    "frame_state",
    "ball_location",
    "player_ball_proximity",
    "team_possession",
    "player_possession",
    "match_timeline",
    "scene",
    "ball_action",
)

# --------------------------------------------------------------------------------------------------
# Public configuration and records
# --------------------------------------------------------------------------------------------------


@dataclass
class SimulatorConfig:
    """Knobs of the simulator; every field has a default that mimics the documented API.

    :param tokens: bearer token -> organisation. Videos belong to the organisation whose token
        created them; another organisation sees 404.
    :param video_step_seconds: time spent in each of ``init``, ``downloading`` and
        ``locally_available`` before a video is ``available``.
    :param per_page: page size of ``GET /videos`` (Laravel's default 15).
    :param analysis_seconds: time spent ``running`` (progress rises from 0 to 95).
    :param analysis_aggregating_seconds: time spent ``aggregating`` (progress 95 to 99).
    :param analysis_init_seconds: time spent in ``init``.
    :param results_before_done_status: status of the results endpoints before ``done``
        (assumed (docs silent); 404 and 409 are both plausible).
    :param analysis_get_route: serve ``GET /analyses/{id}``; when false it answers Laravel's
        route-not-found 404 so clients can test that path.
    :param analysis_get_envelope: wrap ``GET /analyses/{id}`` in ``{"data": ...}`` (docs silent).
    :param webhook_url: when set, webhooks are POSTed there. Read when the app starts: the webhook
        ticker only runs if a URL was set then (the URL itself may change later).
    :param first_video_id: id of the first video created (then +1 each).
    :param first_analysis_id: id of the first analysis created (then +1 each).
    :param request_log_limit: the request log keeps this many most recent records.
    :param echo_submitted_fields: echo the submitted ``video_file_url``, ``date``, offsets and
        ``left_start_team`` on every video object (opt-in; the docs return none of them).
    :param commit_delay_seconds: a created video is listed, and a created analysis shows in its
        video's ``analyses``, only this many seconds after its POST (default 0: at once).
    :param video_ready_after_gets: a video reaches its final status (``available``, ``error``, ...)
        no sooner than the answer to this many ``GET /videos/{id}`` of it (default 0: time alone
        decides). A test knob, not API behaviour: it makes "the sensor's first poke still sees the
        video preparing, so it defers" hold however slowly the machine starts the sensor.
    """

    tokens: dict[str, str] = field(default_factory=lambda: {"test-token": "org-1"})
    video_step_seconds: float = 2.0
    per_page: int = 15
    analysis_seconds: float = 30.0
    analysis_aggregating_seconds: float = 3.0
    analysis_init_seconds: float = 1.0
    results_before_done_status: int = 409
    analysis_get_route: bool = True
    analysis_get_envelope: bool = True
    webhook_url: str | None = None
    first_video_id: int = 790
    first_analysis_id: int = 1247
    request_log_limit: int = 100_000
    echo_submitted_fields: bool = False
    commit_delay_seconds: float = 0.0
    video_ready_after_gets: int = 0


@dataclass
class Fault:
    """A fault applied to the next ``count`` API requests that match ``method`` and ``path``.

    :param kind: ``status`` (answer ``status`` without processing), ``status_after_processing``
        (process the request — a POST creates its resource — then answer ``status`` anyway: a proxy's
        503 after the backend committed), ``drop`` (close the connection
        without answering, before processing), ``drop_after_processing`` (process, then close
        without answering: a lost response), ``slow`` (wait ``delay`` seconds, then answer
        normally), ``slow_after_processing`` (process — a POST creates its resource — then wait
        ``delay`` seconds before sending the normal response: the request committed while the
        client still waits for the answer, a window to kill the client in), ``malformed`` (answer
        200 with a body that is not the expected JSON) or
        ``truncate`` (process, start the normal response — status, headers — and send the first
        half of its body, then close the connection: an interrupted download. A streamed body, the
        tracking download, ends without its terminating chunk; any other body falls short of its
        ``Content-Length``), ``redirect`` (answer ``status`` — a 3xx, else 302 — with ``Location:
        location``, without processing: a download served from a CDN, or a proxy's misplaced redirect)
        or ``inflate`` (answer 200 with a gzip body that decompresses to ``size`` bytes of JSON, without
        processing: a decompression bomb).
    :param count: how many matching requests the fault applies to.
    :param method: HTTP method to match, or ``None`` for any.
    :param path: path relative to ``/api/v1`` to match, or ``None`` for any. Matching is by path
        segments: ``/videos/790`` matches ``/videos/790`` and ``/videos/790/analysis`` but not
        ``/videos/7901``.
    :param status: the status of a ``status`` or ``status_after_processing`` fault.
    :param retry_after: ``Retry-After`` header value of a ``status`` fault, sent verbatim.
    :param message: the ``message`` of a ``status`` fault's JSON body (default: reason phrase).
    :param delay: seconds a ``slow`` fault waits (before processing) or a ``slow_after_processing``
        fault waits (after processing, before answering).
    :param body: body of a ``malformed`` fault (default ``<html>oops``).
    :param content_type: content type of a ``malformed`` fault (default ``text/html``).
    :param body_match: only requests whose JSON body contains these key/value pairs match, e.g.
        ``{"video_file_url": "https://example.com/b.mp4"}`` to fail one of several create tasks.
    :param location: the ``Location`` of a ``redirect`` fault (absolute, or relative to the request).
    :param size: decompressed bytes of an ``inflate`` fault's body (default 16 MiB).
    """

    kind: FaultKind
    count: int = 1
    method: str | None = None
    path: str | None = None
    status: int = 503
    retry_after: str | None = None
    message: str | None = None
    delay: float = 1.0
    body: str | None = None
    content_type: str | None = None
    body_match: dict[str, Any] | None = None
    location: str | None = None
    size: int = 16 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}, got {self.kind!r}")
        if not isinstance(self.count, int) or isinstance(self.count, bool) or self.count < 1:
            raise ValueError(f"count must be a positive integer, got {self.count!r}")
        if not isinstance(self.status, int) or not 100 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP status code, got {self.status!r}")
        if not isinstance(self.delay, int | float) or self.delay < 0:
            raise ValueError(f"delay must be a non-negative number, got {self.delay!r}")
        if not isinstance(self.size, int) or isinstance(self.size, bool) or self.size < 0:
            raise ValueError(f"size must be a non-negative integer, got {self.size!r}")
        if self.kind == "redirect" and not self.location:
            raise ValueError("a redirect fault needs a location")
        for name in ("method", "path", "message", "body", "content_type", "location"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a string or null, got {getattr(self, name)!r}")
        if self.body_match is not None and not isinstance(self.body_match, dict):
            raise ValueError(f"body_match must be an object or null, got {self.body_match!r}")
        if self.retry_after is not None:
            self.retry_after = str(self.retry_after)  # an int is sent as its decimal form
        if self.method is not None:
            self.method = self.method.upper()
        if self.path is not None and not self.path.startswith("/"):
            self.path = "/" + self.path

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(unknown)}")
        if "kind" not in data:
            raise ValueError("kind is required")
        return cls(**data)

    def matches(self, method: str, path: str, body: Any = None) -> bool:
        if self.method is not None and self.method != method.upper():
            return False
        if self.body_match is not None and not (
            isinstance(body, dict) and all(body.get(k) == v for k, v in self.body_match.items())
        ):
            return False
        if self.path is None:
            return True
        prefix = self.path.rstrip("/")
        return path == prefix or path.startswith(prefix + "/") or prefix == ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RequestRecord:
    """One API request as the simulator saw it (never the token: only the organisation).

    ``status`` is the response status, or ``None`` when the connection was dropped; ``time`` is the
    simulator clock; ``body`` is the parsed JSON body or ``None``; ``authorization`` whether the request
    carried an ``Authorization`` header at all. API paths are relative to ``/api/v1``; the public CDN
    copies keep their full path (``/_cdn/...``).
    """

    method: str
    path: str
    query: dict[str, str]
    status: int | None
    token_org: str | None
    time: float
    body: Any
    authorization: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
