"""`down`: stop everything of a profile's cluster, and say what was stopped.

Everything means: each engine set through its own :meth:`EngineSet.stop` (remote engines over SSH,
a job cancelled, local processes with their trees), the controller with its process group (its
schedulers survive a SIGKILL of the controller in that group), and then every process whose command
line still names the profile directory (whatever the records missed). The sets and the controller
are stopped at once, each bounded by the timeout.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, Callable

from ipcluster_kit import processes
from ipcluster_kit.cluster.controller import remove_connection_files
from ipcluster_kit.cluster.enginesets.base import SetStop, engine_set_class
from ipcluster_kit.cluster.lock import profile_lock
from ipcluster_kit.cluster.running import set_context
from ipcluster_kit.cluster.state import STATE_FILE, ClusterState, StateUnreadable
from ipcluster_kit.errors import KitError
from ipcluster_kit.profile.spec import profile_dir_for
from ipcluster_kit.profile.store import read_spec
from ipcluster_kit.validate import check_seconds

DEFAULT_STOP_TIMEOUT = 10.0


def _stop_set(spec: Any, profile_dir: Path, record: Any, timeout: float) -> SetStop:
    try:
        engine_set = engine_set_class(record.kind)(set_context(spec, profile_dir, record.engines))
        return engine_set.stop(record, timeout)
    except Exception as exc:  # noqa: BLE001 - reported (and the state kept), never swallowed
        return SetStop(record.kind, error=f"{type(exc).__name__}: {exc}")


def _all_at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Each call's result; run in threads at once, or one after the other where no thread can start
    any more (a clean-up that runs while the interpreter exits, e.g. a notebook kernel's)."""
    try:
        pool = ThreadPoolExecutor(max_workers=len(calls))
        jobs = [pool.submit(call) for call in calls]
    except RuntimeError:  # "cannot schedule new futures after interpreter shutdown"
        return [call() for call in calls]
    with pool:
        return [job.result() for job in jobs]


def stop_state(spec: Any, profile_dir: Path, state: ClusterState | None, timeout: float = DEFAULT_STOP_TIMEOUT) -> dict:
    """Stop what ``state`` names (if any) and every process of the profile directory; the report."""
    sets = state.engine_sets if state else []
    controller = [state.controller] if state and state.controller else []
    calls = [partial(_stop_set, spec, profile_dir, record, timeout) for record in sets]
    *results, stopped_controller = _all_at_once(calls + [partial(processes.stop_processes, controller, timeout)])
    swept = processes.stop_processes(processes.find_by_argument(str(profile_dir), role="found by profile directory"),
                                     timeout=timeout)  # fmt: skip
    stopped = [r.to_dict() for r in stopped_controller.stopped + swept.stopped]
    left = [r.to_dict() for r in stopped_controller.left + swept.left]
    pending = []
    for result in results:
        stopped += [dict(entry, kind=result.kind) for entry in result.stopped]
        left += [dict(entry, kind=result.kind) for entry in result.left]
        pending += [dict(entry, kind=result.kind) for entry in result.pending]
    return {
        "controller_stopped": bool(controller) and any(r.pid == controller[0].pid for r in stopped_controller.stopped),
        "engines_stopped": sum(r.engines_stopped for r in results if r.kind != "ssh"),
        "remote_engines_stopped": sum(r.engines_stopped for r in results if r.kind == "ssh"),
        "engine_sets": [r.to_dict() for r in results],
        "found_by_profile_dir": [r.to_dict() for r in swept.stopped + swept.left],
        "stopped": stopped,
        "left_running": left,
        "pending": pending,
        "errors": [r.error for r in results if r.error],
    }


def down(
    name: str,
    ipython_dir: str | os.PathLike | None = None,
    *,
    timeout: float = DEFAULT_STOP_TIMEOUT,
    force: bool = False,
) -> dict:
    """Stop everything of the profile's cluster; return what was stopped.

    Without a state file, nothing is stopped unless ``force``: then every process whose command line
    names the profile directory is (the way out when the state file is lost or unreadable). KitError
    when something could not be stopped (the state file is then kept, so that `down` can run again).
    What only a batch system can still end, and will (a cancelled job COMPLETING on a node that no
    longer answers), is no failure: it is listed under ``pending``, each with a ``note``, and the
    state file goes (nothing of the cluster runs here any more; a new `up` may start).
    """
    check_seconds("--timeout", timeout)
    try:
        spec, profile_dir = read_spec(name, ipython_dir)
    except KitError:
        if not force or not profile_dir_for(name, ipython_dir).is_dir():
            raise
        spec, profile_dir = None, profile_dir_for(name, ipython_dir)  # an unreadable profile record: stop anyway
    with profile_lock(profile_dir, f"ipcluster-kit down {name}", timeout=timeout):
        return _down_locked(name, spec, profile_dir, timeout, force)


def _down_locked(name: str, spec: Any, profile_dir: Path, timeout: float, force: bool) -> dict:
    from ipcluster_kit.cluster.running import unreadable_message

    try:
        state = ClusterState.load(profile_dir)
    except StateUnreadable as exc:
        if not force:
            raise KitError(unreadable_message(name, profile_dir, exc)) from None
        state = None
    if state is None and not force:
        live = processes.find_by_argument(str(profile_dir))
        if live:
            raise KitError(f"cluster {name!r} has no state file, but {len(live)} process(es) of this profile run"
                           f" (PIDs {', '.join(str(r.pid) for r in live)}); stop them with `ipcluster-kit down {name} --force`")  # fmt: skip
        return {"profile": name, "was_up": False, "controller_stopped": False, "engines_stopped": 0,
                "remote_engines_stopped": 0, "engine_sets": [], "found_by_profile_dir": [], "stopped": [],
                "left_running": [], "pending": [], "errors": []}  # fmt: skip
    report = stop_state(spec, profile_dir, state, timeout)
    if report["left_running"]:
        pids = [entry.get("pid") for entry in report["left_running"]]
        raise KitError(f"could not stop PIDs {pids} of cluster {name!r}; the state file is kept")
    if report["errors"]:
        raise KitError(f"stopped the controller and local processes of {name!r}, but not every engine set"
                       f" ({'; '.join(report['errors'])}); the state file is kept, run `ipcluster-kit down {name}` again")  # fmt: skip
    (profile_dir / STATE_FILE).unlink(missing_ok=True)
    remove_connection_files(profile_dir)
    return {"profile": name, "was_up": state is not None or bool(report["stopped"]), **report}
