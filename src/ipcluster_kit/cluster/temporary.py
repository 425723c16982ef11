"""A throwaway local cluster for a ``with`` block (benchmarks, the shoot-out, tests)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Callable, Iterator

from ipcluster_kit import processes
from ipcluster_kit.cluster.bringup import DEFAULT_TIMEOUT, up
from ipcluster_kit.cluster.running import RunningCluster
from ipcluster_kit.cluster.shutdown import down
from ipcluster_kit.cluster.watchdog import watchdog_command, watchdog_env
from ipcluster_kit.errors import KitError
from ipcluster_kit.profile.spec import DEFAULT_SCHEME, build_spec, profile_dir_for
from ipcluster_kit.profile.store import plan_write, write_profile

WATCHDOG_STOP_TIMEOUT = 2.0


@contextlib.contextmanager
def temporary_cluster(
    engines: int | None = None,
    scheme: str = DEFAULT_SCHEME,
    hwm: int | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    ipython_dir: str | os.PathLike | None = None,
    progress: Callable[[str], None] = lambda message: None,
    heartbeat_ms: int | None = None,
) -> Iterator[RunningCluster]:
    """A throwaway local profile, brought up, and stopped and deleted on exit.

    Raises KitError on exit when anything of the cluster is still running after `down` (by PID, or
    any process whose command line names the profile directory): a leak is never silent. The
    cluster cannot outlive this process either: a watchdog (:mod:`ipcluster_kit.cluster.watchdog`)
    stops it and removes its directory when this process dies without getting here (SIGKILL).
    """
    own_dir = ipython_dir is None
    root = Path(tempfile.mkdtemp(prefix="ipck-")) if own_dir else Path(ipython_dir)
    name = f"kit-tmp-{uuid.uuid4().hex[:8]}"
    removed = root if own_dir else profile_dir_for(name, root)
    watchdog = None
    try:
        extra = {} if heartbeat_ms is None else {"heartbeat_ms": heartbeat_ms}
        spec = build_spec(name, preset="local", scheme=scheme, hwm=hwm, engines=engines or os.cpu_count() or 1, **extra)
        write_profile(plan_write(spec, root))
        watchdog = _start_watchdog(name, root, removed)
        cluster, _ = up(name, root, timeout=timeout, progress=progress)
        cluster.temporary = True
        try:
            yield cluster
        finally:
            down(name, root)  # raises KitError when a recorded process could not be stopped
            leftovers = processes.find_by_argument(str(cluster.profile_dir))
            if leftovers:
                raise KitError(f"temporary cluster {name!r} left processes running after down: PIDs {[r.pid for r in leftovers]}")
    finally:
        if watchdog is not None:
            processes.stop_processes([watchdog], timeout=WATCHDOG_STOP_TIMEOUT)
        shutil.rmtree(removed, ignore_errors=True)


def _start_watchdog(name: str, root: Path, removed: Path) -> processes.ProcessRecord:
    """The watchdog that stops the cluster if this process dies first (see cluster/watchdog.py)."""
    owner = processes.record_of(os.getpid(), role="owner")
    assert owner is not None
    log = profile_dir_for(name, root) / "log" / "kit-watchdog.log"
    record, _proc = processes.spawn(watchdog_command(), log, "watchdog", env=watchdog_env(owner, name, root, removed))
    return record
