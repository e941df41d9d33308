"""A wait started in the triggerer (``start_from_trigger=True``, Airflow 3.3+), for ``tests/system/test_e2e.py``.

The scheduler defers ``wait_for_video`` itself (no worker starts it) with the video id still a template;
the triggerer renders it from ``create_video``'s XCom, polls, and ends the task with its XComs, which
``use_video`` pulls: a wait with no worker start at all.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow_provider_aiontheball.operators.video import AIOnTheBallCreateVideoOperator
from airflow_provider_aiontheball.sensors.video import AIOnTheBallVideoSensor

try:
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2 (the test runs this DAG on 3.3+ only)
    from airflow import DAG  # type: ignore[attr-defined,no-redef]
    from airflow.decorators import task  # type: ignore[no-redef]

DAG_ID = "aib_start_from_trigger"

with DAG(dag_id=DAG_ID, schedule=None, start_date=dt.datetime(2025, 1, 1, tzinfo=dt.UTC), catchup=False):
    create_video = AIOnTheBallCreateVideoOperator(
        task_id="create_video",
        video_file_url="https://example.com/matches/start-from-trigger.mp4",
        title="Start vs Trigger",
        home_team_name="Start",
        away_team_name="Trigger",
    )
    wait_for_video = AIOnTheBallVideoSensor(
        task_id="wait_for_video",
        # map_indexes=-1: Airflow 3.3's triggerer cannot answer an xcom_pull over all map indexes.
        video_id="{{ ti.xcom_pull(task_ids='create_video', key='video_id', map_indexes=-1) }}",
        start_from_trigger=True,
        poll_interval=2,
        min_poll_interval=1,
        timeout=300,
    )

    @task
    def use_video(video: Any, mp4_source: Any) -> int:
        # What a worker-ended wait leaves: the video as a dict (not a JSON string of it) and its mp4_source.
        assert isinstance(video, dict), video
        assert video["status"] == "available", video
        assert mp4_source == video["mp4_source"], (mp4_source, video)
        return int(video["id"])

    create_video >> wait_for_video
    use_video(wait_for_video.output, wait_for_video.output["mp4_source"])
