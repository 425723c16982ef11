"""A cluster that is up: how to reach it (:class:`RunningCluster`), what runs (:func:`status`), and
how to find it again (:func:`attach`)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ipcluster_kit import processes
from ipcluster_kit.cluster.client import connect, registered_engines, wait_for_engines
from ipcluster_kit.cluster.enginesets.base import EngineSetContext, engine_set_class
from ipcluster_kit.cluster.state import ClusterState, StateUnreadable
from ipcluster_kit.errors import KitError
from ipcluster_kit.profile.store import connection_files, read_spec

STATUS_TIMEOUT = 5.0


@dataclass
class RunningCluster:
    """A cluster that is up: where its files are and how to connect to it."""

    name: str
    profile_dir: Path
    spec: Any  # ProfileSpec
    engines: int
    scheme: str
    hosts: list[str] = field(default_factory=list)
    bringup_seconds: float | None = None
    warnings: list[str] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    controller: processes.ProcessRecord | None = None
    # processes of this machine whose exit loses engines (local engines, mpiexec), running when the
    # cluster was attached (one that died before is the engine count's business): see check()
    engine_processes: list[processes.ProcessRecord] = field(default_factory=list)
    temporary: bool = False  # a temporary_cluster's: it is stopped by its owner, never by `down`

    @property
    def client_file(self) -> Path:
        return connection_files(self.profile_dir)["client"]

    def connect(self, timeout: float = 30.0):
        """A fresh ``ipyparallel.Client`` that already sees every engine.

        A probe client waits for the engines first; the client returned is made afterwards. With the
        ``pure`` scheme, a client that saw engine 1 register before engine 0 notes a gap in the ids and
        turns task farming off for good; a client made after registration never sees that gap.
        """
        wait_for_engines(self.client_file, self.engines, timeout)
        return connect(self.client_file, timeout)

    def check(self) -> None:
        """:class:`ClusterLost` when a process `up` started on this machine is no longer running: the
        controller (its schedulers may still route tasks, so work can seem to go on), or an engine
        (ipyparallel notices only after missed heartbeats). Cheap (no message to the controller): a
        benchmark calls it between runs, and :func:`ipcluster_kit.cluster.watch.watching` while they run."""
        for record in [self.controller, *self.engine_processes]:
            if record is not None and not processes.is_alive(record):
                hint = "" if self.temporary else f"; stop what is left with `ipcluster-kit down {self.name}`"
                raise ClusterLost(f"the {record.role} of cluster {self.name!r} (PID {record.pid}) stopped running{hint}")


class ClusterLost(KitError):
    """A cluster lost its controller or an engine process while work ran on it: no result stands."""


class Timeline:
    """When each step of a bring-up happened, in seconds since it began (``up --json``'s ``timeline``)."""

    def __init__(self) -> None:
        self.began = time.monotonic()
        self.events: list[dict[str, Any]] = []

    def mark(self, event: str, **extra: Any) -> None:
        self.events.append({"event": event, "seconds": round(time.monotonic() - self.began, 4), **extra})

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.began


def set_context(spec: Any, profile_dir: Path, engines: int, **options: Any) -> EngineSetContext:
    return EngineSetContext(spec=spec, profile_dir=profile_dir, engines=engines, options=options)


def unreadable_message(name: str, profile_dir: Path, exc: StateUnreadable) -> str:
    """One line: the state cannot be read, what of the profile still runs, and how to stop it."""
    live = processes.find_by_argument(str(profile_dir))
    running = f"{len(live)} process(es) of this profile run (PIDs {', '.join(str(r.pid) for r in live)})" if live else \
        "no process of this profile runs here"  # fmt: skip
    return f"{exc.message}; {running}; stop the cluster with `ipcluster-kit down {name} --force` (it finds them by profile directory)"


def load_state(name: str, profile_dir: Path) -> ClusterState | None:
    """The profile's state; a one-line KitError naming `down --force` when the file cannot be read."""
    try:
        return ClusterState.load(profile_dir)
    except StateUnreadable as exc:
        raise KitError(unreadable_message(name, profile_dir, exc)) from None


def is_up(state: ClusterState | None) -> bool:
    return bool(state and state.controller and processes.is_alive(state.controller))


def running_cluster(name: str, profile_dir: Path, spec: Any, state: ClusterState) -> RunningCluster:
    hosts = sorted({host for record in state.engine_sets for host in record.host_labels()})
    return RunningCluster(name=name, profile_dir=profile_dir, spec=spec, engines=state.expected_engines,
                          scheme=state.scheme or spec.scheme, hosts=hosts, timeline=list(state.timeline),
                          controller=state.controller,
                          engine_processes=[r for record in state.engine_sets for r in record.local_processes()
                                            if processes.is_alive(r)])  # fmt: skip


def attach(name: str, ipython_dir: str | os.PathLike | None = None) -> RunningCluster:
    """The cluster `ipcluster-kit up NAME` started; KitError when it is not up."""
    spec, profile_dir = read_spec(name, ipython_dir)
    state = load_state(name, profile_dir)
    if not is_up(state):
        raise KitError(f"cluster {name!r} is not up (start it with `ipcluster-kit up {name}`)")
    return running_cluster(name, profile_dir, spec, state)


def _controller_view(result: dict, client_file: Path, timeout: float) -> None:
    try:
        result["scheme"] = json.loads(client_file.read_text()).get("task_scheme", result["scheme"])
    except (OSError, ValueError):
        pass
    try:
        result["registered_engines"] = registered_engines(client_file, timeout)
    except Exception as exc:  # the controller may be wedged: say so, do not crash the report
        result["controller_error"] = f"{type(exc).__name__}: {exc}"


def status(name: str, ipython_dir: str | os.PathLike | None = None, *, timeout: float = STATUS_TIMEOUT) -> dict:
    """What runs for the profile: the controller, every engine (per engine set: host, PID or rank,
    running), the engines per host, set-level facts (job state...), the scheme, and how many engines
    the controller itself has registered."""
    spec, profile_dir = read_spec(name, ipython_dir)
    state = load_state(name, profile_dir)
    result: dict = {
        "profile": name, "profile_dir": str(profile_dir), "up": is_up(state), "scheme": spec.scheme,
        "expected_engines": state.expected_engines if state else spec.engines,
        "controller": None, "engines": [], "engine_sets": [], "registered_engines": None, "hosts": {},
    }  # fmt: skip
    if state is None:
        return result
    if state.controller:
        c = state.controller
        result["controller"] = {"pid": c.pid, "running": processes.is_alive(c), "log": c.log}
    for record in state.engine_sets:
        engine_set = engine_set_class(record.kind)(set_context(spec, profile_dir, record.engines))
        found = engine_set.status(record, timeout)
        result["engines"] += [e.to_dict() for e in found.engines]
        result["engine_sets"].append({k: v for k, v in found.to_dict().items() if k != "engines"} | {"engines": record.engines})
        for engine in found.engines:
            if engine.running:
                result["hosts"][engine.host] = result["hosts"].get(engine.host, 0) + 1
    client_file = connection_files(profile_dir)["client"]
    if result["up"] and client_file.is_file():
        _controller_view(result, client_file, timeout)
    return result
