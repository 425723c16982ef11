"""Engine hosts, written ``[user@]host[:port][=N]``."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Iterable

from ipcluster_kit.errors import BadInput

_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
_USER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")
_SPEC = re.compile(r"^(?:(?P<user>[^@]+)@)?(?P<host>\[[^\]]+\]|[^:=@]+)(?::(?P<port>[^=]+))?(?:=(?P<engines>.+))?$")


def is_valid_hostname(name: str) -> bool:
    if _HOSTNAME.match(name):
        return True
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


@dataclass(frozen=True)
class HostSpec:
    host: str
    user: str | None = None
    port: int = 22
    engines: int = 1
    remote_python: str | None = None

    @classmethod
    def parse(cls, spec: str) -> "HostSpec":
        """Parse ``[user@]host[:port][=N]``; a malformed spec is a BadInput naming it."""
        match = _SPEC.match(spec.strip())
        if not match:
            raise BadInput(f"malformed host spec {spec!r} (expected [user@]host[:port][=N])")
        user, host, port, engines = match.group("user", "host", "port", "engines")
        host = host.strip("[]")
        if user is not None and not _USER.match(user):
            raise BadInput(f"malformed host spec {spec!r}: bad user name {user!r}")
        if not is_valid_hostname(host):
            raise BadInput(f"malformed host spec {spec!r}: bad host name {host!r}")
        try:
            port_number = 22 if port is None else int(port)
        except ValueError:
            raise BadInput(f"malformed host spec {spec!r}: port {port!r} is not a number") from None
        if not 1 <= port_number <= 65535:
            raise BadInput(f"malformed host spec {spec!r}: port {port_number} is out of range 1-65535")
        try:
            count = 1 if engines is None else int(engines)
        except ValueError:
            raise BadInput(f"malformed host spec {spec!r}: engine count {engines!r} is not a number") from None
        if count <= 0:
            raise BadInput(f"malformed host spec {spec!r}: engine count must be at least 1, got {count}")
        return cls(host=host, user=user, port=port_number, engines=count)

    @property
    def label(self) -> str:
        """How a host is named in messages, reports and the state file: ``user@host:port`` (port only when not 22)."""
        port = f":{self.port}" if self.port != 22 else ""
        return f"{self.destination}{port}"

    @property
    def destination(self) -> str:
        """``user@host`` or ``host``: what ssh and ipyparallel's ``engines`` dict take as a key."""
        return f"{self.user}@{self.host}" if self.user else self.host

    def __str__(self) -> str:
        return f"{self.label}={self.engines}"

    def to_dict(self) -> dict:
        data = {"host": self.host, "port": self.port, "engines": self.engines}
        if self.user:
            data["user"] = self.user
        if self.remote_python:
            data["remote_python"] = self.remote_python
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "HostSpec":
        return cls(
            host=data["host"],
            user=data.get("user"),
            port=int(data.get("port", 22)),
            engines=int(data.get("engines", 1)),
            remote_python=data.get("remote_python"),
        )


def parse_hosts(specs: Iterable["str | HostSpec"]) -> list[HostSpec]:
    """Host specs from strings (BadInput naming a malformed one); HostSpec values pass through."""
    return [s if isinstance(s, HostSpec) else HostSpec.parse(s) for s in specs]
