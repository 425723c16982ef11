"""The measuring round every benchmark shares: the same work on several backends, verified, timed.

``bench`` (:mod:`ipcluster_kit.bench.runner`) runs it once per worker count with every backend;
the scheme shoot-out (:mod:`ipcluster_kit.bench.shootout.run`) once per cluster with one backend.
Each run's results are checked before its time is kept; a failure fails that backend on that
workload, and none of its times count.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ipcluster_kit.bench.backends import Backend, BenchContext, MapTimeout
from ipcluster_kit.bench.failures import describe
from ipcluster_kit.bench.workloads import Workload, result_list

# progress(description, done, total)
ProgressFn = Callable[[str, int, int], None]


def _no_progress(description: str, done: int, total: int) -> None:
    pass


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


def serial_reference(workload: Workload, passes: int = 1) -> Reference:
    """The workload in this process, each task timed: the reference results (of the first pass) and
    durations. With ``passes`` > 1 the loop runs again and each task keeps its shortest time: other
    work on a shared machine only ever adds time (one pass of the sum workload measured 15% above
    the serial loop's median in the rounds after it), and the chunk model predicts from these times."""
    clock = time.perf_counter
    results, durations = [], []
    func = workload.func
    for arg in workload.args:
        start = clock()
        results.append(func(arg))
        durations.append(clock() - start)
    for _ in range(passes - 1):
        for i, arg in enumerate(workload.args):
            start = clock()
            func(arg)
            durations[i] = min(durations[i], clock() - start)
    return Reference(results, durations)


def first_mismatch(got: Any, expected: list) -> str | None:
    """None when ``got`` equals the serial results; otherwise what differs, in one line."""
    got, problem = result_list(got, len(expected))
    if problem is not None:
        return problem
    for i, (g, e) in enumerate(zip(got, expected)):
        if g != e:
            return f"result {i} is {g!r} where serial gives {e!r}"
    return None


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


def _prepare(ready: list[Backend], workload: Workload, by_name: dict[str, RunRecord],
             task_seconds: Sequence[float] | None) -> list[Backend]:  # fmt: skip
    """Tell each ready backend about ``workload``; the ones that took it (a failure fails that record)."""
    alive = []
    for backend in ready:
        record = by_name[backend.name]
        if not record.ok:
            continue
        try:
            record.params = backend.prepare(workload, task_seconds)
            alive.append(backend)
        except Exception as exc:
            _fail(record, "prepare failed", exc)
    return alive


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
            alive = _prepare(ready, workload, by_name, task_seconds.get(workload.name))
            for round_no in range(warmup + repeat):
                warm = round_no < warmup
                shift = round_no % len(alive) if alive else 0
                for backend in alive[shift:] + alive[:shift]:
                    record = by_name[backend.name]
                    label = f"{workload.name} / {backend.name} ({'warm-up' if warm else 'repeat'} {round_no + 1 - (0 if warm else warmup)})"
                    if record.ok:
                        steps.note(label)
                        if hasattr(ctx.cluster, "check"):
                            ctx.cluster.check()  # a lost controller or engine ends the whole round: no result stands
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
