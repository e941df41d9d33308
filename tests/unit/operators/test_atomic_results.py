"""Result files appear whole or not at all: AIOnTheBallAnalysisResultsOperator writes each one under a
temporary name beside it and moves it into place when complete; the simulator's ``truncate`` fault
interrupts a download midway.

Destinations: an fsspec memory filesystem (``memory://``, attached to Airflow's object storage as a
custom filesystem is), a ``file://`` URI (both through ``ObjectStoragePath``) and a plain local path.

Not covered: a JSON result whose *write* fails midway. JSON results are read whole before anything is
written (a truncated JSON body fails in the hook, before any file is opened), so only a failing
filesystem (disk full, a lost object-store connection) can break that write, which the tests cannot
produce without mocking it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from airflow.providers.common.compat.sdk import ObjectStoragePath

from airflow_provider_aiontheball.exceptions import AIOnTheBallTransportError
from airflow_provider_aiontheball.hooks.aiontheball import AIOnTheBallHook
from airflow_provider_aiontheball.operators.analysis import AIOnTheBallAnalysisResultsOperator
from airflow_provider_aiontheball.testing.simulator import Fault
from tests.helpers import TOKEN, task_context

VIDEO_URL = "https://example.com/match.mp4"
MEMORY_URI = "memory://bucket/results"
DESTINATIONS = [
    pytest.param("memory", id="memory-uri"),
    pytest.param("file", id="file-uri"),
    pytest.param("local", id="local-path"),
]


@pytest.fixture(autouse=True)
def memory_store() -> Iterator[None]:
    """``memory://`` as an Airflow object store, emptied after each test."""
    from fsspec.implementations.memory import MemoryFileSystem

    try:
        from airflow.sdk.io.store import attach  # Airflow 3
    except ImportError:
        from airflow.io.store import attach  # Airflow 2

    attach("memory", fs=MemoryFileSystem())
    yield
    MemoryFileSystem.store.clear()
    MemoryFileSystem.pseudo_dirs[:] = [""]


def output_path(kind: str, tmp_path: Path) -> str:
    if kind == "memory":
        return MEMORY_URI
    local = tmp_path / "lake" / "match"
    return f"file://{local}" if kind == "file" else str(local)


def location(path: str) -> Any:
    """The output directory as the operator sees it: an ``ObjectStoragePath`` for a URI, else a ``Path``."""
    return ObjectStoragePath(path) if "://" in path else Path(path)


def names_in(path: str) -> set[str]:
    base = location(path)
    return {child.name for child in base.iterdir()} if base.exists() else set()


@pytest.fixture
def analysis_id(aiontheball_conn) -> int:
    with AIOnTheBallHook() as hook:
        video_id = hook.create_video(VIDEO_URL, home_team_name="Ajax", away_team_name="PSV")["id"]
        analysis_id = hook.create_analysis(video_id)["id"]
    aiontheball_conn.simulator.advance(60)  # done, without sleeping
    return analysis_id


def interrupt_tracking(server, analysis_id: int) -> None:
    """Cut every tracking download short: more times than the connection's ``retry_limit`` (3)."""
    server.simulator.add_fault(
        Fault(kind="truncate", count=10, method="GET", path=f"/analyses/{analysis_id}/tracking/download")
    )


def read_into(response: requests.Response, received: bytearray) -> None:
    """Read a streamed body byte by byte (no bytes held back when it breaks off)."""
    for chunk in response.iter_content(chunk_size=1):
        received += chunk


def results_op(analysis_id: int, **kwargs: Any) -> AIOnTheBallAnalysisResultsOperator:
    return AIOnTheBallAnalysisResultsOperator(task_id="fetch_results", analysis_id=analysis_id, **kwargs)


@pytest.mark.parametrize(
    ("path", "streamed"),
    [
        pytest.param("/analyses/{id}/tracking/download", True, id="streamed-tracking"),
        pytest.param("/analyses/{id}/summary", False, id="json-summary"),
    ],
)
def test_truncate_fault_sends_half_the_body_then_closes(simulator, analysis_id, path, streamed):
    url = simulator.base_url + path.format(id=analysis_id)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    full = requests.get(url, headers=headers, timeout=5).content
    simulator.simulator.add_fault(Fault(kind="truncate", method="GET", path=path.format(id=analysis_id)))
    received = bytearray()
    with requests.get(url, headers=headers, stream=True, timeout=5) as response:
        assert response.status_code == 200
        assert ("Content-Length" not in response.headers) is streamed
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            read_into(response, received)
    assert received == full[: len(full) // 2]


@pytest.mark.parametrize("kind", DESTINATIONS)
def test_interrupted_tracking_download_leaves_nothing(aiontheball_conn, analysis_id, tmp_path, kind):
    out = output_path(kind, tmp_path)
    interrupt_tracking(aiontheball_conn, analysis_id)
    with pytest.raises(AIOnTheBallTransportError):
        results_op(analysis_id, results=("tracking",), output_path=out).execute(task_context())
    assert names_in(out) == set(), "neither a truncated file under the final name nor a temporary one"


@pytest.mark.parametrize("kind", DESTINATIONS)
def test_interrupted_rerun_keeps_the_earlier_result(aiontheball_conn, analysis_id, tmp_path, kind):
    out = output_path(kind, tmp_path)
    name = f"analysis_{analysis_id}_tracking.parquet"
    results_op(analysis_id, results=("tracking",), output_path=out).execute(task_context())
    earlier = (location(out) / name).read_bytes()
    interrupt_tracking(aiontheball_conn, analysis_id)
    with pytest.raises(AIOnTheBallTransportError):
        results_op(analysis_id, results=("tracking",), output_path=out).execute(task_context())
    assert names_in(out) == {name}
    assert (location(out) / name).read_bytes() == earlier


@pytest.mark.parametrize("kind", DESTINATIONS)
def test_successful_run_leaves_only_the_final_files(aiontheball_conn, analysis_id, tmp_path, kind):
    out = output_path(kind, tmp_path)
    paths = results_op(analysis_id, results=("summary", "events", "tracking"), output_path=out).execute(task_context())
    names = {
        "summary": f"analysis_{analysis_id}_summary.json",
        "events": f"analysis_{analysis_id}_events.json",
        "tracking": f"analysis_{analysis_id}_tracking.parquet",
    }
    assert paths == {result: str(location(out) / name) for result, name in names.items()}
    assert names_in(out) == set(names.values())
    base = location(out)
    assert json.loads((base / names["summary"]).read_text())["teams"]["team_0_name"] == "Ajax"
    assert isinstance(json.loads((base / names["events"]).read_text()), list)
    tracking = (base / names["tracking"]).read_bytes()
    assert tracking[:4] == tracking[-4:] == b"PAR1", "a whole Parquet file"


@pytest.mark.parametrize(
    "via", [pytest.param("operator", id="results-operator"), pytest.param("hook", id="hook-download")]
)
def test_a_local_file_reaches_the_disk_before_its_name_does(aiontheball_conn, analysis_id, tmp_path, monkeypatch, via):
    """fsync of the data, then the rename, then fsync of the directory: after a power loss the final name
    holds the whole file or the old one, never a complete-looking name over partial data. (A spy on the
    two system calls, which still run: nothing else can observe durability short of cutting the power.)"""
    import os

    calls: list[str] = []
    real_fsync, real_replace = os.fsync, Path.replace

    def fsync(fd: int) -> None:
        calls.append("fsync-dir" if Path(f"/proc/self/fd/{fd}").resolve().is_dir() else "fsync-file")
        real_fsync(fd)

    def replace(self: Path, target: Any) -> Path:
        calls.append("rename")
        return real_replace(self, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(Path, "replace", replace)
    target = tmp_path / "out"
    if via == "operator":
        AIOnTheBallAnalysisResultsOperator(
            task_id="results", analysis_id=analysis_id, results=["summary"], output_path=str(target)
        ).execute(task_context())
    else:
        target.mkdir()
        AIOnTheBallHook().download_tracking(analysis_id, target / "tracking.parquet")
    assert calls == ["fsync-file", "rename", "fsync-dir"]
