"""Benchmark DAG of ``benchmarks/bench_deployment.py``: N mapped deferred waits with our sensor.

``video_ids`` returns the ids of the videos the benchmark created before triggering the run (the run's
conf); ``wait_for_video`` is ``AIOnTheBallVideoSensor(deferrable=True)`` mapped over them. It polls every
``AIB_BENCH_POLL_SECONDS`` (both bounds of its adaptive schedule equal: a fixed interval, like the
anchor's). ``aib_bench_wait_anchor.py`` is the same DAG built on the HTTP provider's ``HttpSensor``.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from airflow_provider_aiontheball.sensors.video import AIOnTheBallVideoSensor

try:
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2
    from airflow import DAG  # type: ignore[attr-defined,no-redef]
    from airflow.decorators import task  # type: ignore[no-redef]

POLL_SECONDS = float(os.environ.get("AIB_BENCH_POLL_SECONDS", "5"))
WAIT_TIMEOUT_SECONDS = 900

with DAG(
    dag_id="aib_bench_wait_ours",
    schedule=None,
    start_date=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    # Deferred task instances do not count against it; [core] parallelism is the limit that binds.
    max_active_tasks=1024,
    tags=["benchmark"],
):

    @task
    def video_ids(**context: Any) -> list[int]:
        return [int(video_id) for video_id in context["dag_run"].conf["video_ids"]]

    AIOnTheBallVideoSensor.partial(
        task_id="wait_for_video",
        deferrable=True,
        poll_interval=POLL_SECONDS,
        min_poll_interval=POLL_SECONDS,
        timeout=WAIT_TIMEOUT_SECONDS,
        retries=0,
    ).expand(video_id=video_ids())
