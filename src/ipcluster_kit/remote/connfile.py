"""The controller's engine connection file, as remote engines need it.

Only ``ipcontroller-engine.json`` ever leaves this machine, never the client file. Its content
(it holds the HMAC key) is never logged or printed; only its checksum is.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from ipcluster_kit.errors import BadInput
from ipcluster_kit.profile.store import CLIENT_CONNECTION_FILE, ENGINE_CONNECTION_FILE


# The sockets an engine connects to, as named in the engine connection file.
ENGINE_PORT_KEYS = ("registration", "control", "mux", "task", "iopub", "hb_ping", "hb_pong", "broadcast")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class EngineFile:
    """A validated engine connection file: its bytes (secret), checksum and what engines dial."""

    path: Path
    data: bytes
    sha256: str
    transport: str
    address: str
    ports: dict[str, int]

    def __repr__(self) -> str:  # never show the content
        return f"EngineFile(path={str(self.path)!r}, sha256={self.sha256[:12]}..., address={self.address!r})"

    @property
    def is_loopback(self) -> bool:
        return _is_loopback(self.address)

    def port_list(self) -> list[int]:
        return sorted(set(self.ports.values()))


def load_engine_file(path: str | os.PathLike) -> EngineFile:
    """Read and check the engine connection file; BadInput when it is missing or not an engine file."""
    path = Path(path).expanduser()
    if path.name == CLIENT_CONNECTION_FILE:
        raise BadInput(f"{path} is the client connection file; engines need {ENGINE_CONNECTION_FILE}")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BadInput(f"engine connection file {path} does not exist (is the controller running?)") from None
    except OSError as exc:
        raise BadInput(f"cannot read engine connection file {path}: {exc.strerror}") from None
    try:
        info = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise BadInput(f"{path} is not a JSON connection file") from None
    if not isinstance(info, dict) or "registration" not in info or "interface" not in info:
        raise BadInput(f"{path} is not an ipyparallel connection file")
    if "notification" in info or "hb_ping" not in info:
        raise BadInput(f"{path} is a client connection file; engines need {ENGINE_CONNECTION_FILE}")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise BadInput(f"engine connection file {path} has mode {mode:04o}; it holds a key and must be 0600")

    transport, _, host = str(info["interface"]).partition("://")
    if host in ("0.0.0.0", "*", "::", ""):
        # ipyparallel engines then dial `location` (see ipyparallel.util.disambiguate_ip_address)
        host = str(info.get("location") or "")
    ports: dict[str, int] = {}
    for key in ENGINE_PORT_KEYS:
        value = info.get(key)
        if isinstance(value, list):
            for i, port in enumerate(value):
                ports[f"{key}[{i}]"] = int(port)
        elif value is not None:
            ports[key] = int(value)
    return EngineFile(
        path=path,
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        transport=transport,
        address=host,
        ports=ports,
    )
