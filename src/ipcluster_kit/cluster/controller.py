"""The controller `up` starts on this machine: ``python -m ipyparallel.controller`` in a session of its
own (its schedulers are its children, in its process group), ready once its connection files are
complete."""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

from ipcluster_kit import processes
from ipcluster_kit.cluster.client import log_tail
from ipcluster_kit.errors import KitError
from ipcluster_kit.files import write_private
from ipcluster_kit.processes import ProcessRecord
from ipcluster_kit.profile.store import connection_files

POLL_INTERVAL = 0.02
# The copy of the engine connection file that engines started early wait for (``--file``): written
# atomically once the controller's own file is complete (the controller writes its file in place).
EARLY_ENGINE_FILE = "ipcluster-kit-engine.json"

# Heartbeat period chosen from the cluster's size. An engine's registration completes on a heartbeat,
# so a short period brings engines up sooner; the hub pings every engine each period, so the period
# grows with the engine count to bound the message rate. ipyparallel unregisters an engine after
# `max_heartmonitor_misses` missed beats (10 by default): the number of misses grows as the period
# shrinks, so a dead engine is noticed no sooner than with the profile's own period (10 beats of
# it), and a busy machine never makes a live engine look dead.
MIN_HEARTBEAT_MS = 100
MAX_PINGS_PER_SECOND = 2000
IPYPARALLEL_MISSES = 10


def heartbeat_for(engines: int, profile_ms: int) -> tuple[int, int]:
    """(period in ms, allowed missed beats) for a cluster of ``engines`` whose profile asks for ``profile_ms``."""
    sized = max(MIN_HEARTBEAT_MS, math.ceil(engines * 1000 / MAX_PINGS_PER_SECOND))
    period = min(profile_ms, sized)
    return period, max(IPYPARALLEL_MISSES, math.ceil(profile_ms * IPYPARALLEL_MISSES / period))


def process_env() -> dict[str, str]:
    """The environment of the processes `up` starts: this one, without a connection-info override."""
    env = os.environ.copy()
    env.pop("IPP_CONNECTION_INFO", None)
    return env


def controller_command(profile_dir: Path, heartbeat: tuple[int, int] | None = None, python: str = sys.executable) -> list[str]:
    """The controller's command line; ``heartbeat`` (period ms, misses) overrides the profile's config."""
    command = [python, "-m", "ipyparallel.controller", f"--profile-dir={profile_dir}"]
    if heartbeat is not None:
        command += [f"--HeartMonitor.period={heartbeat[0]}", f"--HeartMonitor.max_heartmonitor_misses={heartbeat[1]}"]
    return command


def early_engine_file(profile_dir: Path) -> Path:
    return Path(profile_dir) / "security" / EARLY_ENGINE_FILE


def remove_connection_files(profile_dir: Path) -> None:
    for path in [*connection_files(profile_dir).values(), early_engine_file(profile_dir)]:
        path.unlink(missing_ok=True)


def start_controller(profile_dir: Path, env: dict[str, str] | None = None, heartbeat: tuple[int, int] | None = None) -> ProcessRecord:
    """Spawn the controller (after removing stale connection files, which engines would otherwise read)."""
    remove_connection_files(profile_dir)
    record, _proc = processes.spawn(controller_command(profile_dir, heartbeat), profile_dir / "log" / "kit-controller.log",
                                    "controller", env=env)  # fmt: skip
    return record


def publish_engine_file(profile_dir: Path) -> Path:
    """Copy the controller's complete engine connection file, atomically and 0600, to where engines
    started early wait for it."""
    target = early_engine_file(profile_dir)
    write_private(target, connection_files(profile_dir)["engine"].read_text())
    return target


def _complete(path: Path) -> bool:
    """The file holds a whole JSON document (ipcontroller writes it in place, not atomically)."""
    try:
        return bool(json.loads(path.read_text()))
    except (OSError, ValueError):
        return False


def wait_until_ready(profile_dir: Path, controller: ProcessRecord, deadline: float) -> None:
    """Wait until the controller's connection files are complete; KitError (naming its log) when it
    exits first or ``deadline`` (``time.monotonic()``) passes."""
    files = list(connection_files(profile_dir).values())
    while not all(_complete(p) for p in files):
        if not processes.is_alive(controller):
            raise KitError(f"the controller exited on start; log {controller.log}: {log_tail(controller.log)}")
        if time.monotonic() >= deadline:
            raise KitError(f"the controller wrote no connection files in time; log {controller.log}")
        time.sleep(POLL_INTERVAL)
