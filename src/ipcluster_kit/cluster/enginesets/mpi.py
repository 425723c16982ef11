"""Engines as one MPI world on this machine: ``mpiexec -n N python -m ipyparallel.engine --mpi``.

Each engine takes its MPI rank as its engine id (ipyparallel's ``IPEngine.use_mpi``), so the ranks
are 0..N-1 and user code on the engines can use ``mpi4py`` across them. ``mpiexec`` is the one
recorded process: it runs in a session of its own and every rank (and each rank's nanny) is below
it, so `down` stops the whole tree through it. A rank is recognised by the ``PMI_RANK`` the process
manager gives it.

Which MPI: the ``mpiexec`` beside this interpreter (``pip install 'ipcluster-kit[mpi]'`` installs
the ``mpich`` wheel there, whose ``libmpi.so.12`` the ``mpi4py`` wheel loads), else the first on
``PATH``.
"""

from __future__ import annotations

import importlib.util
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import psutil

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
from ipcluster_kit.errors import BadInput, KitError
from ipcluster_kit.processes import ProcessRecord

INSTALL_HINT = "pip install 'ipcluster-kit[mpi]' (mpi4py and the mpich wheel, which brings mpiexec)"


@dataclass
class MPIRecord(EngineSetRecord):
    kind = "mpi"
    mpiexec: ProcessRecord | None = None
    command: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "MPIRecord":
        return cls(engines=data["engines"], started_at=data["started_at"],
                   mpiexec=ProcessRecord.from_dict(data["mpiexec"]), command=list(data.get("command", [])))  # fmt: skip

    def host_labels(self) -> list[str]:
        return ["localhost"]

    def local_processes(self) -> list[ProcessRecord]:
        return [self.mpiexec] if self.mpiexec else []


def find_mpiexec(python: str = sys.executable) -> str | None:
    """The ``mpiexec`` beside ``python`` (the mpich wheel's), else the first on ``PATH``."""
    beside = Path(python).parent / "mpiexec"
    return str(beside) if beside.is_file() else shutil.which("mpiexec")


def ranks(record: MPIRecord) -> dict[int, ProcessRecord]:
    """The live engine processes of the world by MPI rank (from ``PMI_RANK``, set by the process manager)."""
    found: dict[int, ProcessRecord] = {}
    for member in processes.tree([record.mpiexec] if record.mpiexec else []):
        try:
            proc = psutil.Process(member.pid)
            if "ipyparallel.engine" not in proc.cmdline():
                continue  # mpiexec, its proxy, and each rank's nanny
            rank = proc.environ().get("PMI_RANK")
        except psutil.Error:
            continue
        if rank is not None and rank.isdigit():
            found[int(rank)] = ProcessRecord(member.pid, member.create_time, "engine")
    return found


@register
class MPIEngines(EngineSet):
    kind = "mpi"
    launchers = ("mpi", "mpiexec")
    record_type = MPIRecord
    early = True

    def command(self) -> list[str]:
        mpiexec = find_mpiexec(self.context.python) or "mpiexec"
        return [mpiexec, "-n", str(self.context.engines), *self.engine_command("--mpi")]

    def validate(self) -> None:
        if find_mpiexec(self.context.python) is None:
            raise BadInput(f"profile {self.spec.name!r} runs its engines with mpiexec, which is not installed: {INSTALL_HINT}")
        if importlib.util.find_spec("mpi4py") is None:
            raise BadInput(f"profile {self.spec.name!r} runs MPI engines, which need mpi4py: {INSTALL_HINT}")

    def preview(self) -> list[Preview]:
        return [Preview(f"{self.context.engines} engine(s) as one MPI world (ranks 0..{self.context.engines - 1})",
                        shlex.join(self.command()))]  # fmt: skip

    def start(self, on_record: Callable[[EngineSetRecord], None]) -> MPIRecord:
        command = self.command()
        mpiexec, _proc = processes.spawn(command, self.profile_dir / "log" / "kit-mpiexec.log", "mpiexec", env=self.context.env)
        record = MPIRecord(engines=self.context.engines, mpiexec=mpiexec, command=command)
        on_record(record)
        return record

    def check(self, record: EngineSetRecord) -> None:
        assert isinstance(record, MPIRecord)
        if record.mpiexec and not processes.is_alive(record.mpiexec):
            raise KitError(f"mpiexec exited before every engine registered; log {record.mpiexec.log}: {log_tail(record.mpiexec.log)}")

    def status(self, record: EngineSetRecord, timeout: float) -> SetStatus:
        assert isinstance(record, MPIRecord)
        by_rank = ranks(record)
        engines = [EngineStatus(self.kind, "localhost", rank in by_rank, pid=by_rank[rank].pid if rank in by_rank else None,
                                rank=rank, log=record.mpiexec.log if record.mpiexec else "")
                   for rank in range(record.engines)]  # fmt: skip
        alive = bool(record.mpiexec and processes.is_alive(record.mpiexec))
        return SetStatus(self.kind, engines, {"mpiexec_pid": record.mpiexec.pid if record.mpiexec else None,
                                              "mpiexec_running": alive, "world_size": record.engines})  # fmt: skip

    def stop(self, record: EngineSetRecord, timeout: float) -> SetStop:
        assert isinstance(record, MPIRecord)
        engine_pids = {r.pid for r in ranks(record).values()}
        report = processes.stop_processes([record.mpiexec] if record.mpiexec else [], timeout=timeout)
        return SetStop(self.kind, stopped=[r.to_dict() for r in report.stopped], left=[r.to_dict() for r in report.left],
                       engines_stopped=sum(1 for r in report.stopped if r.pid in engine_pids))  # fmt: skip
