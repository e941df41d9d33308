"""Videos in object storage: the create operator takes ``s3://``, ``gs://`` or ``abfs://`` paths and presigns
them at execute time with the store's Airflow connection; the API gets a URL valid for a day, never the logs.

Trigger it with ``{"video_path": "s3://bucket/key.mp4"}``. Needs the store's extra:
``pip install 'airflow-provider-aiontheball[amazon]'`` (``[google]``, ``[azure]``).
"""

from __future__ import annotations

import datetime as dt

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_aiontheball.operators.video import AIOnTheBallCreateVideoOperator

with DAG(
    dag_id="example_aiontheball_object_storage",
    schedule=None,
    start_date=dt.datetime(2025, 1, 1),
    catchup=False,
    params={"video_path": "s3://matches/season-2025/ajax-psv.mp4"},
    tags=["example", "aiontheball"],
) as example_aiontheball_object_storage_dag:
    # [START howto_operator_object_storage]
    create_video = AIOnTheBallCreateVideoOperator(
        task_id="create_video",
        # s3://bucket/key, gs://bucket/key, abfs://container/path: presigned when the task runs.
        video_file_url="{{ params.video_path }}",
        # The connection that signs it. Default: aws_default, google_cloud_default or wasb_default.
        source_conn_id="aws_default",
        # How long the API may take to start its download. Default: 24 hours; at most 7 days.
        presign_expires_in=dt.timedelta(hours=24),
        title="Ajax vs PSV",
        home_team_name="Ajax",
        away_team_name="PSV",
    )
    # [END howto_operator_object_storage]
