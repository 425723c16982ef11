"""The profile spec: every setting a profile is made from, validated before anything is written.

A spec is built from a preset (a small TOML file in ``profiles/presets``) overlaid with the
user's options, then checked as a whole. A record of it (``ipcluster_kit.toml``) is written
beside the ipyparallel config files so that later commands read the settings back instead of
parsing Python config.
"""

from __future__ import annotations

import ipaddress
import os
import re
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from ipcluster_kit import netinfo
from ipcluster_kit.errors import BadInput
from ipcluster_kit.profile.hosts import HostSpec, is_valid_hostname
from ipcluster_kit.profile.launchers import BATCH_LAUNCHERS, engine_launcher_names
from ipcluster_kit.resources import presets_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SCHEMES = ("lru", "leastload", "weighted", "plainrandom", "twobin", "pure")
DEFAULT_SCHEME = "leastload"

# Sockets ipyparallel 9's controller binds with the default broadcast-scheduler depth of 1,
# counted from a real controller started with a port range (tests/test_profile_e2e.py checks it).
CONTROLLER_PORT_COUNT = 18

# How often the controller's heart monitor pings engines (ms). An engine's registration
# completes on a heartbeat, so this bounds bring-up time; ipyparallel's default is 3000.
# Measured in benchmarks/bench_bringup.py: see benchmarks/README.md.
DEFAULT_HEARTBEAT_MS = 500

RECORD_FILE = "ipcluster_kit.toml"
RECORD_VERSION = 1

_PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_WALLTIME = re.compile(r"^(\d+-)?\d{1,3}:\d{2}(:\d{2})?$")


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


def parse_ports(text: str) -> tuple[int, int]:
    """``A-B`` to a port range with enough ports for the controller."""
    match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", text or "")
    if not match:
        raise BadInput(f"malformed port range {text!r} (expected A-B, e.g. 10100-10119)")
    first, last = int(match.group(1)), int(match.group(2))
    if not (1 <= first <= 65535 and 1 <= last <= 65535) or first > last:
        raise BadInput(f"invalid port range {text!r}: ports must be 1-65535 and A <= B")
    count = last - first + 1
    if count < CONTROLLER_PORT_COUNT:
        raise BadInput(
            f"port range {text!r} has {count} ports; the controller needs {CONTROLLER_PORT_COUNT}"
            f" (e.g. {first}-{first + CONTROLLER_PORT_COUNT - 1})"
        )
    return first, last


def _validate_ip(ip: str) -> str:
    if ip == "*":
        return "0.0.0.0"
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        raise BadInput(f"invalid IP address {ip!r} for --ip (e.g. 127.0.0.1, 0.0.0.0 or 192.168.1.10)") from None


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

    def to_record(self) -> dict[str, Any]:
        """The machine-readable record written to ``ipcluster_kit.toml`` (TOML has no None)."""
        data = asdict(self)
        data["hosts"] = [h.to_dict() for h in self.hosts]
        data["ports"] = list(self.ports) if self.ports else None
        data.pop("extra")
        data.pop("description")
        record = {k: v for k, v in data.items() if v is not None}
        return {"record_version": RECORD_VERSION, **record}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "ProfileSpec":
        data = {k: v for k, v in record.items() if k in cls.__dataclass_fields__ and k != "extra"}
        data["hosts"] = tuple(HostSpec.from_dict(h) for h in record.get("hosts", []))
        if record.get("ports"):
            data["ports"] = tuple(record["ports"])
        return cls(**data)

    def with_changes(self, **changes: Any) -> "ProfileSpec":
        return replace(self, **changes)


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
) -> ProfileSpec:
    """Overlay the user's options on a preset and validate the result as a whole.

    Raises BadInput naming the first bad value; nothing is written by this function.
    """
    validate_profile_name(name)
    preset_name = preset or ("ssh" if hosts else "local")
    base = load_preset(preset_name)

    def pick(option: Any, key: str, default: Any) -> Any:
        return option if option is not None else base.get(key, default)

    ip_value = _validate_ip(str(pick(ip, "ip", "127.0.0.1")))

    scheme_value = pick(scheme, "scheme", DEFAULT_SCHEME)
    if scheme_value not in SCHEMES:
        raise BadInput(f"unknown scheme {scheme_value!r} (choose from {', '.join(SCHEMES)})")

    hwm_value = pick(hwm, "hwm", None)
    if hwm_value is not None and int(hwm_value) < 0:
        raise BadInput(f"invalid --hwm {hwm_value}: it must be 0 (no limit) or more")

    heartbeat_value = int(pick(heartbeat_ms, "heartbeat_ms", DEFAULT_HEARTBEAT_MS))
    if heartbeat_value < 50:
        raise BadInput(f"invalid heartbeat period {heartbeat_value} ms: it must be at least 50")

    launcher_value = pick(launcher, "launcher", "local")
    valid_launchers = engine_launcher_names()
    if launcher_value not in valid_launchers:
        raise BadInput(f"unknown launcher {launcher_value!r} (choose from {', '.join(valid_launchers)})")

    port_range = parse_ports(ports) if ports is not None else (tuple(base["ports"]) if base.get("ports") else None)

    host_specs = tuple(HostSpec.parse(h) for h in (hosts or []))
    if launcher_value in ("ssh", "sshproxy") and not host_specs:
        raise BadInput(f"launcher {launcher_value!r} needs at least one --host [user@]host[:port][=N]")
    if host_specs and launcher_value not in ("ssh", "sshproxy"):
        raise BadInput(f"--host is for the ssh launcher, not {launcher_value!r} (use --launcher ssh or --preset ssh)")

    if host_specs:
        total = sum(h.engines for h in host_specs)
        if engines is not None and engines != total:
            raise BadInput(
                f"--engines {engines} disagrees with the hosts, which ask for {total} engines in all;"
                " give the count per host as host=N"
            )
        engine_count = total
    else:
        engine_count = engines if engines is not None else int(base.get("engines", os.cpu_count() or 1))
    if engine_count <= 0:
        raise BadInput(f"invalid --engines {engine_count}: at least 1 engine is needed")

    location_value = location or base.get("location")
    if location_value is not None:
        if not is_valid_hostname(location_value):
            raise BadInput(f"invalid --location {location_value!r}: not a host name or IP address")
    if netinfo.is_listen_all(ip_value):
        if location_value is None:
            location_value = netinfo.routable_address()
            if location_value is None:
                raise BadInput(
                    "--ip 0.0.0.0 needs an address engines can reach, and no default-route interface was"
                    " found: pass --location ADDRESS"
                )
        elif netinfo.is_loopback(location_value):
            raise BadInput(
                f"invalid --location {location_value!r}: the controller listens beyond localhost, so engines on"
                " other hosts need a routable address, not a loopback one"
            )
    elif location_value is None:
        location_value = ip_value

    remote_profile = remote_profile_dir or base.get("remote_profile_dir")
    if remote_profile is not None and not remote_profile.startswith("/"):
        raise BadInput(f"invalid --remote-profile-dir {remote_profile!r}: it must be an absolute path")

    is_batch = launcher_value in BATCH_LAUNCHERS
    queue_value, walltime_value, account_value = (
        pick(queue, "queue", None),
        pick(walltime, "walltime", None),
        pick(account, "account", None),
    )
    if not is_batch and (queue or walltime or account):
        raise BadInput(f"--queue/--walltime/--account are for batch launchers ({', '.join(BATCH_LAUNCHERS)}), not {launcher_value!r}")
    if not is_batch:
        queue_value = walltime_value = account_value = None
    if walltime_value is not None and not _WALLTIME.match(walltime_value):
        raise BadInput(f"invalid --walltime {walltime_value!r} (expected HH:MM:SS or D-HH:MM:SS)")

    if ssh_config is not None:
        if not host_specs:
            raise BadInput("--ssh-config is for profiles with --host engine hosts")
        if not os.path.isfile(ssh_config):
            raise BadInput(f"--ssh-config {ssh_config!r} is not a readable file")
        ssh_config = os.path.abspath(ssh_config)

    encrypt_value = bool(pick(encrypt, "encrypt", False))
    return ProfileSpec(
        name=name,
        preset=preset_name,
        ip=ip_value,
        location=location_value,
        ports=port_range,
        scheme=scheme_value,
        hwm=None if hwm_value is None else int(hwm_value),
        heartbeat_ms=heartbeat_value,
        encrypt=encrypt_value,
        launcher=launcher_value,
        engines=engine_count,
        hosts=host_specs,
        remote_python=pick(remote_python, "remote_python", "python3"),
        remote_profile_dir=remote_profile,
        ssh_config=ssh_config,
        queue=queue_value,
        walltime=walltime_value,
        account=account_value,
        description=base.get("description", ""),
    )
