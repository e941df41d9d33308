"""An analysis and its results with AI on the Ball: start the analysis right after the video, wait for it
in the triggerer, then fetch its results - small ones into XCom, the rest (query intervals, the tracking
file) written to ``output_path``.

Run it against the bundled simulator with ``dag.test()``, or against the real API by giving the
``aiontheball_default`` connection your token (a real analysis takes 2-6 hours).
"""

from __future__ import annotations

import datetime as dt
import os

from airflow.providers.common.compat.sdk import DAG, Param

from airflow_provider_aiontheball.operators.analysis import (
    AIOnTheBallAnalysisResultsOperator,
    AIOnTheBallCreateAnalysisOperator,
)
from airflow_provider_aiontheball.operators.video import AIOnTheBallCreateVideoOperator

#: Shortest interval between analysis polls near the expected finish: 45 s suits real 2-6 h analyses;
#: the tests set a fraction of a second because a simulated analysis takes seconds.
ANALYSIS_MIN_POLL_SECONDS = float(os.environ.get("AIONTHEBALL_EXAMPLE_ANALYSIS_MIN_POLL_SECONDS", "45"))

with DAG(
    dag_id="example_aiontheball_analysis_results",
    schedule=None,
    start_date=dt.datetime(2025, 1, 1),
    catchup=False,
    tags=["example", "aiontheball"],
    params={
        "output_path": Param(
            "/tmp/aiontheball/results",
            type="string",
            description="Where results are written: a local directory or an object-storage URI.",
        ),
    },
) as example_aiontheball_analysis_results_dag:
    create_video = AIOnTheBallCreateVideoOperator(
        task_id="create_video",
        video_file_url="https://example.com/season-2025/feyenoord-az.mp4",
        title="Feyenoord vs AZ",
        home_team_name="Feyenoord",
        away_team_name="AZ",
    )

    # [START howto_create_analysis_and_wait]
    create_analysis = AIOnTheBallCreateAnalysisOperator(
        task_id="create_analysis",
        # No need to wait for the video: the API queues the analysis (waiting_for_video) until it is ready.
        video_id="{{ ti.xcom_pull(task_ids='create_video', key='video_id') }}",
        wait_for_completion=True,  # return the finished analysis ...
        deferrable=True,  # ... waiting in the triggerer, polling near the finish it estimates from progress
        min_poll_interval=ANALYSIS_MIN_POLL_SECONDS,
        timeout=8 * 3600,  # the API's Quick Start: 2-6 hours
    )
    # [END howto_create_analysis_and_wait]

    # [START howto_results_to_xcom]
    summary_to_xcom = AIOnTheBallAnalysisResultsOperator(
        task_id="summary_to_xcom",
        analysis_id="{{ ti.xcom_pull(task_ids='create_analysis', key='analysis_id') }}",
        results=["summary", "schema"],  # no output_path: returns {name: result} (XCom: small results only)
    )
    # [END howto_results_to_xcom]

    # [START howto_results_to_files]
    results_to_files = AIOnTheBallAnalysisResultsOperator(
        task_id="results_to_files",
        analysis_id="{{ ti.xcom_pull(task_ids='create_analysis', key='analysis_id') }}",
        results=["events", "query_intervals", "tracking"],
        # A local directory or an object-storage URI (s3://bucket/prefix): the task returns {name: path},
        # each file written as analysis_<id>_<name>.<json|parquet> under a temporary name, then moved.
        output_path="{{ params.output_path }}/{{ run_id }}",
        # query_intervals: the intervals matching these filters (here: the home team in possession).
        query={"filters": [{"type": "team_possession", "teams": ["team_0"]}], "pad_sec": 1},
        tracking_format="json",  # the default is parquet (20-500 MB per match, streamed to the file)
    )
    # [END howto_results_to_files]

    create_video >> create_analysis >> [summary_to_xcom, results_to_files]
