"""A temporary cluster's watchdog: when the process that owns the cluster dies, however it dies
(SIGKILL included), stop everything of the cluster and remove its directory.

The kit starts its controllers and engines in sessions of their own, so that a cluster made by `up`
outlives the command. A temporary cluster (:func:`ipcluster_kit.cluster.temporary.temporary_cluster`)
must not: its owner stops it on the way out, but a killed owner never gets there. So each temporary
cluster has this watchdog, started before the cluster (``python -m ipcluster_kit.cluster.watchdog``,
in a session of its own, deaf to a terminal's Ctrl-C, which is the owner's to handle). It waits for
the owner's exit (a pidfd where Linux has one, else a poll), then runs ``down --force`` on the profile
(its state's records, then every process whose command line names the profile directory) and removes
the directory it was given. When the owner stops the cluster itself, it stops the watchdog too.

What to watch comes in the environment (:data:`ENV`, JSON), not on the command line: a process that
names the profile directory in its arguments counts as one of the cluster's (``up`` refuses to start
beside one, ``down`` stops it).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import sys
import time
from pathlib import Path

from ipcluster_kit import processes

ENV = "IPCK_WATCHDOG"
POLL_INTERVAL = 0.5  # where there is no pidfd
STOP_TIMEOUT = 5.0


def watchdog_command(python: str = sys.executable) -> list[str]:
    return [python, "-m", "ipcluster_kit.cluster.watchdog"]


def watchdog_env(owner: processes.ProcessRecord, name: str, ipython_dir: Path, remove: Path) -> dict[str, str]:
    """The environment of the watchdog of profile ``name`` in ``ipython_dir``, owned by ``owner``,
    that removes ``remove`` once the owner is gone."""
    config = {"owner_pid": owner.pid, "owner_started": owner.create_time, "profile": name,
              "ipython_dir": str(ipython_dir), "remove": str(remove)}  # fmt: skip
    return {**os.environ, ENV: json.dumps(config)}


def wait_for_exit(owner: processes.ProcessRecord) -> None:
    """Return once ``owner`` has exited (at once when it already has, or its PID names another process)."""
    try:
        fd = os.pidfd_open(owner.pid)  # type: ignore[attr-defined]  # Linux >= 5.3
    except (AttributeError, OSError):
        fd = None
    try:
        if not processes.is_alive(owner):  # checked after opening the pidfd: that one is the owner's
            return
        if fd is not None:
            select.select([fd], [], [])  # readable once the process has exited
            return
        while processes.is_alive(owner):
            time.sleep(POLL_INTERVAL)
    finally:
        if fd is not None:
            os.close(fd)


def clean_up(name: str, ipython_dir: Path, remove: Path) -> None:
    """Stop everything of profile ``name`` (as ``down --force`` does) and remove ``remove``."""
    from ipcluster_kit.cluster.shutdown import down
    from ipcluster_kit.errors import KitError
    from ipcluster_kit.profile.spec import profile_dir_for

    try:
        down(name, ipython_dir, timeout=STOP_TIMEOUT, force=True)
    except KitError as exc:  # e.g. the profile record is gone: every process of the directory still goes
        print(f"watchdog: down {name}: {exc.message}", file=sys.stderr, flush=True)
        found = processes.find_by_argument(str(profile_dir_for(name, ipython_dir)), role="found by profile directory")
        processes.stop_processes(found, timeout=STOP_TIMEOUT)
    shutil.rmtree(remove, ignore_errors=True)


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    config = json.loads(os.environ[ENV])
    owner = processes.ProcessRecord(int(config["owner_pid"]), config["owner_started"], role="owner")
    wait_for_exit(owner)
    print(f"watchdog: owner PID {owner.pid} exited; stopping temporary cluster {config['profile']}", file=sys.stderr, flush=True)
    clean_up(config["profile"], Path(config["ipython_dir"]), Path(config["remove"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
