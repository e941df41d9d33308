"""When to poll next: the polling schedules, pure and clock-injectable.

Used through :mod:`airflow_provider_aiontheball.waiting` by the triggers, sensors and operators, and
directly by the benchmarks, so a schedule measured there is the schedule that runs in production.
:class:`Jitter` spreads the polls of waits that started together. Nothing here sleeps or performs I/O.
See docs/internals.md, "Polling schedules and jitter".
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass, field

from airflow_provider_aiontheball.defaults import (
    DEFAULT_ANALYSIS_MIN_POLL_INTERVAL,
    DEFAULT_ANALYSIS_POLL_INTERVAL,
    DEFAULT_BACKOFF_FACTOR,
    DEFAULT_MIN_POLL_INTERVAL,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_POLL_JITTER,
    MAX_SPREAD_SECONDS,
)

#: The random source of every wait that was not given its own: unseeded, one per process (it spreads waits as
#: well as one per wait, for less memory), reseeded in a forked child (Celery's prefork workers) so siblings
#: do not jitter in step. See docs/internals.md, "Polling schedules and jitter".
_PROCESS_RNG = random.Random()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_PROCESS_RNG.seed)


def _process_rng() -> random.Random:
    return _PROCESS_RNG


@dataclass(frozen=True)
class Jitter:
    """Bounded, seedable randomness for polling, so waits started together do not poll together.

    * An interval ``d`` becomes ``d * U(1 - fraction, 1 + fraction)``, kept within the schedule's
      ``[floor, cap]`` (its ``min_interval`` and ``max_interval``: a user's "longest interval" stays the
      longest).
    * A wait the server asked to wait (``Retry-After``) waits ``d * U(1, 1 + fraction)``: longer, never
      shorter.
    * The first poll in the triggerer comes after ``U(0, min(first interval, max_spread))``: the deferring
      sensor poked on the worker just before, and its schedule would have polled again after the first
      interval anyway, so spreading the first poll over it never makes a wait later than its schedule;
      the bound keeps a wait with a long first interval from starting late by more than a minute.
    * Requests a shared pause held back (``hooks/_async_sessions.RequestBudget``) go out
      ``U(0, min(pause, max_spread))`` after it ends: spread over as long a window as they piled up in,
      they reach the server no faster than they came due, instead of all at the pause's last instant.

    :param fraction: relative jitter of each interval, in [0, 1). Default 0.1 (±10 %).
    :param max_spread: longest window in seconds of :meth:`spread` (first polls, resumption). Default 60.
    :param rng: the random source; give a seeded ``random.Random`` for a reproducible schedule. Default:
        the process's unseeded one (shared: see ``_PROCESS_RNG``).

    Frozen, so one instance (:data:`DEFAULT_JITTER`) serves every wait that was given none.
    """

    fraction: float = DEFAULT_POLL_JITTER
    max_spread: float = MAX_SPREAD_SECONDS
    rng: random.Random = field(default_factory=_process_rng, compare=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.fraction < 1.0:
            raise ValueError(f"jitter fraction must be in [0, 1), got {self.fraction!r}")
        if not self.max_spread >= 0.0:
            raise ValueError(f"max_spread must be >= 0, got {self.max_spread!r}")

    def interval(self, seconds: float, floor: float = 0.0, cap: float = math.inf) -> float:
        """``seconds`` scaled by ``U(1 - fraction, 1 + fraction)``, kept within ``[floor, cap]`` (but never
        moved further out than ``seconds`` itself already lies)."""
        scaled = seconds * (1.0 + self.fraction * (2.0 * self.rng.random() - 1.0))
        return min(max(scaled, min(floor, seconds)), max(cap, seconds))

    def lengthen(self, seconds: float) -> float:
        """``seconds`` made up to ``fraction`` longer, never shorter: for a wait the server asked for."""
        return seconds * (1.0 + self.fraction * self.rng.random())

    def spread(self, window: float) -> float:
        """``U(0, min(window, max_spread))``: when, within ``window``, one of many requests due together goes."""
        return self.rng.random() * max(0.0, min(window, self.max_spread))

    def first_poll(self, first_interval: float) -> float:
        """Seconds before a wait's first poll in the triggerer: :meth:`spread` over its first interval."""
        return self.spread(first_interval)


#: The jitter of every wait and request budget not given one: the defaults, the process's random source.
DEFAULT_JITTER = Jitter()


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
        if retry_after is not None:  # already bounded where it is parsed (hooks/_client.parse_retry_after)
            return retry_after
        return min(self.min_interval * (2 ** (self._failures - 1)), self.max_interval)


@dataclass
class ProgressSchedule:
    """Poll a long job near its expected finish, estimated from the rate its ``progress`` rises.

    The rate is measured from the first observation of the current progressing phase to the latest one
    (a long baseline averages out noise). The next poll comes after ``safety`` times the time the job needs
    to get within ``margin_points`` of 100 %, bounded by ``min_interval`` and ``max_interval``: far
    from the finish a few long sleeps, then geometrically shorter ones, then ``min_interval`` polls
    through the last points, where noise makes any estimate unreliable. That bounds the detection
    latency by ``min_interval`` whatever the noise, at a cost of a few dozen polls for hours of work.

    Without usable progress (not reported, flat, or a new phase that has not moved yet) it falls back to
    :class:`AdaptiveSchedule` capped at ``fallback_max_interval``. When the estimate says the job
    should be done but progress stopped rising (a long aggregation at 99 %), polls back off by
    ``factor`` from ``min_interval`` up to ``stalled_max_interval``.

    :param min_interval: shortest interval in seconds, used near the finish. Default 45.
    :param max_interval: longest interval in seconds, far from the finish. Default 1800.
    :param safety: fraction of the estimated remaining time to sleep. Default 0.5.
    :param margin_points: progress points below 100 treated as "finishing". Default 2.
    :param fallback_max_interval: cap of the interval without a usable estimate. Default 300.
    :param factor: growth per unchanged poll without an estimate, or while stalled. Default 1.5.
    :param stalled_max_interval: cap of the interval while progress has stopped short of the finish
        (a long aggregation at 99 %), which keeps detection within a minute there too. Default 60.
    """

    min_interval: float = DEFAULT_ANALYSIS_MIN_POLL_INTERVAL
    max_interval: float = DEFAULT_ANALYSIS_POLL_INTERVAL
    safety: float = 0.5
    margin_points: float = 2.0
    fallback_max_interval: float = 300.0
    factor: float = DEFAULT_BACKOFF_FACTOR
    stalled_max_interval: float = 60.0
    #: A drop of more than this many points means the job restarted: measure the rate afresh.
    restart_drop_points: float = 10.0
    _fallback: AdaptiveSchedule = field(init=False)
    _baseline: tuple[float, float] | None = field(default=None, init=False)
    _last: tuple[float, float] | None = field(default=None, init=False)
    _state: object = field(default=None, init=False)
    _stalled_polls: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.min_interval = min(self.min_interval, self.max_interval)
        self._fallback = AdaptiveSchedule(
            min_interval=self.min_interval,
            max_interval=max(self.min_interval, min(self.fallback_max_interval, self.max_interval)),
            factor=self.factor,
        )

    def _rate(self) -> float | None:
        if self._baseline is None or self._last is None:
            return None
        (t0, p0), (t1, p1) = self._baseline, self._last
        if t1 <= t0 or p1 <= p0:
            return None
        return (p1 - p0) / (t1 - t0)

    def eta_seconds(self) -> float | None:
        """Estimated seconds until progress reaches 100 at the rate seen so far, if it can be told."""
        rate = self._rate()
        if rate is None or self._last is None:
            return None
        return max(0.0, (100.0 - self._last[1]) / rate)

    def after_observation(self, state: object, progress: float | None, now: float) -> float:
        """Seconds until the next poll after seeing ``state`` with ``progress`` (0-100) at ``now``."""
        previous = self._last[1] if self._last is not None else None
        if state != self._state:
            # A phase in which progress never moved (init, waiting) says nothing about the rate of
            # the next one; a phase in which it rose (running → aggregating) keeps its baseline.
            if self._baseline is not None and previous is not None and previous <= self._baseline[1]:
                self._baseline = None
            self._state = state
        if progress is not None and math.isfinite(progress):
            if self._baseline is None or (previous is not None and progress < previous - self.restart_drop_points):
                self._baseline = (now, progress)
            self._last = (now, progress)
        rate = self._rate()
        if rate is None or self._last is None:
            self._stalled_polls = 0
            return self._fallback.after_observation(state)
        self._fallback.after_observation(state)  # keep its notion of "changed" current
        finishing_in = max(0.0, (100.0 - self.margin_points - self._last[1]) / rate)
        interval = finishing_in * self.safety
        if interval > self.min_interval:
            self._stalled_polls = 0
            return min(self.max_interval, interval)
        # Finishing: poll at the minimum, unless progress stopped rising for a while.
        rising = progress is not None and previous is not None and progress > previous
        self._stalled_polls = 0 if rising else self._stalled_polls + 1
        stalled_steps = max(0, self._stalled_polls - 2)
        cap = max(self.min_interval, self.stalled_max_interval)
        return min(cap, self.min_interval * self.factor**stalled_steps)

    def after_failure(self, retry_after: float | None = None) -> float:
        return self._fallback.after_failure(retry_after)


def format_duration(seconds: float) -> str:
    """``3725`` → ``"1h 2m"``, ``42.4`` → ``"42 s"``, ``125`` → ``"2m 5s"``: for people, not machines
    (log lines of the waits, pre-flight's messages)."""
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
