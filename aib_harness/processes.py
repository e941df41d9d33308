"""Layer 1, processes: free ports, process tables and trees, process groups, CPU time, deadlines.

Standard library only (no Airflow), like every module of this package.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import IO

#: Every process started here inherits this variable (with a per-harness value), so the leftover check
#: also finds processes that left their process group (``setsid``) and were re-parented.
MARKER_ENV = "AIB_HARNESS_MARKER"
#: Seconds after the first SIGTERM when a still-running component gets a second one. Airflow's
#: components read a second signal as "stop now" (the triggerer otherwise waits up to 10 s for its
#: trigger runner; the scheduler for running tasks). Nothing worth waiting for runs by then.
SECOND_SIGNAL_AFTER = 3.0


class HarnessError(RuntimeError):
    """A step failed or timed out; the message says which step and which log file to read."""


def free_port() -> int:
    """A TCP port free on loopback right now (the usual small race is acceptable for a throwaway run)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a text file ('' if it does not exist)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class Deadline:
    """One time budget shared by every wait of a run, so the whole run fails in bounded time."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self.end - time.monotonic())

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.end


# --------------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------------


@dataclass
class ManagedProcess:
    """A process started in its own session, hence its own process group (pgid == pid)."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]

    @property
    def pgid(self) -> int:
        return self.popen.pid

    def exited(self) -> bool:
        return self.popen.poll() is not None


@dataclass(frozen=True)
class ProcessInfo:
    """One line of ``/proc/PID/stat``: enough to follow a process tree and to tell a process from a
    later one that reuses its pid (``start``, in clock ticks since boot)."""

    pid: int
    state: str
    ppid: int
    pgid: int
    start: int
    #: CPU time the process itself used, user + system (``utime + stime``), in clock ticks.
    cpu_ticks: int = 0
    #: CPU time of its children that it has waited for, user + system (``cutime + cstime``), in clock
    #: ticks; each waited-for child's own ``cutime + cstime`` is in there too, so it covers every
    #: descendant that exited and was reaped along a chain of waiting parents.
    children_cpu_ticks: int = 0

    @property
    def running(self) -> bool:
        # A zombie runs nothing; in a container whose PID 1 does not reap orphans it lingers forever.
        return self.state not in ("Z", "X")


def process_table() -> dict[int, ProcessInfo]:
    """Every process on the machine by pid (empty without ``/proc``, e.g. on macOS)."""
    table = {}
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                raw = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:  # gone meanwhile
                continue
            # "pid (comm) state ppid pgrp ... utime(14th) stime cutime cstime ... starttime(22nd)": comm may
            # contain spaces and parentheses; fields[k] below is the (k + 3)th field.
            fields = raw[raw.rfind(")") + 2 :].split()
            pid = int(entry.name)
            table[pid] = ProcessInfo(
                pid,
                fields[0],
                int(fields[1]),
                int(fields[2]),
                int(fields[19]),
                cpu_ticks=int(fields[11]) + int(fields[12]),
                children_cpu_ticks=int(fields[13]) + int(fields[14]),
            )
    return table


def descendants(roots: Collection[int], table: dict[int, ProcessInfo]) -> dict[int, set[int]]:
    """Each root's process tree (the root and everything below it, zombies included), by parent links."""
    children: dict[int, list[int]] = {}
    for info in table.values():
        children.setdefault(info.ppid, []).append(info.pid)
    trees = {}
    for root in roots:
        tree = {root} if root in table else set()
        queue = list(tree)
        while queue:
            for child in children.get(queue.pop(), []):
                if child not in tree:
                    tree.add(child)
                    queue.append(child)
        trees[root] = tree
    return trees


def tree_cpu_seconds(roots: Collection[int], table: dict[int, ProcessInfo] | None = None) -> dict[int, float]:
    """CPU seconds (user + system) each root's process tree has used so far, exited children included.

    The sum, over every process of the tree that exists now (zombies too), of its own time and of the
    time of the children it has reaped. A child's time moves into its parent's ``cutime``/``cstime``
    when the parent waits for it, so every tick is counted once and the sum only grows: the difference
    of two readings is the CPU the tree used in between. Not counted: a descendant that was reparented
    out of the tree (its parent exited first) and a child whose parent ignores ``SIGCHLD`` (the kernel
    then reaps it without adding its time anywhere); a child reaped during the reading itself can be
    counted twice or not at all (a window of microseconds).
    """
    table = process_table() if table is None else table
    ticks_per_second = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    return {
        root: sum(table[pid].cpu_ticks + table[pid].children_cpu_ticks for pid in tree) / ticks_per_second
        for root, tree in descendants(roots, table).items()
    }


def group_members(pgid: int, table: dict[int, ProcessInfo] | None = None) -> list[int]:
    """Running (non-zombie) processes in a process group; without ``/proc``, a signal 0 to the group."""
    if not Path("/proc/self/stat").exists():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        except PermissionError:
            pass
        return [pgid]
    table = process_table() if table is None else table
    return [info.pid for info in table.values() if info.pgid == pgid and info.running]


def marked_processes(marker: str) -> list[int]:
    """Processes whose environment carries ``MARKER_ENV=marker`` (empty without ``/proc``).

    Not complete on its own: a process that renames itself with ``setproctitle`` (Airflow's API server
    and LocalExecutor workers do) overwrites the memory ``/proc/PID/environ`` reads; the process-tree
    tracking of :class:`AirflowHarness` covers those. A zombie's environment reads empty.
    """
    if not Path("/proc/self/environ").exists():
        return []
    needle = f"{MARKER_ENV}={marker}".encode()
    found = []
    for pid in process_table():
        if pid == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:  # gone, or another user's process
            continue
        if needle in environ.split(b"\0"):
            found.append(pid)
    return found


def describe_process(pid: int) -> str:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        command = "?"
    return f"pid {pid}: {command[:120]}"
