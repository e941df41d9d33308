"""Exactly-once creation, shared by the create-video and create-analysis operators.

A create task must never make a second video or analysis when it is retried or cleared, and never take
one it did not create: a durable record in the task state store (Airflow >= 3.3), a lookup by documented
fields otherwise, and no re-sent POST whose outcome is unknown. docs/exactly-once.md states the
guarantee; the design (record, lookup, claims, grace period, why not ``ResumableJobMixin``) is in
docs/internals.md, "Exactly-once creation".
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_provider_aiontheball.defaults import MAX_LOOKUP_PAUSE
from airflow_provider_aiontheball.operators._base import CreationWindow
from airflow_provider_aiontheball.statuses import Outcome, StatusVocabulary
from airflow_provider_aiontheball.validation import validate_id

if TYPE_CHECKING:
    from airflow_provider_aiontheball.hooks._client import ServerClock

__all__ = ["CreateSpec", "claimed_ids", "create_exactly_once", "request_fingerprint"]


_T = TypeVar("_T")


def _repeat_until(
    attempt: Callable[[], _T], done: Callable[[_T], bool], deadline: float, clock: Callable[[], float]
) -> _T:
    """Call ``attempt`` until ``done`` says so or ``deadline`` (on ``clock``) has passed, pausing 1 s,
    doubling, at most 15 s; at least one call. The only back-off loop of the create path."""
    pause = 1.0
    while True:
        result = attempt()
        remaining = deadline - clock()
        if done(result) or remaining <= 0:
            return result
        time.sleep(min(pause, remaining))
        pause = min(pause * 2, MAX_LOOKUP_PAUSE)


@dataclass(frozen=True)
class CreateSpec:
    """How to create, read and find one kind of resource (a video, an analysis).

    :param kind: ``"video"`` or ``"analysis"`` (messages).
    :param vocabulary: its status vocabulary (a failed resource is never reused).
    :param state_key: task state store key of the durable record.
    :param claim_key: XCom key by which task instances claim the resources they created.
    :param request: what identifies the request (fingerprinted: never stored as such; the video URL's
        query, fresh at every render of a presigned URL, already left out).
    :param fields: names of the submitted fields: a 400/422 whose errors name only these fails the task.
    :param conn_id: the connection (named when the API refuses its token).
    :param post: send the POST; returns the created resource.
    :param read: read a resource by id; ``None`` when it no longer exists.
    :param find: candidates in the creation window (evaluated after its own requests, so the server's
        clock is as well known as it gets), not among ``known`` ids when given, excluding ``claimed``
        ids and failed resources.
    :param snapshot: ids visible right before the POST (analyses: the video's ``analyses``; videos: the
        first page of ``GET /videos``), excluded from what the POST may have created.
    :param server_clock: the API server's clock, from the ``Date`` of the hook's responses.
    :param describe: short text for logs, e.g. ``"video 790 (swift-eagle-43)"``.
    :param ambiguity_hint: what the user can do against ambiguous lookups.
    :param before_post: run once it is decided that a POST goes out, before the POST is recorded or sent (the
        video's pre-flight checks); what it raises fails the try with nothing in flight (the state store then
        holds only the request's "no POST got through" record, so a retry creates without looking first).
    """

    kind: str
    vocabulary: StatusVocabulary
    state_key: str
    claim_key: str
    request: Mapping[str, Any]
    fields: tuple[str, ...]
    conn_id: str
    post: Callable[[], dict[str, Any]]
    read: Callable[[int], dict[str, Any] | None]
    find: Callable[[Callable[[], CreationWindow], frozenset[int] | None, frozenset[int]], list[dict[str, Any]]]
    snapshot: Callable[[], list[int]]
    server_clock: ServerClock
    describe: Callable[[dict[str, Any]], str]
    ambiguity_hint: str
    before_post: Callable[[], None] = lambda: None


def request_fingerprint(kind: str, request: Mapping[str, Any]) -> str:
    """SHA-256 of the request: tells a retry of the same request from one whose inputs changed."""
    canonical = json.dumps({"kind": kind, "request": dict(request)}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat()


def _parse_iso(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _epoch(value: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(value, dt.UTC)


def claimed_ids(context: Mapping[str, Any], key: str) -> frozenset[int]:
    """Ids that other task instances of this DAG run pushed as XCom ``key`` (their created resources).

    A try's own XComs are cleared when it starts, so what is left is other tasks' and other map
    indexes' claims. Airflow 3 reads them through the Task SDK (one request per task of the DAG);
    Airflow 2 with one query of the metadata DB.
    """
    ti = context["ti"]
    values: list[Any] = []
    try:
        from airflow.sdk.bases.xcom import BaseXCom
    except ImportError:  # Airflow 2: workers read the metadata DB
        from airflow.models.taskinstance import TaskInstance
        from airflow.models.xcom import XCom
        from airflow.utils.session import create_session

        if not isinstance(ti, TaskInstance):  # execute() called directly, outside any DAG run
            return frozenset()
        with create_session() as session:
            rows = XCom.get_many(run_id=ti.run_id, key=key, dag_ids=ti.dag_id, session=session).all()
            for row in rows:
                if (row.task_id, row.map_index) != (ti.task_id, ti.map_index):
                    values.append(row.value)  # deserialized when loaded (BaseXCom.init_on_load)
    else:
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

        if not isinstance(ti, RuntimeTaskInstance):  # execute() called directly, outside any DAG run
            return frozenset()
        dag = context.get("dag")
        task_ids = list(getattr(dag, "task_ids", None) or [ti.task_id])
        for task_id in task_ids:
            found = BaseXCom.get_all(key=key, dag_id=ti.dag_id, task_id=task_id, run_id=ti.run_id)
            values.extend(found or [])
    return frozenset(i for i in (validate_id(v, strict=False) for v in values) if i is not None)


class _Lookup:
    """Lookups of what a POST of this task may have created: the candidates, and the ambiguous ones."""

    def __init__(self, spec: CreateSpec, context: Mapping[str, Any], log: Any) -> None:
        self.spec = spec
        self.context = context
        self.log = log
        self._claimed: frozenset[int] | None = None
        #: The candidates of the last lookup that found more than one, else empty.
        self.ambiguous: list[dict[str, Any]] = []

    @property
    def claimed(self) -> frozenset[int]:
        if self._claimed is None:
            self._claimed = claimed_ids(self.context, self.spec.claim_key)
        return self._claimed

    def once(self, window: Callable[[], CreationWindow], known: frozenset[int] | None) -> dict[str, Any] | None:
        candidates = self.spec.find(window, known, self.claimed)
        self.ambiguous = candidates if len(candidates) > 1 else []
        return candidates[0] if len(candidates) == 1 else None

    def until(
        self,
        window: Callable[[], CreationWindow],
        known: frozenset[int] | None,
        deadline: float,
        *,
        clock: Callable[[], float],
    ) -> dict[str, Any] | None:
        """Look with back-off until found, ambiguous or ``deadline``."""
        return _repeat_until(
            lambda: self.once(window, known), lambda found: found is not None or bool(self.ambiguous), deadline, clock
        )

    def names(self) -> str:
        return ", ".join(self.spec.describe(c) for c in self.ambiguous)


def _reattach(
    spec: CreateSpec, record: Mapping[str, Any], grace: float, log: Any, clock: Callable[[], float]
) -> dict[str, Any] | None:
    """The stored resource, unless it is gone or failed. A read that finds nothing is repeated until
    the grace period after its POST is over: a list-based read may lag behind the POST's commit."""
    resource_id = int(record["id"])
    posted = _parse_iso(record.get("posted_at"))
    deadline = (posted.timestamp() if posted else 0.0) + grace
    resource = _repeat_until(lambda: spec.read(resource_id), lambda found: found is not None, deadline, clock)
    if resource is None:
        log.warning(
            "The %s %s that an earlier try of this task created no longer exists; creating a new one.",
            spec.kind,
            resource_id,
        )
        return None
    status = resource.get("status")
    if spec.vocabulary.classify(status) is Outcome.FAILED:
        log.warning(
            "Not reattaching to %s that an earlier try of this task created: it ended in %r. Creating a new one.",
            spec.describe(resource),
            status,
        )
        return None
    log.info(
        "Reattaching to %s (status %s), which an earlier try of this task created (task state store); "
        "not creating another.",
        spec.describe(resource),
        status,
    )
    return resource


def _recorded_window(record: Mapping[str, Any]) -> CreationWindow | None:
    """The creation window of a POST a record tells of: on the server's clock when the record has it
    (``posted_after``), else the recording worker's ``posted_at`` with clock skew allowed."""
    if (server := _parse_iso(record.get("posted_after"))) is not None:
        return CreationWindow(server, exact=True)
    if (local := _parse_iso(record.get("posted_at"))) is not None:
        return CreationWindow(local, exact=False)
    return None


def _window_after(spec: CreateSpec, local: float) -> CreationWindow:
    """The creation window of a POST sent at our local epoch ``local``: on the server's clock once a ``Date``
    told us its offset from ours (call it after the lookup's own requests), else on ours with skew allowed."""
    server = spec.server_clock.floor_at(local)
    return (
        CreationWindow(_epoch(server), exact=True) if server is not None else CreationWindow(_epoch(local), exact=False)
    )


def _unknown_outcome_error(spec: CreateSpec, lookup: _Lookup, cause: str, grace: float) -> Exception:
    from airflow_provider_aiontheball.exceptions import AIOnTheBallCreateOutcomeUnknownError

    if lookup.ambiguous:
        return AIOnTheBallCreateOutcomeUnknownError(
            f"the POST that creates the {spec.kind} may or may not have been carried out ({cause}), and the "
            f"documented fields cannot tell which of {lookup.names()} it created, if any: none is taken for this "
            f"task's. {spec.ambiguity_hint} Delete the ones that are not this task's, or clear it to create a new "
            "one once the others are claimed."
        )
    return AIOnTheBallCreateOutcomeUnknownError(
        f"the POST that creates the {spec.kind} may or may not have been carried out ({cause}), and no {spec.kind} "
        f"it may have created became visible within {grace:g} s. It was not sent again, so no duplicate exists; "
        "the next try of this task looks for it again before creating one."
    )


def create_exactly_once(
    spec: CreateSpec,
    context: Mapping[str, Any],
    *,
    durable: bool,
    grace: float,
    log: Any,
    clock: Callable[[], float] | None = None,
) -> dict[str, Any]:
    """Create the resource, or return the one an earlier attempt of this task created (module doc).

    :param durable: use the task state store where Airflow has one.
    :param grace: seconds after a POST of unknown outcome to keep looking for what it created.
    :param clock: this worker's clock (epoch seconds). Default: the hook's (``spec.server_clock.local``), so
        that the POST's time and the responses' receipt times are read off one clock.
    """
    from airflow_provider_aiontheball.exceptions import AIOnTheBallAuthError, refusal_fails_task

    try:
        return _create(spec, context, durable=durable, grace=grace, log=log, clock=clock or spec.server_clock.local)
    except AIOnTheBallAuthError as exc:
        # A refused token fails the task without retries wherever it shows: the page read before the POST,
        # a lookup, a reattaching read. (The POST's own refusal also clears its record: see _create.)
        refusal = refusal_fails_task(exc, conn_id=spec.conn_id, action=f"creating the {spec.kind}", fields=())
        raise (refusal or exc) from exc


def _create(
    spec: CreateSpec, context: Mapping[str, Any], *, durable: bool, grace: float, log: Any, clock: Callable[[], float]
) -> dict[str, Any]:
    from airflow_provider_aiontheball.exceptions import refusal_fails_task
    from airflow_provider_aiontheball.hooks._client import outcome_unknown
    from airflow_provider_aiontheball.operators._base import run_started

    store = context.get("task_state_store") if durable else None
    fingerprint = request_fingerprint(spec.kind, spec.request)
    lookup = _Lookup(spec, context, log)
    try_number = getattr(context["ti"], "try_number", 1) or 1
    record = store.get(spec.state_key) if store is not None else None
    record = record if isinstance(record, dict) else None

    if record is not None and record.get("request") != fingerprint:
        log.info("An earlier try of this task created a %s from other inputs; creating a new one.", spec.kind)
    elif record is not None and validate_id(record.get("id"), strict=False) is not None:
        reattached = _reattach(spec, record, grace, log, clock)
        if reattached is not None:
            return reattached
    elif record is not None and (recorded := _recorded_window(record)) is not None:
        assert store is not None
        known = record.get("known_ids")
        log.warning(
            "An earlier try of this task sent the POST at %s and never learnt its outcome; looking for the %s "
            "it may have created (%s) before creating one.",
            record.get("posted_at"),
            spec.kind,
            recorded.describe(),
        )
        posted = _parse_iso(record.get("posted_at"))
        deadline = (posted.timestamp() if posted else clock()) + grace
        found = lookup.until(
            lambda: recorded, frozenset(known) if isinstance(known, list) else None, deadline, clock=clock
        )
        if lookup.ambiguous:
            raise _unknown_outcome_error(spec, lookup, "an earlier try never learnt its outcome", grace)
        if found is not None:
            log.info("Found %s: the earlier try's POST did create it; not creating another.", spec.describe(found))
            store.set(spec.state_key, {**record, "id": int(found["id"])})
            return found
    elif record is not None:
        log.info("No earlier try of this task sent its POST through (task state store); creating the %s.", spec.kind)
    elif try_number > 1:
        # No usable record: Airflow < 3.3, durable=False, or a record the state store no longer holds
        # ([state_store] clear_on_success, retention). An earlier try may have created it: look first.
        run_start = run_started(context)
        reason = "no task state store" if store is None else "no record of an earlier POST in the task state store"
        if run_start is None:
            log.warning(
                "Try %d (%s), but the DAG run's start is unknown: cannot look for an earlier try's %s.",
                try_number,
                reason,
                spec.kind,
            )
        # The run's start is the scheduler's clock, not this worker's: compared with CLOCK_SKEW_SECONDS allowed.
        # The earlier try's POST came before this try started, at most a grace period ago: a server that
        # lists new videos late has then listed it (looking again with back-off until then).
        elif (
            found := lookup.until(lambda: CreationWindow(run_start, exact=False), None, clock() + grace, clock=clock)
        ) is not None:
            log.info(
                "Reusing %s: an earlier try of this task created it (try %d, %s); not creating another.",
                spec.describe(found),
                try_number,
                reason,
            )
            if store is not None:
                store.set(spec.state_key, {"request": fingerprint, "id": int(found["id"])})
            return found
        elif lookup.ambiguous:
            log.warning(
                "Cannot tell which %s an earlier try of this task created: %s match and none is claimed by another "
                "task of this DAG run. Not reusing any; creating a new one. %s",
                spec.kind,
                lookup.names(),
                spec.ambiguity_hint,
            )

    if store is not None and record is None:
        # Before any request, the checks before upload included: a later try that finds only this knows no POST
        # of this task got through, and creates without looking (a lookup by fields could take another
        # pipeline's video; without it, a retry after a source that did not answer would look for a grace period).
        store.set(spec.state_key, {"request": fingerprint})
    spec.before_post()
    known_ids = spec.snapshot()
    posted_local = clock()
    posted_after = spec.server_clock.floor_at(posted_local)
    record = {"request": fingerprint, "posted_at": _iso(_epoch(posted_local)), "known_ids": sorted(known_ids)}
    if posted_after is not None:
        record["posted_after"] = _iso(_epoch(posted_after))
    if store is not None:
        store.set(spec.state_key, record)
    try:
        created = spec.post()
    except Exception as exc:
        if not outcome_unknown(exc):
            # The API refused it: nothing is in flight, and no later try must look for it.
            if store is not None:
                store.set(spec.state_key, {"request": fingerprint})
            refusal = refusal_fails_task(
                exc, conn_id=spec.conn_id, action=f"the POST that creates the {spec.kind}", fields=spec.fields
            )
            if refusal is not None:
                raise refusal from exc
            raise
        log.warning(
            "The outcome of the POST is unknown (%s): the server may have created the %s. Not re-sending it; "
            "looking for it for up to %.0f s.",
            exc,
            spec.kind,
            grace,
        )

        found = lookup.until(
            lambda: _window_after(spec, posted_local), frozenset(known_ids), posted_local + grace, clock=clock
        )
        if found is None:
            raise _unknown_outcome_error(spec, lookup, str(exc), grace) from exc
        log.info("Found %s: the POST did create it; not creating another.", spec.describe(found))
        created = found
    if store is not None:
        store.set(spec.state_key, {**record, "id": int(created["id"])})
    return created
