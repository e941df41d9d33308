"""The one wait loop behind every AI on the Ball trigger (videos and analyses).

It runs in the triggerer's event loop, so it never blocks: the connection comes from
``get_async_connection``, HTTP from the shared aiohttp session, sleeps are ``asyncio.sleep``.
Subclasses only say which resource they watch, how to fetch it and how to schedule the next poll.

Guarantees, each tested:

* serialization holds ids, the connection id, polling settings and a wall-clock deadline — never a
  token, header or session — so a triggerer restart rebuilds the same wait with the same deadline;
* the deadline is checked before each poll is evaluated; past it, one ``timeout`` event;
* transient failures (connection errors, timeouts, 429, 5xx, garbled bodies) are tolerated within an
  error budget; ``Retry-After`` sets the next interval;
* exactly one small, JSON-serializable event: ``status`` (success/failed/timeout/error), the id, the
  resource's last status, a message, and on success the resource itself;
* ``asyncio.CancelledError`` is never swallowed, and the shared session is released on the way out.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_aiontheball._waiting import WaitObserver
from airflow_provider_aiontheball.hooks._client import DEFAULT_CONN_ID, describe_failure
from airflow_provider_aiontheball.polling import (
    DEFAULT_ERROR_BUDGET_SECONDS,
    DEFAULT_MAX_CONSECUTIVE_ERRORS,
    DEFAULT_MIN_POLL_INTERVAL,
    DEFAULT_POLL_INTERVAL,
    AdaptiveSchedule,
    ErrorBudget,
    format_duration,
)
from airflow_provider_aiontheball.statuses import Outcome, StatusVocabulary

if TYPE_CHECKING:
    from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallAsyncHook


class EventStatus:
    """Values of a trigger event's ``status`` key."""

    SUCCESS = "success"
    FAILED = "failed"
    TIMEOUT = "timeout"
    ERROR = "error"


class AIOnTheBallWaitTrigger(BaseTrigger):
    """Wait for one resource to reach a terminal status; subclasses fix the resource kind.

    :param resource_id: id of the video or analysis.
    :param aiontheball_conn_id: Airflow connection id. Default ``aiontheball_default``.
    :param poll_interval: longest interval between polls, in seconds. Default 60.
    :param end_time: wall-clock deadline (epoch seconds). Default: no deadline.
    :param min_poll_interval: first interval after a status change, in seconds. Default 5.
    :param max_consecutive_errors: transient failures in a row tolerated. Default 10.
    :param error_budget_seconds: seconds of uninterrupted transient failures tolerated. Default 900.
    :param started_at: wall-clock start of the wait (epoch seconds), so messages after a triggerer
        restart still say how long the whole wait took. Default: now.
    """

    #: "video" or "analysis": used for event keys (``video_id``, ``video_status``) and messages.
    resource: ClassVar[str]
    vocabulary: ClassVar[StatusVocabulary]
    #: Name of the id parameter in ``serialize()`` (``video_id`` / ``analysis_id``).
    id_kwarg: ClassVar[str]

    def __init__(
        self,
        resource_id: int,
        *,
        aiontheball_conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        end_time: float | None = None,
        min_poll_interval: float = DEFAULT_MIN_POLL_INTERVAL,
        max_consecutive_errors: int = DEFAULT_MAX_CONSECUTIVE_ERRORS,
        error_budget_seconds: float = DEFAULT_ERROR_BUDGET_SECONDS,
        started_at: float | None = None,
    ) -> None:
        super().__init__()
        self.resource_id = int(resource_id)
        self.aiontheball_conn_id = aiontheball_conn_id
        self.poll_interval = float(poll_interval)
        self.end_time = None if end_time is None else float(end_time)
        self.min_poll_interval = float(min_poll_interval)
        self.max_consecutive_errors = int(max_consecutive_errors)
        self.error_budget_seconds = float(error_budget_seconds)
        self.started_at = time.time() if started_at is None else float(started_at)

    # -- what subclasses provide --------------------------------------------------------------------

    async def fetch(self, hook: AIOnTheBallAsyncHook) -> dict[str, Any]:
        """Fetch the resource once (one GET)."""
        raise NotImplementedError

    def new_schedule(self) -> Any:
        """The polling schedule of one wait; must offer ``after_failure(retry_after)``."""
        return AdaptiveSchedule(min_interval=self.min_poll_interval, max_interval=self.poll_interval)

    def next_interval(self, schedule: Any, resource: dict[str, Any], now: float) -> float:
        """Seconds until the next poll after observing ``resource`` (still in progress)."""
        return float(schedule.after_observation(resource.get("status")))

    def describe_state(self, resource: dict[str, Any]) -> str:
        """How the resource's state reads in a log line, e.g. ``"downloading"``."""
        return str(resource.get("status"))

    def is_ready(self, resource: dict[str, Any]) -> bool:
        """Whether a resource in a success status is usable (default: always)."""
        return True

    # -- serialization ------------------------------------------------------------------------------

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Only ids, the connection id, polling settings and the deadline; never a secret."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                self.id_kwarg: self.resource_id,
                "aiontheball_conn_id": self.aiontheball_conn_id,
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
                "min_poll_interval": self.min_poll_interval,
                "max_consecutive_errors": self.max_consecutive_errors,
                "error_budget_seconds": self.error_budget_seconds,
                "started_at": self.started_at,
            },
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.id_kwarg}={self.resource_id}, "
            f"aiontheball_conn_id={self.aiontheball_conn_id!r}, end_time={self.end_time})"
        )

    # -- the wait loop ------------------------------------------------------------------------------

    def _event(
        self, status: str, resource_status: str | None, message: str, resource: dict[str, Any] | None = None
    ) -> TriggerEvent:
        payload: dict[str, Any] = {
            "status": status,
            self.id_kwarg: self.resource_id,
            f"{self.resource}_status": resource_status,
            "message": message,
        }
        if resource is not None:
            payload[self.resource] = resource
        return TriggerEvent(payload)

    def _waited(self) -> float:
        return time.time() - self.started_at

    async def run(self) -> AsyncIterator[TriggerEvent]:
        import asyncio

        from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallAsyncHook

        observer = WaitObserver(
            self.vocabulary,
            self.resource_id,
            self.aiontheball_conn_id,
            self.log,
            describe=self.describe_state,
            ready=self.is_ready,
        )
        # Retries happen here, between polls, within the error budget; not inside one call.
        hook = AIOnTheBallAsyncHook(self.aiontheball_conn_id, retry_limit=0)
        schedule = self.new_schedule()
        budget = ErrorBudget(self.max_consecutive_errors, self.error_budget_seconds)
        try:
            async with hook:
                while True:
                    if self.end_time is not None and time.time() >= self.end_time:
                        yield self._event(EventStatus.TIMEOUT, observer.last_status, observer.timed_out(self._waited()))
                        return
                    remaining = None if self.end_time is None else max(self.end_time - time.time(), 0.0)
                    try:
                        # The deadline bounds the request too: a slow answer must not make the timeout late.
                        async with asyncio.timeout(remaining):
                            resource = await self.fetch(hook)
                    except Exception as exc:
                        if isinstance(exc, TimeoutError) and self.end_time is not None and time.time() >= self.end_time:
                            continue  # the deadline passed during the request: the loop's top reports it
                        if (message := observer.terminal_error_message(exc)) is not None:
                            yield self._event(EventStatus.FAILED, observer.last_status, message)
                            return
                        if not observer.tolerates(exc):
                            raise
                        reason = describe_failure(exc)
                        if budget.record_failure(reason):
                            yield self._event(
                                EventStatus.ERROR, observer.last_status, observer.gave_up(budget.describe())
                            )
                            return
                        delay = schedule.after_failure(getattr(exc, "retry_after", None))
                        self.log.warning(
                            "%s: poll failed with %s (%d of %d tolerated in a row); next poll in %s",
                            observer.name,
                            reason,
                            budget.consecutive,
                            self.max_consecutive_errors,
                            format_duration(delay),
                        )
                    else:
                        budget.record_success()
                        outcome = observer.observe(resource)
                        if outcome is Outcome.SUCCESS:
                            yield self._event(
                                EventStatus.SUCCESS, observer.last_status, observer.succeeded(self._waited()), resource
                            )
                            return
                        if outcome is Outcome.FAILED:
                            yield self._event(EventStatus.FAILED, observer.last_status, observer.failed())
                            return
                        delay = self.next_interval(schedule, resource, time.time())
                        observer.report_progress(resource, getattr(schedule, "eta_seconds", lambda: None)())
                    if self.end_time is not None:
                        # Wake at the deadline at the latest, so the timeout event is not late.
                        delay = min(delay, max(0.0, self.end_time - time.time()))
                    await asyncio.sleep(delay)
        except Exception as exc:
            # Anything else (connection missing or misconfigured, an unexpected answer) ends the wait
            # with one error event rather than a crashed trigger; CancelledError is not an Exception.
            self.log.exception("%s: waiting failed", observer.name)
            yield self._event(
                EventStatus.ERROR,
                observer.last_status,
                f"waiting for {observer.name} failed: {type(exc).__name__}: {exc}",
            )
