"""What every waiter (trigger, sensor poke, operator wait) says and decides about one resource.

A trigger in the triggerer, a sensor poking from a worker and an operator waiting without deferring
all watch a video or an analysis the same way: the same status vocabulary, the same one-line log per
status change, the same single warning for an undocumented status, and the same messages for the
same outcomes. This module holds that once. Nothing here performs I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_aiontheball.exceptions import (
    AIOnTheBallAuthError,
    AIOnTheBallNotFoundError,
    AIOnTheBallRouteMissingError,
    AIOnTheBallTerminalError,
    AIOnTheBallWaitError,
)
from airflow_provider_aiontheball.hooks._client import describe_failure, is_transient
from airflow_provider_aiontheball.polling import ErrorBudget, format_duration
from airflow_provider_aiontheball.statuses import Outcome, StatusVocabulary, UnknownStatusLogger

#: Progress points between two progress log lines: a line per meaningful change, not per poll.
PROGRESS_LOG_STEP = 5.0


def progress_of(resource: dict[str, Any]) -> float | None:
    """The resource's ``progress`` (0-100) as a float, or ``None`` when absent or not a number."""
    value = resource.get("progress")
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if 0.0 <= number <= 100.0 else None


@dataclass
class WaitObserver:
    """Tracks one resource's status for one waiter and words what happens to it.

    :param vocabulary: the resource's status vocabulary (its ``resource`` names it in messages).
    :param resource_id: the id of the video or analysis.
    :param conn_id: the Airflow connection id (named when access is refused).
    :param log: where status changes are logged (``self.log`` of the trigger/sensor/operator).
    :param describe: how a resource's state reads in a log line (default: its status).
    :param ready: whether a resource in a success status is really usable (an analysis ``done`` whose
        ``results_available`` is still false is not); default: always.
    """

    vocabulary: StatusVocabulary
    resource_id: int
    conn_id: str
    log: Any
    describe: Callable[[dict[str, Any]], str] = field(default=lambda resource: str(resource.get("status")))
    ready: Callable[[dict[str, Any]], bool] = field(default=lambda resource: True)
    clock: Callable[[], float] = time.monotonic
    last_status: str | None = field(default=None, init=False)
    #: The resource as last fetched (``None`` before the first successful poll).
    last_resource: dict[str, Any] | None = field(default=None, init=False)
    _last_change: float = field(default=0.0, init=False)
    _unknown: UnknownStatusLogger = field(init=False)
    _logged_progress: tuple[str | None, float] | None = field(default=None, init=False)
    _warned_not_ready: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self._unknown = UnknownStatusLogger(self.vocabulary, self.log)
        self._last_change = self.clock()

    @property
    def name(self) -> str:
        return f"{self.vocabulary.resource} {self.resource_id}"

    def observe(self, resource: dict[str, Any]) -> Outcome:
        """Record one fetched state, log it if it changed, and classify it."""
        self.last_resource = resource
        raw = resource.get("status")
        status = None if raw is None else str(raw)
        self._unknown.check(self.resource_id, status)
        if status != self.last_status:
            now = self.clock()
            if self.last_status is None:
                self.log.info("%s: %s", self.name, self.describe(resource))
            else:
                self.log.info(
                    "%s: %s → %s after %s",
                    self.name,
                    self.last_status,
                    self.describe(resource),
                    format_duration(now - self._last_change),
                )
            self.last_status, self._last_change = status, now
        outcome = self.vocabulary.classify(status)
        if outcome is Outcome.SUCCESS and not self.ready(resource):
            if not self._warned_not_ready:
                self._warned_not_ready = True
                self.log.info("%s is %s but its results are not available yet; waiting.", self.name, status)
            return Outcome.IN_PROGRESS
        return outcome

    def report_progress(self, resource: dict[str, Any], eta_seconds: float | None) -> None:
        """Log ``analysis 1247: running 45% (ETA ~1h 52m)`` when progress moved by a meaningful step."""
        progress = progress_of(resource)
        if progress is None:
            return
        if self._logged_progress is not None:
            logged_status, logged = self._logged_progress
            if logged_status == self.last_status and progress - logged < PROGRESS_LOG_STEP:
                return
        self._logged_progress = (self.last_status, progress)
        eta = f" (ETA ~{format_duration(eta_seconds)})" if eta_seconds is not None else ""
        self.log.info("%s: %s %.0f%%%s", self.name, self.last_status, progress, eta)

    # -- messages, identical wherever the wait runs -------------------------------------------------

    def succeeded(self, waited: float) -> str:
        return f"{self.name} is {self.last_status} after {format_duration(waited)}"

    def failed(self) -> str:
        return f"{self.name} ended with status {self.last_status!r}; waiting longer cannot change that"

    def timed_out(self, waited: float) -> str:
        return (
            f"{self.name} did not finish before the deadline: still {self.last_status or 'not seen'} "
            f"after {format_duration(waited)}"
        )

    def gave_up(self, budget_description: str) -> str:
        return f"gave up waiting for {self.name}: the API kept failing ({budget_description})"

    def tolerates(self, exc: BaseException) -> bool:
        """Whether the wait goes on after ``exc``, within its error budget: transient trouble
        (``is_transient``), and a refused token once this wait has polled successfully — a rotation
        in progress (the old token revoked before the connection holds the new one; the hook reloads
        the connection on every refusal), not a wrong token, which fails the first poll at once."""
        return is_transient(exc) or (isinstance(exc, AIOnTheBallAuthError) and self.last_resource is not None)

    def terminal_error_message(self, exc: Exception) -> str | None:
        """The message for an error that ends the wait for good (resource gone, access refused), else None."""
        if isinstance(exc, AIOnTheBallRouteMissingError):
            return f"cannot follow {self.name}: {exc.detail}; give the video_id to follow it through its video"
        if isinstance(exc, AIOnTheBallNotFoundError):
            return f"{self.name} no longer exists ({exc.detail})"
        if isinstance(exc, AIOnTheBallAuthError) and self.last_resource is None:
            return (
                f"connection {self.conn_id!r} was refused with {exc.status_code} while waiting for {self.name}: "
                f"check its API token and access ({exc.detail})"
            )
        return None


def poll_once(
    observer: WaitObserver, budget: ErrorBudget, fetch: Callable[[], dict[str, Any]], waited: float
) -> dict[str, Any] | None:
    """One synchronous poll for a sensor's ``poke`` or an operator's non-deferred wait.

    :return: the resource once it succeeded; ``None`` while it is in progress, or after a transient
        failure the error budget still tolerates.
    :raises AIOnTheBallTerminalError: the resource failed, is gone, or access was refused (no retries).
    :raises AIOnTheBallWaitError: transient failures outlasted the error budget (Airflow retries apply).
    """
    try:
        resource = fetch()
    except Exception as exc:
        if (message := observer.terminal_error_message(exc)) is not None:
            raise AIOnTheBallTerminalError(message) from exc
        if not observer.tolerates(exc):
            raise
        reason = describe_failure(exc)
        if budget.record_failure(reason):
            raise AIOnTheBallWaitError(observer.gave_up(budget.describe())) from exc
        observer.log.warning(
            "%s: poll failed with %s (%d of %d tolerated in a row)",
            observer.name,
            reason,
            budget.consecutive,
            budget.max_consecutive,
        )
        return None
    budget.record_success()
    outcome = observer.observe(resource)
    if outcome is Outcome.SUCCESS:
        observer.log.info(observer.succeeded(waited))
        return resource
    if outcome is Outcome.FAILED:
        raise AIOnTheBallTerminalError(observer.failed())
    return None


def result_from_event(
    event: dict[str, Any] | None, resource: str, on_timeout: Callable[[str], Exception]
) -> dict[str, Any]:
    """Interpret a trigger event when a deferred task resumes. Fails closed: only ``success`` passes.

    :param resource: ``"video"`` or ``"analysis"``: the key holding the resource in a success event.
    :param on_timeout: builds the exception for a ``timeout`` event (a sensor raises Airflow's sensor
        timeout so ``soft_fail`` applies; an operator a retryable error).
    :raises AIOnTheBallTerminalError: ``failed`` (no retries).
    :raises AIOnTheBallWaitError: ``error``, or anything unexpected.
    """
    payload = event if isinstance(event, dict) else {}
    status = payload.get("status")
    message = payload.get("message") or f"unexpected trigger event {event!r}"
    if status == "success" and isinstance(payload.get(resource), dict):
        return dict(payload[resource])
    if status == "failed":
        raise AIOnTheBallTerminalError(message)
    if status == "timeout":
        raise on_timeout(message)
    raise AIOnTheBallWaitError(message)


def wait_sync(
    observer: WaitObserver,
    budget: ErrorBudget,
    schedule: Any,
    fetch: Callable[[], dict[str, Any]],
    timeout: float,
    *,
    next_interval: Callable[[Any, dict[str, Any], float], float],
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Wait in the current process (a task that does not defer), with the trigger's semantics.

    :param schedule: the polling schedule (``after_failure`` is called after a tolerated failure).
    :param next_interval: the trigger's ``next_interval(schedule, resource, now)``, so a task that
        waits in-process polls exactly like the trigger would.
    :raises AIOnTheBallWaitError: the timeout passed (``timeout`` seconds), or transient failures
        outlasted the error budget; Airflow's retries apply.
    :raises AIOnTheBallTerminalError: the resource failed, is gone, or access was refused.
    """
    started = clock()
    while True:
        resource = poll_once(observer, budget, fetch, clock() - started)
        if resource is not None:
            return resource
        waited = clock() - started
        if waited >= timeout:
            raise AIOnTheBallWaitError(observer.timed_out(waited))
        if budget.consecutive or observer.last_resource is None:  # the poll failed (tolerated)
            interval = schedule.after_failure()
        else:
            interval = next_interval(schedule, observer.last_resource, time.time())
            observer.report_progress(observer.last_resource, getattr(schedule, "eta_seconds", lambda: None)())
        sleep(min(interval, timeout - waited))
