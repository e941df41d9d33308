"""``POST /analyses/{id}/query-intervals``: validation of the query and the intervals engine."""

from __future__ import annotations

import bisect
import math
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from airflow_provider_aiontheball.testing.simulator.config import DEFAULT_FPS, FILTER_TYPES
from airflow_provider_aiontheball.testing.simulator.match import _TEAM_KEYS, _Event, _Match, _seconds
from airflow_provider_aiontheball.testing.simulator.validation import _attr, _Errors, _is_int, _is_number

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
