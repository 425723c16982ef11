"""How busy the machine was with *other* work while a run was timed.

On a shared machine a parallel run loses more to other processes than the serial loop does (it
needs every core), so each timed run records ``foreign_cpus``: the CPUs' busy time during the run
(from ``/proc/stat``) minus the CPU time of this process and its descendants (the pools, the
queue workers, and the engines and controller of a cluster this process started), divided by the
wall time. 0 means nothing else ran; 1 means other work kept one CPU busy throughout.

Linux only (``/proc``, and ``psutil``, which ipyparallel requires); elsewhere, and for runs shorter
than a quarter of a second (the kernel counts in 10 ms ticks), the figure is ``None``. With
``--profile`` the cluster's engines were not started by this process: their work counts as
foreign, so the figure is only recorded for temporary clusters and pools.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass


def _busy_jiffies() -> int | None:
    try:
        with open("/proc/stat") as fh:
            fields = fh.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    values = [int(x) for x in fields[1:9]]  # user nice system idle iowait irq softirq steal
    return sum(values) - values[3] - values[4]


def _tree_cpu_seconds() -> float | None:
    try:
        import psutil
    except ImportError:
        return None
    me = psutil.Process()
    total = 0.0
    try:
        t = me.cpu_times()
        total += t.user + t.system + t.children_user + t.children_system
        procs = me.children(recursive=True)
    except psutil.Error:
        return None
    for proc in procs:
        try:
            t = proc.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass  # exited in between: its time moves to its parent's children_* (ours, once reaped)
    return total


MIN_WALL = 0.25  # shorter runs: the 10 ms clock ticks make the figure meaningless


@dataclass
class Snapshot:
    wall: float
    busy: int | None
    own: float | None


class LoadProbe:
    """``probe.start()`` before a run and ``probe.foreign_cpus(snapshot)`` after it."""

    def __init__(self) -> None:
        self.hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def start(self) -> Snapshot:
        return Snapshot(time.perf_counter(), _busy_jiffies(), _tree_cpu_seconds())

    def foreign_cpus(self, before: Snapshot) -> float | None:
        """Average CPUs other work kept busy since ``before``; None when unknown or too short to say."""
        after = self.start()
        wall = after.wall - before.wall
        if None in (before.busy, after.busy, before.own, after.own) or wall < MIN_WALL:
            return None
        busy = (after.busy - before.busy) / self.hz
        own = after.own - before.own
        # jiffies are coarse (10 ms): clamp the rounding noise of short runs at 0
        return max(0.0, (busy - own) / wall)
