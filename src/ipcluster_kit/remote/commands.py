"""Helpers every remote command shares: running one of :mod:`scripts` over SSH and reading its JSON
answer, checks of hosts and paths before any host is touched, and running the async code from sync
callers."""

from __future__ import annotations

import asyncio
import concurrent.futures
import posixpath
from typing import Any, Awaitable, Callable, Sequence, TypeVar

from ipcluster_kit.errors import BadInput, KitError
from ipcluster_kit.profile.hosts import HostSpec
from ipcluster_kit.remote import scripts
from ipcluster_kit.remote.connfile import EngineFile
from ipcluster_kit.remote.ssh import CommandResult, run

T = TypeVar("T")


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
