"""Waiting for a video or an analysis: the one place that decides what a poll means.

Per kind a :class:`WaitPolicy` (:data:`VIDEO_WAIT`, :data:`ANALYSIS_WAIT`); one :class:`Wait` whose
:meth:`Wait.decide` turns a poll's outcome into a :class:`Decision` (an :class:`EventStatus`, or poll again
after ``delay``), within an :class:`ErrorBudget` (:func:`is_transient`); the loops around it:
:func:`wait_in_triggerer` (async, run by :class:`WaitTrigger`, both triggers' base), :func:`poll` /
:func:`wait_in_process` / :func:`poke` (sync). The event, and what a resumed task makes of it, are in
:mod:`~airflow_provider_aiontheball.task_end`; deadlines are in
:mod:`~airflow_provider_aiontheball.deadlines`. No I/O but the caller's ``fetch``; no HTTP library or hook
imported at module level, so DAG parsing never pays for it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_aiontheball.defaults import (
    DEFAULT_ERROR_BUDGET_SECONDS,
    DEFAULT_MAX_CONSECUTIVE_ERRORS,
    PROGRESS_LOG_STEP,
    STATE_KEY_POKE_ERRORS,
    VIDEO_REQUIREMENTS,
)
from airflow_provider_aiontheball.exceptions import (
    AIOnTheBallAuthError,
    AIOnTheBallInvalidResponseError,
    AIOnTheBallNotFoundError,
    AIOnTheBallRateLimitError,
    AIOnTheBallRouteMissingError,
    AIOnTheBallServerError,
    AIOnTheBallTransportError,
    AIOnTheBallWaitError,
    describe_failure,
)
from airflow_provider_aiontheball.polling import (
    DEFAULT_JITTER,
    AdaptiveSchedule,
    Jitter,
    ProgressSchedule,
    format_duration,
)
from airflow_provider_aiontheball.statuses import (
    ANALYSIS_STATUSES,
    VIDEO_STATUSES,
    Outcome,
    StatusVocabulary,
    UnknownStatusLogger,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallAsyncHook


class EventStatus(StrEnum):
    """Values of a trigger event's ``status`` key (stored in event rows: never rename a value)."""

    SUCCESS = "success"
    FAILED = "failed"
    TIMEOUT = "timeout"
    ERROR = "error"


def utc_timestamp(epoch_seconds: float) -> str:
    """``2026-12-02T15:04:05Z``: an epoch time as logged (UTC, whole seconds)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_seconds))


def is_transient(exc: BaseException) -> bool:
    """Whether a wait may go on after ``exc`` (within its error budget).

    Besides connection trouble, 429 and 5xx, a garbled success body counts: an overloaded proxy
    answering HTML is a passing condition for someone who polls again later.
    """
    return isinstance(
        exc,
        AIOnTheBallTransportError
        | AIOnTheBallRateLimitError
        | AIOnTheBallServerError
        | AIOnTheBallInvalidResponseError,
    )


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

    def state(self) -> dict[str, Any] | None:
        """The current streak as JSON (for a sensor in reschedule mode, whose pokes are separate runs), or
        ``None`` when there is none. Meaningful across processes only with a wall ``clock`` (``time.time``)."""
        if self._streak_started is None:
            return None
        return {"consecutive": self.consecutive, "since": self._streak_started}

    def restore(self, state: Any) -> None:
        """Continue the streak that :meth:`state` returned (anything else starts clean)."""
        if (
            isinstance(state, dict)
            and isinstance(state.get("consecutive"), int)
            and isinstance(state.get("since"), int | float)
        ):
            self.consecutive = state["consecutive"]
            self._streak_started = float(state["since"])
        else:
            self.record_success()

    def describe(self) -> str:
        elapsed = 0.0 if self._streak_started is None else self.clock() - self._streak_started
        return f"{self.consecutive} failure(s) in a row over {format_duration(elapsed)}; last: {self.last_reason}"


# -- what differs between resource kinds -------------------------------------------------------------


@dataclass(frozen=True)
class WaitSettings:
    """The knobs of one wait, as a user sets them on a sensor or operator and a trigger serializes them.

    :param poll_interval: longest interval between polls, in seconds.
    :param min_poll_interval: shortest interval (after a status change; an analysis near its finish).
    :param max_consecutive_errors: transient failures in a row tolerated. Default 10.
    :param error_budget_seconds: seconds of uninterrupted transient failures tolerated. Default 900.
    """

    poll_interval: float
    min_poll_interval: float
    max_consecutive_errors: int = DEFAULT_MAX_CONSECUTIVE_ERRORS
    error_budget_seconds: float = DEFAULT_ERROR_BUDGET_SECONDS

    def trigger_kwargs(self) -> dict[str, Any]:
        """The settings as trigger keyword arguments: the one place a sensor or operator builds a trigger from."""
        return {
            "poll_interval": float(self.poll_interval),
            "min_poll_interval": float(self.min_poll_interval),
            "max_consecutive_errors": int(self.max_consecutive_errors),
            "error_budget_seconds": float(self.error_budget_seconds),
        }


def _status_of(resource: dict[str, Any]) -> str:
    return str(resource.get("status"))


def _always_ready(resource: dict[str, Any]) -> bool:
    return True


@dataclass(frozen=True)
class WaitPolicy:
    """Everything about waiting that depends on the kind of resource.

    :param kind: ``"video"``: the resource's name in messages and the key of a success event's resource.
    :param id_key: the id's name in trigger kwargs and events (``video_id``).
    :param status_key: the event key of the resource's last status (``video_status``).
    :param vocabulary: its statuses: success, terminal failure, in progress.
    :param new_schedule: the polling schedule of one wait, from its settings.
    :param next_interval: seconds until the next poll after seeing ``resource`` in progress at ``now``.
    :param describe: how a state reads in a log line (default: its status).
    :param ready: whether a resource in a success status is usable (default: always).
    :param failure_hint: what to add to the message of a resource that ended in a failed status (default:
        nothing).
    """

    kind: str
    id_key: str
    status_key: str
    vocabulary: StatusVocabulary
    new_schedule: Callable[[WaitSettings], Any]
    next_interval: Callable[[Any, dict[str, Any], float], float]
    describe: Callable[[dict[str, Any]], str] = _status_of
    ready: Callable[[dict[str, Any]], bool] = _always_ready
    failure_hint: Callable[[str | None], str] = lambda status: ""


def _describe_analysis(resource: dict[str, Any]) -> str:
    progress = progress_of(resource)
    status = str(resource.get("status"))
    return status if progress is None else f"{status} {progress:.0f}%"


def _analysis_ready(resource: dict[str, Any]) -> bool:
    # ``done`` is documented as "results available"; trust an explicit false over the status.
    return resource.get("results_available") is not False


def _video_failure_hint(status: str | None) -> str:
    # The API gives no reason for ``error``: its download or decoding failed. Say what it requires.
    if status != "error":
        return ""
    return (
        f". The API gives no reason; a video ends in 'error' when its source does not meet the documented "
        f"requirements ({VIDEO_REQUIREMENTS}): check the file (the create operator's pre-flight checks measure them)"
    )


#: Videos: poll soon after a status change, back off x1.5 up to ``poll_interval`` while nothing changes.
VIDEO_WAIT = WaitPolicy(
    kind="video",
    id_key="video_id",
    status_key="video_status",
    vocabulary=VIDEO_STATUSES,
    new_schedule=lambda s: AdaptiveSchedule(min_interval=s.min_poll_interval, max_interval=s.poll_interval),
    next_interval=lambda schedule, resource, now: float(schedule.after_observation(resource.get("status"))),
    failure_hint=_video_failure_hint,
)

#: Analyses (2-6 h): poll near the finish estimated from ``progress``; ready once results are available.
ANALYSIS_WAIT = WaitPolicy(
    kind="analysis",
    id_key="analysis_id",
    status_key="analysis_status",
    vocabulary=ANALYSIS_STATUSES,
    new_schedule=lambda s: ProgressSchedule(min_interval=s.min_poll_interval, max_interval=s.poll_interval),
    next_interval=lambda schedule, resource, now: float(
        schedule.after_observation(resource.get("status"), progress_of(resource), now)
    ),
    describe=_describe_analysis,
    ready=_analysis_ready,
)


# -- one wait, and its one decision --------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """What one poll means: ``status`` set when the wait is over, else poll again after ``delay`` seconds.

    ``last_status`` is the resource's last seen status (the events' ``<kind>_status``); ``resource`` the
    resource on success; ``cause`` the exception behind a failure, for chaining.
    """

    status: EventStatus | None
    message: str = ""
    last_status: str | None = None
    resource: dict[str, Any] | None = None
    delay: float = 0.0
    cause: BaseException | None = None


@dataclass
class Wait:
    """One waiter's state for one resource, and the decision after each poll.

    :param policy: the resource kind (:data:`VIDEO_WAIT`, :data:`ANALYSIS_WAIT`).
    :param resource_id: the id of the video or analysis.
    :param conn_id: the Airflow connection id (named when access is refused).
    :param log: where status changes are logged (``self.log`` of the trigger/sensor/operator).
    :param settings: intervals and error budget.
    :param started_at: wall-clock start of the whole wait (kept across triggerer restarts). Default: now.
    :param end_time: wall-clock deadline, epoch seconds. Default: none.
    :param budget_clock: the error budget's clock; a wall clock where the streak outlives a process.
    :param announce_delay: say when the next poll comes in failure warnings (not for sensor pokes,
        whose next poke is Airflow's ``poke_interval``).
    :param clock: monotonic clock (time between status changes in log lines). Default ``time.monotonic``.
    :param wall_clock: wall clock (deadline, how long the whole wait took). Default ``time.time``.
    :param polled_before: a request on this connection succeeded for this wait before it started here (the
        sensor's poke before deferring, the POST of a create operator, an earlier poke in reschedule mode):
        a refused token is then a rotation in progress, tolerated within the error budget like a 503, not a
        wrong token. Default False: a wait whose very first request is refused fails at once.
    :param jitter: spreads the polls of waits started together (:class:`~airflow_provider_aiontheball.polling.Jitter`):
        every delay :meth:`decide` returns and the triggerer's first poll (:meth:`first_poll_delay`).
        Give it a seeded ``random.Random`` for a reproducible schedule. Default: ±10 %, first poll within
        the first interval (at most 60 s), drawn from the process's unseeded random source.
    """

    policy: WaitPolicy
    resource_id: int
    conn_id: str
    log: Any
    settings: WaitSettings
    started_at: float = field(default_factory=time.time)
    end_time: float | None = None
    budget_clock: Callable[[], float] = time.monotonic
    announce_delay: bool = True
    clock: Callable[[], float] = time.monotonic
    wall_clock: Callable[[], float] = time.time
    polled_before: bool = False
    jitter: Jitter = DEFAULT_JITTER  # frozen and shared: nothing per wait (1,000 of them in a triggerer)
    last_status: str | None = field(default=None, init=False)
    #: The resource as last fetched (``None`` before the first successful poll).
    last_resource: dict[str, Any] | None = field(default=None, init=False)
    budget: ErrorBudget = field(init=False)
    schedule: Any = field(init=False)
    _last_change: float = field(default=0.0, init=False)
    _unknown: UnknownStatusLogger = field(init=False)
    _logged_progress: tuple[str | None, float] | None = field(default=None, init=False)
    _warned_not_ready: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self._unknown = UnknownStatusLogger(self.policy.vocabulary, self.log)
        self._last_change = self.clock()
        self.budget = ErrorBudget(
            self.settings.max_consecutive_errors, self.settings.error_budget_seconds, clock=self.budget_clock
        )
        self.schedule = self.policy.new_schedule(self.settings)

    @property
    def name(self) -> str:
        return f"{self.policy.kind} {self.resource_id}"

    def waited(self) -> float:
        return self.wall_clock() - self.started_at

    def expired(self) -> Decision | None:
        """The ``timeout`` decision once the deadline has passed, else ``None``."""
        if self.end_time is None or self.wall_clock() < self.end_time:
            return None
        return self._over(EventStatus.TIMEOUT, self.timed_out_message())

    def deadline_phrase(self) -> str:
        """``deadline 2026-12-02T15:04:05Z (started 2026-12-02T14:04:05Z)``, or ``no deadline (…)``."""
        started = f"started {utc_timestamp(self.started_at)}"
        if self.end_time is None:
            return f"no deadline ({started})"
        return f"deadline {utc_timestamp(self.end_time)} ({started})"

    def remaining(self) -> float | None:
        return None if self.end_time is None else max(self.end_time - self.wall_clock(), 0.0)

    def decide(self, polled: dict[str, Any] | Exception) -> Decision:
        """The one decision after a poll: ``polled`` is the fetched resource or the exception the fetch raised.

        :raises Exception: ``polled`` itself when it is neither terminal nor tolerated (a bug, a
            misconfiguration): the caller's loop reports it its own way.
        """
        if isinstance(polled, Exception):
            return self._after_failure(polled)
        self.budget.record_success()
        outcome = self._observe(polled)
        if outcome is Outcome.SUCCESS:
            return self._over(EventStatus.SUCCESS, self.succeeded_message(), resource=polled)
        if outcome is Outcome.FAILED:
            return self._over(
                EventStatus.FAILED,
                f"{self.name} ended with status {self.last_status!r}; waiting longer cannot change that"
                f"{self.policy.failure_hint(self.last_status)}",
            )
        delay = self.policy.next_interval(self.schedule, polled, self.wall_clock())
        self._report_progress(polled, getattr(self.schedule, "eta_seconds", lambda: None)())
        return Decision(None, last_status=self.last_status, delay=self._next_delay(delay))

    def first_poll_delay(self) -> float:
        """Seconds before the first poll in the triggerer: spread over the first interval (see
        :meth:`Jitter.first_poll <airflow_provider_aiontheball.polling.Jitter.first_poll>`), never past the
        deadline. Only :func:`wait_in_triggerer` waits it: a sensor's poke and an in-process wait poll at once."""
        return self._until_deadline(self.jitter.first_poll(self.schedule.min_interval))

    # -- the pieces of the decision ---------------------------------------------------------------------

    def _over(self, status: EventStatus, message: str, **extra: Any) -> Decision:
        return Decision(status, message, last_status=self.last_status, **extra)

    def _next_delay(self, interval: float, *, server_asked: bool = False) -> float:
        # Jitter decided here, once for every loop, after the schedule (which keeps its own, unjittered
        # notion of the interval) and before the deadline (which it must never push back). A server's
        # Retry-After is only lengthened: shortening it would send the poll it refused too early.
        if server_asked:
            delay = self.jitter.lengthen(interval)
        else:
            delay = self.jitter.interval(interval, self.schedule.min_interval, self.schedule.max_interval)
        return self._until_deadline(delay)

    def _until_deadline(self, delay: float) -> float:
        # Wake at the deadline at the latest, so the timeout is not late.
        remaining = self.remaining()
        return delay if remaining is None else min(delay, remaining)

    def _after_failure(self, exc: Exception) -> Decision:
        if (message := self._terminal_error_message(exc)) is not None:
            return self._over(EventStatus.FAILED, message, cause=exc)
        if not self.tolerates(exc):
            raise exc
        reason = describe_failure(exc)
        if self.budget.record_failure(reason):
            message = f"gave up waiting for {self.name}: the API kept failing ({self.budget.describe()})"
            return self._over(EventStatus.ERROR, message, cause=exc)
        retry_after = getattr(exc, "retry_after", None)
        delay = self._next_delay(self.schedule.after_failure(retry_after), server_asked=retry_after is not None)
        next_poll = f"; next poll in {format_duration(delay)}" if self.announce_delay else ""
        self.log.warning(
            "%s: poll failed with %s (%d of %d tolerated in a row)%s",
            self.name,
            reason,
            self.budget.consecutive,
            self.budget.max_consecutive,
            next_poll,
        )
        return Decision(None, last_status=self.last_status, delay=delay, cause=exc)

    @property
    def succeeded_before(self) -> bool:
        """Whether a request of this wait has succeeded: a poll here, or one before it started here."""
        return self.polled_before or self.last_resource is not None

    def tolerates(self, exc: BaseException) -> bool:
        """Whether the wait goes on after ``exc``, within its error budget: transient trouble
        (:func:`is_transient`), and a refused token once this wait has succeeded before — a rotation
        in progress (the old token revoked before the connection holds the new one; the hook reloads
        the connection on every refusal), not a wrong token, which fails the first request at once."""
        return is_transient(exc) or (isinstance(exc, AIOnTheBallAuthError) and self.succeeded_before)

    def _terminal_error_message(self, exc: Exception) -> str | None:
        """The message for an error that ends the wait for good (resource gone, access refused), else None."""
        if isinstance(exc, AIOnTheBallRouteMissingError):
            return f"cannot follow {self.name}: {exc.detail}; give the video_id to follow it through its video"
        if isinstance(exc, AIOnTheBallNotFoundError):
            return f"{self.name} no longer exists ({exc.detail})"
        if isinstance(exc, AIOnTheBallAuthError) and not self.succeeded_before:
            return (
                f"connection {self.conn_id!r} was refused with {exc.status_code} while waiting for {self.name}: "
                f"check its API token and access ({exc.detail})"
            )
        return None

    def _observe(self, resource: dict[str, Any]) -> Outcome:
        """Record one fetched state, log it if it changed, and classify it."""
        self.last_resource = resource
        raw = resource.get("status")
        status = None if raw is None else str(raw)
        self._unknown.check(self.resource_id, status)
        if status != self.last_status:
            now = self.clock()
            if self.last_status is None:
                self.log.info("%s: %s", self.name, self.policy.describe(resource))
            else:
                self.log.info(
                    "%s: %s → %s after %s",
                    self.name,
                    self.last_status,
                    self.policy.describe(resource),
                    format_duration(now - self._last_change),
                )
            self.last_status, self._last_change = status, now
        outcome = self.policy.vocabulary.classify(status)
        if outcome is Outcome.SUCCESS and not self.policy.ready(resource):
            if not self._warned_not_ready:
                self._warned_not_ready = True
                self.log.info("%s is %s but its results are not available yet; waiting.", self.name, status)
            return Outcome.IN_PROGRESS
        return outcome

    def _report_progress(self, resource: dict[str, Any], eta_seconds: float | None) -> None:
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

    def succeeded_message(self) -> str:
        return f"{self.name} is {self.last_status} after {format_duration(self.waited())}"

    def timed_out_message(self) -> str:
        return (
            f"{self.name} did not finish before the deadline: still {self.last_status or 'not seen'} "
            f"after {format_duration(self.waited())}"
        )


# -- the loops around the decision -----------------------------------------------------------------------


async def wait_in_triggerer(wait: Wait, fetch: Callable[[AIOnTheBallAsyncHook], Awaitable[dict[str, Any]]]) -> Decision:
    """The triggers' wait loop, in the triggerer's event loop: never blocks, never swallows cancellation.

    The first poll comes after :meth:`Wait.first_poll_delay` (spread over the first interval, so 1,000
    waits deferred in the same second do not poll in the same second; the sensor already poked on the
    worker before deferring). The deadline is checked before each poll and bounds each request and each
    sleep; transient failures are tolerated within the budget (``Retry-After`` sets the next interval;
    a 429 pauses every wait on the connection, see ``hooks/_async_sessions.RequestBudget``). Anything
    unexpected (connection missing or misconfigured, an unexpected answer) ends the wait with one
    ``error`` decision rather than a crashed trigger; ``asyncio.CancelledError`` is not an ``Exception``
    and propagates.
    """
    import asyncio

    from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallAsyncHook

    # Retries happen here, between polls, within the error budget; not inside one call.
    hook = AIOnTheBallAsyncHook(wait.conn_id, retry_limit=0)
    # Logged by every triggerer that runs this trigger: after a takeover the new owner shows the same
    # stored deadline (kwargs are absolute times, never "timeout from now").
    wait.log.info("%s: waiting in the triggerer; %s", wait.name, wait.deadline_phrase())
    try:
        async with hook:
            # After entering the hook: a misconfigured connection is reported at once, not after the delay.
            # Bounded by the deadline, so a wait resumed just before it still ends on time.
            if wait.expired() is None:
                await asyncio.sleep(wait.first_poll_delay())
            while (decision := wait.expired()) is None:
                try:
                    # The deadline bounds the request too: a slow answer must not make the timeout late.
                    async with asyncio.timeout(wait.remaining()):
                        polled: dict[str, Any] | Exception = await fetch(hook)
                except Exception as exc:
                    if isinstance(exc, TimeoutError) and wait.expired() is not None:
                        continue  # the deadline passed during the request: the loop's test reports it
                    polled = exc
                decision = wait.decide(polled)
                if decision.status is not None:
                    return decision
                await asyncio.sleep(decision.delay)
            return decision
    except Exception as exc:
        wait.log.exception("%s: waiting failed", wait.name)
        return Decision(
            EventStatus.ERROR,
            f"waiting for {wait.name} failed: {type(exc).__name__}: {exc}",
            last_status=wait.last_status,
        )


class WaitTrigger(BaseTrigger):
    """What both wait triggers share: the stored wait kwargs and the run in the triggerer.

    Each trigger keeps its own ``__init__`` signature, literal classpath and id kwargs (the stored contract,
    see ``tests/unit/triggers/test_trigger_contract.py``) and says which resource it polls (:meth:`target`).
    """

    #: The kind of resource the trigger waits for.
    policy: ClassVar[WaitPolicy]

    def __init__(
        self,
        *,
        aiontheball_conn_id: str,
        settings: WaitSettings,
        end_time: float | None,
        started_at: float | None,
        execution_deadline: float | None,
        finish_in_triggerer: dict[str, bool] | None,
        polled_before: bool,
    ) -> None:
        super().__init__()
        self.aiontheball_conn_id = aiontheball_conn_id
        self.settings = settings
        self.end_time = None if end_time is None else float(end_time)
        self.started_at = time.time() if started_at is None else float(started_at)
        self.execution_deadline = None if execution_deadline is None else float(execution_deadline)
        self.finish_in_triggerer = dict(finish_in_triggerer) if finish_in_triggerer else None
        self.polled_before = bool(polled_before)

    def wait_kwargs(self) -> dict[str, Any]:
        """The stored kwargs besides the ids. Optional ones are stored only when set, so rows stored before
        they existed rebuild unchanged."""
        return {
            "aiontheball_conn_id": self.aiontheball_conn_id,
            **self.settings.trigger_kwargs(),
            "end_time": self.end_time,
            "started_at": self.started_at,
            **({} if self.execution_deadline is None else {"execution_deadline": self.execution_deadline}),
            **({} if self.finish_in_triggerer is None else {"finish_in_triggerer": self.finish_in_triggerer}),
            **({"polled_before": True} if self.polled_before else {}),
        }

    def target(self) -> tuple[int, Callable[[AIOnTheBallAsyncHook], Awaitable[dict[str, Any]]]]:
        """The validated id and how to fetch the resource; :class:`ValueError` naming the field when an id
        rendered in the triggerer (``start_from_trigger``) is not an id."""
        raise NotImplementedError

    def xcoms_of(self, resource: dict[str, Any]) -> dict[str, Any]:
        """The XComs besides ``return_value`` that the task pushes on success."""
        return {}

    def __repr__(self) -> str:
        resource_id = getattr(self, self.policy.id_key, None)
        return (
            f"{type(self).__name__}({self.policy.id_key}={resource_id}, "
            f"aiontheball_conn_id={self.aiontheball_conn_id!r}, end_time={self.end_time})"
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_provider_aiontheball.task_end import bad_input_event, trigger_event

        try:
            resource_id, fetch = self.target()
        except ValueError as exc:
            yield bad_input_event(self.policy, str(exc))
            return
        wait = Wait(
            self.policy,
            resource_id,
            self.aiontheball_conn_id,
            self.log,
            self.settings,
            started_at=self.started_at,
            end_time=self.end_time,
            polled_before=self.polled_before,
        )
        decision = await wait_in_triggerer(wait, fetch)
        yield await trigger_event(
            self,
            self.policy,
            resource_id,
            decision,
            execution_deadline=self.execution_deadline,
            finish=self.finish_in_triggerer,
            xcoms_of=self.xcoms_of,
        )


def poll(wait: Wait, fetch: Callable[[], dict[str, Any]]) -> Decision:
    """One synchronous poll (a sensor's poke, a step of :func:`wait_in_process`).

    :return: the decision when the wait goes on; the resource's decision on success (also logged).
    :raises AIOnTheBallTerminalError: the resource failed, is gone, or access was refused (no retries).
    :raises AIOnTheBallWaitError: transient failures outlasted the error budget (Airflow retries apply).
    """
    try:
        polled: dict[str, Any] | Exception = fetch()
    except Exception as exc:
        polled = exc
    decision = wait.decide(polled)
    if decision.status is EventStatus.SUCCESS:
        wait.log.info(decision.message)
    elif decision.status is not None:
        from airflow_provider_aiontheball.task_end import raise_for

        raise_for(decision.status, decision.message, AIOnTheBallWaitError, cause=decision.cause)
    return decision


def wait_in_process(
    wait: Wait,
    fetch: Callable[[], dict[str, Any]],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Wait in the current process (a task that does not defer), polling exactly as the trigger would.

    :raises AIOnTheBallWaitError: the deadline passed, or transient failures outlasted the error budget;
        Airflow's retries apply.
    :raises AIOnTheBallTerminalError: the resource failed, is gone, or access was refused.
    """
    while True:
        decision = poll(wait, fetch)
        if decision.resource is not None:
            return decision.resource
        if (expired := wait.expired()) is not None:
            raise AIOnTheBallWaitError(expired.message)
        sleep(decision.delay)


def poke(wait: Wait, fetch: Callable[[], dict[str, Any]], context: Any, *, reschedule: bool) -> dict[str, Any] | None:
    """A sensor's poke: the resource once it succeeded, else ``None``; raises like :func:`poll`.

    In reschedule mode every poke is a new run: the error budget's streak is kept in the task state
    store (Airflow 3.3+), so a persistent 5xx fails the task after the budget, not only at the sensor's
    timeout. Without a store (Airflow < 3.3) each poke starts a new streak.
    """
    store = context.get("task_state_store") if reschedule else None
    saved = store.get(STATE_KEY_POKE_ERRORS) if store is not None else None
    if reschedule and not wait.succeeded_before:
        wait.polled_before = poked_before(context)
    if store is not None:
        wait.budget.restore(saved)
    try:
        decision = poll(wait, fetch)
    except Exception:
        if saved is not None:
            store.delete(STATE_KEY_POKE_ERRORS)  # type: ignore[union-attr]  # a retry starts a new budget
        raise
    if store is not None and (streak := wait.budget.state()) != saved:
        if streak is not None:
            store.set(STATE_KEY_POKE_ERRORS, streak)
        else:
            store.delete(STATE_KEY_POKE_ERRORS)
    return decision.resource


def poked_before(context: Any) -> bool:
    """Whether a reschedule-mode sensor poked before this poke (Airflow recorded a reschedule of it)."""
    ti = context.get("ti") if context else None
    first = getattr(ti, "get_first_reschedule_date", None)
    if first is not None:  # Airflow 3 (and the tests' stand-in)
        return first(context) is not None
    try:  # Airflow 2: the reschedules of this try in the metadata DB
        from airflow.models.taskinstance import TaskInstance
        from airflow.models.taskreschedule import TaskReschedule
        from airflow.utils.session import create_session
    except ImportError:
        return False
    if not isinstance(ti, TaskInstance):
        return False
    with create_session() as session:
        row = (
            session.query(TaskReschedule.id)
            .filter_by(dag_id=ti.dag_id, task_id=ti.task_id, run_id=ti.run_id, map_index=ti.map_index)
            .first()
        )
    return row is not None
