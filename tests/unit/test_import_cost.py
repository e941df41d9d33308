"""DAG files stay cheap to parse: our operators, sensors and example DAGs pull in no HTTP or retry library.

Every DAG file imports Airflow; at every parse it then also pays for what our modules import. So
importing an operator or sensor module (or an example DAG) must not newly import ``aiohttp``,
``requests`` or ``tenacity`` (the hooks import them when a request is sent). Each module is imported
in a fresh child of an interpreter that imported only the baseline a DAG file imports anyway (``import airflow.sdk``; on
Airflow 2 ``import airflow`` and ``DAG``); only modules *newly* imported by ours count, since some
Airflow versions import ``requests`` or ``tenacity`` themselves (and Airflow 3.0 imports ``aiohttp``
while a DAG file defines a DAG: chains with no module of ours are Airflow's own). On failure, ``python -X importtime``
names the chain of imports that pulled the library in. Module presence only, never times.

The operator and sensor modules also leave our execute-time modules (hooks, triggers, waiting, status
vocabulary, validation, ...) and Airflow's ``common.compat`` layer unimported: each would add to every
parse (benchmarks/README.md, "DAG-parse cost", has the figures).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("aiohttp", "requests", "tenacity")
MARK = "---AIB-IMPORT-COST-MARK---"
MODULES = (
    "airflow_provider_aiontheball.sensors.video",
    "airflow_provider_aiontheball.sensors.analysis",
    "airflow_provider_aiontheball.operators.video",
    "airflow_provider_aiontheball.operators.analysis",
)
#: Imported inside methods, never when a DAG file imports an operator or sensor module. The DAG-facing
#: modules take the SDK names straight from where ``airflow.providers.common.compat.sdk`` finds them
#: (importing that layer costs ~0.7 ms); hooks and triggers still use it, at execute time.
NOT_AT_PARSE = (
    "airflow_provider_aiontheball.hooks",
    "airflow_provider_aiontheball.triggers",
    "airflow_provider_aiontheball.waiting",
    "airflow_provider_aiontheball.polling",
    "airflow_provider_aiontheball.task_end",
    "airflow_provider_aiontheball.statuses",
    "airflow_provider_aiontheball.validation",
    "airflow_provider_aiontheball.exceptions",
    "airflow_provider_aiontheball.operators._create",
    "airflow_provider_aiontheball.openlineage",
    "airflow_provider_aiontheball.sources",
    "airflow.providers.common.compat.sdk",
    # The [openlineage] extra: imported only when the OpenLineage listener asks an operator for its lineage.
    "airflow.providers.openlineage",
    "openlineage",
)


def baseline_code() -> str:
    if int(metadata.version("apache-airflow").split(".")[0]) >= 3:
        return "import airflow.sdk"
    return "import airflow\nfrom airflow.models.dag import DAG"


def module_exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


def module_param(module: str) -> object:
    return pytest.param(
        f"import {module}",
        id=module.removeprefix("airflow_provider_aiontheball."),
        marks=pytest.mark.skipif(not module_exists(module), reason=f"{module} does not exist yet"),
    )


def dag_file_code(path: Path) -> str:
    name = f"aib_example_dag_{path.stem}"
    return (
        "import importlib.util as _u\n"
        f"_spec = _u.spec_from_file_location({name!r}, {str(path)!r})\n"
        "_module = _u.module_from_spec(_spec)\n"
        f"sys.modules[{name!r}] = _module\n"
        "_spec.loader.exec_module(_module)"
    )


TARGETS = [
    *(module_param(module) for module in MODULES),
    *(
        pytest.param(dag_file_code(path), id=f"example_dags/{path.name}")
        for path in sorted(REPO.glob("example_dags/*.py"))
    ),
]


#: One interpreter imports the baseline once, then forks a child per target (as Airflow's DAG processor forks
#: per DAG file): each child runs its target and reports what it newly imported. ~3 s for all targets
#: instead of ~3 s each.
_FORKING_IMPORTER = """
import json, os, sys
{baseline}
_before = set(sys.modules)
results = {{}}
for key, code in json.loads(sys.stdin.read()).items():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            exec(compile(code, key, "exec"), {{"sys": sys, "__name__": "__aib_target__"}})
            report = {{"new": sorted(m for m in sys.modules if m not in _before)}}
        except BaseException as exc:
            report = {{"error": repr(exc)}}
        os.write(write, json.dumps(report).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        results[key] = json.loads(pipe.read() or b'{{"error": "the child died"}}')
    os.waitpid(pid, 0)
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def newly_imported() -> dict[str, list[str]]:
    """``{target code: modules it newly imported after the baseline}`` for every target, each in its own
    forked child of one interpreter that imported the baseline."""
    codes = [param.values[0] for param in TARGETS]
    proc = subprocess.run(
        [sys.executable, "-c", _FORKING_IMPORTER.format(baseline=baseline_code())],
        input=json.dumps({code: code for code in codes}),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"importing failed:\n{proc.stderr[-3000:]}"
    results: dict[str, dict[str, Any]] = json.loads(proc.stdout.strip().splitlines()[-1])
    errors = {code: report["error"] for code, report in results.items() if "error" in report}
    assert not errors, f"importing failed: {errors}"
    return {code: report["new"] for code, report in results.items()}


def run_importtime(code: str) -> str:
    """``-X importtime`` output of ``code`` after the baseline, in a fresh interpreter (failure diagnosis)."""
    script = "\n".join(["import sys", baseline_code(), f"sys.stderr.write({MARK!r} + '\\n'); sys.stderr.flush()", code])
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"importing failed:\n{proc.stderr[-3000:]}"
    return proc.stderr


def import_chain(importtime_stderr: str, module: str) -> str:
    """``a -> b -> module``: who imported ``module``, from ``-X importtime`` output after the mark.

    ``-X importtime`` prints a module after everything it imported, indented by nesting depth, so
    the importer of a line is the next line below it with a smaller depth.
    """
    _, _, after = importtime_stderr.partition(MARK)
    entries: list[tuple[int, str]] = []
    for line in after.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            raw = line.rsplit("|", 1)[1]
            name = raw.strip()
            if name != "imported package":
                entries.append(((len(raw) - len(raw.lstrip(" ")) - 1) // 2, name))
    index = next((i for i, (_, name) in enumerate(entries) if name == module), None)
    if index is None:
        return f"{module} (importer not found in -X importtime output)"
    chain = [module]
    depth = entries[index][0]
    for later_depth, name in entries[index + 1 :]:
        if later_depth < depth:
            chain.append(name)
            depth = later_depth
    return " -> ".join(reversed(chain))


@pytest.mark.parametrize("code", TARGETS)
def test_dag_facing_modules_do_not_import_heavy_libraries(code: str, newly_imported: dict[str, list[str]]) -> None:
    heavy = [module for module in HEAVY if module in newly_imported[code]]
    if heavy:
        stderr = run_importtime(code)
        chains = [import_chain(stderr, module) for module in heavy]
        ours = [chain for chain in chains if not airflows_own(chain)]
        if ours:
            pytest.fail("importing it newly imports:\n" + "\n".join(f"  {chain}" for chain in ours))


@pytest.mark.parametrize("code", [module_param(module) for module in MODULES])
def test_dag_facing_modules_leave_execute_time_modules_unimported(
    code: str, newly_imported: dict[str, list[str]]
) -> None:
    execute_time = [module for module in NOT_AT_PARSE if module in newly_imported[code]]
    if execute_time:
        stderr = run_importtime(code)
        chains = "\n".join(f"  {import_chain(stderr, module)}" for module in execute_time)
        pytest.fail(f"importing it at DAG-parse time newly imports (import them inside the method instead):\n{chains}")


def airflows_own(chain: str) -> bool:
    """A chain Airflow started while a DAG file ran, with no module of ours in it.

    Airflow 3.0 imports aiohttp (execution API -> svcs) when a DAG file defines any DAG or uses
    ``@task``: a plain DAG with only an ``EmptyOperator`` pays it too, so it is not our cost.
    """
    modules = chain.split(" -> ")
    return modules[0].startswith("airflow.") and not any(m.startswith("airflow_provider_aiontheball") for m in modules)


def test_import_chain_names_the_importer() -> None:
    """The failure message's helper, on ``-X importtime`` output in its real format."""
    stderr = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:      9000 |     900000 | airflow.sdk",
            MARK,
            "import time:       100 |        100 |       aiohttp.helpers",
            "import time:       200 |        300 |     aiohttp",
            "import time:        10 |        310 |   airflow_provider_aiontheball.hooks.aiontheball",
            "import time:        20 |        330 | airflow_provider_aiontheball.sensors.video",
        ]
    )
    assert import_chain(stderr, "aiohttp") == (
        "airflow_provider_aiontheball.sensors.video -> airflow_provider_aiontheball.hooks.aiontheball -> aiohttp"
    )
    assert "not found" in import_chain(stderr, "requests")


@pytest.mark.parametrize(
    ("chain", "airflows"),
    [
        pytest.param("airflow.serialization.serialized_objects -> svcs -> aiohttp", True, id="airflow-alone"),
        pytest.param("airflow_provider_aiontheball.sensors.video -> aiohttp", False, id="ours"),
        pytest.param("airflow.models.dag -> airflow_provider_aiontheball.hooks.aiontheball -> aiohttp", False,
                     id="ours-under-airflow"),
        pytest.param("requests", False, id="the-dag-file-itself"),
    ],
)  # fmt: skip
def test_only_chains_without_our_modules_are_airflows_own(chain: str, airflows: bool) -> None:
    assert airflows_own(chain) is airflows


def test_at_least_one_module_exists() -> None:
    assert module_exists("airflow_provider_aiontheball.sensors.video")
