"""Processes the kit starts: spawned detached, recorded with their start time, stopped by PID.

A PID alone is not an identity: after a reboot or a long time it may name another process.
Each record keeps the process's start time (field 22 of /proc/PID/stat, in clock ticks since
boot), and nothing is signalled unless that still matches.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class ProcessRecord:
    pid: int
    start_ticks: int | None
    role: str  # "controller" or "engine"
    log: str = ""
    host: str = "localhost"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ProcessRecord":
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__ if k in data})


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) is in parentheses and may contain spaces: split after it.
    return [raw[: raw.index(" ")]] + [raw[raw.index("(") : raw.rindex(")") + 1]] + raw[raw.rindex(")") + 2 :].split()


def start_ticks(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[21]) if fields else None


def is_alive(record: ProcessRecord) -> bool:
    """True when the recorded process still runs (not a zombie) and is the same process."""
    fields = _stat_fields(record.pid)
    if fields is None or fields[2] == "Z":
        return False
    return record.start_ticks is None or int(fields[21]) == record.start_ticks


def group_members(pgid: int) -> list[int]:
    """Live PIDs in process group ``pgid`` (the controller's schedulers run in its group)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields and fields[2] != "Z" and int(fields[4]) == pgid:
            members.append(int(entry.name))
    return members


def spawn(cmd: list[str], log_path: Path, role: str, env: dict | None = None) -> tuple[ProcessRecord, subprocess.Popen]:
    """Start ``cmd`` in a new session (its own process group), output to ``log_path``.

    The new session means the process outlives the command that started it, and that
    stopping it can signal its whole group (children included) and nothing else.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    return ProcessRecord(pid=proc.pid, start_ticks=start_ticks(proc.pid), role=role, log=str(log_path)), proc


def children_of(parents: set[int]) -> list[ProcessRecord]:
    """Live processes whose parent is one of ``parents``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields and fields[2] != "Z" and int(fields[3]) in parents:
            found.append(ProcessRecord(pid=int(entry.name), start_ticks=int(fields[21]), role="child"))
    return found


def stop(records: list[ProcessRecord], timeout: float = 10.0) -> list[ProcessRecord]:
    """SIGTERM each live process group, then SIGKILL what is left after ``timeout``.

    Direct children are stopped too: an engine's nanny runs in a session of its own, so
    signalling the engine's group does not reach it. Returns the records that were running
    and have been stopped. Zombies of our own children are reaped by the caller's Popen objects.
    """
    live = [r for r in records if is_alive(r)]
    helpers = children_of({r.pid for r in live})
    everything = live + helpers

    def remaining() -> list[ProcessRecord]:
        return [r for r in everything if is_alive(r) or (r in live and group_members(r.pid))]

    for record in everything:
        _signal_group(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and remaining():
        time.sleep(0.05)
    for record in remaining():
        _signal_group(record.pid, signal.SIGKILL)
    kill_deadline = time.monotonic() + 5
    while time.monotonic() < kill_deadline and remaining():
        time.sleep(0.05)
    return live


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pgid, sig)
        except (ProcessLookupError, PermissionError):
            pass
