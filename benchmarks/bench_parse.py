"""DAG-parse cost: import time of our public modules and example DAGs over ``import airflow.sdk``.

Every figure comes from a **fresh interpreter** (one subprocess per measurement, repeated; the
median is reported): the subprocess first imports the baseline a DAG file cannot avoid —
``import airflow.sdk`` on Airflow 3; on Airflow 2, which has no ``airflow.sdk``, ``import airflow``
plus ``from airflow.models.dag import DAG`` — then times, with ``time.perf_counter``, only the import
of the target. Measurements are interleaved round-robin across targets so that a noisy moment on a
shared machine does not hit one target's samples only. One unmeasured warm-up run importing every
target compiles bytecode and writes Airflow's config first.

Targets: each provider module listed by ``get_provider_info()`` (hooks, operators, sensors, triggers;
missing ones skipped), all operators + sensors modules together (the figure the target applies to),
each ``example_dags/*.py`` file, Airflow's own lazily loaded base classes (reference), and for
comparison ``airflow.providers.http.sensors.http`` and, if installed, the dbt Cloud provider's
operators and sensors (``--install-dbt-cloud`` tries ``pip install apache-airflow-providers-dbt-cloud``).
For the combined operators + sensors target and each example DAG, one extra ``python -X importtime``
run lists which imports cost most.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    HEAVY_MODULES,
    REPO,
    airflow_home,
    airflow_major,
    base_parser,
    child_env,
    distribution_installed,
    fmt,
    machine_info,
    median,
    table,
    write_json,
)

NAME = "parse"
PACKAGE = "airflow_provider_aiontheball"
#: Public modules expected sooner or later; measured when they exist, whatever provider info says.
EXPECTED_MODULES = (
    f"{PACKAGE}.operators.video",
    f"{PACKAGE}.operators.analysis",
    f"{PACKAGE}.sensors.video",
    f"{PACKAGE}.sensors.analysis",
    f"{PACKAGE}.hooks.aiontheball",
    f"{PACKAGE}.triggers.video",
    f"{PACKAGE}.triggers.analysis",
)
HTTP_SENSOR = "airflow.providers.http.sensors.http"
HTTP_DIST = "apache-airflow-providers-http"
DBT_MODULES = ("airflow.providers.dbt.cloud.operators.dbt", "airflow.providers.dbt.cloud.sensors.dbt")
DBT_DIST = "apache-airflow-providers-dbt-cloud"
TARGET_MS = 10.0
MARK = "---AIB-BENCH-MARK---"


def baseline_code() -> tuple[str, str]:
    """The statement a DAG file cannot avoid, and how it reads in the results."""
    if airflow_major() >= 3:
        return "import airflow.sdk", "import airflow.sdk"
    return (
        "import airflow\nfrom airflow.models.dag import DAG",
        "import airflow; from airflow.models.dag import DAG (Airflow 2 has no airflow.sdk)",
    )


@dataclass(frozen=True)
class Target:
    label: str
    group: str
    #: Python statements that import the target (run after the baseline, timed).
    code: str
    #: Run ``-X importtime`` once to list the costliest imports.
    profile: bool = False


def import_code(modules: list[str] | tuple[str, ...]) -> str:
    return "\n".join(f"import {module}" for module in modules)


def file_code(path: Path) -> str:
    name = "aib_bench_dag_" + path.stem
    return textwrap.dedent(
        f"""
        import importlib.util as _u
        _spec = _u.spec_from_file_location({name!r}, {str(path)!r})
        _module = _u.module_from_spec(_spec)
        sys.modules[{name!r}] = _module
        _spec.loader.exec_module(_module)
        """
    )


def module_exists(module: str) -> bool:
    """Whether one of *our* modules exists (finding it imports only our light package ``__init__``)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package is missing
        return False


def provider_modules() -> list[str]:
    """Modules from ``get_provider_info()`` plus the expected public ones, existing ones only, in order."""
    from airflow_provider_aiontheball.get_provider_info import get_provider_info

    info = get_provider_info()
    listed = [
        module
        for kind in ("operators", "sensors", "hooks", "triggers")
        for entry in info.get(kind, [])
        for module in entry.get("python-modules", [])
    ]
    ordered = list(dict.fromkeys([*listed, *EXPECTED_MODULES]))
    return [module for module in ordered if module_exists(module)]


def reference_target() -> Target:
    """Airflow's own base classes, which ``airflow.sdk`` loads lazily: what any operator module pays."""
    if airflow_major() >= 3:
        code = "from airflow.sdk import DAG, BaseOperator, BaseSensorOperator"
        return Target(code, "reference", code)
    return Target(
        "BaseOperator + BaseSensorOperator",
        "reference",
        "from airflow.models.baseoperator import BaseOperator\nfrom airflow.sensors.base import BaseSensorOperator",
    )


def build_targets(smoke: bool = False) -> tuple[list[Target], dict[str, Any]]:
    """The targets to measure and notes on what was skipped (``smoke``: the combined one, one DAG, http)."""
    notes: dict[str, Any] = {}
    ours = provider_modules()
    notes["our_modules"] = ours
    dag_facing = [m for m in ours if m.startswith((f"{PACKAGE}.operators.", f"{PACKAGE}.sensors."))]
    targets = [Target(module, "ours", import_code([module])) for module in ([] if smoke else ours)]
    if dag_facing:
        targets.append(Target("operators + sensors (all)", "ours combined", import_code(dag_facing), profile=True))
    dags = sorted((REPO / "example_dags").glob("*.py"))
    notes["example_dags"] = [str(p.relative_to(REPO)) for p in dags]
    targets += [
        Target(str(p.relative_to(REPO)), "example DAG", file_code(p), profile=not smoke)
        for p in (dags[:1] if smoke else dags)
    ]
    if not smoke:
        targets.append(reference_target())
    if distribution_installed(HTTP_DIST):
        targets.append(Target(HTTP_SENSOR, "comparison", import_code([HTTP_SENSOR])))
    else:
        notes["http_provider"] = "not installed: apache-airflow-providers-http comparison skipped"
    if distribution_installed(DBT_DIST) and not smoke:
        targets += [Target(module, "comparison", import_code([module])) for module in DBT_MODULES]
    return targets, notes


def install_dbt_cloud() -> str:
    """Try to install the dbt Cloud provider into this interpreter's environment, pinning Airflow."""
    if distribution_installed(DBT_DIST):
        return "already installed"
    from importlib import metadata

    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "apache-airflow-providers-dbt-cloud",
        f"apache-airflow=={metadata.version('apache-airflow')}",  # never let pip move Airflow
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"install failed: {exc}"
    if proc.returncode != 0:
        tail = " ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        return f"install failed (pip exit {proc.returncode}): {tail[:300]}"
    return "installed by this run" if distribution_installed(DBT_DIST) else "pip succeeded but it is still missing"


# ==================================================================================================
# Measuring
# ==================================================================================================


def probe_script(baseline: str, target: Target, mark: bool = False) -> str:
    """Source of the measuring subprocess; prints one ``BENCH_RESULT {json}`` line."""
    lines = [
        "import sys, time, json",
        "_t0 = time.perf_counter()",
        baseline,
        "_t1 = time.perf_counter()",
        "_before = set(sys.modules)",
    ]
    if mark:
        lines.append(f"sys.stderr.write({MARK!r} + '\\n'); sys.stderr.flush()")
    lines += [
        "_t2 = time.perf_counter()",
        target.code,
        "_t3 = time.perf_counter()",
        "_new = set(sys.modules) - _before",
        "print('BENCH_RESULT ' + json.dumps({"
        "'baseline_ms': (_t1 - _t0) * 1000, 'import_ms': (_t3 - _t2) * 1000, 'new_modules': len(_new), "
        f"'heavy_new': sorted(m for m in {HEAVY_MODULES!r} if m in _new)"
        "}))",
    ]
    return "\n".join(lines)


def run_probe(script: str, env: dict[str, str], extra_args: tuple[str, ...] = ()) -> tuple[dict[str, Any], str]:
    proc = subprocess.run(
        [sys.executable, *extra_args, "-c", script], env=env, cwd=REPO, capture_output=True, text=True, timeout=300
    )
    if proc.returncode != 0:
        raise RuntimeError(f"measuring subprocess failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("BENCH_RESULT "):
            return json.loads(line.removeprefix("BENCH_RESULT ")), proc.stderr
    raise RuntimeError(f"no result line in the subprocess output:\n{proc.stdout[-2000:]}")


def top_imports(importtime_stderr: str, count: int = 8) -> list[dict[str, Any]]:
    """The costliest imports after the mark in ``-X importtime`` output, by self time."""
    _, _, after = importtime_stderr.partition(MARK)
    entries: list[dict[str, Any]] = []
    for line in after.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        try:
            self_us, cumulative_us, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
            entries.append({"module": name, "self_ms": int(self_us) / 1000, "cumulative_ms": int(cumulative_us) / 1000})
        except ValueError:
            continue  # the header line
    return sorted(entries, key=lambda e: float(e["self_ms"]), reverse=True)[:count]


def measure(
    targets: list[Target], repetitions: int, env: dict[str, str], *, warm_up: bool = True
) -> dict[str, dict[str, Any]]:
    baseline, _ = baseline_code()
    samples: dict[str, list[dict[str, Any]]] = {t.label: [] for t in targets}
    if warm_up:  # one unmeasured run importing everything: bytecode, Airflow's config file
        run_probe(probe_script(baseline, Target("warm-up", "warm-up", "\n".join(t.code for t in targets))), env)
    for _ in range(repetitions):
        for target in targets:
            result, _ = run_probe(probe_script(baseline, target), env)
            samples[target.label].append(result)
    results: dict[str, dict[str, Any]] = {}
    for target in targets:
        runs = samples[target.label]
        imports = [r["import_ms"] for r in runs]
        entry: dict[str, Any] = {
            "group": target.group,
            "import_ms_median": median(imports),
            "import_ms_min": min(imports),
            "import_ms_max": max(imports),
            "import_ms_samples": imports,
            "baseline_ms_median": median([r["baseline_ms"] for r in runs]),
            "new_modules": runs[-1]["new_modules"],
            "heavy_modules_newly_imported": runs[-1]["heavy_new"],
        }
        if target.profile:
            _, stderr = run_probe(probe_script(baseline, target, mark=True), env, ("-X", "importtime"))
            entry["top_imports_by_self_time"] = top_imports(stderr)
        results[target.label] = entry
    return results


def print_tables(results: dict[str, Any]) -> None:
    rows = [
        [
            r["group"],
            label,
            fmt(r["import_ms_median"], ".1f"),
            f"{r['import_ms_min']:.1f}-{r['import_ms_max']:.1f}",
            str(r["new_modules"]),
            ", ".join(r["heavy_modules_newly_imported"]) or "-",
        ]
        for label, r in results["targets"].items()
    ]
    cfg = results["config"]
    title = (
        f"DAG-parse cost: import time over `{cfg['baseline']}` "
        f"(median of {cfg['repetitions']} fresh interpreters; baseline itself "
        f"{fmt(cfg['baseline_ms_median'], '.0f')} ms)"
    )
    print(table(["group", "target", "median ms", "range ms", "new modules", "heavy libs pulled in"], rows, title))
    for note in results["notes"].values():
        if isinstance(note, str):
            print(f"\nnote: {note}")
    combined = results["targets"].get("operators + sensors (all)")
    if combined and combined.get("top_imports_by_self_time"):
        print("\ncostliest imports of operators + sensors (one -X importtime run, self time):")
        for entry in combined["top_imports_by_self_time"]:
            print(f"  {entry['self_ms']:6.2f} ms  {entry['module']}")


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--repetitions", type=int, help="fresh interpreters per target (default 7; smoke 2)")
    parser.add_argument(
        "--install-dbt-cloud",
        action="store_true",
        help="pip install apache-airflow-providers-dbt-cloud (Airflow pinned) for the comparison, if missing",
    )
    args = parser.parse_args(argv)
    repetitions = args.repetitions or (2 if args.smoke else 7)
    started = time.perf_counter()
    dbt_status = install_dbt_cloud() if args.install_dbt_cloud else None
    targets, notes = build_targets(args.smoke)
    if not distribution_installed(DBT_DIST):
        why = dbt_status or "not installed (see --install-dbt-cloud)"
        notes["dbt_cloud"] = f"dbt Cloud provider not measured: {why}"
    elif args.smoke:
        notes["dbt_cloud"] = "dbt Cloud provider not measured in a smoke run"
    elif dbt_status:
        notes["dbt_cloud_install"] = f"{DBT_DIST}: {dbt_status}"
    _, baseline_label = baseline_code()
    with airflow_home() as home:
        measured = measure(targets, repetitions, child_env(home), warm_up=not args.smoke)
    baseline_ms = median([r["baseline_ms_median"] for r in measured.values()])
    combined = measured.get("operators + sensors (all)")
    results = {
        "benchmark": NAME,
        "smoke": args.smoke,
        "machine": machine_info(),
        "config": {"baseline": baseline_label, "repetitions": repetitions, "baseline_ms_median": baseline_ms},
        "notes": notes,
        "targets": measured,
        "target": {
            "description": f"import of operators + sensors modules <= {TARGET_MS:g} ms over `{baseline_label}`",
            "import_ms_median": combined["import_ms_median"] if combined else None,
            "passed": bool(combined and combined["import_ms_median"] <= TARGET_MS),
        },
        "elapsed_s": time.perf_counter() - started,
    }
    print_tables(results)
    path = write_json(args.out, NAME, results)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
