"""What a profile holds on disk: settings, files, connection files and the ports they name."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from ipcluster_kit.profile.render import CONFIG_FILES
from ipcluster_kit.profile.spec import RECORD_FILE, ProfileSpec
from ipcluster_kit.profile.store import connection_files

# Connection-file fields that are ports, by who must reach them.
ENGINE_PORT_FIELDS = ("registration", "control", "mux", "task", "iopub", "hb_ping", "hb_pong", "broadcast")
CLIENT_PORT_FIELDS = ("registration", "control", "mux", "task", "iopub", "notification", "broadcast")


def _ports(info: dict, fields: tuple[str, ...]) -> list[int]:
    ports: set[int] = set()
    for name in fields:
        value = info.get(name)
        if isinstance(value, list):
            ports.update(int(v) for v in value)
        elif isinstance(value, int):
            ports.add(value)
    return sorted(ports)


def _mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


def describe(spec: ProfileSpec, profile_dir: Path) -> dict:
    """Everything `show` reports. Keys and secrets from the connection files are never included."""
    files = {}
    for name in (*CONFIG_FILES, RECORD_FILE):
        path = profile_dir / name
        files[name] = {"path": str(path), "exists": path.is_file(), "mode": _mode(path) if path.is_file() else None}
    connections = {}
    ports: dict = {"range": list(spec.ports) if spec.ports else None, "engine_hosts": None, "clients": None}
    for role, path in connection_files(profile_dir).items():
        entry = {"path": str(path), "exists": path.is_file(), "mode": _mode(path) if path.is_file() else None}
        if path.is_file():
            try:
                info = json.loads(path.read_text())
            except (OSError, ValueError):
                info = {}
            entry["encrypted"] = bool(info.get("curve_serverkey"))
            entry["interface"] = info.get("interface")
            entry["location"] = info.get("location")
            if role == "engine":
                ports["engine_hosts"] = _ports(info, ENGINE_PORT_FIELDS)
            else:
                ports["clients"] = _ports(info, CLIENT_PORT_FIELDS)
                entry["task_scheme"] = info.get("task_scheme")
        connections[role] = entry
    security = profile_dir / "security"
    return {
        "name": spec.name,
        "profile_dir": str(profile_dir),
        "settings": spec.to_record(),
        "files": files,
        "security_dir": {"path": str(security), "mode": _mode(security) if security.is_dir() else None},
        "connection_files": connections,
        "ports": ports,
        "listens_beyond_localhost": spec.listens_beyond_localhost,
        "warning": spec.exposure_warning(),
        "readable_by_others": [
            p for p in [str(security)] + [c["path"] for c in connections.values() if c["exists"]]
            if os.path.exists(p) and stat.S_IMODE(os.stat(p).st_mode) & 0o077
        ],
    }  # fmt: skip
