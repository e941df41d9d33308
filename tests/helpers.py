"""Helpers shared by tests, imported as ``tests.helpers``: constants, the connection, a stand-in task
context, simulator control calls and DAG files. Fixtures stay in ``conftest.py`` (never import it: pytest
already loaded it, and a second import would make a second copy of everything in it).

Importing this module imports no Airflow (``tests/standalone`` uses it too); what needs Airflow imports it
when called. ``conftest.py`` sets ``AIRFLOW_HOME`` before anything imports Airflow.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import logging
import os
import re
import shutil
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

REPO = Path(__file__).resolve().parent.parent
#: The Makefile's default Airflow (``make bench`` and ``make soak`` run in its venv).
MAKEFILE_AIRFLOW = re.search(r"^AIRFLOW_VERSION \?= (\S+)$", (REPO / "Makefile").read_text(), re.M)[1]  # type: ignore[index]


def only_on_airflow(*versions: str, reason: str) -> pytest.MarkDecorator:
    """Skip unless the installed Airflow is one of ``versions`` (CI runs every version of the matrix)."""
    from importlib import metadata

    return pytest.mark.skipif(metadata.version("apache-airflow") not in versions, reason=reason)


EXAMPLE_DAGS = REPO / "example_dags"

TOKEN = "test-token-4f9c2a7e1b"
OTHER_TOKEN = "other-org-token-8d3e"
CONN_ENV = "AIRFLOW_CONN_AIONTHEBALL_DEFAULT"
#: Retry waits short by configuration (not by patching sleeps away): 10 ms first step, 2 s cap.
FAST_RETRY_EXTRA = {"retry_min_wait": 0.01, "retry_max_wait": 2, "retry_limit": 3, "timeout": 5}

#: Fast simulator timings: a video moves one status every 0.2 s; an analysis runs for about 1.5 s.
FAST_SIMULATOR = {
    "video_step_seconds": 0.2,
    "analysis_init_seconds": 0.1,
    "analysis_seconds": 1.0,
    "analysis_aggregating_seconds": 0.2,
}


def __getattr__(name: str) -> Any:
    """``HAS_TASK_STATE_STORE``: whether this Airflow has the task state store of durable create operators
    (3.3+); computed on first use, so that importing this module imports no Airflow."""
    if name != "HAS_TASK_STATE_STORE":
        raise AttributeError(name)
    try:
        from airflow.sdk.execution_time.context import TaskStateStoreAccessor  # noqa: F401
    except ImportError:
        return False
    return True


def connection_json(base_url: str, token: str = TOKEN, **extra: object) -> str:
    """The connection as users give it in an env var. Pre-flight checks are off unless ``preflight=True``: the
    simulator never downloads the videos' URLs (tests/unit/test_preflight_task.py serves real files)."""
    extra = {"preflight": False, **extra}
    return json.dumps({"conn_type": "aiontheball", "host": base_url, "password": token, "extra": extra})


class RecordingTaskInstance:
    """Stand-in for the task instance in unit tests that call ``execute()`` directly: records XComs.

    Real runs (``dag.test()`` and the e2e test) use Airflow's own task instances.
    """

    dag_id = "test_dag"
    task_id = "test_task"
    run_id = "test_run"
    map_index = -1
    max_tries = 0

    def __init__(self, try_number: int = 1, start_date: Any = None) -> None:
        self.try_number = try_number
        self.start_date = start_date  # when this try started (what execution_timeout counts from)
        self.xcoms: dict[str, Any] = {}

    def get_first_reschedule_date(self, context: Any) -> None:
        """Airflow 3's reschedule-mode sensors ask this; a first poke has no earlier reschedule."""
        return None

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value

    def xcom_pull(self, task_ids: Any = None, key: str = "return_value", map_indexes: Any = None) -> Any:
        """This task instance's own XComs (what a resumed task reads back)."""
        return self.xcoms.get(key)


@dataclass
class FakeDagRun:
    start_date: Any


def task_context(try_number: int = 1, run_started: Any = None, try_started: Any = None) -> dict[str, Any]:
    """A minimal execution context: ``ti`` (recording XComs, with the try's start date) and ``dag_run``
    (with its start date)."""
    return {"ti": RecordingTaskInstance(try_number, try_started), "dag_run": FakeDagRun(run_started)}


class RecordingStateStore:
    """Stand-in for ``context["task_state_store"]`` (Airflow 3.3's ``get``/``set``/``delete``), kept
    across "tries" the way Airflow keeps it for a task instance."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {}

    def get(self, key: str, default: object = None) -> object:
        return self.values.get(key, default)

    def set(self, key: str, value: object) -> None:
        assert value is not None
        self.values[key] = json.loads(json.dumps(value))  # JSON only, as the real store

    def delete(self, key: str) -> None:
        self.values.pop(key, None)


def durable_context(store: RecordingStateStore, try_number: int, run_started: Any = None) -> dict:
    context = task_context(try_number=try_number, run_started=run_started)
    context["task_state_store"] = store
    return context


@contextlib.contextmanager
def structlog_entries() -> Iterator[list[dict[str, Any]]]:
    """Every structlog entry at DEBUG while open (Airflow 3 logs ``self.log`` of hooks, operators and
    triggers through structlog); an empty list on Airflow 2, where stdlib logging has them all."""
    try:
        import structlog
        from structlog.testing import LogCapture
    except ImportError:
        yield []
        return
    capture = LogCapture()
    previous = structlog.get_config()
    structlog.configure(
        processors=[structlog.stdlib.PositionalArgumentsFormatter(), capture],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        cache_logger_on_first_use=False,
    )
    try:
        yield capture.entries
    finally:
        structlog.configure(**previous)


@dataclass
class CapturedLogs:
    """Log output of both logging systems: stdlib (Airflow 2, our modules) and structlog (Airflow 3).

    What the ``all_logs`` fixture yields.
    """

    caplog: pytest.LogCaptureFixture
    structlog_entries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def messages(self) -> list[str]:
        return [r.getMessage() for r in self.caplog.records] + [str(e.get("event")) for e in self.structlog_entries]

    @property
    def text(self) -> str:
        return self.caplog.text + "\n".join(repr(e) for e in self.structlog_entries)


def api_requests(server: Any, method: str | None = None, path: str | None = None) -> list[dict[str, Any]]:
    """The simulator's request log, optionally only one method and/or one exact path."""
    logged = requests.get(f"{server.control_url}/requests", timeout=5).json()["requests"]
    return [r for r in logged if (method is None or r["method"] == method) and (path is None or r["path"] == path)]


def inject(server: Any, **fault: Any) -> None:
    """Queue a simulator fault (see ``Fault``)."""
    requests.post(f"{server.control_url}/faults", json=fault, timeout=5).raise_for_status()


def stats(server: Any) -> dict[str, Any]:
    """The simulator's counters (``GET /_control/stats``)."""
    counters: dict[str, Any] = requests.get(f"{server.control_url}/stats", timeout=5).json()
    return counters


def reuse_in_process_execution_api() -> None:
    """Make ``dag.test()`` on Airflow 3.0-3.2 build its in-process execution API once per process, as 3.3 does.

    Before 3.3 every task of a ``dag.test()`` builds the whole execution API app (FastAPI + Cadwyn), 1-4 s
    per task on two cores: most of a ``dag.test()``. Airflow 3.3 caches it (apache/airflow#65235: an
    ``lru_cache`` on ``in_process_api_server``, and ``_api_client(dag=None)`` drops the previous DAG's
    dag-bag override); this applies the same two changes to older 3.x, for the tests only.
    """
    try:
        from airflow.sdk.execution_time import supervisor
    except ImportError:  # Airflow 2: dag.test() has no execution API
        return
    server = supervisor.in_process_api_server
    if hasattr(server, "cache_info"):  # 3.3+, or already done
        return
    cached = functools.lru_cache(maxsize=1)(server)
    supervisor.in_process_api_server = cached
    make_client = supervisor.InProcessTestSupervisor._api_client

    def api_client(dag: Any = None) -> Any:
        if dag is None:
            from airflow.api_fastapi.common.dagbag import dag_bag_from_app

            cached().app.dependency_overrides.pop(dag_bag_from_app, None)
        return make_client(dag)

    supervisor.InProcessTestSupervisor._api_client = staticmethod(api_client)


def load_dag_file(source: Path) -> Any:
    """Copy a DAG file into the dags folder (Airflow 3.3's ``dag.test()`` runs only bundle DAGs), import it
    under a fresh module name and return the one DAG it defines."""
    target = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / source.name
    shutil.copyfile(source, target)
    return import_dag(target)


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


def task_states_of(dag_id: str) -> dict[tuple[str, int], str]:
    """Task-instance states of a DAG's runs, read from the metadata DB (for a ``dag.test()`` that raised)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(TaskInstance).filter(TaskInstance.dag_id == dag_id).all()
        return {(ti.task_id, ti.map_index): str(ti.state) for ti in rows}


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


def stored_text(dag_id: str) -> str:
    """Everything the metadata DB holds for a DAG's run: rendered fields, XComs, trigger rows."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session

    try:
        from airflow.models.xcom import XComModel as XComRow  # Airflow 3
    except ImportError:
        from airflow.models.xcom import XCom as XComRow  # type: ignore[assignment]
    with create_session() as session:
        rendered = [r.rendered_fields for r in session.query(RenderedTaskInstanceFields).filter_by(dag_id=dag_id)]
        xcoms = [str(x.value) for x in session.query(XComRow).filter_by(dag_id=dag_id)]
        triggers = [str(t.kwargs) for t in session.query(Trigger)]
    assert rendered, "the probe needs the rendered fields to have been stored"
    return json.dumps(rendered, default=str) + "\n".join(xcoms) + "\n".join(triggers)
