"""The smallest useful AI on the Ball DAG: create a video, wait for it without a worker slot, delete it."""

from __future__ import annotations

# [START howto_minimal_dag]
import datetime as dt

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_aiontheball.operators.video import (
    AIOnTheBallCreateVideoOperator,
    AIOnTheBallDeleteVideoOperator,
)
from airflow_provider_aiontheball.sensors.video import AIOnTheBallVideoSensor

with DAG(
    dag_id="example_aiontheball_minimal",
    schedule=None,
    start_date=dt.datetime(2025, 1, 1),
    catchup=False,
    tags=["example", "aiontheball"],
) as example_aiontheball_minimal_dag:
    create_video = AIOnTheBallCreateVideoOperator(
        task_id="create_video",
        video_file_url="https://example.com/match-video.mp4",
        title="Team A vs Team B",
        home_team_name="Team A",
        away_team_name="Team B",
    )
    wait_for_video = AIOnTheBallVideoSensor(
        task_id="wait_for_video",
        video_id="{{ ti.xcom_pull(task_ids='create_video', key='video_id') }}",
        deferrable=True,
        timeout=3 * 3600,
    )
    delete_video = AIOnTheBallDeleteVideoOperator(
        task_id="delete_video",
        video_id="{{ ti.xcom_pull(task_ids='create_video', key='video_id') }}",
    )
    create_video >> wait_for_video >> delete_video
# [END howto_minimal_dag]
