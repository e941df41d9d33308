"""When to poll next, and how long to tolerate failures: pure, clock-injectable pieces.

Used by the triggers (in the triggerer's event loop), by the operators' non-deferrable waits and by
the benchmarks' virtual-clock simulations, so a schedule measured in the benchmarks is the schedule
that runs in production. Nothing here sleeps or performs I/O.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

#: Default first (and post-change) interval of the adaptive schedule, in seconds.
DEFAULT_MIN_POLL_INTERVAL = 5.0
#: Default cap of the adaptive schedule (the sensor's ``poke_interval`` when it defers).
DEFAULT_POLL_INTERVAL = 60.0
#: Growth of the interval per poll that sees no change.
DEFAULT_BACKOFF_FACTOR = 1.5
#: Transient failures in a row a wait tolerates before giving up.
DEFAULT_MAX_CONSECUTIVE_ERRORS = 10
#: Seconds of uninterrupted transient failures a wait tolerates before giving up.
DEFAULT_ERROR_BUDGET_SECONDS = 900.0


def format_duration(seconds: float) -> str:
    """``3725`` → ``"1h 2m"``, ``42.4`` → ``"42 s"``, ``125`` → ``"2m 5s"``: for people, not machines."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs}s" if secs else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"


@dataclass
class AdaptiveSchedule:
    """Poll soon after a change, then back off while nothing changes.

    The first interval after a new status is ``min_interval``; each poll that sees the same status
    multiplies it by ``factor``, up to ``max_interval``. Failures back off exponentially from
    ``min_interval`` (a server's ``Retry-After`` wins over both).

    :param min_interval: seconds after a change (and after the first failure). Default 5.
    :param max_interval: cap in seconds (the sensor's poke interval). Default 60.
    :param factor: growth per unchanged poll. Default 1.5.
    """

    min_interval: float = DEFAULT_MIN_POLL_INTERVAL
    max_interval: float = DEFAULT_POLL_INTERVAL
    factor: float = DEFAULT_BACKOFF_FACTOR
    _current: float = field(default=0.0, init=False)
    _last_state: object = field(default=None, init=False)
    _failures: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.min_interval <= 0 or self.max_interval <= 0:
            raise ValueError("poll intervals must be positive")
        self.min_interval = min(self.min_interval, self.max_interval)
        self._current = self.min_interval

    def after_observation(self, state: object, now: float | None = None) -> float:
        """Seconds until the next poll after observing ``state`` (e.g. the status)."""
        self._failures = 0
        if state != self._last_state:
            self._last_state = state
            self._current = self.min_interval
        else:
            self._current = min(self._current * self.factor, self.max_interval)
        return self._current

    def after_failure(self, retry_after: float | None = None) -> float:
        """Seconds until the next poll after a transient failure."""
        self._failures += 1
        if retry_after is not None:
            return max(retry_after, 0.0)
        return min(self.min_interval * (2 ** (self._failures - 1)), self.max_interval)


@dataclass
class ErrorBudget:
    """How many transient failures in a row a wait tolerates: a count and a duration, both configurable.

    :param max_consecutive: failures in a row after which the budget is spent. Default 10.
    :param max_seconds: seconds since the first failure of the current streak after which it is spent.
        Default 900.
    :param clock: monotonic clock, injectable for tests.
    """

    max_consecutive: int = DEFAULT_MAX_CONSECUTIVE_ERRORS
    max_seconds: float = DEFAULT_ERROR_BUDGET_SECONDS
    clock: Callable[[], float] = time.monotonic
    consecutive: int = field(default=0, init=False)
    _streak_started: float | None = field(default=None, init=False)
    last_reason: str = field(default="", init=False)

    def record_success(self) -> None:
        self.consecutive = 0
        self._streak_started = None

    def record_failure(self, reason: str) -> bool:
        """Count one failure; return ``True`` when the budget is now spent."""
        now = self.clock()
        if self._streak_started is None:
            self._streak_started = now
        self.consecutive += 1
        self.last_reason = reason
        return self.consecutive >= self.max_consecutive or now - self._streak_started >= self.max_seconds

    def describe(self) -> str:
        elapsed = 0.0 if self._streak_started is None else self.clock() - self._streak_started
        return f"{self.consecutive} failure(s) in a row over {format_duration(elapsed)}; last: {self.last_reason}"


@dataclass
class ProgressSchedule:
    """Poll a long job near its expected finish, estimated from the rate its ``progress`` rises.

    With two or more observations of a rising progress (0-100), the time left is estimated as
    ``(100 - progress) / rate``; the next poll is a ``safety`` fraction of that (so an estimate that
    is too optimistic is corrected by the following poll), bounded by ``min_interval`` and
    ``max_interval``. Without usable progress it behaves like :class:`AdaptiveSchedule`.

    :param min_interval: shortest interval in seconds (near the finish). Default 30.
    :param max_interval: longest interval in seconds (far from the finish). Default 1800.
    :param safety: fraction of the estimated time left to wait. Default 0.5.
    :param fallback: the schedule used while progress says nothing.
    """

    min_interval: float = 30.0
    max_interval: float = 1800.0
    safety: float = 0.5
    fallback: AdaptiveSchedule = field(default_factory=AdaptiveSchedule)
    _first: tuple[float, float] | None = field(default=None, init=False)
    _last: tuple[float, float] | None = field(default=None, init=False)
    _state: object = field(default=None, init=False)

    def eta_seconds(self) -> float | None:
        """Estimated seconds until progress reaches 100 at the rate seen so far, if it can be told."""
        if self._first is None or self._last is None:
            return None
        (t0, p0), (t1, p1) = self._first, self._last
        if t1 <= t0 or p1 <= p0:
            return None
        rate = (p1 - p0) / (t1 - t0)
        return max(0.0, (100.0 - p1) / rate)

    def after_observation(self, state: object, progress: float | None, now: float) -> float:
        """Seconds until the next poll after seeing ``state`` with ``progress`` at ``now``."""
        if state != self._state:
            # A new phase (e.g. waiting_for_video → running) starts a new rate estimate.
            self._state = state
            self._first = None
        if progress is not None and math.isfinite(progress):
            if self._first is None or (self._last is not None and progress < self._last[1]):
                self._first = (now, progress)
            self._last = (now, progress)
        eta = self.eta_seconds()
        if eta is None:
            return self.fallback.after_observation(state)
        self.fallback.after_observation(state)  # keep its notion of "changed" current
        return min(self.max_interval, max(self.min_interval, eta * self.safety))

    def after_failure(self, retry_after: float | None = None) -> float:
        return self.fallback.after_failure(retry_after)
