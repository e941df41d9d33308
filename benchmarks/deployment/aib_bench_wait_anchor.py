"""Benchmark DAG of ``benchmarks/bench_deployment.py``: the anchor, N mapped deferred waits built on the
HTTP provider's ``HttpSensor(deferrable=True)``, polling ``GET /videos/{id}`` until its status is
``available``.

``HttpSensor`` itself never defers when it has a ``response_check`` (apache-airflow-providers-http 6.3.0:
``execute`` runs ``BaseSensorOperator.execute``, i.e. pokes in the worker, holding its slot, whenever
``response_check`` is set), and its own trigger (``HttpSensorTrigger``) only waits for a non-404 answer.
The provider's trigger that checks an answer's content is ``HttpEventTrigger`` (``response_check_path``:
an async function it imports by path), so the least a user writes to wait deferrably for a JSON field is
this subclass: poke once in the worker (as our sensor does), then defer to ``HttpEventTrigger`` and
resume in ``execute_complete``.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from aib_bench_checks import video_available
from airflow.providers.http.sensors.http import HttpSensor

try:
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2
    from airflow import DAG  # type: ignore[attr-defined,no-redef]
    from airflow.decorators import task  # type: ignore[no-redef]

POLL_SECONDS = float(os.environ.get("AIB_BENCH_POLL_SECONDS", "5"))
WAIT_TIMEOUT_SECONDS = 900
HTTP_CONN_ID = "aib_bench_http"
#: The async twin of ``video_available``, by the dotted path HttpEventTrigger imports.
CHECK_PATH = "aib_bench_checks.video_available_async"


class DeferringHttpSensor(HttpSensor):
    """``HttpSensor`` that defers with its response check (see the module docstring)."""

    def execute(self, context: Any) -> Any:
        from airflow.providers.http.triggers.http import HttpEventTrigger

        if self.poke(context):
            return None
        self.defer(
            trigger=HttpEventTrigger(
                response_check_path=CHECK_PATH,
                http_conn_id=self.http_conn_id,
                method=self.method,
                endpoint=self.endpoint,
                headers=self.headers,
                poll_interval=self.poke_interval,
            ),
            method_name="execute_complete",
            timeout=dt.timedelta(seconds=self.timeout),
        )


with DAG(
    dag_id="aib_bench_wait_anchor",
    schedule=None,
    start_date=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_tasks=1024,
    tags=["benchmark"],
):

    @task
    def video_endpoints(**context: Any) -> list[str]:
        return [f"api/v1/videos/{int(video_id)}" for video_id in context["dag_run"].conf["video_ids"]]

    DeferringHttpSensor.partial(
        task_id="wait_for_video",
        http_conn_id=HTTP_CONN_ID,
        deferrable=True,
        response_check=video_available,
        poke_interval=POLL_SECONDS,
        timeout=WAIT_TIMEOUT_SECONDS,
        retries=0,
    ).expand(endpoint=video_endpoints())
