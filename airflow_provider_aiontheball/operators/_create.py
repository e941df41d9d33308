"""Exactly-once creation, shared by the create-video and create-analysis operators.

A create task must never make a second video or analysis when it is retried, when the answer to its
POST is lost, or when a proxy answers 5xx after the backend committed, and it must never take a
resource another task created. What the API documents is little: the video list shows ``id, status,
game_name, title, created_at``, the team names, ``duration`` and ``analyses`` (``{id, status}``) —
not the submitted URL — and ``GET /analyses/{id}`` is not documented at all. So:

1. **Durable record** (Airflow >= 3.3, ``durable=True``): right before the POST the task writes
   ``{"request": <sha256 of the request>, "posted_at": <ISO time>, "known_ids": [...]}`` to its task
   state store, and adds the ``id`` the moment the POST returns. A later try (retry, worker crash,
   cleared task) reads it back:

   * an id: reattach to exactly that resource, without any lookup, unless it is gone (404) or ended
     in a failure status (then a new one is created: "fix the source and clear the task" works);
   * no id (the POST's answer never came): look it up (3.) among resources created since
     ``posted_at`` (analyses: not among ``known_ids``, those that existed before the POST);
   * another request fingerprint (the inputs changed before a clear): create a new one.

   Nothing stored means no earlier try sent a POST: it is sent at once, without a lookup.
2. **Fallback** (Airflow < 3.3, or ``durable=False``): on a try after the first, look up (3.) among
   resources created since the DAG run started.
3. **Lookup**: matched on documented fields only (videos: title and team names, plus any submitted
   field the server happens to list; analyses: the video's ``analyses``), never a resource another
   task instance of this DAG run has claimed (its XCom ``video_id`` / ``analysis_id``), never one in
   a failure status. Exactly one candidate is reused; several are ambiguous: logged, none taken.
4. **A POST whose outcome is unknown** (:func:`~airflow_provider_aiontheball.hooks._client.outcome_unknown`)
   is never re-sent: the resource is looked up with back-off until ``commit_grace_period`` seconds
   after the POST. Still not visible: the try fails with
   :class:`~airflow_provider_aiontheball.exceptions.AIOnTheBallCreateOutcomeUnknownError`, and the
   next try looks again before it creates anything.

Why not Airflow's ``ResumableJobMixin``: it couples "submit" with "poll until complete", has no place
for step 4, and treats "no stored id" as "submit" — our create operators push their XCom, may defer,
and must look up a POST of unknown outcome. The store is used the same way (one key per operator,
written right after the POST returns) and the parameter has the same name and default, ``durable``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from airflow_provider_aiontheball.statuses import Outcome, StatusVocabulary

__all__ = ["CreateSpec", "claimed_ids", "create_exactly_once", "request_fingerprint"]

#: Longest pause between two lookups of a POST of unknown outcome.
_MAX_LOOKUP_PAUSE = 15.0

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
        pause = min(pause * 2, _MAX_LOOKUP_PAUSE)


@dataclass(frozen=True)
class CreateSpec:
    """How to create, read and find one kind of resource (a video, an analysis).

    :param kind: ``"video"`` or ``"analysis"`` (messages).
    :param vocabulary: its status vocabulary (a failed resource is never reused).
    :param state_key: task state store key of the durable record.
    :param claim_key: XCom key by which task instances claim the resources they created.
    :param request: the validated request (fingerprinted: never stored as such, it may hold a
        presigned URL).
    :param post: send the POST; returns the created resource.
    :param read: read a resource by id; ``None`` when it no longer exists.
    :param find: candidates created since ``since`` (not among ``known`` ids when given), excluding
        ``claimed`` ids and failed resources.
    :param snapshot: ids that exist right before the POST (analyses: the video's ``analyses``), or
        ``None`` when creation time is told by ``created_at`` (videos).
    :param describe: short text for logs, e.g. ``"video 790 (swift-eagle-43)"``.
    :param ambiguity_hint: what the user can do against ambiguous lookups.
    """

    kind: str
    vocabulary: StatusVocabulary
    state_key: str
    claim_key: str
    request: Mapping[str, Any]
    post: Callable[[], dict[str, Any]]
    read: Callable[[int], dict[str, Any] | None]
    find: Callable[[dt.datetime, frozenset[int] | None, frozenset[int]], list[dict[str, Any]]]
    snapshot: Callable[[], list[int]] | None
    describe: Callable[[dict[str, Any]], str]
    ambiguity_hint: str


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


def _as_id(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


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
    return frozenset(i for i in (_as_id(v) for v in values) if i is not None)


class _Lookup:
    """One lookup episode: the candidates, and whether it was ambiguous (for the caller's decision)."""

    def __init__(self, spec: CreateSpec, context: Mapping[str, Any], log: Any) -> None:
        self.spec = spec
        self.context = context
        self.log = log
        self._claimed: frozenset[int] | None = None
        self.ambiguous = False

    @property
    def claimed(self) -> frozenset[int]:
        if self._claimed is None:
            self._claimed = claimed_ids(self.context, self.spec.claim_key)
        return self._claimed

    def once(self, since: dt.datetime, known: frozenset[int] | None) -> dict[str, Any] | None:
        candidates = self.spec.find(since, known, self.claimed)
        if len(candidates) == 1:
            return candidates[0]
        if len(candidates) > 1:
            self.ambiguous = True
            self.log.warning(
                "Cannot tell which %s an earlier attempt of this task created: %s match and none is claimed "
                "by another task of this DAG run. Not reusing any of them. %s",
                self.spec.kind,
                ", ".join(self.spec.describe(c) for c in candidates),
                self.spec.ambiguity_hint,
            )
        return None

    def until(
        self, since: dt.datetime, known: frozenset[int] | None, deadline: float, *, clock: Callable[[], float]
    ) -> dict[str, Any] | None:
        """Look with back-off until found, ambiguous or ``deadline``."""
        return _repeat_until(
            lambda: self.once(since, known), lambda found: found is not None or self.ambiguous, deadline, clock
        )


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


def create_exactly_once(
    spec: CreateSpec,
    context: Mapping[str, Any],
    *,
    durable: bool,
    grace: float,
    log: Any,
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """Create the resource, or return the one an earlier attempt of this task created (module doc).

    :param durable: use the task state store where Airflow has one.
    :param grace: seconds after a POST of unknown outcome to keep looking for what it created.
    """
    from airflow_provider_aiontheball.exceptions import AIOnTheBallCreateOutcomeUnknownError
    from airflow_provider_aiontheball.hooks._client import outcome_unknown
    from airflow_provider_aiontheball.operators._base import run_started

    run_start = run_started(context)

    store = context.get("task_state_store") if durable else None
    fingerprint = request_fingerprint(spec.kind, spec.request)
    lookup = _Lookup(spec, context, log)
    try_number = getattr(context["ti"], "try_number", 1) or 1

    if store is not None:
        record = store.get(spec.state_key)
        if isinstance(record, dict) and record.get("request") != fingerprint:
            log.info("An earlier try of this task created a %s from other inputs; creating a new one.", spec.kind)
        elif isinstance(record, dict) and _as_id(record.get("id")) is not None:
            reattached = _reattach(spec, record, grace, log, clock)
            if reattached is not None:
                return reattached
        elif isinstance(record, dict) and (posted := _parse_iso(record.get("posted_at"))) is not None:
            known = record.get("known_ids")
            log.warning(
                "An earlier try of this task sent the POST at %s and never learnt its outcome; looking for the %s "
                "it may have created before creating one.",
                record["posted_at"],
                spec.kind,
            )
            found = lookup.until(
                posted,
                frozenset(known) if isinstance(known, list) else None,
                posted.timestamp() + grace,
                clock=clock,
            )
            if found is not None:
                log.info("Found %s: the earlier try's POST did create it; not creating another.", spec.describe(found))
                store.set(spec.state_key, {**record, "id": int(found["id"])})
                return found
    elif try_number > 1:
        if durable:
            log.info(
                "This Airflow has no task state store (Airflow < 3.3): looking for the %s an earlier try may "
                "have created by its documented fields.",
                spec.kind,
            )
        if run_start is None:
            log.warning(
                "Try %d, but the DAG run's start is unknown: cannot look for an earlier try's %s.",
                try_number,
                spec.kind,
            )
        elif (found := lookup.once(run_start, None)) is not None:
            log.info(
                "Reusing %s: an earlier try of this task created it (this is try %d); not creating another.",
                spec.describe(found),
                try_number,
            )
            return found

    known_ids = spec.snapshot() if spec.snapshot is not None else None
    posted_at = dt.datetime.fromtimestamp(clock(), dt.UTC)
    record = {"request": fingerprint, "posted_at": _iso(posted_at)}
    if known_ids is not None:
        record["known_ids"] = sorted(known_ids)
    if store is not None:
        store.set(spec.state_key, record)
    try:
        created = spec.post()
    except Exception as exc:
        if not outcome_unknown(exc):
            raise
        log.warning(
            "The outcome of the POST is unknown (%s): the server may have created the %s. Not re-sending it; "
            "looking for it for up to %.0f s.",
            exc,
            spec.kind,
            grace,
        )
        lookup.ambiguous = False
        found = lookup.until(
            posted_at,
            frozenset(known_ids) if known_ids is not None else None,
            posted_at.timestamp() + grace,
            clock=clock,
        )
        if found is None:
            raise AIOnTheBallCreateOutcomeUnknownError(
                f"the POST that creates the {spec.kind} may or may not have been carried out ({exc}), and "
                f"{'no single' if lookup.ambiguous else 'no'} {spec.kind} it may have created became visible within "
                f"{grace:g} s. It was not sent again, so no duplicate exists; the next try of this task looks for "
                "it again before creating one."
            ) from exc
        log.info("Found %s: the POST did create it; not creating another.", spec.describe(found))
        created = found
    if store is not None:
        store.set(spec.state_key, {**record, "id": int(created["id"])})
    return created
