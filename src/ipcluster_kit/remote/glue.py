"""The remote layer as the cluster commands (`up`/`status`/`down`) need it, on their state file.

``ipcluster_kit.cluster.remote_glue`` can delegate to these three functions as they are. Each
host's entry in ``state.remote`` is ``{"host": label, "pids": [...], "record": HostRecord dict}``:
``host`` and ``pids`` for display, ``record`` for checking and stopping by PID and start time.

SSH settings are read from the profile spec when it has them (``ssh_config``,
``accept_new_host_keys``, ``min_engines``, ``connect_timeout``), or passed explicitly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from ipcluster_kit.errors import KitError
from ipcluster_kit.remote.bootstrap import HostRecord, HostResult, bootstrap_hosts, default_remote_profile_dir
from ipcluster_kit.remote.control import HostEngines, remote_engine_status, stop_remote_engines
from ipcluster_kit.remote.ssh import DEFAULT_CONNECT_TIMEOUT, SSHOptions

ENGINE_FILE = Path("security") / "ipcontroller-engine.json"


def ssh_options_for(spec: Any, ssh_options: SSHOptions | None = None) -> SSHOptions:
    """Explicit options, else the spec's ``ssh_config``/``accept_new_host_keys`` if it has them."""
    if ssh_options is not None:
        return ssh_options
    return SSHOptions.build(
        getattr(spec, "ssh_config", None) or None,
        accept_new_host_keys=bool(getattr(spec, "accept_new_host_keys", False)),
        connect_timeout=float(getattr(spec, "connect_timeout", None) or DEFAULT_CONNECT_TIMEOUT),
    )


def remote_profile_dir_for(spec: Any) -> str:
    return getattr(spec, "remote_profile_dir", None) or default_remote_profile_dir(spec.name)


def state_entry(record: HostRecord, options: SSHOptions | None = None) -> dict[str, Any]:
    """A host's entry in the state file, with the SSH settings later checks and stops reuse."""
    from ipcluster_kit.remote.ssh import host_label

    entry: dict[str, Any] = {"host": host_label(record.host), "pids": [e.pid for e in record.engines], "record": record.to_dict()}
    if options is not None:
        entry["ssh"] = {"config": [str(p) for p in options.config], "known_hosts": [str(p) for p in options.known_hosts],
                        "connect_timeout": options.connect_timeout}  # fmt: skip
    return entry


def records_of(state: Any) -> list[HostRecord]:
    return [HostRecord.from_dict(entry["record"]) for entry in state.remote if entry.get("record")]


def _recorded_options(state: Any) -> SSHOptions:
    """The SSH settings recorded at bring-up (the first host's; one profile uses one setting)."""
    for entry in state.remote:
        ssh = entry.get("ssh")
        if ssh:
            return SSHOptions(
                config=tuple(Path(p) for p in ssh.get("config", [])),
                known_hosts=tuple(Path(p) for p in ssh.get("known_hosts", [])),
                connect_timeout=float(ssh.get("connect_timeout", DEFAULT_CONNECT_TIMEOUT)),
            )
    return SSHOptions()


def start_remote(
    spec: Any,
    profile_dir: Path,
    state: Any,
    *,
    timeout: float,
    progress: Callable[[str], None] = lambda message: None,
    hosts: Sequence[Any] | None = None,
    ssh_options: SSHOptions | None = None,
    min_engines: int | None = None,
) -> list[HostResult]:
    """Bring up the spec's hosts (or ``hosts``); record every started engine in ``state.remote``.

    Engines that started are recorded even when other hosts fail, so that the caller's clean-up
    stops them. When a host fails: with ``min_engines`` (argument or spec) and at least that many
    engines started in all (local + remote), ``state.expected_engines`` is lowered to the number
    started and the failures are reported through ``progress``; otherwise KitError naming every
    failed host. Waiting for registration is the caller's.
    """
    hosts = list(hosts if hosts is not None else spec.hosts)
    options = ssh_options_for(spec, ssh_options)
    progress(f"starting engines on {len(hosts)} host(s)")
    results = bootstrap_hosts(
        hosts,
        Path(profile_dir) / ENGINE_FILE,
        remote_profile_dir=remote_profile_dir_for(spec),
        remote_python=spec.remote_python,
        ssh_options=options,
        timeout=timeout,
    )
    for result in results:
        if result.record and result.record.engines:
            state.remote.append(state_entry(result.record, options))
    failed = [r for r in results if not r.ok]
    if not failed:
        return results
    errors = "; ".join(r.error or f"{r.label}: failed" for r in failed)
    minimum = min_engines if min_engines is not None else getattr(spec, "min_engines", None)
    started = len(getattr(state, "engines", [])) + sum(len(r.engines) for r in results if r.ok)
    if minimum is not None and started >= minimum:
        state.expected_engines = started
        progress(f"continuing with {started} engine(s) (at least {minimum} required): {errors}")
        return results
    raise KitError(errors)


def stop_remote_report(state: Any, *, timeout: float, ssh_options: SSHOptions | None = None, spec: Any = None) -> list[HostEngines]:
    """Stop every recorded remote engine; the per-host report (errors included)."""
    records = records_of(state)
    if not records:
        return []
    options = ssh_options_for(spec, ssh_options) if spec is not None else (ssh_options or _recorded_options(state))
    return stop_remote_engines(records, ssh_options=options, timeout=timeout)


def stop_remote(state: Any, *, timeout: float, ssh_options: SSHOptions | None = None, spec: Any = None) -> int:
    """Stop every recorded remote engine (TERM, then KILL); how many were stopped.

    A host that cannot be reached is not an exception here (the local engines and the
    controller must still be stopped); use :func:`stop_remote_report` to show its error.
    """
    report = stop_remote_report(state, timeout=timeout, ssh_options=ssh_options, spec=spec)
    return sum(1 for host in report for e in host.engines if e.state in ("terminated", "killed"))


def status_remote(state: Any, *, timeout: float, ssh_options: SSHOptions | None = None, spec: Any = None) -> list[dict]:
    """One entry per recorded remote engine: ``{"pid", "host", "running", "log"}`` (+ ``error``, ``log_tail``)."""
    records = records_of(state)
    if not records:
        return []
    options = ssh_options_for(spec, ssh_options) if spec is not None else (ssh_options or _recorded_options(state))
    report = remote_engine_status(records, ssh_options=options, timeout=timeout)
    entries: list[dict] = []
    for record, host in zip(records, report):
        states = {e.pid: e for e in host.engines}
        for engine in record.engines:
            entry: dict[str, Any] = {"pid": engine.pid, "host": host.host, "log": engine.log}
            found = states.get(engine.pid)
            if host.error or found is None:
                entry["running"] = False
                entry["error"] = host.error or "not reported"
            else:
                entry["running"] = found.running
                if found.log_tail:
                    entry["log_tail"] = found.log_tail
            entries.append(entry)
    return entries
