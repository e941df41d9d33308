"""Benchmark DAG of ``benchmarks/bench_deployment.py``: N waits started in the triggerer
(``AIOnTheBallVideoSensor(start_from_trigger=True)``, Airflow 3.3+).

Airflow does not start mapped tasks in the triggerer, so these are N unmapped sensors,
``wait_for_video_<i>``, each rendering its id from the run's conf in the triggerer. N is fixed when the
file is parsed (``AIB_BENCH_WAITS``); the benchmark pads a shorter id list (its warm-up) to N. On an
Airflow without the feature the file defines no DAG and the benchmark skips the variant.
"""

from __future__ import annotations

import datetime as dt
import os

from airflow_provider_aiontheball.sensors.video import AIOnTheBallVideoSensor
from airflow_provider_aiontheball.task_start import supports_start_from_trigger

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG  # type: ignore[attr-defined,no-redef]

POLL_SECONDS = float(os.environ.get("AIB_BENCH_POLL_SECONDS", "5"))
WAITS = int(os.environ.get("AIB_BENCH_WAITS", "100"))
WAIT_TIMEOUT_SECONDS = 900

if supports_start_from_trigger():
    with DAG(
        dag_id="aib_bench_wait_start",
        schedule=None,
        start_date=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        catchup=False,
        max_active_tasks=1024,
        tags=["benchmark"],
    ):
        for i in range(WAITS):
            AIOnTheBallVideoSensor(
                task_id=f"wait_for_video_{i}",
                video_id=f"{{{{ dag_run.conf['video_ids'][{i}] }}}}",
                start_from_trigger=True,
                poll_interval=POLL_SECONDS,
                min_poll_interval=POLL_SECONDS,
                timeout=WAIT_TIMEOUT_SECONDS,
                retries=0,
            )
