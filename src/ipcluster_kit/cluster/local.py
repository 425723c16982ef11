"""Local cluster control: `up` starts a profile's controller and engines and returns once every
engine has registered; `status` reports; `down` stops exactly what `up` started, by PID.

The processes are started by the kit itself (not by ``ipcluster``), each in its own session,
so they outlive the command and each can be stopped with everything it spawned.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from ipcluster_kit import processes
from ipcluster_kit.cluster.client import connect, log_tail, registered_engines, wait_for_engines
from ipcluster_kit.cluster.state import ClusterState
from ipcluster_kit.processes import ProcessRecord
from ipcluster_kit.errors import BadInput, KitError
from ipcluster_kit.profile.spec import ProfileSpec, build_spec, profile_dir_for
from ipcluster_kit.profile.store import connection_files, plan_write, read_spec, write_profile

DEFAULT_TIMEOUT = 60.0
Progress = Callable[[str], None]


def _no_progress(message: str) -> None:
    pass


@dataclass
class RunningCluster:
    """A cluster that is up: where its files are and how to connect to it."""

    name: str
    profile_dir: Path
    spec: ProfileSpec
    engines: int
    scheme: str
    hosts: list[str] = field(default_factory=list)
    bringup_seconds: float | None = None
    warnings: list[str] = field(default_factory=list)

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


def _wait_for_connection_files(profile_dir: Path, controller: ProcessRecord, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    files = connection_files(profile_dir)
    while not all(p.is_file() and p.stat().st_size > 0 for p in files.values()):
        if not processes.is_alive(controller):
            raise KitError(f"the controller exited on start; log {controller.log}: {log_tail(controller.log)}")
        if time.monotonic() >= deadline:
            raise KitError(f"the controller wrote no connection files within {timeout:g} s; log {controller.log}")
        time.sleep(0.05)


def _python_env() -> dict:
    env = os.environ.copy()
    env.pop("IPP_CONNECTION_INFO", None)
    return env


def load_state(profile_dir: Path) -> ClusterState | None:
    return ClusterState.load(profile_dir)


def is_up(state: ClusterState | None) -> bool:
    return bool(state and state.controller and processes.is_alive(state.controller))


def _stop_state(state: ClusterState, timeout: float = 10.0) -> dict:
    """Stop every process of a state (remote engines, local engines, then the controller)."""
    stopped_remote, remote_error = 0, None
    if state.remote:
        from ipcluster_kit.remote import glue

        # A remote failure must not keep the local engines and the controller running: note it, go on.
        try:
            stopped_remote = glue.stop_remote(state, timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - reported in the result, never swallowed
            remote_error = f"{type(exc).__name__}: {exc}"
    local = state.engines + ([state.controller] if state.controller else [])
    report = processes.stop_processes(local, timeout=timeout)
    stopped = {r.pid for r in report.stopped}
    return {
        "engines_stopped": sum(1 for r in state.engines if r.pid in stopped),
        "remote_engines_stopped": stopped_remote,
        "remote_error": remote_error,
        "controller_stopped": bool(state.controller and state.controller.pid in stopped),
        "stopped": [r.to_dict() for r in report.stopped],
        "left_running": [r.pid for r in report.left],
    }


def up(
    name: str,
    ipython_dir: str | os.PathLike | None = None,
    *,
    engines: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    progress: Progress = _no_progress,
    ssh_config: list[str] | None = None,
    accept_new_host_keys: bool = False,
    min_engines: int | None = None,
) -> tuple[RunningCluster, bool]:
    """Start the profile's controller and engines; return once all engines registered.

    Returns ``(cluster, started)``; ``started`` is False when the cluster was already up.
    On failure everything started is stopped again and KitError says why. With remote hosts,
    ``min_engines`` lets a partial bring-up count as success (the hosts that failed are reported
    through ``progress`` and ``RunningCluster.warnings``).
    """
    if timeout <= 0:
        raise BadInput(f"invalid --timeout {timeout:g}: it must be more than 0 seconds")
    spec, profile_dir = read_spec(name, ipython_dir)
    if spec.launcher not in ("local", "ssh"):
        raise BadInput(
            f"profile {name!r} uses the {spec.launcher!r} launcher; `up` starts local and ssh engines."
            f" Start it with ipyparallel: ipcluster start --profile-dir={profile_dir}"
        )
    n_local = engines if engines is not None else (0 if spec.hosts else spec.engines)
    if n_local < 0 or (engines is not None and engines <= 0 and not spec.hosts):
        raise BadInput(f"invalid --engines {engines}: at least 1 engine is needed")
    n_total = n_local + sum(h.engines for h in spec.hosts)

    state = load_state(profile_dir)
    if is_up(state):
        return _running(name, profile_dir, spec, state), False
    if state is not None:  # stale: the controller is gone; clear what may be left of it
        _stop_state(state)
        state.remove()

    for path in connection_files(profile_dir).values():
        path.unlink(missing_ok=True)

    started = time.monotonic()
    log_dir = profile_dir / "log"
    state = ClusterState(profile=name, profile_dir=str(profile_dir), expected_engines=n_total, scheme=spec.scheme)
    popens: list[subprocess.Popen] = []
    try:
        progress("starting controller")
        controller, proc = processes.spawn(
            [sys.executable, "-m", "ipyparallel.controller", f"--profile-dir={profile_dir}"],
            log_dir / "kit-controller.log",
            "controller",
            env=_python_env(),
        )
        popens.append(proc)
        state.controller = controller
        state.save()
        _wait_for_connection_files(profile_dir, controller, timeout)

        progress(f"starting {n_local} local engine(s)")
        for i in range(n_local):
            record, proc = processes.spawn(
                [sys.executable, "-m", "ipyparallel.engine", f"--profile-dir={profile_dir}"],
                log_dir / f"kit-engine-{i}.log",
                "engine",
                env=_python_env(),
            )
            popens.append(proc)
            state.engines.append(record)
        state.save()

        warnings: list[str] = []
        if spec.hosts:
            from ipcluster_kit.remote import glue
            from ipcluster_kit.remote.ssh import SSHOptions

            options = SSHOptions.build(
                ssh_config or ([spec.ssh_config] if spec.ssh_config else None), accept_new_host_keys=accept_new_host_keys
            )

            def note(message: str) -> None:
                if message.startswith("continuing with"):
                    warnings.append(message)
                progress(message)

            try:
                glue.start_remote(spec, profile_dir, state, timeout=timeout, progress=note, ssh_options=options,
                                  min_engines=min_engines)  # fmt: skip
            finally:
                state.save()  # engines that did start are recorded, so that the clean-up stops them

        remaining = max(timeout - (time.monotonic() - started), 0.5)
        wait_for_engines(connection_files(profile_dir)["client"], state.expected_engines, remaining, watch=state.engines,
                         progress=progress)  # fmt: skip
    except BaseException as exc:
        _stop_state(state)
        state.remove()
        for path in connection_files(profile_dir).values():
            path.unlink(missing_ok=True)
        for proc in popens:
            with contextlib.suppress(Exception):
                proc.wait(timeout=1)
        if isinstance(exc, KitError):
            raise KitError(f"cluster {name!r} did not come up: {exc.message}; everything started was stopped") from None
        raise
    cluster = _running(name, profile_dir, spec, state)
    cluster.bringup_seconds = time.monotonic() - started
    cluster.warnings = warnings
    return cluster, True


def _running(name: str, profile_dir: Path, spec: ProfileSpec, state: ClusterState) -> RunningCluster:
    hosts = ["localhost"] * len(state.engines) + [h["host"] for h in state.remote for _ in h.get("pids", [])]
    return RunningCluster(
        name=name, profile_dir=profile_dir, spec=spec, engines=state.expected_engines,
        scheme=state.scheme or spec.scheme, hosts=sorted(set(hosts)),
    )  # fmt: skip


def down(name: str, ipython_dir: str | os.PathLike | None = None, *, timeout: float = 10.0) -> dict:
    """Stop everything `up` started for the profile. Returns what was stopped."""
    spec, profile_dir = read_spec(name, ipython_dir)
    state = load_state(profile_dir)
    if state is None:
        return {"profile": name, "was_up": False, "engines_stopped": 0, "controller_stopped": False, "left_running": []}
    report = _stop_state(state, timeout=timeout)
    if report["left_running"]:
        raise KitError(f"could not stop PIDs {report['left_running']} of cluster {name!r}; the state file is kept")
    if report["remote_error"]:
        raise KitError(f"stopped the controller and local engines of {name!r}, but not the remote engines"
                       f" ({report['remote_error']}); the state file is kept, run `ipcluster-kit down {name}` again")
    state.remove()
    for path in connection_files(profile_dir).values():
        path.unlink(missing_ok=True)
    return {"profile": name, "was_up": True, **report}


def status(name: str, ipython_dir: str | os.PathLike | None = None, *, timeout: float = 5.0) -> dict:
    """What runs for the profile: controller, engines (by PID and as the controller sees them), scheme."""
    import json

    spec, profile_dir = read_spec(name, ipython_dir)
    state = load_state(profile_dir)
    result: dict = {
        "profile": name, "profile_dir": str(profile_dir), "up": is_up(state), "scheme": spec.scheme,
        "expected_engines": state.expected_engines if state else spec.engines,
        "controller": None, "engines": [], "registered_engines": None, "hosts": {},
    }  # fmt: skip
    if state is None:
        return result
    if state.controller:
        result["controller"] = {"pid": state.controller.pid, "running": processes.is_alive(state.controller), "log": state.controller.log}
    for record in state.engines:
        result["engines"].append({"pid": record.pid, "host": "localhost", "running": processes.is_alive(record), "log": record.log})
    if state.engines:
        result["hosts"]["localhost"] = sum(1 for e in result["engines"] if e["running"])
    if state.remote:
        from ipcluster_kit.remote import glue

        for entry in glue.status_remote(state, timeout=timeout):
            result["engines"].append(entry)
            if entry["running"]:
                result["hosts"][entry["host"]] = result["hosts"].get(entry["host"], 0) + 1
    client_file = connection_files(profile_dir)["client"]
    if result["up"] and client_file.is_file():
        try:
            result["scheme"] = json.loads(client_file.read_text()).get("task_scheme", spec.scheme)
        except (OSError, ValueError):
            pass
        try:
            result["registered_engines"] = registered_engines(client_file, timeout)
        except Exception as exc:  # the controller may be wedged: say so, do not crash the report
            result["controller_error"] = f"{type(exc).__name__}: {exc}"
    return result


def attach(name: str, ipython_dir: str | os.PathLike | None = None) -> RunningCluster:
    """The cluster `ipcluster-kit up NAME` started; KitError when it is not up."""
    spec, profile_dir = read_spec(name, ipython_dir)
    state = load_state(profile_dir)
    if not is_up(state):
        raise KitError(f"cluster {name!r} is not up (start it with `ipcluster-kit up {name}`)")
    return _running(name, profile_dir, spec, state)


@contextlib.contextmanager
def temporary_cluster(
    engines: int | None = None,
    scheme: str = "leastload",
    hwm: int | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    ipython_dir: str | os.PathLike | None = None,
    progress: Progress = _no_progress,
    heartbeat_ms: int | None = None,
) -> Iterator[RunningCluster]:
    """A throwaway local profile, brought up, and stopped and deleted on exit.

    Raises KitError on exit when anything of the cluster is still running after `down` (by PID, or
    any process whose command line names the profile directory): a leak is never silent.
    """
    own_dir = ipython_dir is None
    root = Path(tempfile.mkdtemp(prefix="ipck-")) if own_dir else Path(ipython_dir)
    name = f"kit-tmp-{uuid.uuid4().hex[:8]}"
    try:
        extra = {} if heartbeat_ms is None else {"heartbeat_ms": heartbeat_ms}
        spec = build_spec(name, preset="local", scheme=scheme, hwm=hwm, engines=engines or os.cpu_count() or 1, **extra)
        write_profile(plan_write(spec, root))
        cluster, _ = up(name, root, timeout=timeout, progress=progress)
        try:
            yield cluster
        finally:
            down(name, root)  # raises KitError when a recorded process could not be stopped
            leftovers = processes.find_by_argument(str(cluster.profile_dir))
            if leftovers:
                raise KitError(f"temporary cluster {name!r} left processes running after down: PIDs {[r.pid for r in leftovers]}")
    finally:
        if own_dir:
            shutil.rmtree(root, ignore_errors=True)
        else:
            shutil.rmtree(profile_dir_for(name, root), ignore_errors=True)
