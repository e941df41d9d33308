"""What users install: the wheel built from this checkout, its contents and metadata."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # The venv's (locked) build backend, as `python -m build` would run it, minus the isolated build env.
    result = subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "--target", "wheel", "--directory", str(out)],
        cwd=REPO,
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
