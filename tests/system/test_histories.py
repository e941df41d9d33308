"""Generated fault histories of create → wait → results, against the simulator over loopback.

A hypothesis state machine plays one create-video task of one DAG run through random interleavings of what
happens to real pipelines: faults on its POST (lost answers, 5xx before and after the commit, proxies
answering for an API they never reached), late commits, retries and clears, another pipeline creating the
same match, URLs re-signed at every render, task state store records that expire, a worker clock minutes
off the server's, token rotations in both orders (between tries and during a deferred wait), triggerer
restarts, garbled and oversized answers while waiting, and downloads redirected to a CDN. The video's source is
a real Range-capable server on loopback with real MP4s; with the pre-flight checks on (the task's ``preflight``
or the connection's extra), each try draws what the source does: the good file, one that breaks a documented
requirement (50 fps, 1440p, 9 minutes, a MOV), a 404, a 503, no listener at all, or a URL signed to expire
within the margin — and the next try may find it fixed.

After every step it checks the invariants the docs promise (docs/exactly-once.md):

* the task never holds a video it did not create (a foreign one only where the docs say so: with no
  state-store record to go by, one made during the run, matching every listed field, unclaimed);
* at most one video of this task's request exists, but for the duplicates the docs document;
* a refused token or field leaves nothing in flight;
* a try whose pre-flight fails sends no ``POST /videos`` and leaves nothing in flight (state-store record,
  XCom); a requirement not met fails the task without retries (``AirflowFailException``) naming the value
  measured and the limit, an unreachable or 5xx source fails the try (retries apply); every POST with the
  checks on follows a probe of a good source;
* a retry that reattaches to the video an earlier try created fetches nothing from the source;
* the probe sends the source no token and no ``Authorization`` header, and reads under 5% of the long file;
* no token or signature (the API's, the CDN's, the source's presigned query) in any log line, exception, XCom,
  state-store record, trigger row or event;
* every wait ends as the server's final status implies; a download equals the API's file and never carries
  the token to another host.

``make test`` runs the fast profile (``AIB_HISTORIES=fast``); ``make soak`` thousands of histories. The seed
is printed with any failure: ``AIB_HISTORY_SEED=<seed> make test-airflow PYTEST_ARGS=tests/system/test_histories.py``
replays it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException
from hypothesis import HealthCheck, Phase, note, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from airflow_provider_aiontheball.defaults import PREFLIGHT_EXPIRY_MARGIN_SECONDS, XCOM_VIDEO_ID
from airflow_provider_aiontheball.exceptions import (
    AIOnTheBallAPIError,
    AIOnTheBallCreateOutcomeUnknownError,
    AIOnTheBallError,
    AIOnTheBallTerminalError,
)
from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallHook
from airflow_provider_aiontheball.operators.video import AIOnTheBallCreateVideoOperator
from airflow_provider_aiontheball.preflight import PreflightUnavailableError
from airflow_provider_aiontheball.testing.simulator import Fault, Simulator, SimulatorConfig, SimulatorServer
from airflow_provider_aiontheball.triggers.video import AIOnTheBallVideoTrigger
from airflow_provider_aiontheball.validation import url_identity
from tests.helpers import (
    CONN_ENV,
    MAKEFILE_AIRFLOW,
    RecordingStateStore,
    connection_json,
    durable_context,
    only_on_airflow,
    structlog_entries,
    task_context,
)
from tests.media import Answer, Served, Server, make_video_dir, serving, switched_handler

settings.register_profile(
    "fast", max_examples=60, stateful_step_count=10, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.register_profile(
    "soak", max_examples=2000, stateful_step_count=20, deadline=None, suppress_health_check=list(HealthCheck)
)
#: The fast profile without shrinking: to check quickly that a reintroduced bug is found.
settings.register_profile("find", settings.get_profile("fast"), phases=[Phase.explicit, Phase.generate])
PROFILE = os.environ.get("AIB_HISTORIES", "fast")
SEED = int(os.environ.get("AIB_HISTORY_SEED") or random.SystemRandom().randrange(2**32))

FOREIGN_URL = "https://bucket.example/2025/ajax-psv-other-pipeline.mp4"
MATCH = {"title": "Ajax vs PSV", "home_team_name": "Ajax", "away_team_name": "PSV"}
GRACE = 0.4
FAST_WAIT = {"poll_interval": 0.1, "min_poll_interval": 0.02, "max_consecutive_errors": 4}
#: Faults on this task's next POST: where the commit happens decides what the lookup must find.
POST_FAULTS = {
    "lost-answer": {"kind": "drop_after_processing"},
    "503-after-commit": {"kind": "status_after_processing", "status": 503},
    "504-after-commit": {"kind": "status_after_processing", "status": 504},
    "503-never-reached": {"kind": "status", "status": 503},
    "dropped-before": {"kind": "drop"},
    "422-refused": {"kind": "status", "status": 422},
}
#: Faults on the wait's next polls: each within its error budget.
GET_FAULTS = {
    "none": None,
    "503": {"kind": "status", "status": 503, "count": 2},
    "garbled": {"kind": "malformed", "count": 1},
    "oversized": {"kind": "inflate", "size": 3 * 1024 * 1024, "count": 1},
}
#: What the video's source does on a try, at the same URL (a file replaced, taken down or fixed between
#: tries): the file it serves, an HTTP status, or ``None``: nothing listens (connection refused).
LONG_FILE = "match-11min.mp4"
SOURCES: dict[str, str | int | None] = {
    "good": LONG_FILE,
    "50fps": "broadcast-50fps.mp4",
    "1440p": "qhd-1440p.mp4",
    "9min": "match-9min.mp4",
    "mov": "iphone.mov",
    "404": 404,
    "503": 503,
    "unreachable": None,
    "expiring": LONG_FILE,  # the good file, behind a URL signed to expire within the margin
}
#: The value measured and the limit a try's message must name, per source that breaks a requirement.
BROKEN = {
    "50fps": ("video is 50 fps", "the API requires 25 fps"),
    "1440p": ("video is 2560x1440", "the API requires 1080p or lower"),
    "9min": ("video lasts 9m", "the API requires at least 10m"),
    "mov": ("video is QuickTime MOV", "the API supports MP4 only"),
    "404": ("answered 404", "the API requires a public URL"),
    "expiring": ("the presigned URL expires in", "must stay valid for at least 15m"),
}
#: Sources a later try may find working again: the try fails, retries apply.
UNAVAILABLE = {"503", "unreachable"}
#: Three tries in four meet a good source: a retry after a failed check has no record to go by, so it looks for
#: an earlier try's video for the whole grace period (GRACE) — at every failed check, the fast profile's main cost.
SOURCE_DRAWS = ["good"] * 3 * (len(SOURCES) - 1) + sorted(set(SOURCES) - {"good"})
EXPIRING_SECONDS = PREFLIGHT_EXPIRY_MARGIN_SECONDS // 2


@dataclass
class VideoSource:
    """The loopback server the task's ``video_file_url`` points at, and what it answers next."""

    server: Server
    answer: Answer
    url: str
    long_file_bytes: int

    def does(self, source: str) -> None:
        served = SOURCES[source]
        self.answer.file = served if isinstance(served, str) else None
        self.answer.status = served if isinstance(served, int) else 404
        if served is None:
            self.server.refuse_connections()
        else:
            self.server.accept_connections()


@dataclass
class Try:
    """What one try of the create task did, as the invariants check it."""

    source: str  # what its source did (``expiring`` when its URL was signed to expire within the margin)
    checks_on: bool
    outcome: str = "video"  # video, requirement, unavailable, refused, unknown
    error: BaseException | None = None
    posts: int = 0  # POST /videos sent in this try
    probes: list[dict[str, str]] = field(default_factory=list)  # headers of each request its source got
    bytes_read: int = 0  # file bytes its source sent
    record_before: Any = None
    record_after: Any = None
    xcoms: dict[str, Any] = field(default_factory=dict)


class CreateWaitHistory(RuleBasedStateMachine):
    """One create-video task (and its waits) of one DAG run, under a generated history."""

    def __init__(self, source: VideoSource) -> None:
        super().__init__()
        self.source = source

    @initialize(
        durable=st.booleans(),
        commit_delay=st.sampled_from([0.0, 0.15]),
        skew=st.sampled_from([0.0, 600.0, -600.0]),
        echo=st.booleans(),
        older_videos=st.sampled_from([0, 20]),
        checks=st.sampled_from(["off", "off", "task", "connection"]),
    )
    def start(
        self, durable: bool, commit_delay: float, skew: float, echo: bool, older_videos: int, checks: str
    ) -> None:
        note(f"replay: AIB_HISTORY_SEED={SEED}")
        self.steps: list[str] = [
            f"start(durable={durable}, commit_delay={commit_delay}, skew={skew}, echo={echo}, "
            f"older_videos={older_videos}, checks={checks})"
        ]
        self.checks = checks  # who switches the pre-flight checks on: off, the task or the connection
        self.tries: list[Try] = []
        self.source.does("good")
        self.source.server.seen.reset()
        self.token = f"history-token-{secrets.token_hex(8)}"
        self.tokens_seen = [self.token]
        self.signatures: list[str] = []
        config = SimulatorConfig(
            tokens={self.token: "org-1"},
            video_step_seconds=0.03,
            commit_delay_seconds=commit_delay,
            echo_submitted_fields=echo,  # the worst case: a server that echoes the presigned URL back
            analysis_init_seconds=0.01,
            analysis_seconds=0.05,
            analysis_aggregating_seconds=0.01,
        )
        self.server = SimulatorServer(Simulator(config)).start()
        self.previous_conn = os.environ.get(CONN_ENV)
        self.set_connection(self.token)
        with AIOnTheBallHook() as hook:  # an organisation's history: the first page then lists none of this run's
            for n in range(older_videos):
                old = int(hook.create_video(f"https://bucket.example/2024/old-{n}.mp4", title=f"Old {n}")["id"])
                self.server.simulator.backdate_video(old, 86400)
        self.durable, self.skew = durable, skew
        self.store = RecordingStateStore() if durable else None
        self.run_start = time.time() - 1
        self.try_number = 0
        self.resign()
        self.holds: int | None = None  # the video the last successful try returned
        self.revoked = False
        self.documented_duplicates = 0
        self.foreign: set[int] = set()
        self.same_second: set[int] = set()
        self.taken_by_fields: set[int] = set()
        self.texts: list[str] = []  # everything that must never show a secret
        self.records: list[logging.LogRecord] = []
        handler = logging.Handler(logging.DEBUG)
        handler.emit = self.records.append  # type: ignore[method-assign]
        self.handler = handler
        logging.getLogger().addHandler(handler)
        logging.getLogger().setLevel(logging.DEBUG)
        self.structlog = structlog_entries()
        self.entries = self.structlog.__enter__()

    def teardown(self) -> None:
        self.source.does("good")  # the next history starts from a source that answers
        if not hasattr(self, "structlog"):  # start() failed early: nothing else was set up
            if hasattr(self, "server"):
                self.server.stop()
            return
        self.structlog.__exit__(None, None, None)
        logging.getLogger().removeHandler(self.handler)
        self.server.stop()
        if self.previous_conn is None:
            os.environ.pop(CONN_ENV, None)
        else:
            os.environ[CONN_ENV] = self.previous_conn

    # -- helpers ---------------------------------------------------------------------------------------

    def set_connection(self, token: str) -> None:
        extra = {"retry_limit": 1, "retry_min_wait": 0.01, "retry_max_wait": 0.05, "timeout": 5, "max_response_mb": 1}
        extra["preflight"] = self.checks == "connection"
        os.environ[CONN_ENV] = connection_json(self.server.base_url, token=token, **extra)

    def url(self) -> str:
        return f"{self.source.url}?{self.query}"

    def videos(self) -> dict[int, dict[str, Any]]:
        simulator = self.server.simulator
        found = {}
        for video_id in range(simulator.config.first_video_id, simulator.config.first_video_id + 200):
            submitted = simulator.submitted_video(video_id)
            if submitted is None:
                break
            found[video_id] = submitted
        return found

    def ours(self) -> set[int]:
        return {i for i, v in self.videos().items() if url_identity(v["video_file_url"]) == self.source.url}

    def logged_since(self, records: int, entries: int, text: str) -> bool:
        """Whether a log line (stdlib or structlog) after the first ``records``/``entries`` contains ``text``."""
        logged = [r.getMessage() for r in self.records[records:]] + [repr(e) for e in self.entries[entries:]]
        return any(text in line for line in logged)

    def record(self) -> Any:
        return None if self.store is None else self.store.get("aiontheball_create_video")

    def context(self) -> dict[str, Any]:
        if self.store is not None:
            return durable_context(self.store, self.try_number, run_started=_utc(self.run_start))
        return task_context(self.try_number, run_started=_utc(self.run_start))

    # -- what happens ----------------------------------------------------------------------------------

    def resign(self, expires_in: int = 86400) -> None:
        """The next render presigns the URL afresh (a new signature and expiry)."""
        self.signatures.append(secrets.token_hex(20))
        signed = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self.query = f"X-Amz-Date={signed}&X-Amz-Expires={expires_in}&X-Amz-Signature={self.signatures[-1]}"
        self.expiring = expires_in < PREFLIGHT_EXPIRY_MARGIN_SECONDS

    def fault_on_the_next_post(self, fault: str) -> None:
        self.server.simulator.add_fault(
            Fault(method="POST", path="/videos", body_match={"video_file_url": self.url()}, **POST_FAULTS[fault])
        )

    def another_pipeline_creates_the_match(self, seconds_before: int) -> None:
        with AIOnTheBallHook() as hook:
            video_id = int(hook.create_video(FOREIGN_URL, **MATCH)["id"])
        if seconds_before:
            self.server.simulator.backdate_video(video_id, seconds_before)
        else:  # Documented: within the second before a POST, and not yet listed, it cannot be told from one's own
            self.same_second.add(video_id)
        self.foreign.add(video_id)

    @rule()
    def revoke_the_token(self) -> None:
        """The first half of a rotation done in the wrong order: the old token dies before the new one is in."""
        self.steps.append("revoke_the_token()")
        self.server.simulator.revoke_token(self.token)
        self.revoked = True

    @rule()
    def install_a_new_token(self) -> None:
        self.steps.append("install_a_new_token()")
        self.token = f"history-token-{secrets.token_hex(8)}"
        self.tokens_seen.append(self.token)
        self.server.simulator.add_token(self.token, "org-1")
        self.set_connection(self.token)
        self.revoked = False

    @rule(
        resigned=st.booleans(),
        other_pipeline=st.sampled_from([None, None, None, 0, 3]),
        fault=st.sampled_from([None, None, *sorted(POST_FAULTS)]),
        store_forgot=st.booleans(),
        source=st.sampled_from(SOURCE_DRAWS),
    )
    def a_try_of_the_create_task(
        self, resigned: bool, other_pipeline: int | None, fault: str | None, store_forgot: bool, source: str
    ) -> None:
        """A retry, or a clear of the task: a new try (Airflow clears the try's XComs, keeps the store). Before
        it, maybe: the URL presigned afresh for it (``expiring``: to expire within the pre-flight margin),
        another pipeline creating the same match (moments or 3 s earlier), a fault waiting for its POST, the
        state store's record gone ([state_store] clear_on_success, or its retention ran out), and what the
        video's source does in this try. Rules never depend on what a try returned, which depends on timing:
        hypothesis must be able to replay a history."""
        self.steps.append(
            f"a_try_of_the_create_task(resigned={resigned}, other_pipeline={other_pipeline}, fault={fault}, "
            f"store_forgot={store_forgot}, source={source})"
        )
        if store_forgot and self.store is not None:
            self.store.values.clear()
        if other_pipeline is not None and not self.revoked:
            self.another_pipeline_creates_the_match(other_pipeline)
        if source == "expiring":
            self.resign(expires_in=EXPIRING_SECONDS)
        elif resigned:
            self.resign()
        if fault is not None:
            self.fault_on_the_next_post(fault)
        self.source.does(source)
        self.try_number += 1
        before = self.ours()
        task = AIOnTheBallCreateVideoOperator(
            task_id="create_video",
            video_file_url=self.url(),
            commit_grace_period=GRACE,
            durable=self.durable,
            preflight=True if self.checks == "task" else None,
            **MATCH,
        )
        if self.skew:
            task.hook.server_clock.local = lambda: time.time() + self.skew
        context = self.context()
        # A URL not signed again keeps its expiry: a try on it fails the expiry check whatever the file.
        this = Try(source="expiring" if self.expiring else source, checks_on=self.checks != "off")
        this.record_before = self.record()
        self.tries.append(this)
        records_before, entries_before = len(self.records), len(self.entries)
        requests_before, seen = len(self.server.simulator.requests), self.source.server.seen
        probes_before, bytes_before = len(seen.headers), seen.bytes_sent
        try:
            video = task.execute(context)
        except AIOnTheBallCreateOutcomeUnknownError as exc:
            this.outcome, this.error = "unknown", exc
            self.texts.append(str(exc))
            self.steps.append(f"  -> outcome unknown (ours: {sorted(self.ours())}, foreign: {sorted(self.foreign)})")
            self.holds = None
            if "became visible" in str(exc):
                # Not found, and not ambiguous: a video this POST created is listed within the commit delay
                # (shorter than the grace period), so there must be none.
                assert self.ours() == before, "its own video was listed in time, yet not found:\n" + "\n".join(
                    self.steps
                )
            return
        except PreflightUnavailableError as exc:
            this.outcome, this.error = "unavailable", exc
            self.texts.append(str(exc))
            self.steps.append(f"  -> source unavailable: {exc}")
            self.holds = None
            return
        except (AIOnTheBallTerminalError, AirflowFailException, AIOnTheBallAPIError) as exc:
            self.texts.append(str(exc))
            if "(checked before upload; pre-flight measured:" in str(exc):  # VideoRequirementError's message
                this.outcome, this.error = "requirement", exc
                self.steps.append(f"  -> requirement not met: {exc}")
                self.holds = None
                return
            if isinstance(exc, AIOnTheBallAPIError) and not (fault == "422-refused" and exc.status_code == 422):
                raise
            this.outcome, this.error = "refused", exc
        finally:
            self.server.simulator.clear_faults()  # a fault its try never met (no POST sent) ends with it
            this.posts = sum(
                r.method == "POST" and r.path == "/videos" for r in self.server.simulator.requests[requests_before:]
            )
            this.probes, this.bytes_read = seen.headers[probes_before:], seen.bytes_sent - bytes_before
            this.record_after, this.xcoms = self.record(), dict(context["ti"].xcoms)
            self.texts += [json.dumps(context["ti"].xcoms, default=str)]
            if self.store is not None:
                self.texts.append(json.dumps(self.store.values))
            if self.logged_since(records_before, entries_before, "Cannot tell which video an earlier try"):
                # Documented: a retry with no record to go by (no store, or it forgot) looks by documented fields
                # since the run began; finding several unclaimed candidates, it says so and creates a new one —
                # in this try, or, if this POST's outcome stays unknown, in the try that completes it.
                self.documented_duplicates += 1
        if this.outcome == "refused":
            assert this.error is not None
            self.steps.append("  -> refused")
            assert self.revoked or fault == "422-refused", f"only a revoked token or a 422 refuses: {this.error}"
            record = self.record()
            in_flight = isinstance(record, dict) and "posted_at" in record and "id" not in record
            # An earlier try's POST of unknown outcome stays in flight (the next try must still look for it);
            # none of this try's requests may add one.
            assert not in_flight or record == this.record_before, "a refused request left a POST in flight"
            self.holds = None
            return
        self.holds = int(video["id"])
        if self.logged_since(records_before, entries_before, "an earlier try of this task created it (try"):
            # Documented: with no record to go by (no task state store, or it forgot), a retry takes a video made
            # during the run that matches every listed field and that no task of the run claims.
            assert self.try_number > 1
            assert not isinstance(this.record_before, dict), "taken by fields although a record told what was sent"
            self.taken_by_fields.add(self.holds)
        self.texts.append(json.dumps(video))
        self.steps.append(f"  -> video {self.holds} (ours: {sorted(self.ours())}, foreign: {sorted(self.foreign)})")

    @rule(fault=st.sampled_from(sorted(GET_FAULTS)), restart=st.booleans(), rotate=st.booleans())
    def a_deferred_wait(self, fault: str, restart: bool, rotate: bool) -> None:
        """The video's wait in the triggerer: rebuilt from its row after a triggerer restart, through faults
        and a token rotation that revokes the old token first."""
        self.steps.append(f"a_deferred_wait(fault={fault!r}, restart={restart!r}, rotate={rotate!r})")
        if self.holds is None:
            return
        if self.revoked:
            self.install_a_new_token()
        trigger = AIOnTheBallVideoTrigger(self.holds, polled_before=True, **FAST_WAIT)
        _classpath, kwargs = trigger.serialize()
        self.texts.append(json.dumps(kwargs))
        if restart:
            trigger = AIOnTheBallVideoTrigger(**kwargs)
        if GET_FAULTS[fault] is not None:
            self.server.simulator.add_fault(Fault(method="GET", path=f"/videos/{self.holds}", **GET_FAULTS[fault]))
        records_before, entries_before = len(self.records), len(self.entries)
        try:
            event = asyncio.run(self._run_wait(trigger, rotate))
        finally:
            self.server.simulator.clear_faults()
        self.texts.append(json.dumps(event))
        if fault == "oversized":  # 3 MiB decoded against max_response_mb=1: refused, never parsed whole
            assert self.logged_since(records_before, entries_before, "larger than 1 MiB once decompressed"), (
                "an answer past max_response_mb was read whole"
            )
        status = (self.server.simulator.video_json(self.holds) or {}).get("status")
        assert event["status"] == ("success" if status == "available" else "failed"), (event, status)

    async def _run_wait(self, trigger: AIOnTheBallVideoTrigger, rotate: bool) -> dict[str, Any]:
        async def rotate_after_a_refusal() -> None:
            self.revoke_the_token()
            while not any(r.status == 401 for r in self.server.simulator.requests):
                await asyncio.sleep(0.01)
            self.install_a_new_token()

        rotation = asyncio.ensure_future(rotate_after_a_refusal()) if rotate else None
        events = [event.payload async for event in trigger.run()]
        if rotation is not None:
            rotation.cancel()
            if self.revoked:
                self.install_a_new_token()
        assert len(events) == 1, events
        return dict(events[0])

    @rule(redirect=st.booleans())
    def results_downloaded(self, redirect: bool) -> None:
        self.steps.append(f"results_downloaded(redirect={redirect!r})")
        if self.holds is None:
            return
        if self.revoked:
            self.install_a_new_token()
        with AIOnTheBallHook() as hook:
            analysis = hook.create_analysis(self.holds)
            self.server.simulator.advance(60)
            direct = _download(hook, analysis["id"])
            if redirect:
                port = self.server.base_url.split(":")[2].split("/")[0]
                signature = secrets.token_hex(16)
                self.signatures.append(signature)
                cdn = f"http://localhost:{port}/_cdn/tracking/{analysis['id']}?X-Amz-Signature={signature}"
                self.server.simulator.add_fault(
                    Fault(kind="redirect", location=cdn, path=f"/analyses/{analysis['id']}/tracking/download")
                )
            try:
                assert _download(hook, analysis["id"]) == direct
            finally:
                self.server.simulator.clear_faults()
        cdn_requests = [r for r in self.server.simulator.requests if r.path.startswith("/_cdn/")]
        assert not any(r.authorization for r in cdn_requests), "the token went to the CDN"

    # -- invariants ------------------------------------------------------------------------------------

    @invariant()
    def holds_only_its_own_video(self) -> None:
        if getattr(self, "holds", None) is None:
            return
        documented = self.same_second | self.taken_by_fields
        assert self.holds in self.ours() | documented, "it holds another pipeline's video:\n" + "\n".join(self.steps)

    @invariant()
    def at_most_one_video_per_request(self) -> None:
        if not hasattr(self, "server"):
            return
        assert len(self.ours()) <= 1 + self.documented_duplicates, "\n".join(self.steps)

    @invariant()
    def a_failed_check_sends_nothing(self) -> None:
        for number, this in enumerate(getattr(self, "tries", []), 1):
            if this.outcome in ("requirement", "unavailable"):
                where = f"try {number} ({this.source}):\n" + "\n".join(self.steps)
                assert this.posts == 0, "a try whose pre-flight failed sent POST /videos; " + where
                # At most a record that no POST went out: never one of a POST (in flight or with an id).
                added = this.record_after != this.record_before and isinstance(this.record_after, dict)
                assert not (added and set(this.record_after) - {"request"}), (
                    "a failed pre-flight left a record; " + where
                )
                assert XCOM_VIDEO_ID not in this.xcoms, "a failed pre-flight pushed a video id; " + where

    @invariant()
    def a_check_fails_as_its_source_implies(self) -> None:
        for number, this in enumerate(getattr(self, "tries", []), 1):
            where = f"try {number} ({this.source}): {this.error}\n" + "\n".join(self.steps)
            if this.outcome in ("requirement", "unavailable"):
                assert this.checks_on, "the checks are off, yet pre-flight failed; " + where
            if this.outcome == "requirement":
                assert this.source in BROKEN, "a requirement failed on a source that meets them; " + where
                assert isinstance(this.error, AirflowFailException), "a requirement not met retries; " + where
                for phrase in BROKEN[this.source]:  # the value measured, the limit
                    assert phrase in str(this.error), f"{phrase!r} not in the message; " + where
            if this.outcome == "unavailable":
                assert this.source in UNAVAILABLE, "unavailable, yet the source answered; " + where
                assert not isinstance(this.error, AirflowFailException), "an unreachable source skips retries; " + where
            if this.posts and this.checks_on:
                # A POST goes out only once pre-flight passed, which only the good file at a lasting URL does.
                assert this.source == "good", "a source that breaks a requirement was posted; " + where
                assert this.probes, "posted without probing the source first; " + where
            if not this.checks_on:
                assert not this.probes, "the checks are off, yet the source was fetched; " + where

    @invariant()
    def a_reattaching_try_fetches_nothing(self) -> None:
        for number, this in enumerate(getattr(self, "tries", []), 1):
            if this.outcome == "video" and not this.posts:  # an earlier try's video: reattached or found
                assert not this.probes, f"try {number} reattached, yet probed its source:\n" + "\n".join(self.steps)

    @invariant()
    def the_probe_is_anonymous_and_glances(self) -> None:
        for this in getattr(self, "tries", []):
            for headers in this.probes:
                sent = {name.lower() for name in headers}
                assert not sent & {"authorization", "cookie"}, f"the probe sent credentials: {sorted(sent)}"
                assert not any(token in value for token in self.tokens_seen for value in headers.values()), (
                    "the probe sent the API token"
                )
            if SOURCES[this.source] == LONG_FILE:  # the header and the index, not the media
                assert this.bytes_read < 0.05 * self.source.long_file_bytes, (
                    f"the probe read {this.bytes_read} bytes of {self.source.long_file_bytes}"
                )

    @invariant()
    def no_secret_anywhere(self) -> None:
        if not hasattr(self, "server"):
            return
        # urllib3's lines too: they quote each URL requested, the source's presigned one included.
        logged = [record.getMessage() for record in self.records]
        written = "\n".join(self.texts + logged + [repr(entry) for entry in self.entries])
        for secret in (*self.tokens_seen, *self.signatures):
            assert secret not in written, "a secret reached a log line, exception, XCom, record, row or event"


def _utc(epoch: float) -> Any:
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch, dt.UTC)


def _download(hook: AIOnTheBallHook, analysis_id: int) -> bytes:
    import io

    buffer = io.BytesIO()
    hook.download_tracking(analysis_id, buffer)
    return buffer.getvalue()


# The histories drive the operator and the trigger directly (a stand-in state store): make test runs the fast
# profile on the default and the oldest Airflow only (stdlib logging vs structlog, both masking paths); every
# version runs the Airflow-facing paths in the other tests. Any other profile (make soak) runs anywhere.
IN_MAKE_TEST = (
    only_on_airflow(MAKEFILE_AIRFLOW, "2.11.2", reason="the fast profile runs on the default and oldest Airflow")
    if PROFILE == "fast"
    else pytest.mark.skipif(False, reason="make soak and other profiles run on any Airflow")
)


@pytest.fixture(scope="module")
def video_source() -> Iterator[VideoSource]:
    """One source server for every history (the files are made once per machine: tests/media.py)."""
    from aiohttp import web

    directory, answer = make_video_dir(), Answer()
    app = web.Application()
    app.router.add_get("/files/{name}", switched_handler(directory, answer))
    with serving(app, Served()) as server:
        size = (directory / LONG_FILE).stat().st_size
        yield VideoSource(server, answer, f"{server.base}/files/ajax-psv.mp4", size)


@IN_MAKE_TEST
def test_generated_histories_keep_every_promise(video_source: VideoSource) -> None:
    print(f"generated histories: profile {PROFILE}, replay with AIB_HISTORY_SEED={SEED}")
    try:
        run_state_machine_as_test(
            seed(SEED)(lambda: CreateWaitHistory(video_source)), settings=settings.get_profile(PROFILE)
        )
    except AIOnTheBallError as exc:  # an unexpected provider error is a finding too
        raise AssertionError(f"{type(exc).__name__}: {exc} (replay with AIB_HISTORY_SEED={SEED})") from exc
