"""Watching a cluster while work runs on it, so that losing it fails the work at once.

A controller killed mid-benchmark leaves its schedulers running (they are its forks): tasks keep
being routed and answered, and nothing in ipyparallel ever says the controller is gone. An engine
killed mid-task is noticed by the controller only after missed heartbeats. :func:`watching` asks
the cluster (:meth:`RunningCluster.check`: its controller and this machine's engine processes, by
PID) every ``interval``; once something is gone, every request the client is still waiting for is
failed with that one-line reason (an error result per message, set in the client's own I/O
thread, as ipyparallel does for the tasks of an engine that unregistered), and again for any
request sent afterwards. The caller then stops at its next :meth:`RunningCluster.check`.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator

from ipcluster_kit.errors import KitError

WATCH_INTERVAL = 0.2  # seconds between two looks at the cluster's processes (a few psutil calls)


def fail_outstanding(client: Any, reason: str) -> None:
    """Resolve every request ``client`` still waits for with a ``ClusterLost`` error saying ``reason``.

    Runs in the client's I/O thread, where replies are handled, so a real reply and this one never
    race; a reply that still arrives later is then dropped quietly (its request stays listed as
    outstanding, so the client does not call it stale). Relies on the client's futures (ipyparallel
    9, as its own handling of a dead engine's tasks does); a client without them is left alone (the
    caller's next check still stops the work).
    """
    futures, outputs = getattr(client, "_futures", None), getattr(client, "_output_futures", None)
    loop = getattr(client, "_io_loop", None)
    if futures is None or outputs is None or loop is None or getattr(client, "_closed", False):
        return

    def fail() -> None:
        from ipyparallel.error import RemoteError

        error = RemoteError("ClusterLost", reason, reason)
        for msg_id in list(client.outstanding):
            future = futures.get(msg_id)
            if future is None or future.done():
                continue
            client.results[msg_id] = error
            output = outputs.get(msg_id)
            if output is not None and not output.done():
                output.set_result(None)
            future.set_result(error)

    loop.add_callback(fail)


@contextlib.contextmanager
def watching(cluster: Any, client: Any, interval: float = WATCH_INTERVAL) -> Iterator[None]:
    """While the block runs, look at ``cluster`` (anything with ``check()`` raising KitError) every
    ``interval`` seconds; once it raised, fail ``client``'s outstanding requests with its message."""
    done = threading.Event()

    def watch() -> None:
        while not done.wait(interval):
            try:
                cluster.check()
            except KitError as exc:
                fail_outstanding(client, exc.message)

    thread = threading.Thread(target=watch, name="ipck-cluster-watch", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=5 * interval + 1.0)
