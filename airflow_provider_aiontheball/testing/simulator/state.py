"""Internal state of the simulator: videos, analyses, status timelines and small helpers."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from airflow_provider_aiontheball.statuses import VideoStatus
from airflow_provider_aiontheball.testing.simulator.config import ANALYSIS_OUTCOMES, VIDEO_OUTCOMES

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
    #: answers to ``GET /videos/{id}`` so far (``video_ready_after_gets``)
    gets: int = 0
    #: the status was forced (``set_video_status``): it is shown as set, never held back
    forced: bool = False

    def status_at(self, now: float) -> str:
        status = self.schedule[0][1]
        for start, value in self.schedule:
            if start > now:
                break
            status = value
        return status

    def hold_final_status(self, now: float) -> None:
        """Keep the final status of the timeline strictly after ``now`` (``video_ready_after_gets``):
        moving the schedule, not masking a status, keeps the analyses' timelines (which start when
        their video is available) consistent with what the video reports."""
        if self.forced or self.outcome == "stuck" or len(self.schedule) < 2:
            return  # a forced status shows as set; a stuck video has no final status to hold back
        start, final = self.schedule[-1]
        if start <= now:
            self.schedule[-1] = (now + 1e-6, final)

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
