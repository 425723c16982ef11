"""`bootstrap`: add SSH engines to a cluster that is up; on failure the cluster is left as it was."""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Sequence

from ipcluster_kit.cluster.client import wait_for_engines
from ipcluster_kit.cluster.enginesets.ssh import SSHEngines, SSHRecord
from ipcluster_kit.cluster.lock import profile_lock
from ipcluster_kit.cluster.running import is_up, load_state
from ipcluster_kit.errors import KitError
from ipcluster_kit.profile.store import connection_files, read_spec
from ipcluster_kit.validate import check_seconds

DEFAULT_TIMEOUT = 60.0


def add_engines(
    name: str,
    ipython_dir: str | os.PathLike | None = None,
    *,
    hosts: Sequence[str] | None = None,
    ssh_config: Sequence[str] | None = None,
    accept_new_host_keys: bool = False,
    connect_timeout: float | None = None,
    remote_python: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    progress: Callable[[str], None] = lambda message: None,
) -> tuple[SSHRecord, int]:
    """Start engines on ``hosts`` (default: the profile's) for the running cluster; return once they
    registered: the new set's record and the cluster's engine count. On any failure the engines this
    call started are stopped and the state is as before (KitError names every failed host)."""
    check_seconds("--timeout", timeout)
    spec, profile_dir = read_spec(name, ipython_dir)
    if remote_python:
        spec = spec.with_changes(remote_python=remote_python)
    deadline = time.monotonic() + timeout
    engine_set = SSHEngines.for_hosts(spec, profile_dir, hosts, ssh_config=ssh_config, remote_python=remote_python,
                                      accept_new_host_keys=accept_new_host_keys, connect_timeout=connect_timeout,
                                      deadline=deadline)  # fmt: skip
    engine_set.validate()
    with profile_lock(profile_dir, f"ipcluster-kit bootstrap {name}", timeout, waiting=progress):
        state = load_state(name, profile_dir)
        if not is_up(state):
            raise KitError(f"cluster {name!r} is not up (start it with `ipcluster-kit up {name}`)")
        expected, record = state.expected_engines, None

        def keep(new: Any) -> None:
            nonlocal record
            record = new
            state.put(new)

        try:
            engine_set.start(on_record=keep)
            if record is not None and record.failures:
                raise KitError("; ".join(record.failures))
            state.expected_engines = expected + (record.engines if record else 0)
            state.save()
            wait_for_engines(connection_files(profile_dir)["client"], state.expected_engines,
                             max(deadline - time.monotonic(), 0.5), progress=progress)  # fmt: skip
        except BaseException:
            if record is not None:  # stop what this call started; the cluster stays as it was
                engine_set.stop(record, timeout=10.0)
                state.engine_sets = [r for r in state.engine_sets if r is not record]
            state.expected_engines = expected
            state.save()
            raise
        return record, state.expected_engines
