"""What a cluster costs per map and per chunk, measured through a view: the chunk model's inputs.

:func:`probe_costs` measures, through the very view that will run the maps (never timed itself):

- ``overhead_seconds`` (``o``): ``m`` no-op tasks at chunk size 1 take ``W`` seconds on ``E``
  engines; one engine spends ``W * E / m`` per task on the round trip alone. One unmeasured round
  first, then the median of ``rounds``.
- ``latency_seconds`` (``L``): a map of one no-op task per engine, minus ``o``: what a map costs
  once (first dispatch, last result back) beyond the per-chunk overhead. Median of ``rounds``.
- ``engine_speed`` (``s``): one calibration task (``sum(range(CALIBRATION_N))``) per engine, all at
  once, timed by the engines themselves (minus their handling of a no-op task), against the same
  task timed here, alone: how fast the engines compute side by side compared with the serial
  reference, which ran in this process (on slower hosts, or a machine slower with every core busy,
  above 1.0). See :func:`side_by_side_speed` for which samples count.

The engines' own timestamps (``started``/``completed`` in each task's metadata) also give
:func:`engine_details`: where a map's time went on the engines.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
from typing import Any

from ipcluster_kit.bench.workloads import noop, sum_range
from ipcluster_kit.errors import KitError

CALIBRATION_N = 3_000_000  # sum(range(n)): ~45 ms of pure Python on the reference machine (shorter ones varied by 10%)


class MapTimeout(KitError):
    """A map gave no result in time: its tasks still occupy the workers."""


def get_results(async_result: Any, timeout: float, what: str) -> list:
    """The results of an ipyparallel map, or a one-line :class:`MapTimeout` when ``timeout`` passes first."""
    import ipyparallel as ipp

    try:
        return list(async_result.get(timeout=timeout))
    except ipp.error.TimeoutError:
        raise MapTimeout(f"{what}: no result within {timeout:g} s") from None


def _stamp(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def task_spans(async_result: Any) -> list[tuple[Any, float]] | None:
    """(engine id, completed - started by that engine's clock) per task, or None when not reported."""
    try:
        metadata = [async_result.metadata[i] for i in range(len(async_result.msg_ids))]
    except Exception:
        return None
    spans = []
    for md in metadata:
        started, completed = _stamp(md.get("started")), _stamp(md.get("completed"))
        if started is None or completed is None:
            return None
        spans.append((md.get("engine_id"), (completed - started).total_seconds()))
    return spans


def engine_details(async_result: Any) -> dict | None:
    """Where a map's time went on the engines, from the engines' own timestamps.

    ``engine_busy_seconds``: the sum over tasks of (completed - started) on their engine, i.e. the
    work plus the engine's per-task handling; against the serial time it shows whether the engines
    computed at serial speed. ``busiest_engine_seconds``: the same for the engine that worked
    longest (the map cannot end before it). ``tasks_sent``: messages (chunks) sent.
    """
    spans = task_spans(async_result)
    if not spans:
        return None
    busy: dict[Any, float] = {}
    for engine, seconds in spans:
        busy[engine] = busy.get(engine, 0.0) + seconds
    return {"engine_busy_seconds": sum(busy.values()), "busiest_engine_seconds": max(busy.values()),
            "engines_used": len(busy), "tasks_sent": len(spans)}  # fmt: skip


def _seconds(async_result: Any) -> list[float]:
    return [s for _, s in task_spans(async_result) or []]


def probe_costs(view: Any, engines: int, timeout: float, tasks: int | None = None, rounds: int = 4) -> dict:
    """``o``, ``L`` and ``s`` of the chunk model through ``view`` (see the module docstring), with the samples."""
    m = tasks or max(32, 16 * engines)
    args = list(range(m))
    get_results(view.map(noop, args, chunksize=1, block=False), timeout, "overhead probe")
    per_task, handling = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        ar = view.map(noop, args, chunksize=1, block=False)
        get_results(ar, timeout, "overhead probe")
        per_task.append((time.perf_counter() - start) * engines / m)
        handling.extend(_seconds(ar))
    overhead = statistics.median(per_task)
    latency = []
    for _ in range(rounds):
        start = time.perf_counter()
        get_results(view.map(noop, list(range(engines)), chunksize=1, block=False), timeout, "latency probe")
        latency.append(time.perf_counter() - start)
    on_engines, here = [], []
    for _ in range(rounds):
        ar = view.map(sum_range, [CALIBRATION_N] * engines, chunksize=1, block=False)
        get_results(ar, timeout, "speed probe")
        on_engines.append(_seconds(ar))
        start = time.perf_counter()
        sum_range(CALIBRATION_N)
        here.append(time.perf_counter() - start)
    speed = side_by_side_speed(on_engines, handling, here)
    return {
        "overhead_seconds": overhead, "probe_tasks": m, "probe_rounds": rounds, "probe_samples": per_task,
        "latency_seconds": max(0.0, statistics.median(latency) - overhead), "latency_samples": latency,
        "engine_speed": speed,
        "engine_noop_seconds": statistics.median(handling) if handling else None,
        "speed_samples": {"calibration_n": CALIBRATION_N, "engines": [t for r in on_engines for t in r], "here": here},
    }  # fmt: skip


def side_by_side_speed(engine_rounds: list[list[float]], handling: list[float], here: list[float]) -> float:
    """``s``: the engines' calibration time, side by side, over this process's, alone (1.0 unmeasured).

    Each side's shortest: other work only adds time. On the engines' side the shortest *round*
    (the mean over the engines of one map), not the shortest single task: the model wants the
    engines' mean speed, and the fastest of eight samples is a lucky one (on the quiet reference
    machine the single shortest put the engines at 0.86-0.92x serial speed where the maps then
    measured 1.02x; the shortest round mean gave 0.95-1.05x).
    """
    means = [statistics.fmean(r) for r in engine_rounds if r]
    if not means or not here or min(here) <= 0:
        return 1.0
    speed = (min(means) - (min(handling) if handling else 0.0)) / min(here)
    return speed if speed > 0 else 1.0


def cluster_costs(probe: dict) -> Any:
    """A probe's figures as the chunk model's :class:`~ipcluster_kit.bench.chunking.ClusterCosts`."""
    from ipcluster_kit.bench.chunking import ClusterCosts

    return ClusterCosts(probe["overhead_seconds"], probe.get("latency_seconds", 0.0), probe.get("engine_speed", 1.0))
