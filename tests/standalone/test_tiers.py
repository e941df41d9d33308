"""The test tiers (tests/tiers.py): a standalone test that imports Airflow fails, never runs on one version."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

IMPORTS_AIRFLOW_AT_MODULE_LEVEL = "import airflow\n\ndef test_x():\n    pass\n"
IMPORTS_AIRFLOW_IN_THE_TEST = "def test_x():\n    from airflow.models import DAG  # noqa: F401\n"
IMPORTS_NO_AIRFLOW = "import json\n\ndef test_x():\n    assert json.loads('1') == 1\n"


def run_pytest(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest with the tier plugin in a throw-away project laid out like ours (tests/, tests/standalone/)."""
    (project / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.tiers", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def layout(project: Path, standalone: str, elsewhere: str = IMPORTS_NO_AIRFLOW) -> Path:
    (project / "tests" / "standalone").mkdir(parents=True)
    (project / "tests" / "standalone" / "test_standalone_one.py").write_text(standalone)
    (project / "tests" / "test_airflow_one.py").write_text(elsewhere)
    return project


@pytest.mark.parametrize(
    ("source", "outcome"),
    [
        pytest.param(IMPORTS_AIRFLOW_AT_MODULE_LEVEL, "1 error", id="module-level-import-fails-collection"),
        pytest.param(IMPORTS_AIRFLOW_IN_THE_TEST, "1 failed", id="import-inside-the-test-fails-it"),
    ],
)
def test_a_standalone_test_that_imports_airflow_fails(tmp_path, source, outcome):
    result = run_pytest(layout(tmp_path, source), "--tier", "standalone")
    assert result.returncode in (1, 2), result.stdout[-2000:]
    assert outcome in result.stdout
    assert "tests/standalone runs once, without Airflow, but this imports 'airflow" in result.stdout


def test_the_standalone_tier_runs_only_tests_standalone(tmp_path):
    result = run_pytest(
        layout(tmp_path, IMPORTS_NO_AIRFLOW, elsewhere=IMPORTS_AIRFLOW_AT_MODULE_LEVEL), "--tier", "standalone", "-v"
    )
    assert result.returncode == 0, result.stdout[-2000:]
    assert "test_standalone_one.py::test_x PASSED" in result.stdout
    assert "test_airflow_one" not in result.stdout


def test_the_airflow_tier_leaves_tests_standalone_out(tmp_path):
    result = run_pytest(layout(tmp_path, IMPORTS_AIRFLOW_AT_MODULE_LEVEL), "--tier", "airflow", "-v")
    assert result.returncode == 0, result.stdout[-2000:]
    assert "test_airflow_one.py::test_x PASSED" in result.stdout
    assert "test_standalone_one" not in result.stdout


def test_airflow_imported_before_collection_is_refused(tmp_path):
    project = layout(tmp_path, IMPORTS_NO_AIRFLOW)
    (project / "tests" / "conftest.py").write_text("import airflow  # noqa: F401\n")
    result = run_pytest(project, "--tier", "standalone")
    assert result.returncode == 4, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Airflow was imported before collection" in result.stderr
