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
from ipcluster_kit.errors import KitError
from ipcluster_kit.profile.spec import DEFAULT_SCHEME, build_spec, profile_dir_for
from ipcluster_kit.profile.store import plan_write, write_profile


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
    any process whose command line names the profile directory): a leak is never silent.
    """
    own_dir = ipython_dir is None
    root = Path(tempfile.mkdtemp(prefix="ipck-")) if own_dir else Path(ipython_dir)
    name = f"kit-tmp-{uuid.uuid4().hex[:8]}"
    try:
        extra = {} if heartbeat_ms is None else {"heartbeat_ms": heartbeat_ms}
        spec = build_spec(name, preset="local", scheme=scheme, hwm=hwm, engines=engines or os.cpu_count() or 1, **extra)
        write_profile(plan_write(spec, root))
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
        shutil.rmtree(root if own_dir else profile_dir_for(name, root), ignore_errors=True)
