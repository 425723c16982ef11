"""The worker: get a job, compute it, put the result back; stop when the server says so.

The book's consumer loops ``while not queue.empty()``: it quits if it starts before the producer
(or catches up with it) and blocks forever if another consumer takes the last job between its
``empty()`` and its ``get()``. Here the worker asks the server (``get_job``) and obeys the answer:
jobs, WAIT (ask again), DONE (the producer closed the queue and every job has a result: exit 0)
or STOP (the server is shutting down early: exit 1 with that reason).

Steady state is one round trip per job (or per ``batch`` jobs): ``exchange`` delivers the last
results and leases the next jobs. A background thread sends heartbeats so the server keeps this
worker's leases while it computes, and ends a computation whose result could no longer be
delivered (the server gone, or stopping early).
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from ipcluster_kit.errors import KitError
from ipcluster_kit.mqueue import net
from ipcluster_kit.mqueue.protocol import DONE, JOBS, MAX_BATCH, MAX_WAIT, STOP, WAIT
from ipcluster_kit.mqueue.client import BrokerProxy, ServerGone, connect, server_errors
from ipcluster_kit.mqueue.tasks import TaskImportError, resolve
from ipcluster_kit.validate import check_count, check_seconds

MAX_PROCESSES = 1024


def check_worker_options(processes: int = 1, batch: int = 1, poll: float = 1.0) -> tuple[int, int, float]:
    """The checks of ``queue work``'s numbers, shared by the CLI (before it reads the key) and the API."""
    return (
        check_count("--processes", processes, 1, maximum=MAX_PROCESSES),
        check_count("--batch", batch, 1, maximum=MAX_BATCH),
        check_seconds("--poll", poll, maximum=MAX_WAIT),
    )


@dataclass
class WorkerReport:
    worker_ids: list[str]
    jobs: int = 0  # results delivered (including failed jobs)
    failed: int = 0  # jobs whose function raised
    seconds: float = 0.0

    @property
    def processes(self) -> int:
        return len(self.worker_ids)


def make_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(2).hex()}"


def _print_fatal(exc: KitError) -> None:
    print(f"ipcluster-kit: error: {exc.message}", file=sys.stderr, flush=True)


class _Heartbeat(threading.Thread):
    """Calls ``heartbeat`` every ``interval`` s on its own connection, so leases survive long jobs.

    If the server is gone (or stopping early) while the main thread is inside a task, nothing
    that task computes can be delivered: the thread reports the error (``on_fatal``) and ends the
    process (exit 1) rather than let a long job run on for nothing. At any other moment the main
    thread is talking to the server and sees the same failure itself. If ``parent_pid`` is given
    and that parent exits, the process ends too: an orphaned pool member must not work alone.
    """

    def __init__(
        self,
        proxy: BrokerProxy,
        worker_id: str,
        interval: float,
        where: str,
        parent_pid: int | None,
        on_fatal: Callable[[KitError], None],
    ):
        super().__init__(name="ipck-queue-heartbeat", daemon=True)
        self.proxy, self.worker_id, self.interval, self.where = proxy, worker_id, interval, where
        self.parent_pid, self.on_fatal = parent_pid, on_fatal
        self.computing = False  # set by the main thread around each task call
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            if self.parent_pid is not None and os.getppid() != self.parent_pid:
                os._exit(1)
            try:
                with server_errors(self.where):
                    answer = self.proxy.heartbeat(self.worker_id)
            except KitError as exc:
                self._fail(exc)
                return
            except Exception as exc:  # never die silently
                self._fail(KitError(f"heartbeat to {self.where} failed: {type(exc).__name__}: {exc}"))
                return
            if answer == STOP:
                self._fail(ServerGone(f"the queue server at {self.where} is stopping before the work was done"))
                return

    def _fail(self, exc: KitError) -> None:
        if self.computing and not self._halt.is_set():
            try:
                self.on_fatal(exc)
            finally:
                os._exit(exc.exit_code)

    def halt(self) -> None:
        self._halt.set()


def _picklable(result: tuple) -> tuple:
    job_id, ok, value = result
    try:
        pickle.dumps(value)
        return result
    except Exception as exc:
        return (job_id, False, f"result is not picklable: {type(exc).__name__}: {exc}")


def _send(proxy: BrokerProxy, wid: str, results: list, batch: int, poll: float) -> tuple:
    """Deliver ``results`` (if any) and ask for the next jobs, coping with unpicklable results."""
    from multiprocessing.managers import RemoteError

    if not results:
        return proxy.get_job(wid, batch, poll)
    try:
        return proxy.exchange(wid, results, batch, poll)
    except (pickle.PicklingError, TypeError, AttributeError):
        checked = [_picklable(r) for r in results]
        if all(a is b for a, b in zip(checked, results)):
            raise  # not ours to fix: the reply could not be unpickled here
        # A result this process cannot pickle: nothing was sent; report those jobs as failed.
        return proxy.exchange(wid, checked, batch, poll)
    except RemoteError as exc:
        # The server could not unpickle the request (a result type it cannot import).
        last = [ln for ln in str(exc).splitlines() if ln.strip()][-1:] or [""]
        failed = [(j, False, f"the server could not unpickle the result: {last[0].strip()}") for j, _, _ in results]
        return proxy.exchange(wid, failed, batch, poll)


def _compute(
    proxy: BrokerProxy, wid: str, jobs: list, funcs: dict[int, Callable[[Any], Any]], heartbeat: _Heartbeat
) -> list[tuple[int, bool, Any]]:
    results = []
    for index, (job_id, task_id, arg) in enumerate(jobs):
        func = funcs.get(task_id)
        if func is None:
            try:
                try:
                    spec = proxy.task(task_id)
                except (ImportError, AttributeError, pickle.UnpicklingError) as exc:
                    raise TaskImportError(f"cannot import the task of job {job_id}: {type(exc).__name__}: {exc}")
                func = funcs[task_id] = resolve(spec)
            except TaskImportError:
                # This host cannot run the task: hand the jobs back for a worker that can.
                if results:
                    proxy.put_results(wid, results)
                proxy.release(wid, [j for j, _, _ in jobs[index:]])
                raise
        heartbeat.computing = True
        try:
            results.append((job_id, True, func(arg)))
        except Exception as exc:
            results.append((job_id, False, f"{type(exc).__name__}: {exc}"))
        finally:
            heartbeat.computing = False
    return results


def run_worker(
    address: net.Address,
    authkey: bytes,
    *,
    batch: int = 1,
    poll: float = 1.0,
    worker_id: str | None = None,
    parent_pid: int | None = None,
    on_fatal: Callable[[KitError], None] = _print_fatal,
) -> WorkerReport:
    """Work for the server at ``address`` until it says DONE; KitError on STOP or a lost server.

    ``on_fatal`` reports an error found by the heartbeat thread just before it ends the process.
    """
    _, batch, poll = check_worker_options(1, batch, poll)
    where = net.format_address(address)
    wid = worker_id or make_worker_id()
    started = time.monotonic()
    proxy = connect(address, authkey)
    report = WorkerReport([wid])
    with server_errors(where):
        config = proxy.hello(wid, {"host": socket.gethostname(), "pid": os.getpid()})
    heartbeat = _Heartbeat(proxy, wid, float(config["heartbeat_interval"]), where, parent_pid, on_fatal)
    heartbeat.start()
    funcs: dict[int, Callable[[Any], Any]] = {}
    results: list = []
    try:
        with server_errors(where):
            while True:
                try:
                    reply = _send(proxy, wid, results, batch, poll)
                except (ImportError, AttributeError, pickle.UnpicklingError) as exc:
                    raise KitError(
                        f"cannot unpickle jobs from {where} ({type(exc).__name__}: {exc}); "
                        "they go back to the queue when this worker exits"
                    ) from None
                results = []
                kind = reply[0]
                if kind == JOBS:
                    try:
                        results = _compute(proxy, wid, reply[1], funcs, heartbeat)
                    except TaskImportError as exc:
                        raise KitError(f"{exc} on {socket.gethostname()}; its jobs went back to the queue") from None
                    report.jobs += len(results)
                    report.failed += sum(1 for _, ok, _ in results if not ok)
                elif kind == WAIT:
                    continue
                elif kind == DONE:
                    break
                elif kind == STOP:
                    raise ServerGone(f"the queue server at {where} stopped before the work was done ({reply[1]})")
                else:
                    raise KitError(f"unexpected reply from {where}: {kind!r}")
            heartbeat.halt()
            proxy.goodbye(wid)
    finally:
        heartbeat.halt()
    report.seconds = time.monotonic() - started
    return report


# -- several worker processes on one host -------------------------------------------------------


def native_threads() -> int | None:
    """Threads of this process as the OS sees them (ZeroMQ's too); None where unknown."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return None


def choose_start_method() -> str:
    """``fork`` when this process has a single thread (fast and safe), ``spawn`` otherwise."""
    if "fork" in multiprocessing.get_all_start_methods() and native_threads() == 1:
        return "fork"
    return "spawn"


def _child_main(address: net.Address, authkey: bytes, batch: int, poll: float, parent_pid: int, report_to: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    def fatal(exc: KitError) -> None:
        report_to.send(("error", exc.message, exc.exit_code))

    try:
        report = run_worker(address, authkey, batch=batch, poll=poll, parent_pid=parent_pid, on_fatal=fatal)
        report_to.send(("ok", report.worker_ids[0], report.jobs, report.failed))
    except KitError as exc:
        report_to.send(("error", exc.message, exc.exit_code))
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        report_to.send(("error", "interrupted", 130))
        sys.exit(130)
    except Exception as exc:  # a bug, not a user error: still one line, and the parent reports it
        report_to.send(("error", f"worker process failed: {type(exc).__name__}: {exc}", 1))
        sys.exit(1)


class _Terminated(Exception):
    pass


def _raise_terminated(signum: int, frame: Any) -> None:
    raise _Terminated(signal.Signals(signum).name)


def run_workers(
    address: net.Address,
    authkey: bytes,
    *,
    processes: int = 1,
    batch: int = 1,
    poll: float = 1.0,
    start_method: str | None = None,
) -> WorkerReport:
    """``processes`` workers: this process for 1, else that many child processes (one CPU each).

    Children are started by PID and stopped by PID: on SIGINT/SIGTERM the parent terminates them
    (their jobs go back to the queue) and a child whose parent disappears exits by itself.
    """
    processes, batch, poll = check_worker_options(processes, batch, poll)
    if processes == 1:
        return run_worker(address, authkey, batch=batch, poll=poll)
    # Fail early, once, for a wrong key or a dead server (not once per child).
    with server_errors(net.format_address(address)):
        connect(address, authkey).stats()
    ctx = multiprocessing.get_context(start_method or choose_start_method())
    sys.stdout.flush()
    sys.stderr.flush()
    started = time.monotonic()
    children = []
    for _ in range(processes):
        reader, writer = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=_child_main, args=(tuple(address), authkey, batch, poll, os.getpid(), writer), daemon=False
        )
        proc.start()
        writer.close()
        children.append((proc, reader))
    report = WorkerReport([])
    errors: list[tuple[str, int]] = []
    old_term = signal.signal(signal.SIGTERM, _raise_terminated) if threading.current_thread() is threading.main_thread() else None
    try:
        for proc, reader in children:
            while proc.is_alive():
                proc.join(timeout=0.2)
            status = reader.recv() if reader.poll(0.5) else None
            if status is None:
                errors.append((f"worker process {proc.pid} exited with status {proc.exitcode}", 1))
            elif status[0] == "ok":
                report.worker_ids.append(status[1])
                report.jobs += status[2]
                report.failed += status[3]
            else:
                errors.append((status[1], status[2]))
    except (KeyboardInterrupt, _Terminated) as exc:
        _stop_children([p for p, _ in children])
        if isinstance(exc, _Terminated):
            raise KitError(f"worker stopped by {exc}; its unfinished jobs go back to the queue", 143) from None
        raise
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
        _stop_children([p for p, _ in children])
    report.seconds = time.monotonic() - started
    if errors:
        message, code = errors[0]
        suffix = f" ({len(errors)} of {processes} worker processes failed)" if processes > 1 else ""
        raise KitError(message + suffix, code)
    return report


def _stop_children(procs: list, timeout: float = 5.0) -> None:
    """Terminate (then kill) by PID every child still running, and reap them."""
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
    deadline = time.monotonic() + timeout
    for proc in procs:
        proc.join(timeout=max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            proc.kill()
            proc.join(timeout=2.0)
