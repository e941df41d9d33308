"""AIOnTheBallAnalysisDoneTrigger (AssetWatcher) against the simulator: what fires, once, at what cost.

The simulator's analyses take ~20 simulated minutes here and move only when a test advances its clock;
the watcher's wait between listings is the :class:`Ticker` (the trigger's ``_sleep`` seam), so each test
lets it list exactly when it wants: no sleeping, no timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest

from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallHook
from airflow_provider_aiontheball.triggers.analysis_done import (
    HAS_EVENT_TRIGGER,
    AIOnTheBallAnalysisDoneTrigger,
    cursor_key,
)
from tests.helpers import TOKEN, api_requests, connection_json, inject

needs_event_trigger = pytest.mark.skipif(not HAS_EVENT_TRIGGER, reason="AssetWatcher event triggers need Airflow 3.0+")
try:
    from airflow.triggers.shared_stream import SharedStreamManager
except ImportError:
    SharedStreamManager = None  # type: ignore[assignment,misc]
needs_shared_streams = pytest.mark.skipif(SharedStreamManager is None, reason="shared streams need Airflow 3.3+")

#: Nothing moves unless the test advances the simulator clock: a video is available after 300 s, an
#: analysis created with it is done after 1,400 s (or in error at 800 s when scripted so).
SLOW = pytest.mark.simulator(
    video_step_seconds=100, analysis_init_seconds=100, analysis_seconds=1000, analysis_aggregating_seconds=100
)
FINISH = 2000
VIDEO_URL = "https://example.com/match.mp4"
PAYLOAD_KEYS = {
    "analysis_id",
    "video_id",
    "status",
    "game_name",
    "title",
    "home_team_name",
    "away_team_name",
    "observed_at",
    "analysis_uri",
}


class Ticker:
    """The watcher's wait between listings, driven by the test: one listing per :meth:`next`."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self._waiting = asyncio.Event()
        self._go = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self._go.clear()
        self._waiting.set()
        await self._go.wait()

    async def listed(self, *watchers: Watcher) -> None:
        """Wait until the watcher finished a listing (or failed one) and waits for the next."""
        waiting = asyncio.ensure_future(self._waiting.wait())
        tasks = [w.task for w in watchers]
        done, _ = await asyncio.wait([waiting, *tasks], timeout=10, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        for task in tasks:
            if task in done:
                task.result()  # re-raise what ended it
                pytest.fail("the watcher ended; an event trigger must run until cancelled")
        assert done, "the watcher did not list within 10 s"
        for _ in range(20):  # let shared-stream subscribers drain the snapshot just broadcast
            await asyncio.sleep(0)

    def next(self) -> None:
        self._waiting.clear()
        self._go.set()


class Watcher:
    """Runs a trigger like the triggerer does (its ``run()``, or a shared stream's filter) and collects payloads."""

    def __init__(self, trigger: AIOnTheBallAnalysisDoneTrigger, stream: Any = None) -> None:
        self.trigger = trigger
        self.events: list[dict[str, Any]] = []
        self.task = asyncio.ensure_future(self._consume(stream))

    async def _consume(self, stream: Any) -> None:
        events = self.trigger.run() if stream is None else self.trigger.filter_shared_stream(stream)
        async for event in events:
            json.dumps(event.payload)  # the triggerer stores it as JSON
            self.events.append(event.payload)

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    def fired(self) -> list[tuple[int, str]]:
        return [(e["analysis_id"], e["status"]) for e in self.events]


class MemoryAssetStore:
    """Stand-in for Airflow 3.3's ``AssetStateStoreAccessors`` of one watched asset: its async ``aget``/``aset``
    only (the real one needs the triggerer's supervisor). Values round-trip through JSON, like the DB."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.writes = 0

    async def aget(self, key: str, default: Any = None) -> Any:
        return json.loads(self.values[key]) if key in self.values else default

    async def aset(self, key: str, value: Any) -> None:
        assert value is not None
        self.values[key] = json.dumps(value)
        self.writes += 1


@pytest.fixture
def ticker(monkeypatch: pytest.MonkeyPatch) -> Ticker:
    ticker = Ticker()
    monkeypatch.setattr(AIOnTheBallAnalysisDoneTrigger, "_sleep", staticmethod(ticker.sleep))
    return ticker


def new_analysis(url: str = VIDEO_URL) -> tuple[int, int]:
    with AIOnTheBallHook() as hook:
        video_id = hook.create_video(url, title="Final", home_team_name="Ajax", away_team_name="PSV")["id"]
        return video_id, hook.create_analysis(video_id)["id"]


async def create(count: int = 1) -> list[tuple[int, int]]:
    return [await asyncio.to_thread(new_analysis) for _ in range(count)]


def listings(server: Any) -> list[dict[str, Any]]:
    return api_requests(server, "GET", "/videos")


def watch(store: Any = None, **kwargs: Any) -> Watcher:
    trigger = AIOnTheBallAnalysisDoneTrigger(**kwargs)
    trigger.asset_state_store = store
    return Watcher(trigger)


# -- construction ------------------------------------------------------------------------------------------


@needs_event_trigger
def test_serialize_round_trips_without_secrets():
    trigger = AIOnTheBallAnalysisDoneTrigger(
        aiontheball_conn_id="aib_prod", poll_interval=30, statuses=["error", "done"], emit_existing=True
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_aiontheball.triggers.analysis_done.AIOnTheBallAnalysisDoneTrigger"
    assert kwargs == {
        "aiontheball_conn_id": "aib_prod",
        "poll_interval": 30.0,
        "statuses": ["done", "error"],
        "emit_existing": True,
    }
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert AIOnTheBallAnalysisDoneTrigger(**kwargs).serialize() == (classpath, kwargs)
    assert AIOnTheBallAnalysisDoneTrigger().serialize()[1] == {
        "aiontheball_conn_id": "aiontheball_default",
        "poll_interval": 60.0,
        "statuses": ["done"],
        "emit_existing": False,
    }


@needs_event_trigger
@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        pytest.param({"poll_interval": 1}, "poll_interval", id="interval-below-5s"),
        pytest.param({"poll_interval": "60"}, "poll_interval", id="interval-not-a-number"),
        pytest.param({"statuses": ["running"]}, "statuses", id="status-not-terminal"),
        pytest.param({"statuses": []}, "statuses", id="no-status"),
        pytest.param({"emit_existing": "yes"}, "emit_existing", id="emit-existing-not-bool"),
        pytest.param({"aiontheball_conn_id": ""}, "aiontheball_conn_id", id="empty-conn-id"),
    ],
)
def test_bad_arguments_are_refused_naming_the_argument(kwargs, named):
    with pytest.raises(ValueError, match=named):
        AIOnTheBallAnalysisDoneTrigger(**kwargs)


@pytest.mark.skipif(HAS_EVENT_TRIGGER, reason="Airflow 3 has event triggers")
def test_airflow_2_says_which_airflow_the_trigger_needs():
    with pytest.raises(Exception, match=r"needs Airflow 3\.0 or later .*this is Airflow 2\."):
        AIOnTheBallAnalysisDoneTrigger()


# -- what fires --------------------------------------------------------------------------------------------


@needs_event_trigger
@SLOW
@pytest.mark.asyncio
async def test_baseline_is_not_replayed_and_a_completion_fires_once(aiontheball_conn, ticker):
    [(_, finished)] = await create()
    aiontheball_conn.simulator.advance(FINISH)
    [(video_id, running)] = await create()
    watcher = watch()
    try:
        await ticker.listed(watcher)
        assert watcher.events == [], "analysis finished before the watcher started: baseline, not fired"
        aiontheball_conn.simulator.advance(FINISH)
        for _ in range(3):  # the analysis stays done: later listings do not fire it again
            ticker.next()
            await ticker.listed(watcher)
    finally:
        await watcher.stop()
    assert watcher.fired() == [(running, "done")]
    [event] = watcher.events
    assert set(event) == PAYLOAD_KEYS
    host = aiontheball_conn.base_url.split("://", 1)[1].split("/", 1)[0]
    video = await asyncio.to_thread(lambda: AIOnTheBallHook().get_video(video_id))
    assert event == {
        "analysis_id": running,
        "video_id": video_id,
        "status": "done",
        "game_name": video["game_name"],
        "title": "Final",
        "home_team_name": "Ajax",
        "away_team_name": "PSV",
        "observed_at": event["observed_at"],
        "analysis_uri": f"aiontheball://{host}/analyses/{running}",
    }
    assert event["observed_at"].endswith("Z")
    assert len(event["observed_at"]) == 20, "2026-12-02T15:04:05Z"
    assert TOKEN not in json.dumps(event)
    assert "?" not in json.dumps(event), "no URL with a query string"
    assert finished != running


@needs_event_trigger
@SLOW
@pytest.mark.asyncio
async def test_emit_existing_fires_the_baseline(aiontheball_conn, ticker):
    [(_, first), (_, second)] = await create(2)
    aiontheball_conn.simulator.advance(FINISH)
    watcher = watch(emit_existing=True)
    try:
        await ticker.listed(watcher)
        ticker.next()
        await ticker.listed(watcher)
    finally:
        await watcher.stop()
    assert watcher.fired() == [(first, "done"), (second, "done")]


@needs_event_trigger
@SLOW
@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("statuses", "fires_error"),
    [pytest.param(["done"], False, id="done-only"), pytest.param(["done", "error"], True, id="done-and-error")],
)
async def test_error_fires_only_when_asked(aiontheball_conn, ticker, statuses, fires_error):
    aiontheball_conn.simulator.script_next_analyses("error")
    [(_, failing), (_, succeeding)] = await create(2)
    watcher = watch(statuses=statuses)
    try:
        await ticker.listed(watcher)
        aiontheball_conn.simulator.advance(FINISH)
        ticker.next()
        await ticker.listed(watcher)
    finally:
        await watcher.stop()
    expected = [(failing, "error")] if fires_error else []
    assert watcher.fired() == [*expected, (succeeding, "done")]


@needs_event_trigger
@SLOW
@pytest.mark.asyncio
async def test_analysis_created_and_finished_between_two_listings_fires(aiontheball_conn, ticker):
    watcher = watch()
    try:
        await ticker.listed(watcher)
        [(_, analysis_id)] = await create()
        aiontheball_conn.simulator.advance(FINISH)
        ticker.next()
        await ticker.listed(watcher)
    finally:
        await watcher.stop()
    assert watcher.fired() == [(analysis_id, "done")]


# -- cost --------------------------------------------------------------------------------------------------


@needs_event_trigger
@SLOW
@pytest.mark.simulator(per_page=2)
@pytest.mark.asyncio
async def test_each_listing_costs_one_request_per_page_not_per_analysis(aiontheball_conn, ticker):
    created = await create(5)  # 5 videos, 2 a page: 3 pages
    before = len(api_requests(aiontheball_conn))
    watcher = watch()
    try:
        await ticker.listed(watcher)
        assert len(api_requests(aiontheball_conn)) - before == 3
        aiontheball_conn.simulator.advance(FINISH)
        ticker.next()
        await ticker.listed(watcher)
    finally:
        await watcher.stop()
    requests = api_requests(aiontheball_conn)[before:]
    assert [(r["method"], r["path"], r["query"].get("page", "1")) for r in requests] == [
        ("GET", "/videos", page) for _ in range(2) for page in ("1", "2", "3")
    ], "two listings of three pages; no request per analysis"
    assert watcher.fired() == [(analysis_id, "done") for _, analysis_id in created], "the last page counts too"
    assert len(ticker.waits) == 2
    assert all(54 <= w <= 66 for w in ticker.waits), "60 s (±10 %) between listings"


# -- restarts (the durable cursor) -------------------------------------------------------------------------


@needs_event_trigger
@SLOW
@pytest.mark.asyncio
async def test_completion_during_a_restart_fires_after_it_with_a_state_store(aiontheball_conn, ticker):
    store = MemoryAssetStore()
    [(_, old)] = await create()
    aiontheball_conn.simulator.advance(FINISH)
    [(_, analysis_id)] = await create()
    first = watch(store)
    await ticker.listed(first)
    await first.stop()  # the triggerer goes down ...
    assert json.loads(store.values[cursor_key("aiontheball_default", ["done"])]) == {
        "version": 1,
        "handled": [old],
    }, "the baseline is stored at once"
    aiontheball_conn.simulator.advance(FINISH)  # ... the analysis finishes meanwhile ...
    second = watch(store)  # ... and a new triggerer runs the watcher from its stored kwargs
    try:
        ticker.next()
        await ticker.listed(second)
    finally:
        await second.stop()
    assert first.events == []
    assert second.fired() == [(analysis_id, "done")], "the stored cursor is not a new baseline"


@needs_event_trigger
@SLOW
@pytest.mark.asyncio
async def test_an_event_just_fired_repeats_after_a_crash_and_is_never_lost(aiontheball_conn, ticker):
    store = MemoryAssetStore()
    [(_, analysis_id)] = await create()
    watchers = [watch(store)]
    await ticker.listed(watchers[0])
    aiontheball_conn.simulator.advance(FINISH)
    ticker.next()
    await ticker.listed(watchers[0])
    await watchers[0].stop()  # crash right after firing: its id is written only with the next listing
    for _ in range(2):
        watchers.append(watch(store))
        ticker.next()
        await ticker.listed(watchers[-1])
        ticker.next()
        await ticker.listed(watchers[-1])  # this listing stores the id the previous one fired
        await watchers[-1].stop()
    assert [w.fired() for w in watchers] == [[(analysis_id, "done")], [(analysis_id, "done")], []]


@needs_event_trigger
@SLOW
@pytest.mark.asyncio
async def test_without_a_state_store_a_restart_takes_a_new_baseline(aiontheball_conn, ticker):
    [(_, analysis_id)] = await create()
    first = watch()
    await ticker.listed(first)
    await first.stop()
    aiontheball_conn.simulator.advance(FINISH)
    second = watch()
    try:
        ticker.next()
        await ticker.listed(second)
    finally:
        await second.stop()
    assert (first.events, second.events) == ([], []), f"analysis {analysis_id}: the documented limitation"


# -- failures ----------------------------------------------------------------------------------------------


@needs_event_trigger
@SLOW
@pytest.mark.asyncio
async def test_transient_failures_back_off_and_the_watcher_goes_on(aiontheball_conn, ticker, all_logs):
    [(_, analysis_id)] = await create()
    watcher = watch()
    try:
        await ticker.listed(watcher)
        inject(aiontheball_conn, kind="status", status=503, method="GET", path="/videos", count=2)
        aiontheball_conn.simulator.advance(FINISH)
        for _ in range(3):  # two failed listings, then one that works
            ticker.next()
            await ticker.listed(watcher)
    finally:
        await watcher.stop()
    assert watcher.fired() == [(analysis_id, "done")]
    assert ticker.waits[1] < 10, "the first failure retries after ~5 s"
    assert ticker.waits[1] < ticker.waits[2] < 20, "then backs off"
    failures = [m for m in all_logs.messages if "listing the videos failed with 503" in m]
    assert len(failures) == 2, failures
    assert any("works again after 2 failure(s)" in m for m in all_logs.messages)


@needs_event_trigger
@pytest.mark.asyncio
async def test_a_refused_token_is_logged_and_the_watcher_keeps_trying(simulator, monkeypatch, ticker, all_logs):
    monkeypatch.setenv("AIRFLOW_CONN_AIB_BAD", connection_json(simulator.base_url, token="not-the-token"))
    watcher = watch(aiontheball_conn_id="aib_bad")
    try:
        for _ in range(2):
            await ticker.listed(watcher)
            ticker.next()
        await ticker.listed(watcher)
        assert not watcher.task.done(), "an ended watcher would be restarted at once: a request loop"
    finally:
        await watcher.stop()
    errors = [m for m in all_logs.messages if "cannot list the videos" in m]
    assert len(errors) == 3, errors
    assert "'aib_bad'" in errors[0]
    assert "401" in errors[0]
    assert "not-the-token" not in all_logs.text
    assert all(54 <= w <= 66 for w in ticker.waits), "retried every poll_interval, not faster"


# -- Airflow 3.3: one listing for many watchers ------------------------------------------------------------


@needs_shared_streams
@SLOW
@pytest.mark.asyncio
async def test_watchers_of_one_connection_share_one_listing(aiontheball_conn, ticker):
    aiontheball_conn.simulator.script_next_analyses("error")
    [(_, failing), (_, succeeding)] = await create(2)
    manager = SharedStreamManager()
    triggers = [
        AIOnTheBallAnalysisDoneTrigger(),
        AIOnTheBallAnalysisDoneTrigger(statuses=["done", "error"]),
    ]
    keys = {t.shared_stream_key() for t in triggers}
    assert len(keys) == 1
    assert AIOnTheBallAnalysisDoneTrigger(poll_interval=30).shared_stream_key() not in keys
    [key] = keys
    watchers = [
        Watcher(t, manager.subscribe(trigger_id=i, trigger=t, key=key)) for i, t in enumerate(triggers, start=1)
    ]
    try:
        await ticker.listed(*watchers)
        aiontheball_conn.simulator.advance(FINISH)
        ticker.next()
        await ticker.listed(*watchers)
        for _ in range(50):  # both subscribers drain the broadcast snapshot
            if len(watchers[1].events) == 2:
                break
            await asyncio.sleep(0.01)
    finally:
        for i, watcher in enumerate(watchers, start=1):
            await watcher.stop()
            await manager.unsubscribe(i, key)
        await manager.stop_all()
    assert len(listings(aiontheball_conn)) == 2, "one listing per interval for two watchers"
    assert watchers[0].fired() == [(succeeding, "done")]
    assert watchers[1].fired() == [(failing, "error"), (succeeding, "done")]


# -- the pieces, without the API ---------------------------------------------------------------------------


def test_an_analysis_missing_from_one_listing_does_not_fire_again():
    from airflow_provider_aiontheball.triggers.analysis_done import CompletionTracker

    done = {"analysis_id": 1247, "status": "done"}
    tracker = CompletionTracker(frozenset({"done"}))
    tracker.observe([{"analysis_id": 1247, "status": "running"}])
    fired = [tracker.observe(listing)[0] for listing in ([done], [], [done], [], [], [done])]
    assert fired == [[done], [], [], [], [], [done]], "skipped once: kept; gone for two listings: forgotten"


@pytest.mark.skipif(SharedStreamManager is None, reason="the asset state store needs Airflow 3.3+")
def test_a_trigger_watching_two_assets_writes_its_cursor_to_both():
    from airflow.sdk import Asset
    from airflow.sdk.execution_time.context import AssetStateStoreAccessors

    from airflow_provider_aiontheball.triggers.analysis_done import DurableCursor

    # The triggerer's own accessors (no I/O until used): one trigger row serves every asset whose watcher
    # has the same kwargs, and their single-asset shortcuts refuse more than one asset.
    store = AssetStateStoreAccessors(inlets=[Asset(name="a", uri="aiontheball://h/analyses"), Asset(name="b")])
    accessors = DurableCursor(store, "k")._accessors
    assert sorted(repr(a) for a in accessors) == [
        "<AssetStateStoreAccessor name='a'>",
        "<AssetStateStoreAccessor name='b'>",
    ]
    single = AssetStateStoreAccessors(inlets=[Asset(name="a")])
    assert DurableCursor(single, "k")._accessors == [single]


@pytest.mark.asyncio
async def test_the_cursor_of_several_assets_is_the_intersection():
    from airflow_provider_aiontheball.triggers.analysis_done import DurableCursor

    class TwoAssets:  # the shape of AssetStateStoreAccessors watching two assets
        _by_name = {"a": MemoryAssetStore(), "b": MemoryAssetStore()}
        _by_uri: dict[str, Any] = {}

    cursor = DurableCursor(TwoAssets(), "k")
    assert await cursor.load() is None
    await cursor.save({1, 2, 3})
    assert {name: json.loads(s.values["k"]) for name, s in TwoAssets._by_name.items()} == {
        "a": {"version": 1, "handled": [1, 2, 3]},
        "b": {"version": 1, "handled": [1, 2, 3]},
    }
    await TwoAssets._by_name["b"].aset("k", {"version": 1, "handled": [2, 3, 4]})
    assert await cursor.load() == {2, 3}, "an id missing from one copy fires again: a repeat, never a loss"


@needs_event_trigger
def test_an_asset_watcher_takes_the_trigger_and_the_dag_stores_its_kwargs():
    import datetime as dt

    from airflow.sdk import DAG, Asset, AssetWatcher
    from airflow.triggers.base import BaseEventTrigger

    try:
        from airflow.serialization.serialized_objects import DagSerialization as Serializer
    except ImportError:  # Airflow 3.0-3.2
        from airflow.serialization.serialized_objects import SerializedDAG as Serializer

    from airflow_provider_aiontheball.assets import analyses_uri

    trigger = AIOnTheBallAnalysisDoneTrigger(statuses=["done", "error"])
    analyses = Asset(uri=analyses_uri(), name="aib_analyses", watchers=[AssetWatcher(name="aib", trigger=trigger)])
    dag = DAG("aib_on_analysis_done", schedule=[analyses], start_date=dt.datetime(2026, 1, 1))
    stored = json.dumps(Serializer.to_dict(dag))
    classpath, kwargs = trigger.serialize()
    assert json.dumps({"classpath": classpath, "kwargs": kwargs}) in stored
    # The triggerer rebuilds it from the stored kwargs; the row is found again by the same hash.
    rebuilt = AIOnTheBallAnalysisDoneTrigger(**json.loads(json.dumps(kwargs)))
    assert BaseEventTrigger.hash(*rebuilt.serialize()) == BaseEventTrigger.hash(classpath, kwargs)
