"""Engine sets: where a cluster's engines run, behind one small interface.

Local processes, SSH hosts, an ``mpiexec`` world and a Slurm job are the same idea: a set of
engines that can be previewed, started, asked for its state, and stopped. `up`, `status`, `down`,
`bootstrap` and `bench --profile` only talk to this interface; each kind is one short module
(``local.py``, ``ssh.py``, ``mpi.py``, ``slurm.py``) that subclasses :class:`EngineSet` and
:class:`EngineSetRecord` and registers itself with :func:`register`.

The life of an engine set, as the orchestrator (:mod:`ipcluster_kit.cluster.lifecycle`) drives it:

1. ``EngineSet(context)``: built from an :class:`EngineSetContext` (the profile, its directory, how
   many engines, options). Constructing one starts nothing and touches no host.
2. :meth:`EngineSet.validate` refuses, before anything starts, what cannot work (BadInput).
3. :meth:`EngineSet.preview` gives the exact command line(s) or job script (``up --dry-run``).
4. :meth:`EngineSet.start` launches the engines, after the controller has written its connection
   files; or, for a kind whose ``early`` is true, right after the controller was spawned: its engines
   then read ``context.engine_file``, which the orchestrator writes (atomically) once the controller's
   file is complete, so engine start-up overlaps controller start-up. It hands its record to ``on_record`` **as soon as anything runs** (and again whenever the
   record grows): the orchestrator writes it to the state file at once, so a crash or a Ctrl-C
   in the middle of a start still leaves a record that `down` stops.
5. While the engines register, :meth:`EngineSet.check` is called on every poll (raise KitError when
   the set can no longer register: engines died, the job failed) and :meth:`EngineSet.waiting_note`
   about once a second (what the batch system says, e.g. ``job 42 PENDING (Resources)``).
6. :meth:`EngineSet.status` reports every engine (host, pid or rank, running) plus set-level facts.
7. :meth:`EngineSet.stop` stops everything the record names. It is idempotent (a second call, or a
   call on a set that half started, is fine) and bounded by its timeout.

Records are typed dataclasses with a ``kind`` discriminator; the state file keeps a list of them and
is validated on load against ``schemas/cluster-state-v2.json`` (one ``$defs`` entry per kind).
Every wait in every method is bounded: by its ``timeout`` argument, or by ``context.deadline``.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

from ipcluster_kit.checks import Check
from ipcluster_kit.errors import BadInput

# The kinds the kit knows, and their modules (imported on first use: a kind's dependencies, like
# asyncssh for ssh, are only imported when a profile uses it).
KIND_MODULES = {
    "local": "ipcluster_kit.cluster.enginesets.local",
    "ssh": "ipcluster_kit.cluster.enginesets.ssh",
    "mpi": "ipcluster_kit.cluster.enginesets.mpi",
    "slurm": "ipcluster_kit.cluster.enginesets.slurm",
}
# Batch systems ipyparallel drives but `up` does not: `ipcluster start` is the way for them.
IPCLUSTER_ONLY = ("pbs", "sge", "lsf", "htcondor", "batch", "sshproxy", "winhpc")

ENGINE_SETS: dict[str, type["EngineSet"]] = {}


@dataclass
class EngineSetRecord:
    """What the state file keeps of one engine set; each kind subclasses it with typed fields.

    ``engines`` is how many engines the set started and expects to register. Subclasses must keep
    every field JSON-friendly through :meth:`to_dict` and read it back in :meth:`from_dict`
    (nested records: :class:`~ipcluster_kit.processes.ProcessRecord` has both), and describe their
    fields in the state schema's ``$defs``.
    """

    kind: ClassVar[str] = ""
    engines: int = 0
    started_at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            data[f.name] = _plain(value)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EngineSetRecord":
        """The record from a validated dict (the schema has checked its shape). Override for nested records."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def host_labels(self) -> list[str]:
        """Where the set's engines run (host labels, node names), for reports; none by default."""
        return []

    def local_processes(self) -> list[Any]:
        """The processes of this machine whose exit loses engines (ProcessRecords: local engines,
        mpiexec), watched while work runs; none by default (remote hosts, batch jobs)."""
        return []


def _plain(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class EngineSetContext:
    """What an engine set is built from. ``options`` carries kind-specific settings from the command
    line (e.g. ``ssh_options``, ``min_engines``); ``deadline`` (``time.monotonic()``) bounds start."""

    spec: Any  # ipcluster_kit.profile.spec.ProfileSpec
    profile_dir: Path
    engines: int
    deadline: float = float("inf")
    engine_file: Path | None = None  # for ``early`` kinds: the connection file engines wait for (--file)
    python: str = sys.executable
    env: dict[str, str] | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def remaining(self, floor: float = 0.5) -> float:
        """Seconds left before the deadline (at least ``floor``)."""
        return max(floor, self.deadline - time.monotonic())


@dataclass(frozen=True)
class Preview:
    """One thing an engine set would run: a title, and the exact command line or job script."""

    title: str
    text: str

    def to_dict(self) -> dict[str, str]:
        return {"title": self.title, "text": self.text}


@dataclass
class EngineStatus:
    """One engine as a set sees it: where it runs, its PID (or MPI rank), whether it runs."""

    kind: str
    host: str
    running: bool
    pid: int | None = None
    rank: int | None = None
    log: str = ""
    error: str | None = None  # why its state is unknown (host unreachable, ...)
    log_tail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass
class SetStatus:
    """A set's status: its engines, plus set-level facts (job id and state, nodes, mpiexec PID...)."""

    kind: str
    engines: list[EngineStatus] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.facts, "engines": [e.to_dict() for e in self.engines]}


@dataclass
class SetStop:
    """What :meth:`EngineSet.stop` did: engines (and helpers) stopped, what is left, an error."""

    kind: str
    stopped: list[dict[str, Any]] = field(default_factory=list)  # e.g. ProcessRecord dicts, or {"job": 42}
    left: list[dict[str, Any]] = field(default_factory=list)
    engines_stopped: int = 0
    error: str | None = None  # the set could not be reached or stopped (the record is then kept)
    # what the batch system still has, will end by itself, and nothing here can hasten (e.g. a
    # cancelled job COMPLETING on a node that no longer answers): each with a "note" saying so
    pending: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "engines_stopped": self.engines_stopped,
                                "stopped": self.stopped, "left_running": self.left, "pending": self.pending}  # fmt: skip
        if self.error:
            data["error"] = self.error
        return data


class EngineSet(ABC):
    """Where a set of engines runs. See the module docstring for the life cycle and guarantees.

    Subclasses set ``kind`` (the record's discriminator), ``launchers`` (the profile launchers it
    serves) and ``record_type``, and implement :meth:`preview`, :meth:`start`, :meth:`status` and
    :meth:`stop`; :meth:`validate`, :meth:`check`, :meth:`waiting_note` and :meth:`doctor` are optional.
    """

    kind: ClassVar[str] = ""
    launchers: ClassVar[tuple[str, ...]] = ()
    record_type: ClassVar[type[EngineSetRecord]] = EngineSetRecord
    early: ClassVar[bool] = False  # may start before the controller is ready (engines wait for their file)

    def __init__(self, context: EngineSetContext):
        self.context = context

    @property
    def spec(self) -> Any:
        return self.context.spec

    @property
    def profile_dir(self) -> Path:
        return self.context.profile_dir

    def engine_command(self, *extra: str) -> list[str]:
        """``python -m ipyparallel.engine --profile-dir=...`` for this machine (with ``--file=`` when the
        context names the engine file to wait for), plus ``extra``."""
        given = [f"--file={self.context.engine_file}"] if self.context.engine_file else []
        return [self.context.python, "-m", "ipyparallel.engine", f"--profile-dir={self.profile_dir}", *given, *extra]

    def validate(self) -> None:
        """Raise BadInput for what cannot work, before anything starts (e.g. a batch profile whose
        controller location is 127.x, which compute nodes cannot reach). Default: nothing to refuse."""

    @abstractmethod
    def preview(self) -> list[Preview]:
        """The exact command line(s) or job script :meth:`start` would run. Starts nothing, writes
        nothing, contacts no host."""

    @abstractmethod
    def start(self, on_record: Callable[[EngineSetRecord], None]) -> EngineSetRecord:
        """Launch the engines; return the final record.

        Must call ``on_record(record)`` as soon as any process or job exists (before waiting for
        anything else), and again whenever the record changes, so that the caller can save it and
        stop it after a crash. Bounded by ``context.deadline``. Raises KitError when the set cannot
        start; whatever did start must then already have been handed to ``on_record``.
        A set that starts only part of its engines (some SSH hosts failed) returns a record whose
        ``engines`` counts what started and whose ``failures`` (if the kind has them) say why.
        """

    def check(self, record: EngineSetRecord) -> None:
        """Called on every poll while engines register: raise KitError (naming the log, job state...)
        when this set can no longer register its engines. Must be quick. Default: no check."""

    def waiting_note(self, record: EngineSetRecord) -> str | None:
        """What to show while waiting for registration (e.g. ``job 42 PENDING (Resources)``), or None.
        Called about once a second; bounded. Default: None."""
        return None

    @abstractmethod
    def status(self, record: EngineSetRecord, timeout: float) -> SetStatus:
        """Every engine of the set (host, pid or rank, running) and set-level facts, within ``timeout``.
        Never raises for an unreachable host or batch system: that is the engine's ``error``."""

    @abstractmethod
    def stop(self, record: EngineSetRecord, timeout: float) -> SetStop:
        """Stop everything the record names (TERM, then KILL after ``timeout``; cancel a job and
        confirm it is gone). Idempotent; bounded; never raises for an unreachable host: that is the
        result's ``error`` (and the caller keeps the state file so that `down` can be run again).
        What only the batch system can still end, and will, is the result's ``pending``."""

    def doctor(self, **options: Any) -> list[Check]:
        """Checks of what stands between these engines and the controller. Default: none."""
        return []


def register(cls: type[EngineSet]) -> type[EngineSet]:
    """Class decorator: make an engine-set kind known (by its ``kind`` and its ``launchers``)."""
    ENGINE_SETS[cls.kind] = cls
    return cls


def engine_set_class(kind: str) -> type[EngineSet]:
    """The registered class of ``kind`` (importing its module on first use)."""
    if kind not in ENGINE_SETS and kind in KIND_MODULES:
        try:
            importlib.import_module(KIND_MODULES[kind])
        except ModuleNotFoundError as exc:
            if exc.name != KIND_MODULES[kind]:
                raise
    try:
        return ENGINE_SETS[kind]
    except KeyError:
        raise BadInput(f"engines of kind {kind!r} are not supported by this version of ipcluster-kit") from None


def for_launcher(launcher: str, profile_dir: Path) -> type[EngineSet]:
    """The engine-set class that serves a profile's launcher; BadInput naming `ipcluster start` otherwise."""
    for kind in KIND_MODULES:
        if launcher == kind or launcher in getattr(ENGINE_SETS.get(kind), "launchers", ()):
            try:
                return engine_set_class(kind)
            except BadInput:
                break
    raise BadInput(
        f"`up` does not start engines with the {launcher!r} launcher; start this profile with ipyparallel:"
        f" ipcluster start --profile-dir={profile_dir}"
    )


def record_from_dict(data: dict[str, Any]) -> EngineSetRecord:
    """A typed record from the state file's (validated) dict, by its ``kind``."""
    return engine_set_class(str(data.get("kind"))).record_type.from_dict(data)
