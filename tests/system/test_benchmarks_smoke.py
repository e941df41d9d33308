"""Each benchmark still runs: ``--smoke`` (tiny sizes) in a subprocess, then the JSON it wrote is checked.

Only exit codes and the structure of the results are asserted, never a timing: the numbers of a smoke
run mean nothing. The results go to a temporary directory, never into ``benchmarks/results``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import MAKEFILE_AIRFLOW, only_on_airflow

BENCH_DIR = Path(__file__).resolve().parents[2] / "benchmarks"
#: ``make bench`` runs in the default venv (the Makefile's AIRFLOW_VERSION): the benchmarks' figures are for
#: that Airflow, and their smoke runs run there only; on the other versions of the matrix the product code
#: they drive is covered by the trigger, polling and DAG tests.
ON_THE_BENCHMARKS_AIRFLOW = only_on_airflow(
    MAKEFILE_AIRFLOW, reason="the benchmarks run on the default Airflow of make bench only"
)
#: Generous: a smoke run takes seconds; this only stops a hung benchmark from hanging the suite.
TIMEOUT_S = 300


def http_provider_installed() -> bool:
    try:
        metadata.version("apache-airflow-providers-http")
    except metadata.PackageNotFoundError:
        return False
    return True


@pytest.fixture(scope="module")
def out_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bench-smoke")


def run_script(name: str, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, str(BENCH_DIR / name), "--smoke", "--out", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert proc.returncode == 0, f"{name} exited with {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def load(out: Path, name: str) -> dict[str, Any]:
    path = out / f"{name}.json"
    assert path.exists(), f"{path} was not written"
    data: dict[str, Any] = json.loads(path.read_text())
    assert data["benchmark"] == name
    assert data["smoke"] is True
    assert {"nproc", "cpu_model", "python", "apache_airflow"} <= set(data["machine"])
    return data


@ON_THE_BENCHMARKS_AIRFLOW
def test_triggerer_smoke(out_dir: Path) -> None:
    run_script("bench_triggerer.py", out_dir)
    data = load(out_dir, "triggerer")
    assert set(data) >= {"config", "runs", "ratios"}
    (scenario,) = data["runs"]
    sides = data["runs"][scenario]
    ours = sides["ours"]
    assert set(ours) >= {
        "requests",
        "connections_opened",
        "cpu_per_poll_us",
        "rss_peak_growth_per_trigger_kib",
        "lag_max_ms",
        "lag_steady_max_ms",
        "gc",
        "detection_latency_median_s",
        "detection_latency_p95_s",
        "events",
    }
    assert ours["events"] == {"success": ours["n"]}, "every waiting trigger fired its success event"
    assert ours["requests"] >= ours["n"]
    if http_provider_installed():
        assert sides["baseline"]["events"] == {"success": ours["n"]}
        assert set(data["ratios"][scenario]) >= {"cpu_per_poll", "rss_per_trigger", "lag_max", "connections_opened"}
    else:
        assert sides["baseline"]["available"] is False
        assert "baseline unavailable" in sides["baseline"]["reason"]


@ON_THE_BENCHMARKS_AIRFLOW
def test_polling_smoke(out_dir: Path) -> None:
    run_script("bench_polling.py", out_dir)
    data = load(out_dir, "polling")
    assert set(data["populations"]) == {"videos", "analyses_1_6h", "analyses_4h", "analyses_4h_stall"}
    for population in data["populations"].values():
        policies = population["policies"]
        assert {"fixed 30 s", "fixed 60 s"} <= set(policies)
        assert any(name.startswith("ours") for name in policies)
        for stats in policies.values():
            assert set(stats) >= {"calls_mean", "calls_p95", "latency_median_s", "latency_p95_s"}
            assert stats["calls_mean"] >= 1
    assert set(data["target"]) >= {"latency_p95_s", "calls_p95", "passed"}


@ON_THE_BENCHMARKS_AIRFLOW
def test_parse_smoke(out_dir: Path) -> None:
    run_script("bench_parse.py", out_dir)
    data = load(out_dir, "parse")
    groups = {target["group"] for target in data["targets"].values()}
    assert "ours combined" in groups
    if http_provider_installed():
        assert "airflow.providers.http.sensors.http" in data["targets"]
    for target in data["targets"].values():
        assert set(target) >= {"import_ms_median", "new_modules", "heavy_modules_newly_imported"}
        assert len(target["import_ms_samples"]) == data["config"]["repetitions"]
    assert set(data["target"]) >= {"import_ms_median", "passed"}


def test_run_all_summarizes(out_dir: Path) -> None:
    """The summary step reads whatever results exist (missing ones are reported as not run)."""
    run_script("run_all.py", out_dir, "--summarize-only")
    summary = json.loads((out_dir / "summary.json").read_text())
    assert len(summary["checks"]) >= 6
    for check in summary["checks"]:
        assert set(check) == {"name", "target", "measured", "status"}
        assert check["status"] in {"PASS", "MISS", "n/a"}
    assert summary["failures"] == []


# --------------------------------------------------------------------------------------------------
# bench_deployment.py starts a real Airflow (minutes): only its pieces are checked here.
# --------------------------------------------------------------------------------------------------

DEPLOYMENT_DAGS = BENCH_DIR / "deployment"

#: A process that, once told to (a line on stdin), runs a child burning CPU, waits for it (so its time
#: lands in this process's cutime/cstime), says "done" and keeps running.
_BURNER_PARENT = """
import subprocess, sys
sys.stdin.readline()
subprocess.run([sys.executable, "-c", "import time\\nend = time.process_time() + 0.4\\nwhile time.process_time() < end: pass"])
print("done", flush=True)
sys.stdin.readline()
"""


def test_cpu_accounting_counts_a_child_that_already_exited() -> None:
    """The deployment benchmark's CPU method: a process tree's time includes reaped descendants."""
    from aib_harness.processes import process_table, tree_cpu_seconds

    if not Path("/proc/self/stat").exists():
        pytest.skip("needs Linux /proc")
    parent = subprocess.Popen(
        [sys.executable, "-c", _BURNER_PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdin is not None
        assert parent.stdout is not None
        before = tree_cpu_seconds([parent.pid])[parent.pid]
        parent.stdin.write("go\n")
        parent.stdin.flush()
        assert parent.stdout.readline().strip() == "done"
        table = process_table()
        assert not [info for info in table.values() if info.ppid == parent.pid], "the child has exited"
        after = tree_cpu_seconds([parent.pid], table)[parent.pid]
        assert after - before >= 0.35, f"the exited child's 0.4 s of CPU is missing: {after - before:.2f} s"
        # And the test process's own tree contains the parent's (a root's tree includes its descendants).
        assert tree_cpu_seconds([os.getpid()], table)[os.getpid()] >= after
    finally:
        parent.kill()
        parent.wait(timeout=10)


def test_deployment_dag_files_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 2
        from airflow.models.dagbag import DagBag
    monkeypatch.syspath_prepend(str(DEPLOYMENT_DAGS))  # the anchor's response check (PYTHONPATH in the bench)
    bag = DagBag(dag_folder=str(DEPLOYMENT_DAGS))  # examples are off (tests/conftest.py)
    expected = {"aib_bench_wait_ours": {"video_ids", "wait_for_video"}}
    ignored: set[str] = set()
    if http_provider_installed():
        expected["aib_bench_wait_anchor"] = {"video_endpoints", "wait_for_video"}
    else:  # make test does not install .[bench]
        ((path, error),) = ((p, t) for p, t in bag.import_errors.items() if p.endswith("aib_bench_wait_anchor.py"))
        assert "airflow.providers.http" in error
        ignored.add(path)
    unexpected = {path: text for path, text in bag.import_errors.items() if path not in ignored}
    assert not unexpected
    for dag_id, task_ids in expected.items():
        dag = bag.dags.get(dag_id)  # not get_dag(): it reads the metadata DB
        assert dag is not None, dag_id
        assert set(dag.task_ids) == task_ids
        assert dag.get_task("wait_for_video").partial_kwargs.get("deferrable") is True, dag_id
