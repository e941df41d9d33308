"""Field validation: every rule rejects bad input with a ValueError naming the field, before any request."""

from __future__ import annotations

import datetime as dt

import pendulum
import pytest

from airflow_provider_aiontheball.validation import (
    FILTER_TYPES,
    analysis_create_body,
    normalize_date,
    query_intervals_body,
    validate_id,
    video_create_body,
    video_update_body,
)

URL = "https://example.com/match.mp4"

BAD_CREATE_FIELDS = [
    pytest.param({"video_file_url": None}, "video_file_url", id="url-missing"),
    pytest.param({"video_file_url": "example.com/match.mp4"}, "video_file_url", id="url-relative"),
    pytest.param({"video_file_url": "ftp://example.com/m.mp4"}, "video_file_url", id="url-ftp"),
    pytest.param({"video_file_url": "https://"}, "video_file_url", id="url-no-host"),
    pytest.param({"video_file_url": 42}, "video_file_url", id="url-not-string"),
    pytest.param({"date": "15-01-2025"}, "date", id="date-wrong-order"),
    pytest.param({"date": "2025-02-30"}, "date", id="date-not-real"),
    pytest.param({"date": 20250115}, "date", id="date-number"),
    pytest.param({"start_offset_seconds": -1}, "start_offset_seconds", id="start-negative"),
    pytest.param({"start_offset_seconds": 1.5}, "start_offset_seconds", id="start-float"),
    pytest.param({"start_offset_seconds": True}, "start_offset_seconds", id="start-bool"),
    pytest.param({"end_offset_seconds": "ten"}, "end_offset_seconds", id="end-word"),
    pytest.param({"end_offset_seconds": False}, "end_offset_seconds", id="end-bool"),
    pytest.param({"start_offset_seconds": 100, "end_offset_seconds": 100}, "end_offset_seconds", id="end-equals-start"),
    pytest.param({"start_offset_seconds": 100, "end_offset_seconds": 50}, "end_offset_seconds", id="end-before-start"),
    pytest.param({"left_start_team": "left"}, "left_start_team", id="side-unknown"),
    pytest.param({"left_start_team": "HOME"}, "left_start_team", id="side-case"),
    pytest.param({"title": 7}, "title", id="title-not-string"),
    pytest.param({"home_team_name": ["A"]}, "home_team_name", id="home-not-string"),
    pytest.param({"away_team_name": 1.0}, "away_team_name", id="away-not-string"),
    pytest.param({"colour": "red"}, "colour", id="unknown-field"),
]


@pytest.mark.parametrize(("overrides", "field"), BAD_CREATE_FIELDS)
def test_create_rejects_bad_field_naming_it(overrides, field):
    fields = {"video_file_url": URL, **overrides}
    with pytest.raises(ValueError, match=rf"^{field}: ") as excinfo:
        video_create_body(fields)
    if field == "colour":
        assert "video_file_url" in str(excinfo.value), "the message lists the allowed fields"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("2025-01-15", "2025-01-15", id="string"),
        pytest.param(dt.date(2025, 1, 15), "2025-01-15", id="date"),
        pytest.param(dt.datetime(2025, 1, 15, 20, 45), "2025-01-15", id="datetime"),
        pytest.param(pendulum.datetime(2025, 1, 15, 20, 45, tz="Europe/Amsterdam"), "2025-01-15", id="pendulum"),
        pytest.param(pendulum.date(2025, 1, 15), "2025-01-15", id="pendulum-date"),
    ],
)
def test_date_values_are_sent_as_iso_dates(value, expected):
    assert normalize_date(value) == expected


def test_create_body_keeps_documented_order_and_drops_none():
    body = video_create_body(
        {
            "left_start_team": "away",
            "video_file_url": URL,
            "title": None,
            "date": dt.date(2025, 1, 15),
            "start_offset_seconds": "0",  # a rendered template
            "end_offset_seconds": 5400,
        }
    )
    assert body == {
        "video_file_url": URL,
        "date": "2025-01-15",
        "start_offset_seconds": 0,
        "end_offset_seconds": 5400,
        "left_start_team": "away",
    }
    assert list(body) == ["video_file_url", "date", "start_offset_seconds", "end_offset_seconds", "left_start_team"]


@pytest.mark.parametrize(
    "field",
    [pytest.param("video_file_url", id="url"), pytest.param("left_start_team", id="side")],
)
def test_update_rejects_fields_put_does_not_document(field):
    with pytest.raises(ValueError, match=rf"^{field}: not a field of PUT"):
        video_update_body({field: "home" if field == "left_start_team" else URL})


def test_update_needs_at_least_one_field():
    with pytest.raises(ValueError, match="nothing to update"):
        video_update_body({"title": None})


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(0, id="zero"),
        pytest.param(-3, id="negative"),
        pytest.param("abc", id="word"),
        pytest.param("7.5", id="decimal-string"),
        pytest.param(True, id="bool"),
        pytest.param(None, id="none"),
        pytest.param(7.0, id="float"),
    ],
)
def test_ids_must_be_positive_integers(value):
    with pytest.raises(ValueError, match=r"^video_id: "):
        validate_id(value)


@pytest.mark.parametrize(
    ("value", "expected"), [pytest.param(790, 790, id="int"), pytest.param(" 790 ", 790, id="template-string")]
)
def test_ids_accept_integers_and_digit_strings(value, expected):
    assert validate_id(value) == expected


@pytest.mark.parametrize(
    ("fps", "expected"),
    [
        pytest.param(None, {}, id="server-default"),
        pytest.param(25, {"fps": 25}, id="25"),
        pytest.param("25", {"fps": 25}, id="str"),
    ],
)
def test_analysis_body(fps, expected):
    assert analysis_create_body(fps) == expected


@pytest.mark.parametrize(
    "fps", [pytest.param(0, id="zero"), pytest.param(-25, id="neg"), pytest.param(12.5, id="float")]
)
def test_fps_must_be_positive_integer(fps):
    with pytest.raises(ValueError, match=r"^fps: "):
        analysis_create_body(fps)


def test_query_rejects_unknown_filter_type_listing_known_ones():
    with pytest.raises(ValueError, match=r"^filters\[1\]\.type: unknown filter type 'possession'") as excinfo:
        query_intervals_body([{"type": "scene"}, {"type": "possession"}])
    for known in FILTER_TYPES:
        assert known in str(excinfo.value)
    assert len(FILTER_TYPES) == 9


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        pytest.param({"operator": "XOR"}, "operator", id="operator"),
        pytest.param({"pad_sec": -1}, "pad_sec", id="pad-negative"),
        pytest.param({"merge_results": "yes"}, "merge_results", id="merge-not-bool"),
        pytest.param({"existing_filters": [{"start": 1}]}, r"existing_filters\[0\]", id="window-no-end"),
    ],
)
def test_query_options_are_validated(kwargs, field):
    with pytest.raises(ValueError, match=rf"^{field}"):
        query_intervals_body([{"type": "scene"}], **kwargs)


def test_query_body_sends_only_given_options():
    body = query_intervals_body([{"type": "team_possession", "teams": ["team_0"]}], operator="or", pad_sec=5)
    assert body == {"operator": "OR", "filters": [{"type": "team_possession", "teams": ["team_0"]}], "pad_sec": 5}
