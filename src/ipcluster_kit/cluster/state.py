"""The state file of a running cluster: what `up` started, so that `down` stops exactly that.

One file per profile (``PROFILE_DIR/ipcluster_kit_state.json``, 0600, replaced atomically), written
only by the kit (ipyparallel's own cluster files are left alone, so `ipcluster engines` cannot
overwrite what `down` relies on). Version 2 holds the controller's record, one typed record per
engine set (:mod:`ipcluster_kit.cluster.enginesets`) and the bring-up timeline, and is validated on
load against ``schemas/cluster-state-v2.json``. A version-1 file (the first release: local engines
and a list of remote hosts) is read and converted.

A file that cannot be read as a state (not JSON, not an object, a record missing a field) is a
:class:`StateUnreadable` error: the cluster it described may still run, so nothing may start beside
it, and the message names the way to stop it (`down NAME --force`, which finds processes by the
profile directory).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ipcluster_kit.cluster.enginesets.base import EngineSetRecord, record_from_dict
from ipcluster_kit.errors import KitError
from ipcluster_kit.files import write_private
from ipcluster_kit.processes import ProcessRecord

STATE_FILE = "ipcluster_kit_state.json"
SCHEMA_NAME = "ipcluster-kit/cluster-state"
STATE_VERSION = 2


class StateUnreadable(KitError):
    """The state file exists but is not a state this kit can read."""


def state_kind() -> Any:
    from ipcluster_kit.schemas import DocumentKind

    return DocumentKind(SCHEMA_NAME, STATE_VERSION, "cluster-state-v2.json", "cluster state file")


@dataclass
class ClusterState:
    profile: str
    profile_dir: str
    scheme: str = ""
    expected_engines: int = 0
    started_at: float = field(default_factory=time.time)
    controller: ProcessRecord | None = None
    engine_sets: list[EngineSetRecord] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return Path(self.profile_dir) / STATE_FILE

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_NAME,
            "schema_version": STATE_VERSION,
            "profile": self.profile,
            "profile_dir": self.profile_dir,
            "scheme": self.scheme,
            "expected_engines": self.expected_engines,
            "started_at": self.started_at,
            "controller": self.controller.to_dict() if self.controller else None,
            "engine_sets": [s.to_dict() for s in self.engine_sets],
            "timeline": self.timeline,
        }

    def save(self) -> None:
        write_private(self.path, json.dumps(self.to_dict(), indent=2) + "\n")

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    def put(self, record: EngineSetRecord) -> None:
        """Add an engine set's record (or note that it changed) and save at once."""
        if not any(r is record for r in self.engine_sets):
            self.engine_sets.append(record)
        self.save()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ClusterState":
        return cls(
            profile=data["profile"], profile_dir=data["profile_dir"], scheme=data["scheme"],
            expected_engines=data["expected_engines"], started_at=data["started_at"],
            controller=ProcessRecord.from_dict(data["controller"]) if data["controller"] else None,
            engine_sets=[record_from_dict(s) for s in data["engine_sets"]], timeline=list(data["timeline"]),
        )  # fmt: skip

    @classmethod
    def load(cls, profile_dir: Path) -> "ClusterState | None":
        """The state of ``profile_dir``; None when there is none; StateUnreadable when it is not one."""
        from ipcluster_kit.schemas import errors

        path = Path(profile_dir) / STATE_FILE
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise StateUnreadable(f"cannot read the state file {path}: {getattr(exc, 'strerror', None) or exc}") from None
        try:
            data = json.loads(text)
        except ValueError:
            raise StateUnreadable(f"the state file {path} is not JSON") from None
        if isinstance(data, dict) and data.get("state_version") == 1:
            try:
                data = _from_version_1(data)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise StateUnreadable(f"the state file {path} is not a cluster state: {type(exc).__name__} {exc}") from None
        problems = errors(data, state_kind())
        if problems:
            raise StateUnreadable(f"the state file {path} is not a cluster state: {problems[0]}")
        return cls.from_dict(data)


def _from_version_1(data: dict[str, Any]) -> dict[str, Any]:
    """A first-release state (``engines``: local processes; ``remote``: per host entries) as version 2."""
    sets: list[dict[str, Any]] = []
    engines = data.get("engines") or []
    started = data.get("started_at", 0.0)
    if engines:
        sets.append({"kind": "local", "engines": len(engines), "started_at": started,
                     "processes": [ProcessRecord.from_dict(e).to_dict() for e in engines]})  # fmt: skip
    remote = [entry for entry in data.get("remote") or [] if isinstance(entry, dict) and entry.get("record")]
    if remote:
        hosts = [dict(entry["record"], engines=[ProcessRecord.from_dict(e).to_dict() for e in entry["record"].get("engines", [])])
                 for entry in remote]  # fmt: skip
        sets.append({"kind": "ssh", "engines": sum(len(h["engines"]) for h in hosts), "started_at": started,
                     "hosts": hosts, "ssh": remote[0].get("ssh", {})})  # fmt: skip
    controller = data.get("controller")
    return {
        "schema": SCHEMA_NAME, "schema_version": STATE_VERSION, "profile": data.get("profile"),
        "profile_dir": data.get("profile_dir"), "scheme": data.get("scheme", ""),
        "expected_engines": data.get("expected_engines", 0), "started_at": started,
        "controller": ProcessRecord.from_dict(controller).to_dict() if isinstance(controller, dict) else None,
        "engine_sets": sets, "timeline": [],
    }  # fmt: skip
