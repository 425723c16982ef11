"""`up`: start a profile's controller and engine sets, and return once every engine has registered.

The processes are started by the kit itself (not by ``ipcluster``), each in a session of its own, so
they outlive the command and each can be stopped with everything it spawned. The whole bring-up
holds the profile's lock (:mod:`ipcluster_kit.cluster.lock`); every record is in the state file as
soon as its process or job exists; on any failure, or Ctrl-C, everything started is stopped again
and the one-line error says so.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ipcluster_kit import processes
from ipcluster_kit.cluster.client import EnginesTimeout, wait_for_engines
from ipcluster_kit.cluster.controller import (
    controller_command,
    early_engine_file,
    heartbeat_for,
    process_env,
    publish_engine_file,
    remove_connection_files,
    start_controller,
    wait_until_ready,
)
from ipcluster_kit.cluster.enginesets.base import EngineSet, EngineSetContext, engine_set_class, for_launcher
from ipcluster_kit.cluster.lock import profile_lock
from ipcluster_kit.cluster.running import RunningCluster, Timeline, is_up, load_state, running_cluster
from ipcluster_kit.cluster.shutdown import stop_state
from ipcluster_kit.cluster.state import ClusterState
from ipcluster_kit.errors import BadInput, KitError
from ipcluster_kit.profile.store import connection_files, read_spec
from ipcluster_kit.validate import check_count, check_seconds

DEFAULT_TIMEOUT = 60.0
NOTE_INTERVAL = 1.0
Progress = Callable[[str], None]


def _no_progress(message: str) -> None:
    pass


def check_up_options(timeout: float, engines: int | None, min_engines: int | None) -> None:
    """The `up` options' checks, shared by the API and the CLI (one BadInput line each)."""
    check_seconds("--timeout", timeout)
    if engines is not None:
        check_count("--engines", engines, 0)  # 0: no local engines, only the profile's hosts
    if min_engines is not None:
        check_count("--min-engines", min_engines, 1)


def plan_engine_sets(spec: Any, profile_dir: Path, *, engines: int | None, deadline: float = float("inf"),
                     options: dict[str, Any] | None = None) -> list[EngineSet]:  # fmt: skip
    """The engine sets `up` starts for the profile, each validated (nothing started yet)."""
    options = options or {}

    def make(cls: type[EngineSet], n: int) -> EngineSet:
        return cls(EngineSetContext(spec=spec, profile_dir=profile_dir, engines=n, deadline=deadline, env=process_env(),
                                    engine_file=early_engine_file(profile_dir) if cls.early else None, options=options))  # fmt: skip

    if spec.launcher in ("local", "ssh"):
        local = engines if engines is not None else (0 if spec.hosts else spec.engines)
        sets: list[EngineSet] = []
        if local > 0:
            sets.append(make(engine_set_class("local"), local))
        if spec.hosts:
            sets.append(make(engine_set_class("ssh"), sum(h.engines for h in spec.hosts)))
    else:
        sets = [make(for_launcher(spec.launcher, profile_dir), engines or spec.engines)]
    if not sets:
        raise BadInput(f"invalid --engines {engines}: at least 1 engine is needed")
    for engine_set in sets:
        engine_set.validate()
    return sets


def preview(name: str, ipython_dir: str | os.PathLike | None = None, *, engines: int | None = None,
            ssh_config: Sequence[str] | None = None, accept_new_host_keys: bool = False) -> dict:  # fmt: skip
    """What `up` would run (`up --dry-run`): the controller's command and each engine set's exact
    command line(s) or job script. Starts nothing, writes nothing, contacts no host."""
    import shlex

    if engines is not None:
        check_count("--engines", engines, 1)
    spec, profile_dir = read_spec(name, ipython_dir)
    sets = plan_engine_sets(spec, profile_dir, engines=engines,
                            options=_set_options(spec, ssh_config, accept_new_host_keys))  # fmt: skip
    total = sum(s.context.engines for s in sets)
    return {
        "profile": name,
        "profile_dir": str(profile_dir),
        "controller": shlex.join(controller_command(profile_dir, heartbeat_for(total, spec.heartbeat_ms))),
        "engine_sets": [{"kind": s.kind, "engines": s.context.engines, "run": [p.to_dict() for p in s.preview()]} for s in sets],
    }


def _set_options(spec: Any, ssh_config: Sequence[str] | None, accept_new_host_keys: bool) -> dict[str, Any]:
    """Options for the engine sets; SSH settings are checked whenever given (a missing --ssh-config is
    refused even for a profile without hosts)."""
    if not spec.hosts and not ssh_config:
        return {}
    from ipcluster_kit.cluster.enginesets.ssh import ssh_options

    return {"ssh_options": ssh_options(spec, ssh_config, accept_new_host_keys=accept_new_host_keys)}


def _check_min_engines(min_engines: int | None, sets: list[EngineSet]) -> None:
    total = sum(s.context.engines for s in sets)
    if min_engines is not None and min_engines > total:
        raise BadInput(f"invalid --min-engines {min_engines}: the profile starts only {total} engine(s)")


def up(
    name: str,
    ipython_dir: str | os.PathLike | None = None,
    *,
    engines: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    progress: Progress = _no_progress,
    ssh_config: Sequence[str] | None = None,
    accept_new_host_keys: bool = False,
    min_engines: int | None = None,
) -> tuple[RunningCluster, bool]:
    """Start the profile's controller and engine sets; return once every engine registered.

    Returns ``(cluster, started)``; ``started`` is False when the cluster was already up. On failure
    everything started is stopped again and KitError says why (exit status 130 after Ctrl-C); a
    timeout names what each engine set's batch system said last (``job 42 PENDING (Resources)``).
    ``min_engines`` lets a partial bring-up count as success, for every kind of engine set: when
    some engines failed (SSH hosts, a job's tasks, local processes), as soon as ``min_engines`` have
    registered; at the deadline, when at least ``min_engines`` have. ``cluster.engines`` is then
    the number registered and ``cluster.warnings`` says what is missing and why. A second `up` of
    the profile meanwhile waits for this one (bounded by its own timeout), then finds the cluster up.
    """
    check_up_options(timeout, engines, min_engines)
    spec, profile_dir = read_spec(name, ipython_dir)
    deadline = time.monotonic() + timeout
    options = _set_options(spec, ssh_config, accept_new_host_keys)
    _check_min_engines(min_engines, plan_engine_sets(spec, profile_dir, engines=engines, options=options))
    with profile_lock(profile_dir, f"ipcluster-kit up {name}", timeout, waiting=progress):
        state = load_state(name, profile_dir)
        if is_up(state):
            return running_cluster(name, profile_dir, spec, state), False
        if state is not None:  # stale: the controller is gone; clear what may be left of it
            stop_state(spec, profile_dir, state)
            state.remove()
        live = processes.find_by_argument(str(profile_dir))
        if live:
            raise KitError(f"processes of profile {name!r} are running without a state file (PIDs"
                           f" {', '.join(str(r.pid) for r in live)}); stop them with `ipcluster-kit down {name} --force`")  # fmt: skip
        sets = plan_engine_sets(spec, profile_dir, engines=engines, deadline=deadline, options=options)
        return _bring_up(name, spec, profile_dir, sets, Wait(deadline, timeout, min_engines), progress), True


@dataclass(frozen=True)
class Wait:
    """How long `up` waits for registration (``deadline`` is ``time.monotonic()``; ``timeout`` the
    option's value, for messages) and how many engines are enough (``--min-engines``)."""

    deadline: float
    timeout: float
    min_engines: int | None = None


def _bring_up(name: str, spec: Any, profile_dir: Path, sets: list[EngineSet], wait: Wait,
              progress: Progress) -> RunningCluster:  # fmt: skip
    """Controller first; engine sets that can (``early``) start at once and wait for their connection
    file, which is published as soon as the controller's is complete; then the others."""
    timeline = Timeline()
    state = ClusterState(profile=name, profile_dir=str(profile_dir), scheme=spec.scheme,
                         expected_engines=sum(s.context.engines for s in sets))  # fmt: skip
    heartbeat = heartbeat_for(state.expected_engines, spec.heartbeat_ms)
    records: list[Any] = [None] * len(sets)
    watching = threading.Event()
    try:
        progress("starting controller")
        state.controller = start_controller(profile_dir, process_env(), heartbeat)
        state.save()
        timeline.mark("controller started", heartbeat_ms=heartbeat[0])
        _start_sets(sets, records, state, timeline, progress, early=True)
        wait_until_ready(profile_dir, state.controller, wait.deadline)
        publish_engine_file(profile_dir)
        timeline.mark("controller ready")
        watch_schedulers(profile_dir, timeline, wait.deadline, watching)
        _start_sets(sets, records, state, timeline, progress, early=False)
        warnings = _check_started(records, state, wait.min_engines, progress)
        warnings += _wait_registered(sets, records, state, timeline, wait, progress)
    except BaseException as exc:
        watching.set()
        _clean_up(name, spec, profile_dir, state, exc)
        raise
    watching.set()
    state.timeline = sorted(timeline.events, key=lambda e: e["seconds"])
    state.save()
    cluster = running_cluster(name, profile_dir, spec, state)
    cluster.bringup_seconds = timeline.elapsed
    cluster.warnings = warnings
    return cluster


def _start_sets(sets: list[EngineSet], records: list[Any], state: ClusterState, timeline: Timeline, progress: Progress,
                *, early: bool) -> None:  # fmt: skip
    for i, engine_set in enumerate(sets):
        if engine_set.early == early:
            progress(f"starting {engine_set.context.engines} {engine_set.kind} engine(s)")
            records[i] = engine_set.start(on_record=state.put)
            timeline.mark(f"{engine_set.kind} engines started", engines=records[i].engines)


def _check_started(records: list[Any], state: ClusterState, min_engines: int | None, progress: Progress) -> list[str]:
    """Count what started; a set that started only part of its engines fails the bring-up unless
    ``min_engines`` are up in all (the failures are then the warnings)."""
    failures = [f for record in records for f in getattr(record, "failures", [])]
    started, planned = sum(record.engines for record in records), state.expected_engines
    state.expected_engines = started
    state.save()
    if not failures:
        return []
    errors = "; ".join(failures)
    if min_engines is not None and started >= min_engines:
        return [_partial(started, planned, min_engines, errors, progress)]
    raise KitError(errors)


def _partial(count: int, planned: int, min_engines: int, reason: str, progress: Progress) -> str:
    """The warning of a bring-up that goes on with fewer engines than planned (``--min-engines``)."""
    warning = f"continuing with {count} of {planned} engine(s) (at least {min_engines} required): {reason}"
    progress(warning)
    return warning


def watch_schedulers(profile_dir: Path, timeline: Timeline, deadline: float, done: threading.Event) -> None:
    """Mark in the timeline when every port engines need accepts connections (the controller's
    schedulers bind after it wrote its files); watched in the background until ``done``, never waited on."""
    import json
    import socket

    def watch() -> None:
        try:
            info = json.loads(connection_files(profile_dir)["engine"].read_text())
            address = info["interface"].partition("://")[2]
            address = info.get("location") or "127.0.0.1" if address in ("*", "0.0.0.0", "") else address
            ports = [info[k] for k in ("registration", "control", "mux", "task", "iopub", "hb_ping", "hb_pong")]
            ports += list(info.get("broadcast", []))
        except (OSError, ValueError, KeyError):
            return
        pending = set(ports)
        while pending and time.monotonic() < deadline and not done.is_set():
            for port in sorted(pending):
                try:
                    socket.create_connection((address, port), timeout=0.2).close()
                    pending.discard(port)
                except OSError:
                    break
            if pending:
                time.sleep(0.01)
        if not pending:
            timeline.mark("schedulers ready")

    threading.Thread(target=watch, name="ipck-schedulers", daemon=True).start()


class _Enough(Exception):
    """Raised inside the registration wait: a set failed, and ``--min-engines`` engines are registered."""


def _wait_registered(sets: list[EngineSet], records: list[Any], state: ClusterState, timeline: Timeline, wait: Wait,
                     progress: Progress) -> list[str]:  # fmt: skip
    """Wait until every engine registered; the warnings of a partial success (see :func:`up`).

    Without ``min_engines`` a set's failure ends the wait with its error, and so does the deadline,
    with what each set's batch system said last. With it, a failed set is no longer checked and
    waiting ends once ``min_engines`` are registered; at the deadline, that many are enough too.
    """
    expected, min_engines = state.expected_engines, wait.min_engines
    notes: dict[int, str] = {}  # each set's last waiting note
    failures: list[str] = []
    failed: set[int] = set()
    registered = 0
    next_note = 0.0

    def check() -> None:
        nonlocal next_note
        for i, (engine_set, record) in enumerate(zip(sets, records)):
            if i not in failed:
                try:
                    engine_set.check(record)
                except KitError as exc:
                    if min_engines is None:
                        raise
                    failed.add(i)
                    failures.append(exc.message)
                    progress(exc.message)
        if failures and min_engines is not None and registered >= min_engines:
            raise _Enough
        if time.monotonic() >= next_note:
            next_note = time.monotonic() + NOTE_INTERVAL
            _note(sets, records, notes, progress)

    def counted(count: int) -> None:
        nonlocal registered
        registered = count
        if count:
            timeline.mark("engines registered", engines=count)

    try:
        wait_for_engines(connection_files(Path(state.profile_dir))["client"], expected,
                         max(wait.deadline - time.monotonic(), 0.5), progress=progress, on_count=counted, check=check)  # fmt: skip
        return []
    except _Enough:
        reason = "; ".join(failures)
    except EnginesTimeout as exc:
        _note(sets, records, notes, progress)
        reason = "; ".join([f"only {exc.count} of {expected} engines registered within {wait.timeout:g} s",
                            *failures, *notes.values()])  # fmt: skip
        if min_engines is None or exc.count < min_engines:
            raise KitError(reason) from None
    assert min_engines is not None
    state.expected_engines = registered
    return [_partial(registered, expected, min_engines, reason, progress)]


def _note(sets: list[EngineSet], records: list[Any], notes: dict[int, str], progress: Progress) -> None:
    """Ask each set what its batch system says now (``waiting_note``); keep and show the answers."""
    for i, (engine_set, record) in enumerate(zip(sets, records)):
        try:
            note = engine_set.waiting_note(record)
        except KitError:  # the batch system did not answer this time: the last answer stands
            continue
        if note:
            notes[i] = note
            progress(note)


def _clean_up(name: str, spec: Any, profile_dir: Path, state: ClusterState, exc: BaseException) -> None:
    """After a failed or interrupted bring-up: stop everything started (Ctrl-C ignored meanwhile), then
    turn the cause into its one-line error."""
    ignore = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if ignore else None
    try:
        report = stop_state(spec, profile_dir, state)
        state.remove()
        remove_connection_files(profile_dir)
    finally:
        if ignore:
            signal.signal(signal.SIGINT, previous)
    what = f"the controller and {report['engines_stopped'] + report['remote_engines_stopped']} engine(s)" \
        if report["controller_stopped"] else "what had started"  # fmt: skip
    left = f"; still running: PIDs {[e.get('pid') for e in report['left_running']]}" if report["left_running"] else ""
    if isinstance(exc, KeyboardInterrupt):
        raise KitError(f"interrupted: `up {name}` stopped {what} it had started{left}", exit_code=130) from None
    if isinstance(exc, KitError):
        raise KitError(f"cluster {name!r} did not come up: {exc.message}; everything started was stopped{left}") from None
