"""The profile spec: every setting a profile is made from, validated before anything is written.

A spec is built from a preset (a small TOML file in ``profiles/presets``) overlaid with the
user's options, then checked as a whole. A record of it (``ipcluster_kit.toml``) is written
beside the ipyparallel config files so that later commands read the settings back instead of
parsing Python config.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import tomli_w

from ipcluster_kit import netinfo
from ipcluster_kit.errors import BadInput
from ipcluster_kit.profile.addresses import (  # noqa: F401 (CONTROLLER_PORT_COUNT, parse_ports: part of this API)
    CONTROLLER_PORT_COUNT,
    parse_ports,
    validate_bind_ip,
    validate_location,
)
from ipcluster_kit.profile.hosts import HostSpec
from ipcluster_kit.profile.launchers import BATCH_LAUNCHERS, engine_launcher_names
from ipcluster_kit.resources import presets_dir
from ipcluster_kit.validate import check_count, check_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# The task schemes of ipyparallel's TaskScheduler. DEFAULT_SCHEME is ipyparallel's own default
# and the one constant every layer uses for "the scheme a profile gets when none is asked for".
SCHEMES = ("lru", "leastload", "weighted", "plainrandom", "twobin", "pure")
DEFAULT_SCHEME = "leastload"
# "pure" hands tasks out with ZeroMQ's own load balancing: there is no hwm to set.
SCHEMES_WITHOUT_HWM = ("pure",)
# What ipyparallel's C scheduler gives up against the Python schemes; said wherever pure is chosen.
PURE_TRADEOFFS = (
    "no hwm (every task is dealt out at once), no report of a crashed engine (its tasks never finish),"
    " and the engine-id gap (a client that saw engine 1 register before engine 0 refuses load-balanced tasks)"
)

# How often the controller's heart monitor pings engines (ms). An engine's registration
# completes on a heartbeat, so this bounds bring-up time; ipyparallel's default is 3000.
# Measured in benchmarks/bench_bringup.py: see benchmarks/README.md.
DEFAULT_HEARTBEAT_MS = 500

# Sanity bounds: past these a value is a typo, not a plan.
MAX_ENGINES = 100_000
MAX_HWM = 2**31 - 1
MIN_HEARTBEAT_MS, MAX_HEARTBEAT_MS = 50, 3_600_000

RECORD_FILE = "ipcluster_kit.toml"
RECORD_VERSION = 1

_PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_WALLTIME = re.compile(r"^(\d+-)?(\d{1,3}):(\d{2})(?::(\d{2}))?$")
_ONE_WORD = re.compile(r"^\S+$")


def preset_names() -> list[str]:
    return sorted(p.stem for p in presets_dir().glob("*.toml"))


def load_preset(name: str) -> dict[str, Any]:
    path = presets_dir() / f"{name}.toml"
    if "/" in name or not path.is_file():
        raise BadInput(f"unknown preset {name!r} (choose from {', '.join(preset_names())})")
    return tomllib.loads(path.read_text())


def resolve_ipython_dir(ipython_dir: str | os.PathLike | None = None) -> Path:
    """``--ipython-dir``, else ``$IPYTHONDIR``, else ``~/.ipython``: IPython's own order."""
    if ipython_dir:
        return Path(ipython_dir).expanduser().absolute()
    env = os.environ.get("IPYTHONDIR")
    if env:
        return Path(env).expanduser().absolute()
    return Path.home() / ".ipython"


def validate_profile_name(name: str) -> str:
    if not name or "/" in name or "\\" in name or os.sep in name:
        raise BadInput(f"invalid profile name {name!r}: it must not contain a path separator")
    if not _PROFILE_NAME.match(name):
        raise BadInput(f"invalid profile name {name!r}: use letters, digits, '.', '_' and '-'")
    return name


def profile_dir_for(name: str, ipython_dir: str | os.PathLike | None = None) -> Path:
    return resolve_ipython_dir(ipython_dir) / f"profile_{validate_profile_name(name)}"


@dataclass(frozen=True)
class ProfileSpec:
    """Every setting of a profile. Build it with :func:`build_spec`, which validates it."""

    name: str
    preset: str = "local"
    ip: str = "127.0.0.1"
    location: str = "127.0.0.1"
    ports: tuple[int, int] | None = None
    scheme: str = DEFAULT_SCHEME
    hwm: int | None = None
    heartbeat_ms: int = DEFAULT_HEARTBEAT_MS
    encrypt: bool = False
    launcher: str = "local"
    engines: int = 1
    hosts: tuple[HostSpec, ...] = ()
    remote_python: str = "python3"
    remote_profile_dir: str | None = None
    ssh_config: str | None = None
    queue: str | None = None
    walltime: str | None = None
    account: str | None = None
    # Slurm: the job's shape and extra #SBATCH lines; mpi runs the engines as one MPI world (srun --mpi=pmi2).
    nodes: int | None = None
    tasks_per_node: int | None = None
    batch_options: tuple[str, ...] = ()
    mpi: bool = False
    description: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def listens_beyond_localhost(self) -> bool:
        return not netinfo.is_loopback(self.ip)

    @property
    def is_batch(self) -> bool:
        return self.launcher in BATCH_LAUNCHERS

    def exposure_warning(self) -> str | None:
        """The warning owed when the controller is reachable from other machines without encryption."""
        if not self.listens_beyond_localhost or self.encrypt:
            return None
        where = "every interface" if netinfo.is_listen_all(self.ip) else self.ip
        ports = f"ports {self.ports[0]}-{self.ports[1]}" if self.ports else "random ports"
        return (
            f"profile {self.name!r} listens on {where} ({ports}) without encryption: anyone who can reach "
            "those ports and obtains the connection file's HMAC key can run code as you, and all traffic "
            "(code, data, results) crosses the network in clear text. Use --encrypt (CurveZMQ)."
        )

    def scheme_warning(self) -> str | None:
        """The one-line warning owed when the profile uses the ``pure`` scheme."""
        if self.scheme != "pure":
            return None
        return f"profile {self.name!r} uses the pure scheme: fast, but {PURE_TRADEOFFS}; {DEFAULT_SCHEME} (the default) has none of these"

    def to_record(self) -> dict[str, Any]:
        """The machine-readable record written to ``ipcluster_kit.toml`` (TOML has no None)."""
        data = asdict(self)
        data["hosts"] = [h.to_dict() for h in self.hosts]
        data["ports"] = list(self.ports) if self.ports else None
        data["batch_options"] = list(self.batch_options)
        data.pop("extra")
        data.pop("description")
        record = {k: v for k, v in data.items() if v is not None}
        return {"record_version": RECORD_VERSION, **record}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "ProfileSpec":
        """The spec a record describes, checked like ``build_spec`` checks options.

        ValueError naming the field when the record is not one the kit wrote (a wrong type, a
        value ``init`` would refuse): a hand-edited or corrupt record never reaches a config file.
        """
        if not isinstance(record, dict):
            raise ValueError("not a table")
        data = {k: v for k, v in record.items() if k in cls.__dataclass_fields__ and k not in ("extra", "description")}
        for key, kinds in _RECORD_TYPES.items():
            if key in data and not (isinstance(data[key], kinds) and not (isinstance(data[key], bool) and bool not in kinds)):
                raise ValueError(f"field {key!r} has the wrong type ({type(data[key]).__name__})")
        missing = [k for k in ("name", "launcher", "engines") if k not in data]
        if missing:
            raise ValueError(f"missing field {missing[0]!r}")
        hosts = record.get("hosts", [])
        if not isinstance(hosts, list) or not all(isinstance(h, dict) for h in hosts):
            raise ValueError("field 'hosts' must be a list of tables")
        try:
            data["hosts"] = tuple(HostSpec.from_dict(h) for h in hosts)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"bad entry in 'hosts' ({exc})") from None
        if "batch_options" in data:
            options = data["batch_options"]
            if not (isinstance(options, list) and all(isinstance(o, str) for o in options)):
                raise ValueError("field 'batch_options' must be a list of strings")
            data["batch_options"] = tuple(options)
        if "ports" in data:
            ports = data["ports"]
            if not (isinstance(ports, list) and len(ports) == 2 and all(type(p) is int for p in ports)):
                raise ValueError("field 'ports' must be a list of two port numbers")
            data["ports"] = tuple(ports)
        try:
            return check_spec(cls(**data))
        except BadInput as exc:
            raise ValueError(exc.message) from None

    def with_changes(self, **changes: Any) -> "ProfileSpec":
        """A copy with some settings changed, checked as a whole again."""
        return check_spec(replace(self, **changes))


# The types of a record's fields, as TOML gives them back.
_RECORD_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,), "preset": (str,), "ip": (str,), "location": (str,), "scheme": (str,), "hwm": (int,),
    "heartbeat_ms": (int,), "encrypt": (bool,), "launcher": (str,), "engines": (int,), "remote_python": (str,),
    "remote_profile_dir": (str,), "ssh_config": (str,), "queue": (str,), "walltime": (str,), "account": (str,),
    "nodes": (int,), "tasks_per_node": (int,), "batch_options": (list,), "mpi": (bool,),
}  # fmt: skip


def record_text(spec: ProfileSpec) -> str:
    """The text of the profile's record file (``ipcluster_kit.toml``)."""
    header = (
        f"# ipcluster-kit's record of profile {spec.name!r}: the settings its config files were made from.\n"
        "# Later kit commands read it back; edit the profile with `ipcluster-kit init --force`.\n"
    )
    return header + tomli_w.dumps(spec.to_record())


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


def _check_slurm_fields(spec: ProfileSpec) -> None:
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


def check_spec(spec: ProfileSpec) -> ProfileSpec:
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


def build_spec(
    name: str,
    *,
    preset: str | None = None,
    ip: str | None = None,
    location: str | None = None,
    ports: str | None = None,
    scheme: str | None = None,
    hwm: int | None = None,
    launcher: str | None = None,
    engines: int | None = None,
    hosts: list[str] | None = None,
    encrypt: bool | None = None,
    remote_python: str | None = None,
    remote_profile_dir: str | None = None,
    ssh_config: str | None = None,
    queue: str | None = None,
    walltime: str | None = None,
    account: str | None = None,
    heartbeat_ms: int | None = None,
    nodes: int | None = None,
    tasks_per_node: int | None = None,
    batch_options: list[str] | tuple[str, ...] | None = None,
    mpi: bool | None = None,
) -> ProfileSpec:
    """Overlay the user's options on a preset and validate the result as a whole.

    Raises BadInput naming the first bad value; nothing is written by this function.
    """
    validate_profile_name(name)
    preset_name = preset or ("ssh" if hosts else "local")
    base = load_preset(preset_name)

    def pick(option: Any, key: str, default: Any) -> Any:
        return option if option is not None else base.get(key, default)

    ip_value = validate_bind_ip(str(pick(ip, "ip", "127.0.0.1")))
    hwm_value = pick(hwm, "hwm", None)
    if hwm_value is not None:
        hwm_value = check_count("--hwm", hwm_value, 0, maximum=MAX_HWM)
    launcher_value = pick(launcher, "launcher", "local")
    port_range = parse_ports(ports) if ports is not None else (tuple(base["ports"]) if base.get("ports") else None)

    host_specs = tuple(HostSpec.parse(h) for h in (hosts or []))
    if host_specs:
        total = sum(h.engines for h in host_specs)
        if engines is not None and engines != total:
            raise BadInput(
                f"--engines {engines} disagrees with the hosts, which ask for {total} engines in all;"
                " give the count per host as host=N"
            )
        engine_count = total
    elif engines is None and nodes is not None and tasks_per_node is not None:
        engine_count = check_count("--nodes", nodes, 1) * check_count("--tasks-per-node", tasks_per_node, 1)
    else:
        engine_count = engines if engines is not None else base.get("engines", os.cpu_count() or 1)
    engine_count = check_count("--engines", engine_count, 1, maximum=MAX_ENGINES)

    location_value = location or base.get("location")
    if location_value is not None:
        location_value = validate_location(location_value)
    if netinfo.is_listen_all(ip_value):
        if location_value is None:
            location_value = netinfo.routable_address()
            if location_value is None:
                raise BadInput(
                    "--ip 0.0.0.0 needs an address engines can reach, and no default-route interface was"
                    " found: pass --location ADDRESS"
                )
    elif location_value is None:
        location_value = ip_value

    is_batch = launcher_value in BATCH_LAUNCHERS
    if not is_batch and (queue or walltime or account):
        given = ", ".join(f"--{n} {v!r}" for n, v in (("queue", queue), ("walltime", walltime), ("account", account)) if v)
        raise BadInput(f"{given}: only for batch launchers ({', '.join(BATCH_LAUNCHERS)}), not {launcher_value!r}")
    queue_value, walltime_value, account_value = (
        (pick(queue, "queue", None), pick(walltime, "walltime", None), pick(account, "account", None))
        if is_batch
        else (None, None, None)
    )

    if ssh_config is not None:
        check_text("--ssh-config", ssh_config)
        if not host_specs:
            raise BadInput("--ssh-config is for profiles with --host engine hosts")
        if not os.path.isfile(ssh_config):
            raise BadInput(f"--ssh-config {ssh_config!r} is not a readable file")
        ssh_config = os.path.abspath(ssh_config)

    return check_spec(
        ProfileSpec(
            name=name,
            preset=preset_name,
            ip=ip_value,
            location=location_value,
            ports=port_range,
            scheme=pick(scheme, "scheme", DEFAULT_SCHEME),
            hwm=hwm_value,
            heartbeat_ms=check_count(
                "heartbeat period (ms)", pick(heartbeat_ms, "heartbeat_ms", DEFAULT_HEARTBEAT_MS),
                MIN_HEARTBEAT_MS, maximum=MAX_HEARTBEAT_MS,
            ),  # fmt: skip
            encrypt=bool(pick(encrypt, "encrypt", False)),
            launcher=launcher_value,
            engines=engine_count,
            hosts=host_specs,
            remote_python=pick(remote_python, "remote_python", "python3"),
            remote_profile_dir=remote_profile_dir or base.get("remote_profile_dir"),
            ssh_config=ssh_config,
            queue=queue_value,
            walltime=walltime_value,
            account=account_value,
            nodes=pick(nodes, "nodes", None),
            tasks_per_node=pick(tasks_per_node, "tasks_per_node", None),
            batch_options=tuple(pick(batch_options, "batch_options", ())),
            mpi=bool(pick(mpi, "mpi", False)),
            description=base.get("description", ""),
        )
    )
