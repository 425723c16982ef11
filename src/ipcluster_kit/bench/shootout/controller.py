"""What the controller says it runs: the scheme (connection file and scheduler log) and the hwm at work.

The kit never trusts the configuration it wrote: each shoot-out cluster is asked. The connection
file's ``task_scheme`` and the scheduler's start line (``Task scheduler started [NAME]``, or
``using pure DEALER Task scheduler``) must both name the scheme; for a Python scheme a few sleeping
tasks show whether the ``hwm`` holds tasks back as it should.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from ipcluster_kit.bench.shootout.recommend import PURE
from ipcluster_kit.errors import KitError

PROBE_TASK_SECONDS = 0.2
QUICK_PROBE_TASK_SECONDS = 0.1
CONTROLLER_LOG = "kit-controller.log"

_LOG_PYTHON = re.compile(r"Task scheduler started \[(\w+)\]")
_LOG_PURE = re.compile(r"using pure DEALER Task scheduler")


def scheme_from_log(text: str) -> tuple[str | None, str | None]:
    """The scheme the controller's task scheduler announced in its log, and that line."""
    for line in text.splitlines():
        match = _LOG_PYTHON.search(line)
        if match:
            return match.group(1), line.strip()
        if _LOG_PURE.search(line):
            return PURE, line.strip()
    return None, None


def read_back_scheme(cluster: Any, wait: float = 10.0) -> dict:
    """What the controller says it runs: the connection file's ``task_scheme`` and its log line.

    The scheduler logs its start in its own process, shortly after the controller: the log is
    read again for up to ``wait`` seconds until the line is there.
    """
    try:
        task_scheme = json.loads(Path(cluster.client_file).read_text()).get("task_scheme")
    except (OSError, ValueError):
        task_scheme = None
    log_path = Path(cluster.profile_dir) / "log" / CONTROLLER_LOG
    deadline = time.monotonic() + wait
    while True:
        try:
            log_scheme, line = scheme_from_log(log_path.read_text(errors="replace"))
        except OSError:
            log_scheme, line = None, None
        if log_scheme is not None or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    return {"task_scheme": task_scheme, "log_scheme": log_scheme, "log_line": line, "log": str(log_path)}


def probe_hwm(client: Any, hwm: int, engines: int, timeout: float, task_seconds: float = PROBE_TASK_SECONDS) -> dict:
    """:func:`probe_hwm_once`, and when that does not confirm the hwm, once more with tasks three times
    as long (on a busy machine the hub may report the tasks only after the first one finished)."""
    result = probe_hwm_once(client, hwm, engines, timeout, task_seconds)
    if not result["consistent"]:
        result = probe_hwm_once(client, hwm, engines, timeout, task_seconds * 3)
        result["attempts"] = 2
    else:
        result["attempts"] = 1
    return result


def probe_hwm_once(client: Any, hwm: int, engines: int, timeout: float, task_seconds: float = PROBE_TASK_SECONDS) -> dict:
    """Watch the high-water mark at work: ``engines * max(hwm, 1) + 2`` sleeping tasks at once.

    With ``hwm = k > 0`` the scheduler hands each engine at most ``k`` of them and holds the rest
    back (the hub counts them as unassigned); with ``hwm = 0`` it assigns every task at once. The
    hub's ``queue_status`` is read until it has seen every task and the picture is settled, for at
    most 1.5 times a task's duration. Readings taken before the hub saw all tasks, or after one
    finished, are not used.
    """
    n = engines * max(hwm, 1) + 2

    def reading() -> tuple[list[int], int, int]:
        status = client.queue_status()
        per_engine = [v for k, v in status.items() if k != "unassigned" and isinstance(v, dict)]
        return ([int(v.get("tasks", 0)) for v in per_engine], int(status.get("unassigned", 0)),
                sum(int(v.get("completed", 0)) for v in per_engine))  # fmt: skip

    _, _, completed_before = reading()
    view = client.load_balanced_view()
    ar = view.map(time.sleep, [task_seconds] * n, chunksize=1, block=False)
    deadline = time.perf_counter() + task_seconds * 1.5  # readings after a task finished are not used
    last: tuple[list[int], int] | None = None
    settled = 0
    readings = 0
    while time.perf_counter() < deadline:
        outstanding, unassigned, completed = reading()
        if completed > completed_before:
            break  # a task finished: held-back tasks are being handed out now
        if unassigned + sum(outstanding) == n:
            readings += 1
            if hwm == 0:
                last = (outstanding, unassigned)
                if unassigned == 0:
                    break
            else:
                full = sum(outstanding) == engines * hwm and unassigned == n - engines * hwm
                settled = settled + 1 if full and last == (outstanding, unassigned) else (1 if full else 0)
                last = (outstanding, unassigned)
                if settled >= 3:  # the same full picture three times in a row: the rest is held back
                    break
        time.sleep(0.02)
    ar.get(timeout=timeout)
    if last is None:
        return {"tasks": n, "task_seconds": task_seconds, "max_outstanding_per_engine": None, "unassigned": None,
                "readings": 0, "consistent": False, "observed": "the hub did not report every task in time"}  # fmt: skip
    outstanding, unassigned = last
    if hwm == 0:
        consistent = unassigned == 0
        observed = "no limit: every task assigned at once" if consistent else f"{unassigned} of {n} tasks still unassigned"
    else:
        consistent = settled >= 3 and max(outstanding) <= hwm
        observed = f"at most {max(outstanding)} task(s) per engine, {unassigned} of {n} held back"
    return {"tasks": n, "task_seconds": task_seconds, "max_outstanding_per_engine": max(outstanding),
            "unassigned": unassigned, "readings": readings, "consistent": consistent, "observed": observed}  # fmt: skip


# --- the pure trap ------------------------------------------------------------------------------

GAP_WARNING = "Task farming will be disabled"


def _task_farming_works(client: Any, timeout: float) -> bool:
    from ipcluster_kit.bench.workloads import noop

    try:
        return client.load_balanced_view().apply_async(noop, 1).get(timeout=timeout) == 1
    except RuntimeError as exc:  # "Task farming is disabled"
        if "farming" in str(exc):
            return False
        raise


def connect_for_tasks(cluster: Any, timeout: float = 60.0) -> Any:
    """A client whose load-balanced views work, proven by one task.

    With the ``pure`` scheme, an ipyparallel client that sees a gap in the engine ids (engine 1
    registered before engine 0) turns task farming off for good. ``cluster.connect()`` (the kit's
    one client-wait helper) makes its client after every engine registered, so it sees no gap; a
    gap it still sees is a hole that will not close (an engine died or re-registered): a KitError
    that says so, as is a client that refuses load-balanced tasks.
    """
    expected = int(cluster.engines)
    pure = getattr(cluster, "scheme", None) == PURE
    client = cluster.connect(timeout=timeout)
    ids = sorted(client.ids)
    problem = None
    if len(ids) < expected:
        problem = f"only {len(ids)} of {expected} engines answer"
    elif pure and ids != list(range(len(ids))):
        problem = f"engine ids {ids} have a gap (with the pure scheme: an engine died or re-registered; restart the cluster)"
    elif not _task_farming_works(client, timeout):
        problem = "the client refuses load-balanced tasks (task farming disabled)"
    if problem is not None:
        client.close()
        raise KitError(f"cannot farm tasks on this cluster: {problem}")
    return client
