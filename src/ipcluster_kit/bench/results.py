"""The benchmark result document: versioned JSON with every raw timing and the environment.

The format is described in ``docs/bench-json.md`` and fixed by the JSON Schema shipped beside this
module (``schema/bench-result-v1.json``). ``schema`` and ``schema_version`` identify it; a change
that breaks readers raises the version.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import statistics
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

from ipcluster_kit.bench import stats
from ipcluster_kit.errors import BadInput

SCHEMA_NAME = "ipcluster-kit/bench-result"
SCHEMA_VERSION = 1
SCHEMA_FILE = "bench-result-v1.json"


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
    from ipcluster_kit import __version__
    from ipcluster_kit.bench.backends import BACKENDS

    tasks = {w.name: w.size for w in workloads}
    main_workers, main_records = rounds[0]
    runs = round_entries(main_records, tasks)
    overhead = None
    if "overhead" in tasks:
        overhead = {}
        for run in runs:
            if run["workload"] == "overhead" and run["status"] == "ok":
                median = run["stats"]["median"]
                overhead[run["backend"]] = {
                    "seconds_per_task": median / tasks["overhead"],
                    "tasks_per_second": tasks["overhead"] / median if median > 0 else None,
                    "worker_seconds_per_task": median * run["workers"] / tasks["overhead"],
                    "chunksize": run["params"].get("chunksize"),
                }
    scaling = None
    if getattr(config, "scaling", False):
        scaling = {
            "engine_counts": sorted(k for k, _ in rounds),
            "rounds": [{"workers": k, "runs": round_entries(recs, tasks)} for k, recs in rounds[1:]],
        }
    workload_entries = []
    for w in workloads:
        durations = refs[w.name].task_seconds
        workload_entries.append({
            "name": w.name,
            "description": w.description,
            "tasks": w.size,
            "serial_reference": {
                "seconds": sum(durations),
                "task_seconds_mean": sum(durations) / len(durations) if durations else 0.0,
                "task_seconds_min": min(durations) if durations else 0.0,
                "task_seconds_max": max(durations) if durations else 0.0,
            },
        })  # fmt: skip
    return {
        "schema": SCHEMA_NAME,
        "schema_version": SCHEMA_VERSION,
        "created": _dt.datetime.fromtimestamp(created, _dt.timezone.utc).isoformat(timespec="seconds"),
        "tool": {"name": "ipcluster-kit", "version": __version__, "command": getattr(config, "command", None)},
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
            "center": "median",
            "interval": stats.CI_METHOD,
            "interval_level": stats.TARGET_COVERAGE,
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


# --- schema, reading, writing -------------------------------------------------------------------


def schema() -> dict:
    """The JSON Schema of the current version (shipped in the package)."""
    text = resources.files("ipcluster_kit.bench").joinpath("schema", SCHEMA_FILE).read_text()
    return json.loads(text)


def validation_errors(document: Any, *, full: bool = False) -> list[str]:
    """Why ``document`` is not a valid result document (empty when it is).

    By default the parts the kit reads are checked here, quickly. ``full=True`` validates against
    the shipped JSON Schema with ``jsonschema`` (in the test extra; importing it takes seconds
    because of its optional format checkers, too slow for ``bench compare``).
    """
    if not isinstance(document, dict):
        return ["not a JSON object"]
    if document.get("schema") != SCHEMA_NAME:
        return [f"not a bench result (schema is {document.get('schema')!r}, expected {SCHEMA_NAME!r})"]
    if document.get("schema_version") != SCHEMA_VERSION:
        return [f"unsupported schema_version {document.get('schema_version')!r} (this kit reads {SCHEMA_VERSION})"]
    if not full:
        return _structural_errors(document)
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}" for e in errors]


_TOP_KEYS = ("created", "tool", "config", "statistics", "environment", "workloads", "backends", "runs", "overhead", "scaling")
_RUN_KEYS = {
    "workload": str, "backend": str, "workers": int, "status": str, "verified": bool, "params": dict,
    "warmup_seconds": list, "seconds": list,
}  # fmt: skip
_STATS_KEYS = ("n", "median", "min", "max", "mean", "ci_low", "ci_high", "coverage", "wide")


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _run_errors(where: str, runs: Any) -> list[str]:
    if not isinstance(runs, list):
        return [f"{where}: not a list"]
    errors = []
    for i, run in enumerate(runs):
        at = f"{where}/{i}"
        if not isinstance(run, dict):
            errors.append(f"{at}: not an object")
            continue
        for key, kind in _RUN_KEYS.items():
            if not isinstance(run.get(key), kind):
                errors.append(f"{at}/{key}: missing or not {kind.__name__}")
        if run.get("status") not in ("ok", "failed"):
            errors.append(f"{at}/status: {run.get('status')!r} is not ok or failed")
        if not all(_number(x) and x >= 0 for x in run.get("seconds") or []):
            errors.append(f"{at}/seconds: not a list of non-negative numbers")
        if run.get("status") == "ok":
            st = run.get("stats")
            if not run.get("seconds"):
                errors.append(f"{at}/seconds: empty for an ok run")
            if not isinstance(st, dict) or any(k not in st for k in _STATS_KEYS) or not _number(st.get("median")):
                errors.append(f"{at}/stats: missing or incomplete for an ok run")
            for key in ("speedup", "efficiency"):
                if run.get(key) is not None and not _number(run.get(key)):
                    errors.append(f"{at}/{key}: not a number")
    return errors


def _structural_errors(document: dict) -> list[str]:
    errors = [f"{key}: missing" for key in _TOP_KEYS if key not in document]
    if errors:
        return errors
    env = document["environment"]
    if not isinstance(env, dict) or not isinstance(env.get("workers"), int) or not isinstance(env.get("cluster"), dict):
        errors.append("environment: missing workers or cluster")
    if not isinstance(document["workloads"], list) or not all(isinstance(w, dict) and "name" in w for w in document["workloads"]):
        errors.append("workloads: not a list of workloads")
    errors += _run_errors("runs", document["runs"])
    scaling = document["scaling"]
    if scaling is not None:
        if not isinstance(scaling, dict) or not isinstance(scaling.get("rounds"), list):
            errors.append("scaling: not an object with rounds")
        else:
            for j, rnd in enumerate(scaling["rounds"]):
                errors += _run_errors(f"scaling/rounds/{j}/runs", rnd.get("runs") if isinstance(rnd, dict) else None)
    return errors


def load(path: str | os.PathLike) -> dict:
    """Read and validate a result document; BadInput naming the file when it is not one."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise BadInput(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise BadInput(f"cannot read {str(path)!r}: not a text file") from None
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise BadInput(f"{str(path)!r} is not valid JSON ({exc})") from None
    errors = validation_errors(document)
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise BadInput(f"{str(path)!r} is not a valid bench result: {errors[0]}{more}")
    return document


def check_writable(path: str | os.PathLike, what: str) -> Path:
    """Fail early (before minutes of benchmarking) when ``path`` cannot be written."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise BadInput(f"invalid {what} {str(path)!r}: it is a directory")
    if not parent.is_dir():
        raise BadInput(f"invalid {what} {str(path)!r}: directory {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise BadInput(f"invalid {what} {str(path)!r}: directory {str(parent)!r} is not writable")
    return path


def dumps(document: dict) -> str:
    return json.dumps(document, indent=2, allow_nan=False) + "\n"


def write(path: str | os.PathLike, document: dict) -> Path:
    from ipcluster_kit.files import atomic_write

    path = Path(path)
    atomic_write(path, dumps(document))
    return path
