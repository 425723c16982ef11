"""Processes the kit starts or must stop: spawned in sessions of their own, recorded by PID and start
time, found by an argument of their command line, and stopped with everything they started.

A PID alone is not an identity: after a crash or a reboot it may name another process. A record
keeps the process's start time (psutil's ``create_time``), and nothing is signalled unless that
still matches.

Stopping (:func:`stop_processes`) is the one terminate-wait-kill of the kit. It takes the whole
tree of each process: its descendants, and the members of its process group and session, which
is how an ipyparallel controller's schedulers are found after the controller itself was killed
with SIGKILL (they keep its group), and how an engine's nanny (a child in a session of its own)
is found while the engine lives.

This module uses only the standard library and psutil (which ipyparallel requires): its source is
also sent to engine hosts, where :mod:`ipcluster_kit.remote.scripts` runs it to start and stop
engines, so that one piece of code does this everywhere.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

import psutil

# Two readings of one process's start time agree to the clock tick (10 ms); another process that
# got the same PID started later than that.
SAME_START_TOLERANCE = 0.005
DEFAULT_STOP_TIMEOUT = 10.0
KILL_TIMEOUT = 5.0
POLL_INTERVAL = 0.02


@dataclass(frozen=True)
class ProcessRecord:
    """A process by PID and start time (seconds since the epoch, as psutil gives it)."""

    pid: int
    create_time: float | None
    role: str = "process"  # controller, engine, mpiexec, jupyter, ... (for reports and logs)
    log: str = ""
    host: str = "localhost"

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict) -> "ProcessRecord":
        """A record from its dict; also the first state files' form (``start_ticks`` since boot)."""
        create_time = data.get("create_time")
        legacy = data.get("start_ticks", data.get("start_time"))
        if create_time is None and legacy is not None:
            create_time = psutil.boot_time() + int(legacy) / os.sysconf("SC_CLK_TCK")
        return cls(
            pid=int(data["pid"]),
            create_time=None if create_time is None else float(create_time),
            role=str(data.get("role") or "process"),
            log=str(data.get("log") or ""),
            host=str(data.get("host") or "localhost"),
        )


def record_of(pid: int, role: str = "process", log: str = "", host: str = "localhost") -> ProcessRecord | None:
    """The record of the process that has ``pid`` now, or None when there is none."""
    try:
        return ProcessRecord(pid=pid, create_time=psutil.Process(pid).create_time(), role=role, log=log, host=host)
    except psutil.Error:
        return None


def _same_start(a: float | None, b: float | None) -> bool:
    return a is None or b is None or abs(a - b) <= SAME_START_TOLERANCE


def process_of(record: ProcessRecord) -> psutil.Process | None:
    """The live process the record names (not a zombie, same start time), else None."""
    try:
        proc = psutil.Process(record.pid)
        if not _same_start(record.create_time, proc.create_time()):
            return None
        if proc.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
            return None
        return proc
    except psutil.Error:
        return None


def describe(record: ProcessRecord) -> str:
    """``running``, ``not running``, or ``not running (pid reused)`` (the PID names another process)."""
    try:
        proc = psutil.Process(record.pid)
        if not _same_start(record.create_time, proc.create_time()):
            return "not running (pid reused)"
        return "not running" if proc.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD) else "running"
    except psutil.Error:
        return "not running"


def is_alive(record: ProcessRecord) -> bool:
    """True when the recorded process still runs (not a zombie) and is the same process."""
    return process_of(record) is not None


def spawn(
    cmd: list[str], log_path: str | os.PathLike, role: str, env: dict | None = None, cwd: str | os.PathLike | None = None
) -> tuple[ProcessRecord, subprocess.Popen]:
    """Start ``cmd`` in a new session (its own process group), output appended to ``log_path``.

    The new session means the process outlives the command that started it, and that stopping it
    can take its whole group (children included) and nothing else. The record is made before this
    returns: an unreaped child that exited at once is still readable.
    """
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=fd, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True
        )
    finally:
        os.close(fd)
    record = record_of(proc.pid, role=role, log=str(log_path)) or ProcessRecord(proc.pid, None, role, str(log_path))
    return record, proc


def _ancestors() -> set[int]:
    """This process and its ancestors: never targets of a search."""
    found, proc = set(), psutil.Process()
    while proc is not None:
        found.add(proc.pid)
        try:
            proc = proc.parent()
        except psutil.Error:
            break
    return found


def _mentions(arg: str, text: str) -> bool:
    """``arg`` contains ``text`` as a whole path: ``/p/profile_c`` is in ``--profile-dir=/p/profile_c``
    and ``/p/profile_c/log``, not in ``/p/profile_c2``."""
    start = arg.find(text)
    while start >= 0:
        end = start + len(text)
        if end == len(arg) or arg[end] in "/\"'":
            return True
        start = arg.find(text, start + 1)
    return False


def find_by_argument(text: str, role: str = "found") -> list[ProcessRecord]:
    """Live processes with an argument that mentions ``text`` as a whole path (e.g. a profile
    directory; see :func:`_mentions`).

    This process and its ancestors are never listed (a shell or test runner that mentions the same
    path is not one of the cluster's processes).
    """
    if not text:
        return []
    skip = _ancestors()
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "create_time", "status"]):
        info = proc.info
        if info["pid"] in skip or info["status"] == psutil.STATUS_ZOMBIE or not info["cmdline"]:
            continue
        if any(_mentions(arg, text) for arg in info["cmdline"]):
            found.append(ProcessRecord(pid=info["pid"], create_time=info["create_time"], role=role))
    return sorted(found, key=lambda r: r.pid)


@dataclass
class _Entry:
    pid: int
    ppid: int
    pgid: int
    sid: int
    create_time: float


def _table() -> dict[int, _Entry]:
    """Every live process: parent, group, session and start time (one pass over the system)."""
    table = {}
    for proc in psutil.process_iter(["pid", "ppid", "create_time", "status"]):
        info = proc.info
        if info["status"] in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
            continue
        try:
            pgid, sid = os.getpgid(info["pid"]), os.getsid(info["pid"])
        except OSError:
            continue
        table[info["pid"]] = _Entry(info["pid"], info["ppid"], pgid, sid, info["create_time"] or 0.0)
    return table


def tree(records: Iterable[ProcessRecord]) -> list[ProcessRecord]:
    """The live processes of ``records`` with everything they started, as records.

    For each record: the process itself (when it is still the same process), the members of the
    process group and session it leads (also after it died: the kernel gives its PID to no one while
    its group or session exists; members older than the leader are never taken), and then every
    descendant of all of these (an engine's nanny is a child in a session of its own).
    """
    table = _table()
    skip = _ancestors()
    chosen: dict[int, ProcessRecord] = {}
    for record in records:
        entry = table.get(record.pid)
        same = entry is not None and _same_start(record.create_time, entry.create_time)
        if same:
            chosen.setdefault(record.pid, record)
        elif entry is not None:
            continue  # the PID belongs to another process now: so do its group and session
        for other in table.values():
            if other.pid != record.pid and record.pid in (other.pgid, other.sid):
                if record.create_time is None or other.create_time >= record.create_time - SAME_START_TOLERANCE:
                    chosen.setdefault(other.pid, ProcessRecord(other.pid, other.create_time, f"{record.role} group", host=record.host))
    children: dict[int, list[_Entry]] = {}
    for entry in table.values():
        children.setdefault(entry.ppid, []).append(entry)
    todo = list(chosen.values())
    while todo:
        parent = todo.pop()
        for child in children.get(parent.pid, []):
            if child.pid not in chosen:
                chosen[child.pid] = ProcessRecord(child.pid, child.create_time, f"{parent.role} child", host=parent.host)
                todo.append(chosen[child.pid])
    return [r for pid, r in sorted(chosen.items()) if pid not in skip]


def descendants(pid: int, role: str = "child") -> list[ProcessRecord]:
    """Every live process below ``pid`` (children, grandchildren, ...), recorded with its start time."""
    try:
        below = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []
    return [r for r in (record_of(p.pid, role=role) for p in below) if r is not None]


@dataclass
class StopReport:
    """What :func:`stop_processes` did: every process it found running, and how each ended."""

    stopped: list[ProcessRecord] = field(default_factory=list)  # were running, are gone (TERM or KILL)
    killed: list[ProcessRecord] = field(default_factory=list)  # of those, the ones that needed SIGKILL
    left: list[ProcessRecord] = field(default_factory=list)  # still running after SIGKILL

    def to_dict(self) -> dict:
        return {
            "stopped": [r.to_dict() for r in self.stopped],
            "killed": [r.pid for r in self.killed],
            "left_running": [r.to_dict() for r in self.left],
        }


def _running(proc: psutil.Process) -> bool:
    """Still running: a zombie is not (and one of this process's own children is reaped here)."""
    try:
        if proc.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD):
            try:
                proc.wait(timeout=0)
            except psutil.Error:
                pass  # the zombie of another parent: it will reap it
            return False
        return proc.is_running()
    except psutil.Error:
        return False


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait up to ``timeout`` for ``procs`` to end; the ones still running."""
    deadline = time.monotonic() + timeout
    pending = [p for p in procs if _running(p)]
    while pending and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL)
        pending = [p for p in pending if _running(p)]
    return pending


def _signal(proc: psutil.Process, sig: int) -> None:
    try:
        proc.send_signal(sig)  # psutil refuses a PID that now names another process
    except psutil.Error:
        pass


def stop_processes(
    records: Iterable[ProcessRecord], timeout: float = DEFAULT_STOP_TIMEOUT, kill_timeout: float = KILL_TIMEOUT
) -> StopReport:
    """Stop the records' processes and their trees (see :func:`tree`): SIGTERM, wait up to
    ``timeout``, SIGKILL what is left, wait up to ``kill_timeout``. Bounded; never raises for a
    process that is already gone. Zombies of this process's own children are reaped here.
    """
    targets = tree(records)
    procs: dict[psutil.Process, ProcessRecord] = {}
    for record in targets:
        proc = process_of(record)
        if proc is not None:
            procs[proc] = record
    for proc in procs:
        _signal(proc, signal.SIGTERM)
    alive = _wait_gone(list(procs), max(timeout, 0.0))
    for proc in alive:
        _signal(proc, signal.SIGKILL)
    left = _wait_gone(alive, kill_timeout)
    left_set = set(left)
    return StopReport(
        stopped=[r for p, r in procs.items() if p not in left_set],
        killed=[procs[p] for p in alive if p not in left_set],
        left=[procs[p] for p in left],
    )
