"""The installed provider as the Airflow CLI sees it. The wheel's contents: tests/standalone/test_wheel.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys

AIRFLOW = [sys.executable, "-m", "airflow"]


def run_airflow(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"}
    return subprocess.run([*AIRFLOW, *args], capture_output=True, text=True, timeout=300, env=env)


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
