"""Backends: the ways to run a workload, each behind the same small interface.

A backend is set up once per run (``setup(ctx)``: pools started, views made, engines warmed), told
about each workload once (``prepare(workload, task_seconds)``: e.g. pick a chunk size; returns
the parameters to record), then runs it as often as asked (``run(workload) -> results``), and is
torn down at the end (``teardown()``). Each runs the work the way a user would call that API, with
its defaults, so the numbers are what a user gets:

- ``serial``: a plain loop in this process, the reference every other backend is checked against;
- ``ipp-lbv-chunk1``: ``load_balanced_view().map(f, args)`` with ``chunksize=1``, the book's usage;
- ``ipp-lbv-auto``: the same with the chunk size of :mod:`ipcluster_kit.bench.chunking`;
- ``ipp-direct``: ``client[:].map(f, args)``: DirectView.map, one contiguous block per engine;
- ``mp-pool``: ``multiprocessing.Pool(N).map(f, args)`` (its default chunk size, n / (4 N));
- ``process-pool``: ``ProcessPoolExecutor(N).map(f, args)`` (its default chunk size, 1);
- ``manager-queue``: :func:`ipcluster_kit.mqueue.backend.run_map`, the job queue over TCP on
  this host. Optional: when that module cannot be imported it reports "not available".

``N``, the number of workers, is the number of engines, so every parallel backend gets the same
number of processes. Pools use the ``spawn`` start method: the process holds ZeroMQ threads once
a client is connected, and forking a threaded process is unsafe. Start-up is never timed.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Sequence

from ipcluster_kit.bench.workloads import Workload, noop
from ipcluster_kit.errors import BadInput, KitError

WORKLOAD_MODULE = "ipcluster_kit.bench.workloads"
POOL_START_METHOD = "spawn"


@dataclass
class BenchContext:
    """What backends share: the worker count, the cluster and one client, the per-map timeout."""

    workers: int
    timeout: float = 600.0
    cluster: Any = None  # ipcluster_kit.cluster.local.RunningCluster, when a backend needs one
    client: Any = None  # one ipyparallel.Client for every ipyparallel backend
    targets: list[int] | None = None  # the engine ids in use; None = every engine
    notes: dict[str, Any] = field(default_factory=dict)  # memo: engines warmed, overhead measured

    def view_targets(self):
        return None if self.targets is None else list(self.targets)


class Backend:
    """Base class: see the module docstring for the life cycle."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    uses_cluster: ClassVar[bool] = False
    parallel: ClassVar[bool] = True

    def __init__(self) -> None:
        self.ctx: BenchContext | None = None

    def unavailable_reason(self) -> str | None:
        """None when the backend can run here; otherwise why not (one line)."""
        return None

    def workers(self, ctx: BenchContext) -> int:
        return ctx.workers if self.parallel else 1

    def setup(self, ctx: BenchContext) -> None:
        self.ctx = ctx

    def prepare(self, workload: Workload, task_seconds: Sequence[float]) -> dict:
        """Called once per workload, after the serial reference run; returns parameters to record."""
        return {}

    def run(self, workload: Workload) -> list:
        raise NotImplementedError

    def details(self) -> dict | None:
        """Facts about the last run, for the record (e.g. how long the engines worked), or None."""
        return None

    def teardown(self) -> None:
        pass


BACKENDS: dict[str, type[Backend]] = {}


def register(cls: type[Backend]) -> type[Backend]:
    BACKENDS[cls.name] = cls
    return cls


def make_backend(name: str) -> Backend:
    try:
        return BACKENDS[name]()
    except KeyError:
        raise BadInput(f"unknown backend {name!r} (choose from {', '.join(BACKENDS)})") from None


# --- serial -------------------------------------------------------------------------------------


@register
class Serial(Backend):
    name = "serial"
    description = "a plain loop in this process (the reference)"
    parallel = False

    def run(self, workload: Workload) -> list:
        return workload.run_serial()


# --- ipyparallel --------------------------------------------------------------------------------


class MapTimeout(KitError):
    """A map gave no result in time: its tasks still occupy the workers."""


def _get(async_result: Any, timeout: float, what: str) -> list:
    import ipyparallel as ipp

    try:
        return list(async_result.get(timeout=timeout))
    except ipp.error.TimeoutError:
        raise MapTimeout(f"{what}: no result within {timeout:g} s") from None


def engine_details(async_result: Any) -> dict | None:
    """Where a map's time went on the engines, from the engines' own timestamps.

    ``engine_busy_seconds``: the sum over tasks of (completed - started) on their engine, i.e. the
    work plus the engine's per-task handling; against the serial time it shows whether the engines
    computed at serial speed. ``busiest_engine_seconds``: the same for the engine that worked
    longest (the map cannot end before it). ``tasks_sent``: messages (chunks) sent.
    """
    import datetime as dt

    def stamp(value: Any) -> dt.datetime | None:
        if isinstance(value, dt.datetime):
            return value
        if isinstance(value, str):
            try:
                return dt.datetime.fromisoformat(value)
            except ValueError:
                return None
        return None

    try:
        metadata = [async_result.metadata[i] for i in range(len(async_result.msg_ids))]
    except Exception:
        return None
    busy: dict[Any, float] = {}
    for md in metadata:
        started, completed = stamp(md.get("started")), stamp(md.get("completed"))
        if started is None or completed is None:
            return None
        busy[md.get("engine_id")] = busy.get(md.get("engine_id"), 0.0) + (completed - started).total_seconds()
    if not busy:
        return None
    return {"engine_busy_seconds": sum(busy.values()), "busiest_engine_seconds": max(busy.values()),
            "engines_used": len(busy), "tasks_sent": len(metadata)}  # fmt: skip


def warm_engines(ctx: BenchContext) -> None:
    """Import the workload module on every engine in use (once per context)."""
    if ctx.notes.get("engines_warm"):
        return
    if ctx.client is None:
        raise KitError("no ipyparallel client: the ipyparallel backends need a cluster")
    view = ctx.client[ctx.targets if ctx.targets is not None else ctx.client.ids]
    try:
        view.execute(f"import {WORKLOAD_MODULE}", block=False).get(timeout=min(ctx.timeout, 60))
    except Exception as exc:
        raise KitError(
            f"the engines cannot import {WORKLOAD_MODULE} ({type(exc).__name__}: {exc});"
            " is ipcluster-kit installed where the engines run?"
        ) from None
    ctx.notes["engines_warm"] = True


class _IppBackend(Backend):
    uses_cluster = True
    _last: Any = None

    def setup(self, ctx: BenchContext) -> None:
        super().setup(ctx)
        warm_engines(ctx)

    def _map(self, view: Any, workload: Workload, **kwargs: Any) -> list:
        self._last = None
        ar = view.map(workload.func, workload.args, block=False, **kwargs)
        results = _get(ar, self.ctx.timeout, self.name)
        self._last = ar
        return results

    def details(self) -> dict | None:
        return engine_details(self._last) if self._last is not None else None


@register
class IppLbvChunk1(_IppBackend):
    name = "ipp-lbv-chunk1"
    description = "load_balanced_view().map, chunksize=1 (the book's usage)"

    def setup(self, ctx: BenchContext) -> None:
        super().setup(ctx)
        self.view = ctx.client.load_balanced_view(targets=ctx.view_targets())

    def prepare(self, workload: Workload, task_seconds: Sequence[float]) -> dict:
        return {"chunksize": 1}

    def run(self, workload: Workload) -> list:
        return self._map(self.view, workload, chunksize=1)


def measure_overhead(view: Any, engines: int, timeout: float, tasks: int | None = None, rounds: int = 3) -> dict:
    """Per-task round-trip overhead of a load-balanced view, from no-op tasks at chunk size 1.

    ``m`` no-op tasks take ``W`` seconds on ``E`` engines; one engine then spends ``W * E / m`` per
    task on the round trip alone. One unmeasured round first, then the median of ``rounds``.
    """
    m = tasks or max(32, 16 * engines)
    args = list(range(m))
    _get(view.map(noop, args, chunksize=1, block=False), timeout, "overhead probe")
    per_task = []
    for _ in range(rounds):
        start = time.perf_counter()
        _get(view.map(noop, args, chunksize=1, block=False), timeout, "overhead probe")
        per_task.append((time.perf_counter() - start) * engines / m)
    return {"overhead_seconds": statistics.median(per_task), "probe_tasks": m, "probe_rounds": rounds,
            "probe_samples": per_task}  # fmt: skip


@register
class IppLbvAuto(_IppBackend):
    name = "ipp-lbv-auto"
    description = "load_balanced_view().map, chunk size from measured overhead and task durations"

    def setup(self, ctx: BenchContext) -> None:
        super().setup(ctx)
        self.view = ctx.client.load_balanced_view(targets=ctx.view_targets())
        self.probe = measure_overhead(self.view, ctx.workers, ctx.timeout)
        self.chunks: dict[str, int] = {}

    def prepare(self, workload: Workload, task_seconds: Sequence[float]) -> dict:
        from ipcluster_kit.bench.chunking import choose_chunksize

        choice = choose_chunksize(task_seconds, self.ctx.workers, self.probe["overhead_seconds"])
        self.chunks[workload.name] = choice.chunksize
        return {"chunksize": choice.chunksize, "choice": choice.to_dict(), "overhead_probe": self.probe}

    def run(self, workload: Workload) -> list:
        return self._map(self.view, workload, chunksize=self.chunks.get(workload.name, 1))


@register
class IppDirect(_IppBackend):
    name = "ipp-direct"
    description = "DirectView.map: one contiguous block of the input per engine"

    def setup(self, ctx: BenchContext) -> None:
        super().setup(ctx)
        self.view = ctx.client[:] if ctx.targets is None else ctx.client[list(ctx.targets)]

    def prepare(self, workload: Workload, task_seconds: Sequence[float]) -> dict:
        from ipcluster_kit.bench.chunking import dv_block_shares

        return {"partition": "contiguous blocks", "block_work_shares": dv_block_shares(task_seconds, self.ctx.workers)}

    def run(self, workload: Workload) -> list:
        return self._map(self.view, workload)


# --- local process pools ------------------------------------------------------------------------


@register
class MpPool(Backend):
    name = "mp-pool"
    description = "multiprocessing.Pool(N).map (default chunk size)"

    def setup(self, ctx: BenchContext) -> None:
        import multiprocessing

        super().setup(ctx)
        self.pool = multiprocessing.get_context(POOL_START_METHOD).Pool(ctx.workers)
        # Start-up and the first import of the workload module stay out of the timings.
        self.pool.map_async(time.sleep, [0.05] * (2 * ctx.workers), chunksize=1).get(timeout=min(ctx.timeout, 120))

    def prepare(self, workload: Workload, task_seconds: Sequence[float]) -> dict:
        chunksize, extra = divmod(workload.size, self.ctx.workers * 4)  # what Pool.map computes
        return {"chunksize": chunksize + (1 if extra else 0), "start_method": POOL_START_METHOD}

    def run(self, workload: Workload) -> list:
        import multiprocessing

        try:
            return self.pool.map_async(workload.func, workload.args).get(timeout=self.ctx.timeout)
        except multiprocessing.TimeoutError:
            raise KitError(f"{self.name}: no result within {self.ctx.timeout:g} s") from None

    def teardown(self) -> None:
        pool = getattr(self, "pool", None)
        if pool is not None:
            pool.terminate()
            pool.join()


@register
class ProcessPool(Backend):
    name = "process-pool"
    description = "concurrent.futures.ProcessPoolExecutor(N).map (default chunk size 1)"

    def setup(self, ctx: BenchContext) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        super().setup(ctx)
        self.executor = ProcessPoolExecutor(ctx.workers, mp_context=multiprocessing.get_context(POOL_START_METHOD))
        list(self.executor.map(time.sleep, [0.05] * (2 * ctx.workers), timeout=min(ctx.timeout, 120)))

    def prepare(self, workload: Workload, task_seconds: Sequence[float]) -> dict:
        return {"chunksize": 1, "start_method": POOL_START_METHOD}

    def run(self, workload: Workload) -> list:
        from concurrent.futures import TimeoutError as FuturesTimeout

        try:
            return list(self.executor.map(workload.func, workload.args, timeout=self.ctx.timeout))
        except FuturesTimeout:
            raise KitError(f"{self.name}: no result within {self.ctx.timeout:g} s") from None

    def teardown(self) -> None:
        executor = getattr(self, "executor", None)
        if executor is None:
            return
        processes = list(getattr(executor, "_processes", {}).values())
        executor.shutdown(wait=False, cancel_futures=True)
        for proc in processes:  # stop our workers by their handle, with a timeout
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)


# --- the job queue (its own issue) --------------------------------------------------------------


def _load_run_map() -> tuple[Callable[..., list] | None, str | None]:
    try:
        from ipcluster_kit.mqueue import backend as mqueue_backend
    except ImportError as exc:
        return None, f"ipcluster_kit.mqueue.backend cannot be imported ({exc})"
    run_map = getattr(mqueue_backend, "run_map", None)
    if not callable(run_map):
        return None, "ipcluster_kit.mqueue.backend has no run_map()"
    return run_map, None


@register
class ManagerQueue(Backend):
    name = "manager-queue"
    description = "the multiprocessing.managers job queue over TCP on this host (workers started per map)"

    def unavailable_reason(self) -> str | None:
        return _load_run_map()[1]

    def setup(self, ctx: BenchContext) -> None:
        super().setup(ctx)
        self.run_map, reason = _load_run_map()
        if self.run_map is None:
            raise KitError(f"{self.name} not available: {reason}")

    def prepare(self, workload: Workload, task_seconds: Sequence[float]) -> dict:
        return {"jobs_per_lease": 1, "note": "worker start-up is inside each timing"}

    def run(self, workload: Workload) -> list:
        return list(self.run_map(workload.func, workload.args, processes=self.ctx.workers, timeout=self.ctx.timeout))


DEFAULT_BACKENDS = tuple(BACKENDS)
