"""Laravel-style validation of the simulator's request bodies (the video fields; see ``query.py`` for
query-intervals)."""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlsplit

from airflow_provider_aiontheball.testing.simulator.state import _ApiError, _Video


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
