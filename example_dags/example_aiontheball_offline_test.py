"""Testing a DAG offline: the bundled API simulator stands in for AI on the Ball, ``dag.test()`` runs the DAG.

The DAG below is any DAG of yours; :func:`run_offline` is what a test (or ``python <this file>``) calls.
Before the first run, migrate the metadata DB of your ``AIRFLOW_HOME`` (``airflow db migrate``); on
Airflow 3.3 ``dag.test()`` runs only DAGs of the dags folder, so keep this file there.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_aiontheball.operators.video import AIOnTheBallCreateVideoOperator
from airflow_provider_aiontheball.sensors.video import AIOnTheBallVideoSensor

with DAG(
    dag_id="example_aiontheball_offline_test",
    schedule=None,
    start_date=dt.datetime(2025, 1, 1),
    catchup=False,
    tags=["example", "aiontheball"],
) as example_aiontheball_offline_test_dag:
    create_video = AIOnTheBallCreateVideoOperator(
        task_id="create_video",
        video_file_url="https://example.com/match.mp4",
        title="Offline A vs Offline B",
        home_team_name="Offline A",
        away_team_name="Offline B",
    )
    wait_for_video = AIOnTheBallVideoSensor(
        task_id="wait_for_video",
        video_id="{{ ti.xcom_pull(task_ids='create_video', key='video_id') }}",
        deferrable=True,
        poke_interval=1,
        timeout=120,
    )
    create_video >> wait_for_video


def run_offline(dag: Any) -> Any:
    """Run ``dag`` once with ``dag.test()`` against a simulator on loopback; return the DAG run."""
    # [START howto_dag_test_offline]
    import json
    import os
    from unittest import mock

    from airflow_provider_aiontheball.testing.simulator import Simulator, SimulatorConfig, SimulatorServer

    # Videos move one status every 0.5 s and analyses take seconds, instead of minutes and hours.
    config = SimulatorConfig(tokens={"my-test-token": "my-org"}, video_step_seconds=0.5, analysis_seconds=5)
    with SimulatorServer(Simulator(config)) as server:  # a free port on 127.0.0.1, stopped on exit
        # The simulator never downloads your videos' URLs: no pre-flight checks of them either.
        connection = {
            "conn_type": "aiontheball",
            "host": server.base_url,
            "password": "my-test-token",
            "extra": {"preflight": False},
        }
        # The connection the operators use by default, for this run only.
        with mock.patch.dict(os.environ, {"AIRFLOW_CONN_AIONTHEBALL_DEFAULT": json.dumps(connection)}):
            dag_run = dag.test()
        # What the DAG sent: the simulator's request log, e.g. one POST /videos.
        posts = [r.path for r in server.simulator.requests if r.method == "POST"]
    # [END howto_dag_test_offline]
    assert len(posts) == 1, posts
    return dag_run


if __name__ == "__main__":  # python example_aiontheball_offline_test.py: exit status 0 when the run succeeded
    import sys

    sys.exit(0 if str(run_offline(example_aiontheball_offline_test_dag).state) == "success" else 1)
