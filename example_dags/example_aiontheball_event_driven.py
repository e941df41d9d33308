"""Event-driven match ingestion with AI on the Ball (Airflow 3.0+): no task waits for an analysis.

Two DAGs instead of one long run per match:

``example_aiontheball_event_driven_start`` (triggered by hand or on your own schedule)
    For every match in the ``matches`` param: ``create_video`` POSTs the video, ``create_analysis``
    starts its analysis at once, and the run ends. Nothing waits: the API queues the analysis
    (``waiting_for_video``) until the video is ready, then runs it for 2-6 hours.

``example_aiontheball_event_driven_results`` (scheduled by an asset, never by hand)
    Its schedule is the asset "every analysis of the organisation", watched by an ``AssetWatcher``
    whose ``AIOnTheBallAnalysisDoneTrigger`` lists ``GET /videos`` every ``poll_interval`` in the
    triggerer and fires one asset event per analysis that finishes. Each run takes the events that
    scheduled it (one or several: Airflow batches the events that arrived since the previous run),
    de-duplicates them by analysis id and fetches and stores each analysis's results with a mapped
    ``AIOnTheBallAnalysisResultsOperator``.

Compared with sensors (``example_aiontheball_match_ingestion.py``), a season of matches costs one
listing per interval for the whole organisation instead of one deferred wait per match, and analyses
started elsewhere (the web app, another pipeline) are picked up too.

Delivery is at least once (a triggerer restart can repeat an event), so the results are written to
``<output_path>/analysis_<id>_<name>.json``, without the run id: an analysis handled twice overwrites
its own files with the same content. On Airflow 3.0-3.2 an analysis that finishes while the triggerer
is down is not noticed (3.3+ resumes from a cursor in the asset state store); see
docs/event-driven.md.

Run both against the bundled simulator with ``make demo-events``, or against the real API by giving
the ``aiontheball_default`` connection your token (leave its host empty) and real match URLs.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import Any

from airflow_provider_aiontheball.assets import analyses_asset
from airflow_provider_aiontheball.defaults import DEFAULT_HOST

#: Seconds between two listings of the watcher (each is one ``GET /videos`` request per page of the
#: organisation's videos). A minute is plenty for 2-6 h analyses; ``make demo-events`` sets a few seconds.
WATCH_POLL_SECONDS = float(os.environ.get("AIONTHEBALL_EXAMPLE_WATCH_POLL_SECONDS", "60"))

#: Where the results DAG writes results: a local directory or an object-storage URI
#: (``s3://bucket/aiontheball``). The default of the ``output_path`` param of the results DAG.
RESULTS_PATH = os.environ.get("AIONTHEBALL_EXAMPLE_RESULTS_PATH", "/tmp/aiontheball/results")

#: The API host in the asset's URI (``aiontheball://<host>/analyses``): ``aiontheball.nl`` for the
#: documented API; for another server, the host of the connection's base URL (``assets.host_of``).
API_HOST = os.environ.get("AIONTHEBALL_EXAMPLE_API_HOST", DEFAULT_HOST)

#: Matches the start DAG creates when the run does not override the param (public example URLs: the
#: simulator accepts any URL; the real API needs MP4s it can download, 1080p or lower at 25 fps).
DEFAULT_MATCHES: list[dict[str, Any]] = [
    {
        "video_file_url": "https://example.com/season-2025/ajax-psv.mp4",
        "home_team_name": "Ajax",
        "away_team_name": "PSV",
        "date": "2025-01-15",
    },
    {
        "video_file_url": "https://example.com/season-2025/feyenoord-az.mp4",
        "home_team_name": "Feyenoord",
        "away_team_name": "AZ",
        "date": "2025-01-18",
    },
    {
        "video_file_url": "https://example.com/season-2025/twente-utrecht.mp4",
        "home_team_name": "Twente",
        "away_team_name": "Utrecht",
        "date": "2025-01-19",
    },
]

log = logging.getLogger(__name__)

try:  # AssetWatcher (event-driven scheduling) exists from Airflow 3.0 on
    from airflow.sdk import Asset, AssetWatcher, Param, dag, task
except ImportError:  # Airflow 2: this file defines no DAG, so the rest of the folder still parses
    AssetWatcher = None  # type: ignore[assignment,misc]


def video_id_of(video: dict[str, Any]) -> int:
    """The id of a video returned by ``create_video`` (maps create_analysis over the creates)."""
    return int(video["id"])


# [START howto_analyses_to_fetch]
def analyses_to_fetch(events: Any, requested: Any = ()) -> list[dict[str, int]]:
    """One ``{"analysis_id", "video_id"}`` per analysis, in id order, without duplicates.

    :param events: the asset events that scheduled the run; Airflow puts the trigger's payload in
        ``event.extra["payload"]`` (keys: ``analysis_id``, ``video_id``, ``status``, ``game_name``, ...).
        Several events can name the same analysis (delivery is at least once): the id is the key.
    :param requested: analysis ids given by hand (the ``analysis_ids`` param of a manual run).
    """
    found: dict[int, dict[str, int]] = {}
    for event in events or ():
        payload = (getattr(event, "extra", None) or {}).get("payload") or {}
        if payload.get("analysis_id") is not None:
            analysis_id = int(payload["analysis_id"])
            found.setdefault(analysis_id, {"analysis_id": analysis_id, "video_id": int(payload["video_id"])})
    for analysis_id in requested or ():
        # No video id by hand: the results task then reads the analysis itself (GET /analyses/{id}).
        found.setdefault(int(analysis_id), {"analysis_id": int(analysis_id)})
    return [found[analysis_id] for analysis_id in sorted(found)]
    # [END howto_analyses_to_fetch]


def stranded_events(events: Any, *, after: dt.datetime, up_to: dt.datetime) -> list[Any]:
    """The watched asset's events stored after this run's cut-off and before the run started.

    Why: Airflow 3.0-3.3 (seen on 3.0.6 to 3.3.2; apache/airflow#54659 and #56050) gives an
    asset-triggered run the events up to the moment the *first* of them queued the run (``run_after``),
    then clears the queue: events stored in between — the rest of a watcher's burst, one per analysis
    its listing saw finished — are left to the *next* run, which only comes with the next event, maybe
    hours later. Fetching them here too costs at most a repeat (the next run gets them again; the
    results files are simply rewritten), never a wait. Later Airflow versions reference the events
    from the queue (apache/airflow#70972); there this finds nothing or repeats.

    :param events: ``inlet_events[asset]``: on Airflow 3.2+ a lazy accessor filtered by the API
        server, before that a list of all the asset's events (filtered here).
    :param after: the run's ``run_after`` (the triggering events are at or before it).
    :param up_to: the run's ``start_date``.
    """
    if hasattr(events, "after"):  # Airflow 3.2+: let the API server filter
        events = events.after(after.isoformat()).before(up_to.isoformat())
    return [event for event in events if after < event.timestamp <= up_to]


if AssetWatcher is not None:
    from airflow_provider_aiontheball.operators.analysis import (
        AIOnTheBallAnalysisResultsOperator,
        AIOnTheBallCreateAnalysisOperator,
    )
    from airflow_provider_aiontheball.operators.video import AIOnTheBallCreateVideoOperator
    from airflow_provider_aiontheball.triggers.analysis_done import AIOnTheBallAnalysisDoneTrigger

    # [START howto_analysis_done_watcher]
    #: "Every analysis of the organisation the token belongs to", updated by the watcher: one asset event
    #: per analysis that reaches ``done`` (``statuses=("done", "error")`` would report failures too).
    ANALYSES = analyses_asset(
        host=API_HOST,
        name="aiontheball_analyses",
        watchers=[
            AssetWatcher(
                name="aiontheball_analysis_done",
                trigger=AIOnTheBallAnalysisDoneTrigger(
                    aiontheball_conn_id="aiontheball_default",
                    poll_interval=WATCH_POLL_SECONDS,
                ),
            )
        ],
    )
    # [END howto_analysis_done_watcher]

    #: Updated by each results task that stored an analysis's results; its events carry the match's
    #: metadata (``extra``: ``video_id``, ``analysis_id``, ``game_name``, ``results`` paths, counts...).
    #: Not the watched asset: a results task updating that one would schedule this DAG again.
    RESULTS = Asset(
        name="aiontheball_analysis_results",
        uri=RESULTS_PATH if "://" in RESULTS_PATH else f"file://{RESULTS_PATH}",
    )

    @dag(
        dag_id="example_aiontheball_event_driven_start",
        description="Create match videos and start their analyses with AI on the Ball; nothing waits.",
        schedule=None,
        start_date=dt.datetime(2025, 1, 1),
        catchup=False,
        tags=["example", "aiontheball"],
        params={
            "matches": Param(
                DEFAULT_MATCHES,
                type="array",
                items={"type": "object", "required": ["video_file_url"]},
                description="Match videos: video_file_url plus optional title, team names, date, offsets "
                "and left_start_team.",
            ),
        },
        default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=2)},  # creating again never duplicates
    )
    def example_aiontheball_event_driven_start() -> None:
        @task
        def matches_to_create(params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
            """One create_video kwargs dict per match; a title is derived so retries can find the video."""
            matches = []
            for match in (params or {})["matches"]:
                match = dict(match)
                if not match.get("title") and match.get("home_team_name") and match.get("away_team_name"):
                    match["title"] = f"{match['home_team_name']} vs {match['away_team_name']}"
                matches.append(match)
            return matches

        # [START howto_event_driven_start]
        # wait_for_available=False (the default): the task ends as soon as the POST succeeded.
        videos = AIOnTheBallCreateVideoOperator.partial(task_id="create_video").expand_kwargs(matches_to_create())
        # Started while the video is still downloading: the API documents the status
        # ``waiting_for_video`` and its Videos page says an analysis may be created right after the video
        # (its Create Analysis page asks for an ``available`` video). Should a server refuse that, give
        # create_video ``wait_for_available=True, deferrable=True``: one deferred wait of minutes per
        # video, in the triggerer, instead of hours per analysis.
        AIOnTheBallCreateAnalysisOperator.partial(task_id="create_analysis").expand(
            video_id=videos.output.map(video_id_of)
        )
        # [END howto_event_driven_start]

    @dag(
        dag_id="example_aiontheball_event_driven_results",
        description="Fetch and store each finished AI on the Ball analysis's results, as the watcher reports them.",
        schedule=[ANALYSES],
        start_date=dt.datetime(2025, 1, 1),
        catchup=False,
        tags=["example", "aiontheball"],
        params={
            "output_path": Param(
                RESULTS_PATH,
                type="string",
                description="Where results are written: a local directory or an object-storage URI.",
            ),
            "analysis_ids": Param(
                [],
                type="array",
                items={"type": "integer"},
                description="For a manual run: analyses to fetch again (asset-triggered runs take theirs "
                "from the asset events).",
            ),
        },
        default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=2)},
    )
    def example_aiontheball_event_driven_results() -> None:
        # [START howto_event_driven_results]
        @task(inlets=[ANALYSES])  # inlets: to read the asset's other events (stranded_events)
        def finished_analyses(
            triggering_asset_events: Any = None,
            inlet_events: Any = None,
            dag_run: Any = None,
            params: dict[str, Any] | None = None,
        ) -> list[dict[str, int]]:
            """The analyses of the events that scheduled this run (and of ``analysis_ids``, by hand)."""
            events = list(triggering_asset_events[ANALYSES]) if triggering_asset_events else []
            late = []
            if events:  # an asset-triggered run
                late = stranded_events(inlet_events[ANALYSES], after=dag_run.run_after, up_to=dag_run.start_date)
            fetch = analyses_to_fetch([*events, *late], (params or {}).get("analysis_ids"))
            log.info(
                "%d triggering asset event(s), %d stored meanwhile; %d analysis(es) to fetch: %s",
                len(events),
                len(late),
                len(fetch),
                ", ".join(str(item["analysis_id"]) for item in fetch) or "none",
            )
            return fetch

        AIOnTheBallAnalysisResultsOperator.partial(
            task_id="fetch_results",
            results=("summary", "events"),
            # No run id in the path: a repeated event rewrites the same files (at-least-once delivery).
            output_path="{{ params.output_path }}",
            outlets=[RESULTS],
        ).expand_kwargs(finished_analyses())
        # [END howto_event_driven_results]

    example_aiontheball_event_driven_start_dag = example_aiontheball_event_driven_start()
    example_aiontheball_event_driven_results_dag = example_aiontheball_event_driven_results()
