"""The one status vocabulary of the AI on the Ball API, shared by hooks, sensors, triggers, operators and the simulator.

The videos page of the API documents six video statuses and the Create Analysis page six analysis
statuses. The docs' Quick Start also shows ``created`` for a new video, a value the status table does
not list. A client must therefore never crash on a status it does not know: :meth:`StatusVocabulary.classify`
treats any unknown value as *still in progress* and callers log it once (see :class:`UnknownStatusLogger`).

This module imports nothing outside the standard library so that it is cheap to import from DAG-parse
paths and from the simulator.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum


class VideoStatus(StrEnum):
    """Video processing statuses, exactly as documented on the API's Videos page."""

    INIT = "init"
    DOWNLOADING = "downloading"
    LOCALLY_AVAILABLE = "locally_available"
    AVAILABLE = "available"
    ERROR = "error"
    NO_MATCH_DETECTED = "no_match_detected"


class AnalysisStatus(StrEnum):
    """Analysis statuses, exactly as documented on the API's Create Analysis page."""

    INIT = "init"
    WAITING_FOR_VIDEO = "waiting_for_video"
    RUNNING = "running"
    AGGREGATING = "aggregating"
    DONE = "done"
    ERROR = "error"


class Outcome(StrEnum):
    """What a status means to someone waiting for it."""

    SUCCESS = "success"
    FAILED = "failed"
    IN_PROGRESS = "in_progress"


@dataclass(frozen=True)
class StatusVocabulary:
    """The statuses of one kind of resource, split into success, terminal failure and in progress.

    :param resource: the resource's name in messages, e.g. ``"video"``.
    :param success: statuses that end a wait successfully.
    :param failure: statuses that end a wait with a failure that waiting longer cannot fix.
    :param in_progress: documented statuses that mean "keep waiting".
    """

    resource: str
    success: frozenset[str]
    failure: frozenset[str]
    in_progress: frozenset[str]

    @property
    def known(self) -> frozenset[str]:
        return self.success | self.failure | self.in_progress

    def classify(self, status: str | None) -> Outcome:
        """Return the outcome of ``status``; unknown or missing values count as in progress."""
        if status in self.success:
            return Outcome.SUCCESS
        if status in self.failure:
            return Outcome.FAILED
        return Outcome.IN_PROGRESS

    def is_terminal(self, status: str | None) -> bool:
        """Return whether waiting longer cannot change the outcome of ``status``."""
        return self.classify(status) is not Outcome.IN_PROGRESS

    def is_known(self, status: str | None) -> bool:
        return status in self.known


VIDEO_STATUSES = StatusVocabulary(
    resource="video",
    success=frozenset({VideoStatus.AVAILABLE}),
    failure=frozenset({VideoStatus.ERROR, VideoStatus.NO_MATCH_DETECTED}),
    in_progress=frozenset({VideoStatus.INIT, VideoStatus.DOWNLOADING, VideoStatus.LOCALLY_AVAILABLE}),
)

ANALYSIS_STATUSES = StatusVocabulary(
    resource="analysis",
    success=frozenset({AnalysisStatus.DONE}),
    failure=frozenset({AnalysisStatus.ERROR}),
    in_progress=frozenset(
        {
            AnalysisStatus.INIT,
            AnalysisStatus.WAITING_FOR_VIDEO,
            AnalysisStatus.RUNNING,
            AnalysisStatus.AGGREGATING,
        }
    ),
)


#: Vocabulary by resource name, for code that only knows the name.
VOCABULARIES: dict[str, StatusVocabulary] = {"video": VIDEO_STATUSES, "analysis": ANALYSIS_STATUSES}


class UnknownStatusLogger:
    """Log each undocumented status once per waiter, instead of once per poll (or never)."""

    def __init__(self, vocabulary: StatusVocabulary, log: logging.Logger | logging.LoggerAdapter) -> None:
        self._vocabulary = vocabulary
        self._log = log
        self._seen: set[str] = set()

    def check(self, resource_id: object, status: str | None) -> None:
        if self._vocabulary.is_known(status):
            return
        key = repr(status)
        if key in self._seen:
            return
        self._seen.add(key)
        self._log.warning(
            "%s %s reports status %r, which the API documentation does not list; "
            "treating it as in progress (documented: %s).",
            self._vocabulary.resource,
            resource_id,
            status,
            ", ".join(sorted(self._vocabulary.known)),
        )
