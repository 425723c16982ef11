"""Tasks of heterogeneous duration: how well a scheduler balances uneven work.

``count`` durations are drawn from an exponential distribution with the given mean, with a fixed
seed (``random.Random(seed).expovariate(1 / mean)``), so every scheme gets exactly the same list.
No schedule can finish before the lower bound

    max(sum(durations) / engines, max(durations))

(all engines busy all the time, or the longest task alone), so a map's makespan divided by this
bound says how far from perfect a scheduler got: the round trips it adds and the imbalance it leaves.

Two kinds of task:

- ``cpu`` (the default): the task burns ``d`` seconds of its own thread's CPU time. This is work of a
  fixed size: when the engine shares a core with the controller's scheduler, the hub or the client,
  it takes longer in wall-clock time, as real computations do. On a machine with as many cores as
  engines, a scheduler that itself needs CPU (the Python schemes) competes with the work, which is
  the realistic case and part of what is measured.
- ``sleep``: the task sleeps ``d`` seconds. Engines leave the CPU to the scheduler, so the ratio
  isolates the scheduler's placement decisions and its latency from CPU contention.

Each task returns ``(index, seconds, pid)``: its index (results come back in order), the
wall-clock seconds it ran, and the engine's PID, from which the work per engine is summed.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any, Sequence

from ipcluster_kit.bench.workloads import Workload, result_list
from ipcluster_kit.errors import BadInput
from ipcluster_kit.validate import check_count, check_seconds

TASK_KINDS = ("cpu", "sleep")
DEFAULT_KIND = "cpu"

# Clocks tick in steps of about a microsecond; a sleep may end a hair early on some systems.
_TOLERANCE = 1e-4


def exponential_durations(count: int, mean: float, seed: int = 0) -> list[float]:
    """``count`` durations with an exponential distribution of the given mean, reproducibly."""
    check_count("--hetero-tasks", count, 1)
    check_seconds("--hetero-mean", mean)
    rng = random.Random(seed)
    return [rng.expovariate(1.0 / mean) for _ in range(count)]


def lower_bound(durations: Sequence[float], engines: int) -> float:
    """The shortest possible makespan of ``durations`` on ``engines`` identical engines.

    No schedule beats ``sum / engines`` (every engine busy until the end) nor ``max`` (a task cannot
    be split). Round trips and start-up are not included: the bound is for the work alone.
    """
    if engines < 1:
        raise ValueError(f"engines must be >= 1, got {engines}")
    if not durations:
        return 0.0
    return max(sum(durations) / engines, max(durations))


def burn_cpu(seconds: float) -> None:
    """Spin until this thread has used ``seconds`` of CPU time (not wall-clock time)."""
    clock = time.thread_time
    end = clock() + seconds
    while clock() < end:
        pass


def hetero_task(spec: tuple[int, float, str]) -> tuple[int, float, int]:
    """One task: ``spec = (index, seconds, kind)``; returns ``(index, wall seconds, engine PID)``."""
    index, seconds, kind = spec
    start = time.perf_counter()
    if kind == "sleep":
        time.sleep(seconds)
    elif kind == "cpu":
        burn_cpu(seconds)
    else:
        raise ValueError(f"unknown task kind {kind!r} (choose from {', '.join(TASK_KINDS)})")
    return index, time.perf_counter() - start, os.getpid()


def hetero_workload(count: int, mean: float, seed: int = 0, kind: str = DEFAULT_KIND) -> Workload:
    if kind not in TASK_KINDS:
        raise BadInput(f"unknown --task-kind {kind!r} (choose from {', '.join(TASK_KINDS)})")
    durations = exponential_durations(count, mean, seed)
    description = f"{count} {kind} tasks, exponential durations, mean {mean * 1000:g} ms, seed {seed}"
    return Workload("hetero", hetero_task, [(i, d, kind) for i, d in enumerate(durations)], description)


def durations_of(workload: Workload) -> list[float]:
    return [spec[1] for spec in workload.args]


def check_results(results: Any, durations: Sequence[float]) -> str | None:
    """None when every task came back, in order, having run at least its duration; else why not."""
    results, problem = result_list(results, len(durations))
    if problem is not None:
        return problem
    for i, (got, d) in enumerate(zip(results, durations)):
        if not (isinstance(got, (tuple, list)) and len(got) == 3):
            return f"result {i} is {got!r}, not (index, seconds, pid)"
        index, seconds, _pid = got
        if index != i:
            return f"result {i} is the result of task {index!r}"
        if not isinstance(seconds, (int, float)) or seconds < d - _TOLERANCE:
            return f"task {i} ran {seconds!r} s, shorter than its duration {d:.6f} s"
    return None


def work_per_engine(results: Sequence[tuple[int, float, int]]) -> list[float]:
    """Wall-clock seconds of task work each engine did, largest first."""
    totals: dict[int, float] = {}
    for _index, seconds, pid in results:
        totals[pid] = totals.get(pid, 0.0) + seconds
    return sorted(totals.values(), reverse=True)
