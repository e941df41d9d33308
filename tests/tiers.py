"""The two test tiers (a pytest plugin, loaded by pyproject's addopts).

``tests/standalone/`` holds the tests of what imports no Airflow (the simulator, validation, schedules,
packaging, the lock check): CI runs them once, with ``--tier standalone``. Everything else in ``tests/``
runs on every Airflow version, with ``--tier airflow``. Without ``--tier`` both run (a developer's run).

Under ``--tier standalone`` importing Airflow raises ImportError, so a standalone test that imports it
fails collection (or fails, if it imports it inside the test) instead of silently running on one version.
"""

from __future__ import annotations

import importlib.abc
import sys
from collections import Counter
from pathlib import Path

import pytest

TIERS = ("standalone", "airflow")
STANDALONE_DIR = ("tests", "standalone")


class AirflowImportBlocked(ImportError):
    pass


class _BlockAirflow(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        if fullname == "airflow" or fullname.startswith("airflow."):
            raise AirflowImportBlocked(
                f"tests/standalone runs once, without Airflow, but this imports {fullname!r}: move the test "
                "to tests/ (it then runs on every Airflow version) or drop the import"
            )


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--tier",
        choices=TIERS,
        default=None,
        help="standalone: only tests/standalone, with Airflow imports refused; airflow: everything else",
    )


def _standalone_dir(config: pytest.Config) -> Path:
    return Path(config.rootpath, *STANDALONE_DIR)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "standalone: imports no Airflow; CI runs it once (tests/standalone)")
    if config.getoption("--tier") == "standalone":
        loaded = sorted(name for name in sys.modules if name == "airflow" or name.startswith("airflow."))
        if loaded:  # a plugin imported it before collection: the check below would prove nothing
            raise pytest.UsageError(f"--tier standalone: Airflow was imported before collection ({loaded[0]})")
        sys.meta_path.insert(0, _BlockAirflow())


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    tier = config.getoption("--tier")
    if tier is None:
        return None
    standalone = _standalone_dir(config)
    inside = collection_path == standalone or standalone in collection_path.parents
    if tier == "standalone":
        # Keep the directories that lead to tests/standalone, drop every other test file and directory.
        leads_there = collection_path in standalone.parents
        return None if inside or leads_there else True
    return True if inside else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    standalone = _standalone_dir(config)
    for item in items:
        if standalone in item.path.parents:
            item.add_marker(pytest.mark.standalone)
    # The order xdist hands files out in (the Makefile passes --no-loadscope-reorder, which keeps it): the
    # real-Airflow runs first (minutes each, mostly waiting), each to its own worker, where they overlap the
    # rest; then the files with the most tests, as xdist's own reordering would. With xdist's reordering, the
    # e2e files (a few tests each) came last and ran back to back on one worker, alone: the tail of every leg.
    # A stable sort of a deterministic key: the same order in every worker.
    per_file = Counter(item.path for item in items)
    items.sort(key=lambda item: (item.get_closest_marker("e2e") is None, -per_file[item.path], str(item.path)))
