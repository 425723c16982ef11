"""Check and stop engines on remote hosts, by the PIDs recorded at bring-up.

A PID is only signalled when its start time on the host still equals the recorded one, so a
PID reused by another process after a reboot or a crash is never killed. Stopping runs the kit's
own :func:`ipcluster_kit.processes.stop_processes` on the host (the engine, its group and its
nanny: TERM, then KILL after ``timeout``).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from ipcluster_kit.errors import KitError
from ipcluster_kit.remote import scripts
from ipcluster_kit.remote.commands import run_python, run_sync
from ipcluster_kit.remote.records import HostRecord
from ipcluster_kit.remote.ssh import SSHOptions, connect

DEFAULT_STOP_TIMEOUT = 5.0


@dataclass
class EngineState:
    pid: int
    state: str  # running | not running | not running (pid reused) | terminated | killed | still running
    log_tail: str = ""  # last lines of the log of an engine that is not running

    @property
    def running(self) -> bool:
        return self.state in ("running", "still running")


@dataclass
class HostEngines:
    """What a check or a stop found on one host."""

    host: str
    ok: bool
    engines: list[EngineState] = field(default_factory=list)
    error: str | None = None
    elapsed: float = 0.0

    @property
    def running(self) -> int:
        return sum(1 for e in self.engines if e.running)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "host": self.host,
            "ok": self.ok,
            "engines": {str(e.pid): e.state for e in self.engines},
            "elapsed": round(self.elapsed, 3),
        }
        if self.error:
            data["error"] = self.error
        return data


async def _control_one(
    record: HostRecord, *, stop: bool, ssh_options: SSHOptions, timeout: float, use_host_record: bool
) -> HostEngines:
    label = record.host.label
    begin = time.monotonic()
    out = HostEngines(host=label, ok=False)
    payload: dict[str, Any] = {"stop": stop, "timeout": timeout, "profile_dir": record.profile_dir}
    if not use_host_record:
        payload["engines"] = [e.to_dict() for e in record.engines]
    try:
        conn = await connect(record.host, ssh_options)
        try:
            answer = await run_python(
                conn,
                record.python,
                scripts.control_script(),
                payload,
                label=label,
                what="stopping engines" if stop else "checking engines",
                timeout=timeout + ssh_options.connect_timeout + 10,
            )
        finally:
            conn.close()
    except KitError as exc:
        out.error = exc.message
    else:
        for pid, text in answer.get("results", {}).items():
            state, _, tail = str(text).partition("\n")
            out.engines.append(EngineState(pid=int(pid), state=state, log_tail=tail))
        out.engines.sort(key=lambda e: e.pid)
        out.ok = not any(e.state == "still running" for e in out.engines)
        if not out.ok:
            out.error = f"{label}: engines still running after KILL: " + ", ".join(
                str(e.pid) for e in out.engines if e.state == "still running"
            )
    out.elapsed = time.monotonic() - begin
    return out


def _control_hosts(
    records: Sequence[HostRecord], *, stop: bool, ssh_options: SSHOptions | None, timeout: float, use_host_record: bool = False
) -> list[HostEngines]:
    options = ssh_options or SSHOptions()

    async def all_hosts() -> list[HostEngines]:
        return list(await asyncio.gather(*(
            _control_one(r, stop=stop, ssh_options=options, timeout=timeout, use_host_record=use_host_record) for r in records
        )))  # fmt: skip

    return run_sync(all_hosts)


def stop_remote_engines(
    records: Sequence[HostRecord],
    *,
    ssh_options: SSHOptions | None = None,
    timeout: float = DEFAULT_STOP_TIMEOUT,
    use_host_record: bool = False,
) -> list[HostEngines]:
    """Stop the recorded engines on every host concurrently: TERM, then KILL after ``timeout``.

    With ``use_host_record`` the PIDs come from the list kept on the host
    (``<remote profile dir>/ipcluster-kit-engines.json``) instead of ``record.engines``: the way to
    stop engines whose local record was lost (e.g. the SSH session dropped during start).
    Never raises for a host's failure (unreachable, ...): it is that host's ``error``.
    """
    return _control_hosts(records, stop=True, ssh_options=ssh_options, timeout=timeout, use_host_record=use_host_record)


def remote_engine_status(
    records: Sequence[HostRecord],
    *,
    ssh_options: SSHOptions | None = None,
    timeout: float = DEFAULT_STOP_TIMEOUT,
) -> list[HostEngines]:
    """Which recorded engines still run on every host (PID and start time), with the log tail of those that do not."""
    return _control_hosts(records, stop=False, ssh_options=ssh_options, timeout=timeout)
