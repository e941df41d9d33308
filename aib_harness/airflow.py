"""Run a DAG in real Airflow processes against the bundled simulator, then report what happened.

``scripts/demo.py`` (``make demo``) and ``tests/system/test_e2e.py`` share this module; both import it as
``aib_harness.airflow``. It imports only the standard library and the provider's status vocabulary,
never Airflow: importing Airflow is slow, and the calling process must not pick up the throwaway
``AIRFLOW_HOME``'s configuration.

:class:`AirflowHarness` does, in order:

1. start the simulator CLI on a free loopback port (it writes its URL to a ready file once listening);
2. build a throwaway workdir (``airflow-home/`` with the SQLite DB, ``airflow.cfg`` and the task logs;
   ``dags/`` with copies of the DAG files; ``processes/`` with one log file per process started here) and
   an environment in which none of the caller's ``AIRFLOW*`` variables leak in;
3. ``airflow db migrate``, then start the components that run a DAG, each in its own process group:
   Airflow 3: ``api-server`` (only its execution API: workers report task states through it),
   ``scheduler`` (LocalExecutor), ``dag-processor`` and ``triggerer``; Airflow 2: ``scheduler``
   (SequentialExecutor, the only one SQLite allows; it also parses the DAG files) and ``triggerer``.
   That is what ``airflow standalone`` starts, minus the web UI, which runs no part of a DAG;
4. wait until the DAG is parsed and the scheduler/triggerer (and dag-processor) jobs are running, trigger
   a run with the CLI, and poll the SQLite DB (read-only) until the run ends;
5. build a :class:`RunReport`: task instances from the DB, worker starts from Airflow's audit log (checked
   against the task logs), deferrals from the task logs, the trigger logs the triggerer writes
   (``attempt=N.log.trigger.<triggerer job id>.log``), the simulator's request log and its videos;
6. stop everything: SIGTERM to every process group (the API server and the simulator last), SIGKILL after
   a grace period, then check that nothing started here still runs: no member of the process groups, no
   process seen in their process trees while running (by pid *and* start time), and no process carrying
   the environment marker every child inherits (which also finds one that escaped its group).

Why the DB is read directly: the CLI (``airflow dags list-runs``) costs 2-3 s of CPU per call on a 2-core
machine, and the REST API needs the auth manager's tokens and differs between Airflow 2 and 3. One
read-only SQLite query per poll works the same on both (the few columns read exist in both schemas).
"""

from __future__ import annotations

import ast
import atexit
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from aib_harness.logs import (
    DEFERRED_MARK,
    EXECUTION_START_MARKS,
    FIRED_MARK,
    RESOURCE_PATH,
    TRIGGER_LOG_NAME,
    WORKER_LOG_NAME,
    WORKER_START_EVENT,
    count_execution_starts,
    read_log_lines,
    status_observations,
    stray_trigger_lines,
    utc,
)
from aib_harness.processes import (
    MARKER_ENV,
    SECOND_SIGNAL_AFTER,
    Deadline,
    HarnessError,
    ManagedProcess,
    describe_process,
    free_port,
    group_members,
    marked_processes,
    port_open,
    process_table,
    tail,
)
from aib_harness.report import PROGRESS_STATES, Deferral, RunReport, TaskReport, task_label

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_DAGS_DIR = REPO_ROOT / "example_dags"
MATCH_INGESTION_DAG_ID = "example_aiontheball_match_ingestion"
SIMULATOR_MODULE = "airflow_provider_aiontheball.testing.simulator"
CONN_ENV = "AIRFLOW_CONN_AIONTHEBALL_DEFAULT"
TERMINAL_RUN_STATES = frozenset({"success", "failed"})
#: Stopped after the other processes: running tasks report to the API server, and tasks and triggers
#: winding down still call the simulator; stopped first, they would leave the others hanging in retries.
STOPPED_LAST = frozenset({"api-server", "simulator"})


def airflow_version() -> str:
    """The installed Airflow version, without importing Airflow."""
    return importlib.metadata.version("apache-airflow")


# --------------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------------


#: Example DAG files a run copies only when it asks for them: the event-driven pair's asset watcher would
#: poll ``GET /videos`` in every other run's triggerer (``scripts/demo_events.py`` runs it on its own).
OPT_IN_EXAMPLES = frozenset({"example_aiontheball_event_driven.py"})


def example_dag_files() -> tuple[Path, ...]:
    """The example DAG files every run copies (all but :data:`OPT_IN_EXAMPLES`)."""
    return tuple(sorted(p for p in EXAMPLE_DAGS_DIR.glob("*.py") if p.name not in OPT_IN_EXAMPLES))


def example_matches() -> list[dict[str, Any]]:
    """``DEFAULT_MATCHES`` of the match-ingestion example, read without importing Airflow."""
    tree = ast.parse((EXAMPLE_DAGS_DIR / "example_aiontheball_match_ingestion.py").read_text())
    for node in tree.body:
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == "DEFAULT_MATCHES"
            and node.value is not None
        ):
            matches: list[dict[str, Any]] = ast.literal_eval(node.value)
            return matches
    raise LookupError("DEFAULT_MATCHES not found in the match-ingestion example DAG")


@dataclass(frozen=True)
class HarnessConfig:
    """What to run and how long to wait.

    :param dag_id: the DAG to trigger.
    :param dag_files: copied into the throwaway dags folder (all example DAGs by default, so helpers they
        share keep working; DAGs never run on a schedule here, see ``USE_JOB_SCHEDULE`` below).
    :param other_dag_ids: more DAGs of ``dag_files`` that must be parsed (and are unpaused) before the
        harness is ready; ``trigger``, ``wait_for_run`` and ``report`` take a ``dag_id`` for their runs.
    :param token: the simulator's only token; it reaches Airflow as the connection's password and is
        never printed.
    :param video_step_seconds: seconds the simulator keeps a video in each of its three preparing
        statuses. The video sensors must first poke while their video is still preparing, or they finish
        at once without deferring; that first poke comes after the DAG's other early tasks (create the
        videos and the analyses). ``None``: 4 s on Airflow 3 (ready after 12 s; the first pokes come
        after 3-6 s); 15 s on Airflow 2 (ready after 45 s), whose SequentialExecutor runs one task at a
        time, 4-5 s each on these machines: the first pokes come after 7 tasks, ~25-35 s.
    :param video_ready_after_gets: the simulator's ``--video-ready-after-gets``: a video is ready no
        sooner than the answer to its third ``GET /videos/{id}`` (default 3: the sensor's poke, then at
        least one poll of its trigger), so the sensors defer however slowly a loaded machine starts
        them; ``video_step_seconds`` alone only made that likely (a CI run on 3.0.6 once poked a video
        after it was ready). 0: time alone decides.
    :param analysis_seconds: seconds a simulated analysis runs (after 1 s of ``init`` once its video is
        available, and before 3 s of ``aggregating``).
    :param parallelism: Airflow's ``[core] parallelism``; the LocalExecutor starts that many worker
        processes up front (32 by default, ~140 MB each: too many for a 2-core demo machine). 6: the
        example's three matches each create a video and an analysis at the same time.
    :param timeout: budget in seconds from start until the run has ended (startup, trigger and run).
    :param stop_grace: seconds between SIGTERM and SIGKILL when stopping.
    :param workdir: an empty or new directory for the throwaway files (default: a new temporary
        directory), kept afterwards so its logs can be read.
    :param poll_seconds: interval of the DB polls while waiting.
    :param fail_on_retry: stop waiting as soon as a task instance is ``up_for_retry``: against the
        simulator nothing fails transiently, and the example's retry delay (2 min) would exhaust the
        time budget before the run ends.
    :param dag_env: extra environment for the Airflow processes (read by the DAG files when parsed).
    :param simulator_args: more flags for the simulator CLI (``--webhook-url URL``, ...). Default none.
    :param preflight: the AI on the Ball connection's ``preflight`` extra: the create operator checks each video
        before its POST. Off by default: the simulator never downloads the videos' URLs (the example's are not
        real files); ``make demo-object-storage`` turns it on, its videos being real files in a loopback S3.
    :param ui: also serve the web UI on loopback (``ui_url``): Airflow 3's api-server with all its apps
        (no login: the simple auth manager makes everyone admin), Airflow 2's webserver (user ``admin``
        with a generated password, ``ui_password``). Off by default: running a DAG needs no UI.
    """

    dag_id: str = MATCH_INGESTION_DAG_ID
    dag_files: tuple[Path, ...] = field(default_factory=example_dag_files)
    other_dag_ids: tuple[str, ...] = ()
    token: str = "demo-token"
    video_step_seconds: float | None = None
    video_ready_after_gets: int = 3
    analysis_seconds: float = 10.0
    parallelism: int = 6
    timeout: float = 210.0
    stop_grace: float = 20.0
    workdir: Path | None = None
    poll_seconds: float = 0.5
    fail_on_retry: bool = True
    preflight: bool = False
    ui: bool = False
    dag_env: dict[str, str] = field(
        # The example waits for analyses with a 45 s minimum poll interval (right for real 2-6 h analyses);
        # the simulated ones take seconds.
        default_factory=lambda: {"AIONTHEBALL_EXAMPLE_ANALYSIS_MIN_POLL_SECONDS": "3"}
    )
    simulator_args: tuple[str, ...] = ()


# --------------------------------------------------------------------------------------------------
# The harness
# --------------------------------------------------------------------------------------------------


class AirflowHarness:
    """Real Airflow processes plus the simulator, for one or more DAG runs; use as a context manager.

    :param progress: called with one short line per step (the demo prints them; tests may log them).
    """

    def __init__(self, config: HarnessConfig | None = None, progress: Callable[[str], None] | None = None) -> None:
        self.config = config or HarnessConfig()
        self.progress = progress or (lambda line: None)
        self.version = airflow_version()
        self.major = int(self.version.split(".")[0])
        self.marker = uuid.uuid4().hex
        self.workdir = Path(self.config.workdir or tempfile.mkdtemp(prefix="aib-airflow-run-")).resolve()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.home = self.workdir / "airflow-home"
        self.dags_dir = self.workdir / "dags"
        self.process_dir = self.workdir / "processes"
        self.db_path = self.home / "airflow.db"
        self.task_log_dir = self.home / "logs"
        self.bin_dir = Path(sys.executable).parent  # the venv's bin: do not resolve the symlink out of it
        self.airflow = self.bin_dir / "airflow"
        self.api_port = free_port()
        # Fixed per harness, so every process (and every CLI call) gets the same environment.
        self._log_server_ports = (free_port(), free_port())
        self._jwt_secret = secrets.token_urlsafe(32)
        self.video_step_seconds = self.config.video_step_seconds or (4.0 if self.major >= 3 else 15.0)
        self.simulator: ManagedProcess | None = None
        self.simulator_url = ""  # http://127.0.0.1:PORT/api/v1 once the simulator is listening
        #: The token the simulator accepts now (a token-rotation drill changes it); never printed.
        self.api_token = self.config.token
        self.components: list[ManagedProcess] = []
        #: Servers Airflow depends on (a subclass's PostgreSQL, Redis): started first, stopped last.
        self.services: list[ManagedProcess] = []
        #: Processes a fault drill killed on purpose (not a reason to stop the run).
        self.killed: list[ManagedProcess] = []
        #: (pid, start time) of every process started here, seen while running (see _track).
        self.tracked: set[tuple[int, int]] = set()
        self.leftovers: list[str] = []
        self.stopped = False
        self.sim_clock_offset = 0.0  # wall clock minus monotonic clock (the simulator logs monotonic times)
        self._deadline = Deadline(self.config.timeout)
        #: (dag id, run id) -> task label -> triggerer job ids (see _sample_trigger_assignments).
        self._trigger_assignments: dict[tuple[str, str], dict[str, set[int]]] = {}
        self._wait_results: dict[str, str] = {}  # run id -> what wait_for_run returned
        self._env: dict[str, str] = {}
        self.ui_password = ""  # Airflow 2's webserver login (user admin), when the UI is served

    # -- lifecycle ----------------------------------------------------------------------------------

    def __enter__(self) -> AirflowHarness:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def processes(self) -> list[ManagedProcess]:
        return self.services + ([self.simulator] if self.simulator else []) + self.components

    @property
    def process_logs(self) -> dict[str, Path]:
        return {p.name: p.log_path for p in self.processes} | {
            path.stem: path for path in sorted(self.process_dir.glob("*.log"))
        }

    def start(self) -> None:
        """Simulator, AIRFLOW_HOME, DB, components; returns once the DAG can be triggered."""
        if not self.airflow.exists():
            raise HarnessError(f"{self.airflow} not found: run this with the Python of the virtualenv Airflow is in")
        if any(self.workdir.iterdir()):
            # An old airflow.db or old task logs would mix into this run's report.
            raise HarnessError(f"{self.workdir} is not empty: give a new or empty directory")
        self._deadline = Deadline(self.config.timeout)
        atexit.register(self.stop)  # a last resort; the context manager normally stops everything first
        for directory in (self.home, self.dags_dir, self.process_dir, self.task_log_dir):
            directory.mkdir(parents=True, exist_ok=True)
        for source in self.config.dag_files:
            shutil.copy2(source, self.dags_dir / source.name)

        self._start_services()
        self.progress("Starting the AI on the Ball simulator on loopback…")
        ready_file = self.workdir / "simulator.url"
        self.simulator = self._spawn(
            "simulator",
            [
                str(Path(sys.executable)),
                "-m",
                SIMULATOR_MODULE,
                "--port",
                "0",
                "--token",
                self.config.token,
                "--ready-file",
                str(ready_file),
                "--video-step-seconds",
                str(self.video_step_seconds),
                "--video-ready-after-gets",
                str(self.config.video_ready_after_gets),
                "--analysis-seconds",
                str(self.config.analysis_seconds),
                *self.config.simulator_args,
            ],
            self._base_env(),
        )
        self.progress(f"Preparing a throwaway AIRFLOW_HOME ({self.database_kind}) in {self.home}…")
        # The migration does not need the connection: it runs while the simulator starts.
        self._run_cli("db-migrate", ["db", "migrate"], self._base_env())
        self.simulator_url = self._wait_for_simulator(ready_file)
        self.sim_clock_offset = time.time() - time.monotonic()
        self._env = self._base_env() | self._install_connection()

        names = ", ".join(name for name, _ in self._component_commands())
        self.progress(f"Starting Airflow {self.version} ({names})…")
        started = time.monotonic()
        self._start_components()
        self._wait_until_ready()
        self.progress(f"Airflow is up after {time.monotonic() - started:.0f} s.")

    # -- what a subclass changes (see aib_harness/distributed.py) ---------------------------------

    #: Shown in the progress lines.
    database_kind = "SQLite"

    def _start_services(self) -> None:
        """Start the servers Airflow needs before ``db migrate`` (none: SQLite is a file)."""

    def _install_connection(self) -> dict[str, str]:
        """Make the AI on the Ball connection known; return the environment the components need for it.
        Here: JSON in AIRFLOW_CONN_<CONN_ID>, as users give it in containers."""
        return {CONN_ENV: json.dumps(self.connection())}

    def connection(self) -> dict[str, object]:
        """The AI on the Ball connection of the run: the simulator, the checks before upload as configured
        (``HarnessConfig.preflight``)."""
        return {
            "conn_type": "aiontheball",
            "host": self.simulator_url,
            "password": self.api_token,
            "extra": {"preflight": self.config.preflight},
        }

    def _start_components(self) -> None:
        if self.config.ui and self.major < 3:
            # Airflow 2's webserver always asks for a login: a throwaway admin for this run only.
            self.ui_password = secrets.token_urlsafe(12)
            self._run_cli(
                "users-create",
                ["users", "create", "--username", "admin", "--role", "Admin", "--firstname", "Demo", "--lastname",
                 "User", "--email", "admin@example.com", "--password", self.ui_password],
            )  # fmt: skip
        for name, args in self._component_commands():
            self.components.append(self._spawn(name, [str(self.airflow), *args], self._env))

    def _platform_env(self) -> dict[str, str]:
        """The metadata DB and the executor."""
        return {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.db_path}",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor" if self.major >= 3 else "SequentialExecutor",
        }

    def _needed_jobs(self) -> Counter[str]:
        """Job types (and how many of each) that must be running before a DAG is triggered."""
        return Counter({"SchedulerJob": 1, "TriggererJob": 1} | ({"DagProcessorJob": 1} if self.major >= 3 else {}))

    def _component_commands(self) -> list[tuple[str, list[str]]]:
        # --skip-serve-logs: the task logs are local files; the log servers would only add processes and
        # fixed ports (8793/8794) that collide with any other Airflow on the machine.
        if self.major >= 3:
            # Only the execution API unless asked for the UI: what workers need.
            apps = "all" if self.config.ui else "execution"
            # One uvicorn worker (Airflow's default is 4): each imports all of Airflow at start, and on a loaded
            # 2-core machine uvicorn kills a worker that misses its 5 s health check, starts another, and the
            # API server never becomes ready (seen on 3.0.6 with the suite on three xdist workers).
            api = ["api-server", "--host", "127.0.0.1", "--port", str(self.api_port), "--apps", apps, "--workers", "1"]
            return [
                ("api-server", api),
                ("scheduler", ["scheduler", "--skip-serve-logs"]),
                ("dag-processor", ["dag-processor"]),
                ("triggerer", ["triggerer", "--skip-serve-logs"]),
            ]
        return [
            ("scheduler", ["scheduler", "--skip-serve-logs"]),
            ("triggerer", ["triggerer", "--skip-serve-logs"]),
            *(
                [("webserver", ["webserver", "--hostname", "127.0.0.1", "--port", str(self.api_port)])]
                if self.config.ui
                else []
            ),
        ]

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}" if self.config.ui else ""

    def _base_env(self) -> dict[str, str]:
        # Nothing of the caller's Airflow configuration (e.g. the test session's AIRFLOW_HOME) leaks in.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW"))}
        env.update(
            {
                # Airflow starts its own children as `airflow ...` from PATH: it must find this venv's.
                "PATH": f"{self.bin_dir}{os.pathsep}{env.get('PATH', '')}",
                "PYTHONUNBUFFERED": "1",  # so a log tail printed on failure is complete
                MARKER_ENV: self.marker,
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_dir),
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.task_log_dir),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                # New DAGs start unpaused, and nothing runs on a schedule: the @weekly example would
                # otherwise get a scheduled run next to the triggered one. Manual triggers still run.
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
                "AIRFLOW__CORE__PARALLELISM": str(self.config.parallelism),
                **self._platform_env(),
                # Unused ports, in case some component starts a log server anyway.
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self._log_server_ports[0]),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self._log_server_ports[1]),
                **self.config.dag_env,
            }
        )
        if self.major >= 3:
            env.update(
                {
                    "AIRFLOW__API__HOST": "127.0.0.1",
                    "AIRFLOW__API__PORT": str(self.api_port),
                    # Workers find the API server here; the default (port 8080) would refuse every task.
                    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.api_port}/execution/",
                    # One secret for the API server and the workers' task tokens, whatever airflow.cfg says.
                    "AIRFLOW__API_AUTH__JWT_SECRET": self._jwt_secret,
                    # No generated admin password to write out or print.
                    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
                }
            )
        return env

    def _spawn(
        self, name: str, argv: list[str], env: dict[str, str], *, user: str | None = None, cwd: Path | None = None
    ) -> ManagedProcess:
        """Start ``argv`` in a new session, output to processes/NAME.log; as ``user`` when given (root only)."""
        log_path = self.process_dir / f"{name}.log"
        log_file = log_path.open("ab")
        # A new session: its own process group to signal as a whole, and no SIGINT from the terminal
        # (on Ctrl-C this process stops the children itself, in order).
        popen = subprocess.Popen(
            argv,
            env=env,
            user=user,
            cwd=cwd or self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        process = ManagedProcess(name, popen, log_path, log_file)
        return process

    def _run_cli(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        """Run one Airflow CLI command to completion (output in processes/NAME.log)."""
        log_path = self.process_dir / f"{name}.log"
        timeout = min(120.0, max(self._deadline.remaining(), 1.0))
        with log_path.open("ab") as log_file:
            try:
                # subprocess.run kills the child on a timeout or Ctrl-C before re-raising.
                result = subprocess.run(
                    [str(self.airflow), *args],
                    env=env or self._env,
                    cwd=self.workdir,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    timeout=timeout,
                    start_new_session=True,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise HarnessError(f"`airflow {' '.join(args[:2])}` did not finish within {timeout:.0f} s") from None
        if result.returncode != 0:
            raise HarnessError(
                f"`airflow {' '.join(args[:2])}` failed with exit code {result.returncode}; "
                f"the end of {log_path}:\n{tail(log_path, 30)}"
            )

    def _wait_for_simulator(self, ready_file: Path) -> str:
        assert self.simulator is not None
        while not ready_file.exists() or not ready_file.read_text().strip():
            if self.simulator.exited():
                raise HarnessError(
                    f"the simulator exited at start; the end of its log:\n{tail(self.simulator.log_path)}"
                )
            if self._deadline.expired:
                raise HarnessError(f"the simulator did not start; see {self.simulator.log_path}")
            time.sleep(0.1)
        return ready_file.read_text().strip()

    def check_components(self) -> None:
        """Fail fast, with its log's tail, when a component or the simulator exited (other than one a
        fault drill killed on purpose)."""
        for process in self.processes:
            if process.exited() and process not in self.killed:
                raise HarnessError(
                    f"{process.name} exited with code {process.popen.returncode}; "
                    f"the end of {process.log_path}:\n{tail(process.log_path)}"
                )

    # -- the metadata DB, read-only -----------------------------------------------------------------

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """One read-only query on the metadata DB (``?`` placeholders); [] while the DB or the table does
        not exist yet or is busy (the next poll asks again)."""
        if not self.db_path.exists():
            return []
        try:
            connection = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=2)
        except sqlite3.Error:
            return []
        try:
            return connection.execute(sql, params).fetchall()
        except sqlite3.OperationalError:  # "database is locked" or "no such table" (not migrated yet)
            return []
        finally:
            connection.close()

    def running_jobs(self) -> Counter[str]:
        """Job types with a running job, and how many."""
        return Counter(
            row[0] for row in self.query("SELECT job_type FROM job WHERE state = 'running' AND end_date IS NULL")
        )

    def _wait_until_ready(self) -> None:
        """Until the DAGs are parsed and serialized and the components' jobs are running."""
        needed = self._needed_jobs()
        dag_ids = (self.config.dag_id, *self.config.other_dag_ids)
        while True:
            self.check_components()
            missing = sorted((needed - self.running_jobs()).elements())
            paused = {
                dag_id: bool(is_paused)
                for dag_id, is_paused in self.query(
                    "SELECT dag.dag_id, dag.is_paused FROM dag JOIN serialized_dag ON serialized_dag.dag_id = "
                    f"dag.dag_id WHERE dag.dag_id IN ({', '.join('?' for _ in dag_ids)})",
                    dag_ids,
                )
            }
            unparsed = [dag_id for dag_id in dag_ids if dag_id not in paused]
            api_ready = (self.major < 3 and not self.config.ui) or port_open(self.api_port)
            if not missing and not unparsed and api_ready:
                break
            if self._deadline.expired:
                waiting_for = [*missing, *(f"DAG {dag_id} to be parsed" for dag_id in unparsed)]
                waiting_for += [] if api_ready else [f"the API server on port {self.api_port}"]
                raise HarnessError(
                    f"Airflow was not ready within {self._deadline.seconds:.0f} s; still waiting for "
                    f"{', '.join(waiting_for)}. Logs: {self.process_dir}"
                )
            time.sleep(self.config.poll_seconds)
        for dag_id in dag_ids:
            if paused[dag_id]:  # paused although new DAGs start unpaused here: unpause it
                self._run_cli("dags-unpause", ["dags", "unpause", dag_id])
        self._track()

    # -- the run ------------------------------------------------------------------------------------

    def trigger(self, run_id: str | None = None, conf: dict[str, Any] | None = None, dag_id: str | None = None) -> str:
        """Trigger a run with the CLI and return its run id (of ``config.dag_id`` unless ``dag_id``)."""
        dag_id = dag_id or self.config.dag_id
        run_id = run_id or f"aib_demo__{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}"
        args = ["dags", "trigger", dag_id, "--run-id", run_id]
        if conf:
            args += ["--conf", json.dumps(conf)]
        self._run_cli("dags-trigger", args)
        self.progress(f"Triggered run {run_id} of {dag_id}; waiting for it to finish…")
        return run_id

    def wait_for_run(self, run_id: str, dag_id: str | None = None) -> str:
        """Poll until the run is success or failed and return that state, or ``"up_for_retry"`` as soon as
        a task instance is (with ``fail_on_retry``). Progress lines name the task-instance states
        (success, deferred, ...) whenever their counts change."""
        dag_id = dag_id or self.config.dag_id
        started = time.monotonic()
        last_line = ""
        last_track = 0.0
        while True:
            self.check_components()
            state_rows = self.query("SELECT state FROM dag_run WHERE dag_id = ? AND run_id = ?", (dag_id, run_id))
            run_state = state_rows[0][0] if state_rows else None
            counts = Counter(
                row[0] or "none"
                for row in self.query(
                    "SELECT state FROM task_instance WHERE dag_id = ? AND run_id = ?", (dag_id, run_id)
                )
            )
            self._sample_trigger_assignments(dag_id, run_id)
            shown = ", ".join(f"{counts[s]} {s}" for s in PROGRESS_STATES if counts[s])
            line = f"run {run_state or 'not found yet'}" + (f": {shown}" if shown else "")
            if line != last_line:
                self.progress(f"  {time.monotonic() - started:5.1f} s  {line}")
                last_line = line
            if run_state in TERMINAL_RUN_STATES:
                self._wait_results[run_id] = str(run_state)
                return str(run_state)
            if self.config.fail_on_retry and counts["up_for_retry"]:
                self.progress("  A task failed and waits for a retry: not waiting for it.")
                self._wait_results[run_id] = "up_for_retry"
                return "up_for_retry"
            if time.monotonic() - last_track > 2:
                self._track()
                last_track = time.monotonic()
            if self._deadline.expired:
                raise HarnessError(
                    f"run {run_id} did not finish within the {self._deadline.seconds:.0f} s budget "
                    f"(run {run_state}; task instances: {dict(counts)}). Logs: {self.workdir}"
                )
            time.sleep(self.config.poll_seconds)

    def _sample_trigger_assignments(self, dag_id: str, run_id: str) -> None:
        """Record which triggerer job holds each deferred task's trigger (DB evidence of the deferral,
        independent of log wording: the trigger row's ``triggerer_id`` is the TriggererJob's id)."""
        rows = self.query(
            "SELECT ti.task_id, ti.map_index, trigger.triggerer_id FROM task_instance AS ti "
            "JOIN trigger ON trigger.id = ti.trigger_id "
            "WHERE ti.dag_id = ? AND ti.run_id = ? AND trigger.triggerer_id IS NOT NULL",
            (dag_id, run_id),
        )
        assignments = self._trigger_assignments.setdefault((dag_id, run_id), {})
        for task_id, map_index, triggerer_id in rows:
            label = task_id if map_index < 0 else f"{task_id}[{map_index}]"
            assignments.setdefault(label, set()).add(int(triggerer_id))

    def run_dag(
        self, run_id: str | None = None, conf: dict[str, Any] | None = None, dag_id: str | None = None
    ) -> RunReport:
        """Trigger, wait and report (the report also when the run failed)."""
        run_id = self.trigger(run_id, conf, dag_id)
        self.wait_for_run(run_id, dag_id)
        return self.report(run_id, dag_id)

    # -- the report ---------------------------------------------------------------------------------

    def worker_starts(self, dag_id: str, run_id: str) -> Counter[tuple[str, int]]:
        """(task id, map index) -> worker starts, from Airflow's audit log (``WORKER_START_EVENT``)."""
        sql = (
            "SELECT task_id, map_index, COUNT(*) FROM log WHERE dag_id = ? AND run_id = ? AND event = ? "
            "GROUP BY task_id, map_index"
        )
        rows: list[tuple[Any, ...]] = []
        for _ in range(5):  # [] also when the DB is busy: ask again before concluding no task ran
            rows = self.query(sql, (dag_id, run_id, WORKER_START_EVENT))
            if rows:
                break
            time.sleep(0.2)
        return Counter(
            {(str(task_id), -1 if map_index is None else int(map_index)): int(n) for task_id, map_index, n in rows}
        )

    def report(self, run_id: str, dag_id: str | None = None) -> RunReport:
        dag_id = dag_id or self.config.dag_id
        run_rows = self.query(
            "SELECT state, start_date, end_date FROM dag_run WHERE dag_id = ? AND run_id = ?", (dag_id, run_id)
        )
        state, start, end = run_rows[0] if run_rows else (None, None, None)
        # The request log first: the GET /videos below must not appear in it.
        requests = self._control("requests")["requests"]
        tasks = [
            TaskReport(task_id, map_index, ti_state, int(try_number or 0), utc(ti_start), utc(ti_end), duration)
            for task_id, map_index, ti_state, try_number, ti_start, ti_end, duration in self.query(
                "SELECT task_id, map_index, state, try_number, start_date, end_date, duration FROM task_instance "
                "WHERE dag_id = ? AND run_id = ?",
                (dag_id, run_id),
            )
        ]
        starts = self.worker_starts(dag_id, run_id)
        transitions: dict[str, list[tuple[dt.datetime, str]]] = {}
        for task in tasks:
            task.worker_starts = starts[(task.task_id, task.map_index)]
            self._read_task_logs(dag_id, run_id, task)
            if not starts:  # Airflow 3.0 and 3.1 write no audit-log row per start: count the task logs' starts
                task.worker_starts = task.logged_starts
            observations = status_observations([*task.worker_lines, *task.trigger_lines])
            task.resources = sorted({name for name, _, _ in observations})
            for name, when, status in observations:
                transitions.setdefault(name, []).append((when, status))
            for deferral in task.deferrals:
                deferral.polls = self._polls_during(requests, task.resources, deferral)
        for name, seen in transitions.items():
            seen.sort()
            # Keep status changes only (the worker's poke and the trigger may both log the same status).
            transitions[name] = [item for i, item in enumerate(seen) if i == 0 or item[1] != seen[i - 1][1]]
        # Tasks in the order they first ran, map indexes together and in order.
        first_start: dict[str, dt.datetime] = {}
        for task in tasks:
            if task.start_date is not None and first_start.get(task.task_id, task.start_date) >= task.start_date:
                first_start[task.task_id] = task.start_date
        never = dt.datetime.max.replace(tzinfo=dt.UTC)
        tasks.sort(key=lambda t: (first_start.get(t.task_id, never), t.task_id, t.map_index))
        return RunReport(
            airflow_version=self.version,
            dag_id=dag_id,
            run_id=run_id,
            state=state,
            outcome=self._wait_results.get(run_id),
            start_date=utc(start),
            end_date=utc(end),
            tasks=tasks,
            triggerer_job_ids={row[0] for row in self.query("SELECT id FROM job WHERE job_type = 'TriggererJob'")},
            trigger_assignments={
                label: set(ids) for label, ids in self._trigger_assignments.get((dag_id, run_id), {}).items()
            },
            requests=requests,
            videos=self._all_videos(),
            preflight=self._preflight_figures(dag_id, run_id),
            transitions=dict(sorted(transitions.items(), key=lambda item: item[1][0][0])),
            workdir=self.workdir,
            process_logs=self.process_logs,
        )

    def _preflight_figures(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        """Task label -> the create operator's XCom ``preflight`` (what its checks before upload measured)."""
        figures = {}
        for task_id, map_index, value in self.query(
            "SELECT task_id, map_index, value FROM xcom WHERE dag_id = ? AND run_id = ? AND key = 'preflight'",
            (dag_id, run_id),
        ):
            # A JSON document on every version: text in Airflow 3's JSON column, UTF-8 bytes in Airflow 2's.
            decoded = json.loads(value.decode() if isinstance(value, bytes) else value)
            if isinstance(decoded, str):  # Airflow 3 on SQLite: the JSON column holds the document as a string
                decoded = json.loads(decoded)
            figures[task_label(task_id, map_index)] = decoded
        return figures

    def _read_task_logs(self, dag_id: str, run_id: str, task: TaskReport) -> None:
        """Worker logs (attempt=N.log) and trigger logs (attempt=N.log.trigger.JOB.log) of one task
        instance, and the deferrals and execution starts they show."""
        directory = self.task_log_dir / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task.task_id}"
        if task.map_index >= 0:
            directory /= f"map_index={task.map_index}"
        if not directory.is_dir():
            return
        for path in sorted(directory.iterdir()):
            if WORKER_LOG_NAME.match(path.name):
                lines = read_log_lines(path)
                task.worker_logs.append(path)
                task.worker_lines += lines
                task.logged_starts += count_execution_starts(lines)
            elif TRIGGER_LOG_NAME.match(path.name):
                task.trigger_logs.append(path)
                task.trigger_lines += read_log_lines(path)
        if task.trigger_logs and self.major >= 3:
            resources = {name for name, _, _ in status_observations(task.trigger_lines)}
            attempts = {m["attempt"] for p in task.trigger_logs if (m := TRIGGER_LOG_NAME.match(p.name))}
            names = [f"{dag_id}/{run_id}/{task.task_id}/{task.map_index}/{attempt}" for attempt in sorted(attempts)]
            seen = {(line.message, line.time.replace(microsecond=0)) for line in task.trigger_lines}
            for log in sorted(self.process_dir.glob("triggerer*.log")):
                for line in stray_trigger_lines(log, names, resources):
                    if (line.message, line.time.replace(microsecond=0)) not in seen:  # written to both: once
                        task.trigger_lines.append(line)
        task.worker_lines.sort(key=lambda line: line.time)
        task.trigger_lines.sort(key=lambda line: line.time)
        lines = task.worker_lines
        for index, line in enumerate(lines):
            if DEFERRED_MARK not in line.message:
                continue
            resumed = next(
                (
                    later.time
                    for later in lines[index + 1 :]
                    if any(mark in later.message for mark in EXECUTION_START_MARKS)
                ),
                None,
            )
            deferral = Deferral(deferred_at=line.time, resumed_at=resumed)
            if resumed is None and task.state in ("success", "skipped"):
                deferral.ended_at = task.end_date
            window = [t for t in task.trigger_lines if line.time <= t.time and (resumed is None or t.time <= resumed)]
            if window:
                deferral.trigger_started_at = window[0].time
                fired = [t.time for t in window if FIRED_MARK.search(t.message)]
                deferral.trigger_fired_at = fired[-1] if fired else None
            deferral.triggerer_job_ids = tuple(
                sorted({int(m["job"]) for p in task.trigger_logs if (m := TRIGGER_LOG_NAME.match(p.name))})
            )
            task.deferrals.append(deferral)

    def _polls_during(self, requests: list[dict[str, Any]], resources: list[str], deferral: Deferral) -> int:
        """GETs of the task's resources that the simulator received while the task was deferred."""
        wanted = {(name.split()[0], name.split()[1]) for name in resources}
        start = deferral.deferred_at.timestamp()
        end = deferral.resumed_at.timestamp() if deferral.resumed_at else float("inf")
        count = 0
        for record in requests:
            match = RESOURCE_PATH.match(record["path"])
            if record["method"] != "GET" or match is None:
                continue
            kind = "video" if match["kind"] == "videos" else "analysis"
            if (kind, match["id"]) in wanted and start <= record["time"] + self.sim_clock_offset <= end:
                count += 1
        return count

    # -- the simulator ------------------------------------------------------------------------------

    @property
    def control_url(self) -> str:
        return self.simulator_url.removesuffix("/api/v1") + "/_control"

    def _http_json(self, url: str, headers: dict[str, str] | None = None) -> Any:
        request = urllib.request.Request(url, headers={"Accept": "application/json", **(headers or {})})
        with urllib.request.urlopen(request, timeout=10) as response:  # loopback only
            return json.load(response)

    def _control(self, path: str) -> Any:
        return self._http_json(f"{self.control_url}/{path}")

    def request_log(self) -> list[dict[str, Any]]:
        """The simulator's request log so far (``GET /_control/requests``; control requests are not in it)."""
        records: list[dict[str, Any]] = self._control("requests")["requests"]
        return records

    def _all_videos(self) -> list[dict[str, Any]]:
        videos: list[dict[str, Any]] = []
        url: str | None = f"{self.simulator_url}/videos"
        for _ in range(100):  # the simulator pages 15 at a time; a bound instead of trusting `next`
            if not url:
                break
            page = self._http_json(url, {"Authorization": f"Bearer {self.api_token}"})
            videos += page.get("data", [])
            url = (page.get("links") or {}).get("next")
        return videos

    # -- stopping -----------------------------------------------------------------------------------

    def _track(self) -> set[tuple[int, int]]:
        """Record every process started here that runs now, as (pid, start time): the descendants of
        the processes spawned here (found through the parent links, before an exit re-parents them),
        the members of their process groups, and the processes carrying the marker."""
        table = process_table()
        children: dict[int, list[int]] = {}
        for info in table.values():
            children.setdefault(info.ppid, []).append(info.pid)
        found = {p.popen.pid for p in self.processes}
        queue = list(found)
        while queue:
            for child in children.get(queue.pop(), []):
                if child not in found:
                    found.add(child)
                    queue.append(child)
        pgids = {p.pgid for p in self.processes}
        found |= {pid for pid, info in table.items() if info.pgid in pgids}
        found |= set(marked_processes(self.marker))
        running = {(pid, table[pid].start) for pid in found if pid in table and table[pid].running}
        self.tracked |= running
        return running

    @property
    def seen_pids(self) -> set[int]:
        """Pids of every process started here (directly or not) that was seen running."""
        return {pid for pid, _ in self.tracked}

    def survivors(self) -> list[int]:
        """Processes started here that still run: tracked ones (same pid *and* start time), members of
        the process groups, and processes carrying the marker."""
        table = process_table()
        alive = {
            pid for pid, start in self.tracked if pid in table and table[pid].start == start and table[pid].running
        }
        alive |= {pid for p in self.processes for pid in group_members(p.pgid, table)}
        alive |= set(marked_processes(self.marker))
        return sorted(alive)

    def stop(self) -> list[str]:
        """Stop every process started here; return descriptions of survivors (empty when clean).

        SIGTERM in two steps: first the scheduler, dag-processor and triggerer, then (once they are gone,
        or after ``stop_grace`` seconds) the API server and the simulator, which running tasks and
        triggers still talk to while they wind down; a second SIGTERM to whatever still runs after
        ``SECOND_SIGNAL_AFTER`` seconds. Then SIGKILL to every group and tracked process still running.
        A Ctrl-C or SIGTERM meanwhile skips the waiting. Safe to call twice.
        """
        if self.stopped:
            return self.leftovers
        self.stopped = True
        hurry = threading.Event()
        previous_handlers: dict[signal.Signals, Any] = {}
        if threading.current_thread() is threading.main_thread():
            # A signal must not interrupt the clean-up half-way: it only makes it skip the waiting.
            def on_signal(signum: int, frame: FrameType | None) -> None:
                hurry.set()

            for sig in (signal.SIGINT, signal.SIGTERM):
                previous_handlers[sig] = signal.signal(sig, on_signal)
        began = time.monotonic()
        try:
            self._track()
            others = [p for p in self.processes if p not in self.services]
            first = [p for p in others if p.name not in STOPPED_LAST]
            last = [p for p in others if p.name in STOPPED_LAST]
            deadline = began + self.config.stop_grace
            # The services (a metadata DB) after everything that still talks to them.
            for step in (first, last, self.services):
                # SIGTERM to the group leaders only: each component stops its own children (executor
                # workers, task and trigger processes) in the order it needs; the group gets SIGKILL below.
                self._signal_leaders(step)
                second_signal_at = time.monotonic() + SECOND_SIGNAL_AFTER
                # The second step gets a few seconds even when the first used up the grace period.
                step_end = max(deadline, time.monotonic() + 5)
                while self._live_groups(step) and time.monotonic() < step_end and not hurry.is_set():
                    if second_signal_at and time.monotonic() >= second_signal_at:
                        self._signal_leaders(step)
                        second_signal_at = 0.0
                    self._track()
                    time.sleep(0.2)
            self._signal_groups(self.processes, signal.SIGKILL)
            for pid in self.survivors():  # e.g. escaped their process group
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            for process in self.processes:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.popen.wait(timeout=5)
                process.log_file.close()
            end = time.monotonic() + 5
            while self.survivors() and time.monotonic() < end:
                time.sleep(0.1)
            self.leftovers = [describe_process(pid) for pid in self.survivors()]
            if self.processes:
                outcome = (
                    f"{len(self.leftovers)} process(es) still running" if self.leftovers else "nothing left running"
                )
                self.progress(
                    f"Stopped {len(self.tracked)} processes ({len(self.processes)} process groups) in "
                    f"{time.monotonic() - began:.0f} s; {outcome}."
                )
        finally:
            for sig, handler in previous_handlers.items():
                signal.signal(sig, handler)
        return self.leftovers

    def _live_groups(self, processes: list[ManagedProcess]) -> list[ManagedProcess]:
        table = process_table()
        for process in processes:
            process.popen.poll()  # reap an exited group leader, so it does not count as a member
        return [p for p in processes if group_members(p.pgid, table if table else None)]

    def _signal_leaders(self, processes: list[ManagedProcess]) -> None:
        for process in processes:
            if not process.exited():
                with contextlib.suppress(ProcessLookupError):
                    process.popen.send_signal(signal.SIGTERM)

    def _signal_groups(self, processes: list[ManagedProcess], signum: int) -> None:
        for process in self._live_groups(processes):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pgid, signum)

    def failure_details(self, lines: int = 25) -> str:
        """The tails of the component logs and of the failed tasks' logs, for a failure message."""
        parts = []
        for process in self.processes:
            parts.append(f"--- the end of {process.log_path} ---\n{tail(process.log_path, lines)}")
        return "\n".join(parts)


def run_in(harness: AirflowHarness, body: Callable[[], None], stopping: str) -> int | None:
    """What the scripts (``make demo``, ``make e2e-distributed``) share: start ``harness``, run ``body``,
    stop everything — also on failure, Ctrl-C or SIGTERM (a CI timeout takes the Ctrl-C path).

    :return: ``None`` when ``body`` returned; else the exit code, after printing why and where the logs
        are: 1 for a :class:`HarnessError`, 130 when interrupted.
    """

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    try:
        with harness:
            body()
            print(stopping, flush=True)
        # Leaving the `with` block stopped every process group (and printed how that went).
    except HarnessError as exc:
        print(f"\nThe run failed: {exc}", file=sys.stderr)
        print(harness.failure_details(15), file=sys.stderr)
        print(f"\nAll logs: {harness.workdir}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # The `with` block has stopped everything by now (a second Ctrl-C only makes that quicker).
        outcome = "still running: " + "; ".join(harness.leftovers) if harness.leftovers else "stopped everything"
        print(f"\nInterrupted; {outcome}. Logs: {harness.workdir}", file=sys.stderr)
        return 130
    return None
