"""An offline simulator of the AI on the Ball (AIB) Insight API v1, served over real HTTP.

Use it in tests, for an offline ``make demo``, or to try DAGs without an API token::

    from airflow_provider_aiontheball.testing.simulator import SimulatorServer

    with SimulatorServer() as server:  # 127.0.0.1, a free port, token "test-token"
        requests.get(f"{server.base_url}/videos", headers={"Authorization": "Bearer test-token"})
        server.simulator.advance(60)  # move the simulated clock instead of sleeping

or from a shell (``--port 0`` picks a free port; the token is never printed)::

    python -m airflow_provider_aiontheball.testing.simulator --port 8765 --token my-token

The simulator is an :class:`aiohttp.web.Application` (see :meth:`Simulator.app`) plus a runner that
serves it from a background thread (:class:`SimulatorServer`). It depends on aiohttp and the standard
library only, never on Airflow. Statuses are computed from the simulator's clock when a request asks
for them (a dictionary lookup and a few comparisons per request), so thousands of clients can poll
``GET /videos/{id}`` concurrently; there is no background loop over all videos, except a 0.2 s ticker
that exists only when a webhook URL is configured.

What the API documentation specifies is implemented as documented: paths, field names, the status
vocabularies (reused from :mod:`airflow_provider_aiontheball.statuses`), envelopes (``{"data": ...}``
for videos and analyses, bare objects/arrays for results), the summary, events, schema,
query-intervals and tracking shapes, 204 on delete, and the webhook payloads and User-Agent.

Everything below is **assumed (docs silent)**: the documentation does not say, this simulator had to
choose, and a client must not depend on any of it.

* Error bodies are Laravel's defaults: ``{"message": "..."}``. Validation errors are 422
  ``{"message": "<first error> (and N more errors)", "errors": {"field": ["...", ...]}}``.
* A missing or unknown bearer token is 401 ``{"message": "Unauthenticated."}``.
* A missing resource, a non-numeric id and another organisation's resource are all 404
  ``{"message": "No query results for model [App\\Models\\Video] 999"}`` (never 403).
* An unknown route is 404 ``{"message": "The route api/v1/xyz could not be found."}``, answered
  before authentication as Laravel's router does; a known path with the wrong method is 405.
* Success status codes: 201 for ``POST /videos`` and ``POST /videos/{id}/analysis``, 204 for
  ``DELETE /videos/{id}``, 200 for everything else.
* ``GET /videos`` uses Laravel pagination: ``links`` = first/last/prev/next (absolute URLs with
  ``?page=N``, prev/next null at the ends), ``meta`` = current_page/from/last_page/path/per_page/
  to/total; ``?page=N`` (a missing or invalid value means page 1; a page past the end is empty);
  ``per_page`` from :class:`SimulatorConfig` (15, Laravel's default). Videos are listed **oldest
  first** (ascending id).
* A request body that is not a JSON object is treated like an empty object (Laravel ignores a
  body it cannot decode), so ``POST /videos`` then answers 422 "video file url field is required".
* Video objects carry the documented fields only, by default: list items ``id, status, game_name,
  title, created_at, home_team_name, away_team_name, duration, analyses``; ``GET /videos/{id}`` the
  same plus ``mp4_source``; the ``POST /videos`` answer only what the docs' create example shows
  (``id, status, game_name, title, created_at``). The fields a client submitted (``video_file_url``,
  ``date``, the offsets, ``left_start_team``) are never returned, so a client cannot match an
  existing video to its request by URL. ``echo_submitted_fields=True`` (opt-in) echoes them on
  every video object, as earlier versions of this simulator did.
* Created resources are committed at once unless ``commit_delay_seconds`` is set: then a new video
  is *listed* (``GET /videos``) and a new analysis appears in its video's ``analyses`` only that
  many seconds after the POST was processed (``GET /videos/{id}`` and ``GET /analyses/{id}`` find
  them at once: a lagging list or read replica). Together with the ``drop_after_processing`` and
  ``status_after_processing`` faults this is the "lost response, late commit" case.
* ``duration`` and ``mp4_source`` are null until the video is ``available``; the duration is then
  ``end_offset_seconds - start_offset_seconds`` when an end offset was given, else 5400.
* ``PUT /videos/{id}`` accepts only the fields its docs table lists; ``left_start_team`` and
  ``video_file_url`` are ignored like any unknown field. ``end > start`` is checked against the
  stored value of the field that was not sent.
* A new video's status sequence is ``init`` -> ``downloading`` -> ``locally_available`` ->
  ``available``, ``video_step_seconds`` each. Scripted outcomes change that (see
  :meth:`Simulator.script_next_videos`), including undocumented values such as ``created``.
* ``created_at`` is the real UTC wall-clock time of creation, formatted ``2025-01-16T14:30:00Z``.
* Team names default to ``"Home"`` and ``"Away"`` when not given.
* ``GET /analyses/{id}`` exists (the docs only imply it) and answers ``{"data": analysis}``; both
  can be switched off (``analysis_get_route`` / ``analysis_get_envelope``). Analysis objects carry
  an extra ``uuid`` field: the id webhooks use (uuid5 of the integer id).
* An analysis may be created before its video is ``available`` (it waits in
  ``waiting_for_video``); if the video fails, the analysis ends in ``error``. ``fps`` defaults to
  25 and must be a positive integer.
* Results endpoints answer ``results_before_done_status`` (409 by default) with
  ``{"message": "Analysis 1247 is not done yet (status: running)."}`` until the analysis is done.
* Query intervals: raw intervals per filter; AND = the first filter's intervals cut to the others'
  union, OR = all filters' intervals; ``existing_filters`` windows are ANDed in; then, if
  ``merge_results``, intervals with the same label closer than ``gap_fill_sec`` are merged; then
  each is padded by ``pad_sec`` (clamped to the video); then, if ``merge_results``, overlapping
  intervals with the same label are merged. An empty ``filters`` list returns ``[]``;
  ``include_pixel_coords`` is accepted and ignored (its output shape is undocumented);
  ``match_timeline`` only knows ``full_game`` (the events page says halves are not detected yet).
* Tracking JSON is an array of row objects; downloads are ``application/octet-stream`` (parquet) or
  ``application/json`` with ``Content-Disposition: attachment; filename=tracking_{id}.{format}``.
  Every analysis serves the same small sample (480 rows), not per-analysis data.
* Webhooks: ``analysis_completion_rate`` at 0, 10, ..., 90 % (status ``running``) and once at 95 %
  when aggregating starts (status ``aggregating``), then ``analysis_done`` with ``completion_rate``
  100 for ``done`` and for ``error``. Steps skipped by a clock jump are all sent, in order. One
  delivery attempt, 5 s timeout, no retries, no signature.

Fault injection, scripted outcomes, the request log and counters are reached through the
``/_control`` routes (no authentication, never under ``/api/v1``) or the :class:`Simulator` methods.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import contextlib
import json
import logging
import math
import random
import re
import signal
import socket
import sys
import threading
import time
import uuid
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal
from urllib.parse import parse_qs, urlsplit

from aiohttp import ClientSession, ClientTimeout, web
from aiohttp.typedefs import Handler

from airflow_provider_aiontheball.statuses import AnalysisStatus, VideoStatus

__all__ = [
    "Fault",
    "RequestRecord",
    "Simulator",
    "SimulatorConfig",
    "SimulatorServer",
    "main",
    "tracking_sample_rows",
]

log = logging.getLogger(__name__)

API_PREFIX: Final = "/api/v1"
CONTROL_PREFIX: Final = "/_control"
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
FAULT_KINDS: Final = (
    "status",
    "status_after_processing",
    "drop",
    "drop_after_processing",
    "slow",
    "malformed",
    "truncate",
)
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

_GET_ANALYSIS_ROUTE: Final = "aib-get-analysis"
_FRAME_SECONDS: Final = 1 / DEFAULT_FPS
_HTTP_REASONS: Final = {
    # Laravel's own message for its throttle middleware; the rest are plain reason phrases.
    429: "Too Many Attempts.",
    500: "Server Error.",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


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


FaultKind = Literal[
    "status", "status_after_processing", "drop", "drop_after_processing", "slow", "malformed", "truncate"
]


@dataclass
class Fault:
    """A fault applied to the next ``count`` API requests that match ``method`` and ``path``.

    :param kind: ``status`` (answer ``status`` without processing), ``status_after_processing``
        (process the request — a POST creates its resource — then answer ``status`` anyway: a proxy's
        503 after the backend committed), ``drop`` (close the connection
        without answering, before processing), ``drop_after_processing`` (process, then close
        without answering: a lost response), ``slow`` (wait ``delay`` seconds, then answer
        normally), ``malformed`` (answer 200 with a body that is not the expected JSON) or
        ``truncate`` (process, start the normal response — status, headers — and send the first
        half of its body, then close the connection: an interrupted download. A streamed body, the
        tracking download, ends without its terminating chunk; any other body falls short of its
        ``Content-Length``).
    :param count: how many matching requests the fault applies to.
    :param method: HTTP method to match, or ``None`` for any.
    :param path: path relative to ``/api/v1`` to match, or ``None`` for any. Matching is by path
        segments: ``/videos/790`` matches ``/videos/790`` and ``/videos/790/analysis`` but not
        ``/videos/7901``.
    :param status: the status of a ``status`` or ``status_after_processing`` fault.
    :param retry_after: ``Retry-After`` header value of a ``status`` fault, sent verbatim.
    :param message: the ``message`` of a ``status`` fault's JSON body (default: reason phrase).
    :param delay: seconds a ``slow`` fault waits.
    :param body: body of a ``malformed`` fault (default ``<html>oops``).
    :param content_type: content type of a ``malformed`` fault (default ``text/html``).
    :param body_match: only requests whose JSON body contains these key/value pairs match, e.g.
        ``{"video_file_url": "https://example.com/b.mp4"}`` to fail one of several create tasks.
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

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}, got {self.kind!r}")
        if not isinstance(self.count, int) or isinstance(self.count, bool) or self.count < 1:
            raise ValueError(f"count must be a positive integer, got {self.count!r}")
        if not isinstance(self.status, int) or not 100 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP status code, got {self.status!r}")
        if not isinstance(self.delay, int | float) or self.delay < 0:
            raise ValueError(f"delay must be a non-negative number, got {self.delay!r}")
        for name in ("method", "path", "message", "body", "content_type"):
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
    simulator clock; ``body`` is the parsed JSON body or ``None``.
    """

    method: str
    path: str
    query: dict[str, str]
    status: int | None
    token_org: str | None
    time: float
    body: Any

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------------------------------
# Internal state
# --------------------------------------------------------------------------------------------------

_FAILED_VIDEO_STATUSES: Final = frozenset({VideoStatus.ERROR.value, VideoStatus.NO_MATCH_DETECTED.value})


@dataclass(slots=True)
class _Video:
    id: int
    org: str
    created: float
    created_at: str
    game_name: str
    video_file_url: str
    title: str | None
    home_team_name: str | None
    away_team_name: str | None
    date: str | None
    start_offset_seconds: int | None
    end_offset_seconds: int | None
    left_start_team: str | None
    outcome: str
    #: (simulator time, status) pairs in time order; the status at ``t`` is the last entry <= t.
    schedule: list[tuple[float, str]]
    analysis_ids: list[int] = field(default_factory=list)
    #: simulator time from which the video is listed (``commit_delay_seconds`` after its POST)
    listed: float = 0.0

    def status_at(self, now: float) -> str:
        status = self.schedule[0][1]
        for start, value in self.schedule:
            if start > now:
                break
            status = value
        return status

    def first_time(self, statuses: Iterable[str]) -> float | None:
        wanted = set(statuses)
        for start, value in self.schedule:
            if value in wanted:
                return start
        return None


@dataclass(slots=True)
class _Analysis:
    id: int
    video_id: int
    org: str
    uuid: str
    created: float
    created_at: str
    created_wall: datetime
    fps: int
    outcome: str = "done"
    error_at_progress: float = 50.0
    # webhook bookkeeping
    webhook_next_step: int = 0
    webhook_aggregating_sent: bool = False
    webhook_done_sent: bool = False
    #: simulator time from which the analysis shows in its video's ``analyses``
    listed: float = 0.0


@dataclass(frozen=True, slots=True)
class _AnalysisState:
    status: str
    progress: float
    #: whether the analysis reached ``running`` (drives the completion-rate webhooks)
    ran: bool
    #: simulator time at which it became done, if it is done
    done_at: float | None = None


class _ApiError(Exception):
    def __init__(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        super().__init__(payload.get("message"))
        self.status = status
        self.payload = payload
        self.headers = headers


_MALFORMED: Final = object()


def _video_schedule(created: float, step: float, outcome: str) -> list[tuple[float, str]]:
    t, s = created, max(step, 0.0)
    if outcome == "stuck":
        return [(t, VideoStatus.INIT.value), (t + s, VideoStatus.DOWNLOADING.value)]
    if outcome == "error":
        return [
            (t, VideoStatus.INIT.value),
            (t + s, VideoStatus.DOWNLOADING.value),
            (t + 2 * s, VideoStatus.ERROR.value),
        ]
    # "status:<value>" reports <value> instead of ``init`` for the first step (the Quick Start shows
    # ``created`` there), then continues normally.
    first = outcome.removeprefix("status:") if outcome.startswith("status:") else VideoStatus.INIT.value
    last = VideoStatus.NO_MATCH_DETECTED.value if outcome == "no_match_detected" else VideoStatus.AVAILABLE.value
    return [
        (t, first),
        (t + s, VideoStatus.DOWNLOADING.value),
        (t + 2 * s, VideoStatus.LOCALLY_AVAILABLE.value),
        (t + 3 * s, last),
    ]


def _check_video_outcome(outcome: object) -> str:
    if isinstance(outcome, str):
        if outcome in VIDEO_OUTCOMES:
            return outcome
        if outcome.startswith("status:") and len(outcome) > len("status:"):
            return outcome
    raise ValueError(f"video outcome must be one of {', '.join(VIDEO_OUTCOMES)} or 'status:<value>', got {outcome!r}")


def _check_analysis_outcome(outcome: object) -> str:
    if not isinstance(outcome, str) or outcome not in ANALYSIS_OUTCOMES:
        raise ValueError(f"analysis outcome must be one of {', '.join(ANALYSIS_OUTCOMES)}, got {outcome!r}")
    return outcome


def _number(value: float) -> float | int:
    """0 and 100 as integers (as in the docs' examples), other values with one decimal."""
    value = round(float(value), 1)
    return int(value) if value.is_integer() else value


def _running_progress(fraction: float, seed: int) -> float:
    """Progress 0..95 over ``fraction`` 0..1: steady, with a little noise, never decreasing.

    ``f + a*sin(2*pi*k*f)/(2*pi*k)`` has derivative ``1 + a*cos(...)`` >= 1 - a > 0, stays in [0, 1]
    and hits 0 and 1 exactly at the ends; rounding is monotone too.
    """
    k = 2 + seed % 3
    amplitude = 0.6
    f = min(max(fraction, 0.0), 1.0)
    value = f + amplitude * math.sin(2 * math.pi * k * f) / (2 * math.pi * k)
    return round(min(max(95.0 * value, 0.0), 95.0), 1)


def _utc_now_iso() -> tuple[datetime, str]:
    now = datetime.now(UTC).replace(microsecond=0)
    return now, now.strftime("%Y-%m-%dT%H:%M:%SZ")


_ADJECTIVES: Final = (
    "swift", "happy", "brave", "calm", "clever", "bold", "bright", "eager", "fierce", "gentle", "grand",
    "jolly", "keen", "lively", "lucky", "mighty", "noble", "proud", "quick", "quiet", "rapid", "sharp",
    "sunny", "witty",
)  # fmt: skip
_ANIMALS: Final = (
    "eagle", "dolphin", "falcon", "tiger", "otter", "panda", "lynx", "badger", "heron", "fox", "wolf",
    "owl", "hawk", "bison", "koala", "orca", "puma", "raven", "seal", "zebra", "gecko", "ibis", "moose",
    "viper",
)  # fmt: skip


def _game_name(video_id: int, taken: set[str]) -> str:
    """A unique ``adjective-animal-NN`` name, deterministic for a given id and set of taken names."""
    for attempt in range(10_000):
        rng = random.Random(video_id * 7919 + attempt)
        name = f"{rng.choice(_ADJECTIVES)}-{rng.choice(_ANIMALS)}-{rng.randint(10, 99)}"
        if name not in taken:
            return name
    return f"video-{video_id}"  # pragma: no cover - 51,840 combinations


# --------------------------------------------------------------------------------------------------
# Laravel-style validation
# --------------------------------------------------------------------------------------------------


class _Errors:
    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, key: str, message: str) -> None:
        self.errors.setdefault(key, []).append(message)

    def has(self, key: str) -> bool:
        return key in self.errors

    def raise_if_any(self) -> None:
        if self.errors:
            raise _ApiError(422, _validation_payload(self.errors))


def _validation_payload(errors: dict[str, list[str]]) -> dict[str, Any]:
    # assumed (docs silent): Laravel's ValidationException rendering.
    messages = [message for field_messages in errors.values() for message in field_messages]
    more = len(messages) - 1
    text = messages[0] if more == 0 else f"{messages[0]} (and {more} more error{'s' if more > 1 else ''})"
    return {"message": text, "errors": errors}


def _attr(name: str) -> str:
    """Laravel's display name of a top-level field: underscores become spaces."""
    return name.replace("_", " ")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_http_url(value: str) -> bool:
    if any(ch.isspace() for ch in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


_DATE_RE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
_STRING_FIELDS: Final = ("title", "home_team_name", "away_team_name")
_OFFSET_FIELDS: Final = ("start_offset_seconds", "end_offset_seconds")


def _validate_video_fields(
    body: dict[str, Any], errors: _Errors, *, creating: bool, current: _Video | None
) -> dict[str, Any]:
    """Validate the fields of ``POST /videos`` (``creating``) or ``PUT /videos/{id}``; return the clean ones.

    Like Laravel's ``ConvertEmptyStringsToNull`` middleware, ``""`` counts as null. Unknown fields
    are ignored.
    """
    body = {key: (None if value == "" else value) for key, value in body.items()}
    clean: dict[str, Any] = {}
    if creating:
        url = body.get("video_file_url")
        if url is None:
            errors.add("video_file_url", "The video file url field is required.")
        elif not isinstance(url, str) or not _is_http_url(url):
            errors.add("video_file_url", "The video file url field must be a valid URL.")
        else:
            clean["video_file_url"] = url
    for name in _STRING_FIELDS:
        if name not in body:
            continue
        value = body[name]
        if value is None:
            clean[name] = None
        elif not isinstance(value, str):
            errors.add(name, f"The {_attr(name)} field must be a string.")
        elif len(value) > 255:
            errors.add(name, f"The {_attr(name)} field must not be greater than 255 characters.")
        else:
            clean[name] = value
    if "date" in body:
        value = body["date"]
        if value is None:
            clean["date"] = None
        elif isinstance(value, str) and _DATE_RE.fullmatch(value) and _valid_date(value):
            clean["date"] = value
        else:
            errors.add("date", "The date field must match the format Y-m-d.")
    for name in _OFFSET_FIELDS:
        if name not in body:
            continue
        value = body[name]
        if value is None:
            clean[name] = None
        elif not _is_int(value):
            errors.add(name, f"The {_attr(name)} field must be an integer.")
        elif value < 0:
            errors.add(name, f"The {_attr(name)} field must be at least 0.")
        else:
            clean[name] = value
    if any(name in clean for name in _OFFSET_FIELDS):
        # assumed (docs silent): on PUT the field not sent is compared through its stored value.
        start = clean.get("start_offset_seconds", current.start_offset_seconds if current else None)
        end = clean.get("end_offset_seconds", current.end_offset_seconds if current else None)
        if start is not None and end is not None and end <= start:
            errors.add(
                "end_offset_seconds",
                "The end offset seconds field must be greater than start offset seconds.",
            )
    if creating and "left_start_team" in body:
        value = body["left_start_team"]
        if value is None:
            clean["left_start_team"] = None
        elif value in ("home", "away"):
            clean["left_start_team"] = value
        else:
            errors.add("left_start_team", "The selected left start team is invalid.")
    return clean


def _valid_date(value: str) -> bool:
    try:
        datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------------------------------
# Deterministic match data: events, summary, schema, query engine, tracking sample
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Event:
    start: int  # frame (25 fps)
    end: int  # frame, inclusive
    event_type: str
    label: str
    team: str | None
    player: str | None
    props: dict[str, Any]


@dataclass(slots=True)
class _Player:
    player_id: str
    team: str
    jersey: int
    name: str


@dataclass(slots=True)
class _Match:
    seed: int
    duration_frames: int
    team_names: tuple[str, str]
    players: list[_Player]
    events: list[_Event]
    by_type: dict[str, list[_Event]]

    @property
    def duration_seconds(self) -> int:
        return self.duration_frames // DEFAULT_FPS


#: Order of event types in the events response (the docs' example order, player possession added).
_EVENT_ORDER: Final = (
    "team_possession",
    "player_possession",
    "scene",
    "match_timeline",
    "pass",
    "drive",
    "shot",
    "tackle",
    "ball_phase",
)
_TEAM_KEYS: Final = ("team_0", "team_1")


def _seconds(frame: int) -> float:
    return round(frame * _FRAME_SECONDS, 2)


def _conf(rng: random.Random, low: float = 0.55) -> float:
    return round(rng.uniform(low, 0.99), 3)


def _build_match(seed: int, duration_seconds: int, team_names: tuple[str, str]) -> _Match:
    """Generate a plausible, fully deterministic match for the results endpoints."""
    rng = random.Random(seed)
    total = max(duration_seconds, 60) * DEFAULT_FPS
    jerseys = {
        "team_0": list(range(1, 12)),
        "team_1": sorted([1, *rng.sample(range(2, 24), 10)]),
    }
    players: list[_Player] = []
    for index, team in enumerate(_TEAM_KEYS):
        for jersey in jerseys[team]:
            players.append(_Player(f"{index}-{jersey}", team, jersey, f"{team_names[index]} #{jersey}"))
    outfield = {team: [p for p in players if p.team == team and p.jersey != 1] for team in _TEAM_KEYS}
    keeper = {team: next(p for p in players if p.team == team and p.jersey == 1) for team in _TEAM_KEYS}
    events: list[_Event] = []

    def add(
        start: int,
        end: int,
        event_type: str,
        label: str,
        team: str | None = None,
        player: str | None = None,
        **props: Any,
    ) -> None:
        events.append(_Event(start, min(end, total), event_type, label, team, player, props))

    add(0, total, "match_timeline", "full_game", period="full_game")

    # Scenes: a few seconds of intro, then long analysable stretches broken by replays.
    add(0, 75, "scene", "not analysable", is_analysable=False)
    frame = 76
    while frame < total:
        end = min(total, frame + rng.randint(600, 1500) * DEFAULT_FPS)
        add(frame, end, "scene", "analysable", is_analysable=True)
        frame = end + 1
        if frame >= total:
            break
        end = min(total, frame + rng.randint(10, 40) * DEFAULT_FPS)
        add(frame, end, "scene", "not analysable", is_analysable=False)
        frame = end + 1

    # Ball phases: kick-off anchor, long in-play spells, short stoppages.
    add(0, 0, "ball_phase", "half_kickoff", phase="half_kickoff")
    frame = 1
    while frame < total:
        end = min(total, frame + rng.randint(60, 240) * DEFAULT_FPS)
        add(frame, end, "ball_phase", "in_play", phase="in_play")
        frame = end + 1
        if frame >= total:
            break
        phase = "out_of_bounds" if rng.random() < 0.8 else "in_bounds_stoppage"
        end = min(total, frame + rng.randint(5, 20) * DEFAULT_FPS)
        add(frame, end, "ball_phase", phase, phase=phase)
        frame = end + 1

    # Possession spells with player possessions and ball actions inside.
    frame = 1
    team_index = 0
    previous_team: str | None = None
    first_pass = True
    while frame < total - DEFAULT_FPS:
        team = _TEAM_KEYS[team_index]
        end = min(total - 1, frame + rng.randint(4, 40) * DEFAULT_FPS)
        add(
            frame,
            end,
            "team_possession",
            team_names[team_index],
            team,
            None,
            team_label=team_index,
            team_side="left" if team_index == 0 else "right",
            unknown_reason=None,
        )
        if previous_team is not None and previous_team != team and rng.random() < 0.3:
            tackler = rng.choice(outfield[team])
            add(
                frame,
                frame,
                "tackle",
                "tackle",
                team,
                tackler.player_id,
                body_part="unknown",
                confidence_detection=_conf(rng),
                confidence_event=_conf(rng),
                confidence_identity=_conf(rng),
            )
        pieces = rng.randint(1, 4)
        piece_start = frame
        carrier = keeper[team] if rng.random() < 0.05 else rng.choice(outfield[team])
        for piece in range(pieces):
            piece_end = frame + (end - frame) * (piece + 1) // pieces
            last = piece == pieces - 1
            stop = piece_end if last else piece_end - 1
            add(
                piece_start,
                stop,
                "player_possession",
                carrier.player_id,
                team,
                carrier.player_id,
                confidence_identity=_conf(rng, 0.6),
                model_source=rng.choice(("short", "long", "mix")),
            )
            if stop - piece_start > 2 * DEFAULT_FPS and rng.random() < 0.35:
                at = (piece_start + stop) // 2
                add(
                    at,
                    at,
                    "drive",
                    "drive",
                    team,
                    carrier.player_id,
                    body_part="unknown",
                    confidence_detection=_conf(rng),
                    confidence_event=_conf(rng),
                    confidence_identity=_conf(rng),
                    length_cm=rng.randint(200, 2500),
                    x_target=rng.randint(0, 10500),
                    y_target=rng.randint(0, 6800),
                )
            if not last:
                roll = rng.random()
                set_piece = "kick_off" if first_pass else "open_play"
                body_part = "unknown"
                if not first_pass and roll < 0.05:
                    set_piece, body_part = "throw_in", "both_hands"
                elif not first_pass and roll < 0.07:
                    set_piece = "corner_kick"
                elif not first_pass and roll < 0.10:
                    set_piece = "free_kick"
                elif not first_pass and roll < 0.12:
                    set_piece = "goal_kick"
                elif rng.random() < 0.08:
                    body_part = "head"
                first_pass = False
                add(
                    stop,
                    stop,
                    "pass",
                    "pass",
                    team,
                    carrier.player_id,
                    body_part=body_part,
                    confidence_detection=_conf(rng),
                    confidence_event=_conf(rng),
                    confidence_identity=_conf(rng),
                    length_cm=rng.randint(300, 4500),
                    pass_type="cross" if rng.random() < 0.06 else None,
                    set_piece=set_piece,
                    x_target=rng.randint(0, 10500),
                    y_target=rng.randint(0, 6800),
                )
                carrier = rng.choice([p for p in outfield[team] if p is not carrier])
            piece_start = piece_end
        if rng.random() < 0.06:
            add(
                end,
                end,
                "shot",
                "shot",
                team,
                carrier.player_id,
                body_part="head" if rng.random() < 0.15 else "unknown",
                confidence_detection=_conf(rng),
                confidence_event=_conf(rng),
                confidence_identity=_conf(rng),
            )
        previous_team = team
        frame = end + rng.randint(1, 75)  # a short unknown-possession gap
        if rng.random() < 0.75:
            team_index = 1 - team_index

    by_type: dict[str, list[_Event]] = {name: [] for name in _EVENT_ORDER}
    for event in events:
        by_type.setdefault(event.event_type, []).append(event)
    for items in by_type.values():
        items.sort(key=lambda e: (e.start, e.end))
    ordered = [event for name in _EVENT_ORDER for event in by_type[name]]
    return _Match(seed, total, team_names, players, ordered, by_type)


def _events_json(match: _Match) -> list[dict[str, Any]]:
    return [
        {"start": _seconds(e.start), "end": _seconds(e.end), "label": e.label, "event_type": e.event_type}
        for e in match.events
    ]


def _split_pct(parts: Sequence[float], whole: float, digits: int) -> list[float]:
    """Percentages of ``parts`` of ``whole``; the last is the remainder, so they add up to 100 exactly."""
    if whole <= 0:
        return [0.0] * (len(parts) - 1) + [100.0]
    pcts = [round(100 * part / whole, digits) for part in parts[:-1]]
    assigned = round(min(sum(pcts), 100.0), digits)
    return [*pcts, round(100.0 - assigned, digits)]


def _summary_json(match: _Match, analysis: _Analysis, video: _Video, done_at: float) -> dict[str, Any]:
    rng = random.Random(match.seed * 31 + 7)
    length = match.duration_frames * _FRAME_SECONDS
    spans = match.by_type

    def total(event_type: str) -> float:
        return round(sum((e.end - e.start) * _FRAME_SECONDS for e in spans[event_type]), 2)

    analysable = round(sum((e.end - e.start) * _FRAME_SECONDS for e in spans["scene"] if e.props["is_analysable"]), 2)
    team_seconds = [
        sum((e.end - e.start) * _FRAME_SECONDS for e in spans["team_possession"] if e.team == team)
        for team in _TEAM_KEYS
    ]
    unknown_seconds = max(length - sum(team_seconds), 0.0)
    pcts = _split_pct([*team_seconds, unknown_seconds], length, 1)

    minutes = math.ceil(match.duration_frames / (60 * DEFAULT_FPS))
    per_minute_team = [[0.0, 0.0] for _ in range(minutes)]
    minute_frames = 60 * DEFAULT_FPS
    for e in spans["team_possession"]:
        index = 0 if e.team == "team_0" else 1
        start = e.start
        while start < e.end:
            minute = min(start // minute_frames, minutes - 1)
            stop = min(e.end, (minute + 1) * minute_frames)
            per_minute_team[minute][index] += stop - start
            start = stop
    per_minute = []
    for minute, (t0, t1) in enumerate(per_minute_team):
        span = min(minute_frames, match.duration_frames - minute * minute_frames)
        t0_pct, t1_pct, unknown_pct = _split_pct([t0, t1, max(span - t0 - t1, 0)], span, 2)
        per_minute.append({"minute": minute, "team_0_pct": t0_pct, "team_1_pct": t1_pct, "unknown_pct": unknown_pct})

    actions: dict[str, dict[str, int]] = {}
    for event_type, key in (("pass", "passes"), ("drive", "drives"), ("shot", "shots")):
        for e in spans[event_type]:
            if e.player is not None:
                actions.setdefault(e.player, {"passes": 0, "drives": 0, "shots": 0})[key] += 1
    scale = length / DEFAULT_DURATION_SECONDS
    players = []
    for player in sorted(match.players, key=lambda p: (p.team, p.jersey)):
        keeper = player.jersey == 1
        distance = (rng.uniform(4000, 5500) if keeper else rng.uniform(8500, 12500)) * scale
        shares = (0.55, 0.35, 0.08) if keeper else (0.30, 0.42, 0.20)
        walking, jogging, running = (round(distance * share, 2) for share in shares)
        sprinting = round(max(distance - walking - jogging - running, 0.0), 2)
        total_distance = round(walking + jogging + running + sprinting, 2)
        tracking = round(length * rng.uniform(0.9, 0.99), 1)
        players.append(
            {
                "player_id": player.player_id,
                "team_id": player.team,
                "jersey_number": player.jersey,
                "name": player.name,
                "stats": {
                    "total_distance_m": total_distance,
                    "distance_by_speed_bucket": {
                        "walking_m": walking,
                        "jogging_m": jogging,
                        "running_m": running,
                        "sprinting_m": sprinting,
                    },
                    "avg_speed_kmh": round(total_distance / tracking * 3.6, 1) if tracking else 0.0,
                    "max_speed_kmh": round(rng.uniform(24.0, 28.0) if keeper else rng.uniform(27.0, 34.5), 1),
                    "tracking_duration_sec": tracking,
                    "ball_actions": actions.get(player.player_id, {"passes": 0, "drives": 0, "shots": 0}),
                },
            }
        )

    game_date = video.date or analysis.created_at[:10]
    generated = analysis.created_wall + timedelta(seconds=max(done_at - analysis.created, 0.0))
    return {
        "metadata": {
            "game_id": f"{game_date}_hub-{analysis.id}",
            "game_date": game_date,
            "version": ALGORITHM_VERSION,
            "generated_at": generated.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "video_length_sec": round(length, 2),
        },
        "teams": {"team_0_name": match.team_names[0], "team_1_name": match.team_names[1]},
        "match_stats": {
            "event_counts": {name: len(spans[name]) for name in _SUMMARY_COUNTED},
            "total_durations_sec": {name: total(name) for name in _SUMMARY_COUNTED},
            "analysable_duration_sec": analysable,
            "non_analysable_duration_sec": round(max(length - analysable, 0.0), 2),
        },
        "possession": {
            "summary": {
                "team_0": {"seconds": round(team_seconds[0], 2), "pct": pcts[0]},
                "team_1": {"seconds": round(team_seconds[1], 2), "pct": pcts[1]},
                "unknown": {"seconds": round(unknown_seconds, 2), "pct": pcts[2]},
            },
            "per_minute": per_minute,
        },
        "players": players,
    }


_SUMMARY_COUNTED: Final = ("team_possession", "player_possession", "scene", "match_timeline")

_CONFIDENCES: Final = (
    {"name": "confidence_detection", "type": "float32"},
    {"name": "confidence_event", "type": "float32"},
    {"name": "confidence_identity", "type": "float32"},
)
_BODY_PART: Final = {"name": "body_part", "type": "str", "enum": ["head", "both_hands", "unknown"]}
_TARGETS: Final = ({"name": "x_target", "type": "int16"}, {"name": "y_target", "type": "int16"})


def _schema_json() -> dict[str, Any]:
    """The data-version-3 schema, with the property catalogue of the event pages."""
    return {
        "data_version": 3,
        "engine_version": "latest",
        "event_types": {
            "pass": {
                "summary": "A deliberate attempt to deliver the ball to a teammate.",
                "properties": [
                    _BODY_PART,
                    *_CONFIDENCES,
                    {"name": "length_cm", "type": "int32"},
                    {"name": "pass_type", "type": "str", "enum": ["cross"]},
                    {
                        "name": "set_piece",
                        "type": "str",
                        "enum": [
                            "open_play",
                            "throw_in",
                            "kick_off",
                            "corner_kick",
                            "free_kick",
                            "goal_kick",
                        ],
                    },
                    *_TARGETS,
                ],
            },
            "shot": {
                "summary": "An attempt to score: a kick or other body contact aimed at goal.",
                "properties": [_BODY_PART, *_CONFIDENCES],
            },
            "drive": {
                "summary": "A player carries the ball with their feet over consecutive frames.",
                "properties": [_BODY_PART, *_CONFIDENCES, {"name": "length_cm", "type": "int32"}, *_TARGETS],
            },
            "tackle": {
                "summary": "A defensive challenge that legally dispossesses the opponent.",
                "properties": [_BODY_PART, *_CONFIDENCES],
            },
            "team_possession": {
                "summary": "Which team controls the ball.",
                "properties": [
                    {"name": "team_label", "type": "int8"},
                    {"name": "team_side", "type": "str", "enum": ["left", "right", "unknown"]},
                    {"name": "unknown_reason", "type": "str", "enum": ["unclear"]},
                ],
            },
            "player_possession": {
                "summary": "Which player has the ball.",
                "properties": [
                    {"name": "confidence_identity", "type": "float32"},
                    {"name": "model_source", "type": "str", "enum": ["short", "long", "mix"]},
                ],
            },
            "ball_phase": {
                "summary": "Whether the ball is in play.",
                "properties": [
                    {
                        "name": "phase",
                        "type": "str",
                        "enum": ["in_play", "out_of_bounds", "in_bounds_stoppage", "half_kickoff"],
                    }
                ],
            },
            "scene": {
                "summary": "Whether the footage shows the main tactical camera.",
                "properties": [{"name": "is_analysable", "type": "bool"}],
            },
            "match_timeline": {
                "summary": "Game period.",
                "properties": [{"name": "period", "type": "str", "enum": ["full_game"]}],
            },
        },
        "filters": [
            {"type": "event_property", "description": "Events of a type, constrained by their properties."},
            {"type": "frame_state", "description": "Per-frame player physical state thresholds."},
            {"type": "ball_location", "description": "Ball inside a pitch zone (metres)."},
            {"type": "player_ball_proximity", "description": "Players within a distance of the ball."},
            {"type": "team_possession", "description": "A team controls the ball."},
            {"type": "player_possession", "description": "A player has the ball."},
            {"type": "match_timeline", "description": "Game period."},
            {"type": "scene", "description": "Analysable footage."},
            {"type": "ball_action", "description": "Pass, drive or shot (legacy)."},
        ],
        "frame_state": {
            "available": True,
            "columns": [
                {
                    "name": "timestamp",
                    "type": "int32",
                    "description": "Milliseconds from match start; join key. Same format as tracking.",
                },
                {
                    "name": "player_id",
                    "type": "str",
                    "description": "Identity-resolved 'team-jersey' id; join key.",
                },
                {
                    "name": "speed_mps",
                    "type": "float32",
                    "description": "Smoothed speed in m/s (Savitzky-Golay, window 9, order 2).",
                },
                {
                    "name": "nearest_opp_id",
                    "type": "str",
                    "description": "player_id of the nearest opposing player; null when none is on screen.",
                },
                {
                    "name": "nearest_opp_dist_m",
                    "type": "float32",
                    "description": "Distance to nearest_opp_id in metres.",
                },
            ],
        },
    }


# ---- query-intervals -----------------------------------------------------------------------------

_Interval = tuple[int, int, str, str]  # start frame, end frame (inclusive), label, type
_FRAME_STATE_COLUMNS: Final = ("speed_mps", "nearest_opp_dist_m")
_PERIODS: Final = ("first_half", "second_half", "full_game")
_BALL_ACTIONS: Final = ("pass", "drive", "shot")


@dataclass(slots=True)
class _Query:
    operator: str
    pad_sec: float
    gap_fill_sec: float
    merge_results: bool
    filters: list[dict[str, Any]]
    windows: list[tuple[float, float, str]]


def _validate_query(body: dict[str, Any]) -> _Query:
    errors = _Errors()
    operator = body.get("operator", "AND")
    if operator is None:
        operator = "AND"
    if operator not in ("AND", "OR"):
        errors.add("operator", "The selected operator is invalid.")
    numbers: dict[str, float] = {}
    for name, default in (("pad_sec", 5.0), ("gap_fill_sec", 5.0)):
        value = body.get(name, default)
        if value is None:
            value = default
        if not _is_number(value):
            errors.add(name, f"The {_attr(name)} field must be a number.")
        elif value < 0:
            errors.add(name, f"The {_attr(name)} field must be at least 0.")
        else:
            numbers[name] = float(value)
    flags: dict[str, bool] = {}
    for name, flag_default in (("merge_results", True), ("include_pixel_coords", False)):
        value = body.get(name, flag_default)
        if value is None:
            value = flag_default
        if not isinstance(value, bool):
            errors.add(name, f"The {_attr(name)} field must be true or false.")
        else:
            flags[name] = value
    filters = body.get("filters", [])
    if filters is None:
        filters = []
    if not isinstance(filters, list):
        errors.add("filters", "The filters field must be an array.")
        filters = []
    for index, item in enumerate(filters):
        _validate_filter(f"filters.{index}", item, errors)
    windows: list[tuple[float, float, str]] = []
    existing = body.get("existing_filters", [])
    if existing is None:
        existing = []
    if not isinstance(existing, list):
        errors.add("existing_filters", "The existing filters field must be an array.")
        existing = []
    for index, item in enumerate(existing):
        key = f"existing_filters.{index}"
        if not isinstance(item, dict):
            errors.add(key, f"The {key} field must be an array.")
            continue
        bounds: list[float] = []
        for bound in ("start", "end"):
            if bound not in item or item[bound] is None:
                errors.add(f"{key}.{bound}", f"The {key}.{bound} field is required.")
            elif not _is_number(item[bound]) or item[bound] < 0:
                errors.add(f"{key}.{bound}", f"The {key}.{bound} field must be a number of at least 0.")
            else:
                bounds.append(float(item[bound]))
        if len(bounds) == 2:
            if bounds[1] < bounds[0]:
                errors.add(f"{key}.end", f"The {key}.end field must be greater than or equal to {key}.start.")
            else:
                windows.append((bounds[0], bounds[1], str(item.get("name") or "")))
    errors.raise_if_any()
    return _Query(
        operator=operator,
        pad_sec=numbers["pad_sec"],
        gap_fill_sec=numbers["gap_fill_sec"],
        merge_results=flags["merge_results"],
        filters=filters,
        windows=windows,
    )


def _check_list(
    errors: _Errors,
    key: str,
    item: dict[str, Any],
    name: str,
    *,
    required: bool = False,
    allowed: Sequence[str] | None = None,
) -> None:
    full = f"{key}.{name}"
    if name not in item or item[name] is None:
        if required:
            errors.add(full, f"The {full} field is required.")
        return
    value = item[name]
    if not isinstance(value, list):
        errors.add(full, f"The {full} field must be an array.")
        return
    if required and not value:
        errors.add(full, f"The {full} field is required.")
    for position, element in enumerate(value):
        if not isinstance(element, str):
            errors.add(f"{full}.{position}", f"The {full}.{position} field must be a string.")
        elif allowed is not None and element not in allowed:
            errors.add(f"{full}.{position}", f"The selected {full}.{position} is invalid.")


def _check_number(
    errors: _Errors,
    key: str,
    item: dict[str, Any],
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    integer: bool = False,
) -> None:
    full = f"{key}.{name}"
    if name not in item or item[name] is None:
        return
    value = item[name]
    if integer and not _is_int(value):
        errors.add(full, f"The {full} field must be an integer.")
    elif not _is_number(value):
        errors.add(full, f"The {full} field must be a number.")
    elif low is not None and high is not None and not low <= value <= high:
        errors.add(full, f"The {full} field must be between {low:g} and {high:g}.")
    elif low is not None and value < low:
        errors.add(full, f"The {full} field must be at least {low:g}.")


def _validate_filter(key: str, item: object, errors: _Errors) -> None:
    if not isinstance(item, dict):
        errors.add(key, f"The {key} field must be an array.")
        return
    kind = item.get("type")
    if kind is None:
        errors.add(f"{key}.type", f"The {key}.type field is required.")
        return
    if kind not in FILTER_TYPES:
        errors.add(f"{key}.type", f"The selected {key}.type is invalid.")
        return
    if kind == "event_property":
        if not isinstance(item.get("event_type"), str) or not item["event_type"]:
            errors.add(f"{key}.event_type", f"The {key}.event_type field is required.")
        properties = item.get("properties")
        if not isinstance(properties, list):
            errors.add(f"{key}.properties", f"The {key}.properties field must be an array.")
        else:
            for position, prop in enumerate(properties):
                prop_key = f"{key}.properties.{position}"
                if not isinstance(prop, dict):
                    errors.add(prop_key, f"The {prop_key} field must be an array.")
                elif not isinstance(prop.get("field"), str):
                    errors.add(f"{prop_key}.field", f"The {prop_key}.field field is required.")
                elif "in_" in prop and not isinstance(prop["in_"], list):
                    errors.add(f"{prop_key}.in_", f"The {prop_key}.in_ field must be an array.")
                else:
                    for bound in ("gte", "lte"):
                        _check_number(errors, prop_key, prop, bound)
        _check_list(errors, key, item, "players")
        _check_list(errors, key, item, "teams", allowed=_TEAM_KEYS)
    elif kind == "frame_state":
        _check_list(errors, key, item, "players", required=True)
        if item.get("column") is None:
            errors.add(f"{key}.column", f"The {key}.column field is required.")
        elif item["column"] not in _FRAME_STATE_COLUMNS:
            errors.add(f"{key}.column", f"The selected {key}.column is invalid.")
        _check_number(errors, key, item, "gte")
        _check_number(errors, key, item, "lte")
        _check_number(errors, key, item, "min_duration_ms", low=0, integer=True)
    elif kind == "ball_location":
        for name, low, high in (("x_min", -5, 110), ("x_max", -5, 110), ("y_min", -5, 75), ("y_max", -5, 75)):
            _check_number(errors, key, item, name, low=low, high=high)
        side = item.get("team_side_perspective")
        if side is not None and side not in _TEAM_KEYS:
            errors.add(f"{key}.team_side_perspective", f"The selected {key}.team_side_perspective is invalid.")
    elif kind == "player_ball_proximity":
        _check_list(errors, key, item, "players", required=True)
        threshold = item.get("threshold")
        if threshold is not None and (not _is_number(threshold) or threshold <= 0):
            errors.add(f"{key}.threshold", f"The {key}.threshold field must be greater than 0.")
    elif kind == "team_possession":
        _check_list(errors, key, item, "teams", allowed=_TEAM_KEYS)
    elif kind == "player_possession":
        _check_list(errors, key, item, "players")
    elif kind == "match_timeline":
        _check_list(errors, key, item, "periods", required=True, allowed=_PERIODS)
    elif kind == "scene":
        value = item.get("is_analysable")
        if value is not None and not isinstance(value, bool):
            errors.add(f"{key}.is_analysable", f"The {key}.is_analysable field must be true or false.")
    elif kind == "ball_action":
        _check_list(errors, key, item, "actions", allowed=_BALL_ACTIONS)
        _check_list(errors, key, item, "players")
        _check_list(errors, key, item, "teams", allowed=_TEAM_KEYS)


def _phase(seed: int, name: str) -> float:
    return zlib.crc32(f"{seed}:{name}".encode()) / 0xFFFFFFFF * 2 * math.pi


def _ball_xy(seed: int, t: float) -> tuple[float, float]:
    a, b, c = _phase(seed, "bx"), _phase(seed, "bx2"), _phase(seed, "by")
    x = 52.5 + 50.0 * math.sin(t / 47.0 + a) * math.cos(t / 131.0 + b)
    y = 34.0 + 30.0 * math.sin(t / 29.0 + c)
    return x, y


def _player_xy(seed: int, player: str, t: float) -> tuple[float, float]:
    p = _phase(seed, player)
    k = zlib.crc32(player.encode()) % 9
    home_x = 15.0 + (k * 9.0) if player.startswith("0-") else 90.0 - (k * 9.0)
    home_y = 8.0 + ((k * 7) % 52)
    bx, by = _ball_xy(seed, t)
    x = 0.6 * (home_x + 12.0 * math.sin(t / (19.0 + k) + p)) + 0.4 * bx
    y = 0.6 * (home_y + 9.0 * math.cos(t / (23.0 + k) + p)) + 0.4 * by
    return x, y


def _frame_state_value(seed: int, player: str, column: str, t: float) -> float:
    p = _phase(seed, player + column)
    k = zlib.crc32(player.encode()) % 7
    if column == "speed_mps":
        burst = max(0.0, math.sin(t / (31.0 + k) + 2 * p)) ** 3
        return max(0.0, 3.0 + 2.5 * math.sin(t / (6.0 + k) + p) + 3.0 * burst)
    return 4.0 + 3.0 * math.sin(t / (11.0 + k) + p) + 1.5 * math.sin(t / (3.0 + k) + 2 * p)


def _runs(flags: Iterable[bool], total_frames: int, min_seconds: float = 0.0) -> list[tuple[int, int]]:
    """Turn per-second samples into frame spans ``[t0*25, (t1+1)*25]`` where the flag holds."""
    spans: list[tuple[int, int]] = []
    start: int | None = None
    second = -1
    for second, flag in enumerate(flags):
        if flag and start is None:
            start = second
        elif not flag and start is not None:
            if second - start >= min_seconds:
                spans.append((start * DEFAULT_FPS, min(second * DEFAULT_FPS, total_frames)))
            start = None
    if start is not None and second + 1 - start >= min_seconds:
        spans.append((start * DEFAULT_FPS, min((second + 1) * DEFAULT_FPS, total_frames)))
    return spans


def _prop_matches(props: dict[str, Any], condition: dict[str, Any]) -> bool:
    value = props.get(condition["field"])
    if "eq" in condition and value != condition["eq"]:
        return False
    if "in_" in condition and value not in condition["in_"]:
        return False
    low, high = condition.get("gte"), condition.get("lte")
    if low is not None and (not _is_number(value) or value < low):
        return False
    return not (high is not None and (not _is_number(value) or value > high))


def _filter_intervals(match: _Match, item: dict[str, Any]) -> list[_Interval]:
    kind: str = item["type"]
    total = match.duration_frames
    seconds = range(match.duration_seconds)
    names = dict(zip(_TEAM_KEYS, match.team_names, strict=True))

    def from_events(event_type: str, keep: Callable[[_Event], bool], label: Callable[[_Event], str]) -> list[_Interval]:
        return [(e.start, e.end, label(e), kind) for e in match.by_type.get(event_type, []) if keep(e)]

    def actor_ok(e: _Event) -> bool:
        players, teams = item.get("players"), item.get("teams")
        return (not players or e.player in players) and (not teams or e.team in teams)

    if kind == "team_possession":
        teams = item.get("teams") or list(_TEAM_KEYS)
        return from_events("team_possession", lambda e: e.team in teams, lambda e: names[e.team or "team_0"])
    if kind == "player_possession":
        players = item.get("players")
        return from_events("player_possession", lambda e: not players or e.player in players, lambda e: e.label)
    if kind == "match_timeline":
        periods = item.get("periods") or []
        return from_events("match_timeline", lambda e: e.label in periods, lambda e: e.label)
    if kind == "scene":
        wanted = item.get("is_analysable", True)
        wanted = True if wanted is None else wanted
        return from_events("scene", lambda e: e.props["is_analysable"] is wanted, lambda e: e.label)
    if kind == "ball_action":
        actions = item.get("actions") or list(_BALL_ACTIONS)
        result: list[_Interval] = []
        for action in actions:
            result += from_events(action, actor_ok, lambda e: e.event_type)
        return result
    if kind == "event_property":
        conditions = item.get("properties") or []
        return from_events(
            item["event_type"],
            lambda e: actor_ok(e) and all(_prop_matches(e.props, c) for c in conditions),
            lambda e: e.label,
        )
    if kind == "ball_location":
        x_min, x_max = item.get("x_min", 0.0), item.get("x_max", 105.0)
        y_min, y_max = item.get("y_min", 0.0), item.get("y_max", 68.0)
        x_min = 0.0 if x_min is None else x_min
        x_max = 105.0 if x_max is None else x_max
        y_min = 0.0 if y_min is None else y_min
        y_max = 68.0 if y_max is None else y_max
        flip = item.get("team_side_perspective") == "team_1"

        def inside(t: int) -> bool:
            x, y = _ball_xy(match.seed, t)
            if flip:
                x, y = 105.0 - x, 68.0 - y
            return bool(x_min <= x <= x_max and y_min <= y <= y_max)

        return [(s, e, "ball_location", kind) for s, e in _runs(map(inside, seconds), total)]
    if kind == "player_ball_proximity":
        threshold = float(item.get("threshold") or 3.0)  # assumed (docs silent): 3 m default
        result = []
        for player in item["players"]:

            def near(t: int, player: str = player) -> bool:
                px, py = _player_xy(match.seed, player, t)
                bx, by = _ball_xy(match.seed, t)
                return math.hypot(px - bx, py - by) <= threshold

            result += [(s, e, player, kind) for s, e in _runs(map(near, seconds), total)]
        return result
    if kind == "frame_state":
        column = item["column"]
        gte, lte = item.get("gte"), item.get("lte")
        min_ms = item.get("min_duration_ms")
        min_seconds = (500 if min_ms is None else min_ms) / 1000  # documented default 500 ms
        result = []
        for player in item["players"]:

            def holds(t: int, player: str = player) -> bool:
                value = _frame_state_value(match.seed, player, column, t)
                return (gte is None or value >= gte) and (lte is None or value <= lte)

            result += [(s, e, player, kind) for s, e in _runs(map(holds, seconds), total, min_seconds)]
        return result
    return []  # pragma: no cover - validation rejects other types


def _union(intervals: Iterable[_Interval] | Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    spans = sorted((item[0], item[1]) for item in intervals)
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _intersect(items: list[_Interval], spans: list[tuple[int, int]]) -> list[_Interval]:
    """Cut each closed interval of ``items`` to the (sorted, disjoint) ``spans``."""
    starts = [span[0] for span in spans]
    result: list[_Interval] = []
    for start, end, label, kind in items:
        index = max(bisect.bisect_right(starts, start) - 1, 0)
        while index < len(spans) and spans[index][0] <= end:
            low, high = max(start, spans[index][0]), min(end, spans[index][1])
            if low <= high:
                result.append((low, high, label, kind))
            index += 1
    return result


def _merge_same_label(items: list[_Interval], gap_frames: int) -> list[_Interval]:
    """Merge intervals of the same label and type that overlap or are closer than ``gap_frames``."""
    groups: dict[tuple[str, str], list[_Interval]] = {}
    for item in items:
        groups.setdefault((item[2], item[3]), []).append(item)
    merged: list[_Interval] = []
    for group in groups.values():
        group.sort()
        current = group[0]
        for item in group[1:]:
            if item[0] <= current[1] or item[0] - current[1] < gap_frames:
                current = (current[0], max(current[1], item[1]), current[2], current[3])
            else:
                merged.append(current)
                current = item
        merged.append(current)
    return merged


def _query_json(match: _Match, query: _Query) -> list[dict[str, Any]]:
    if not query.filters:
        return []  # assumed (docs silent)
    per_filter = [_filter_intervals(match, item) for item in query.filters]
    if query.operator == "AND":
        result = per_filter[0]
        for other in per_filter[1:]:
            result = _intersect(result, _union(other))
    else:
        result = [interval for intervals in per_filter for interval in intervals]
    if query.windows:
        window_spans = [(round(s * DEFAULT_FPS), round(e * DEFAULT_FPS)) for s, e, _ in query.windows]
        result = _intersect(result, _union(window_spans))
    if query.merge_results:
        result = _merge_same_label(result, round(query.gap_fill_sec * DEFAULT_FPS))
    pad = round(query.pad_sec * DEFAULT_FPS)
    total = match.duration_frames
    result = [(max(s - pad, 0), min(e + pad, total), label, kind) for s, e, label, kind in result]
    if query.merge_results:
        result = _merge_same_label(result, 0)
    result.sort(key=lambda item: (item[0], item[1], item[2]))
    return [{"start": _seconds(s), "end": _seconds(e), "label": label, "type": kind} for s, e, label, kind in result]


# ---- tracking sample -------------------------------------------------------------------------------

_TRACKING_START_MS: Final = 3_309_680
_TRACKING_FRAMES: Final = 20
_TRACKING_JERSEYS: Final = ((1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11), (1, 3, 4, 5, 6, 8, 9, 11, 14, 17, 21))
#: Exactly representable in float16, so the JSON and Parquet samples agree bit for bit.
_TRACKING_CONFIDENCES: Final = (0.75, 0.875, 0.9375, 0.96875, 0.625, 0.984375)


def tracking_sample_rows() -> list[dict[str, Any]]:
    """The deterministic tracking sample every analysis serves: 20 frames x 24 entities = 480 rows.

    Columns as documented: timestamp (ms, 40 ms steps), role, player_id, player_id_conf, x, y (cm),
    bbox_x, bbox_y (pixels). The embedded Parquet file holds exactly these rows.
    """
    rows: list[dict[str, Any]] = []
    for frame in range(_TRACKING_FRAMES):
        timestamp = _TRACKING_START_MS + frame * 40
        for team, jerseys in enumerate(_TRACKING_JERSEYS):
            for slot, jersey in enumerate(jerseys):
                unreadable = team == 1 and jersey == 17
                base_x = 800 + slot * 850 if team == 0 else 9700 - slot * 850
                x = base_x + frame * (6 if team == 0 else -5) + (slot % 3) * 4
                y = 600 + (slot * 617) % 5600 + frame * ((slot % 5) - 2)
                rows.append(
                    {
                        "timestamp": timestamp,
                        "role": "goal_keeper" if jersey == 1 else "player",
                        "player_id": None if unreadable else f"{team}-{jersey}",
                        "player_id_conf": 0.25 if unreadable else _TRACKING_CONFIDENCES[(slot + team) % 6],
                        "x": x,
                        "y": y,
                        "bbox_x": round(x / 10500 * 1920),
                        "bbox_y": round(1080 - y / 6800 * 700),
                    }
                )
        ball_x, ball_y = 5200 + frame * 11, 3400 - frame * 3
        referee_x, referee_y = 4800 + frame * 4, 2900 + frame * 2
        for role, x, y in (("ball", ball_x, ball_y), ("referee", referee_x, referee_y)):
            rows.append(
                {
                    "timestamp": timestamp,
                    "role": role,
                    "player_id": None,
                    "player_id_conf": None,
                    "x": x,
                    "y": y,
                    "bbox_x": round(x / 10500 * 1920),
                    "bbox_y": round(1080 - y / 6800 * 700),
                }
            )
    return rows


_parquet_cache: bytes | None = None


def _tracking_parquet() -> bytes:
    global _parquet_cache
    if _parquet_cache is None:
        from airflow_provider_aiontheball.testing._tracking_sample import TRACKING_PARQUET_B64

        _parquet_cache = base64.b64decode(TRACKING_PARQUET_B64)
    return _parquet_cache


# --------------------------------------------------------------------------------------------------
# The simulator
# --------------------------------------------------------------------------------------------------

_WEBHOOK_KEY: Final = web.AppKey("aib_webhook_tasks", list)
_ORG_KEY: Final = web.RequestKey("aib_org", str)
_BODY_KEY: Final = web.RequestKey("aib_body", object)
#: Set on a request a ``truncate`` fault applies to: a streaming handler sends half its body (see ``_write_body``).
_TRUNCATE_KEY: Final = web.RequestKey("aib_truncate", bool)


class Simulator:
    """The simulated API's state and its :class:`aiohttp.web.Application`.

    :param config: behaviour knobs (defaults mimic the documented API).
    :param clock: a ``() -> seconds`` function; defaults to :func:`time.monotonic`. :meth:`advance`
        adds a virtual offset on top of it, so tests can move time forward without sleeping.

    The helper methods are plain dictionary/list operations, safe enough to call from another thread
    than the one serving requests (as tests do with :class:`SimulatorServer`).
    """

    def __init__(self, config: SimulatorConfig | None = None, *, clock: Callable[[], float] | None = None) -> None:
        self.config = config or SimulatorConfig()
        self._clock = clock or time.monotonic
        self._offset = 0.0
        self._lock = threading.Lock()
        self._connections_opened = 0
        self._connections_open = 0
        self._connections_without_nodelay = 0
        self._reset_state()

    def _reset_state(self) -> None:
        with self._lock:
            self._videos: dict[int, _Video] = {}
            self._org_videos: dict[str, list[int]] = {}
            self._analyses: dict[int, _Analysis] = {}
            self._game_names: set[str] = set()
            self._next_video_id = self.config.first_video_id
            self._next_analysis_id = self.config.first_analysis_id
            self._faults: list[Fault] = []
            self._video_script: deque[str] = deque()
            self._analysis_script: deque[tuple[str, float]] = deque()
            self._log: deque[RequestRecord] = deque(maxlen=max(self.config.request_log_limit, 1))
            self._match_cache: dict[tuple[Any, ...], _Match] = {}
            self._request_count = 0
            self._webhooks_sent = 0
            self._webhooks_failed = 0

    # ---- clock ---------------------------------------------------------------------------------

    def now(self) -> float:
        """The simulator clock: ``clock()`` plus everything :meth:`advance` added."""
        return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the simulator clock forward by ``seconds`` (deterministic tests, no sleeping)."""
        if not _is_number(seconds) or seconds < 0:
            raise ValueError(f"seconds must be a non-negative number, got {seconds!r}")
        self._offset += float(seconds)

    # ---- faults, scripts, forced states --------------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        """Queue a fault; faults are tried in the order added and each match consumes one count."""
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def _take_fault(self, method: str, path: str, body: Any = None) -> Fault | None:
        with self._lock:
            if not self._faults:
                return None
            for index, fault in enumerate(self._faults):
                if fault.matches(method, path, body):
                    fault.count -= 1
                    if fault.count <= 0:
                        del self._faults[index]
                    return fault
        return None

    def script_next_videos(self, outcome: str, count: int = 1) -> None:
        """Give the next ``count`` created videos an outcome.

        ``"available"`` (normal), ``"error"`` (fails after downloading), ``"no_match_detected"``
        (after locally_available), ``"stuck"`` (stays ``downloading``) or ``"status:<value>"``
        (reports ``<value>``, e.g. the undocumented ``created``, instead of ``init`` for one step,
        then continues normally). A ``sim_outcome`` query parameter in ``video_file_url`` takes
        precedence and does not consume the script.
        """
        outcome = _check_video_outcome(outcome)
        with self._lock:
            self._video_script.extend([outcome] * count)

    def script_next_analyses(self, outcome: str, count: int = 1, *, error_at_progress: float = 50.0) -> None:
        """Give the next ``count`` analyses an outcome: ``"done"``, or ``"error"`` at that progress."""
        outcome = _check_analysis_outcome(outcome)
        with self._lock:
            self._analysis_script.extend([(outcome, float(error_at_progress))] * count)

    def set_video_status(self, video_id: int, status: str) -> None:
        """Force a video's status from now on (any string, documented or not); it stays there."""
        now = self.now()
        video = self._videos.get(video_id)
        if video is None:
            raise KeyError(f"no video {video_id}")
        video.schedule = [entry for entry in video.schedule if entry[0] < now] + [(now, status)]

    def set_analysis_outcome(self, analysis_id: int, outcome: str, *, error_at_progress: float = 50.0) -> None:
        """Change the outcome of an existing analysis (``"done"`` or ``"error"``)."""
        analysis = self._analyses.get(analysis_id)
        if analysis is None:
            raise KeyError(f"no analysis {analysis_id}")
        analysis.outcome = _check_analysis_outcome(outcome)
        analysis.error_at_progress = float(error_at_progress)

    def reset(self) -> None:
        """Forget all videos, analyses, faults, scripts, the request log and the request/webhook
        counters. Connection counters and the clock are kept."""
        self._reset_state()

    # ---- observation ---------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """The request log (API requests only, oldest first)."""
        with self._lock:
            return list(self._log)

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    @property
    def stats(self) -> dict[str, int]:
        """Counters: TCP connections accepted/open (when served by :class:`SimulatorServer` or the CLI),
        API requests, webhooks sent/failed."""
        return {
            "connections_opened": self._connections_opened,
            "connections_open": self._connections_open,
            "requests": self._request_count,
            "webhooks_sent": self._webhooks_sent,
            "webhooks_failed": self._webhooks_failed,
        }

    def video_json(self, video_id: int) -> dict[str, Any] | None:
        """What ``GET /videos/{id}`` would return in ``data`` right now (any organisation)."""
        video = self._videos.get(video_id)
        return None if video is None else self._video_json(video, self.now(), listing=False)

    def analysis_json(self, analysis_id: int) -> dict[str, Any] | None:
        """What ``GET /analyses/{id}`` would return (without envelope) right now."""
        analysis = self._analyses.get(analysis_id)
        return None if analysis is None else self._analysis_json(analysis, self.now())

    # ---- connection accounting (called from the serving loop) ----------------------------------

    def _connection_made(self, transport: object) -> None:
        self._connections_opened += 1
        self._connections_open += 1
        get_extra_info = getattr(transport, "get_extra_info", None)
        sock = get_extra_info("socket") if get_extra_info is not None else None
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                if not sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY):
                    self._connections_without_nodelay += 1

    def _connection_lost(self) -> None:
        self._connections_open = max(self._connections_open - 1, 0)

    # ---- state computations --------------------------------------------------------------------

    def _video_duration(self, video: _Video) -> int:
        # assumed (docs silent): the trimmed length when an end offset is known, else 90 minutes.
        if video.end_offset_seconds is not None:
            return video.end_offset_seconds - (video.start_offset_seconds or 0)
        return DEFAULT_DURATION_SECONDS

    def _analysis_state(self, analysis: _Analysis, now: float) -> _AnalysisState:
        cfg = self.config
        init_end = analysis.created + max(cfg.analysis_init_seconds, 0.0)
        if now < init_end:
            return _AnalysisState(AnalysisStatus.INIT.value, 0, False)
        video = self._videos.get(analysis.video_id)
        available = video.first_time((VideoStatus.AVAILABLE.value,)) if video else None
        failed = video.first_time(_FAILED_VIDEO_STATUSES) if video else None
        if available is None or (failed is not None and failed < available):
            if failed is not None and now >= max(init_end, failed):
                return _AnalysisState(AnalysisStatus.ERROR.value, 0, False)
            return _AnalysisState(AnalysisStatus.WAITING_FOR_VIDEO.value, 0, False)
        run_start = max(init_end, available)
        if now < run_start:
            return _AnalysisState(AnalysisStatus.WAITING_FOR_VIDEO.value, 0, False)
        running = max(cfg.analysis_seconds, 0.0)
        aggregating = max(cfg.analysis_aggregating_seconds, 0.0)
        run_end = run_start + running
        done_at = run_end + aggregating
        if analysis.outcome == "error":
            at = min(max(analysis.error_at_progress, 0.0), 99.0)
            error_time = run_start + running * at / 95 if at <= 95 else run_end + aggregating * (at - 95) / 4
            if now >= error_time:
                return _AnalysisState(AnalysisStatus.ERROR.value, round(at, 1), True)
        if now < run_end:
            fraction = (now - run_start) / running if running else 1.0
            return _AnalysisState(AnalysisStatus.RUNNING.value, _running_progress(fraction, analysis.id), True)
        if now < done_at:
            fraction = (now - run_end) / aggregating if aggregating else 1.0
            return _AnalysisState(AnalysisStatus.AGGREGATING.value, round(95 + 4 * fraction, 1), True)
        return _AnalysisState(AnalysisStatus.DONE.value, 100, True, done_at)

    def _team_names(self, video: _Video) -> tuple[str, str]:
        # assumed (docs silent): "Home"/"Away" when no names were given. team_0 is the team that
        # starts on the left: the home team unless left_start_team == "away".
        home = video.home_team_name or "Home"
        away = video.away_team_name or "Away"
        return (away, home) if video.left_start_team == "away" else (home, away)

    def _match(self, analysis: _Analysis, video: _Video) -> _Match:
        duration = max(self._video_duration(video), 60)
        names = self._team_names(video)
        key = (analysis.id, duration, names)
        match = self._match_cache.get(key)
        if match is None:
            if len(self._match_cache) > 64:
                self._match_cache.clear()
            match = _build_match(analysis.id, duration, names)
            self._match_cache[key] = match
        return match

    # ---- JSON views ----------------------------------------------------------------------------

    def _video_json(self, video: _Video, now: float, *, listing: bool, created: bool = False) -> dict[str, Any]:
        status = video.status_at(now)
        available = status == VideoStatus.AVAILABLE.value
        data: dict[str, Any] = {
            "id": video.id,
            "status": status,
            "game_name": video.game_name,
            "title": video.title,
            "created_at": video.created_at,
            "home_team_name": video.home_team_name,
            "away_team_name": video.away_team_name,
            "duration": self._video_duration(video) if available else None,
        }
        if created:  # the docs' create example: id, status, game_name, title, created_at
            data = {name: data[name] for name in ("id", "status", "game_name", "title", "created_at")}
        else:
            if not listing:  # the docs show mp4_source on GET /videos/{id} only
                data["mp4_source"] = MP4_SOURCE_TEMPLATE.format(id=video.id) if available else None
            data["analyses"] = [
                {"id": analysis_id, "status": self._analysis_state(analysis, now).status}
                for analysis_id in list(video.analysis_ids)
                if (analysis := self._analyses.get(analysis_id)) is not None and analysis.listed <= now
            ]
        if self.config.echo_submitted_fields:
            # opt-in: the docs return none of the submitted fields; earlier simulator versions did.
            data["video_file_url"] = video.video_file_url
            data["date"] = video.date
            data["start_offset_seconds"] = video.start_offset_seconds
            data["end_offset_seconds"] = video.end_offset_seconds
            data["left_start_team"] = video.left_start_team
        return data

    def submitted_video(self, video_id: int) -> dict[str, Any] | None:
        """The fields ``POST /videos`` received for ``video_id`` (what tests assert a video's source by)."""
        video = self._videos.get(video_id)
        if video is None:
            return None
        names = (
            "video_file_url",
            "title",
            "home_team_name",
            "away_team_name",
            "date",
            "start_offset_seconds",
            "end_offset_seconds",
            "left_start_team",
        )
        return {name: getattr(video, name) for name in names}

    def _analysis_json(self, analysis: _Analysis, now: float) -> dict[str, Any]:
        state = self._analysis_state(analysis, now)
        video = self._videos.get(analysis.video_id)
        return {
            "id": analysis.id,
            # assumed (docs silent): the UUID webhooks carry as analysis_id.
            "uuid": analysis.uuid,
            "video_id": analysis.video_id,
            "status": state.status,
            "algorithm_version": ALGORITHM_VERSION,
            "parameters": {"fps": analysis.fps},
            "created_at": analysis.created_at,
            "results_available": state.status == AnalysisStatus.DONE.value,
            "progress": _number(state.progress),
            "video": {"id": analysis.video_id, "title": video.title if video else None},
        }

    # ---- lookups -------------------------------------------------------------------------------

    def _owned_video(self, request: web.Request) -> _Video:
        raw = request.match_info["video_id"]
        video = self._videos.get(int(raw)) if raw.isascii() and raw.isdigit() and len(raw) < 19 else None
        if video is None or video.org != request[_ORG_KEY]:
            # assumed (docs silent): Laravel's ModelNotFoundException message; other orgs get 404 too.
            raise _ApiError(404, {"message": f"No query results for model [App\\Models\\Video] {raw}"})
        return video

    def _owned_analysis(self, request: web.Request) -> _Analysis:
        raw = request.match_info["analysis_id"]
        analysis = self._analyses.get(int(raw)) if raw.isascii() and raw.isdigit() and len(raw) < 19 else None
        if analysis is None or analysis.org != request[_ORG_KEY]:
            raise _ApiError(404, {"message": f"No query results for model [App\\Models\\Analysis] {raw}"})
        return analysis

    def _done_analysis(self, request: web.Request) -> tuple[_Analysis, _Video, _AnalysisState]:
        analysis = self._owned_analysis(request)
        state = self._analysis_state(analysis, self.now())
        video = self._videos.get(analysis.video_id)
        if state.status != AnalysisStatus.DONE.value or video is None:
            # assumed (docs silent): status configurable, Laravel-style message body.
            raise _ApiError(
                self.config.results_before_done_status,
                {"message": f"Analysis {analysis.id} is not done yet (status: {state.status})."},
            )
        return analysis, video, state

    @staticmethod
    def _body_object(request: web.Request) -> dict[str, Any]:
        body = request.get(_BODY_KEY)
        # assumed (docs silent): a body that is not a JSON object counts as an empty one.
        return body if isinstance(body, dict) else {}

    # ---- API handlers --------------------------------------------------------------------------

    async def _list_videos(self, request: web.Request) -> web.StreamResponse:
        per_page = max(int(self.config.per_page), 1)
        now = self.now()
        ids = [
            i
            for i in list(self._org_videos.get(request[_ORG_KEY], ()))
            if (video := self._videos.get(i)) is not None and video.listed <= now
        ]
        total = len(ids)
        last_page = max(math.ceil(total / per_page), 1)
        raw_page = request.query.get("page", "1")
        page = int(raw_page) if raw_page.isascii() and raw_page.isdigit() and len(raw_page) < 10 else 1
        page = max(page, 1)
        offset = (page - 1) * per_page
        items = [
            self._video_json(self._videos[i], now, listing=True)
            for i in ids[offset : offset + per_page]
            if i in self._videos
        ]
        path = str(request.url.with_query(None))
        return web.json_response(
            {
                "data": items,
                "links": {
                    "first": f"{path}?page=1",
                    "last": f"{path}?page={last_page}",
                    "prev": f"{path}?page={page - 1}" if page > 1 else None,
                    "next": f"{path}?page={page + 1}" if page < last_page else None,
                },
                "meta": {
                    "current_page": page,
                    "from": offset + 1 if items else None,
                    "last_page": last_page,
                    "path": path,
                    "per_page": per_page,
                    "to": offset + len(items) if items else None,
                    "total": total,
                },
            }
        )

    async def _create_video(self, request: web.Request) -> web.StreamResponse:
        body = self._body_object(request)
        errors = _Errors()
        clean = _validate_video_fields(body, errors, creating=True, current=None)
        outcome: str | None = None
        if "video_file_url" in clean:
            wanted = parse_qs(urlsplit(clean["video_file_url"]).query).get("sim_outcome")
            if wanted:
                try:
                    outcome = _check_video_outcome(wanted[-1])
                except ValueError:
                    errors.add(
                        "video_file_url",
                        "The video file url sim_outcome parameter is invalid (simulator only): use "
                        f"{', '.join(VIDEO_OUTCOMES)} or status:<value>.",
                    )
        errors.raise_if_any()
        now = self.now()
        _, created_at = _utc_now_iso()
        with self._lock:
            if outcome is None:
                outcome = self._video_script.popleft() if self._video_script else "available"
            video_id = self._next_video_id
            self._next_video_id += 1
            name = _game_name(video_id, self._game_names)
            self._game_names.add(name)
        video = _Video(
            id=video_id,
            org=request[_ORG_KEY],
            created=now,
            created_at=created_at,
            game_name=name,
            video_file_url=clean["video_file_url"],
            title=clean.get("title"),
            home_team_name=clean.get("home_team_name"),
            away_team_name=clean.get("away_team_name"),
            date=clean.get("date"),
            start_offset_seconds=clean.get("start_offset_seconds"),
            end_offset_seconds=clean.get("end_offset_seconds"),
            left_start_team=clean.get("left_start_team"),
            outcome=outcome,
            schedule=_video_schedule(now, self.config.video_step_seconds, outcome),
            listed=now + max(float(self.config.commit_delay_seconds), 0.0),
        )
        self._videos[video_id] = video
        self._org_videos.setdefault(video.org, []).append(video_id)
        # assumed (docs silent): 201 Created.
        return web.json_response({"data": self._video_json(video, now, listing=False, created=True)}, status=201)

    async def _get_video(self, request: web.Request) -> web.StreamResponse:
        video = self._owned_video(request)
        return web.json_response({"data": self._video_json(video, self.now(), listing=False)})

    async def _update_video(self, request: web.Request) -> web.StreamResponse:
        video = self._owned_video(request)
        errors = _Errors()
        clean = _validate_video_fields(self._body_object(request), errors, creating=False, current=video)
        errors.raise_if_any()
        for name, value in clean.items():
            setattr(video, name, value)
        return web.json_response({"data": self._video_json(video, self.now(), listing=False)})

    async def _delete_video(self, request: web.Request) -> web.StreamResponse:
        video = self._owned_video(request)
        self._videos.pop(video.id, None)
        with contextlib.suppress(ValueError, KeyError):
            self._org_videos[video.org].remove(video.id)
        for analysis_id in video.analysis_ids:
            self._analyses.pop(analysis_id, None)
        return web.Response(status=204)

    async def _create_analysis(self, request: web.Request) -> web.StreamResponse:
        video = self._owned_video(request)
        body = self._body_object(request)
        errors = _Errors()
        fps = body.get("fps")
        if fps is None or fps == "":
            fps = DEFAULT_FPS  # assumed (docs silent): the tracking docs' 25 fps
        elif not _is_int(fps):
            errors.add("fps", "The fps field must be an integer.")
        elif fps < 1:
            errors.add("fps", "The fps field must be at least 1.")
        errors.raise_if_any()
        now = self.now()
        wall, created_at = _utc_now_iso()
        with self._lock:
            outcome, error_at = self._analysis_script.popleft() if self._analysis_script else ("done", 50.0)
            analysis_id = self._next_analysis_id
            self._next_analysis_id += 1
        analysis = _Analysis(
            id=analysis_id,
            video_id=video.id,
            org=video.org,
            uuid=str(uuid.uuid5(ANALYSIS_UUID_NAMESPACE, str(analysis_id))),
            created=now,
            created_at=created_at,
            created_wall=wall,
            fps=int(fps),
            outcome=outcome,
            error_at_progress=error_at,
            listed=now + max(float(self.config.commit_delay_seconds), 0.0),
        )
        self._analyses[analysis_id] = analysis
        video.analysis_ids.append(analysis_id)
        # assumed (docs silent): 201 Created.
        return web.json_response({"data": self._analysis_json(analysis, now)}, status=201)

    async def _get_analysis(self, request: web.Request) -> web.StreamResponse:
        analysis = self._owned_analysis(request)
        data = self._analysis_json(analysis, self.now())
        # assumed (docs silent): enveloped by default, like every other analysis object.
        return web.json_response({"data": data} if self.config.analysis_get_envelope else data)

    async def _summary(self, request: web.Request) -> web.StreamResponse:
        analysis, video, state = self._done_analysis(request)
        match = self._match(analysis, video)
        return web.json_response(_summary_json(match, analysis, video, state.done_at or self.now()))

    async def _events(self, request: web.Request) -> web.StreamResponse:
        analysis, video, _ = self._done_analysis(request)
        return web.json_response(_events_json(self._match(analysis, video)))

    async def _schema(self, request: web.Request) -> web.StreamResponse:
        self._done_analysis(request)
        return web.json_response(_schema_json())

    async def _query_intervals(self, request: web.Request) -> web.StreamResponse:
        self._owned_analysis(request)
        query = _validate_query(self._body_object(request))
        analysis, video, _ = self._done_analysis(request)
        return web.json_response(_query_json(self._match(analysis, video), query))

    async def _tracking(self, request: web.Request) -> web.StreamResponse:
        self._owned_analysis(request)
        fmt = request.query.get("format", "parquet")
        if fmt not in ("parquet", "json"):
            raise _ApiError(422, _validation_payload({"format": ["The selected format is invalid."]}))
        analysis, _, _ = self._done_analysis(request)
        response = web.StreamResponse(
            status=200,
            headers={
                # assumed (docs silent): content types and attachment file name.
                "Content-Type": "application/octet-stream" if fmt == "parquet" else "application/json",
                "Content-Disposition": f"attachment; filename=tracking_{analysis.id}.{fmt}",
            },
        )
        response.enable_chunked_encoding()
        await response.prepare(request)
        chunks: list[bytes] = []
        if fmt == "parquet":
            data = _tracking_parquet()
            chunks = [data[start : start + 16_384] for start in range(0, len(data), 16_384)]
        else:
            rows = tracking_sample_rows()
            for start in range(0, len(rows), 100):
                chunk = ",".join(json.dumps(row, separators=(",", ":")) for row in rows[start : start + 100])
                prefix = "[" if start == 0 else ","
                chunks.append((prefix + chunk).encode())
            chunks.append(b"]" if rows else b"[]")
        await self._write_body(request, response, chunks)
        return response

    # ---- control handlers (no auth; never under /api/v1) ---------------------------------------

    async def _control_body(self, request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        if not raw:
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise _ApiError(400, {"message": "Malformed JSON body."}) from None
        if not isinstance(body, dict):
            raise _ApiError(400, {"message": "The body must be a JSON object."})
        return body

    async def _control_add_fault(self, request: web.Request) -> web.StreamResponse:
        body = await self._control_body(request)
        try:
            fault = Fault.from_dict(body)
        except (TypeError, ValueError) as exc:
            raise _ApiError(400, {"message": str(exc)}) from None
        self.add_fault(fault)
        return web.json_response({"faults": [f.to_dict() for f in self.faults]}, status=201)

    async def _control_list_faults(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"faults": [f.to_dict() for f in self.faults]})

    async def _control_clear_faults(self, request: web.Request) -> web.StreamResponse:
        self.clear_faults()
        return web.Response(status=204)

    async def _control_requests(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"requests": [record.to_dict() for record in self.requests]})

    async def _control_clear_requests(self, request: web.Request) -> web.StreamResponse:
        self.clear_requests()
        return web.Response(status=204)

    async def _control_stats(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.stats)

    async def _control_advance(self, request: web.Request) -> web.StreamResponse:
        body = await self._control_body(request)
        seconds = body.get("seconds")
        if not isinstance(seconds, int | float) or not _is_number(seconds) or seconds < 0:
            raise _ApiError(400, {"message": f"seconds must be a non-negative number, got {seconds!r}"})
        self.advance(seconds)
        return web.json_response({"time": self.now()})

    async def _control_video_status(self, request: web.Request) -> web.StreamResponse:
        body = await self._control_body(request)
        raw = request.match_info["video_id"]
        status = body.get("status")
        if not isinstance(status, str) or not status:
            raise _ApiError(400, {"message": "status (a non-empty string) is required."})
        try:
            self.set_video_status(int(raw) if raw.isdigit() else -1, status)
        except KeyError:
            raise _ApiError(404, {"message": f"No video {raw}."}) from None
        return web.json_response({"data": self.video_json(int(raw))})

    async def _control_script(self, request: web.Request) -> web.StreamResponse:
        body = await self._control_body(request)
        resource, outcome, count = body.get("resource"), body.get("outcome"), body.get("count", 1)
        if not _is_int(count) or count < 1:
            raise _ApiError(400, {"message": "count must be a positive integer."})
        try:
            if not isinstance(outcome, str):
                raise ValueError(f"outcome must be a string, got {outcome!r}")
            if resource == "video":
                self.script_next_videos(outcome, count)
            elif resource == "analysis":
                error_at = body.get("error_at_progress", 50.0)
                if not _is_number(error_at):
                    raise ValueError("error_at_progress must be a number")
                self.script_next_analyses(outcome, count, error_at_progress=error_at)
            else:
                raise ValueError("resource must be 'video' or 'analysis'")
        except ValueError as exc:
            raise _ApiError(400, {"message": str(exc)}) from None
        return web.json_response({"resource": resource, "outcome": outcome, "count": count}, status=201)

    async def _control_reset(self, request: web.Request) -> web.StreamResponse:
        self.reset()
        return web.Response(status=204)

    # ---- middleware ----------------------------------------------------------------------------

    async def _read_body(self, request: web.Request) -> object:
        if not request.body_exists:
            return None
        raw = await request.read()
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return _MALFORMED

    def _route_error(self, request: web.Request, exc: web.HTTPException | None) -> web.StreamResponse:
        route = request.path.lstrip("/")
        if isinstance(exc, web.HTTPMethodNotAllowed):
            allowed = ", ".join(sorted(exc.allowed_methods))
            message = f"The {request.method} method is not supported for route {route}. "
            message += f"Supported methods: {allowed}."
            return web.json_response({"message": message}, status=405, headers={"Allow": allowed})
        # assumed (docs silent): Laravel's NotFoundHttpException message for unknown routes.
        return web.json_response({"message": f"The route {route} could not be found."}, status=404)

    async def _api(self, request: web.Request, handler: Handler, record: RequestRecord) -> web.StreamResponse:
        match_info = request.match_info
        if match_info.http_exception is not None or (
            match_info.route.name == _GET_ANALYSIS_ROUTE and not self.config.analysis_get_route
        ):
            return self._route_error(request, match_info.http_exception)
        org = self._organisation(request)
        if org is None:
            # assumed (docs silent): Laravel's default 401 body.
            return web.json_response({"message": "Unauthenticated."}, status=401)
        record.token_org = org
        request[_ORG_KEY] = org
        try:
            return await handler(request)
        except _ApiError as exc:
            return web.json_response(exc.payload, status=exc.status, headers=exc.headers)

    def _organisation(self, request: web.Request) -> str | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None
        return self.config.tokens.get(token)

    @staticmethod
    def _drop(request: web.Request) -> web.StreamResponse:
        """Close the connection without a response.

        After ``abort()`` aiohttp cannot write the returned response; it treats that as a premature
        client disconnection and logs nothing.
        """
        transport = request.transport
        if transport is not None:
            transport.abort()
        return web.Response(status=599)

    @staticmethod
    def _cut(request: web.Request) -> None:
        """Close the connection after what was written so far (``close()`` sends buffered data first).

        aiohttp's own end of the response then fails on the closing transport, which it treats as a
        premature client disconnection: no terminating chunk is sent and nothing is logged.
        """
        transport = request.transport
        if transport is not None:
            transport.close()

    async def _write_body(self, request: web.Request, response: web.StreamResponse, chunks: list[bytes]) -> None:
        """Write a prepared streaming response's body and end it; under a ``truncate`` fault only its
        first half, then close the connection."""
        if not request.get(_TRUNCATE_KEY):
            for chunk in chunks:
                await response.write(chunk)
            await response.write_eof()
            return
        budget = sum(len(chunk) for chunk in chunks) // 2
        for chunk in chunks:
            if budget <= 0:
                break
            await response.write(chunk[:budget])
            budget -= len(chunk)
        self._cut(request)

    async def _truncated(self, request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
        """Send a handler's unsent response with its full ``Content-Length`` but only half its body."""
        if response.prepared:  # a streaming handler (the tracking download) already truncated itself
            return response
        body = response.body if isinstance(response, web.Response) and isinstance(response.body, bytes) else b""
        started = web.StreamResponse(status=response.status, reason=response.reason, headers=response.headers)
        started.content_length = len(body)
        await started.prepare(request)
        await started.write(body[: len(body) // 2])
        self._cut(request)
        return started

    @staticmethod
    def _status_response(fault: Fault) -> web.StreamResponse:
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else None
        message = fault.message or _HTTP_REASONS.get(fault.status) or f"HTTP {fault.status}"
        return web.json_response({"message": message}, status=fault.status, headers=headers)

    async def _apply_fault(self, request: web.Request, fault: Fault) -> web.StreamResponse | None:
        """Apply a pre-processing fault; return the response to send instead, or ``None`` to go on."""
        if fault.kind == "status":
            return self._status_response(fault)
        if fault.kind == "malformed":
            return web.Response(
                status=200,
                body=(fault.body if fault.body is not None else "<html>oops").encode(),
                content_type=fault.content_type or "text/html",
            )
        if fault.kind == "drop":
            return self._drop(request)
        if fault.kind == "slow":
            await asyncio.sleep(fault.delay)
        return None

    def app(self) -> web.Application:
        """Build the :class:`aiohttp.web.Application` serving ``/api/v1`` and ``/_control``."""

        @web.middleware
        async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            path = request.path
            if not (path == API_PREFIX or path.startswith(API_PREFIX + "/")):
                if request.match_info.http_exception is not None:
                    return self._route_error(request, request.match_info.http_exception)
                try:
                    return await handler(request)
                except _ApiError as exc:
                    return web.json_response(exc.payload, status=exc.status, headers=exc.headers)
            body = await self._read_body(request)
            request[_BODY_KEY] = body
            record = RequestRecord(
                method=request.method,
                path=path[len(API_PREFIX) :] or "/",
                query=dict(request.query.items()),
                status=None,
                token_org=None,
                time=self.now(),
                body=None if body is _MALFORMED else body,
            )
            with self._lock:
                self._log.append(record)
                self._request_count += 1
            fault = self._take_fault(request.method, record.path, body)
            try:
                response = await self._apply_fault(request, fault) if fault is not None else None
                if response is None:
                    if fault is not None and fault.kind == "truncate":
                        request[_TRUNCATE_KEY] = True
                    response = await self._api(request, handler, record)
                    if fault is not None and fault.kind == "drop_after_processing":
                        response = self._drop(request)
                    elif fault is not None and fault.kind == "status_after_processing":
                        response = self._status_response(fault)
                    elif fault is not None and fault.kind == "truncate":
                        response = await self._truncated(request, response)
            except Exception:
                log.exception("Simulator error while handling %s %s", request.method, record.path)
                response = web.json_response({"message": "Server Error."}, status=500)
            dropped = fault is not None and fault.kind in ("drop", "drop_after_processing")
            record.status = None if dropped else response.status
            return response

        app = web.Application(middlewares=[middleware], client_max_size=8 * 1024 * 1024)
        app[_WEBHOOK_KEY] = []
        add = app.router
        api = API_PREFIX
        add.add_get(f"{api}/videos", self._list_videos)
        add.add_post(f"{api}/videos", self._create_video)
        add.add_get(f"{api}/videos/{{video_id}}", self._get_video)
        add.add_put(f"{api}/videos/{{video_id}}", self._update_video)
        add.add_delete(f"{api}/videos/{{video_id}}", self._delete_video)
        add.add_post(f"{api}/videos/{{video_id}}/analysis", self._create_analysis)
        add.add_get(f"{api}/analyses/{{analysis_id}}", self._get_analysis, name=_GET_ANALYSIS_ROUTE)
        add.add_get(f"{api}/analyses/{{analysis_id}}/summary", self._summary)
        add.add_get(f"{api}/analyses/{{analysis_id}}/events", self._events)
        add.add_get(f"{api}/analyses/{{analysis_id}}/schema", self._schema)
        add.add_post(f"{api}/analyses/{{analysis_id}}/query-intervals", self._query_intervals)
        add.add_get(f"{api}/analyses/{{analysis_id}}/tracking/download", self._tracking)
        ctl = CONTROL_PREFIX
        add.add_post(f"{ctl}/faults", self._control_add_fault)
        add.add_get(f"{ctl}/faults", self._control_list_faults)
        add.add_delete(f"{ctl}/faults", self._control_clear_faults)
        add.add_get(f"{ctl}/requests", self._control_requests)
        add.add_delete(f"{ctl}/requests", self._control_clear_requests)
        add.add_get(f"{ctl}/stats", self._control_stats)
        add.add_post(f"{ctl}/advance", self._control_advance)
        add.add_post(f"{ctl}/videos/{{video_id}}/status", self._control_video_status)
        add.add_post(f"{ctl}/script", self._control_script)
        add.add_post(f"{ctl}/reset", self._control_reset)
        app.on_startup.append(self._start_webhooks)
        app.on_cleanup.append(self._stop_webhooks)
        return app

    # ---- webhooks ------------------------------------------------------------------------------

    async def _start_webhooks(self, app: web.Application) -> None:
        if not self.config.webhook_url:
            return
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        app[_WEBHOOK_KEY].extend(
            [
                asyncio.create_task(self._webhook_ticker(queue), name="aib-webhook-ticker"),
                asyncio.create_task(self._webhook_sender(queue), name="aib-webhook-sender"),
            ]
        )

    async def _stop_webhooks(self, app: web.Application) -> None:
        tasks: list[asyncio.Task[None]] = app[_WEBHOOK_KEY]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        tasks.clear()

    def _webhook_payloads(self, now: float) -> list[dict[str, Any]]:
        """Detect state transitions since the last tick and return the webhooks they cause, in order."""
        payloads: list[dict[str, Any]] = []
        try:
            analyses = list(self._analyses.values())
        except RuntimeError:  # mutated by another thread; try again next tick
            return payloads
        for analysis in analyses:
            if analysis.webhook_done_sent:
                continue
            state = self._analysis_state(analysis, now)
            final = state.status in (AnalysisStatus.DONE.value, AnalysisStatus.ERROR.value)
            if state.ran:
                if state.status == AnalysisStatus.RUNNING.value or state.status == AnalysisStatus.ERROR.value:
                    reached = state.progress
                else:  # aggregating or done: every running step has been passed
                    reached = 95.0
                while analysis.webhook_next_step <= 90 and analysis.webhook_next_step <= reached:
                    payloads.append(
                        self._webhook(analysis, "analysis_completion_rate", "running", analysis.webhook_next_step)
                    )
                    analysis.webhook_next_step += 10
                entered_aggregating = state.status in (
                    AnalysisStatus.AGGREGATING.value,
                    AnalysisStatus.DONE.value,
                ) or (state.status == AnalysisStatus.ERROR.value and state.progress >= 95)
                if entered_aggregating and not analysis.webhook_aggregating_sent:
                    analysis.webhook_aggregating_sent = True
                    payloads.append(self._webhook(analysis, "analysis_completion_rate", "aggregating", 95))
            if final:
                analysis.webhook_done_sent = True
                payloads.append(self._webhook(analysis, "analysis_done", state.status, 100))
        return payloads

    @staticmethod
    def _webhook(analysis: _Analysis, event: str, status: str, rate: int) -> dict[str, Any]:
        return {"event": event, "analysis_id": analysis.uuid, "status": status, "completion_rate": rate}

    async def _webhook_ticker(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        while True:
            for payload in self._webhook_payloads(self.now()):
                queue.put_nowait(payload)
            await asyncio.sleep(WEBHOOK_TICK_SECONDS)

    async def _webhook_sender(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        timeout = ClientTimeout(total=WEBHOOK_TIMEOUT_SECONDS)
        async with ClientSession(timeout=timeout, headers={"User-Agent": WEBHOOK_USER_AGENT}) as session:
            while True:
                payload = await queue.get()
                url = self.config.webhook_url
                if not url:
                    continue
                try:
                    async with session.post(url, json=payload) as response:
                        await response.read()
                        ok = 200 <= response.status < 300
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # errors are swallowed and counted
                    log.debug("Webhook delivery failed: %s", type(exc).__name__)
                    ok = False
                if ok:
                    self._webhooks_sent += 1
                else:
                    self._webhooks_failed += 1


# --------------------------------------------------------------------------------------------------
# Serving
# --------------------------------------------------------------------------------------------------


def _count_connections(server: web.Server, simulator: Simulator) -> None:
    """Count TCP connections accepted by ``server`` in ``simulator``'s stats.

    aiohttp's low-level :class:`aiohttp.web.Server` is told about every accepted connection
    (``connection_made``, called by the protocol right after it enables TCP_NODELAY) and every closed
    one (``connection_lost``). There is no public hook, so the two bound methods of this one server
    instance are wrapped.
    """
    original_made = server.connection_made
    original_lost = server.connection_lost

    def connection_made(handler: Any, transport: asyncio.Transport) -> None:
        simulator._connection_made(transport)
        original_made(handler, transport)

    def connection_lost(handler: Any, exc: BaseException | None = None) -> None:
        simulator._connection_lost()
        original_lost(handler, exc)

    server.connection_made = connection_made  # type: ignore[method-assign]
    server.connection_lost = connection_lost  # type: ignore[method-assign]


async def _serve(
    simulator: Simulator, host: str, port: int, *, shutdown_timeout: float = 2.0
) -> tuple[web.AppRunner, int]:
    """Start serving ``simulator`` on ``host:port``; return the runner and the bound port."""
    runner = web.AppRunner(
        simulator.app(),
        access_log=None,  # keeps per-request cost down; headers (tokens) are never logged anyway
        keepalive_timeout=75.0,
        shutdown_timeout=shutdown_timeout,
    )
    await runner.setup()
    assert runner.server is not None
    _count_connections(runner.server, simulator)
    site = web.TCPSite(runner, host, port, backlog=2048, reuse_address=True)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound = next((address[1] for address in runner.addresses if isinstance(address, tuple)), port)
    return runner, int(bound)


class SimulatorServer:
    """Serve a :class:`Simulator` on loopback from a background thread with its own event loop.

    Use as a context manager or call :meth:`start` / :meth:`stop`. ``port=0`` picks a free port.
    """

    def __init__(self, simulator: Simulator | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.simulator = simulator or Simulator()
        self.host = host
        self.port = port
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}{API_PREFIX}"

    @property
    def control_url(self) -> str:
        return f"http://{self.host}:{self.port}{CONTROL_PREFIX}"

    def connection_json(self, token: str = "test-token") -> str:
        """The JSON form of an Airflow connection (for ``AIRFLOW_CONN_*``) pointing at this server."""
        return json.dumps({"conn_type": "aiontheball", "host": self.base_url, "password": token})

    def start(self) -> SimulatorServer:
        if self._thread is not None:
            raise RuntimeError("SimulatorServer already started")
        self._thread = threading.Thread(target=self._run, name="aiontheball-simulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=30):
            raise RuntimeError("SimulatorServer did not start within 30 s")
        if self._error is not None:
            self._thread.join(timeout=5)
            self._thread = None
            raise RuntimeError(f"SimulatorServer failed to start: {self._error!r}") from self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            try:
                runner, self.port = loop.run_until_complete(_serve(self.simulator, self.host, self.port))
                self._stop_event = asyncio.Event()
            except BaseException as exc:
                self._error = exc
                return
            finally:
                self._ready.set()
            loop.run_until_complete(self._stop_event.wait())
            loop.run_until_complete(runner.cleanup())
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self) -> None:
        thread, loop, stop_event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        if loop is not None and stop_event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop_event.set)
        thread.join(timeout=30)
        self._thread = None

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# --------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_aiontheball.testing.simulator",
        description="Serve an offline simulator of the AI on the Ball Insight API v1.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (0 picks a free one; default 8765)")
    parser.add_argument(
        "--token",
        action="append",
        default=None,
        help="accepted bearer token; repeat for several organisations (org-1, org-2, ...). "
        "Default: test-token. Tokens are never printed.",
    )
    parser.add_argument("--video-step-seconds", type=float, default=2.0)
    parser.add_argument("--analysis-seconds", type=float, default=30.0)
    parser.add_argument("--per-page", type=int, default=15)
    parser.add_argument("--webhook-url", default=None, help="POST webhooks to this URL")
    parser.add_argument(
        "--commit-delay-seconds",
        type=float,
        default=0.0,
        help="list a created video (and show a created analysis on its video) only this long after its POST",
    )
    parser.add_argument(
        "--echo-submitted-fields",
        action="store_true",
        help="echo video_file_url, date, offsets and left_start_team on video objects (the docs return none)",
    )
    parser.add_argument("--ready-file", default=None, help="write the base URL to this file once listening")
    return parser


def _write_text(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


async def _run_cli(args: argparse.Namespace) -> int:
    tokens = args.token or ["test-token"]
    config = SimulatorConfig(
        tokens={token: f"org-{index}" for index, token in enumerate(tokens, start=1)},
        video_step_seconds=args.video_step_seconds,
        analysis_seconds=args.analysis_seconds,
        per_page=args.per_page,
        webhook_url=args.webhook_url,
        commit_delay_seconds=args.commit_delay_seconds,
        echo_submitted_fields=args.echo_submitted_fields,
    )
    simulator = Simulator(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    runner, port = await _serve(simulator, args.host, args.port)
    try:
        base_url = f"http://{args.host}:{port}{API_PREFIX}"
        print(f"AI on the Ball simulator listening on {base_url}", flush=True)
        if args.ready_file:
            await asyncio.to_thread(_write_text, args.ready_file, base_url + "\n")
        await stop.wait()
    finally:
        await runner.cleanup()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the simulator until SIGTERM/SIGINT; return the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(_run_cli(args))
    except OSError as exc:
        print(f"AI on the Ball simulator could not listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # pragma: no cover - SIGINT before the handler was installed
        return 0


if __name__ == "__main__":
    sys.exit(main())
