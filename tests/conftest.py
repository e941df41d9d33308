"""Shared fixtures: an isolated AIRFLOW_HOME, the simulator on loopback, and the connection to it.

The connection is given the way users give it in containers: the env var
``AIRFLOW_CONN_AIONTHEBALL_DEFAULT`` holding the connection as JSON.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Before anything imports Airflow: never touch the developer's ~/airflow.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="aib-test-airflow-home-"))
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", os.path.join(os.environ["AIRFLOW_HOME"], "dags"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.makedirs(os.environ["AIRFLOW__CORE__DAGS_FOLDER"], exist_ok=True)

import pytest  # noqa: E402 - after the environment above, which must precede any Airflow import

from airflow_provider_aiontheball.testing.simulator import Simulator, SimulatorConfig, SimulatorServer  # noqa: E402

TOKEN = "test-token-4f9c2a7e1b"
OTHER_TOKEN = "other-org-token-8d3e"
CONN_ENV = "AIRFLOW_CONN_AIONTHEBALL_DEFAULT"
#: Retry waits short by configuration (not by patching sleeps away): 10 ms first step, 2 s cap.
FAST_RETRY_EXTRA = {"retry_min_wait": 0.01, "retry_max_wait": 2, "retry_limit": 3, "timeout": 5}


def connection_json(base_url: str, token: str = TOKEN, **extra: object) -> str:
    return json.dumps({"conn_type": "aiontheball", "host": base_url, "password": token, "extra": extra})


#: Fast simulator timings: a video moves one status every 0.2 s; an analysis runs for about 1.5 s.
FAST_SIMULATOR = {
    "video_step_seconds": 0.2,
    "analysis_init_seconds": 0.1,
    "analysis_seconds": 1.0,
    "analysis_aggregating_seconds": 0.2,
}


@pytest.fixture
def simulator(request: pytest.FixtureRequest) -> Iterator[SimulatorServer]:
    """A fresh simulator on a free loopback port, with fast timings.

    ``@pytest.mark.simulator(**config)`` overrides any :class:`SimulatorConfig` field for one test.
    """
    marker = request.node.get_closest_marker("simulator")
    overrides = marker.kwargs if marker else {}
    config = SimulatorConfig(tokens={TOKEN: "org-1", OTHER_TOKEN: "org-2"}, **{**FAST_SIMULATOR, **overrides})
    with SimulatorServer(Simulator(config)) as server:
        yield server


@pytest.fixture
def aiontheball_conn(simulator: SimulatorServer, monkeypatch: pytest.MonkeyPatch) -> SimulatorServer:
    """``aiontheball_default`` pointing at the simulator, with short retry waits."""
    monkeypatch.setenv(CONN_ENV, connection_json(simulator.base_url, **FAST_RETRY_EXTRA))
    return simulator


@dataclass
class CapturedLogs:
    """Log output of both logging systems: stdlib (Airflow 2, our modules) and structlog (Airflow 3)."""

    caplog: pytest.LogCaptureFixture
    structlog_entries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def messages(self) -> list[str]:
        return [r.getMessage() for r in self.caplog.records] + [str(e.get("event")) for e in self.structlog_entries]

    @property
    def text(self) -> str:
        return self.caplog.text + "\n".join(repr(e) for e in self.structlog_entries)


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[CapturedLogs]:
    """Capture every log line at DEBUG, whichever logging system Airflow routes ``self.log`` through."""
    caplog.set_level(logging.DEBUG)
    for name in ("airflow.task", "airflow.triggers", "airflow_provider_aiontheball"):
        caplog.set_level(logging.DEBUG, logger=name)  # Airflow 2 gives its task logger its own level
    try:
        import structlog
        from structlog.testing import LogCapture
    except ImportError:  # Airflow 2: everything goes through stdlib logging
        yield CapturedLogs(caplog)
        return
    capture = LogCapture()
    previous = structlog.get_config()
    structlog.configure(
        processors=[structlog.stdlib.PositionalArgumentsFormatter(), capture],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        cache_logger_on_first_use=False,
    )
    try:
        yield CapturedLogs(caplog, capture.entries)
    finally:
        structlog.configure(**previous)


class RecordingTaskInstance:
    """Stand-in for the task instance in unit tests that call ``execute()`` directly: records XComs.

    Real runs (``dag.test()`` and the e2e test) use Airflow's own task instances.
    """

    dag_id = "test_dag"
    task_id = "test_task"
    run_id = "test_run"
    map_index = -1
    max_tries = 0

    def __init__(self, try_number: int = 1) -> None:
        self.try_number = try_number
        self.xcoms: dict[str, Any] = {}

    def get_first_reschedule_date(self, context: Any) -> None:
        """Airflow 3's reschedule-mode sensors ask this; a first poke has no earlier reschedule."""
        return None

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


@dataclass
class FakeDagRun:
    start_date: Any


def task_context(try_number: int = 1, run_started: Any = None) -> dict[str, Any]:
    """A minimal execution context: ``ti`` (recording XComs) and ``dag_run`` (with its start date)."""
    return {"ti": RecordingTaskInstance(try_number), "dag_run": FakeDagRun(run_started)}


REPO = Path(__file__).resolve().parent.parent
EXAMPLE_DAGS = REPO / "example_dags"


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A migrated SQLite metadata DB in the test AIRFLOW_HOME (``dag.test()`` needs one)."""
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def load_dag_file(source: Path) -> Any:
    """Copy a DAG file into the dags folder (Airflow 3.3's ``dag.test()`` runs only bundle DAGs), import it
    under a fresh module name and return the one DAG it defines."""
    target = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / source.name
    shutil.copyfile(source, target)
    from tests.helpers import import_dag

    return import_dag(target)
