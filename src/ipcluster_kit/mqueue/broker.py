"""The job broker: the one object the queue server shares, with leases and exactly-once results.

The book shares two raw ``Queue`` objects. A job taken from a raw queue is gone: if its worker
dies, nobody knows, and "is the work finished?" can only be guessed from ``queue.empty()``. Here
the server shares this object instead; every call goes through its methods, so the server knows
which worker holds which job.

Lost jobs (the design):
- ``get_job`` *leases* a job to the calling worker; it stays leased until its result arrives.
- A worker proves it is alive by calling in (``heartbeat`` every ``lease_timeout / 3`` from a
  background thread, even in the middle of a long job). A worker silent for ``lease_timeout``
  loses its leases: the jobs go back to the front of the queue (``reap``, run by the server).
- Fast path: a worker's connection closing (its process was killed, its socket reset) requeues
  its jobs at once (``connection_closed``), without waiting for the lease to expire.
- Results are kept by job id and the first one wins: a late result from a worker presumed dead
  is accepted if the job is still unfinished and dropped (counted in ``duplicates``) otherwise.
  So every job has exactly one result, however many times it was computed.
Heartbeats rather than a per-job deadline, because job durations are unknown: a deadline long
enough for the slowest job leaves a dead worker's job stuck that long, and a short one recomputes
every long job. The connection fast path alone is not enough: a host that loses power or network
never closes its sockets.

Work is *done* when the producer has closed the queue and every job has a result; then
``get_job`` answers ``DONE`` and workers exit. Workers never look at whether the queue is empty.

All methods run in the server's per-connection threads; one lock guards the state.
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ipcluster_kit.errors import BadInput
from ipcluster_kit.validate import check_seconds
from ipcluster_kit.mqueue.protocol import DONE, JOBS, MAX_BATCH, MAX_SUBMIT, MAX_WAIT, STOP, WAIT, heartbeat_interval
from ipcluster_kit.mqueue.tasks import DEFAULT_TASK, check_task

WORKER_STATES = ("active", "lost", "disconnected", "left")  # calling in | lease expired | socket closed | goodbye


@dataclass
class _Worker:
    worker_id: str
    info: dict
    last_seen: float
    state: str = "active"  # one of WORKER_STATES
    leased: set[int] = field(default_factory=set)
    results: int = 0
    requeued: int = 0


class Broker:
    def __init__(
        self,
        *,
        lease_timeout: float = 30.0,
        default_task: Any = DEFAULT_TASK,
        clock: Callable[[], float] = time.monotonic,
    ):
        # ``clock`` dates what leases depend on (when a worker was last seen); tests pass one
        # they advance by hand. Waits with a timeout always use the real monotonic clock.
        self.lease_timeout = check_seconds("--lease-timeout", lease_timeout)
        self._clock = clock
        self._waiting = 0  # workers blocked in get_job/exchange right now
        self.default_task = check_task(default_task)
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # workers wait here for jobs
        self._news = threading.Condition(self._lock)  # collectors wait here for results
        self._tasks: list[Any] = []
        self._task_ids: dict[Any, int] = {}
        self._jobs: list[tuple[int, Any]] = []  # job_id -> (task_id, arg)
        self._pending: collections.deque[int] = collections.deque()
        self._leases: dict[int, str] = {}  # job_id -> worker_id
        self._results: dict[int, tuple[bool, Any]] = {}  # job_id -> (ok, value or error text)
        self._log: list[int] = []  # job ids in the order their results arrived
        self._workers: dict[str, _Worker] = {}
        self._conn_owner: dict[int, str] = {}  # server thread (one per connection) -> worker id
        self._closed = False
        self._collected = False
        self._stopping: str | None = None
        self._requeued = 0
        self._duplicates = 0
        self._failed = 0
        self._started = time.monotonic()

    # -- helpers (lock held) ---------------------------------------------------------------
    def _is_done(self) -> bool:
        return self._closed and len(self._results) == len(self._jobs)

    def _touch(self, worker_id: str, *, bind: bool = False) -> _Worker:
        now = self._clock()
        w = self._workers.get(worker_id)
        if w is None:
            w = self._workers[worker_id] = _Worker(worker_id, {}, now)
        w.last_seen = now
        if w.state in ("lost", "disconnected"):
            w.state = "active"  # it was presumed dead but is calling in: welcome back
        if bind:
            self._conn_owner[threading.get_ident()] = worker_id
        return w

    def _return_to_queue(self, w: _Worker, job_ids: Any) -> int:
        """The jobs among ``job_ids`` that ``w`` holds, unleased and back to the front of the queue."""
        jobs = sorted({j for j in job_ids if self._leases.get(j) == w.worker_id})
        for job_id in jobs:
            del self._leases[job_id]
            w.leased.discard(job_id)
        # Back to the front, lowest id first, so collectors' in-order output is not held up.
        self._pending.extendleft(reversed(jobs))
        if jobs:
            self._work.notify(len(jobs))
        return len(jobs)

    def _requeue_leases(self, w: _Worker) -> int:
        count = self._return_to_queue(w, list(w.leased))
        w.leased.clear()
        self._requeued += count
        w.requeued += count
        return count

    def _take(self, w: _Worker, max_jobs: int) -> list[tuple[int, int, Any]]:
        batch = []
        while self._pending and len(batch) < max_jobs:
            job_id = self._pending.popleft()
            if job_id in self._results or job_id in self._leases:
                continue  # stale entry: finished by a late result, or already re-leased
            self._leases[job_id] = w.worker_id
            w.leased.add(job_id)
            task_id, arg = self._jobs[job_id]
            batch.append((job_id, task_id, arg))
        return batch

    def _store(self, w: _Worker, results: list) -> int:
        accepted = 0
        for job_id, ok, value in results:
            holder = self._leases.pop(job_id, None)
            if holder is not None:
                holder_w = self._workers.get(holder)
                if holder_w is not None:
                    holder_w.leased.discard(job_id)
            w.leased.discard(job_id)
            if job_id in self._results or not 0 <= job_id < len(self._jobs):
                self._duplicates += 1
                continue
            self._results[job_id] = (bool(ok), value)
            self._log.append(job_id)
            if not ok:
                self._failed += 1
            w.results += 1
            accepted += 1
        if accepted:
            self._news.notify_all()
            if self._is_done():
                self._work.notify_all()
        return accepted

    def _next(self, w: _Worker, max_jobs: int, timeout: float) -> tuple:
        max_jobs = max(1, min(int(max_jobs), MAX_BATCH))
        deadline = time.monotonic() + max(0.0, min(float(timeout), MAX_WAIT))
        while True:
            if self._stopping is not None and not self._is_done():
                return (STOP, self._stopping)
            batch = self._take(w, max_jobs)
            if batch:
                return (JOBS, batch)
            if self._is_done():
                return (DONE,)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return (WAIT,)
            self._waiting += 1
            try:
                self._work.wait(remaining)
            finally:
                self._waiting -= 1
            w.last_seen = self._clock()

    # -- worker side -----------------------------------------------------------------------
    def hello(self, worker_id: str, info: dict | None = None) -> dict:
        """Register a worker; returns the settings it must follow."""
        with self._lock:
            w = self._touch(worker_id)
            w.info = dict(info or {})
            w.state = "active"
            return {
                "lease_timeout": self.lease_timeout,
                "heartbeat_interval": heartbeat_interval(self.lease_timeout),
            }

    def heartbeat(self, worker_id: str) -> str:
        """Keep the worker's leases alive. Returns "ok", or "stop" when the server is stopping."""
        with self._lock:
            self._touch(worker_id)
            if self._stopping is not None and not self._is_done():
                return STOP
            return "ok"

    def goodbye(self, worker_id: str) -> None:
        """A worker leaving cleanly; any job it still holds goes back to the queue."""
        with self._lock:
            w = self._workers.get(worker_id)
            if w is not None:
                self._requeue_leases(w)
                w.state = "left"
            self._conn_owner.pop(threading.get_ident(), None)

    def get_job(self, worker_id: str, max_jobs: int = 1, timeout: float = 1.0) -> tuple:
        """Lease up to ``max_jobs`` jobs, waiting up to ``timeout`` s; or say WAIT, DONE or STOP."""
        with self._lock:
            w = self._touch(worker_id, bind=True)
            return self._next(w, max_jobs, timeout)

    def exchange(self, worker_id: str, results: list, max_jobs: int = 1, timeout: float = 1.0) -> tuple:
        """``put_results`` then ``get_job`` in one round trip (the worker's steady state)."""
        with self._lock:
            w = self._touch(worker_id, bind=True)
            self._store(w, results)
            return self._next(w, max_jobs, timeout)

    def put_results(self, worker_id: str, results: list) -> int:
        """Store ``[(job_id, ok, value), ...]``; returns how many were new (not duplicates)."""
        with self._lock:
            return self._store(self._touch(worker_id), results)

    def release(self, worker_id: str, job_ids: list) -> int:
        """Give leased jobs back unrun (the worker cannot run them); returns how many."""
        with self._lock:
            return self._return_to_queue(self._touch(worker_id), job_ids)

    def task(self, task_id: int) -> Any:
        with self._lock:
            return self._tasks[task_id]

    # -- producer side ---------------------------------------------------------------------
    def submit(self, args: list, task: Any = None) -> tuple[int, int]:
        """Add one job per item of ``args``; returns ``(first_job_id, count)``."""
        task = self.default_task if task is None else check_task(task)
        args = list(args)
        if len(args) > MAX_SUBMIT:
            raise BadInput(f"too many jobs in one call ({len(args)} > {MAX_SUBMIT}); submit in chunks")
        with self._lock:
            if self._closed:
                raise BadInput("the queue is closed: no more jobs accepted (start a new server)")
            if self._stopping is not None:
                raise BadInput(f"the server is stopping ({self._stopping})")
            task_id = self._task_ids.get(task)
            if task_id is None:
                task_id = self._task_ids[task] = len(self._tasks)
                self._tasks.append(task)
            first = len(self._jobs)
            self._jobs.extend((task_id, a) for a in args)
            self._pending.extend(range(first, first + len(args)))
            if args:
                self._work.notify(len(args))
            self._news.notify_all()
            return first, len(args)

    def close(self) -> int:
        """No more jobs will come; returns the total number of jobs."""
        with self._lock:
            self._closed = True
            self._news.notify_all()
            if self._is_done():
                self._work.notify_all()
            return len(self._jobs)

    # -- collector side --------------------------------------------------------------------
    def wait_results(self, cursor: int = 0, max_items: int = 10_000, timeout: float = 1.0) -> dict:
        """Results that arrived since ``cursor`` (in arrival order), waiting up to ``timeout`` s.

        ``items`` is ``[(job_id, ok, value), ...]``; pass the returned ``cursor`` next time.
        """
        cursor = max(0, int(cursor))
        deadline = time.monotonic() + max(0.0, min(float(timeout), MAX_WAIT))
        with self._lock:
            while len(self._log) <= cursor and not self._is_done() and self._stopping is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._news.wait(remaining)
            ids = self._log[cursor : cursor + max(1, int(max_items))]
            items = [(j, *self._results[j]) for j in ids]
            return {
                "items": items,
                "cursor": cursor + len(ids),
                "submitted": len(self._jobs),
                "done": len(self._results),
                "closed": self._closed,
                "finished": self._is_done(),
                "stopping": self._stopping,
            }

    def mark_collected(self) -> None:
        """A collector has every result (``serve --until-drained`` may now exit)."""
        with self._lock:
            if self._is_done():
                self._collected = True

    # -- server side -----------------------------------------------------------------------
    def stats(self) -> dict:
        with self._lock:
            now = time.monotonic()
            states = collections.Counter(w.state for w in self._workers.values())
            return {
                "submitted": len(self._jobs),
                "pending": sum(1 for j in self._pending if j not in self._results and j not in self._leases),
                "leased": len(self._leases),
                "done": len(self._results),
                "failed": self._failed,
                "requeued": self._requeued,
                "duplicates": self._duplicates,
                "closed": self._closed,
                "finished": self._is_done(),
                "collected": self._collected,
                "stopping": self._stopping,
                "lease_timeout": self.lease_timeout,
                "workers": {state: states.get(state, 0) for state in WORKER_STATES},
                "connected_workers": len(set(self._conn_owner.values())),
                "uptime": round(now - self._started, 3),
            }

    def reap(self) -> int:
        """Requeue the jobs of workers silent for longer than the lease timeout; returns how many."""
        with self._lock:
            cutoff = self._clock() - self.lease_timeout
            count = 0
            for w in self._workers.values():
                if w.state == "active" and w.last_seen < cutoff:
                    count += self._requeue_leases(w)
                    w.state = "lost"
            return count

    def connection_closed(self, thread_id: int) -> int:
        """The connection served by ``thread_id`` closed: if a worker's, requeue its jobs now."""
        with self._lock:
            worker_id = self._conn_owner.pop(thread_id, None)
            if worker_id is None:
                return 0
            w = self._workers.get(worker_id)
            if w is None or worker_id in self._conn_owner.values():
                return 0
            count = self._requeue_leases(w)
            if w.state == "active":
                w.state = "disconnected"
            return count

    def stop(self, reason: str) -> None:
        """Shutting down: waiting workers get STOP (or DONE if the work is complete)."""
        with self._lock:
            if self._stopping is None:
                self._stopping = reason
            self._work.notify_all()
            self._news.notify_all()

    def is_finished(self) -> bool:
        with self._lock:
            return self._is_done()

    def is_drained(self) -> bool:
        """Closed, every result in, and a collector has fetched them all."""
        with self._lock:
            return self._is_done() and self._collected

    def waiting_workers(self) -> int:
        """Workers blocked in the server waiting for a job (their next result or job wakes them)."""
        with self._lock:
            return self._waiting

    def connected_workers(self) -> int:
        with self._lock:
            return len(self._conn_owner)

    def wait_jobs(self, first: int, count: int, timeout: float) -> bool:
        """Wait until jobs ``first .. first+count-1`` all have results (in-process use)."""
        deadline = time.monotonic() + timeout
        nxt, end = first, first + count
        with self._lock:
            while True:
                while nxt < end and nxt in self._results:
                    nxt += 1
                if nxt >= end:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._news.wait(min(remaining, 1.0))

    def results_of(self, first: int, count: int) -> list[tuple[bool, Any]]:
        """``(ok, value)`` of jobs ``first .. first+count-1``, in job order (in-process use)."""
        with self._lock:
            return [self._results[j] for j in range(first, first + count)]

