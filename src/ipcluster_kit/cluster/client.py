"""The one way the kit waits on a controller: connect a client, wait for engines, each bounded.

With the ``pure`` scheme, a client created while the engine ids have a gap (engine 1 registered
before engine 0) fails at once ("IO Loop failed to start"), and a moment later succeeds: both
helpers retry that until their deadline. Everything that needs a client (``up``, ``status``,
``bootstrap``, the benchmarks) comes through here.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, Iterable

from ipcluster_kit.errors import KitError
from ipcluster_kit.processes import ProcessRecord, is_alive

RETRY_INTERVAL = 0.2
POLL_INTERVAL = 0.02
Progress = Callable[[str], None]


def _no_progress(message: str) -> None:
    pass


def log_tail(path: str | os.PathLike, lines: int = 3) -> str:
    """The last lines of a log, joined on one line (for a one-line error)."""
    try:
        text = Path(path).read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:])


def connect(client_file: str | os.PathLike, timeout: float):
    """An ``ipyparallel.Client`` on ``client_file``, retried until ``timeout`` while creating one fails
    the way a ``pure``-scheme id gap makes it fail; KitError when no client could be made in time."""
    import ipyparallel as ipp

    deadline = time.monotonic() + timeout
    while True:
        remaining = max(deadline - time.monotonic(), 1.0)
        try:
            # Positional: ipyparallel 9 silently ignores its own url_file= keyword.
            return ipp.Client(str(client_file), timeout=remaining)
        except RuntimeError as exc:
            if time.monotonic() >= deadline:
                raise KitError(f"could not connect to the controller within {timeout:g} s: {exc}") from None
            time.sleep(RETRY_INTERVAL)
        except (OSError, ValueError) as exc:  # no/garbled connection file
            raise KitError(f"cannot use the connection file {client_file}: {exc}") from None


class EnginesTimeout(KitError):
    """Not every engine registered in time; ``count`` did."""

    def __init__(self, message: str, count: int):
        super().__init__(message)
        self.count = count


def _check_watched(watch: Iterable[ProcessRecord]) -> None:
    dead = [r for r in watch if not is_alive(r)]
    if dead:
        first = dead[0]
        raise KitError(
            f"{len(dead)} {first.role} process(es) exited before registering (PID {first.pid});"
            f" log {first.log}: {log_tail(first.log)}"
        )


def wait_for_engines(
    client_file: str | os.PathLike,
    n: int,
    timeout: float,
    *,
    watch: Iterable[ProcessRecord] = (),
    progress: Progress = _no_progress,
    on_count: Callable[[int], None] | None = None,
    check: Callable[[], None] | None = None,
) -> int:
    """Wait until ``n`` engines have registered with the controller; return how many did.

    Raises :class:`EnginesTimeout` (a KitError) on timeout. ``watch`` lists local processes that must stay alive (fails early,
    naming the log, when one dies); ``check`` is called on every poll and may raise to give up early
    (e.g. a batch job that failed); ``on_count`` sees every new count (the bring-up timeline).
    """
    watch = list(watch)
    deadline = time.monotonic() + timeout
    client = connect(client_file, timeout)
    try:
        seen = -1
        while True:
            count = len(client.ids)
            if count != seen:
                progress(f"{count}/{n} engines registered")
                if on_count is not None:
                    on_count(count)
                seen = count
            if count >= n:
                return count
            _check_watched(watch)
            if check is not None:
                check()
            if time.monotonic() >= deadline:
                raise EnginesTimeout(f"only {count} of {n} engines registered within {timeout:g} s", count)
            time.sleep(POLL_INTERVAL)
    finally:
        client.close()


def registered_engines(client_file: str | os.PathLike, timeout: float) -> int:
    """How many engines the controller has registered now (a short-lived client)."""
    client = connect(client_file, timeout)
    try:
        return len(client.ids)
    finally:
        client.close()
