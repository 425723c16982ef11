"""The profile spec: every setting a profile is made from, validated before anything is written.

A spec is built from a preset (a small TOML file in ``profiles/presets``) overlaid with the
user's options, then checked as a whole. A record of it (``ipcluster_kit.toml``) is written
beside the ipyparallel config files so that later commands read the settings back instead of
parsing Python config.
"""

from __future__ import annotations

import os
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
from ipcluster_kit.profile.checks import (  # noqa: F401 (the constants are part of this module's API)
    DEFAULT_SCHEME,
    MAX_ENGINES,
    MAX_HEARTBEAT_MS,
    MAX_HWM,
    MIN_HEARTBEAT_MS,
    SCHEMES,
    SCHEMES_WITHOUT_HWM,
    check_spec,
    validate_profile_name,
)
from ipcluster_kit.profile.hosts import HostSpec
from ipcluster_kit.profile.launchers import BATCH_LAUNCHERS
from ipcluster_kit.resources import presets_dir
from ipcluster_kit.validate import check_count, check_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# What ipyparallel's C scheduler gives up against the Python schemes; said wherever pure is chosen.
PURE_TRADEOFFS = (
    "no hwm (every task is dealt out at once), no report of a crashed engine (its tasks never finish),"
    " and the engine-id gap (a client that saw engine 1 register before engine 0 refuses load-balanced tasks)"
)

# How often the controller's heart monitor pings engines (ms). An engine's registration
# completes on a heartbeat, so this bounds bring-up time; ipyparallel's default is 3000.
# Measured in benchmarks/bench_bringup.py: see benchmarks/README.md.
DEFAULT_HEARTBEAT_MS = 500

RECORD_FILE = "ipcluster_kit.toml"
RECORD_VERSION = 1



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

    Raises BadInput naming the first bad value (the steps below check in this order); nothing is
    written by this function.
    """
    validate_profile_name(name)
    pick = _Overlay(preset or ("ssh" if hosts else "local"))
    ip_value = validate_bind_ip(str(pick(ip, "ip")))
    hwm_value = pick(hwm, "hwm")
    if hwm_value is not None:
        hwm_value = check_count("--hwm", hwm_value, 0, maximum=MAX_HWM)
    port_range = parse_ports(ports) if ports is not None else pick.ports()
    host_specs = tuple(HostSpec.parse(h) for h in (hosts or []))
    engine_count = _engine_count(host_specs, engines, nodes, tasks_per_node, pick.values)
    location_value = _location(ip_value, location or pick.values.get("location"))
    launcher_value = pick(launcher, "launcher")
    batch = _batch_settings(pick, launcher_value, queue=queue, walltime=walltime, account=account)
    ssh_config_path = _ssh_config_path(ssh_config, host_specs)
    heartbeat = check_count("heartbeat period (ms)", pick(heartbeat_ms, "heartbeat_ms"), MIN_HEARTBEAT_MS, maximum=MAX_HEARTBEAT_MS)
    return check_spec(
        ProfileSpec(
            name=name, preset=pick.preset, description=pick.values.get("description", ""),
            ip=ip_value, location=location_value, ports=port_range, encrypt=bool(pick(encrypt, "encrypt")),
            scheme=pick(scheme, "scheme"), hwm=hwm_value, heartbeat_ms=heartbeat,
            launcher=launcher_value, engines=engine_count, hosts=host_specs, ssh_config=ssh_config_path,
            remote_python=pick(remote_python, "remote_python"),
            remote_profile_dir=remote_profile_dir or pick.values.get("remote_profile_dir"),
            nodes=pick(nodes, "nodes"), tasks_per_node=pick(tasks_per_node, "tasks_per_node"), mpi=bool(pick(mpi, "mpi")),
            batch_options=tuple(pick(batch_options, "batch_options")), **batch,
        )
    )  # fmt: skip


class _Overlay:
    """A preset's settings under the user's options: an option given wins, else the preset's value,
    else the default of the ``ProfileSpec`` field ``key``."""

    def __init__(self, preset: str):
        self.preset = preset
        self.values = load_preset(preset)

    def __call__(self, option: Any, key: str) -> Any:
        if option is not None:
            return option
        return self.values.get(key, ProfileSpec.__dataclass_fields__[key].default)

    def ports(self) -> tuple[int, int] | None:
        return tuple(self.values["ports"]) if self.values.get("ports") else None


def _engine_count(
    hosts: tuple[HostSpec, ...], engines: int | None, nodes: int | None, tasks_per_node: int | None, preset: dict
) -> int:
    """The engine count: the hosts' sum (``--engines`` must agree), a Slurm job's shape, ``--engines`` or the preset's."""
    if hosts:
        total = sum(h.engines for h in hosts)
        if engines is not None and engines != total:
            raise BadInput(
                f"--engines {engines} disagrees with the hosts, which ask for {total} engines in all;"
                " give the count per host as host=N"
            )
        count = total
    elif engines is None and nodes is not None:  # a Slurm job's shape: tasks per node (default 1) on each node
        count = check_count("--nodes", nodes, 1) * check_count("--tasks-per-node", tasks_per_node or 1, 1)
    else:
        count = engines if engines is not None else preset.get("engines", os.cpu_count() or 1)
    return check_count("--engines", count, 1, maximum=MAX_ENGINES)


def _location(ip: str, location: str | None) -> str:
    """The address engines connect to: ``--location`` (or the preset's), else the listening address,
    else (listening on every interface) the default route's address."""
    if location is not None:
        location = validate_location(location)
    if netinfo.is_listen_all(ip):
        if location is None:
            location = netinfo.routable_address()
            if location is None:
                raise BadInput(
                    "--ip 0.0.0.0 needs an address engines can reach, and no default-route interface was"
                    " found: pass --location ADDRESS"
                )
    elif location is None:
        location = ip
    return location


def _batch_settings(pick: _Overlay, launcher: str, **given: str | None) -> dict[str, str | None]:
    """``queue``, ``walltime`` and ``account``: refused for a launcher that is not a batch system."""
    if launcher not in BATCH_LAUNCHERS:
        if any(given.values()):
            named = ", ".join(f"--{n} {v!r}" for n, v in given.items() if v)
            raise BadInput(f"{named}: only for batch launchers ({', '.join(BATCH_LAUNCHERS)}), not {launcher!r}")
        return dict.fromkeys(given)
    return {key: pick(value, key) for key, value in given.items()}


def _ssh_config_path(ssh_config: str | None, hosts: tuple[HostSpec, ...]) -> str | None:
    """``--ssh-config`` as an absolute path: only with engine hosts, and only a readable file."""
    if ssh_config is None:
        return None
    check_text("--ssh-config", ssh_config)
    if not hosts:
        raise BadInput("--ssh-config is for profiles with --host engine hosts")
    if not os.path.isfile(ssh_config):
        raise BadInput(f"--ssh-config {ssh_config!r} is not a readable file")
    return os.path.abspath(ssh_config)
