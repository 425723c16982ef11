"""The collector: gather every result, in job order, as they arrive.

Results are kept by the server (by job id, first one wins), so collecting is a read: it can be
repeated, or run from several places. It ends when the producer has closed the queue and every
job has a result, and then tells the server (``serve --until-drained`` waits for that).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ipcluster_kit.errors import KitError
from ipcluster_kit.mqueue import net
from ipcluster_kit.mqueue.client import ServerGone, connect, server_errors
from ipcluster_kit.validate import check_seconds


def check_timeout(timeout: float | None) -> float | None:
    """``queue collect --timeout``: None (wait for all) or a finite number of seconds > 0."""
    return None if timeout is None else check_seconds("--timeout", timeout)


@dataclass
class Progress:
    done: int
    submitted: int
    closed: bool


@dataclass
class Collected:
    values: list[Any]  # in job order; None for a failed job
    errors: dict[int, str] = field(default_factory=dict)  # job id -> error text
    stats: dict = field(default_factory=dict)


def collect(
    address: net.Address,
    authkey: bytes,
    *,
    timeout: float | None = None,
    poll: float = 0.5,
    on_result: Callable[[int, bool, Any], None] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> Collected:
    """Wait for every result. ``on_result`` is called in job order as soon as each can be emitted.

    ``timeout`` (seconds, None for no limit) bounds the whole wait; the server going away or
    stopping early is a KitError either way.
    """
    timeout = check_timeout(timeout)
    poll = check_seconds("poll", poll)
    where = net.format_address(address)
    proxy = connect(address, authkey)
    deadline = None if timeout is None else time.monotonic() + timeout
    got: dict[int, tuple[bool, Any]] = {}
    next_out = 0
    cursor = 0
    with server_errors(where):
        while True:
            wait = poll if deadline is None else max(0.0, min(poll, deadline - time.monotonic()))
            reply = proxy.wait_results(cursor, 10_000, wait)
            cursor = reply["cursor"]
            for job_id, ok, value in reply["items"]:
                got[job_id] = (ok, value)
            while next_out in got:
                if on_result is not None:
                    on_result(next_out, *got[next_out])
                next_out += 1
            if on_progress is not None:
                on_progress(Progress(len(got), reply["submitted"], reply["closed"]))
            if reply["finished"] and len(got) >= reply["submitted"]:
                break
            if reply["stopping"] and not reply["items"]:
                raise ServerGone(f"the queue server at {where} stopped before the work was done ({reply['stopping']})")
            if deadline is not None and time.monotonic() >= deadline:
                raise KitError(
                    f"timed out after {timeout:g} s waiting for results from {where}: "
                    f"{len(got)} of {reply['submitted']} jobs done"
                    + ("" if reply["closed"] else " (the producer has not closed the queue)")
                )
        proxy.mark_collected()
        stats = proxy.stats()
    values = [None] * len(got)
    errors = {}
    for job_id, (ok, value) in got.items():
        if ok:
            values[job_id] = value
        else:
            errors[job_id] = value
    return Collected(values, errors, stats)


def status(address: net.Address, authkey: bytes) -> dict:
    """The server's counters (``Broker.stats``)."""
    proxy = connect(address, authkey)
    with server_errors(net.format_address(address)):
        return proxy.stats()
