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
import concurrent.futures
import logging
import os
import posixpath
import time
from dataclasses import dataclass, field, replace
from typing import Any, Awaitable, Callable, Sequence, TypeVar

from ipcluster_kit.errors import BadInput, KitError
from ipcluster_kit.processes import ProcessRecord
from ipcluster_kit.profile.hosts import HostSpec
from ipcluster_kit.remote import scripts
from ipcluster_kit.profile.store import ENGINE_CONNECTION_FILE
from ipcluster_kit.remote.connfile import EngineFile, load_engine_file
from ipcluster_kit.remote.ssh import CommandResult, SSHOptions, connect, run

log = logging.getLogger("ipcluster_kit.remote")

DEFAULT_TIMEOUT = 60.0
DEFAULT_REMOTE_PYTHON = "python3"
DEFAULT_REMOTE_ROOT = ".ipcluster-kit/profiles"  # relative to the remote home
MAX_PARALLEL = 64  # hosts brought up at once (each holds a socket and an SSH session)

STEPS = ("connect", "preflight", "versions", "copy", "start", "done")

T = TypeVar("T")


# --------------------------------------------------------------------------------------------
# data


@dataclass(frozen=True)
class Versions:
    """Python and ipyparallel versions (full strings, e.g. ``3.11.7`` and ``9.2.0``)."""

    python: str
    ipyparallel: str | None

    @property
    def python_minor(self) -> str:
        return ".".join(self.python.split(".")[:2])

    @classmethod
    def local(cls) -> "Versions":
        """The versions of this interpreter, which runs the controller."""
        import platform
        from importlib.metadata import PackageNotFoundError, version

        try:
            ipp = version("ipyparallel")
        except PackageNotFoundError:  # pragma: no cover - a dependency of the kit
            ipp = None
        return cls(python=platform.python_version(), ipyparallel=ipp)

    def mismatch(self, remote: "Versions", *, host: str, python_path: str) -> str | None:
        """A message naming both versions when ``remote`` cannot serve this controller, else None."""
        if remote.python_minor != self.python_minor:
            return (
                f"{host}: Python {remote.python} ({python_path}) but the controller runs Python {self.python};"
                f" engines need the same minor version {self.python_minor} (set --remote-python)"
            )
        if remote.ipyparallel is None:
            return (
                f"{host}: ipyparallel is not installed for {python_path} (Python {remote.python});"
                f" the controller has ipyparallel {self.ipyparallel} (install it there or set --remote-python)"
            )
        if remote.ipyparallel != self.ipyparallel:
            return (
                f"{host}: ipyparallel {remote.ipyparallel} ({python_path}) but the controller has"
                f" ipyparallel {self.ipyparallel}; the versions must be equal"
            )
        return None


@dataclass(frozen=True)
class HostRecord:
    """What the state file keeps per host: enough to check and stop its engines later."""

    host: HostSpec
    python: str  # absolute path of the remote interpreter the engines run
    profile_dir: str  # absolute remote profile directory
    engine_file: str  # absolute remote path of the engine connection file
    engines: tuple[ProcessRecord, ...] = ()
    hostname: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """TOML/JSON-friendly (no None values)."""
        data: dict[str, Any] = {
            "host": self.host.to_dict(),
            "python": self.python,
            "profile_dir": self.profile_dir,
            "engine_file": self.engine_file,
            "engines": [e.to_dict() for e in self.engines],
        }
        if self.hostname:
            data["hostname"] = self.hostname
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "HostRecord":
        return cls(
            host=HostSpec.from_dict(data["host"]),
            python=str(data["python"]),
            profile_dir=str(data["profile_dir"]),
            engine_file=str(data.get("engine_file", "")),
            engines=tuple(ProcessRecord.from_dict(e) for e in data.get("engines", [])),
            hostname=data.get("hostname"),
        )


@dataclass
class HostResult:
    """The outcome of bringing up one host."""

    host: HostSpec
    ok: bool = False
    step: str = "connect"  # the step reached; on failure, the step that failed
    error: str | None = None
    record: HostRecord | None = None
    remote: dict[str, Any] = field(default_factory=dict)  # preflight facts: python, ipyparallel, hostname, netns
    clock_skew: float | None = None  # remote minus local clock, seconds
    elapsed: float = 0.0

    @property
    def label(self) -> str:
        return self.host.label

    @property
    def engines(self) -> tuple[ProcessRecord, ...]:
        return self.record.engines if self.record else ()

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"host": str(self.host), "ok": self.ok, "step": self.step, "elapsed": round(self.elapsed, 3)}
        if self.error:
            data["error"] = self.error
        if self.record:
            data["record"] = self.record.to_dict()
        if self.clock_skew is not None:
            data["clock_skew"] = round(self.clock_skew, 4)
        for key in ("python", "ipyparallel", "hostname", "netns"):
            if self.remote.get(key) is not None:
                data.setdefault("remote", {})[key] = self.remote[key]
        return data


# --------------------------------------------------------------------------------------------
# helpers


def run_sync(factory: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from sync code, also when an event loop already runs here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def validate_remote_profile_dir(path: str) -> str:
    if not path or "\0" in path or "\n" in path:
        raise BadInput(f"invalid remote profile directory {path!r}")
    if ".." in path.split("/"):
        raise BadInput(f"invalid remote profile directory {path!r}: '..' is not allowed")
    return path


def resolve_remote_profile_dir(path: str, home: str | None, label: str) -> str:
    """An absolute remote path: relative ones (and ``~/...``) are taken from the remote home."""
    if path.startswith("~/"):
        path = path[2:]
    if posixpath.isabs(path):
        return posixpath.normpath(path)
    if not home or not posixpath.isabs(home):
        raise KitError(f"{label}: remote home directory unknown; give an absolute --remote-profile-dir")
    return posixpath.normpath(posixpath.join(home, path))


def check_hosts(hosts: Sequence[HostSpec]) -> list[HostSpec]:
    """The hosts, or a BadInput for an empty list or a host given twice."""
    hosts = list(hosts)
    if not hosts:
        raise BadInput("no remote hosts given (use --host [user@]host[:port][=N])")
    seen: set[tuple[str | None, str, int]] = set()
    for host in hosts:
        key = (host.user, host.host, host.port)
        if key in seen:
            raise BadInput(f"host {host.label} is given twice; give its engine count once as host=N")
        seen.add(key)
    return hosts


def check_controller_reachable(engine_file: EngineFile, hosts: Sequence[HostSpec]) -> None:
    """Engines elsewhere cannot dial a loopback address: refuse before touching any host."""
    if not engine_file.address:
        raise BadInput(f"{engine_file.path} names no controller address (interface/location)")
    if engine_file.is_loopback:
        remote = [h for h in hosts if h.host not in ("localhost", "127.0.0.1", "::1")]
        if remote:
            raise BadInput(
                f"the controller listens on {engine_file.address} only, which engines on {remote[0].label}"
                " cannot reach; re-create the profile with --ip set to an address of this machine those hosts can reach"
            )


def _parse_json(result: CommandResult, label: str, what: str) -> dict[str, Any]:
    import json

    for line in reversed(result.stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                break
    err = " ".join(result.stderr.strip().splitlines()[-3:])[:400]
    raise KitError(f"{label}: {what} failed (exit status {result.exit_status}): {err or 'no output'}")


async def run_python(
    conn, python: str, script: str, payload: dict, *, label: str, what: str, timeout: float, input: bytes | None = None
) -> dict[str, Any]:
    """Run one of :mod:`scripts` with the remote Python; its JSON answer, or a KitError."""
    result = await run(conn, [python, "-c", script, scripts.args(payload)], label=label, timeout=timeout, input=input)
    if result.exit_status in (126, 127) and not result.stdout.strip():
        state = "not found" if result.exit_status == 127 else "not executable"
        raise KitError(
            f"{label}: remote Python {python!r} {state} on the host (set --remote-python to an absolute path;"
            " a non-interactive SSH session does not see your virtualenv's PATH)"
        )
    return _parse_json(result, label, what)


# --------------------------------------------------------------------------------------------
# bring-up


class _Step:
    def __init__(self, result: HostResult):
        self.result = result

    def __call__(self, name: str) -> None:
        self.result.step = name
        log.debug("%s: %s", self.result.label, name)


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
        python = host.remote_python or remote_python
        t0 = time.time()
        info = await run_python(conn, python, scripts.PREFLIGHT, {}, label=label, what="preflight", timeout=remaining())
        t1 = time.time()
        result.remote = {k: info.get(k) for k in ("python", "ipyparallel", "hostname", "netns", "executable", "home")}
        if isinstance(info.get("time"), (int, float)):
            result.clock_skew = float(info["time"]) - (t0 + t1) / 2

        step("versions")
        remote_versions = Versions(python=str(info.get("python")), ipyparallel=info.get("ipyparallel"))
        problem = local_versions.mismatch(remote_versions, host=label, python_path=str(info.get("executable") or python))
        if problem:
            raise KitError(problem)
        python_abs = str(info.get("executable") or python)

        step("copy")
        profile_dir = resolve_remote_profile_dir(remote_profile_dir, info.get("home"), label)
        installed = await run_python(
            conn,
            python_abs,
            scripts.INSTALL,
            {"profile_dir": profile_dir, "name": ENGINE_CONNECTION_FILE},
            label=label,
            what="copying the engine connection file",
            timeout=remaining(),
            input=engine_file.data,
        )
        if installed.get("sha256") != engine_file.sha256:
            raise KitError(f"{label}: the engine connection file on the host does not match the local one (checksum)")
        if installed.get("mode") != 0o600 or installed.get("dir_mode") != 0o700:
            raise KitError(
                f"{label}: {installed.get('path')} has mode {installed.get('mode', 0):04o} in a directory of mode"
                f" {installed.get('dir_mode', 0):04o}; expected 0600 in 0700"
            )

        step("start")
        started = await run_python(
            conn,
            python_abs,
            scripts.start_script(),
            {
                "profile_dir": profile_dir,
                "file": installed["path"],
                "n": host.engines,
                "tag": tag,
                "engine_args": list(engine_args),
            },
            label=label,
            what="starting engines",
            timeout=remaining(),
        )
        engines = tuple(replace(ProcessRecord.from_dict(e), host=label) for e in started.get("engines", []))
        result.record = HostRecord(
            host=host,
            python=str(started.get("python") or python_abs),
            profile_dir=profile_dir,
            engine_file=str(installed["path"]),
            engines=engines,
            hostname=info.get("hostname"),
        )
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
