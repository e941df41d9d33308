"""Helpers shared by the benchmark scripts: paths, the simulator process, tables, JSON, statistics.

Nothing here imports Airflow, so the orchestrating processes stay light; only the measured worker
processes import it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"

#: Heavy third-party modules a DAG file must not pull in through our operators and sensors.
HEAVY_MODULES = ("aiohttp", "requests", "tenacity")


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------


def base_parser(description: str) -> argparse.ArgumentParser:
    """The options every benchmark script accepts: ``--smoke`` and ``--out``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny run (a few seconds) that only checks the benchmark still works; numbers are meaningless",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=RESULTS_DIR,
        help=f"directory for the JSON results (default: {RESULTS_DIR.relative_to(REPO)})",
    )
    return parser


# --------------------------------------------------------------------------------------------------
# Environment of child processes
# --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def airflow_home() -> Iterator[Path]:
    """A throw-away ``AIRFLOW_HOME``, so benchmarks never read or write the developer's ``~/airflow``."""
    with tempfile.TemporaryDirectory(prefix="aib-bench-airflow-home-") as home:
        yield Path(home)


def child_env(home: Path, **extra: str) -> dict[str, str]:
    """Environment for a measured child process: isolated Airflow home, no example DAGs, repo importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env["AIRFLOW_HOME"] = str(home)
    env["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    env.update(extra)
    return env


def new_token() -> str:
    """A random bearer token for one simulator run (passed by argument/env only, never printed)."""
    return "bench-" + secrets.token_hex(12)


# --------------------------------------------------------------------------------------------------
# The simulator, in its own process
# --------------------------------------------------------------------------------------------------


class SimulatorProcess:
    """The API simulator in a separate process, so its CPU time never counts against the client.

    Started with the package's CLI (``python -m airflow_provider_aiontheball.testing.simulator``) on a
    free loopback port; always terminated (then killed) on exit.
    """

    def __init__(self, token: str, *, video_step_seconds: float, env: dict[str, str] | None = None) -> None:
        self._token = token
        self.video_step_seconds = video_step_seconds
        self._env = env
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.base_url = ""

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT`` (no path)."""
        return self.base_url.removesuffix("/api/v1")

    @property
    def port(self) -> int:
        return int(self.origin.rsplit(":", 1)[1])

    @property
    def control_url(self) -> str:
        return self.origin + "/_control"

    def __enter__(self) -> SimulatorProcess:
        self._tmp = tempfile.TemporaryDirectory(prefix="aib-bench-sim-")
        ready = Path(self._tmp.name) / "ready"
        log = open(Path(self._tmp.name) / "simulator.log", "wb")
        cmd = [
            sys.executable,
            "-m",
            "airflow_provider_aiontheball.testing.simulator",
            "--port",
            "0",
            "--token",
            self._token,
            "--ready-file",
            str(ready),
            "--video-step-seconds",
            repr(self.video_step_seconds),
        ]
        try:
            self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self._env, cwd=REPO)
        finally:
            log.close()
        try:
            deadline = time.monotonic() + 60
            while not (ready.exists() and ready.read_text().strip()):
                if self._proc.poll() is not None:
                    raise RuntimeError(f"simulator exited with {self._proc.returncode}: {self.log_tail()}")
                if time.monotonic() > deadline:
                    raise RuntimeError("simulator did not start within 60 s")
                time.sleep(0.05)
            self.base_url = ready.read_text().strip()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def log_tail(self, chars: int = 2000) -> str:
        if self._tmp is None:
            return ""
        path = Path(self._tmp.name) / "simulator.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # -- control API (no keep-alive: each call opens exactly one TCP connection) -----------------

    def control(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.control_url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def stats(self) -> dict[str, int]:
        """Simulator counters; this call itself opens one connection (already counted in the answer)."""
        return self.control("GET", "/stats")

    def requests(self) -> list[dict[str, Any]]:
        return self.control("GET", "/requests")["requests"]


# --------------------------------------------------------------------------------------------------
# Statistics and output
# --------------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def ratio(ours: float | None, baseline: float | None) -> float | None:
    """``ours / baseline`` or ``None`` when either is missing or the baseline is zero."""
    if ours is None or baseline is None or not math.isfinite(ours) or not math.isfinite(baseline) or baseline == 0:
        return None
    return ours / baseline


def fmt(value: Any, spec: str = ".1f", missing: str = "n/a") -> str:
    """Format a number for a table; ``None``/NaN become ``missing``."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return missing
    if isinstance(value, str):
        return value
    return format(value, spec)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], title: str | None = None) -> str:
    """A GitHub-flavoured Markdown table (readable in a terminal and pasteable into the README)."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)) + " |"

    out = [f"### {title}", ""] if title else []
    out.append(line(headers))
    out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    out.extend(line(row) for row in rows)
    return "\n".join(out)


def write_json(out_dir: Path, name: str, data: dict[str, Any]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    return path


# --------------------------------------------------------------------------------------------------
# Machine description
# --------------------------------------------------------------------------------------------------


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    return None


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on (without importing Airflow)."""
    return {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": _memory_gib(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "apache_airflow": _version("apache-airflow"),
        "apache_airflow_providers_http": _version("apache-airflow-providers-http"),
        "apache_airflow_providers_dbt_cloud": _version("apache-airflow-providers-dbt-cloud"),
        "aiohttp": _version("aiohttp"),
        "airflow_provider_aiontheball": _version("airflow-provider-aiontheball"),
        # Other work on the machine at the time (1, 5, 15 min): absolute numbers drift with it, ratios less.
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }


def distribution_installed(dist: str) -> bool:
    """Whether a distribution is installed, without importing it (importing ``airflow.*`` packages
    would import Airflow, and on Airflow 2 write a config into ``AIRFLOW_HOME``)."""
    return _version(dist) is not None


def airflow_major() -> int:
    version = _version("apache-airflow") or "0"
    return int(version.split(".", 1)[0])


# --------------------------------------------------------------------------------------------------
# /proc readings (Linux)
# --------------------------------------------------------------------------------------------------


def proc_status_kib(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``), or ``None`` off Linux."""
    with contextlib.suppress(OSError, ValueError, IndexError), open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def reset_peak_rss() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux ``clear_refs`` value 5); ``False`` if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        return False
    return True
