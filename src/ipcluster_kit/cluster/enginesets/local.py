"""Engines on this machine: N ``python -m ipyparallel.engine`` processes, each in a session of its own."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any, Callable

from ipcluster_kit import processes
from ipcluster_kit.cluster.client import log_tail
from ipcluster_kit.cluster.enginesets.base import (
    EngineSet,
    EngineSetRecord,
    EngineStatus,
    Preview,
    SetStatus,
    SetStop,
    register,
)
from ipcluster_kit.errors import KitError
from ipcluster_kit.processes import ProcessRecord


@dataclass
class LocalRecord(EngineSetRecord):
    """The engine processes by PID and start time (each engine's nanny is found through it)."""

    kind = "local"
    processes: list[ProcessRecord] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LocalRecord":
        return cls(engines=data["engines"], started_at=data["started_at"],
                   processes=[ProcessRecord.from_dict(p) for p in data["processes"]])  # fmt: skip

    def host_labels(self) -> list[str]:
        return ["localhost"] if self.processes else []

    def local_processes(self) -> list[ProcessRecord]:
        return list(self.processes)


def stop_local(kind: str, records: list[ProcessRecord], timeout: float) -> SetStop:
    """Stop processes of this machine with everything they started; the set's stop result."""
    report = processes.stop_processes(records, timeout=timeout)
    ours = {r.pid for r in records}
    return SetStop(
        kind=kind,
        stopped=[r.to_dict() for r in report.stopped],
        left=[r.to_dict() for r in report.left],
        engines_stopped=sum(1 for r in report.stopped if r.pid in ours),
    )


@register
class LocalEngines(EngineSet):
    kind = "local"
    launchers = ("local",)
    record_type = LocalRecord
    early = True

    def preview(self) -> list[Preview]:
        command = shlex.join(self.engine_command())
        return [Preview(f"{self.context.engines} local engine(s), each in a session of its own", command)]

    def start(self, on_record: Callable[[EngineSetRecord], None]) -> LocalRecord:
        record = LocalRecord(engines=self.context.engines)
        log_dir = self.profile_dir / "log"
        for i in range(self.context.engines):
            started, _proc = processes.spawn(self.engine_command(), log_dir / f"kit-engine-{i}.log", "engine",
                                             env=self.context.env)  # fmt: skip
            record.processes.append(started)
            on_record(record)
        return record

    def check(self, record: EngineSetRecord) -> None:
        assert isinstance(record, LocalRecord)
        dead = [r for r in record.processes if not processes.is_alive(r)]
        if dead:
            raise KitError(
                f"{len(dead)} engine process(es) exited before registering (PID {dead[0].pid});"
                f" log {dead[0].log}: {log_tail(dead[0].log)}"
            )

    def status(self, record: EngineSetRecord, timeout: float) -> SetStatus:
        assert isinstance(record, LocalRecord)
        engines = [EngineStatus(self.kind, "localhost", processes.is_alive(r), pid=r.pid, log=r.log) for r in record.processes]
        return SetStatus(self.kind, engines)

    def stop(self, record: EngineSetRecord, timeout: float) -> SetStop:
        assert isinstance(record, LocalRecord)
        return stop_local(self.kind, record.processes, timeout)
