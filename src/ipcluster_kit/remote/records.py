"""What the remote layer knows about a host: the versions it runs, the record of the engines started
there (kept in the state file), and the outcome of one host's bring-up."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ipcluster_kit.processes import ProcessRecord
from ipcluster_kit.profile.hosts import HostSpec


@dataclass(frozen=True)
class Versions:
    """Python and ipyparallel versions (full strings, e.g. ``3.11.7`` and ``9.2.0``)."""

    python: str
    ipyparallel: str | None

    @property
    def python_minor(self) -> str:
        return ".".join(self.python.split(".")[:2])

    @classmethod
    def local(cls) -> "Versions":
        """The versions of this interpreter, which runs the controller."""
        import platform
        from importlib.metadata import PackageNotFoundError, version

        try:
            ipp = version("ipyparallel")
        except PackageNotFoundError:  # pragma: no cover - a dependency of the kit
            ipp = None
        return cls(python=platform.python_version(), ipyparallel=ipp)

    def mismatch(self, remote: "Versions", *, host: str, python_path: str) -> str | None:
        """A message naming both versions when ``remote`` cannot serve this controller, else None."""
        if remote.python_minor != self.python_minor:
            return (
                f"{host}: Python {remote.python} ({python_path}) but the controller runs Python {self.python};"
                f" engines need the same minor version {self.python_minor} (set --remote-python)"
            )
        if remote.ipyparallel is None:
            return (
                f"{host}: ipyparallel is not installed for {python_path} (Python {remote.python});"
                f" the controller has ipyparallel {self.ipyparallel} (install it there or set --remote-python)"
            )
        if remote.ipyparallel != self.ipyparallel:
            return (
                f"{host}: ipyparallel {remote.ipyparallel} ({python_path}) but the controller has"
                f" ipyparallel {self.ipyparallel}; the versions must be equal"
            )
        return None


@dataclass(frozen=True)
class HostRecord:
    """What the state file keeps per host: enough to check and stop its engines later."""

    host: HostSpec
    python: str  # absolute path of the remote interpreter the engines run
    profile_dir: str  # absolute remote profile directory
    engine_file: str  # absolute remote path of the engine connection file
    engines: tuple[ProcessRecord, ...] = ()
    hostname: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """TOML/JSON-friendly (no None values)."""
        data: dict[str, Any] = {
            "host": self.host.to_dict(),
            "python": self.python,
            "profile_dir": self.profile_dir,
            "engine_file": self.engine_file,
            "engines": [e.to_dict() for e in self.engines],
        }
        if self.hostname:
            data["hostname"] = self.hostname
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "HostRecord":
        return cls(
            host=HostSpec.from_dict(data["host"]),
            python=str(data["python"]),
            profile_dir=str(data["profile_dir"]),
            engine_file=str(data.get("engine_file", "")),
            engines=tuple(ProcessRecord.from_dict(e) for e in data.get("engines", [])),
            hostname=data.get("hostname"),
        )


@dataclass
class HostResult:
    """The outcome of bringing up one host."""

    host: HostSpec
    ok: bool = False
    step: str = "connect"  # the step reached; on failure, the step that failed
    error: str | None = None
    record: HostRecord | None = None
    remote: dict[str, Any] = field(default_factory=dict)  # preflight facts: python, ipyparallel, hostname, netns
    clock_skew: float | None = None  # remote minus local clock, seconds
    elapsed: float = 0.0

    @property
    def label(self) -> str:
        return self.host.label

    @property
    def engines(self) -> tuple[ProcessRecord, ...]:
        return self.record.engines if self.record else ()

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"host": str(self.host), "ok": self.ok, "step": self.step, "elapsed": round(self.elapsed, 3)}
        if self.error:
            data["error"] = self.error
        if self.record:
            data["record"] = self.record.to_dict()
        if self.clock_skew is not None:
            data["clock_skew"] = round(self.clock_skew, 4)
        for key in ("python", "ipyparallel", "hostname", "netns"):
            if self.remote.get(key) is not None:
                data.setdefault("remote", {})[key] = self.remote[key]
        return data
