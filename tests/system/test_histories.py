"""Generated fault histories of create → wait → results, against the simulator over loopback.

A hypothesis state machine plays one create-video task of one DAG run through random interleavings of what
happens to real pipelines: faults on its POST (lost answers, 5xx before and after the commit, proxies
answering for an API they never reached), late commits, retries and clears, another pipeline creating the
same match, URLs re-signed at every render, task state store records that expire, a worker clock minutes
off the server's, token rotations in both orders (between tries and during a deferred wait), triggerer
restarts, garbled and oversized answers while waiting, and downloads redirected to a CDN.

After every step it checks the invariants the docs promise (docs/exactly-once.md):

* the task never holds a video it did not create (a foreign one only where the docs say so: with no
  state-store record to go by, one made during the run, matching every listed field, unclaimed);
* at most one video of this task's request exists, but for the duplicates the docs document;
* a refused token or field leaves nothing in flight;
* no token or signature in any log line, exception, XCom, state-store record, trigger row or event;
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

from airflow_provider_aiontheball.exceptions import (
    AIOnTheBallAPIError,
    AIOnTheBallCreateOutcomeUnknownError,
    AIOnTheBallError,
    AIOnTheBallTerminalError,
)
from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallHook
from airflow_provider_aiontheball.operators.video import AIOnTheBallCreateVideoOperator
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

URL = "https://bucket.example/2025/ajax-psv.mp4"
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


class CreateWaitHistory(RuleBasedStateMachine):
    """One create-video task (and its waits) of one DAG run, under a generated history."""

    @initialize(
        durable=st.booleans(),
        commit_delay=st.sampled_from([0.0, 0.15]),
        skew=st.sampled_from([0.0, 600.0, -600.0]),
        echo=st.booleans(),
        older_videos=st.sampled_from([0, 20]),
    )
    def start(self, durable: bool, commit_delay: float, skew: float, echo: bool, older_videos: int) -> None:
        note(f"replay: AIB_HISTORY_SEED={SEED}")
        self.steps: list[str] = [
            f"start(durable={durable}, commit_delay={commit_delay}, skew={skew}, echo={echo}, "
            f"older_videos={older_videos})"
        ]
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
        os.environ[CONN_ENV] = connection_json(self.server.base_url, token=token, **extra)

    def url(self) -> str:
        return f"{URL}?X-Amz-Expires=3600&X-Amz-Signature={self.signatures[-1]}"

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
        return {i for i, v in self.videos().items() if url_identity(v["video_file_url"]) == URL}

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

    def resign(self) -> None:
        """The next render presigns the URL afresh (a new signature and expiry)."""
        self.signatures.append(secrets.token_hex(20))

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
    )
    def a_try_of_the_create_task(
        self, resigned: bool, other_pipeline: int | None, fault: str | None, store_forgot: bool
    ) -> None:
        """A retry, or a clear of the task: a new try (Airflow clears the try's XComs, keeps the store). Before
        it, maybe: the URL presigned afresh for it, another pipeline creating the same match (moments or 3 s
        earlier), a fault waiting for its POST, the state store's record gone ([state_store] clear_on_success,
        or its retention ran out). Rules never depend on what a try returned, which depends on timing:
        hypothesis must be able to replay a history."""
        self.steps.append(
            f"a_try_of_the_create_task(resigned={resigned}, other_pipeline={other_pipeline}, fault={fault}, "
            f"store_forgot={store_forgot})"
        )
        if store_forgot and self.store is not None:
            self.store.values.clear()
        if other_pipeline is not None and not self.revoked:
            self.another_pipeline_creates_the_match(other_pipeline)
        if resigned:
            self.resign()
        if fault is not None:
            self.fault_on_the_next_post(fault)
        self.try_number += 1
        before = self.ours()
        task = AIOnTheBallCreateVideoOperator(
            task_id="create_video", video_file_url=self.url(), commit_grace_period=GRACE, durable=self.durable, **MATCH
        )
        if self.skew:
            task.hook.server_clock.local = lambda: time.time() + self.skew
        context = self.context()
        record_before = self.record()
        records_before, entries_before = len(self.records), len(self.entries)
        refused: Exception | None = None
        try:
            video = task.execute(context)
        except AIOnTheBallCreateOutcomeUnknownError as exc:
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
        except (AIOnTheBallTerminalError, AirflowFailException, AIOnTheBallAPIError) as exc:
            if isinstance(exc, AIOnTheBallAPIError) and not (fault == "422-refused" and exc.status_code == 422):
                raise
            self.texts.append(str(exc))
            refused = exc
        finally:
            self.server.simulator.clear_faults()  # a fault its try never met (no POST sent) ends with it
            self.texts += [json.dumps(context["ti"].xcoms, default=str)]
            if self.store is not None:
                self.texts.append(json.dumps(self.store.values))
            if self.logged_since(records_before, entries_before, "Cannot tell which video an earlier try"):
                # Documented: a retry with no record to go by (no store, or it forgot) looks by documented fields
                # since the run began; finding several unclaimed candidates, it says so and creates a new one —
                # in this try, or, if this POST's outcome stays unknown, in the try that completes it.
                self.documented_duplicates += 1
        if refused is not None:
            self.steps.append("  -> refused")
            assert self.revoked or fault == "422-refused", f"only a revoked token or a 422 refuses: {refused}"
            record = self.record()
            in_flight = isinstance(record, dict) and "posted_at" in record and "id" not in record
            # An earlier try's POST of unknown outcome stays in flight (the next try must still look for it);
            # none of this try's requests may add one.
            assert not in_flight or record == record_before, "a refused request left a POST in flight"
            self.holds = None
            return
        self.holds = int(video["id"])
        if self.logged_since(records_before, entries_before, "an earlier try of this task created it (try"):
            # Documented: with no record to go by (no task state store, or it forgot), a retry takes a video made
            # during the run that matches every listed field and that no task of the run claims.
            assert self.try_number > 1
            assert not isinstance(record_before, dict), "taken by fields although a record told what was sent"
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
    def no_secret_anywhere(self) -> None:
        if not hasattr(self, "server"):
            return
        logged = [record.getMessage() for record in self.records if not record.name.startswith("urllib3")]
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


@IN_MAKE_TEST
def test_generated_histories_keep_every_promise() -> None:
    print(f"generated histories: profile {PROFILE}, replay with AIB_HISTORY_SEED={SEED}")
    try:
        run_state_machine_as_test(seed(SEED)(lambda: CreateWaitHistory()), settings=settings.get_profile(PROFILE))
    except AIOnTheBallError as exc:  # an unexpected provider error is a finding too
        raise AssertionError(f"{type(exc).__name__}: {exc} (replay with AIB_HISTORY_SEED={SEED})") from exc
