"""Bring engines up on remote hosts: all hosts at once, one SSH connection per host, a result per host.

Per host, over one connection:

1. **connect** — SSH with the host key verified (see :mod:`ipcluster_kit.remote.ssh`);
2. **preflight** — one command runs the remote Python (the host's own ``remote_python``, else the
   profile's) and reports its version, ipyparallel's version, hostname, network namespace, home
   and clock;
3. **versions** — the remote Python minor and ipyparallel version must equal the controller's
   (engines of another minor die silently on the first pickled function);
4. **copy** — the engine connection file (only that one) goes over stdin into
   ``<remote profile dir>/security`` (dirs 0700, file 0600, written atomically), and the checksum
   read back from the host must equal the local one;
5. **start** — N engines started detached (own session, ``nohup``-like, output in
   ``<remote profile dir>/log``); their PIDs and start times come back and are also kept on the
   host in ``ipcluster-kit-engines.json``.

Waiting for the engines to register with the controller is the caller's part (a local client).
Nothing here prints the connection file or a key.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import replace
from typing import Callable, Sequence

from ipcluster_kit.errors import BadInput, KitError
from ipcluster_kit.processes import ProcessRecord
from ipcluster_kit.profile.hosts import HostSpec
from ipcluster_kit.profile.store import ENGINE_CONNECTION_FILE
from ipcluster_kit.remote import scripts
from ipcluster_kit.remote.commands import (
    check_controller_reachable,
    check_hosts,
    resolve_remote_profile_dir,
    run_python,
    run_sync,
    validate_remote_profile_dir,
)
from ipcluster_kit.remote.connfile import EngineFile, load_engine_file
from ipcluster_kit.remote.records import HostRecord, HostResult, Versions
from ipcluster_kit.remote.ssh import SSHOptions, connect

log = logging.getLogger("ipcluster_kit.remote")

DEFAULT_TIMEOUT = 60.0
DEFAULT_REMOTE_PYTHON = "python3"
DEFAULT_REMOTE_ROOT = ".ipcluster-kit/profiles"  # relative to the remote home
MAX_PARALLEL = 64  # hosts brought up at once (each holds a socket and an SSH session)



# --------------------------------------------------------------------------------------------
# bring-up


class _Step:
    def __init__(self, result: HostResult):
        self.result = result

    def __call__(self, name: str) -> None:
        self.result.step = name
        log.debug("%s: %s", self.result.label, name)


async def _preflight(conn, python: str, local_versions: Versions, result: HostResult, timeout: float) -> dict:
    """The host's facts (versions, home, hostname, clock); KitError when its versions cannot serve us."""
    t0 = time.time()
    info = await run_python(conn, python, scripts.PREFLIGHT, {}, label=result.label, what="preflight", timeout=timeout)
    t1 = time.time()
    result.remote = {k: info.get(k) for k in ("python", "ipyparallel", "hostname", "netns", "executable", "home")}
    if isinstance(info.get("time"), (int, float)):
        result.clock_skew = float(info["time"]) - (t0 + t1) / 2
    result.step = "versions"
    remote_versions = Versions(python=str(info.get("python")), ipyparallel=info.get("ipyparallel"))
    problem = local_versions.mismatch(remote_versions, host=result.label, python_path=str(info.get("executable") or python))
    if problem:
        raise KitError(problem)
    return info


async def _copy_engine_file(conn, python: str, profile_dir: str, engine_file: EngineFile, label: str, timeout: float) -> str:
    """Install the engine connection file on the host (0600 in 0700, checksum read back); its path there."""
    installed = await run_python(conn, python, scripts.INSTALL, {"profile_dir": profile_dir, "name": ENGINE_CONNECTION_FILE},
                                 label=label, what="copying the engine connection file", timeout=timeout,
                                 input=engine_file.data)  # fmt: skip
    if installed.get("sha256") != engine_file.sha256:
        raise KitError(f"{label}: the engine connection file on the host does not match the local one (checksum)")
    if installed.get("mode") != 0o600 or installed.get("dir_mode") != 0o700:
        raise KitError(
            f"{label}: {installed.get('path')} has mode {installed.get('mode', 0):04o} in a directory of mode"
            f" {installed.get('dir_mode', 0):04o}; expected 0600 in 0700"
        )
    return str(installed["path"])


async def _bootstrap_one(
    host: HostSpec,
    engine_file: EngineFile,
    *,
    remote_profile_dir: str,
    remote_python: str,
    local_versions: Versions,
    ssh_options: SSHOptions,
    engine_args: Sequence[str],
    tag: str,
    result: HostResult,
    deadline: float,
) -> None:
    label = result.label
    step = _Step(result)

    def remaining() -> float:
        return max(0.5, deadline - time.monotonic())

    step("connect")
    conn = await connect(host, ssh_options)
    try:
        step("preflight")
        info = await _preflight(conn, host.remote_python or remote_python, local_versions, result, remaining())
        python = str(info.get("executable") or host.remote_python or remote_python)
        step("copy")
        profile_dir = resolve_remote_profile_dir(remote_profile_dir, info.get("home"), label)
        path = await _copy_engine_file(conn, python, profile_dir, engine_file, label, remaining())
        step("start")
        payload = {"profile_dir": profile_dir, "file": path, "n": host.engines, "tag": tag, "engine_args": list(engine_args)}
        started = await run_python(conn, python, scripts.start_script(), payload, label=label, what="starting engines",
                                   timeout=remaining())  # fmt: skip
        engines = tuple(replace(ProcessRecord.from_dict(e), host=label) for e in started.get("engines", []))
        result.record = HostRecord(host=host, python=str(started.get("python") or python), profile_dir=profile_dir,
                                   engine_file=path, engines=engines, hostname=info.get("hostname"))  # fmt: skip
        if len(engines) != host.engines:
            raise KitError(f"{label}: started {len(engines)} of {host.engines} engines")
        step("done")
        result.ok = True
    finally:
        conn.close()


async def bootstrap_host(
    host: HostSpec,
    engine_file: EngineFile,
    *,
    remote_profile_dir: str,
    remote_python: str = DEFAULT_REMOTE_PYTHON,
    local_versions: Versions | None = None,
    ssh_options: SSHOptions | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    engine_args: Sequence[str] = (),
    tag: str | None = None,
) -> HostResult:
    """Bring up one host; never raises for a host's failure, which is in the result."""
    result = HostResult(host=host)
    start = time.monotonic()
    tag = tag or time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}"
    try:
        await asyncio.wait_for(
            _bootstrap_one(
                host,
                engine_file,
                remote_profile_dir=remote_profile_dir,
                remote_python=remote_python,
                local_versions=local_versions or Versions.local(),
                ssh_options=ssh_options or SSHOptions(),
                engine_args=engine_args,
                tag=tag,
                result=result,
                deadline=start + timeout,
            ),
            timeout=timeout,
        )
    except asyncio.TimeoutError:
        result.error = f"{result.label}: timed out after {timeout:g} s during {result.step}"
    except KitError as exc:
        result.error = exc.message
    except Exception as exc:  # one host's surprise must not sink the others
        log.debug("%s: unexpected error", result.label, exc_info=True)
        result.error = f"{result.label}: unexpected error during {result.step}: {type(exc).__name__}: {exc}"
    result.elapsed = time.monotonic() - start
    if result.error:
        result.ok = False
    return result


def bootstrap_hosts(
    hosts: Sequence[HostSpec],
    engine_file: str | os.PathLike,
    *,
    remote_profile_dir: str,
    remote_python: str = DEFAULT_REMOTE_PYTHON,
    local_versions: Versions | None = None,
    ssh_options: SSHOptions | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    engine_args: Sequence[str] = (),
    on_result: Callable[[HostResult], None] | None = None,
) -> list[HostResult]:
    """Bring up engines on every host concurrently; one :class:`HostResult` per host, in order.

    Raises BadInput (before touching any host) for no hosts, a duplicate host, a bad remote
    profile directory, an unusable engine file, or a controller only listening on loopback.
    A host's own failure (unreachable, refused, versions, copy, start, timeout) is its result's
    ``error``; the other hosts go on. ``timeout`` bounds each host's whole bring-up.
    ``on_result`` sees each host's result as soon as that host is done (engines started there are
    then in ``result.record``), before the other hosts finish.
    """
    hosts = check_hosts(hosts)
    validate_remote_profile_dir(remote_profile_dir)
    for arg in engine_args:
        if not isinstance(arg, str) or not arg.startswith("--"):
            raise BadInput(f"invalid engine argument {arg!r}: expected --Name=value")
    info = load_engine_file(engine_file)
    check_controller_reachable(info, hosts)
    versions = local_versions or Versions.local()
    tag = time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}"

    async def all_hosts() -> list[HostResult]:
        gate = asyncio.Semaphore(MAX_PARALLEL)

        async def one(host: HostSpec) -> HostResult:
            async with gate:
                result = await bootstrap_host(host, info, remote_profile_dir=remote_profile_dir, remote_python=remote_python,
                                              local_versions=versions, ssh_options=ssh_options, timeout=timeout,
                                              engine_args=engine_args, tag=tag)  # fmt: skip
            if on_result is not None:
                on_result(result)
            return result

        return list(await asyncio.gather(*(one(h) for h in hosts)))

    return run_sync(all_hosts)


def default_remote_profile_dir(profile_name: str) -> str:
    """Where a profile lives on engine hosts when not configured: ``~/.ipcluster-kit/profiles/NAME``."""
    return f"{DEFAULT_REMOTE_ROOT}/{profile_name}"
