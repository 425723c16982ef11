"""The benchmark result documents: versioned JSON with every raw timing and the environment.

The format is described in ``docs/bench-json.md`` and fixed by the JSON Schema
``ipcluster_kit/schemas/bench-result-v1.json``. ``schema`` and ``schema_version`` identify it; a
change that breaks readers raises the version. The parts every document of the ``bench`` family
shares (the header, the statistics, the environment, a run entry) are built here, for the
shoot-out's document too.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import platform
import statistics
from typing import Any, Sequence

from ipcluster_kit import schemas
from ipcluster_kit.bench import stats

KIND = schemas.DocumentKind("ipcluster-kit/bench-result", 1, "bench-result-v1.json", "bench result",
                            "write one with `ipcluster-kit bench --json FILE`")  # fmt: skip
SCHEMA_NAME, SCHEMA_VERSION = KIND.name, KIND.version


# --- building -----------------------------------------------------------------------------------


def _versions() -> dict[str, str | None]:
    import importlib.metadata as md

    out: dict[str, str | None] = {}
    for dist in ("ipcluster-kit", "ipyparallel", "pyzmq", "ipython", "ipykernel"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = None
    try:
        import zmq

        out["libzmq"] = zmq.zmq_version()
    except Exception:
        out["libzmq"] = None
    return out


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _usable_cpus() -> int | None:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count()


def environment(cluster: Any, source: str, workers: int, load_before: list, load_after: list) -> dict:
    spec = getattr(cluster, "spec", None)
    return {
        "python": {"version": platform.python_version(), "implementation": platform.python_implementation()},
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": _usable_cpus(),
        "load_average": {"before": [round(x, 3) for x in load_before], "after": [round(x, 3) for x in load_after]},
        "versions": _versions(),
        "workers": workers,
        "cluster": {
            "source": source,
            "profile": (getattr(cluster, "name", None) if source == "profile" else None),
            "engines": (int(cluster.engines) if cluster is not None else None),
            "scheme": (getattr(cluster, "scheme", None) if cluster is not None else None),
            "hwm": getattr(spec, "hwm", None),
            "hosts": (list(getattr(cluster, "hosts", []) or []) if cluster is not None else []),
        },
    }


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def run_entry(record: Any, serial: stats.Summary | None, tasks: int) -> dict:
    """One backend on one workload: raw timings, their summary, speedup and efficiency."""
    entry: dict[str, Any] = {
        "workload": record.workload,
        "backend": record.backend,
        "workers": record.workers,
        "status": "ok" if record.ok and record.seconds else "failed",
        "error": record.error,
        "verified": bool(record.ok and record.seconds),
        "params": record.params,
        "warmup_seconds": list(record.warmup_seconds),
        "seconds": list(record.seconds),
        "foreign_cpus": [None if x is None else round(x, 4) for x in record.foreign_cpus],
        "foreign_cpus_median": None,
        "details": list(record.details),
        "stats": None,
        "speedup": None,
        "speedup_interval": None,
        "efficiency": None,
        "tasks_per_second": None,
        "seconds_per_task": None,
    }
    if entry["status"] == "failed" and entry["error"] is None:
        entry["error"] = "no timing recorded"
    if entry["status"] != "ok":
        return entry
    summary = stats.summarize(record.seconds)
    entry["stats"] = summary.to_dict()
    known = [x for x in entry["foreign_cpus"] if x is not None]
    if known:
        entry["foreign_cpus_median"] = statistics.median(known)
    if summary.median > 0:
        entry["tasks_per_second"] = tasks / summary.median
        entry["seconds_per_task"] = summary.median / tasks
    if serial is not None and summary.median > 0:
        speedup = serial.median / summary.median
        low, high = stats.ratio_interval(serial, summary)
        entry["speedup"] = speedup
        entry["speedup_interval"] = [_finite(low), _finite(high)]
        entry["efficiency"] = speedup / max(record.workers, 1)
    return entry


def round_entries(records: Sequence[Any], tasks_by_workload: dict[str, int]) -> list[dict]:
    serial: dict[str, stats.Summary] = {}
    for r in records:
        if r.backend == "serial" and r.ok and r.seconds:
            serial[r.workload] = stats.summarize(r.seconds)
    return [run_entry(r, serial.get(r.workload), tasks_by_workload[r.workload]) for r in records]


def header(kind: schemas.DocumentKind, created: float, command: list[str] | None) -> dict:
    """What every result document starts with: its schema, when it was made, by which tool and command."""
    from ipcluster_kit import __version__

    return {
        "schema": kind.name,
        "schema_version": kind.version,
        "created": _dt.datetime.fromtimestamp(created, _dt.timezone.utc).isoformat(timespec="seconds"),
        "tool": {"name": "ipcluster-kit", "version": __version__, "command": command},
    }


def statistics_block() -> dict:
    """How every document summarises its timings."""
    return {"center": "median", "interval": stats.CI_METHOD, "interval_level": stats.TARGET_COVERAGE}


def serial_reference_entry(durations: Sequence[float]) -> dict:
    """The serial reference run of a workload: its total and per-task seconds."""
    return {
        "seconds": sum(durations),
        "task_seconds_mean": sum(durations) / len(durations) if durations else 0.0,
        "task_seconds_min": min(durations) if durations else 0.0,
        "task_seconds_max": max(durations) if durations else 0.0,
    }


def overhead_entry(runs: Sequence[dict], tasks: int) -> dict:
    """Per backend, what one no-op task cost on the overhead workload."""
    out = {}
    for run in runs:
        if run["workload"] == "overhead" and run["status"] == "ok":
            median = run["stats"]["median"]
            out[run["backend"]] = {
                "seconds_per_task": median / tasks,
                "tasks_per_second": tasks / median if median > 0 else None,
                "worker_seconds_per_task": median * run["workers"] / tasks,
                "chunksize": run["params"].get("chunksize"),
            }
    return out


def build_document(
    *,
    config: Any,
    workloads: Sequence[Any],
    refs: dict[str, Any],
    backend_names: Sequence[str],
    unavailable: dict[str, str],
    rounds: Sequence[tuple[int, Sequence[Any]]],
    cluster: Any,
    cluster_source: str,
    workers: int,
    load_before: list,
    load_after: list,
    created: float,
) -> dict:
    from ipcluster_kit.bench.backends import BACKENDS

    tasks = {w.name: w.size for w in workloads}
    runs = round_entries(rounds[0][1], tasks)
    overhead = overhead_entry(runs, tasks["overhead"]) if "overhead" in tasks else None
    scaling = None
    if getattr(config, "scaling", False):
        scaling = {
            "engine_counts": sorted(k for k, _ in rounds),
            "rounds": [{"workers": k, "runs": round_entries(recs, tasks)} for k, recs in rounds[1:]],
        }
    workload_entries = [{"name": w.name, "description": w.description, "tasks": w.size,
                         "serial_reference": serial_reference_entry(refs[w.name].task_seconds)} for w in workloads]  # fmt: skip
    return {
        **header(KIND, created, getattr(config, "command", None)),
        "config": {
            "workloads": [w.name for w in workloads],
            "backends": list(backend_names),
            "repeat": config.repeat,
            "warmup": config.warmup,
            "quick": bool(config.quick),
            "scaling": bool(config.scaling),
            "tasks": config.tasks,
            "sum_n": config.sum_n,
            "timeout_seconds": config.timeout,
        },
        "statistics": {
            **statistics_block(),
            "speedup": "serial median / backend median",
            "speedup_interval": "serial interval low / backend interval high .. serial high / backend low",
            "efficiency": "speedup / workers",
            "foreign_cpus": "CPUs kept busy by other processes during a timed run (busy time from /proc/stat"
            " minus this process tree's CPU time, over the wall time); null when unknown",
        },
        "environment": environment(cluster, cluster_source, workers, load_before, load_after),
        "workloads": workload_entries,
        "backends": [
            {"name": name, "description": BACKENDS[name].description, "available": name not in unavailable,
             "reason": unavailable.get(name)}
            for name in backend_names
        ],  # fmt: skip
        "runs": runs,
        "overhead": overhead,
        "scaling": scaling,
    }


# --- reading -------------------------------------------------------------------------------------


def validation_errors(document: Any) -> list[str]:
    """Why ``document`` is not a valid result document (empty when it is), by its JSON Schema."""
    return schemas.errors(document, KIND)


def load(path: str | os.PathLike) -> dict:
    """Read and validate a result document; BadInput naming the file when it is not one."""
    return schemas.load_document(path, KIND)
