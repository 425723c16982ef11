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
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

from ipcluster_kit.bench.backends import BACKENDS, BenchContext, make_backend
from ipcluster_kit.bench.measure import ProgressFn, Reference, RunRecord, Steps, against_serial, measure_round, serial_reference
from ipcluster_kit.bench.workloads import WORKLOAD_NAMES, Workload, make_workload
from ipcluster_kit.errors import BadInput, KitError
from ipcluster_kit.validate import check_count, check_seconds

DEFAULT_REPEAT = 5
DEFAULT_WARMUP = 1
DEFAULT_TIMEOUT = 600.0
REFERENCE_PASSES = 2  # serial reference runs; each task keeps its shortest time (measure.serial_reference)
# A temporary cluster starts every engine on this machine (each a Python process of ~60 MB that
# imports ipyparallel): more than this is a typo, not a benchmark.
MAX_LOCAL_ENGINES = 256

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


def validate(config: BenchConfig, cluster: Any = None) -> tuple[list[Workload], list[str]]:
    """Check every value before anything starts; BadInput names the first bad one.

    Without ``cluster`` or ``config.profile`` the engines are a temporary cluster's, on this machine:
    at most ``MAX_LOCAL_ENGINES`` of them.
    """
    check_count("--repeat", config.repeat, 1)
    check_count("--warmup", config.warmup, 0)
    if config.engines is not None:
        local = cluster is None and not config.profile
        check_count("--engines", config.engines, 1, maximum=MAX_LOCAL_ENGINES if local else None)
    check_seconds("--timeout", config.timeout)
    check_seconds("--cluster-timeout", config.cluster_timeout)
    names = expand_workloads(config.workloads)
    workloads = [make_workload(n, config.quick, tasks=config.tasks, sum_n=config.sum_n) for n in names]
    return workloads, expand_backends(config.backends)


def attach_profile(config: BenchConfig) -> Any:
    """The cluster ``ipcluster-kit up PROFILE`` started: BadInput for an unknown profile, KitError if down."""
    from ipcluster_kit.cluster.running import attach

    return attach(config.profile, config.ipython_dir)


def given_cluster(config: BenchConfig, cluster: Any) -> tuple[Any, str]:
    """``cluster`` (source ``given``), or ``config.profile``'s (``profile``, attached now: a profile
    that is unknown or down fails fast, before minutes of work), or None; BadInput when it has
    fewer engines than ``config.engines``."""
    source = "given"
    if cluster is None and config.profile:
        cluster, source = attach_profile(config), "profile"
    if cluster is not None and config.engines is not None and config.engines > int(cluster.engines):
        raise BadInput(
            f"invalid --engines {config.engines}: cluster {getattr(cluster, 'name', '')!r}"
            f" has {int(cluster.engines)} engine(s)"
        )
    return cluster, source


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
    from ipcluster_kit.cluster.temporary import temporary_cluster

    engines = config.engines or os.cpu_count() or 1
    progress(f"starting a temporary cluster with {engines} engine(s)")
    with temporary_cluster(engines=engines, timeout=config.cluster_timeout, progress=progress) as cluster:
        yield cluster, "temporary"


@dataclass
class Session:
    """What a measuring run has open: the cluster (or None), where it came from, one client for every
    ipyparallel backend, the worker count, the engine ids, and the probe of other work (or None)."""

    cluster: Any
    source: str  # given / profile / temporary / none
    client: Any
    workers: int
    engine_ids: list[int]
    load_probe: Any


def _watched(cluster: Any, client: Any) -> contextlib.AbstractContextManager:
    if client is None or not hasattr(cluster, "check"):
        return contextlib.nullcontext()
    from ipcluster_kit.cluster.watch import watching

    return watching(cluster, client)


@contextlib.contextmanager
def measuring_session(config: BenchConfig, needs_cluster: bool, given: Any, source: str,
                      progress: Callable[[str], None]) -> Iterator[Session]:  # fmt: skip
    """The cluster and client a benchmark measures on, closed (and a temporary cluster stopped) on exit.

    KitError when fewer engines answer than ``config.engines`` (or the cluster's count) asks for.
    """
    with open_cluster(config, needs_cluster, given, source, progress) as (cluster, source):
        workers = config.engines or (int(cluster.engines) if cluster is not None else os.cpu_count() or 1)
        client = None
        try:
            engine_ids: list[int] = []
            if needs_cluster:
                client = cluster.connect(timeout=min(config.cluster_timeout, 120.0))
                engine_ids = sorted(client.ids)
                if len(engine_ids) < workers:
                    raise KitError(f"only {len(engine_ids)} engine(s) answer, {workers} expected")
            # other work on the machine, per timed run: only meaningful when every process of the
            # benchmark descends from this one (no engines of a cluster started elsewhere)
            load_probe = None
            if source in ("temporary", "none"):
                from ipcluster_kit.bench.noise import LoadProbe

                load_probe = LoadProbe()
            with _watched(cluster, client):  # work on a lost controller or engine fails at once
                yield Session(cluster, source, client, workers, engine_ids, load_probe)
            if hasattr(cluster, "check"):
                cluster.check()  # a controller that died mid-run (its schedulers may live on): no result stands
        finally:
            if client is not None:
                with contextlib.suppress(Exception):
                    client.close()


def run_bench(
    config: BenchConfig,
    *,
    progress: ProgressFn | None = None,
    cluster: Any = None,
) -> dict:
    """Run the benchmark; return the result document (schema ``bench-result`` v1).

    ``cluster`` may be a running cluster (an object with ``connect()``, ``engines``, ``scheme``,
    ``hosts``, like :class:`ipcluster_kit.cluster.running.RunningCluster`) to use instead of
    starting one.
    """
    from ipcluster_kit.bench import results

    progress = progress or _no_progress
    workloads, backend_names = validate(config, cluster)
    probes = [make_backend(name) for name in backend_names]
    unavailable = {b.name: reason for b in probes if (reason := b.unavailable_reason()) is not None}
    active_names = [b.name for b in probes if b.name not in unavailable]
    needs_cluster = any(b.uses_cluster for b in probes if b.name in active_names)
    cluster, source = given_cluster(config, cluster)
    load_before = list(os.getloadavg())
    created = time.time()

    refs: dict[str, Reference] = {}
    for workload in workloads:
        progress(f"{workload.name}: serial reference run", 0, 0)
        refs[workload.name] = serial_reference(workload, passes=REFERENCE_PASSES)

    with measuring_session(config, needs_cluster, cluster, source, lambda msg: progress(msg, 0, 0)) as session:
        workers, engine_ids = session.workers, session.engine_ids
        counts = [workers] + (list(range(1, workers)) if config.scaling else [])
        per_round = len(active_names) * len(workloads) * (config.warmup + config.repeat)
        steps = Steps(per_round * len(counts), progress)
        rounds: list[tuple[int, list[RunRecord]]] = []
        for k in counts:
            targets = None if (k == len(engine_ids) or not engine_ids) else engine_ids[:k]
            ctx = BenchContext(workers=k, timeout=config.timeout, cluster=session.cluster, client=session.client,
                               targets=targets)  # fmt: skip
            records = measure_round(ctx, [make_backend(name) for name in active_names], workloads, warmup=config.warmup,
                                    repeat=config.repeat, check=against_serial(refs), steps=steps,
                                    load_probe=session.load_probe,
                                    task_seconds={name: ref.task_seconds for name, ref in refs.items()})  # fmt: skip
            rounds.append((k, records))

    return results.build_document(
        config=config,
        workloads=workloads,
        refs=refs,
        backend_names=backend_names,
        unavailable=unavailable,
        rounds=rounds,
        cluster=session.cluster,
        cluster_source=session.source,
        workers=workers,
        load_before=load_before,
        load_after=list(os.getloadavg()),
        created=created,
    )


def failures(document: dict) -> list[str]:
    """One line per backend that failed on a workload (in the main round)."""
    return [f"{r['backend']} on {r['workload']}: {r['error']}" for r in document["runs"] if r["status"] != "ok"]
