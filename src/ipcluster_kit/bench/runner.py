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

from ipcluster_kit.bench.backends import BACKENDS, Backend, BenchContext, MapTimeout, make_backend
from ipcluster_kit.bench.failures import describe
from ipcluster_kit.bench.workloads import WORKLOAD_NAMES, Workload, make_workload
from ipcluster_kit.errors import BadInput, KitError
from ipcluster_kit.validate import check_count, check_seconds

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
    traceback: list[str] | None = None  # the engines' traceback, when a task raised there

    @property
    def ok(self) -> bool:
        return self.error is None

    def clear_times(self) -> None:
        self.seconds.clear()
        self.warmup_seconds.clear()
        self.foreign_cpus.clear()
        self.details.clear()


def expand_workloads(names: Sequence[str], choices: Sequence[str] = WORKLOAD_NAMES, hint: str = "") -> list[str]:
    """The workload names asked for, in order, ``all`` expanded to ``choices``, each once."""
    out: list[str] = []
    for name in names or ("all",):
        if name == "all":
            picked = list(choices)
        elif name in choices:
            picked = [name]
        else:
            raise BadInput(f"unknown workload {name!r} (choose from {', '.join(choices)}, all{hint})")
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
    check_count("--repeat", config.repeat, 1)
    check_count("--warmup", config.warmup, 0)
    if config.engines is not None:
        check_count("--engines", config.engines, 1)
    check_seconds("--timeout", config.timeout)
    check_seconds("--cluster-timeout", config.cluster_timeout)
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


class Steps:
    """Counts the measuring steps for a progress bar: ``progress(description, done, total)``."""

    def __init__(self, total: int, progress: ProgressFn = _no_progress):
        self.done, self.total, self.progress = 0, total, progress

    def note(self, description: str) -> None:
        self.progress(description, self.done, self.total)

    def advance(self, description: str) -> None:
        self.done += 1
        self.progress(description, self.done, self.total)


Check = Callable[[Workload, Any], "str | None"]


def against_serial(refs: dict[str, Reference]) -> Check:
    """The usual check: every result equal to the serial reference run's."""
    return lambda workload, got: first_mismatch(got, refs[workload.name].results)


def _fail(record: RunRecord, prefix: str, exc: BaseException) -> None:
    line, traceback = describe(exc)
    record.error, record.traceback = f"{prefix}: {line}", traceback


def _time_once(backend: Backend, workload: Workload, record: RunRecord, warm: bool, check: Check, load_probe: Any) -> None:
    """One run of ``workload`` on ``backend``: verified first, then its time (and facts) kept."""
    snapshot = None if warm or load_probe is None else load_probe.start()
    start = time.perf_counter()
    got = backend.run(workload)
    elapsed = time.perf_counter() - start
    foreign = load_probe.foreign_cpus(snapshot) if snapshot is not None else None
    detail = backend.details()
    mismatch = check(workload, got)
    if mismatch is not None:
        record.error = f"results are wrong: {mismatch}"
    elif warm:
        record.warmup_seconds.append(elapsed)
    else:
        record.seconds.append(elapsed)
        record.foreign_cpus.append(foreign)
        record.details.append(detail)


def measure_round(
    ctx: BenchContext,
    backends: list[Backend],
    workloads: list[Workload],
    *,
    warmup: int,
    repeat: int,
    check: Check,
    task_seconds: dict[str, Sequence[float] | None],
    steps: Steps | None = None,
    load_probe: Any = None,
) -> list[RunRecord]:
    """One round at ``ctx.workers`` workers: set up, then per workload ``warmup`` untimed and
    ``repeat`` timed runs of every backend (the order rotating from run to run), tear down.

    A run counts only after ``check(workload, results)`` passed; a failure fails that backend on
    that workload (none of its times count). A map that timed out leaves its tasks on the
    workers, so that backend is abandoned for the workloads after it.
    """
    steps = steps or Steps(0)
    records: list[RunRecord] = []
    failed_early: dict[str, str] = {}  # setup failures, and backends abandoned after a timeout
    ready: list[Backend] = []
    try:
        for backend in backends:
            steps.note(f"{backend.name}: setting up ({ctx.workers} worker(s))")
            try:
                backend.setup(ctx)
                ready.append(backend)
            except Exception as exc:
                failed_early[backend.name] = f"setup failed: {describe(exc)[0]}"
        for workload in workloads:
            by_name = {b.name: RunRecord(workload.name, b.name, b.workers(ctx), error=failed_early.get(b.name)) for b in backends}
            alive = []
            for backend in ready:
                record = by_name[backend.name]
                if not record.ok:
                    continue
                try:
                    record.params = backend.prepare(workload, task_seconds.get(workload.name))
                    alive.append(backend)
                except Exception as exc:
                    _fail(record, "prepare failed", exc)
            for round_no in range(warmup + repeat):
                warm = round_no < warmup
                shift = round_no % len(alive) if alive else 0
                for backend in alive[shift:] + alive[:shift]:
                    record = by_name[backend.name]
                    label = f"{workload.name} / {backend.name} ({'warm-up' if warm else 'repeat'} {round_no + 1 - (0 if warm else warmup)})"
                    if record.ok:
                        steps.note(label)
                        try:
                            _time_once(backend, workload, record, warm, check, load_probe)
                        except MapTimeout as exc:
                            _fail(record, "run failed", exc)
                            failed_early[backend.name] = f"abandoned: {workload.name} timed out, its tasks still occupy the workers"
                        except Exception as exc:
                            _fail(record, "run failed", exc)
                    steps.advance(label)
            for backend in backends:
                # failed before any round (setup/prepare): the steps it would have taken are skipped
                if backend not in alive:
                    for _ in range(warmup + repeat):
                        steps.advance(f"{workload.name} / {backend.name} (skipped)")
            for record in by_name.values():
                if not record.ok:  # none of a failed backend's times count
                    record.clear_times()
            records.extend(by_name[b.name] for b in backends)
    finally:
        for backend in ready:
            with contextlib.suppress(Exception):
                backend.teardown()
    return records


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
                client = cl.connect(timeout=min(config.cluster_timeout, 120.0))
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
            steps = Steps(per_round * len(counts), progress)
            rounds: list[tuple[int, list[RunRecord]]] = []
            for k in counts:
                targets = None if (k == len(engine_ids) or not engine_ids) else engine_ids[:k]
                ctx = BenchContext(workers=k, timeout=config.timeout, cluster=cl, client=client, targets=targets)
                round_backends = [make_backend(name) for name in active_names]
                records = measure_round(ctx, round_backends, workloads, warmup=config.warmup, repeat=config.repeat,
                                        check=against_serial(refs), steps=steps, load_probe=load_probe,
                                        task_seconds={name: ref.task_seconds for name, ref in refs.items()})  # fmt: skip
                rounds.append((k, records))
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
