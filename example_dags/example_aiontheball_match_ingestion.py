"""Scheduled match ingestion with AI on the Ball: one mapped task per match video.

For every match in the ``matches`` param (URL, teams, date):

1. ``create_video`` — POST the video (retries never create a duplicate; XCom ``video_id`` at once);
2. ``wait_for_video`` — a deferrable sensor: no worker slot is held while the API downloads and
   prepares the video; the triggerer polls adaptively;
3. ``summarize_video`` — a downstream ``@task`` that uses the video's metadata (duration, game name);
4. ``create_analysis`` — started right after the video is created: the API queues it
   (``waiting_for_video``) until the video is ready, so the two waits overlap;
5. ``wait_for_analysis`` — a deferrable sensor that polls near the expected finish, estimated from
   the analysis's progress: a few dozen requests for a multi-hour analysis;
6. ``fetch_results`` — summary and events written to ``output_path`` (a local directory or an
   object-storage URI such as ``s3://bucket/aiontheball``);
7. ``report_possession`` — a ``@task`` that reads the summary and logs possession per team;
8. ``delete_video`` — optional clean-up (the video and its analyses), when the ``cleanup`` param is true.

Run it against the bundled simulator with ``make demo``, or against the real API by giving the
``aiontheball_default`` connection your token (leave its host empty) and real match URLs.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from pathlib import Path
from typing import Any

from airflow.providers.common.compat.sdk import Param, dag, task

from airflow_provider_aiontheball.defaults import DEFAULT_ANALYSIS_POLL_INTERVAL
from airflow_provider_aiontheball.operators.analysis import (
    AIOnTheBallAnalysisResultsOperator,
    AIOnTheBallCreateAnalysisOperator,
)
from airflow_provider_aiontheball.operators.video import (
    AIOnTheBallCreateVideoOperator,
    AIOnTheBallDeleteVideoOperator,
)
from airflow_provider_aiontheball.sensors.analysis import AIOnTheBallAnalysisSensor
from airflow_provider_aiontheball.sensors.video import AIOnTheBallVideoSensor

#: Shortest interval between analysis polls near the expected finish. The default (45 s) suits real
#: 2-6 h analyses; ``make demo`` sets this variable to a few seconds because the simulated analysis
#: takes only seconds.
ANALYSIS_MIN_POLL_SECONDS = float(os.environ.get("AIONTHEBALL_EXAMPLE_ANALYSIS_MIN_POLL_SECONDS", "45"))

#: Longest interval between analysis polls (the sensor's ``poll_interval``; default 30 min). The
#: interval comes from the analysis's measured progress rate; ``make e2e-distributed`` caps it at 20 s:
#: its simulated analyses take 150 s, and a waiting trigger rebuilt by a triggerer takeover starts its
#: rate estimate anew, so an estimate from its first few noisy points may be minutes too long there.
ANALYSIS_POLL_SECONDS = float(
    os.environ.get("AIONTHEBALL_EXAMPLE_ANALYSIS_POLL_SECONDS", str(DEFAULT_ANALYSIS_POLL_INTERVAL))
)

#: Delay before a failed task's retry. ``make e2e-distributed`` shortens it: its drills kill a worker
#: mid-task and check that the retry neither duplicates nor loses the match.
RETRY_DELAY_SECONDS = float(os.environ.get("AIONTHEBALL_EXAMPLE_RETRY_DELAY_SECONDS", "120"))

#: Matches ingested when the run does not override the param (public example URLs: the simulator
#: accepts any URL; the real API needs MP4s it can download, 1080p or lower at 25 fps, ≥ 10 minutes).
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
        "left_start_team": "away",
    },
]


log = logging.getLogger(__name__)


# [START howto_video_id_of]
def video_id_of(video: dict[str, Any]) -> int:
    """The id of a video returned by ``create_video`` (used to map the sensors over the creates)."""
    return int(video["id"])
    # [END howto_video_id_of]


def analysis_wait_kwargs(analysis: dict[str, Any]) -> dict[str, Any]:
    """Sensor arguments for an analysis returned by ``create_analysis``; the video id lets the sensor
    follow the analysis through its video should the server lack ``GET /analyses/{id}``."""
    return {"analysis_id": int(analysis["id"]), "video_id": int(analysis["video_id"])}


def analysis_id_of(analysis: dict[str, Any]) -> int:
    return int(analysis["id"])


@dag(
    dag_id="example_aiontheball_match_ingestion",
    description="Create, wait for and summarise a season's match videos with AI on the Ball.",
    schedule="@weekly",
    start_date=dt.datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["example", "aiontheball"],
    params={
        "matches": Param(
            DEFAULT_MATCHES,
            type="array",
            items={"type": "object", "required": ["video_file_url"]},
            description="Match videos to ingest: video_file_url plus optional title, team names, date, "
            "offsets and left_start_team.",
        ),
        "output_path": Param(
            "/tmp/aiontheball/results",
            type="string",
            description="Where analysis results are written: a local directory or an object-storage URI.",
        ),
        "cleanup": Param(False, type="boolean", description="Delete the videos (and their analyses) at the end."),
    },
    # [START howto_retries_default_args]
    default_args={
        # Transient API trouble is already retried inside each request and tolerated by the waiting
        # trigger; task retries cover what outlasts that (e.g. a long outage). Creating again is safe:
        # the operator reuses the video an earlier try created.
        "retries": 2,
        "retry_delay": dt.timedelta(seconds=RETRY_DELAY_SECONDS),
    },
    # [END howto_retries_default_args]
)
def example_aiontheball_match_ingestion() -> None:
    @task
    def matches_to_ingest(params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """One create_video kwargs dict per match; a title is derived so retries can find the video."""
        matches = []
        for match in (params or {})["matches"]:
            match = dict(match)
            if not match.get("title") and match.get("home_team_name") and match.get("away_team_name"):
                match["title"] = f"{match['home_team_name']} vs {match['away_team_name']}"
            matches.append(match)
        return matches

    # [START howto_mapped_create_and_wait]
    created = AIOnTheBallCreateVideoOperator.partial(
        task_id="create_video",
        # Bad fields (a malformed URL or date) fail the mapped task at once, without retries.
    ).expand_kwargs(matches_to_ingest())

    ready = AIOnTheBallVideoSensor.partial(
        task_id="wait_for_video",
        deferrable=True,  # wait in the triggerer: hundreds of matches hold no worker slot
        poke_interval=60,  # at most one poll a minute per video once nothing changes
        timeout=3 * 3600,  # a match download and preparation takes minutes; 3 h means something is wrong
        # soft_fail=False: a video that fails (error / no match detected) must show as a failure, not
        # be skipped silently. Such failures end the task at once, without spending retries.
        soft_fail=False,
    ).expand(video_id=created.output.map(video_id_of))
    # [END howto_mapped_create_and_wait]

    @task
    def summarize_video(video: dict[str, Any]) -> dict[str, Any]:
        """Downstream use of the video's metadata, e.g. to register it in a data catalogue."""
        minutes = (video.get("duration") or 0) / 60
        summary = {
            "video_id": video["id"],
            "game_name": video.get("game_name"),
            "title": video.get("title"),
            "duration_minutes": round(minutes, 1),
            "mp4_source": video.get("mp4_source"),
        }
        log.info("Video %s (%s) is ready: %.0f min", summary["video_id"], summary["game_name"], minutes)
        return summary

    summaries = summarize_video.expand(video=ready.output)

    # [START howto_mapped_analysis_and_results]
    # The analysis need not wait for the video: the API queues it until the video is ready.
    analyses = AIOnTheBallCreateAnalysisOperator.partial(task_id="create_analysis").expand(
        video_id=created.output.map(video_id_of)
    )
    analysed = AIOnTheBallAnalysisSensor.partial(
        task_id="wait_for_analysis",
        deferrable=True,
        min_poll_interval=ANALYSIS_MIN_POLL_SECONDS,
        poll_interval=ANALYSIS_POLL_SECONDS,
        timeout=8 * 3600,  # the API's Quick Start: 2-6 hours
    ).expand_kwargs(analyses.output.map(analysis_wait_kwargs))
    results = AIOnTheBallAnalysisResultsOperator.partial(
        task_id="fetch_results",
        results=("summary", "events"),
        # run_id, not ds: runs triggered by hand on Airflow 3 have no logical date.
        output_path="{{ params.output_path }}/{{ run_id }}",
    ).expand(analysis_id=analysed.output.map(analysis_id_of))
    # [END howto_mapped_analysis_and_results]

    @task
    def report_possession(paths: dict[str, str]) -> dict[str, Any]:
        """Read the stored summary and log possession per team (team_0 starts on the left)."""
        from airflow.providers.common.compat.sdk import ObjectStoragePath

        location = paths["summary"]
        raw = (ObjectStoragePath(location) if "://" in location else Path(location)).read_text()
        summary = json.loads(raw)
        teams, shares = summary["teams"], summary["possession"]["summary"]
        report = {
            teams["team_0_name"]: shares["team_0"]["pct"],
            teams["team_1_name"]: shares["team_1"]["pct"],
            "unknown": shares["unknown"]["pct"],
        }
        log.info("Possession: %s", ", ".join(f"{name} {pct:.1f}%" for name, pct in report.items()))
        return report

    possession = report_possession.expand(paths=results.output)

    @task.short_circuit
    def cleanup_requested(params: dict[str, Any] | None = None) -> bool:
        return bool((params or {}).get("cleanup"))

    deleted = AIOnTheBallDeleteVideoOperator.partial(
        task_id="delete_video",
        missing_ok=True,  # safe to run again
    ).expand(video_id=created.output.map(video_id_of))

    [summaries, possession] >> cleanup_requested() >> deleted


example_aiontheball_match_ingestion_dag = example_aiontheball_match_ingestion()
