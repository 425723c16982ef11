"""The state file of a running cluster: what `up` started, so that `down` stops exactly that.

One file per profile, written only by the kit (ipyparallel's own cluster files are left alone,
so `ipcluster engines` cannot overwrite what `down` relies on).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from ipcluster_kit.processes import ProcessRecord
from ipcluster_kit.files import write_private

STATE_FILE = "ipcluster_kit_state.json"
STATE_VERSION = 1


@dataclass
class ClusterState:
    profile: str
    profile_dir: str
    controller: ProcessRecord | None = None
    engines: list[ProcessRecord] = field(default_factory=list)
    expected_engines: int = 0
    scheme: str = ""
    started_at: float = field(default_factory=time.time)
    remote: list[dict] = field(default_factory=list)  # per host: {"host":..., "pids": [...], ...}

    @property
    def path(self) -> Path:
        return Path(self.profile_dir) / STATE_FILE

    def save(self) -> None:
        data = {
            "state_version": STATE_VERSION,
            "profile": self.profile,
            "profile_dir": self.profile_dir,
            "controller": self.controller.to_dict() if self.controller else None,
            "engines": [e.to_dict() for e in self.engines],
            "expected_engines": self.expected_engines,
            "scheme": self.scheme,
            "started_at": self.started_at,
            "remote": self.remote,
        }
        write_private(self.path, json.dumps(data, indent=2) + "\n")

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    @classmethod
    def load(cls, profile_dir: Path) -> "ClusterState | None":
        path = Path(profile_dir) / STATE_FILE
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return None
        return cls(
            profile=data["profile"],
            profile_dir=data["profile_dir"],
            controller=ProcessRecord.from_dict(data["controller"]) if data.get("controller") else None,
            engines=[ProcessRecord.from_dict(e) for e in data.get("engines", [])],
            expected_engines=data.get("expected_engines", 0),
            scheme=data.get("scheme", ""),
            started_at=data.get("started_at", 0.0),
            remote=data.get("remote", []),
        )
