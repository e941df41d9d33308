"""What users install: the wheel's contents, and the provider as the Airflow CLI sees it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import REPO

AIRFLOW = [sys.executable, "-m", "airflow"]


def run_airflow(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"}
    return subprocess.run([*AIRFLOW, *args], capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (built,) = out.glob("airflow_provider_aiontheball-*.whl")
    return built


def test_wheel_ships_the_package_the_simulator_and_type_marker(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "airflow_provider_aiontheball/py.typed",
        "airflow_provider_aiontheball/get_provider_info.py",
        "airflow_provider_aiontheball/hooks/aiontheball.py",
        "airflow_provider_aiontheball/operators/video.py",
        "airflow_provider_aiontheball/operators/analysis.py",
        "airflow_provider_aiontheball/sensors/video.py",
        "airflow_provider_aiontheball/triggers/video.py",
        "airflow_provider_aiontheball/testing/simulator/__init__.py",
        "airflow_provider_aiontheball/testing/simulator/__main__.py",
        "airflow_provider_aiontheball/testing/_tracking_sample.py",
    ):
        assert required in names, required
    assert not any(name.startswith(("tests/", "benchmarks/", "scripts/")) for name in names)


def test_wheel_metadata(wheel):
    archive = zipfile.ZipFile(wheel)
    dist_info = next(n.split("/")[0] for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
    metadata = archive.read(f"{dist_info}/METADATA").decode()
    entry_points = archive.read(f"{dist_info}/entry_points.txt").decode()
    assert "Name: airflow-provider-aiontheball" in metadata
    assert "Requires-Python: >=3.11" in metadata
    assert "Classifier: Framework :: Apache Airflow :: Provider" in metadata
    assert "Classifier: Typing :: Typed" in metadata
    requirements = [
        line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")
    ]
    runtime = [r for r in requirements if "extra ==" not in r]
    assert all(">=" in r and "==" not in r and "<" not in r for r in runtime), f"lower bounds only: {runtime}"
    assert "[apache_airflow_provider]" in entry_points
    assert "airflow_provider_aiontheball.get_provider_info:get_provider_info" in entry_points


def test_airflow_lists_the_provider(airflow_db):
    result = run_airflow("providers", "list", "-o", "json")
    assert result.returncode == 0, result.stderr[-2000:]
    start = result.stdout.index("[")
    providers = {p["package_name"]: p for p in json.loads(result.stdout[start:])}
    assert "airflow-provider-aiontheball" in providers


def test_connection_add_and_get_with_the_cli(airflow_db):
    added = run_airflow(
        "connections",
        "add",
        "aib_from_cli",
        "--conn-type",
        "aiontheball",
        "--conn-password",
        "cli-token-value",
        "--conn-extra",
        '{"timeout": 30, "retry_limit": 2}',
    )
    assert added.returncode == 0, added.stderr[-2000:]
    got = run_airflow("connections", "get", "aib_from_cli", "-o", "json")
    assert got.returncode == 0, got.stderr[-2000:]
    start = got.stdout.index("[")
    (conn,) = json.loads(got.stdout[start:])
    assert conn["conn_type"] == "aiontheball"
    extra = conn["extra_dejson"] if isinstance(conn["extra_dejson"], dict) else json.loads(conn["extra_dejson"])
    assert str(extra["retry_limit"]) == "2"  # the CLI may render numbers as strings; the hook accepts both
