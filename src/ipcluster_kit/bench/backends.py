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

import time
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Sequence

from ipcluster_kit.bench.probe import MapTimeout, cluster_costs, engine_details, get_results, probe_costs  # noqa: F401 (MapTimeout: re-exported)
from ipcluster_kit.bench.workloads import Workload
from ipcluster_kit.errors import BadInput, KitError

WORKLOAD_MODULE = "ipcluster_kit.bench.workloads"
POOL_START_METHOD = "spawn"


@dataclass
class BenchContext:
    """What backends share: the worker count, the cluster and one client, the per-map timeout."""

    workers: int
    timeout: float = 600.0
    cluster: Any = None  # ipcluster_kit.cluster.running.RunningCluster, when a backend needs one
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
        results = get_results(ar, self.ctx.timeout, self.name)
        self._last = ar
        return results

    def details(self) -> dict | None:
        return engine_details(self._last) if self._last is not None else None


@register
class IppLbvChunk(_IppBackend):
    """``load_balanced_view().map`` at one fixed chunk size: 1 (registered, the book's usage), or any
    size for the chunk-size sweep (``IppLbvChunk(8)`` is named ``ipp-lbv-chunk8``)."""

    name = "ipp-lbv-chunk1"
    description = "load_balanced_view().map, chunksize=1 (the book's usage)"

    def __init__(self, chunksize: int = 1) -> None:
        super().__init__()
        if isinstance(chunksize, bool) or not isinstance(chunksize, int) or chunksize < 1:
            raise ValueError(f"chunksize must be an int >= 1, got {chunksize!r}")
        self.chunksize = chunksize
        self.name = f"ipp-lbv-chunk{chunksize}"

    def setup(self, ctx: BenchContext) -> None:
        super().setup(ctx)
        self.view = ctx.client.load_balanced_view(targets=ctx.view_targets())

    def prepare(self, workload: Workload, task_seconds: Sequence[float]) -> dict:
        return {"chunksize": self.chunksize}

    def run(self, workload: Workload) -> list:
        return self._map(self.view, workload, chunksize=self.chunksize)


IppLbvChunk1 = IppLbvChunk  # the registered chunk-size-1 backend, by its former class name


def probed_costs(ctx: BenchContext, view: Any) -> dict:
    """The probe of this context's engines, measured once and shared (the sweep and ipp-lbv-auto)."""
    if "cost_probe" not in ctx.notes:
        ctx.notes["cost_probe"] = probe_costs(view, ctx.workers, ctx.timeout)
    return ctx.notes["cost_probe"]


@register
class IppLbvAuto(_IppBackend):
    name = "ipp-lbv-auto"
    description = "load_balanced_view().map, chunk size from measured overhead and task durations"

    def setup(self, ctx: BenchContext) -> None:
        super().setup(ctx)
        self.view = ctx.client.load_balanced_view(targets=ctx.view_targets())
        self.probe = probed_costs(ctx, self.view)
        self.chunks: dict[str, int] = {}

    def prepare(self, workload: Workload, task_seconds: Sequence[float]) -> dict:
        from ipcluster_kit.bench.chunking import choose_chunksize

        choice = choose_chunksize(task_seconds, self.ctx.workers, cluster_costs(self.probe))
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
