"""The session-end sweep: a test session must leave no process of its own running.

A process belongs to this session when it carries the session's marker in its environment (every
process a test starts inherits it, and so do the controllers and engines those start), or when an
argument of its command line or its working directory lies in this session's temporary directory.
Other sessions on the same machine (five people run tests here at once) have other markers and
other temporary directories, so they are never touched.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import psutil

from ipcluster_kit.processes import ProcessRecord, find_by_argument, stop_processes

MARKER = "IPCK_TEST_SESSION"
# Seconds for processes already on their way out (a teardown's SIGTERM) to exit.
GRACE = float(os.environ.get("IPCK_SWEEP_GRACE", "10"))

# The test runner's own multiprocessing helpers: they serve the runner and end with it.
_RUNNER_HELPERS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")


def mark_session() -> str:
    """Put this session's marker into the environment every process started from now inherits."""
    value = os.environ.get(MARKER) or f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
    os.environ[MARKER] = value
    return value


def _is_runner_helper(pid: int, runner: int) -> bool:
    try:
        proc = psutil.Process(pid)
        return proc.ppid() == runner and any(h in " ".join(proc.cmdline()) for h in _RUNNER_HELPERS)
    except psutil.Error:
        return False


def session_processes(marker: str, roots: list[Path]) -> list[ProcessRecord]:
    """Live processes of this session, except the runner itself, its ancestors and its own helpers."""
    me = psutil.Process()
    skip = {me.pid, *(p.pid for p in me.parents())}
    found: dict[int, ProcessRecord] = {}
    for root in roots:
        for record in find_by_argument(str(Path(root).absolute()), role="leftover"):
            found.setdefault(record.pid, record)
    for proc in psutil.process_iter(["pid", "environ", "status", "create_time"]):
        info = proc.info
        if info["status"] != psutil.STATUS_ZOMBIE and (info.get("environ") or {}).get(MARKER) == marker:
            found.setdefault(info["pid"], ProcessRecord(pid=info["pid"], create_time=info["create_time"], role="leftover"))
    return [
        record for pid, record in sorted(found.items())
        if pid not in skip and not _is_runner_helper(pid, me.pid)
    ]  # fmt: skip


def describe(record: ProcessRecord) -> str:
    try:
        command = " ".join(psutil.Process(record.pid).cmdline())
    except psutil.Error:
        command = "(gone)"
    return f"pid {record.pid}: {command[:200]}"


def sweep(marker: str, roots: list[Path], grace: float | None = None) -> list[str]:
    """Wait up to ``grace`` s for this session's processes to end; stop and describe what is left."""
    deadline = time.monotonic() + (GRACE if grace is None else grace)
    left = session_processes(marker, roots)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = session_processes(marker, roots)
    if not left:
        return []
    lines = [describe(record) for record in left]
    stop_processes(left, timeout=5.0)
    return lines
