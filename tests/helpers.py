"""Helpers shared by tests (imported as ``tests.helpers``; fixtures stay in ``conftest.py``)."""

from __future__ import annotations

import importlib.util
import json
import os
import textwrap
from pathlib import Path
from typing import Any

import requests

try:  # Airflow 3.3+: the task state store that durable create operators use
    from airflow.sdk.execution_time.context import TaskStateStoreAccessor  # noqa: F401

    HAS_TASK_STATE_STORE = True
except ImportError:
    HAS_TASK_STATE_STORE = False


def api_requests(server: Any, method: str | None = None, path: str | None = None) -> list[dict[str, Any]]:
    """The simulator's request log, optionally only one method and/or one exact path."""
    logged = requests.get(f"{server.control_url}/requests", timeout=5).json()["requests"]
    return [r for r in logged if (method is None or r["method"] == method) and (path is None or r["path"] == path)]


def inject(server: Any, **fault: Any) -> None:
    """Queue a simulator fault (see ``Fault``)."""
    requests.post(f"{server.control_url}/faults", json=fault, timeout=5).raise_for_status()


def write_dag(source: str, name: str) -> Any:
    """Write a DAG file into the dags folder (Airflow 3.3's ``dag.test()`` only runs bundle DAGs),
    import it under a fresh module name and return the one DAG it defines."""
    target = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / f"{name}.py"
    target.write_text(textwrap.dedent(source))
    return import_dag(target)


def import_dag(target: Path) -> Any:
    """Import a DAG file of the dags folder under a fresh module name; the one DAG it defines."""
    spec = importlib.util.spec_from_file_location(f"dag_under_test_{target.stem}", target)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dags = [value for value in vars(module).values() if type(value).__name__ == "DAG"]
    assert len(dags) == 1, f"{target.name} defines {len(dags)} DAGs"
    return dags[0]


def task_instances(dag_run: Any) -> dict[tuple[str, int], Any]:
    return {(ti.task_id, ti.map_index): ti for ti in dag_run.get_task_instances()}


def states(dag_run: Any) -> dict[tuple[str, int], str]:
    return {key: str(ti.state) for key, ti in task_instances(dag_run).items()}


def xcom_value(dag_run: Any, task_id: str, key: str, map_index: int = -1) -> Any:
    """An XCom a task of a finished ``dag.test()`` run pushed, read from the metadata DB."""
    from airflow.utils.session import create_session

    try:
        from airflow.models.xcom import XComModel  # Airflow 3
    except ImportError:  # Airflow 2
        from airflow.models.xcom import XCom

        return XCom.get_one(run_id=dag_run.run_id, key=key, task_id=task_id, dag_id=dag_run.dag_id, map_index=map_index)
    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=task_id, key=key, map_index=map_index)
            .one_or_none()
        )
        if row is None:
            return None
        value = row.value
        return json.loads(value) if isinstance(value, str) else value
