"""DAG-parse cost: import time of our public modules and example DAGs over ``import airflow.sdk``.

Every figure comes from a **fresh interpreter** (one subprocess per measurement, repeated; the
median is reported): the subprocess first imports the baseline a DAG file cannot avoid —
``import airflow.sdk`` on Airflow 3; on Airflow 2, which has no ``airflow.sdk``, ``import airflow``
plus ``from airflow.models.dag import DAG`` — then times, with ``time.perf_counter``, only the import
of the target. Measurements are interleaved round-robin across targets so that a noisy moment on a
shared machine does not hit one target's samples only. One unmeasured warm-up run importing every
target compiles bytecode and writes Airflow's config first. The bytecode goes to a cache of its own
(``PYTHONPYCACHEPREFIX`` = :data:`PYCACHE_DIR`, kept between runs; ``PYTHONDONTWRITEBYTECODE`` removed
from the children's environment), so every measurement loads ``.pyc`` files as an installed provider
does, whatever the caller's environment says, and nothing is written into the working tree. Without
it, where ``PYTHONDONTWRITEBYTECODE`` is set, every interpreter compiles our (editable-installed)
sources again: 30-60 ms for the operators + sensors instead of ~6.

**The target** (operators + sensors <= 10 ms) is measured on its own, the way an independent check does
it: :data:`TARGET_SAMPLES` fresh interpreters in a row, each ``import airflow.sdk`` (untimed), then
``time.perf_counter`` around importing exactly :data:`TARGET_MODULES`; the median and the range are
printed against the target, with each sample's CPU time (``time.process_time``) and the load average,
because on the shared 2-core machine a busy moment moves a median of 7 by several milliseconds.

Targets: each provider module listed by ``get_provider_info()`` (hooks, operators, sensors, triggers;
missing ones skipped), all operators + sensors modules together (the figure the target applies to),
each ``example_dags/*.py`` file, Airflow's own lazily loaded base classes (reference), and for
comparison ``airflow.providers.http.sensors.http`` and, if installed, the dbt Cloud provider's
operators and sensors (``--install-dbt-cloud`` tries ``pip install apache-airflow-providers-dbt-cloud``).
For the combined operators + sensors target and each example DAG, one extra ``python -X importtime``
run lists which imports cost most. ``-X importtime`` times only ``import`` statements: modules that
``importlib.import_module`` loads (``airflow.sdk``'s lazy attributes such as ``BaseOperatorLink`` and
``BaseSensorOperator``) are not listed, their time counts as self time of the module that asked.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
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
#: What the target applies to: the modules a DAG file imports our operators and sensors from.
TARGET_MODULES = (
    f"{PACKAGE}.operators.video",
    f"{PACKAGE}.operators.analysis",
    f"{PACKAGE}.sensors.video",
    f"{PACKAGE}.sensors.analysis",
)
#: Fresh interpreters behind the target's median (``--smoke``: 2).
TARGET_SAMPLES = 7
COMBINED = "operators + sensors (all)"
#: The children's bytecode cache. Kept between runs (``.pyc`` files are checked against their source's
#: mtime), so only the first run compiles Airflow's ~1,400 modules into it.
PYCACHE_DIR = Path(tempfile.gettempdir()) / "aib-bench-parse-pycache"
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
    dag_facing = [m for m in TARGET_MODULES if module_exists(m)]
    targets = [Target(module, "ours", import_code([module])) for module in ([] if smoke else ours)]
    if dag_facing:
        targets.append(Target(COMBINED, "ours combined", import_code(dag_facing), profile=True))
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
        "_t2 = time.perf_counter(); _c2 = time.process_time()",
        target.code,
        "_t3 = time.perf_counter(); _c3 = time.process_time()",
        "_new = set(sys.modules) - _before",
        "print('BENCH_RESULT ' + json.dumps({"
        "'baseline_ms': (_t1 - _t0) * 1000, 'import_ms': (_t3 - _t2) * 1000, "
        "'import_cpu_ms': (_c3 - _c2) * 1000, 'new_modules': len(_new), "
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


def measure_target(env: dict[str, str], samples: int) -> dict[str, Any]:
    """The figure the 10 ms target applies to, measured as an independent check measures it.

    ``samples`` fresh interpreters in a row; each imports the baseline (``import airflow.sdk``, untimed),
    then times importing exactly :data:`TARGET_MODULES` with ``time.perf_counter``. Run after the warm-up
    of :func:`measure`, so bytecode is cached.
    """
    modules = [m for m in TARGET_MODULES if module_exists(m)]
    baseline, label = baseline_code()
    target = Target(COMBINED, "target", import_code(modules))
    load_before = machine_info()["load_average"]
    runs = [run_probe(probe_script(baseline, target), env)[0] for _ in range(samples)]
    imports = [r["import_ms"] for r in runs]
    cpu = [r["import_cpu_ms"] for r in runs]
    value = median(imports)
    return {
        "description": f"import of operators + sensors modules <= {TARGET_MS:g} ms over `{label}`",
        "method": (
            f"median of {samples} fresh interpreters in a row; each runs `{label}` untimed, then "
            f"time.perf_counter() around importing {', '.join(modules)}; bytecode cached"
        ),
        "modules": modules,
        "samples": samples,
        "import_ms_median": value,
        "import_ms_min": min(imports),
        "import_ms_max": max(imports),
        "import_ms_samples": imports,
        "import_cpu_ms_median": median(cpu),
        "new_modules": runs[-1]["new_modules"],
        "heavy_modules_newly_imported": runs[-1]["heavy_new"],
        "load_average_before": load_before,
        "load_average_after": machine_info()["load_average"],
        "target_ms": TARGET_MS,
        "passed": value <= TARGET_MS,
    }


def bytecode_env(env: dict[str, str], cache_dir: Path) -> dict[str, str]:
    """``env`` with bytecode cached in ``cache_dir``, as an installed provider loads it (pip compiles it).

    ``PYTHONDONTWRITEBYTECODE`` (set in some shells and CI images) would make every fresh interpreter
    compile our editable-installed sources again, which no Airflow deployment does at every parse; the
    prefix keeps ``__pycache__`` out of the working tree.
    """
    env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(cache_dir)
    return env


def print_target(target: dict[str, Any]) -> None:
    status = "PASS" if target["passed"] else "MISS"
    samples = " ".join(f"{x:.1f}" for x in target["import_ms_samples"])
    print(
        f"\nDAG-parse target ({target['method']}):\n"
        f"  {target['import_ms_median']:.1f} ms median (range {target['import_ms_min']:.1f}-"
        f"{target['import_ms_max']:.1f}; samples {samples}; CPU {target['import_cpu_ms_median']:.1f} ms median; "
        f"{target['new_modules']} new modules) against <= {target['target_ms']:g} ms: {status}\n"
        f"  load average before/after: {target['load_average_before']} / {target['load_average_after']}"
    )


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
    combined = results["targets"].get(COMBINED)
    if combined and combined.get("top_imports_by_self_time"):
        print("\ncostliest imports of operators + sensors (one -X importtime run, self time):")
        for entry in combined["top_imports_by_self_time"]:
            print(f"  {entry['self_ms']:6.2f} ms  {entry['module']}")


def main(argv: list[str] | None = None) -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--repetitions",
        type=int,
        help="fresh interpreters per target of the table (default 4; smoke 2); the <= 10 ms target is measured on "
        "its own, with 7",
    )
    parser.add_argument(
        "--install-dbt-cloud",
        action="store_true",
        help="pip install apache-airflow-providers-dbt-cloud (Airflow pinned) for the comparison, if missing",
    )
    args = parser.parse_args(argv)
    # 4, not 7: each sample is a fresh interpreter paying ~2 s for `import airflow.sdk`, and the table has
    # 14+ targets; the figure the target applies to has its own 7 samples (TARGET_SAMPLES).
    repetitions = args.repetitions or (2 if args.smoke else 4)
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
        env = bytecode_env(child_env(home), PYCACHE_DIR)
        measured = measure(targets, repetitions, env, warm_up=not args.smoke)
        target = measure_target(env, 2 if args.smoke else TARGET_SAMPLES)
    baseline_ms = median([r["baseline_ms_median"] for r in measured.values()])
    results = {
        "benchmark": NAME,
        "smoke": args.smoke,
        "machine": machine_info(),
        "config": {
            "baseline": baseline_label,
            "repetitions": repetitions,
            "baseline_ms_median": baseline_ms,
            "bytecode": f"cached: PYTHONPYCACHEPREFIX={PYCACHE_DIR}, PYTHONDONTWRITEBYTECODE removed",
        },
        "notes": notes,
        "targets": measured,
        "target": target,
        "elapsed_s": time.perf_counter() - started,
    }
    print_tables(results)
    print_target(target)
    path = write_json(args.out, NAME, results)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
