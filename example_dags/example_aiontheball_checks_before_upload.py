"""Checks before upload: the create operator measures the video as the API will download it — reachable
without credentials, MP4, 1080p or lower, 25 fps, at least 10 minutes — and posts nothing if it is not.

Trigger it with ``{"video_url": "https://.../match.mp4"}`` (a presigned URL works: its signature is never
logged). The media checks need PyAV: ``pip install 'airflow-provider-aiontheball[media]'``.
"""

from __future__ import annotations

import datetime as dt

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_aiontheball.operators.video import AIOnTheBallCreateVideoOperator

with DAG(
    dag_id="example_aiontheball_checks_before_upload",
    schedule=None,
    start_date=dt.datetime(2025, 1, 1),
    catchup=False,
    params={"video_url": "https://storage.example.com/season-2025/ajax-psv.mp4"},
    tags=["example", "aiontheball"],
) as example_aiontheball_checks_before_upload_dag:
    # [START howto_operator_preflight]
    create_video = AIOnTheBallCreateVideoOperator(
        task_id="create_video",
        video_file_url="{{ params.video_url }}",
        title="Ajax vs PSV",
        home_team_name="Ajax",
        away_team_name="PSV",
        # Checked before the POST; a 50 fps or 4K file, a .mov or a 404 fails here, naming the value and the
        # limit, without retries. True: even where the connection's extra says "preflight": false.
        preflight=True,
        # preflight={"duration": False} would run every check but one.
    )
    # [END howto_operator_preflight]
