"""Event trigger for ``AssetWatcher``: one event per analysis of the organisation that finishes.

Its classpath and kwargs are stored in users' trigger rows, and its cursor in Airflow's asset state store
under :data:`STATE_KEY_ANALYSIS_DONE`: only add kwargs with defaults, never rename or move the class or
the key, never change the cursor's format without reading the old one.

How it watches (one listing per interval, which analyses fire, at least once, never ending by itself):
see docs/internals.md, "Watching for finished analyses"; docs/event-driven.md is the user's view.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.triggers.base import TriggerEvent

from airflow_provider_aiontheball.defaults import (
    CURSOR_LOAD_ATTEMPTS,
    CURSOR_VERSION,
    DEFAULT_CONN_ID,
    DEFAULT_ERROR_BUDGET_SECONDS,
    DEFAULT_MAX_CONSECUTIVE_ERRORS,
    DEFAULT_MIN_POLL_INTERVAL,
    DEFAULT_WATCH_POLL_INTERVAL,
    MIN_WATCH_POLL_INTERVAL,
    STATE_KEY_ANALYSIS_DONE,
)
from airflow_provider_aiontheball.statuses import ANALYSIS_STATUSES, AnalysisStatus, UnknownStatusLogger
from airflow_provider_aiontheball.validation import validate_id

if TYPE_CHECKING:
    from airflow_provider_aiontheball.polling import Jitter

try:  # Airflow 3.0+: the base class AssetWatcher accepts
    from airflow.triggers.base import BaseEventTrigger as _EventTriggerBase  # type: ignore[attr-defined]

    HAS_EVENT_TRIGGER = True
except ImportError:  # Airflow 2: the module still imports; constructing the trigger says what is needed
    from airflow.triggers.base import BaseTrigger as _EventTriggerBase  # type: ignore[assignment]

    HAS_EVENT_TRIGGER = False

__all__ = [
    "DEFAULT_WATCH_POLL_INTERVAL",
    "MIN_WATCH_POLL_INTERVAL",
    "STATE_KEY_ANALYSIS_DONE",
    "AIOnTheBallAnalysisDoneTrigger",
    "CompletionTracker",
]

CLASSPATH = "airflow_provider_aiontheball.triggers.analysis_done.AIOnTheBallAnalysisDoneTrigger"
#: The statuses an event can be asked for: the terminal ones of the documented vocabulary.
TERMINAL_STATUSES: frozenset[str] = ANALYSIS_STATUSES.success | ANALYSIS_STATUSES.failure

#: Where the shared poll (one per group, no trigger instance) logs; a standalone watcher logs to its own log.
log = logging.getLogger(__name__)

# The documented fields of a ``GET /videos`` item that an event carries (never a URL: a video's source
# URL may be presigned, and the list does not document one anyway).
_VIDEO_FIELDS = ("game_name", "title", "home_team_name", "away_team_name")


def _airflow_version() -> str:
    try:
        from airflow import __version__

        return str(__version__)
    except ImportError:  # pragma: no cover - Airflow is a dependency
        return "unknown"


def _poll_interval(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"poll_interval must be a number of seconds, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < MIN_WATCH_POLL_INTERVAL:
        raise ValueError(
            f"poll_interval must be at least {MIN_WATCH_POLL_INTERVAL:g} seconds (each interval lists every "
            f"page of the organisation's videos), got {value!r}"
        )
    return number


def _statuses(value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    allowed = ", ".join(repr(s) for s in sorted(TERMINAL_STATUSES))
    if not isinstance(items, Iterable) or isinstance(items, Mapping):
        raise ValueError(f"statuses must be a sequence of analysis statuses out of {allowed}, got {value!r}")
    chosen = list(items)
    unknown = [s for s in chosen if s not in TERMINAL_STATUSES]
    if unknown or not chosen:
        raise ValueError(
            f"statuses must be a non-empty sequence of terminal analysis statuses out of {allowed}, got {value!r}"
        )
    return tuple(sorted({str(s) for s in chosen}))


# -- which analyses fire: pure logic, no I/O ---------------------------------------------------------------


@dataclass
class CompletionTracker:
    """Which analyses of the listings a watcher already handled, and which fire now.

    ``handled`` holds the ids of analyses seen in a terminal status (``done`` or ``error``, fired or not):
    each fires at most once, at the first listing that shows it terminal. ``None`` until the first
    listing, the baseline. Ids of analyses that left the listing (video deleted) are dropped after one
    listing without them, which keeps the set as large as the organisation's finished analyses and no
    larger, while a listing that skipped an item once (a page shifted under a concurrent change) does not
    make it fire again.

    :param statuses: the terminal statuses that fire.
    :param emit_existing: whether the baseline fires the analyses already terminal. Default ``False``.
    """

    statuses: frozenset[str]
    emit_existing: bool = False
    handled: set[int] | None = None
    _listed: set[int] = field(default_factory=set)

    def observe(self, analyses: Iterable[Mapping[str, Any]]) -> tuple[list[Mapping[str, Any]], set[int]]:
        """Take one whole listing (entries with ``analysis_id`` and ``status``).

        :return: the entries that fire, by id; and the *durable* set to store: ``handled`` without the
            ids firing now, so that a crash before their events are stored repeats them, never loses them.
        """
        entries = list(analyses)
        listed = {entry["analysis_id"] for entry in entries}
        terminal = {entry["analysis_id"] for entry in entries if ANALYSIS_STATUSES.is_terminal(entry["status"])}
        if self.handled is None:
            new = terminal if self.emit_existing else set()
            kept: set[int] = set()
        else:
            new = terminal - self.handled
            kept = self.handled & (self._listed - listed)  # handled, listed last time, missing this once
        firing = sorted(
            (entry for entry in entries if entry["analysis_id"] in new and entry["status"] in self.statuses),
            key=lambda entry: entry["analysis_id"],
        )
        self.handled = terminal | kept
        self._listed = listed
        return firing, self.handled - {entry["analysis_id"] for entry in firing}


# -- the durable cursor (Airflow 3.3's asset state store) -------------------------------------------------


def cursor_key(conn_id: str, statuses: Iterable[str]) -> str:
    """The cursor's key in the watched asset's state store.

    Per connection and statuses: two watchers of one asset that ask for different statuses keep separate
    cursors (each writes when it has handled a listing, and must not advance the other). The poll
    interval is not part of it, so tuning it keeps the cursor.
    """
    return f"{STATE_KEY_ANALYSIS_DONE}:{conn_id}:{'+'.join(sorted(statuses))}"


class DurableCursor:
    """The handled ids in the watched assets' state store, when the triggerer gave the trigger one.

    Airflow 3.3 hands every ``BaseEventTrigger`` that watches assets an ``AssetStateStoreAccessors``
    (``asset_state_store``), whose ``aget``/``aset`` go through the triggerer's supervisor without
    blocking the loop. One trigger row serves every asset whose watcher has the same kwargs, so the cursor
    is written to each watched asset and read back as the intersection (an id missing from one copy fires
    again: a repeat, never a loss).

    Stored value: ``{"version": 1, "handled": [1247, 1250, ...]}``, about 6 bytes per finished analysis of
    the organisation (Airflow warns above ``[state_store] max_value_storage_bytes``, 64 KB by default,
    i.e. roughly 9,000 finished analyses, and still stores it).
    """

    def __init__(self, store: Any, key: str) -> None:
        self.key = key
        self._accessors = self._accessors_of(store)

    @staticmethod
    def _accessors_of(store: Any) -> list[Any]:
        if store is None:
            return []
        # The accessors' own single-asset shortcuts refuse a trigger that watches several assets; reach
        # each asset's accessor then (Airflow 3.3 keeps them by name and by URI).
        by_name, by_uri = getattr(store, "_by_name", None), getattr(store, "_by_uri", None)
        if isinstance(by_name, dict) and isinstance(by_uri, dict) and len(by_name) + len(by_uri) > 1:
            return [*by_name.values(), *by_uri.values()]
        return [store]

    @property
    def available(self) -> bool:
        return bool(self._accessors)

    def disable(self) -> None:
        self._accessors = []

    async def load(self) -> set[int] | None:
        """The stored handled ids, or ``None`` when none is stored (or what is stored is unreadable)."""
        stored: list[set[int]] = []
        for accessor in self._accessors:
            value = await accessor.aget(self.key, None)
            if value is None:
                continue
            ids = self.parse(value)
            if ids is None:
                log.warning("ignoring the unreadable analysis-done cursor %r stored under %r", value, self.key)
                continue
            stored.append(ids)
        return set.intersection(*stored) if stored else None

    @staticmethod
    def parse(value: Any) -> set[int] | None:
        if not isinstance(value, Mapping) or value.get("version") != CURSOR_VERSION:
            return None
        handled = value.get("handled")
        if not isinstance(handled, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in handled):
            return None
        return set(handled)

    @staticmethod
    def dump(ids: Iterable[int]) -> dict[str, Any]:
        return {"version": CURSOR_VERSION, "handled": sorted(ids)}

    async def save(self, ids: set[int]) -> None:
        value = self.dump(ids)
        for accessor in self._accessors:
            await accessor.aset(self.key, value)


# -- the listing: one per interval, shared on Airflow 3.3 --------------------------------------------------


async def _list_analyses(conn_id: str, unknown: UnknownStatusLogger) -> dict[str, Any]:
    """One whole listing as a snapshot: ``{"observed_at", "videos", "analyses": [event payloads by id]}``."""
    # Imported here, not with the module: DAG files import this module to build their AssetWatcher.
    from airflow_provider_aiontheball.assets import analysis_uri, host_of
    from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallAsyncHook
    from airflow_provider_aiontheball.waiting import utc_timestamp

    # A hook per listing: a changed connection (token, base URL) is picked up within the shared settings'
    # minute; retries happen between listings, within the error budget, not inside one.
    async with AIOnTheBallAsyncHook(conn_id, retry_limit=0) as hook:
        videos = await hook.list_videos()
        host = host_of((await hook.get_settings()).base_url)
    observed_at = utc_timestamp(time.time())
    analyses: dict[int, dict[str, Any]] = {}
    for video in videos:
        video_id = validate_id(video.get("id"), strict=False)
        entries = video.get("analyses")
        if video_id is None or not isinstance(entries, list):
            continue
        for entry in entries:
            analysis_id = validate_id(entry.get("id"), strict=False) if isinstance(entry, Mapping) else None
            if analysis_id is None:
                continue
            raw = entry.get("status")
            status = None if raw is None else str(raw)
            unknown.check(analysis_id, status)
            analyses[analysis_id] = {
                "analysis_id": analysis_id,
                "video_id": video_id,
                "status": status,
                **{name: video.get(name) for name in _VIDEO_FIELDS},
                "observed_at": observed_at,
                "analysis_uri": analysis_uri(analysis_id, host=host),
            }
    return {"observed_at": observed_at, "videos": len(videos), "analyses": [analyses[i] for i in sorted(analyses)]}


async def poll_analyses(
    conn_id: str,
    poll_interval: float,
    *,
    logger: Any,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    jitter: Jitter | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """Yield one snapshot per successful listing, forever: the first at once, then every ``poll_interval``
    (±10 %). Failures are logged and retried (docs/internals.md, "Watching for finished analyses"); only
    cancellation ends it.

    :param jitter: spreads the intervals. Default: the provider's (±10 %, unseeded).
    """
    from airflow_provider_aiontheball.exceptions import AIOnTheBallError, describe_failure
    from airflow_provider_aiontheball.polling import DEFAULT_JITTER, AdaptiveSchedule
    from airflow_provider_aiontheball.waiting import ErrorBudget, format_duration, is_transient

    jitter = jitter or DEFAULT_JITTER
    budget = ErrorBudget(DEFAULT_MAX_CONSECUTIVE_ERRORS, DEFAULT_ERROR_BUDGET_SECONDS)
    backoff = AdaptiveSchedule(min_interval=min(DEFAULT_MIN_POLL_INTERVAL, poll_interval), max_interval=poll_interval)
    unknown = UnknownStatusLogger(ANALYSIS_STATUSES, logger)
    spent_reported = False
    while True:
        try:
            snapshot = await _list_analyses(conn_id, unknown)
        except Exception as exc:  # CancelledError is not an Exception: it propagates
            reason = describe_failure(exc)
            if is_transient(exc):
                spent = budget.record_failure(reason)
                retry_after = getattr(exc, "retry_after", None)
                delay = backoff.after_failure(retry_after)
                delay = jitter.lengthen(delay) if retry_after is not None else jitter.interval(delay)
                if spent and not spent_reported:
                    spent_reported = True
                    logger.error(
                        "analysis-done watcher on connection %r: listing the videos keeps failing (%s); no "
                        "completion is noticed until it works again. Still trying every %s.",
                        conn_id,
                        budget.describe(),
                        format_duration(poll_interval),
                    )
                elif not spent:
                    logger.warning(
                        "analysis-done watcher on connection %r: listing the videos failed with %s (%d in a "
                        "row); next try in %s",
                        conn_id,
                        reason,
                        budget.consecutive,
                        format_duration(delay),
                    )
            else:
                # A refused token, a missing or broken connection, an answer we cannot use: waiting does not
                # fix it, a fixed connection does. Not ending: Airflow would restart the watcher at once.
                budget.record_failure(reason)
                delay = jitter.interval(poll_interval)
                logger.error(
                    "analysis-done watcher on connection %r cannot list the videos: %s. No completion is "
                    "noticed until this is fixed; trying again in %s.",
                    conn_id,
                    reason if isinstance(exc, AIOnTheBallError) else f"{type(exc).__name__}: {exc}",
                    format_duration(delay),
                )
            await sleep(delay)
            continue
        if budget.consecutive:
            logger.info(
                "analysis-done watcher on connection %r: listing works again after %d failure(s)",
                conn_id,
                budget.consecutive,
            )
        budget.record_success()
        spent_reported = False
        logger.debug(
            "analysis-done watcher on connection %r: %d analyses on %d videos",
            conn_id,
            len(snapshot["analyses"]),
            snapshot["videos"],
        )
        yield snapshot
        await sleep(jitter.interval(poll_interval))


# -- the trigger -------------------------------------------------------------------------------------------


class AIOnTheBallAnalysisDoneTrigger(_EventTriggerBase):
    """Fire an event each time an analysis of the organisation finishes: for ``AssetWatcher`` (Airflow 3).

    ::

        from airflow.sdk import Asset, AssetWatcher
        from airflow_provider_aiontheball.assets import analyses_uri

        analyses = Asset(
            uri=analyses_uri(),  # the host of the connection's base URL, if not aiontheball.nl: host_of(...)
            name="aiontheball_analyses",
            watchers=[AssetWatcher(name="aib_analysis_done", trigger=AIOnTheBallAnalysisDoneTrigger())],
        )

    Each event's payload (Airflow puts it in the asset event's ``extra["payload"]``)::

        {"analysis_id": 1247, "video_id": 790, "status": "done", "game_name": "...", "title": "...",
         "home_team_name": "...", "away_team_name": "...", "observed_at": "2026-12-02T15:04:05Z",
         "analysis_uri": "aiontheball://aiontheball.nl/analyses/1247"}

    Delivery is at least once: de-duplicate by ``analysis_id``. Semantics, cost and restart behaviour per
    Airflow version: see docs/internals.md, "Watching for finished analyses".

    :param aiontheball_conn_id: Airflow connection id. Default ``aiontheball_default``.
    :param poll_interval: seconds between two listings (each lists every page of ``GET /videos``), at least
        5. Default 60.
    :param statuses: the terminal analysis statuses that fire, out of ``"done"`` and ``"error"``.
        Default ``("done",)``.
    :param emit_existing: whether the first listing without a stored cursor fires the analyses that are
        already finished (every one of the organisation). Default ``False``: only analyses that finish
        after the watcher started.
    :raises AIOnTheBallConfigurationError: on Airflow 2, which has no event triggers.
    :raises ValueError: a ``poll_interval`` or ``statuses`` out of range, naming the argument.
    """

    #: How the watcher waits between listings. A seam for tests (which drive the listings one at a time);
    #: the triggerer always uses ``asyncio.sleep``.
    _sleep: ClassVar[Callable[[float], Awaitable[Any]]] = staticmethod(asyncio.sleep)

    def __init__(
        self,
        *,
        aiontheball_conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float = DEFAULT_WATCH_POLL_INTERVAL,
        statuses: Iterable[str] = (AnalysisStatus.DONE.value,),
        emit_existing: bool = False,
    ) -> None:
        if not HAS_EVENT_TRIGGER:
            from airflow_provider_aiontheball.exceptions import AIOnTheBallConfigurationError

            raise AIOnTheBallConfigurationError(
                "AIOnTheBallAnalysisDoneTrigger is an event trigger for AssetWatcher, which needs Airflow 3.0 or "
                f"later (durable cursor and shared polling: 3.3); this is Airflow {_airflow_version()}. On "
                "Airflow 2 wait for one analysis with AIOnTheBallAnalysisSensor instead."
            )
        super().__init__()
        if not isinstance(aiontheball_conn_id, str) or not aiontheball_conn_id:
            raise ValueError(f"aiontheball_conn_id must be a non-empty string, got {aiontheball_conn_id!r}")
        if not isinstance(emit_existing, bool):
            raise ValueError(f"emit_existing must be True or False, got {emit_existing!r}")
        self.aiontheball_conn_id = aiontheball_conn_id
        self.poll_interval = _poll_interval(poll_interval)
        self.statuses = _statuses(statuses)
        self.emit_existing = emit_existing

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """The connection id and the settings (JSON-native: a list, not a tuple); never a secret."""
        return (
            CLASSPATH,
            {
                "aiontheball_conn_id": self.aiontheball_conn_id,
                "poll_interval": self.poll_interval,
                "statuses": list(self.statuses),
                "emit_existing": self.emit_existing,
            },
        )

    def __repr__(self) -> str:
        return (
            f"AIOnTheBallAnalysisDoneTrigger(aiontheball_conn_id={self.aiontheball_conn_id!r}, "
            f"poll_interval={self.poll_interval:g}, statuses={list(self.statuses)!r})"
        )

    # -- Airflow 3.3: one listing per connection and interval, however many watchers -------------------

    def shared_stream_key(self) -> Hashable | None:
        """Watchers with the same connection id and ``poll_interval`` share one listing (Airflow 3.3+)."""
        return ("aiontheball-analyses", self.aiontheball_conn_id, self.poll_interval)

    @classmethod
    async def open_shared_stream(cls, kwargs: dict[str, Any]) -> AsyncIterator[Any]:
        """The shared listing of a group: one snapshot per listing, forever (uses only the key's fields)."""
        async for snapshot in poll_analyses(
            kwargs.get("aiontheball_conn_id", DEFAULT_CONN_ID),
            _poll_interval(kwargs.get("poll_interval", DEFAULT_WATCH_POLL_INTERVAL)),
            logger=log,
            sleep=cls._sleep,
        ):
            yield snapshot

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        """This watcher's events from the listings: its own statuses, baseline and durable cursor."""
        tracker = CompletionTracker(frozenset(self.statuses), self.emit_existing)
        cursor = DurableCursor(
            getattr(self, "asset_state_store", None), cursor_key(self.aiontheball_conn_id, self.statuses)
        )
        if not cursor.available:
            self.log.info(
                "analysis-done watcher on connection %r: no asset state store (Airflow %s, or no watched asset); "
                "the cursor is kept in memory and a restart takes a new baseline",
                self.aiontheball_conn_id,
                _airflow_version(),
            )
        loaded = not cursor.available
        load_failures = 0
        stored: set[int] | None = None
        async for snapshot in shared_stream:
            if not loaded:
                try:
                    tracker.handled = await cursor.load()
                except Exception as exc:
                    load_failures += 1
                    if load_failures < CURSOR_LOAD_ATTEMPTS:
                        self.log.warning("could not read the analysis-done cursor (%s); trying again next listing", exc)
                        continue  # no event before the cursor is known: later, not lost
                    self.log.error(
                        "could not read the analysis-done cursor %d times (%s); going on without it: this "
                        "listing is a new baseline and a restart takes another",
                        load_failures,
                        exc,
                    )
                    cursor.disable()
                loaded = True
                stored = None if tracker.handled is None else set(tracker.handled)
                if tracker.handled is not None:
                    self.log.info(
                        "analysis-done watcher on connection %r resumes from its stored cursor (%d analyses handled)",
                        self.aiontheball_conn_id,
                        len(tracker.handled),
                    )
            baseline = tracker.handled is None
            firing, durable = tracker.observe(snapshot["analyses"])
            if baseline:
                self.log.info(
                    "analysis-done watcher on connection %r: baseline of %d analyses, %d already finished (%s)",
                    self.aiontheball_conn_id,
                    len(snapshot["analyses"]),
                    len(tracker.handled or ()),
                    "fired: emit_existing" if self.emit_existing else "not fired",
                )
            if cursor.available and durable != stored:
                try:
                    await cursor.save(durable)
                    stored = durable
                except Exception as exc:  # the memory cursor still de-duplicates; written at the next change
                    self.log.warning("could not store the analysis-done cursor (%s); trying again next listing", exc)
            for entry in firing:
                self.log.info(
                    "analysis %s of video %s is %s: firing", entry["analysis_id"], entry["video_id"], entry["status"]
                )
                yield TriggerEvent(dict(entry))  # a copy: on Airflow 3.3 the snapshot is shared

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """A watcher's own listing (Airflow 3.0-3.2, or a triggerer that does not share streams)."""
        snapshots = poll_analyses(
            self.aiontheball_conn_id, self.poll_interval, logger=self.log, sleep=type(self)._sleep
        )
        async for event in self.filter_shared_stream(snapshots):
            yield event
