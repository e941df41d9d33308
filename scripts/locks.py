"""The locked installs: compile ``constraints/inputs/*.in`` into ``constraints/*.txt``, and check a venv.

``python scripts/locks.py compile --uv UV --exclude-newer DATE`` (``make constraints``) resolves each input
with pyproject.toml's dependencies and extras into a lock that pins every package, for the Python and
platform CI runs on, from releases uploaded before DATE (so the same command gives the same lock next
month). ``python scripts/locks.py check LOCK``, run with a venv's interpreter, fails unless that venv
holds exactly the lock's packages at the lock's versions (plus this project). Standard library only.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONSTRAINTS = REPO / "constraints"
INPUTS = CONSTRAINTS / "inputs"
PROJECT = "airflow-provider-aiontheball"
#: What every lock is resolved for: CI's interpreter and platform (markers are evaluated for it).
PYTHON_VERSION = "3.11"
PLATFORM = "x86_64-unknown-linux-gnu"
#: The extras each kind of venv installs; one lock per venv, so `make venv` syncs it whole.
EXTRAS = {
    "airflow": ("test", "openlineage", "media", "browser", "bench", "docs", "storage-test"),
    "distributed": ("test",),
}

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)\s*$")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path) -> dict[str, str]:
    """``{canonical name: version}`` of a lock; any requirement line that is not ``name==version`` fails."""
    pins: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _PIN.match(line)
        if not match:
            raise SystemExit(f"{path}:{number}: not an exact pin (name==version): {line!r}")
        pins[canonical(match.group(1))] = match.group(2)
    return pins


def installed() -> dict[str, str]:
    return {canonical(dist.metadata["Name"]): dist.version for dist in metadata.distributions()}


def shown(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def check(lock: Path) -> int:
    """Exit status 0 when this interpreter's environment holds exactly the lock (and the project)."""
    expected = read_lock(lock)
    actual = installed()
    actual.pop(PROJECT, None)
    problems = [
        f"  {name}: {version} installed, not in the lock" for name, version in actual.items() if name not in expected
    ]
    problems += [
        f"  {name}: {actual[name]} installed, {version} locked"
        for name, version in expected.items()
        if name in actual and actual[name] != version
    ]
    problems += [
        f"  {name}: {version} locked, not installed" for name, version in expected.items() if name not in actual
    ]
    if problems:
        print(f"{sys.prefix} does not match {shown(lock)}:", *sorted(problems), sep="\n", file=sys.stderr)
        print(
            "Rebuild the venv (make clean venv), or regenerate the locks on purpose (make constraints).",
            file=sys.stderr,
        )
        return 1
    print(f"{sys.prefix}: {len(expected)} packages, exactly {shown(lock)}")
    return 0


def compile_all(uv: str, exclude_newer: str) -> int:
    common = [
        "pip",
        "compile",
        "--quiet",
        "--python-version",
        PYTHON_VERSION,
        "--python-platform",
        PLATFORM,
        "--exclude-newer",
        exclude_newer,
    ]
    jobs: list[tuple[list[str], Path]] = []
    for source in sorted(INPUTS.glob("*.in")):
        kind = source.stem.split("-", 1)[0]
        extras = [arg for extra in EXTRAS[kind] for arg in ("--extra", extra)]
        jobs.append((["pyproject.toml", str(source.relative_to(REPO)), *extras], CONSTRAINTS / f"{source.stem}.txt"))
    for args, output in jobs:
        print(f"compiling {output.relative_to(REPO)}")
        command = [uv, *common, *args, "-o", str(output.relative_to(REPO))]
        if subprocess.run(command, cwd=REPO).returncode != 0:
            return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    compile_parser = commands.add_parser("compile", help="regenerate every lock in constraints/ (make constraints)")
    compile_parser.add_argument("--uv", required=True, help="the uv executable")
    compile_parser.add_argument("--exclude-newer", required=True, help="only releases uploaded before this date")
    check_parser = commands.add_parser("check", help="fail unless this interpreter's venv holds exactly LOCK")
    check_parser.add_argument("lock", type=Path)
    args = parser.parse_args(argv)
    if args.command == "compile":
        return compile_all(args.uv, args.exclude_newer)
    return check(args.lock.resolve())


if __name__ == "__main__":
    sys.exit(main())
