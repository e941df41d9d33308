"""Deterministic match data of the results endpoints: events, summary, schema and the tracking sample."""

from __future__ import annotations

import base64
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from airflow_provider_aiontheball.testing.simulator.config import (
    ALGORITHM_VERSION,
    DEFAULT_DURATION_SECONDS,
    DEFAULT_FPS,
)
from airflow_provider_aiontheball.testing.simulator.state import _Analysis, _Video

_FRAME_SECONDS: Final = 1 / DEFAULT_FPS

# --------------------------------------------------------------------------------------------------
# Deterministic match data: events, summary, schema (the query engine is in query.py), tracking sample
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
