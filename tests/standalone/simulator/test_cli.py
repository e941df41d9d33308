"""The simulator as a process: the CLI serves and exits on signals; importing it imports no Airflow."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import requests

from tests.helpers import REPO
from tests.standalone.simulator._helpers import URL, wait_until


def test_simulator_does_not_import_airflow() -> None:
    code = (
        "import sys; import airflow_provider_aiontheball.testing.simulator; "
        "bad = sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_cli_serves_and_exits_on_sigterm(tmp_path: Path) -> None:
    secret = "cli-secret-token-8d1f"
    ready = tmp_path / "ready"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_aiontheball.testing.simulator",
            "--port",
            "0",
            "--token",
            secret,
            "--token",
            "second-token",
            "--video-step-seconds",
            "0",
            "--ready-file",
            str(ready),
        ],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: ready.exists() and ready.read_text().strip() != "", timeout=30)
        base_url = ready.read_text().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/api/v1", base_url)
        headers = {"Authorization": f"Bearer {secret}"}
        created = requests.post(base_url + "/videos", json={"video_file_url": URL}, headers=headers, timeout=10)
        assert created.status_code == 201
        assert created.json()["data"]["status"] == "available"  # --video-step-seconds 0
        assert requests.get(base_url + "/videos", headers=headers, timeout=10).json()["meta"]["total"] == 1
        other = {"Authorization": "Bearer second-token"}
        assert requests.get(base_url + "/videos", headers=other, timeout=10).json()["meta"]["total"] == 0
        assert requests.get(base_url + "/videos", timeout=10).status_code == 401
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert stdout.strip() == f"AI on the Ball simulator listening on {base_url}"
    assert secret not in stdout + stderr
    assert "second-token" not in stdout + stderr


def test_cli_exits_on_sigint(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_aiontheball.testing.simulator",
            "--port",
            "0",
            "--ready-file",
            str(ready),
        ],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: ready.exists() and ready.read_text().strip() != "", timeout=30)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
