"""The chunk-size sweep: one workload through ``load_balanced_view().map`` at many chunk sizes.

``run_sweep(SweepConfig(...))`` measures the map at chunk sizes from 1 to one chunk per engine
(``ceil(n / E)``), next to the serial loop (and any other backends asked for), with the runner's
measuring round (:func:`ipcluster_kit.bench.measure.measure_round`: interleaved, rotating, every
result checked before its time counts). Beside each measured time it puts the chunk model's
prediction (:mod:`ipcluster_kit.bench.chunking`), from the same serial reference and the same probe
of the cluster the automatic chunk size (``ipp-lbv-auto``) uses, and it marks the automatic choice.
The document (``ipcluster-kit/bench-sweep`` v1, ``docs/bench-sweep-json.md``) holds every raw
timing, the model's inputs (so that it can be evaluated again offline) and its curve.

The sizes. The map at chunk size ``c`` sends ``ceil(n / c)`` near-equal parts, so sizes giving the
same number of parts run the same map: the swept sizes are spread evenly on a log scale from 1 to
``ceil(n / E)``, each the smallest with its number of parts, and the automatic choice is added.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ipcluster_kit import schemas
from ipcluster_kit.bench import chunking, hetero
from ipcluster_kit.bench.workloads import Workload, make_workload, result_list
from ipcluster_kit.errors import BadInput
from ipcluster_kit.validate import check_count, check_seconds

KIND = schemas.DocumentKind("ipcluster-kit/bench-sweep", 1, "bench-sweep-v1.json", "chunk-size sweep",
                            "write one with `ipcluster-kit bench sweep --json FILE`")  # fmt: skip
WORKLOADS = ("sum", "primes", "hetero")
USER = "user"  # the workload name of --function
DEFAULT_POINTS = 10
MAX_POINTS = 60
DEFAULT_REPEAT = 5
DEFAULT_WARMUP = 1
# The heterogeneous workload as the scheme shoot-out runs it (exponential durations, fixed seed).
HETERO_TASKS, HETERO_MEAN = 80, 0.015
QUICK_HETERO_TASKS, QUICK_HETERO_MEAN = 10, 0.01
NEAR_BEST = 0.05  # "within 5% of the best": the automatic choice's verdict in the summary

ProgressFn = Callable[[str, int, int], None]


@dataclass
class SweepConfig:
    workload: str = "primes"  # sum, primes, hetero; ignored with function
    chunks: Sequence[int] | None = None  # the sizes to sweep; None: DEFAULT_POINTS sizes from 1 to ceil(n/E)
    points: int = DEFAULT_POINTS
    backends: Sequence[str] = ()  # other backends measured in the same rounds, drawn as references
    repeat: int = DEFAULT_REPEAT
    warmup: int = DEFAULT_WARMUP
    quick: bool = False
    profile: str | None = None
    ipython_dir: str | None = None
    engines: int | None = None
    tasks: int | None = None
    sum_n: int | None = None
    hetero_mean: float | None = None
    seed: int = 0
    task_kind: str = hetero.DEFAULT_KIND
    function: str | None = None  # module:function, with args_file
    args_file: str | None = None
    timeout: float = 600.0
    cluster_timeout: float = 120.0
    command: list[str] | None = None


@dataclass
class SweepPlan:
    config: SweepConfig
    workload: Workload
    user: Any  # shootout.userfunc.UserFunction, or None
    backends: list[str]  # the reference backends, without serial


def _workload(config: SweepConfig) -> tuple[Workload, Any]:
    if config.function is not None:
        from ipcluster_kit.bench.shootout.userfunc import load_user_function

        user = load_user_function(config.function, config.args_file)
        return user.workload(USER), user
    if config.args_file is not None:
        raise BadInput("--args is the argument list of --function module:function; give --function too")
    if config.workload == "hetero":
        count = config.tasks or (QUICK_HETERO_TASKS if config.quick else HETERO_TASKS)
        mean = config.hetero_mean if config.hetero_mean is not None else (QUICK_HETERO_MEAN if config.quick else HETERO_MEAN)
        return hetero.hetero_workload(count, mean, config.seed, config.task_kind), None
    if config.workload not in WORKLOADS:
        raise BadInput(f"unknown workload {config.workload!r} (choose from {', '.join(WORKLOADS)}, or give --function)")
    return make_workload(config.workload, config.quick, tasks=config.tasks, sum_n=config.sum_n), None


def validate(config: SweepConfig) -> SweepPlan:
    """Check every value before anything starts; BadInput names the first bad one."""
    from ipcluster_kit.bench.backends import BACKENDS

    check_count("--repeat", config.repeat, 1)
    check_count("--warmup", config.warmup, 0)
    check_count("--points", config.points, 2, maximum=MAX_POINTS)
    if config.engines is not None:
        check_count("--engines", config.engines, 1)
    check_seconds("--timeout", config.timeout)
    check_seconds("--cluster-timeout", config.cluster_timeout)
    if config.tasks is not None:
        check_count("--tasks", config.tasks, 1)
    if config.hetero_mean is not None:
        check_seconds("--hetero-mean", config.hetero_mean, maximum=60.0)
    if config.task_kind not in hetero.TASK_KINDS:
        raise BadInput(f"unknown --task-kind {config.task_kind!r} (choose from {', '.join(hetero.TASK_KINDS)})")
    for c in config.chunks or ():
        check_count("--chunks", c, 1)
    for name in config.backends:
        if name not in BACKENDS or name == "serial":
            choices = ", ".join(b for b in BACKENDS if b != "serial")
            raise BadInput(f"unknown --backend {name!r} (choose from {choices})")
    workload, user = _workload(config)
    return SweepPlan(config, workload, user, list(dict.fromkeys(config.backends)))


def swept_sizes(n: int, engines: int, points: int, requested: Sequence[int] | None, automatic: int) -> list[int]:
    """The chunk sizes to measure: the requested ones, or ``points`` from 1 to ``ceil(n / E)`` on a
    log scale, and the automatic choice; each the smallest with its number of parts, ascending."""
    if requested:
        sizes = {chunking.canonical_chunksize(n, c) for c in requested}
    else:
        sizes = set(chunking.geometric_chunksizes(n, engines, points))
    return sorted(sizes | {chunking.canonical_chunksize(n, automatic)})


def _check(serial_results: list) -> Callable[[Workload, Any], str | None]:
    from ipcluster_kit.bench.measure import first_mismatch

    def check(w: Workload, got: Any) -> str | None:
        if w.name == "hetero":
            return hetero.check_results(got, hetero.durations_of(w))
        if w.name == USER:  # your function may be random: the count is what can be checked
            return result_list(got, w.size)[1]
        return first_mismatch(got, serial_results)

    return check


def _import_user_module(ctx: Any, user: Any) -> None:
    """Your function's module on every engine in use (its directory put on their sys.path first)."""
    from ipcluster_kit.bench.failures import remote_error_summary
    from ipcluster_kit.errors import KitError

    view = ctx.client[ctx.targets if ctx.targets is not None else ctx.client.ids]
    try:
        view.execute(user.import_code(), block=False).get(timeout=min(ctx.timeout, 60.0))
    except Exception as exc:
        module = user.func.__module__
        raise KitError(f"the engines cannot import {module!r}: {remote_error_summary(exc)[0]}") from None


def run_sweep(plan: SweepPlan, *, progress: ProgressFn | None = None, cluster: Any = None) -> dict:
    """Run the sweep ``validate(config)`` planned; return its document (see the module docstring).

    ``cluster`` may be a running cluster to use instead of ``config.profile``'s or a temporary one.
    """
    from ipcluster_kit.bench import results
    from ipcluster_kit.bench.backends import BenchContext, IppLbvChunk, Serial, make_backend, probed_costs, warm_engines
    from ipcluster_kit.bench.measure import Steps, measure_round, serial_reference
    from ipcluster_kit.bench.probe import cluster_costs
    from ipcluster_kit.bench.runner import REFERENCE_PASSES, given_cluster, measuring_session

    progress = progress or (lambda description, done, total: None)
    config, workload = plan.config, plan.workload
    cluster, source = given_cluster(config, cluster)
    created, load_before = time.time(), list(os.getloadavg())
    progress(f"{workload.name}: serial reference run", 0, 0)
    ref = serial_reference(workload, passes=REFERENCE_PASSES)  # before any cluster starts: the bring-up does not disturb it
    with measuring_session(config, True, cluster, source, lambda msg: progress(msg, 0, 0)) as session:
        ctx = BenchContext(workers=session.workers, timeout=config.timeout, cluster=session.cluster,
                           client=session.client, targets=session.engine_ids[: session.workers])  # fmt: skip
        warm_engines(ctx)
        if plan.user is not None:
            _import_user_module(ctx, plan.user)
        progress("probing the cluster: round trip, latency, engine speed", 0, 0)
        probe = probed_costs(ctx, ctx.client.load_balanced_view(targets=ctx.view_targets()))
        model = chunking.MapModel(ref.task_seconds, ctx.workers, cluster_costs(probe))
        choice = model.choose()
        sizes = swept_sizes(workload.size, ctx.workers, config.points, config.chunks, choice.chunksize)
        backends = [Serial(), *(IppLbvChunk(c) for c in sizes), *(make_backend(b) for b in plan.backends)]
        steps = Steps(len(backends) * (config.warmup + config.repeat), progress)
        records = measure_round(ctx, backends, [workload], warmup=config.warmup, repeat=config.repeat,
                                check=_check(ref.results), task_seconds={workload.name: ref.task_seconds},
                                steps=steps, load_probe=session.load_probe)  # fmt: skip
        environment = results.environment(session.cluster, session.source, session.workers, load_before,
                                          list(os.getloadavg()))  # fmt: skip
    return build_document(plan, ref.task_seconds, probe, model, choice, sizes, records, environment, created)


# --- the document ---------------------------------------------------------------------------------


def _summary(points: list[dict], choice: chunking.ChunkChoice) -> dict:
    measured = [p for p in points if p["status"] == "ok"]
    best = min(measured, key=lambda p: p["stats"]["median"], default=None)
    auto = next((p for p in points if p["automatic"]), None)
    out: dict[str, Any] = {"best": None, "automatic": None, "model_error": None}
    if best is not None:
        out["best"] = {"chunksize": best["chunksize"], "parts": best["parts"], "seconds": best["stats"]["median"],
                       "speedup": best["speedup"]}  # fmt: skip
    if auto is not None and auto["status"] == "ok":
        seconds = auto["stats"]["median"]
        ratio = seconds / best["stats"]["median"] if best and best["stats"]["median"] > 0 else None
        out["automatic"] = {
            "chunksize": auto["chunksize"], "parts": auto["parts"], "seconds": seconds, "speedup": auto["speedup"],
            "predicted_seconds": choice.predicted_seconds, "ratio_to_best": ratio,
            "near_best": ratio is not None and ratio <= 1.0 + NEAR_BEST,
            "prediction_error": (choice.predicted_seconds - seconds) / seconds if seconds > 0 else None,
        }  # fmt: skip
    errors = [abs(p["predicted_seconds"] - p["stats"]["median"]) / p["stats"]["median"]
              for p in measured if p["stats"]["median"] > 0]  # fmt: skip
    if errors:
        out["model_error"] = {"median": statistics.median(errors), "max": max(errors), "points": len(errors)}
    return out


def build_document(plan: SweepPlan, task_seconds: Sequence[float], probe: dict, model: chunking.MapModel,
                   choice: chunking.ChunkChoice, sizes: Sequence[int], records: Sequence[Any], environment: dict,
                   created: float) -> dict:  # fmt: skip
    from ipcluster_kit.bench import results, stats

    config, workload = plan.config, plan.workload
    by_backend = {r.backend: r for r in records}
    serial_record = by_backend["serial"]
    serial = stats.summarize(serial_record.seconds) if serial_record.ok and serial_record.seconds else None

    def entry(record: Any) -> dict:
        return results.run_entry(record, serial, workload.size)

    points = []
    for c in sizes:
        point = entry(by_backend[f"ipp-lbv-chunk{c}"])
        point.update({"chunksize": c, "parts": chunking.parts_of(workload.size, c), "predicted_seconds": model.predict(c),
                      "automatic": c == chunking.canonical_chunksize(workload.size, choice.chunksize)})  # fmt: skip
        points.append(point)
    curve = [{"chunksize": c, "parts": chunking.parts_of(workload.size, c), "predicted_seconds": model.predict(c)}
             for c in model.candidates()]  # fmt: skip
    durations = list(task_seconds)
    return {
        **results.header(KIND, created, config.command),
        "config": {
            "workload": workload.name, "function": config.function, "args_file": config.args_file,
            "chunks": list(config.chunks) if config.chunks else None, "points": config.points,
            "backends": list(plan.backends), "repeat": config.repeat, "warmup": config.warmup,
            "quick": bool(config.quick), "tasks": config.tasks, "sum_n": config.sum_n,
            "hetero_mean": config.hetero_mean, "seed": config.seed, "task_kind": config.task_kind,
            "timeout_seconds": config.timeout,
        },  # fmt: skip
        "statistics": {
            **results.statistics_block(),
            "speedup": "serial median / median at this chunk size (same rounds)",
            "prediction_error": "(predicted - measured median) / measured median",
        },
        "environment": environment,
        "workload": {
            "name": workload.name, "description": workload.description, "tasks": workload.size,
            "serial_reference": {**results.serial_reference_entry(durations), "task_seconds": durations},
        },  # fmt: skip
        "model": {
            "probe": probe,
            "speed_spread": model.speed_spread,
            "choice": choice.to_dict(),
            "curve": curve,
        },
        "serial": entry(serial_record),
        "points": points,
        "references": [entry(by_backend[name]) for name in plan.backends],
        "summary": _summary(points, choice),
    }


def validation_errors(document: Any) -> list[str]:
    """Why ``document`` is not a valid sweep document (empty when it is)."""
    return schemas.errors(document, KIND)


def load(path: str | os.PathLike) -> dict:
    """Read and validate a sweep document; BadInput naming the file when it is not one."""
    return schemas.load_document(path, KIND)


def failures(document: dict) -> list[str]:
    """One line per run that failed."""
    runs = [document["serial"], *document["points"], *document["references"]]
    return [f"{r['backend']}: {r['error']}" for r in runs if r["status"] != "ok"]
