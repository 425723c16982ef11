"""The benchmark runner: every backend on the same work, verified, timed side by side.

``run_bench(BenchConfig(...))`` returns the result document (:mod:`ipcluster_kit.bench.results`).
Order of events:

1. Every workload runs once serially in this process, task by task under the clock: its results
   are the reference, and its per-task durations feed the automatic chunk size. This happens before
   any cluster starts, so the bring-up does not disturb it.
2. The cluster: the one given, the one ``ipcluster-kit up`` started (``profile``), or a temporary
   local one with ``engines`` engines, started only when an ipyparallel backend is selected. One
   client serves every ipyparallel backend for the whole run.
3. Backends are set up (pools started, engines import the workload module, overhead probed).
4. Per workload: ``warmup`` rounds, then ``repeat`` rounds; in each round every backend runs once,
   the order rotating from round to round, so a slow spell on the shared machine hits all backends
   alike. Every run's results are compared with the serial reference *before* its time is kept;
   a mismatch or an error fails that backend on that workload, and none of its times count.
5. With ``scaling``, the same again with 1 .. N-1 workers (engine subsets, smaller pools).
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from ipcluster_kit.bench.backends import BACKENDS, Backend, BenchContext, make_backend
from ipcluster_kit.bench.workloads import WORKLOAD_NAMES, Workload, make_workload
from ipcluster_kit.errors import BadInput, KitError

DEFAULT_REPEAT = 5
DEFAULT_WARMUP = 1
DEFAULT_TIMEOUT = 600.0

# progress(description, done, total)
ProgressFn = Callable[[str, int, int], None]


def _no_progress(description: str, done: int, total: int) -> None:
    pass


@dataclass
class BenchConfig:
    workloads: Sequence[str] = ("all",)
    backends: Sequence[str] | None = None  # None: every registered backend
    repeat: int = DEFAULT_REPEAT
    warmup: int = DEFAULT_WARMUP
    quick: bool = False
    profile: str | None = None
    ipython_dir: str | None = None
    engines: int | None = None  # temporary cluster size, or how many of the profile's engines to use
    scaling: bool = False
    tasks: int | None = None
    sum_n: int | None = None
    timeout: float = DEFAULT_TIMEOUT  # per map call
    cluster_timeout: float = 120.0  # bring-up of a temporary cluster
    command: list[str] | None = None  # recorded in the document


@dataclass
class Reference:
    results: list
    task_seconds: list[float]

    @property
    def seconds(self) -> float:
        return sum(self.task_seconds)


@dataclass
class RunRecord:
    workload: str
    backend: str
    workers: int
    params: dict = field(default_factory=dict)
    warmup_seconds: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    foreign_cpus: list[float | None] = field(default_factory=list)  # other work during each timed run
    details: list[dict | None] = field(default_factory=list)  # backend facts per timed run (engine busy time)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def expand_workloads(names: Sequence[str]) -> list[str]:
    out: list[str] = []
    for name in names or ("all",):
        if name == "all":
            picked = list(WORKLOAD_NAMES)
        elif name in WORKLOAD_NAMES:
            picked = [name]
        else:
            raise BadInput(f"unknown workload {name!r} (choose from {', '.join(WORKLOAD_NAMES)}, all)")
        out.extend(p for p in picked if p not in out)
    return out


def expand_backends(names: Sequence[str] | None) -> list[str]:
    if not names:
        return list(BACKENDS)
    out = ["serial"]  # always: it is the reference for speedups
    for name in names:
        if name not in BACKENDS:
            raise BadInput(f"unknown backend {name!r} (choose from {', '.join(BACKENDS)})")
        if name not in out:
            out.append(name)
    return out


def validate(config: BenchConfig) -> tuple[list[Workload], list[str]]:
    """Check every value before anything starts; BadInput names the first bad one."""
    if config.repeat < 1:
        raise BadInput(f"invalid --repeat {config.repeat}: at least 1 timed repeat is needed")
    if config.warmup < 0:
        raise BadInput(f"invalid --warmup {config.warmup}: it must be 0 or more")
    if config.engines is not None and config.engines < 1:
        raise BadInput(f"invalid --engines {config.engines}: at least 1 engine is needed")
    if not config.timeout > 0:
        raise BadInput(f"invalid --timeout {config.timeout:g}: it must be more than 0 seconds")
    names = expand_workloads(config.workloads)
    workloads = [make_workload(n, config.quick, tasks=config.tasks, sum_n=config.sum_n) for n in names]
    return workloads, expand_backends(config.backends)


def serial_reference(workload: Workload) -> Reference:
    """The workload once in this process, each task timed: the reference results and durations."""
    clock = time.perf_counter
    results, durations = [], []
    func = workload.func
    for arg in workload.args:
        start = clock()
        results.append(func(arg))
        durations.append(clock() - start)
    return Reference(results, durations)


def first_mismatch(got: Any, expected: list) -> str | None:
    """None when ``got`` equals the serial results; otherwise what differs, in one line."""
    try:
        got = list(got)
    except TypeError:
        return f"returned {type(got).__name__}, not a sequence of results"
    if len(got) != len(expected):
        return f"returned {len(got)} results for {len(expected)} tasks"
    for i, (g, e) in enumerate(zip(got, expected)):
        if g != e:
            return f"result {i} is {g!r} where serial gives {e!r}"
    return None


def attach_profile(config: BenchConfig) -> Any:
    """The cluster ``ipcluster-kit up PROFILE`` started: BadInput for an unknown profile, KitError if down."""
    from ipcluster_kit.cluster.local import attach

    return attach(config.profile, config.ipython_dir)


@contextlib.contextmanager
def open_cluster(
    config: BenchConfig, needed: bool, given: Any, source: str, progress: Callable[[str], None]
) -> Iterator[tuple[Any, str]]:
    """The cluster to run on, and where it came from: given / profile / temporary / none.

    This is the one place that knows where clusters come from: ``given`` (a running cluster the
    caller passed, or the profile's, attached before anything else ran), else a temporary local
    cluster when an ipyparallel backend needs one.
    """
    if given is not None:
        yield given, source
        return
    if not needed:
        yield None, "none"
        return
    from ipcluster_kit.cluster.local import temporary_cluster

    engines = config.engines or os.cpu_count() or 1
    progress(f"starting a temporary cluster with {engines} engine(s)")
    with temporary_cluster(engines=engines, timeout=config.cluster_timeout, progress=progress) as cluster:
        yield cluster, "temporary"


class _Steps:
    def __init__(self, total: int, progress: ProgressFn):
        self.done, self.total, self.progress = 0, total, progress

    def note(self, description: str) -> None:
        self.progress(description, self.done, self.total)

    def advance(self, description: str) -> None:
        self.done += 1
        self.progress(description, self.done, self.total)


def _describe_error(exc: BaseException) -> str:
    message = exc.message if isinstance(exc, KitError) else f"{type(exc).__name__}: {exc}"
    return " ".join(str(message).split())[:500]


def _measure_round(
    ctx: BenchContext,
    backends: list[Backend],
    workloads: list[Workload],
    refs: dict[str, Reference],
    config: BenchConfig,
    steps: _Steps,
    load_probe: Any = None,
) -> list[RunRecord]:
    """One round at ``ctx.workers`` workers: set up, warm up, time, tear down."""
    records: list[RunRecord] = []
    setup_errors: dict[str, str] = {}
    ready: list[Backend] = []
    try:
        for backend in backends:
            steps.note(f"{backend.name}: setting up ({ctx.workers} worker(s))")
            try:
                backend.setup(ctx)
                ready.append(backend)
            except Exception as exc:
                setup_errors[backend.name] = f"setup failed: {_describe_error(exc)}"
        for workload in workloads:
            ref = refs[workload.name]
            by_name = {
                b.name: RunRecord(workload.name, b.name, b.workers(ctx), error=setup_errors.get(b.name))
                for b in backends
            }
            alive = []
            for backend in ready:
                try:
                    by_name[backend.name].params = backend.prepare(workload, ref.task_seconds)
                    alive.append(backend)
                except Exception as exc:
                    by_name[backend.name].error = f"prepare failed: {_describe_error(exc)}"
            for round_no in range(config.warmup + config.repeat):
                warm = round_no < config.warmup
                shift = round_no % len(alive) if alive else 0
                for backend in alive[shift:] + alive[:shift]:
                    record = by_name[backend.name]
                    label = f"{workload.name} / {backend.name} ({'warm-up' if warm else 'repeat'} {round_no + 1 - (0 if warm else config.warmup)})"
                    if record.ok:
                        steps.note(label)
                        try:
                            snapshot = load_probe.start() if load_probe else None
                            start = time.perf_counter()
                            got = backend.run(workload)
                            elapsed = time.perf_counter() - start
                            foreign = load_probe.foreign_cpus(snapshot) if load_probe else None
                            detail = backend.details()
                            mismatch = first_mismatch(got, ref.results)
                        except Exception as exc:
                            elapsed, mismatch = None, None
                            record.error = f"run failed: {_describe_error(exc)}"
                        if mismatch is not None:
                            record.error = f"results differ from serial: {mismatch}"
                        if record.ok:  # verified: now the time counts
                            if warm:
                                record.warmup_seconds.append(elapsed)
                            else:
                                record.seconds.append(elapsed)
                                record.foreign_cpus.append(foreign)
                                record.details.append(detail)
                        else:
                            record.seconds.clear()
                            record.warmup_seconds.clear()
                            record.foreign_cpus.clear()
                            record.details.clear()
                    steps.advance(label)
            for backend in backends:
                # failed before any round (setup/prepare): the steps it would have taken are skipped
                if backend not in alive:
                    for _ in range(config.warmup + config.repeat):
                        steps.advance(f"{workload.name} / {backend.name} (skipped)")
            records.extend(by_name[b.name] for b in backends)
    finally:
        for backend in ready:
            with contextlib.suppress(Exception):
                backend.teardown()
    return records


def _connect(cluster: Any, timeout: float):
    client = cluster.connect(timeout=min(timeout, 120.0))
    return client


def run_bench(
    config: BenchConfig,
    *,
    progress: ProgressFn | None = None,
    cluster: Any = None,
) -> dict:
    """Run the benchmark; return the result document (schema ``bench-result`` v1).

    ``cluster`` may be a running cluster (an object with ``connect()``, ``engines``, ``scheme``,
    ``hosts``, like :class:`ipcluster_kit.cluster.local.RunningCluster`) to use instead of
    starting one.
    """
    from ipcluster_kit.bench import results

    progress = progress or _no_progress
    workloads, backend_names = validate(config)
    probes = [make_backend(name) for name in backend_names]
    unavailable = {b.name: reason for b in probes if (reason := b.unavailable_reason()) is not None}
    active_names = [b.name for b in probes if b.name not in unavailable]
    needs_cluster = any(b.uses_cluster for b in probes if b.name in active_names)
    source = "given"
    if cluster is None and config.profile:
        cluster, source = attach_profile(config), "profile"  # fails fast, before minutes of work
    if cluster is not None and config.engines is not None and config.engines > int(cluster.engines):
        raise BadInput(
            f"invalid --engines {config.engines}: cluster {getattr(cluster, 'name', '')!r}"
            f" has {int(cluster.engines)} engine(s)"
        )
    load_before = list(os.getloadavg())
    created = time.time()

    refs: dict[str, Reference] = {}
    for workload in workloads:
        progress(f"{workload.name}: serial reference run", 0, 0)
        refs[workload.name] = serial_reference(workload)

    with open_cluster(config, needs_cluster, cluster, source, lambda msg: progress(msg, 0, 0)) as (cl, source):
        client = None
        try:
            if cl is not None:
                workers = config.engines or int(cl.engines)
            else:
                workers = config.engines or os.cpu_count() or 1
            engine_ids: list[int] = []
            if needs_cluster:
                client = _connect(cl, config.cluster_timeout)
                engine_ids = sorted(client.ids)
                if len(engine_ids) < workers:
                    raise KitError(f"only {len(engine_ids)} engine(s) answer, {workers} expected")

            # other work on the machine, per timed run: only meaningful when every process of the
            # benchmark descends from this one (no engines of a cluster started elsewhere)
            load_probe = None
            if source in ("temporary", "none"):
                from ipcluster_kit.bench.noise import LoadProbe

                load_probe = LoadProbe()
            counts = [workers] + (list(range(1, workers)) if config.scaling else [])
            per_round = len(active_names) * len(workloads) * (config.warmup + config.repeat)
            steps = _Steps(per_round * len(counts), progress)
            rounds: list[tuple[int, list[RunRecord]]] = []
            for k in counts:
                targets = None if (k == len(engine_ids) or not engine_ids) else engine_ids[:k]
                ctx = BenchContext(workers=k, timeout=config.timeout, cluster=cl, client=client, targets=targets)
                round_backends = [make_backend(name) for name in active_names]
                rounds.append((k, _measure_round(ctx, round_backends, workloads, refs, config, steps, load_probe)))
        finally:
            if client is not None:
                with contextlib.suppress(Exception):
                    client.close()

    return results.build_document(
        config=config,
        workloads=workloads,
        refs=refs,
        backend_names=backend_names,
        unavailable=unavailable,
        rounds=rounds,
        cluster=cl,
        cluster_source=source,
        workers=workers,
        load_before=load_before,
        load_after=list(os.getloadavg()),
        created=created,
    )


def failures(document: dict) -> list[str]:
    """One line per backend that failed on a workload (in the main round)."""
    return [f"{r['backend']} on {r['workload']}: {r['error']}" for r in document["runs"] if r["status"] != "ok"]
