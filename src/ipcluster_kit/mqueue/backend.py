"""The ``manager-queue`` benchmark backend: the whole job queue on one host.

``QueuePool(processes)`` starts, once, what the CLI pieces do across machines: a queue server on
127.0.0.1 (random port, random key) and ``processes`` worker processes. ``pool.map(func, args,
timeout=T)`` submits one job per argument and returns the results in order; ``close()`` stops
everything. ``run_map(func, args, processes=P, timeout=T)`` is one pool for one map.

- The server runs in threads of the calling process (no extra process to start); producing and
  collecting call the broker directly, while every job still makes the workers' full TCP round
  trip through the manager (``exchange``: result in, next job out), as between machines.
- Workers are started before the server (so a fork never copies its threads): ``fork`` when the
  caller is single-threaded, ``spawn`` otherwise (e.g. when ZeroMQ threads of another backend
  are alive). They get the address and key through a pipe, never on a command line. Start-up
  costs ~5 ms with fork, ~0.1-0.2 s with spawn, plus ~10 ms to connect.
- ``close()`` closes the queue (workers get DONE and exit), stops the server, then stops each
  worker process by PID (terminate, then kill) if it has not exited.
- Results are kept by the server until ``close()``: a pool is meant for a run of maps, not forever.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import secrets
import signal
import sys
import time
from typing import Any, Callable, Sequence

from ipcluster_kit.errors import BadInput, KitError
from ipcluster_kit.mqueue.server import QueueServer
from ipcluster_kit.mqueue.worker import (
    _stop_children,
    check_worker_options,
    choose_start_method,
    native_threads,
    run_worker,
)
from ipcluster_kit.validate import check_seconds

NAME = "manager-queue"
HANDOFF_TIMEOUT = 60.0
WORKER_POLL = 0.5


def _backend_worker(reader: Any, parent_pid: int) -> None:
    # The parent handles Ctrl-C and stops this process by PID; no traceback from here.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if not reader.poll(HANDOFF_TIMEOUT):
        sys.exit(3)
    address, authkey, batch, poll = reader.recv()
    reader.close()

    def fatal(exc: KitError) -> None:
        print(f"ipcluster-kit: {NAME} worker: {exc.message}", file=sys.stderr, flush=True)

    try:
        run_worker(address, authkey, batch=batch, poll=poll, parent_pid=parent_pid, on_fatal=fatal)
    except KitError as exc:
        fatal(exc)
        sys.exit(exc.exit_code)


def _check_picklable(func: Callable[[Any], Any]) -> None:
    try:
        pickle.loads(pickle.dumps(func))
    except Exception:
        raise BadInput(f"{NAME}: {func!r} cannot be pickled by reference; use a module-level function") from None


class QueuePool:
    """A queue server and ``processes`` local workers, started once, for any number of maps."""

    def __init__(
        self,
        processes: int,
        *,
        batch: int = 1,
        lease_timeout: float = 30.0,
        start_method: str | None = None,
    ):
        processes, batch, _ = check_worker_options(processes, batch)
        check_seconds("--lease-timeout", lease_timeout)
        self.processes, self.batch, self.lease_timeout = processes, batch, lease_timeout
        self.start_method = start_method or choose_start_method()
        self.server: QueueServer | None = None
        self._procs: list[Any] = []
        self._threads_before: int | None = None

    def start(self) -> "QueuePool":
        self._threads_before = native_threads()
        ctx = multiprocessing.get_context(self.start_method)
        writers = []
        try:
            for _ in range(self.processes):
                reader, writer = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_backend_worker, args=(reader, os.getpid()), daemon=True)
                proc.start()
                reader.close()
                self._procs.append(proc)
                writers.append(writer)
            authkey = secrets.token_hex(32).encode()
            self.server = QueueServer(("127.0.0.1", 0), authkey, lease_timeout=self.lease_timeout).start()
            for writer in writers:
                writer.send((self.server.address, authkey, self.batch, WORKER_POLL))
        except BaseException:
            self.close()
            raise
        finally:
            for writer in writers:
                writer.close()
        return self

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs]

    def map(self, func: Callable[[Any], Any], args: Sequence[Any], *, timeout: float) -> list[Any]:
        """``[func(a) for a in args]`` by the pool's workers; KitError on a failed job or timeout."""
        if self.server is None:
            raise KitError(f"{NAME}: the pool is not started")
        check_seconds("--timeout", timeout)
        _check_picklable(func)
        broker = self.server.broker
        first, count = broker.submit(list(args), func)
        deadline = time.monotonic() + timeout
        while not broker.wait_jobs(first, count, min(0.5, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                done = max(0, broker.stats()["done"] - first)  # maps run one after another
                raise KitError(f"{NAME}: timed out after {timeout:g} s with {done} of {count} results")
            if not any(p.is_alive() for p in self._procs):
                codes = sorted({p.exitcode for p in self._procs})
                raise KitError(f"{NAME}: every worker process exited (status {codes}) before the work was done")
        results = broker.results_of(first, count)
        failed = [(first + i, v) for i, (ok, v) in enumerate(results) if not ok]
        if failed:
            job, error = failed[0]
            raise KitError(f"{NAME}: {len(failed)} of {count} jobs failed; job {job - first}: {error}")
        return [v for _, v in results]

    def close(self) -> None:
        """Close the queue (workers exit), stop the server, stop leftover workers by PID."""
        if self.server is not None:
            broker = self.server.broker
            broker.close()
            # Finished: workers get DONE and leave within a round trip. Otherwise they are busy
            # with jobs nobody will collect: no point waiting, they are stopped by PID below.
            self.server.stop(grace=2.0 if broker.is_finished() else 0.1)
            self.server = None
        _stop_children(self._procs)
        # The server's threads are joined, but the OS may list one for a moment more: wait, so
        # that the next pool or fork sees this process as it was before.
        deadline = time.monotonic() + 0.2
        while self._threads_before is not None and time.monotonic() < deadline:
            now = native_threads()
            if now is None or now <= self._threads_before:
                break
            time.sleep(0.002)

    def __enter__(self) -> "QueuePool":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.close()


def run_map(
    func: Callable[[Any], Any],
    args: Sequence[Any],
    *,
    processes: int,
    timeout: float,
    batch: int = 1,
    lease_timeout: float = 30.0,
    start_method: str | None = None,
) -> list[Any]:
    """``[func(a) for a in args]`` computed by ``processes`` queue workers started for this call.

    ``func`` must be a module-level function (workers import it by name). ``batch`` jobs are
    leased per round trip (1 = one job at a time, the book's pattern). Worker start-up is part of
    the call; use ``QueuePool`` to start once and map many times.
    """
    check_seconds("--timeout", timeout)
    _check_picklable(func)
    with QueuePool(processes, batch=batch, lease_timeout=lease_timeout, start_method=start_method) as pool:
        return pool.map(func, args, timeout=timeout)
