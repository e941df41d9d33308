"""The locked installs (constraints/, scripts/locks.py): what the locks pin, and the check that a venv holds
exactly its lock."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from tests.helpers import REPO

sys.path.insert(0, str(REPO / "scripts"))
import locks

CI_VERSIONS = re.search(r"^VERSIONS=\(([\d. ]+)\)$", (REPO / ".ci" / "run").read_text(), re.MULTILINE)


def this_environment() -> dict[str, str]:
    found = locks.installed()
    found.pop(locks.PROJECT, None)
    return found


def write_lock(path: Path, pins: dict[str, str]) -> Path:
    path.write_text(
        "# a lock\n" + "".join(f"{name}=={version}\n    # via something\n" for name, version in pins.items())
    )
    return path


def run_check(lock: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "locks.py"), "check", str(lock)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_venv_holding_exactly_its_lock_passes(tmp_path):
    result = run_check(write_lock(tmp_path / "lock.txt", this_environment()))
    assert result.returncode == 0, result.stderr
    assert f"{len(this_environment())} packages, exactly" in result.stdout


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        pytest.param("other-version", r"pytest: {installed} installed, 0\.0\.1 locked", id="other-version"),
        pytest.param("not-in-lock", r"pytest: {installed} installed, not in the lock", id="installed-outside-the-lock"),
        pytest.param("not-installed", r"not-a-real-package: 1\.0 locked, not installed", id="locked-but-missing"),
    ],
)
def test_any_difference_from_the_lock_fails_and_is_named(tmp_path, change, complaint):
    pins = this_environment()
    if change == "other-version":
        pins["pytest"] = "0.0.1"
    elif change == "not-in-lock":
        del pins["pytest"]
    else:
        pins["not-a-real-package"] = "1.0"
    result = run_check(write_lock(tmp_path / "lock.txt", pins))
    assert result.returncode == 1
    assert re.search(complaint.format(installed=re.escape(metadata.version("pytest"))), result.stderr), result.stderr
    assert "make constraints" in result.stderr


def test_a_lock_line_that_is_not_an_exact_pin_is_refused(tmp_path):
    lock = tmp_path / "lock.txt"
    lock.write_text("requests>=2\n")
    with pytest.raises(SystemExit, match=r"lock.txt:1: not an exact pin \(name==version\): 'requests>=2'"):
        locks.read_lock(lock)


def test_every_ci_version_and_the_distributed_venv_have_a_lock_from_an_input():
    assert CI_VERSIONS, ".ci/run no longer lists its versions the way this test reads them"
    expected = {f"airflow-{version}" for version in CI_VERSIONS.group(1).split()} | {"distributed-3.3.2"}
    assert {p.stem for p in (REPO / "constraints").glob("*.txt")} == expected
    assert {p.stem for p in (REPO / "constraints" / "inputs").glob("*.in")} == expected


@pytest.mark.parametrize("lock", sorted((REPO / "constraints").glob("*.txt")), ids=lambda p: p.stem)
def test_each_lock_pins_every_package_and_its_airflow(lock):
    pins = locks.read_lock(lock)
    version = lock.stem.split("-", 1)[1]
    assert pins["apache-airflow"] == version
    assert locks.PROJECT not in pins, "the project itself is installed from the checkout, not from the lock"
    for needed in ("aiohttp", "requests", "cryptography", "pytest", "hypothesis", "hatchling"):
        assert needed in pins, f"{needed} missing from {lock.name}"


@pytest.mark.parametrize("lock", sorted((REPO / "constraints").glob("airflow-*.txt")), ids=lambda p: p.stem)
def test_airflow_before_3_2_never_gets_cryptography_51(lock):
    """cryptography 51 breaks every connection with a password on Airflow < 3.2 (constraints/inputs)."""
    pins = locks.read_lock(lock)
    airflow = tuple(int(part) for part in pins["apache-airflow"].split(".")[:2])
    cryptography_major = int(pins["cryptography"].split(".")[0])
    if airflow < (3, 2):
        assert cryptography_major < 51
