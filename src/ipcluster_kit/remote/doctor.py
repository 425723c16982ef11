"""``doctor``: what stands between each engine host and the controller, as structured checks.

For the controller (this machine): the engine connection file (present, 0600, an engine file),
an address other hosts can reach, and every engine port listening. For each host, over one SSH
connection and one remote command: SSH itself, the remote Python and ipyparallel versions
against the controller's, the engine connection file on the host (present, same checksum,
0600 in a 0700 directory), every controller port engines need reachable *from that host* (a
TCP connect run there), and the clock skew. Hosts are examined concurrently.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Sequence

from ipcluster_kit.checks import FAIL, OK, SKIP, WARN, Check, all_ok  # noqa: F401 (all_ok: part of this API)
from ipcluster_kit.errors import BadInput, KitError
from ipcluster_kit.profile.hosts import HostSpec
from ipcluster_kit.remote import scripts
from ipcluster_kit.remote.bootstrap import DEFAULT_REMOTE_PYTHON
from ipcluster_kit.remote.commands import check_hosts, run_python, run_sync, validate_remote_profile_dir
from ipcluster_kit.remote.records import Versions
from ipcluster_kit.profile.store import ENGINE_CONNECTION_FILE
from ipcluster_kit.remote.connfile import EngineFile, load_engine_file
from ipcluster_kit.remote.ssh import SSHOptions, connect, run

DEFAULT_MAX_CLOCK_SKEW = 1.0  # seconds
PORT_TIMEOUT = 3.0


def _port_summary(address: str, ports: dict[str, int], outcome: dict[int, str]) -> tuple[str, str]:
    bad = [f"{name} {address}:{port} ({outcome.get(port, 'no answer')})" for name, port in ports.items() if outcome.get(port) != "ok"]
    if not bad:
        return OK, f"all {len(set(ports.values()))} engine ports of {address} reachable"
    return FAIL, "unreachable: " + "; ".join(bad)


async def _probe_local(address: str, port: int, timeout: float) -> str:
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_connection(address, port), timeout)
    except asyncio.TimeoutError:
        return "timed out"
    except OSError as exc:
        return exc.strerror or str(exc)
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return "ok"


async def _controller_checks(engine_file: EngineFile, hosts: Sequence[HostSpec]) -> tuple[list[Check], bool]:
    checks: list[Check] = []
    security = engine_file.path.parent
    dir_mode = security.stat().st_mode & 0o777
    if dir_mode & 0o077:
        checks.append(Check("controller", "connection-file", FAIL, f"{security} has mode {dir_mode:04o}; expected 0700"))
    else:
        checks.append(
            Check("controller", "connection-file", OK, f"{engine_file.path} (0600, sha256 {engine_file.sha256[:12]}...)")
        )
    remote = [h for h in hosts if h.host not in ("localhost", "127.0.0.1", "::1")]
    if engine_file.is_loopback and remote:
        checks.append(
            Check(
                "controller",
                "address",
                FAIL,
                f"engines dial {engine_file.address}, a loopback address other hosts cannot reach; re-create the profile with --ip",
            )
        )
    else:
        checks.append(Check("controller", "address", OK, f"engines dial {engine_file.transport}://{engine_file.address}"))
    unique = sorted(set(engine_file.ports.values()))
    results = await asyncio.gather(*(_probe_local(engine_file.address, p, PORT_TIMEOUT) for p in unique))
    outcome = dict(zip(unique, results))
    status, detail = _port_summary(engine_file.address, engine_file.ports, outcome)
    listening = status == OK
    if not listening:
        detail = "controller not listening (is the cluster up?): " + detail.removeprefix("unreachable: ")
    checks.append(Check("controller", "ports", status, detail))
    return checks, listening


async def _host_checks(
    host: HostSpec,
    engine_file: EngineFile | None,
    *,
    remote_profile_dir: str,
    remote_python: str,
    local: Versions,
    ssh_options: SSHOptions,
    timeout: float,
    controller_listening: bool,
    max_clock_skew: float,
) -> list[Check]:
    label = host.label
    names = ("python", "ipyparallel", "connection-file", "ports", "clock")
    python = host.remote_python or remote_python

    def skipped(reason: str, start: int = 0) -> list[Check]:
        return [Check(label, n, SKIP, reason) for n in names[start:]]

    try:
        conn = await asyncio.wait_for(connect(host, ssh_options), ssh_options.connect_timeout + 5)
    except (KitError, asyncio.TimeoutError) as exc:
        message = exc.message if isinstance(exc, KitError) else f"{label}: no SSH answer"
        return [Check(label, "ssh", FAIL, message)] + skipped("no SSH connection")
    checks: list[Check] = []
    try:
        payload = {
            "profile_dir": remote_profile_dir,
            "name": ENGINE_CONNECTION_FILE,
            "address": engine_file.address if engine_file else "",
            "ports": sorted(set(engine_file.ports.values())) if engine_file else [],
            "timeout": PORT_TIMEOUT,
        }
        t0 = time.time()
        try:
            report = await run_python(
                conn, python, scripts.DOCTOR, payload, label=label, what="the remote checks", timeout=timeout
            )
        except KitError as exc:
            return [Check(label, "ssh", OK, "connected"), Check(label, "python", FAIL, exc.message)] + skipped(
                "no usable remote Python", 1
            )
        t1 = time.time()
        clock = await _measure_clock(conn, label)
    finally:
        conn.close()

    info = report.get("info", {})
    checks.append(Check(label, "ssh", OK, f"connected (hostname {info.get('hostname')})"))
    checks += _version_checks(label, info, local, str(info.get("executable") or python))
    checks += _file_and_port_checks(label, report, engine_file, controller_listening)
    remote_time = report.get("time")
    if clock is None and isinstance(remote_time, (int, float)):
        clock = float(remote_time) - (t0 + t1) / 2, (t1 - t0) / 2
    checks.append(_clock_check(label, clock, max_clock_skew))
    return checks


def _version_checks(label: str, info: dict, local: Versions, exe: str) -> list[Check]:
    remote = Versions(python=str(info.get("python")), ipyparallel=info.get("ipyparallel"))
    problem = local.mismatch(remote, host=label, python_path=exe)
    if remote.python_minor != local.python_minor:
        return [Check(label, "python", FAIL, problem or ""),
                Check(label, "ipyparallel", SKIP if remote.ipyparallel else FAIL,
                      f"ipyparallel {remote.ipyparallel or 'not installed'} (controller {local.ipyparallel})")]  # fmt: skip
    python = Check(label, "python", OK, f"Python {remote.python} at {exe} (controller {local.python})")
    if problem:
        return [python, Check(label, "ipyparallel", FAIL, problem)]
    return [python, Check(label, "ipyparallel", OK, f"ipyparallel {remote.ipyparallel}")]


def _file_and_port_checks(label: str, report: dict, engine_file: EngineFile | None, controller_listening: bool) -> list[Check]:
    if engine_file is None:
        return [Check(label, "connection-file", SKIP, "no engine connection file on the controller"),
                Check(label, "ports", SKIP, "no engine connection file on the controller")]  # fmt: skip
    cf = report.get("connection_file", {})
    if not cf.get("exists"):
        found = Check(label, "connection-file", FAIL, f"{cf.get('path')} missing (bring the engines up first)")
    elif cf.get("sha256") != engine_file.sha256:
        found = Check(label, "connection-file", FAIL, f"{cf.get('path')} differs from the controller's (stale: bring the engines up again)")
    elif cf.get("mode") != 0o600 or cf.get("dir_mode") != 0o700:
        found = Check(label, "connection-file", FAIL, f"{cf.get('path')} has mode {cf.get('mode', 0):04o} in a directory"
                      f" of mode {cf.get('dir_mode', 0):04o}; expected 0600 in 0700")  # fmt: skip
    else:
        found = Check(label, "connection-file", OK, f"{cf.get('path')} matches (sha256), 0600 in 0700")
    outcome = {int(p): v for p, v in report.get("ports", {}).items()}
    status, detail = _port_summary(engine_file.address, engine_file.ports, outcome)
    if status != OK and not controller_listening:
        status, detail = SKIP, "controller not listening: " + detail
    return [found, Check(label, "ports", status, detail)]


def _clock_check(label: str, clock: tuple[float, float] | None, max_clock_skew: float) -> Check:
    if clock is None:
        return Check(label, "clock", SKIP, "no remote time")
    skew, error = clock
    text = f"clock skew {skew:+.3f} s (± {error:.3f} s)"
    if abs(skew) - error > max_clock_skew:
        return Check(label, "clock", WARN, text + f"; more than {max_clock_skew:g} s: run NTP on the hosts")
    return Check(label, "clock", OK, text + f"; within {max_clock_skew:g} s")


async def _measure_clock(conn, label: str) -> tuple[float, float] | None:
    """(remote minus local clock, uncertainty) from a quick ``date`` round trip; None if unusable."""
    try:
        t0 = time.time()
        result = await run(conn, ["date", "+%s.%N"], label=label, timeout=10)
        t1 = time.time()
        remote = float(result.stdout.strip())
    except (KitError, ValueError):
        return None
    if result.exit_status != 0 or "." not in result.stdout:
        return None
    return remote - (t0 + t1) / 2, (t1 - t0) / 2


def diagnose(
    hosts: Sequence[HostSpec],
    engine_file: str | os.PathLike,
    *,
    remote_profile_dir: str,
    remote_python: str = DEFAULT_REMOTE_PYTHON,
    local_versions: Versions | None = None,
    ssh_options: SSHOptions | None = None,
    timeout: float = 30.0,
    max_clock_skew: float = DEFAULT_MAX_CLOCK_SKEW,
) -> list[Check]:
    """Checks for the controller, then for each host (in order). Raises BadInput only for bad arguments."""
    hosts = check_hosts(hosts)
    validate_remote_profile_dir(remote_profile_dir)
    local = local_versions or Versions.local()
    options = ssh_options or SSHOptions()

    async def everything() -> list[Check]:
        info: EngineFile | None
        try:
            info = load_engine_file(Path(engine_file))
        except BadInput as exc:
            info = None
            controller, listening = [Check("controller", "connection-file", FAIL, exc.message)], False
        else:
            controller, listening = await _controller_checks(info, hosts)
        per_host = await asyncio.gather(*(
            asyncio.wait_for(
                _host_checks(h, info, remote_profile_dir=remote_profile_dir, remote_python=remote_python, local=local,
                             ssh_options=options, timeout=timeout, controller_listening=listening,
                             max_clock_skew=max_clock_skew),
                timeout + options.connect_timeout + 10,
            )
            for h in hosts
        ), return_exceptions=True)  # fmt: skip
        checks = list(controller)
        for host, found in zip(hosts, per_host):
            if isinstance(found, BaseException):
                checks.append(Check(host.label, "ssh", FAIL, f"{host.label}: checks did not finish ({type(found).__name__})"))
            else:
                checks.extend(found)
        return checks

    return run_sync(everything)
