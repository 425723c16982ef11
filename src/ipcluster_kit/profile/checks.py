"""The checks every profile spec passes: each setting, and how they fit together.

``check_spec`` ends ``build_spec`` and also runs on a spec read back from a record or changed
with ``ProfileSpec.with_changes``: whatever reaches a config file or a job script passed it.
It reads a spec's fields and needs nothing else from ``spec.py`` (which imports it).
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from typing import Any

from ipcluster_kit import netinfo
from ipcluster_kit.errors import BadInput
from ipcluster_kit.profile.addresses import parse_ports, validate_bind_ip, validate_location
from ipcluster_kit.profile.hosts import HostSpec
from ipcluster_kit.profile.launchers import BATCH_LAUNCHERS, engine_launcher_names
from ipcluster_kit.validate import check_count, check_text

# The task schemes of ipyparallel's TaskScheduler. DEFAULT_SCHEME is ipyparallel's own default
# and the one constant every layer uses for "the scheme a profile gets when none is asked for".
SCHEMES = ("lru", "leastload", "weighted", "plainrandom", "twobin", "pure")
DEFAULT_SCHEME = "leastload"
# "pure" hands tasks out with ZeroMQ's own load balancing: there is no hwm to set.
SCHEMES_WITHOUT_HWM = ("pure",)

# Sanity bounds: past these a value is a typo, not a plan.
MAX_ENGINES = 100_000
MAX_HWM = 2**31 - 1
MIN_HEARTBEAT_MS, MAX_HEARTBEAT_MS = 50, 3_600_000
_PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_WALLTIME = re.compile(r"^(\d+-)?(\d{1,3}):(\d{2})(?::(\d{2}))?$")
_ONE_WORD = re.compile(r"^\S+$")


def validate_profile_name(name: str) -> str:
    if not name or "/" in name or "\\" in name or os.sep in name:
        raise BadInput(f"invalid profile name {name!r}: it must not contain a path separator")
    if not _PROFILE_NAME.match(name):
        raise BadInput(f"invalid profile name {name!r}: use letters, digits, '.', '_' and '-'")
    return name


def _check_host(host: HostSpec) -> None:
    # A host read back from a record must be one that HostSpec.parse itself would produce.
    if not isinstance(host.host, str) or HostSpec.parse(str(host)) != replace(host, remote_python=None):
        raise BadInput(f"invalid host {host.host!r} (expected [user@]host[:port][=N])")
    if host.remote_python is not None:
        check_text("remote_python", host.remote_python)


def _check_batch_word(option: str, value: str) -> None:
    check_text(option, value)
    if not _ONE_WORD.match(value):
        raise BadInput(f"invalid {option} {value!r}: it must be one word (no spaces)")


def check_walltime(value: str) -> str:
    """A time limit as Slurm and PBS read it: ``[D-]HH:MM:SS`` (or ``MM:SS``), each field in range."""
    check_text("--walltime", value)
    match = _WALLTIME.match(value)
    if not match:
        raise BadInput(f"invalid --walltime {value!r} (expected HH:MM:SS or D-HH:MM:SS)")
    days, first, minutes, seconds = match.groups()
    fields = [int(minutes)] + ([int(seconds)] if seconds is not None else [])
    if any(v >= 60 for v in fields) or (days is not None and int(first) >= 24):
        raise BadInput(f"invalid --walltime {value!r}: minutes and seconds must be under 60 (hours under 24 after days)")
    return value


# The #SBATCH options the kit writes from its own fields: an extra line must not set them again.
_KIT_SBATCH = ("--ntasks", "-n", "--nodes", "-N", "--ntasks-per-node", "--partition", "-p", "--time", "-t",
               "--account", "-A", "--job-name", "-J", "--export", "--output", "-o")  # fmt: skip


def _check_batch_option(value: str) -> str:
    check_text("--batch-option", value)
    if not value.startswith("-"):
        raise BadInput(f"invalid --batch-option {value!r}: give an sbatch option, e.g. --qos=debug (it becomes #SBATCH TEXT)")
    name = re.split(r"[=\s]", value, maxsplit=1)[0]
    if not name.startswith("--"):
        name = name[:2]  # a short option may carry its value: -n4
    if name in _KIT_SBATCH:
        raise BadInput(f"invalid --batch-option {value!r}: {name} is set by the profile itself"
                       " (use --engines, --nodes, --tasks-per-node, --partition, --walltime, --account)")  # fmt: skip
    return value


def _check_slurm_fields(spec: Any) -> None:
    """nodes, tasks_per_node, batch_options, mpi: for the slurm launcher, and consistent with --engines."""
    given = [option for option, value in (("--nodes", spec.nodes), ("--tasks-per-node", spec.tasks_per_node),
             ("--batch-option", spec.batch_options), ("--mpi", spec.mpi)) if value]  # fmt: skip
    if given and spec.launcher != "slurm":
        raise BadInput(f"{given[0]} is for the slurm launcher, not {spec.launcher!r} (use --preset slurm)")
    if not isinstance(spec.mpi, bool):
        raise BadInput(f"invalid mpi setting {spec.mpi!r}")
    for option in spec.batch_options:
        _check_batch_option(option)
    if spec.nodes is not None:
        check_count("--nodes", spec.nodes, 1, maximum=MAX_ENGINES)
        if spec.engines < spec.nodes:
            raise BadInput(f"--engines {spec.engines} is fewer than --nodes {spec.nodes}: every node runs at least one engine")
    if spec.tasks_per_node is not None:
        check_count("--tasks-per-node", spec.tasks_per_node, 1, maximum=MAX_ENGINES)
        if spec.nodes is not None and spec.engines != spec.nodes * spec.tasks_per_node:
            raise BadInput(f"--engines {spec.engines} disagrees with --nodes {spec.nodes} x --tasks-per-node"
                           f" {spec.tasks_per_node} (= {spec.nodes * spec.tasks_per_node})")  # fmt: skip


def check_spec(spec: Any) -> Any:
    """Check every setting of ``spec`` and how they fit together; BadInput naming the first bad one.

    ``build_spec`` ends here, and so does every spec read back from a record or changed with
    ``with_changes``: whatever reaches a config file or a job script has passed these checks.
    """
    validate_profile_name(spec.name)
    if spec.ip != validate_bind_ip(spec.ip):
        raise BadInput(f"invalid --ip {spec.ip!r}: write the address in its usual form")
    validate_location(spec.location)
    if netinfo.is_listen_all(spec.ip) and netinfo.is_loopback(spec.location):
        raise BadInput(
            f"invalid --location {spec.location!r}: the controller listens beyond localhost, so engines on"
            " other hosts need a routable address, not a loopback one"
        )
    if spec.ports is not None:
        parse_ports(f"{spec.ports[0]}-{spec.ports[1]}")
    if spec.scheme not in SCHEMES:
        raise BadInput(f"unknown scheme {spec.scheme!r} (choose from {', '.join(SCHEMES)})")
    if spec.hwm is not None:
        check_count("--hwm", spec.hwm, 0, maximum=MAX_HWM)
        if spec.scheme in SCHEMES_WITHOUT_HWM:
            raise BadInput(
                f"--hwm {spec.hwm} does not apply to the {spec.scheme!r} scheme (ZeroMQ balances its tasks;"
                " it has no hwm): drop --hwm or choose another scheme"
            )
    check_count("heartbeat period (ms)", spec.heartbeat_ms, MIN_HEARTBEAT_MS, maximum=MAX_HEARTBEAT_MS)
    valid_launchers = engine_launcher_names()
    if spec.launcher not in valid_launchers:
        raise BadInput(f"unknown launcher {spec.launcher!r} (choose from {', '.join(valid_launchers)})")
    check_count("--engines", spec.engines, 1, maximum=MAX_ENGINES)
    for host in spec.hosts:
        _check_host(host)
    is_ssh = spec.launcher in ("ssh", "sshproxy")
    if is_ssh and not spec.hosts:
        raise BadInput(f"launcher {spec.launcher!r} needs at least one --host [user@]host[:port][=N]")
    if spec.hosts and not is_ssh:
        raise BadInput(f"--host is for the ssh launcher, not {spec.launcher!r} (use --launcher ssh or --preset ssh)")
    if spec.hosts and sum(h.engines for h in spec.hosts) != spec.engines:
        raise BadInput(f"--engines {spec.engines} disagrees with the hosts' engine counts")
    check_text("--remote-python", spec.remote_python)
    if spec.remote_profile_dir is not None:
        check_text("--remote-profile-dir", spec.remote_profile_dir)
        if not spec.remote_profile_dir.startswith("/"):
            raise BadInput(f"invalid --remote-profile-dir {spec.remote_profile_dir!r}: it must be an absolute path")
    if spec.ssh_config is not None:
        check_text("--ssh-config", spec.ssh_config)
    if not spec.is_batch and (spec.queue or spec.walltime or spec.account):
        raise BadInput(
            f"--queue/--walltime/--account are for batch launchers ({', '.join(BATCH_LAUNCHERS)}), not {spec.launcher!r}"
        )
    for option, value in (("--queue", spec.queue), ("--account", spec.account)):
        if value is not None:
            _check_batch_word(option, value)
    if spec.walltime is not None:
        check_walltime(spec.walltime)
    _check_slurm_fields(spec)
    if not isinstance(spec.encrypt, bool):
        raise BadInput(f"invalid encrypt setting {spec.encrypt!r}")
    return spec
