"""`doctor`: what stands between a profile's engines and its controller, as checks per engine set."""

from __future__ import annotations

import os
from typing import Sequence

from ipcluster_kit.checks import Check
from ipcluster_kit.cluster.bringup import plan_engine_sets
from ipcluster_kit.errors import BadInput
from ipcluster_kit.profile.store import read_spec
from ipcluster_kit.validate import check_seconds

DEFAULT_MAX_CLOCK_SKEW = 1.0


def doctor(
    name: str,
    ipython_dir: str | os.PathLike | None = None,
    *,
    hosts: Sequence[str] | None = None,
    ssh_config: Sequence[str] | None = None,
    accept_new_host_keys: bool = False,
    remote_python: str | None = None,
    connect_timeout: float | None = None,
    max_clock_skew: float = DEFAULT_MAX_CLOCK_SKEW,
) -> list[Check]:
    """Every check of the profile's engine sets (SSH hosts, or ``hosts`` instead; a batch system):
    the controller's side, then each host's or node's. BadInput when there is nothing to check."""
    check_seconds("--max-clock-skew", max_clock_skew, allow_zero=True)
    if connect_timeout is not None:
        check_seconds("--connect-timeout", connect_timeout)
    spec, profile_dir = read_spec(name, ipython_dir)
    if hosts or spec.hosts:
        from ipcluster_kit.cluster.enginesets.ssh import SSHEngines

        sets = [SSHEngines.for_hosts(spec, profile_dir, hosts, ssh_config=ssh_config, remote_python=remote_python,
                                     accept_new_host_keys=accept_new_host_keys, connect_timeout=connect_timeout)]  # fmt: skip
    elif spec.launcher in ("local", "ssh"):
        sets = []
    else:
        sets = plan_engine_sets(spec, profile_dir, engines=None)
    checks = [check for engine_set in sets for check in engine_set.doctor(max_clock_skew=max_clock_skew)]
    if not checks:
        raise BadInput(f"profile {name!r} has no remote hosts; pass --host [user@]host[:port][=N]")
    return checks
