"""Shared fixtures: an isolated AIRFLOW_HOME, the simulator on loopback, and the connection to it.

The connection is given the way users give it in containers: the env var
``AIRFLOW_CONN_AIONTHEBALL_DEFAULT`` holding the connection as JSON.

Only fixtures live here; constants and helpers are in ``tests/helpers.py`` (import them from there, never
from this module).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator

# Before anything imports Airflow: never touch the developer's ~/airflow (an AIRFLOW_HOME set by the user
# wins). Each pytest-xdist worker gets its own home under the suite's, so its own SQLite metadata DB.
_SUITE_HOME = "AIB_TEST_AIRFLOW_HOME"  # the home this suite made, inherited by xdist workers
if "AIRFLOW_HOME" not in os.environ or _SUITE_HOME in os.environ:
    _home = os.environ.setdefault(_SUITE_HOME, tempfile.mkdtemp(prefix="aib-test-airflow-home-"))
    _home = os.path.join(_home, os.environ.get("PYTEST_XDIST_WORKER", ""))
    os.environ["AIRFLOW_HOME"] = _home
    os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = os.path.join(_home, "dags")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", os.path.join(os.environ["AIRFLOW_HOME"], "dags"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.makedirs(os.environ["AIRFLOW__CORE__DAGS_FOLDER"], exist_ok=True)

import pytest  # noqa: E402 - after the environment above, which must precede any Airflow import

# The test tiers (tests/standalone runs once, without Airflow; the rest on every version): tests/tiers.py.
pytest_plugins = ["tests.tiers"]

from airflow_provider_aiontheball.testing.simulator import Simulator, SimulatorConfig, SimulatorServer  # noqa: E402
from tests.helpers import (  # noqa: E402
    CONN_ENV,
    FAST_RETRY_EXTRA,
    FAST_SIMULATOR,
    OTHER_TOKEN,
    TOKEN,
    CapturedLogs,
    connection_json,
    reuse_in_process_execution_api,
    structlog_entries,
)


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


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[CapturedLogs]:
    """Capture every log line at DEBUG, whichever logging system Airflow routes ``self.log`` through."""
    caplog.set_level(logging.DEBUG)
    for name in ("airflow.task", "airflow.triggers", "airflow_provider_aiontheball"):
        caplog.set_level(logging.DEBUG, logger=name)  # Airflow 2 gives its task logger its own level
    with structlog_entries() as entries:
        yield CapturedLogs(caplog, entries)


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A migrated SQLite metadata DB in the test AIRFLOW_HOME (``dag.test()`` needs one)."""
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    reuse_in_process_execution_api()
