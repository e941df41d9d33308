"""The simulator's state, clock, helper methods and JSON views (the base of :class:`Simulator`)."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Final

from aiohttp import web

from airflow_provider_aiontheball.statuses import AnalysisStatus, VideoStatus
from airflow_provider_aiontheball.testing.simulator.config import (
    ALGORITHM_VERSION,
    DEFAULT_DURATION_SECONDS,
    MP4_SOURCE_TEMPLATE,
    Fault,
    RequestRecord,
    SimulatorConfig,
)
from airflow_provider_aiontheball.testing.simulator.match import _build_match, _Match
from airflow_provider_aiontheball.testing.simulator.state import (
    _FAILED_VIDEO_STATUSES,
    _Analysis,
    _AnalysisState,
    _ApiError,
    _check_analysis_outcome,
    _check_video_outcome,
    _number,
    _running_progress,
    _Video,
)
from airflow_provider_aiontheball.testing.simulator.validation import _is_number

#: The simulator's logger (the package's name, as when the simulator was one module).
log = logging.getLogger(__package__)

_WEBHOOK_KEY: Final = web.AppKey("aib_webhook_tasks", list)
_ORG_KEY: Final = web.RequestKey("aib_org", str)
_BODY_KEY: Final = web.RequestKey("aib_body", object)
#: Set on a request a ``truncate`` fault applies to: a streaming handler sends half its body (see ``_write_body``).
_TRUNCATE_KEY: Final = web.RequestKey("aib_truncate", bool)


class _SimulatorCore:
    """State, clock, helper methods and JSON views of :class:`Simulator`, which adds the request handlers."""

    def __init__(self, config: SimulatorConfig | None = None, *, clock: Callable[[], float] | None = None) -> None:
        self.config = config or SimulatorConfig()
        self._clock = clock or time.monotonic
        self._offset = 0.0
        self._lock = threading.Lock()
        self._connections_opened = 0
        self._connections_open = 0
        self._connections_without_nodelay = 0
        self._reset_state()

    def _reset_state(self) -> None:
        with self._lock:
            self._videos: dict[int, _Video] = {}
            self._org_videos: dict[str, list[int]] = {}
            self._analyses: dict[int, _Analysis] = {}
            self._game_names: set[str] = set()
            self._next_video_id = self.config.first_video_id
            self._next_analysis_id = self.config.first_analysis_id
            self._faults: list[Fault] = []
            self._video_script: deque[str] = deque()
            self._analysis_script: deque[tuple[str, float]] = deque()
            self._log: deque[RequestRecord] = deque(maxlen=max(self.config.request_log_limit, 1))
            self._match_cache: dict[tuple[Any, ...], _Match] = {}
            self._request_count = 0
            self._webhooks_sent = 0
            self._webhooks_failed = 0

    # ---- clock ---------------------------------------------------------------------------------

    def now(self) -> float:
        """The simulator clock: ``clock()`` plus everything :meth:`advance` added."""
        return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the simulator clock forward by ``seconds`` (deterministic tests, no sleeping)."""
        if not _is_number(seconds) or seconds < 0:
            raise ValueError(f"seconds must be a non-negative number, got {seconds!r}")
        self._offset += float(seconds)

    # ---- faults, scripts, forced states --------------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        """Queue a fault; faults are tried in the order added and each match consumes one count."""
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def _take_fault(self, method: str, path: str, body: Any = None) -> Fault | None:
        with self._lock:
            if not self._faults:
                return None
            for index, fault in enumerate(self._faults):
                if fault.matches(method, path, body):
                    fault.count -= 1
                    if fault.count <= 0:
                        del self._faults[index]
                    return fault
        return None

    # ---- tokens --------------------------------------------------------------------------------

    def add_token(self, token: str, organisation: str = "org-1") -> None:
        """Accept bearer ``token`` for ``organisation`` from the next request on (re-maps a known one).

        ``config.tokens`` is replaced by a new dictionary, never changed in place, so a request being
        authenticated on the serving thread always reads a complete mapping.
        """
        if not isinstance(token, str) or not token.strip():
            raise ValueError("token must be a non-empty string")
        if not isinstance(organisation, str) or not organisation:
            raise ValueError("organisation must be a non-empty string")
        with self._lock:
            self.config.tokens = {**self.config.tokens, token.strip(): organisation}

    def revoke_token(self, token: str) -> bool:
        """Stop accepting bearer ``token`` (its requests get 401); whether it was accepted."""
        if not isinstance(token, str):
            return False
        token = token.strip()
        with self._lock:
            if token not in self.config.tokens:
                return False
            self.config.tokens = {key: org for key, org in self.config.tokens.items() if key != token}
        return True

    def script_next_videos(self, outcome: str, count: int = 1) -> None:
        """Give the next ``count`` created videos an outcome.

        ``"available"`` (normal), ``"error"`` (fails after downloading), ``"no_match_detected"``
        (after locally_available), ``"stuck"`` (stays ``downloading``) or ``"status:<value>"``
        (reports ``<value>``, e.g. the undocumented ``created``, instead of ``init`` for one step,
        then continues normally). A ``sim_outcome`` query parameter in ``video_file_url`` takes
        precedence and does not consume the script.
        """
        outcome = _check_video_outcome(outcome)
        with self._lock:
            self._video_script.extend([outcome] * count)

    def script_next_analyses(self, outcome: str, count: int = 1, *, error_at_progress: float = 50.0) -> None:
        """Give the next ``count`` analyses an outcome: ``"done"``, or ``"error"`` at that progress."""
        outcome = _check_analysis_outcome(outcome)
        with self._lock:
            self._analysis_script.extend([(outcome, float(error_at_progress))] * count)

    def set_video_status(self, video_id: int, status: str) -> None:
        """Force a video's status from now on (any string, documented or not); it stays there."""
        now = self.now()
        video = self._videos.get(video_id)
        if video is None:
            raise KeyError(f"no video {video_id}")
        video.schedule = [entry for entry in video.schedule if entry[0] < now] + [(now, status)]
        video.forced = True

    def backdate_video(self, video_id: int, seconds: float) -> str:
        """Move a video's ``created_at`` (wall-clock UTC, whole seconds, like the API's) ``seconds`` into the
        past, as if created that much earlier (e.g. by another pipeline); returns the new value."""
        from datetime import datetime, timedelta

        video = self._videos.get(video_id)
        if video is None:
            raise KeyError(f"no video {video_id}")
        created = datetime.fromisoformat(video.created_at.replace("Z", "+00:00")) - timedelta(seconds=seconds)
        video.created_at = created.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
        return video.created_at

    def set_analysis_outcome(self, analysis_id: int, outcome: str, *, error_at_progress: float = 50.0) -> None:
        """Change the outcome of an existing analysis (``"done"`` or ``"error"``)."""
        analysis = self._analyses.get(analysis_id)
        if analysis is None:
            raise KeyError(f"no analysis {analysis_id}")
        analysis.outcome = _check_analysis_outcome(outcome)
        analysis.error_at_progress = float(error_at_progress)

    def reset(self) -> None:
        """Forget all videos, analyses, faults, scripts, the request log and the request/webhook
        counters. Connection counters and the clock are kept."""
        self._reset_state()

    # ---- observation ---------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """The request log (API requests only, oldest first)."""
        with self._lock:
            return list(self._log)

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    @property
    def stats(self) -> dict[str, int]:
        """Counters: TCP connections accepted/open (when served by :class:`SimulatorServer` or the CLI),
        API requests, webhooks sent/failed."""
        return {
            "connections_opened": self._connections_opened,
            "connections_open": self._connections_open,
            "requests": self._request_count,
            "webhooks_sent": self._webhooks_sent,
            "webhooks_failed": self._webhooks_failed,
        }

    def video_json(self, video_id: int) -> dict[str, Any] | None:
        """What ``GET /videos/{id}`` would return in ``data`` right now (any organisation)."""
        video = self._videos.get(video_id)
        return None if video is None else self._video_json(video, self.now(), listing=False)

    def analysis_json(self, analysis_id: int) -> dict[str, Any] | None:
        """What ``GET /analyses/{id}`` would return (without envelope) right now."""
        analysis = self._analyses.get(analysis_id)
        return None if analysis is None else self._analysis_json(analysis, self.now())

    # ---- connection accounting (called from the serving loop) ----------------------------------

    def _connection_made(self, transport: object) -> None:
        self._connections_opened += 1
        self._connections_open += 1
        get_extra_info = getattr(transport, "get_extra_info", None)
        sock = get_extra_info("socket") if get_extra_info is not None else None
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                if not sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY):
                    self._connections_without_nodelay += 1

    def _connection_lost(self) -> None:
        self._connections_open = max(self._connections_open - 1, 0)

    # ---- state computations --------------------------------------------------------------------

    def _video_duration(self, video: _Video) -> int:
        # assumed (docs silent): the trimmed length when an end offset is known, else 90 minutes.
        if video.end_offset_seconds is not None:
            return video.end_offset_seconds - (video.start_offset_seconds or 0)
        return DEFAULT_DURATION_SECONDS

    def _analysis_state(self, analysis: _Analysis, now: float) -> _AnalysisState:
        cfg = self.config
        init_end = analysis.created + max(cfg.analysis_init_seconds, 0.0)
        if now < init_end:
            return _AnalysisState(AnalysisStatus.INIT.value, 0, False)
        video = self._videos.get(analysis.video_id)
        available = video.first_time((VideoStatus.AVAILABLE.value,)) if video else None
        failed = video.first_time(_FAILED_VIDEO_STATUSES) if video else None
        if available is None or (failed is not None and failed < available):
            if failed is not None and now >= max(init_end, failed):
                return _AnalysisState(AnalysisStatus.ERROR.value, 0, False)
            return _AnalysisState(AnalysisStatus.WAITING_FOR_VIDEO.value, 0, False)
        run_start = max(init_end, available)
        if now < run_start:
            return _AnalysisState(AnalysisStatus.WAITING_FOR_VIDEO.value, 0, False)
        running = max(cfg.analysis_seconds, 0.0)
        aggregating = max(cfg.analysis_aggregating_seconds, 0.0)
        run_end = run_start + running
        done_at = run_end + aggregating
        if analysis.outcome == "error":
            at = min(max(analysis.error_at_progress, 0.0), 99.0)
            error_time = run_start + running * at / 95 if at <= 95 else run_end + aggregating * (at - 95) / 4
            if now >= error_time:
                return _AnalysisState(AnalysisStatus.ERROR.value, round(at, 1), True)
        if now < run_end:
            fraction = (now - run_start) / running if running else 1.0
            return _AnalysisState(AnalysisStatus.RUNNING.value, _running_progress(fraction, analysis.id), True)
        if now < done_at:
            fraction = (now - run_end) / aggregating if aggregating else 1.0
            return _AnalysisState(AnalysisStatus.AGGREGATING.value, round(95 + 4 * fraction, 1), True)
        return _AnalysisState(AnalysisStatus.DONE.value, 100, True, done_at)

    def _team_names(self, video: _Video) -> tuple[str, str]:
        # assumed (docs silent): "Home"/"Away" when no names were given. team_0 is the team that
        # starts on the left: the home team unless left_start_team == "away".
        home = video.home_team_name or "Home"
        away = video.away_team_name or "Away"
        return (away, home) if video.left_start_team == "away" else (home, away)

    def _match(self, analysis: _Analysis, video: _Video) -> _Match:
        duration = max(self._video_duration(video), 60)
        names = self._team_names(video)
        key = (analysis.id, duration, names)
        match = self._match_cache.get(key)
        if match is None:
            if len(self._match_cache) > 64:
                self._match_cache.clear()
            match = _build_match(analysis.id, duration, names)
            self._match_cache[key] = match
        return match

    # ---- JSON views ----------------------------------------------------------------------------

    def _video_json(self, video: _Video, now: float, *, listing: bool, created: bool = False) -> dict[str, Any]:
        status = video.status_at(now)
        available = status == VideoStatus.AVAILABLE.value
        data: dict[str, Any] = {
            "id": video.id,
            "status": status,
            "game_name": video.game_name,
            "title": video.title,
            "created_at": video.created_at,
            "home_team_name": video.home_team_name,
            "away_team_name": video.away_team_name,
            "duration": self._video_duration(video) if available else None,
        }
        if created:  # the docs' create example: id, status, game_name, title, created_at
            data = {name: data[name] for name in ("id", "status", "game_name", "title", "created_at")}
        else:
            if not listing:  # the docs show mp4_source on GET /videos/{id} only
                data["mp4_source"] = MP4_SOURCE_TEMPLATE.format(id=video.id) if available else None
            data["analyses"] = [
                {"id": analysis_id, "status": self._analysis_state(analysis, now).status}
                for analysis_id in list(video.analysis_ids)
                if (analysis := self._analyses.get(analysis_id)) is not None and analysis.listed <= now
            ]
        if self.config.echo_submitted_fields:
            # opt-in: the docs return none of the submitted fields; earlier simulator versions did.
            data["video_file_url"] = video.video_file_url
            data["date"] = video.date
            data["start_offset_seconds"] = video.start_offset_seconds
            data["end_offset_seconds"] = video.end_offset_seconds
            data["left_start_team"] = video.left_start_team
        return data

    def submitted_video(self, video_id: int) -> dict[str, Any] | None:
        """The fields ``POST /videos`` received for ``video_id`` (what tests assert a video's source by)."""
        video = self._videos.get(video_id)
        if video is None:
            return None
        names = (
            "video_file_url",
            "title",
            "home_team_name",
            "away_team_name",
            "date",
            "start_offset_seconds",
            "end_offset_seconds",
            "left_start_team",
        )
        return {name: getattr(video, name) for name in names}

    def _analysis_json(self, analysis: _Analysis, now: float) -> dict[str, Any]:
        state = self._analysis_state(analysis, now)
        video = self._videos.get(analysis.video_id)
        return {
            "id": analysis.id,
            # assumed (docs silent): the UUID webhooks carry as analysis_id.
            "uuid": analysis.uuid,
            "video_id": analysis.video_id,
            "status": state.status,
            "algorithm_version": ALGORITHM_VERSION,
            "parameters": {"fps": analysis.fps},
            "created_at": analysis.created_at,
            "results_available": state.status == AnalysisStatus.DONE.value,
            "progress": _number(state.progress),
            "video": {"id": analysis.video_id, "title": video.title if video else None},
        }

    # ---- lookups -------------------------------------------------------------------------------

    def _owned_video(self, request: web.Request) -> _Video:
        raw = request.match_info["video_id"]
        video = self._videos.get(int(raw)) if raw.isascii() and raw.isdigit() and len(raw) < 19 else None
        if video is None or video.org != request[_ORG_KEY]:
            # assumed (docs silent): Laravel's ModelNotFoundException message; other orgs get 404 too.
            raise _ApiError(404, {"message": f"No query results for model [App\\Models\\Video] {raw}"})
        return video

    def _owned_analysis(self, request: web.Request) -> _Analysis:
        raw = request.match_info["analysis_id"]
        analysis = self._analyses.get(int(raw)) if raw.isascii() and raw.isdigit() and len(raw) < 19 else None
        if analysis is None or analysis.org != request[_ORG_KEY]:
            raise _ApiError(404, {"message": f"No query results for model [App\\Models\\Analysis] {raw}"})
        return analysis

    def _done_analysis(self, request: web.Request) -> tuple[_Analysis, _Video, _AnalysisState]:
        analysis = self._owned_analysis(request)
        state = self._analysis_state(analysis, self.now())
        video = self._videos.get(analysis.video_id)
        if state.status != AnalysisStatus.DONE.value or video is None:
            # assumed (docs silent): status configurable, Laravel-style message body.
            raise _ApiError(
                self.config.results_before_done_status,
                {"message": f"Analysis {analysis.id} is not done yet (status: {state.status})."},
            )
        return analysis, video, state

    @staticmethod
    def _body_object(request: web.Request) -> dict[str, Any]:
        body = request.get(_BODY_KEY)
        # assumed (docs silent): a body that is not a JSON object counts as an empty one.
        return body if isinstance(body, dict) else {}
