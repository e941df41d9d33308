"""Validation of request fields, done before any request is sent (pure functions, no I/O).

Hooks call these so a bad value never reaches the API; operators call them again right after
templating so the task fails with a message naming the field before it builds a hook. Every error is
a ``ValueError`` whose message starts with the field's name.

Values that came from Jinja templates arrive as strings: ids and offsets therefore also accept
strings of decimal digits (``"790"``), converted to ``int``. Booleans are never numbers here.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, overload
from urllib.parse import urlsplit

from airflow_provider_aiontheball.defaults import MAX_FPS, MAX_ID, MAX_SECONDS_FIELD

#: Fields of ``POST /videos``, in the order of the API's Videos page.
VIDEO_CREATE_FIELDS: tuple[str, ...] = (
    "video_file_url",
    "title",
    "home_team_name",
    "away_team_name",
    "date",
    "start_offset_seconds",
    "end_offset_seconds",
    "left_start_team",
)
#: Fields of ``PUT /videos/{id}``: the Videos page lists exactly these (no URL, no ``left_start_team``).
VIDEO_UPDATE_FIELDS: tuple[str, ...] = (
    "title",
    "home_team_name",
    "away_team_name",
    "date",
    "start_offset_seconds",
    "end_offset_seconds",
)
LEFT_START_TEAMS: tuple[str, ...] = ("home", "away")

#: The nine filter types of ``POST /analyses/{id}/query-intervals`` (Filters overview page).
FILTER_TYPES: tuple[str, ...] = (
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
QUERY_OPERATORS: tuple[str, ...] = ("AND", "OR")
TRACKING_FORMATS: tuple[str, ...] = ("parquet", "json")

# ASCII digits only: ``\d`` would also take "١٢" (Arabic-Indic digits), which ``int()`` accepts.
_DIGITS = re.compile(r"^\s*[0-9]+\s*$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def validate_integer(value: Any, field: str, *, minimum: int = 0, maximum: int = MAX_SECONDS_FIELD) -> int:
    """Return ``value`` as an ``int`` in [``minimum``, ``maximum``]; ASCII digit strings (from templates) are
    accepted, bools are not. ``maximum`` defaults to a day in seconds (offsets, padding)."""
    if isinstance(value, bool):
        raise ValueError(f"{field}: expected an integer, got a boolean {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _DIGITS.match(value):
        number = int(value)
    else:
        raise ValueError(f"{field}: expected an integer, got {_describe(value)}")
    if number < minimum:
        raise ValueError(f"{field}: must be at least {minimum}, got {number}")
    if number > maximum:
        raise ValueError(f"{field}: must be at most {maximum}, got {_describe(number)}")
    return number


@overload
def validate_id(
    value: Any, field: str = ..., *, optional: Literal[False] = False, strict: Literal[True] = True
) -> int: ...
@overload
def validate_id(value: Any, field: str = ..., *, optional: bool = ..., strict: bool = ...) -> int | None: ...
def validate_id(value: Any, field: str = "video_id", *, optional: bool = False, strict: bool = True) -> int | None:
    """The provider's one reading of a resource id: a positive integer up to :data:`~.defaults.MAX_ID`, given as
    an ``int`` or a string of ASCII digits (a rendered template; whitespace around it ignored), never a bool.

    :param field: the name user-facing errors start with.
    :param optional: nothing (``None``, ``""`` or a template that rendered ``None``) means no id: ``None``.
    :param strict: ``True`` for user input: anything else raises ``ValueError`` naming ``field``. ``False`` for
        stored or received data (XCom, state records, API listings): anything else is ``None``.
    """
    if optional and value in (None, "", "None"):
        return None
    try:
        return validate_integer(value, field, minimum=1, maximum=MAX_ID)
    except ValueError:
        if strict:
            raise
        return None


def id_or_template(value: Any) -> int | str:
    """A trigger's id kwarg as stored: an ``int``, or a string Airflow renders in the triggerer before the
    trigger runs (``start_from_trigger``), which the trigger validates then. A string that is an id
    (:func:`validate_id`) is stored as that id."""
    if isinstance(value, str):
        number = validate_id(value, strict=False)
        return value if number is None else number
    return int(value)


def validate_video_file_url(value: Any, field: str = "video_file_url") -> str:
    """Return ``value`` if it is an absolute http(s) URL with a host (the API downloads from it)."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{field}: expected an absolute http(s) URL, got {_describe(value)}")
    url = value.strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:  # e.g. "Invalid IPv6 URL" for https://[::1/v.mp4
        raise ValueError(f"{field}: not a valid URL ({exc}): {_describe_url(url)}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        raise ValueError(
            f"{field}: expected an absolute http(s) URL that the API can download directly, got {_describe_url(url)}"
        )
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            f"{field}: must not contain credentials (user:password@); they would be logged and sent to the API. "
            "Use a presigned or otherwise public URL"
        )
    return url


def url_secrets(url: Any) -> list[str]:
    """The parts of a URL that must never be shown: its query string (a presigned URL's signature,
    credential and token) and the longer query values on their own (decoded), and any userinfo."""
    from urllib.parse import parse_qsl

    if not isinstance(url, str):
        return []
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return [url] if "?" in url or "@" in url else []
    secrets = [parts.query] if parts.query else []
    # Short values ("3600", "AWS4-HMAC-SHA256") would mask innocent text everywhere; signatures are long.
    secrets += [value for _, value in parse_qsl(parts.query) if len(value) > 16]
    if parts.password:
        secrets.append(parts.password)
    return secrets


def url_identity(url: str) -> str:
    """What names the file a URL points at: scheme, host, port and path, lower-cased where URLs are
    case-blind. Its query and fragment — a presigned URL's signature and expiry, fresh at every render —
    and any credentials are left out. The exactly-once fingerprint uses it (``operators/video.py``)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return display_url(url)
    host = (parts.hostname or "").lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{parts.scheme.lower()}://{host}{f':{port}' if port else ''}{parts.path}"


def display_url(url: str) -> str:
    """A URL for logs and XCom: scheme, host and path; query, fragment and credentials become ``***``."""
    head = url.split("?", 1)[0].split("#", 1)[0]
    scheme, sep, rest = head.partition("://")
    authority, slash, path = rest.partition("/")
    if sep and "@" in authority:
        head = f"{scheme}://***@{authority.rsplit('@', 1)[1]}{slash}{path}"
    return head + ("?***" if "?" in url else "")


class _HideUrlQueries(logging.Filter):
    """Cuts the query off every URL argument of a log record: urllib3's debug lines quote each request's
    path and query, a presigned URL's signature included (``display_url``'s rule: a query is never shown)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(arg, str) and "?" in arg for arg in record.args):
            record.args = tuple(
                f"{arg.split('?', 1)[0]}?***" if isinstance(arg, str) and "?" in arg else arg for arg in record.args
            )
        return True


#: The loggers of the HTTP library under requests that quote request URLs.
_HTTP_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry", "urllib3.poolmanager")


def hide_url_queries_in_http_logs() -> None:
    """Make urllib3's log lines show URLs without their query, at every level; idempotent. Called before the
    provider requests a URL that may be presigned (pre-flight checks, downloads): Airflow's secrets masker
    covers what ``mask_secret`` registered, this also what a redirect or a log handler outside a task sees."""
    for name in _HTTP_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, _HideUrlQueries) for existing in logger.filters):
            logger.addFilter(_HideUrlQueries())


def _describe_url(url: str) -> str:
    """A URL for error messages: never its query (a presigned URL's signature) or credentials."""
    return _describe(display_url(url))


def normalize_date(value: Any, field: str = "date") -> str:
    """Return ``value`` as ``YYYY-MM-DD``: accepts such strings, ``date``, ``datetime`` and pendulum values."""
    if isinstance(value, dt.datetime):  # pendulum.DateTime is a datetime subclass
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str) and _ISO_DATE.match(value.strip()):
        try:
            return dt.date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            raise ValueError(f"{field}: {value!r} is not a real calendar date") from None
    raise ValueError(f"{field}: expected a date as 'YYYY-MM-DD', datetime.date or datetime, got {_describe(value)}")


def validate_text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{field}: expected a string, got {_describe(value)}")
    return value


def validate_left_start_team(value: Any, field: str = "left_start_team") -> str:
    if value not in LEFT_START_TEAMS:
        raise ValueError(f"{field}: must be one of {', '.join(LEFT_START_TEAMS)}, got {_describe(value)}")
    return str(value)


_FIELD_VALIDATORS: dict[str, Any] = {
    "video_file_url": validate_video_file_url,
    "title": validate_text,
    "home_team_name": validate_text,
    "away_team_name": validate_text,
    "date": normalize_date,
    "start_offset_seconds": validate_integer,
    "end_offset_seconds": validate_integer,
    "left_start_team": validate_left_start_team,
}


def _video_body(fields: Mapping[str, Any], allowed: Sequence[str], what: str) -> dict[str, Any]:
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise ValueError(
            f"{unknown[0]}: not a field of {what}; allowed fields: {', '.join(allowed)}"
            + (f" (also unknown: {', '.join(unknown[1:])})" if len(unknown) > 1 else "")
        )
    body: dict[str, Any] = {}
    for name in allowed:  # documented order, so request bodies and logs are stable
        value = fields.get(name)
        if value is None:  # not given: the API applies its own default / keeps the current value
            continue
        body[name] = _FIELD_VALIDATORS[name](value, name)
    start, end = body.get("start_offset_seconds"), body.get("end_offset_seconds")
    if start is not None and end is not None and end <= start:
        raise ValueError(f"end_offset_seconds: must be greater than start_offset_seconds ({start}), got {end}")
    return body


def video_create_body(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Validate the fields of ``POST /videos`` and return the JSON body (``None`` values left out)."""
    if fields.get("video_file_url") is None:
        raise ValueError("video_file_url: required (a public http(s) URL of the match video)")
    return _video_body(fields, VIDEO_CREATE_FIELDS, "POST /videos")


def video_update_body(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Validate the fields of ``PUT /videos/{id}`` and return the JSON body (``None`` values left out)."""
    body = _video_body(fields, VIDEO_UPDATE_FIELDS, "PUT /videos/{id}")
    if not body:
        raise ValueError(f"fields: nothing to update; give at least one of {', '.join(VIDEO_UPDATE_FIELDS)}")
    return body


def analysis_create_body(fps: Any) -> dict[str, Any]:
    """Return the body of ``POST /videos/{id}/analysis``: ``{}`` (server default) or ``{"fps": n}``."""
    if fps is None:
        return {}
    return {"fps": validate_integer(fps, "fps", minimum=1, maximum=MAX_FPS)}


def validate_tracking_format(value: Any, field: str = "format") -> str:
    if value not in TRACKING_FORMATS:
        raise ValueError(f"{field}: must be one of {', '.join(TRACKING_FORMATS)}, got {_describe(value)}")
    return str(value)


def validate_filters(filters: Any, field: str = "filters") -> list[dict[str, Any]]:
    """Check that ``filters`` is a list of objects whose ``type`` is one of the nine documented types."""
    if isinstance(filters, Mapping | str | bytes) or not isinstance(filters, Iterable):
        raise ValueError(f"{field}: expected a list of filter objects, got {_describe(filters)}")
    checked: list[dict[str, Any]] = []
    for index, item in enumerate(filters):
        where = f"{field}[{index}]"
        if not isinstance(item, Mapping):
            raise ValueError(f"{where}: expected a filter object with a 'type', got {_describe(item)}")
        kind = item.get("type")
        if kind not in FILTER_TYPES:
            raise ValueError(f"{where}.type: unknown filter type {kind!r}; known types: {', '.join(FILTER_TYPES)}")
        checked.append(dict(item))
    return checked


def _optional_integer(body: dict[str, Any], name: str, value: Any) -> None:
    if value is not None:
        body[name] = validate_integer(value, name)


def _optional_bool(body: dict[str, Any], name: str, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, bool):
        raise ValueError(f"{name}: expected true or false, got {_describe(value)}")
    body[name] = value


def query_intervals_body(
    filters: Any,
    *,
    operator: Any = "AND",
    pad_sec: Any = None,
    gap_fill_sec: Any = None,
    merge_results: Any = None,
    include_pixel_coords: Any = None,
    existing_filters: Any = None,
) -> dict[str, Any]:
    """Validate a query-intervals request and return its JSON body; ``None`` leaves the server default."""
    op = operator.upper() if isinstance(operator, str) else operator
    if op not in QUERY_OPERATORS:
        raise ValueError(f"operator: must be one of {', '.join(QUERY_OPERATORS)}, got {_describe(operator)}")
    body: dict[str, Any] = {"operator": op, "filters": validate_filters(filters)}
    _optional_integer(body, "pad_sec", pad_sec)
    _optional_integer(body, "gap_fill_sec", gap_fill_sec)
    _optional_bool(body, "merge_results", merge_results)
    _optional_bool(body, "include_pixel_coords", include_pixel_coords)
    if existing_filters is not None:
        if isinstance(existing_filters, Mapping | str) or not isinstance(existing_filters, Iterable):
            raise ValueError(
                f"existing_filters: expected a list of {{start, end, name}} objects, got {existing_filters!r}"
            )
        windows = []
        for index, window in enumerate(existing_filters):
            if not isinstance(window, Mapping) or not {"start", "end"} <= set(window):
                raise ValueError(f"existing_filters[{index}]: expected an object with start and end, got {window!r}")
            windows.append(dict(window))
        body["existing_filters"] = windows
    return body
