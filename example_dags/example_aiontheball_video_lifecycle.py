"""A video's whole life with AI on the Ball: create it and wait until it is available, correct its
metadata, look it up with the hook from a ``@task``, and delete it.

Run it against the bundled simulator with ``dag.test()`` (see the documentation's "Testing your DAGs
offline"), or against the real API by giving the ``aiontheball_default`` connection your token.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_aiontheball.operators.video import (
    AIOnTheBallCreateVideoOperator,
    AIOnTheBallDeleteVideoOperator,
    AIOnTheBallUpdateVideoOperator,
)

with DAG(
    dag_id="example_aiontheball_video_lifecycle",
    schedule=None,
    start_date=dt.datetime(2025, 1, 1),
    catchup=False,
    tags=["example", "aiontheball"],
) as example_aiontheball_video_lifecycle_dag:
    # [START howto_create_video_and_wait]
    create_video = AIOnTheBallCreateVideoOperator(
        task_id="create_video",
        video_file_url="https://example.com/season-2025/ajax-psv.mp4",
        title="Ajax vs PSV",  # a distinct title per match lets a retry recognise its own video
        home_team_name="Ajax",
        away_team_name="PSV",
        date="2025-01-15",
        left_start_team="home",
        wait_for_available=True,  # return only once the API has downloaded and prepared the video
        deferrable=True,  # ... waiting in the triggerer, without a worker slot
        timeout=3 * 3600,
    )
    # [END howto_create_video_and_wait]

    # [START howto_update_video]
    update_video = AIOnTheBallUpdateVideoOperator(
        task_id="update_video",
        video_id="{{ ti.xcom_pull(task_ids='create_video', key='video_id') }}",
        title="Ajax - PSV (Eredivisie)",  # only the fields given are sent; the others stay as they are
        date="2025-01-16",
    )
    # [END howto_update_video]

    # [START howto_hook_in_task]
    @task
    def describe_video(video_id: int) -> dict[str, Any]:
        """Read the video with the hook: every operator is built on it, and so can your own tasks be."""
        from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallHook

        hook = AIOnTheBallHook()  # aiontheball_conn_id="aiontheball_default"
        video = hook.get_video(video_id)
        listed = [v["id"] for v in hook.list_videos()]  # every page of GET /videos
        return {"id": video["id"], "title": video["title"], "status": video["status"], "listed": video_id in listed}

    # [END howto_hook_in_task]

    described = describe_video(create_video.output["video_id"])  # the XCom key the create task pushes

    # [START howto_delete_video]
    delete_video = AIOnTheBallDeleteVideoOperator(
        task_id="delete_video",
        video_id="{{ ti.xcom_pull(task_ids='create_video', key='video_id') }}",
        missing_ok=True,  # a video that is already gone (404) counts as deleted: safe to run again
    )
    # [END howto_delete_video]

    create_video >> update_video >> described >> delete_video
