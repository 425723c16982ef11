"""Engines as one Slurm job: the profile's job script, submitted with sbatch, watched with squeue.

The script is the profile's own batch template (the one ipyparallel's SlurmEngineSetLauncher
fills in), with the engine command pointing at the profile directory, so compute nodes read the
engine connection file from the shared file system. It is written into the profile directory,
never the current one, and so are the job's output and one log per engine
(``log/ipengine-<job>-<node>-<rank>.log``): those logs say which engine id each task got, which is
how ``status`` counts engines per node without accounting. With ``mpi = true`` the engines are one
MPI world (``srun --mpi=pmi2 ... --mpi``): each engine's id is its rank.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ipcluster_kit import netinfo
from ipcluster_kit.checks import Check
from ipcluster_kit.cluster import slurmctl
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
from ipcluster_kit.files import write_private
from ipcluster_kit.profile.render import fill_batch_template
from ipcluster_kit.profile.store import connection_files

SCRIPT_NAME = "ipcluster_kit_engines.sbatch"
NOTE_INTERVAL = 0.5  # seconds between two squeue calls while engines register
ENGINE_LOG = re.compile(r"^ipengine-(?P<job>\d+)-(?P<node>.+)-(?P<rank>\d+)\.log$")
REGISTERED = re.compile(rb"Completed registration with id (\d+)")
# srun's own line, in the job's output, when tasks of a step end with an error while the job runs on
TASK_ENDED = re.compile(r"^srun: error: (?P<node>[^:\s]+): tasks? (?P<tasks>[\d,-]+): (?P<what>.+)$", re.MULTILINE)


@dataclass
class SlurmRecord(EngineSetRecord):
    """The job: its id (recorded as soon as sbatch answers), its script and where its logs go."""

    kind = "slurm"
    job_id: str = ""
    script: str = ""
    log_dir: str = ""
    mpi: bool = False

    def host_labels(self) -> list[str]:
        return sorted({task.node for task in engine_tasks(self)})


@dataclass(frozen=True)
class EngineTask:
    """One task of the job, from its log: where it ran, its rank, the engine id it registered as."""

    node: str
    rank: int
    engine_id: int | None
    log: str


def engine_tasks(record: SlurmRecord) -> list[EngineTask]:
    tasks = []
    for path in Path(record.log_dir).glob(f"ipengine-{record.job_id}-*.log"):
        match = ENGINE_LOG.match(path.name)
        if not match or match["job"] != record.job_id:
            continue
        try:
            found = REGISTERED.search(path.read_bytes())
        except OSError:
            found = None
        tasks.append(EngineTask(match["node"], int(match["rank"]), int(found.group(1)) if found else None, str(path)))
    return sorted(tasks, key=lambda t: t.rank)


def job_output(record: SlurmRecord, lines: int = 2) -> str:
    """The tail of the job's own output (what the batch script and srun printed), on one line."""
    path = Path(record.log_dir) / f"ipengine-slurm-{record.job_id}.out"
    try:
        text = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return f"{path} (none yet)"
    return f"{path}: " + (" | ".join(text[-lines:]) if text else "(empty)")


def ended_tasks(record: SlurmRecord) -> list[str]:
    """The engine tasks that ended with an error while the job runs on (srun says so in the job's
    output), each as ``task 1 on node2: Exited with exit code 3 (log PATH: its last lines)``."""
    from ipcluster_kit.cluster.client import log_tail

    try:
        text = (Path(record.log_dir) / f"ipengine-slurm-{record.job_id}.out").read_text(errors="replace")
    except OSError:
        return []
    ended = []
    for match in TASK_ENDED.finditer(text):
        first = re.split(r"[,-]", match["tasks"])[0]
        log = Path(record.log_dir) / f"ipengine-{record.job_id}-{match['node']}-{first}.log"
        tasks = f"task{'s' if not match['tasks'].isdigit() else ''} {match['tasks']}"
        ended.append(f"{tasks} on {match['node']}: {match['what'].strip()} (log {log}: {log_tail(log) or 'empty'})")
    return ended


def _registered_ids(client_file: Path, timeout: float) -> tuple[set[int] | None, str | None]:
    """The engine ids the controller has now, or None and why not."""
    from ipcluster_kit.cluster.client import connect

    try:
        client = connect(client_file, timeout)
    except KitError as exc:
        return None, exc.message
    try:
        return set(client.ids), None
    finally:
        client.close()


def _timing(timeout: float) -> slurmctl.Timing:
    """The cluster's timeouts (``scontrol show config``), or Slurm's defaults where scontrol cannot say."""
    try:
        return slurmctl.timing(max(min(timeout, slurmctl.DEFAULT_TIMEOUT), 1.0))
    except KitError:
        return slurmctl.Timing()


@register
class SlurmEngines(EngineSet):
    """The engines as one Slurm job (see the module docstring)."""

    kind = "slurm"
    launchers = ("slurm",)
    record_type = SlurmRecord
    # The job is submitted while the controller starts (it queues meanwhile): its engines wait for the
    # engine connection file that bring-up publishes once the controller's is complete (context.engine_file).
    early = True

    def __init__(self, context):
        super().__init__(context)
        self._job: slurmctl.JobInfo | None = None
        self._asked = float("-inf")

    @property
    def script_path(self) -> Path:
        return Path(self.profile_dir).absolute() / SCRIPT_NAME

    def job_script(self) -> str:
        """The exact script `up` submits: the profile's template, this Python's engine command."""
        spec = self.spec.with_changes(engines=self.context.engines)
        command = self.engine_command(*(["--mpi"] if spec.mpi else []))
        script = fill_batch_template(spec, Path(self.profile_dir).absolute(), command, cluster_id=spec.name)
        assert script is not None
        return script

    def validate(self) -> None:
        spec = self.spec
        bad = next((a for a in (spec.location, spec.ip) if netinfo.is_loopback(a)), None)
        if bad is not None:
            raise BadInput(
                f"profile {spec.name!r} puts the controller on {bad}, a loopback address compute nodes cannot reach:"
                f" re-create it with `ipcluster-kit init {spec.name} --preset slurm --location ADDRESS --force`"
                " (this login node's address on the cluster network)"
            )
        if spec.queue:
            self._check_partition(spec.queue)

    @staticmethod
    def _check_partition(partition: str) -> None:
        """A partition Slurm does not have is bad input, refused before anything starts. When Slurm
        cannot be asked here (no sinfo, no answer), sbatch will say so itself."""
        if shutil.which("sinfo") is None:
            return
        try:
            names = sorted({g.partition for g in slurmctl.partition_nodes(timeout=10)})
        except KitError:
            return
        if partition not in names:
            raise BadInput(f"partition {partition!r} does not exist (partitions: {', '.join(names) or 'none'}); set --partition")

    def preview(self) -> list[Preview]:
        return [Preview(f"Slurm job script {self.script_path}, submitted with sbatch --parsable", self.job_script())]

    def start(self, on_record: Callable[[EngineSetRecord], None]) -> SlurmRecord:
        log_dir = Path(self.profile_dir).absolute() / "log"
        log_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_private(self.script_path, self.job_script())
        job_id = slurmctl.submit(self.script_path, cwd=log_dir, timeout=min(self.context.remaining(), slurmctl.DEFAULT_TIMEOUT),
                                 env=self.context.env)  # fmt: skip
        record = SlurmRecord(engines=self.context.engines, job_id=job_id, script=str(self.script_path),
                             log_dir=str(log_dir), mpi=self.spec.mpi)  # fmt: skip
        on_record(record)
        return record

    def _job_info(self, record: SlurmRecord) -> slurmctl.JobInfo | None:
        """What squeue says, asked at most every NOTE_INTERVAL seconds while engines register."""
        now = time.monotonic()
        if now - self._asked >= NOTE_INTERVAL:
            self._asked = now
            self._job = slurmctl.job_info(record.job_id, timeout=min(self.context.remaining(1.0), 10.0))
        return self._job

    def check(self, record: EngineSetRecord) -> None:
        """Give up when the job ended before its engines registered, or when some of its engine tasks
        did (srun says so in the job's output; the job may run on with the others). Looks at most
        every NOTE_INTERVAL seconds; the deadline is bring-up's (which names :meth:`waiting_note`)."""
        assert isinstance(record, SlurmRecord)
        asked = self._asked
        info = self._job_info(record)
        if info is not None and info.finished:
            raise KitError(f"{info.describe()} before its engines registered; job output {job_output(record)}")
        ended = ended_tasks(record) if self._asked != asked else []
        if ended:
            more = f" (and {len(ended) - 1} more srun error line(s))" if len(ended) > 1 else ""
            raise KitError(f"engine {ended[0]}{more}; {info.describe() if info else f'job {record.job_id}'}")

    def waiting_note(self, record: EngineSetRecord) -> str | None:
        assert isinstance(record, SlurmRecord)
        info = self._job_info(record)
        return info.describe() if info else None

    def status(self, record: EngineSetRecord, timeout: float) -> SetStatus:
        assert isinstance(record, SlurmRecord)
        facts: dict[str, Any] = {"job_id": record.job_id}
        try:
            info = slurmctl.job_info(record.job_id, timeout=timeout)
            nodes = slurmctl.node_states(info.nodes, timeout) if info and info.nodes else {}
        except KitError as exc:
            info, nodes, facts["error"] = None, {}, exc.message
        facts.update(state=info.state if info else ("unknown" if "error" in facts else "gone"),
                     reason=info.reason if info and info.reason != "None" else "", nodes=info.nodes if info else "",
                     node_states=nodes)  # fmt: skip
        registered, error = _registered_ids(connection_files(Path(self.profile_dir))["client"], timeout)
        engines = [
            EngineStatus(self.kind, task.node, bool(registered and task.engine_id in registered), rank=task.rank,
                         log=task.log, error=error if registered is None else None)  # fmt: skip
            for task in engine_tasks(record)
        ]
        facts["engines_per_node"] = {node: sum(1 for e in engines if e.host == node and e.running)
                                     for node in sorted({e.host for e in engines} | set(nodes))}  # fmt: skip
        return SetStatus(self.kind, engines, facts)

    def stop(self, record: EngineSetRecord, timeout: float) -> SetStop:
        """scancel the job and confirm with squeue that it ended.

        A job left COMPLETING only on nodes Slurm flags as not responding is ``pending``: Slurm ends
        it when they answer again or are marked down, and nothing here can hasten that. Otherwise the
        job gets ``timeout`` seconds to leave squeue, or longer while Slurm may not yet know that a
        node stopped answering (:attr:`slurmctl.Timing.completing_bound`); then it is an error.
        """
        assert isinstance(record, SlurmRecord)
        started, timing = time.monotonic(), _timing(timeout)
        try:
            slurmctl.cancel(record.job_id, timeout=max(min(timeout, slurmctl.DEFAULT_TIMEOUT), 1.0))
            left = slurmctl.wait_until_gone(record.job_id, timeout)
            lost = slurmctl.left_to_slurm(left) if left is not None else []
            if left is not None and left.state == "COMPLETING" and not lost:  # Slurm may not know yet
                left = slurmctl.wait_until_gone(record.job_id, started + timing.completing_bound - time.monotonic())
                lost = slurmctl.left_to_slurm(left) if left is not None else []
        except KitError as exc:
            return SetStop(self.kind, error=exc.message)
        if left is None:
            return SetStop(self.kind, stopped=[{"job": record.job_id}], engines_stopped=record.engines)
        if not lost:
            return SetStop(self.kind, error=f"{left.describe()} {time.monotonic() - started:.0f} s after scancel")
        on_lost = sum(1 for task in engine_tasks(record) if task.node in lost)
        note = (f"job {record.job_id} was cancelled and is still {left.state} on {', '.join(lost)}, which no longer"
                f" answer(s) Slurm; Slurm ends it when the node answers again or is marked down (after"
                f" SlurmdTimeout, {timing.slurmd_timeout:g} s without an answer)")  # fmt: skip
        return SetStop(self.kind, stopped=[{"job": record.job_id, "state": left.state}],
                       engines_stopped=record.engines - on_lost,
                       pending=[{"job": record.job_id, "state": left.state, "nodes": lost, "note": note}])  # fmt: skip

    def doctor(self, **options: Any) -> list[Check]:
        from ipcluster_kit.cluster.enginesets.slurm_doctor import diagnose

        return diagnose(self.spec, self.profile_dir, timeout=float(options.get("timeout", 60.0)))
