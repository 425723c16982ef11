"""Running the shoot-out: one temporary cluster per combination, measured with the runner's round.

Each combination's cluster is asked which scheme it runs, gets a client that can farm tasks, has
its hwm watched, and then runs every workload through :func:`ipcluster_kit.bench.measure.measure_round`
with :class:`SchemeBackend` (``ipp-lbv-chunk1`` plus what the shoot-out records). A combination
that fails is recorded with the reason and the shoot-out goes on; the cluster is stopped in the
background while the next one comes up, and is gone before any timing.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import threading
import time
from typing import Any, Callable, Sequence

from ipcluster_kit.bench import hetero, results
from ipcluster_kit.bench.backends import BenchContext, IppLbvChunk1
from ipcluster_kit.bench.failures import describe, remote_error_summary
from ipcluster_kit.bench.measure import RunRecord, first_mismatch, measure_round, serial_reference
from ipcluster_kit.bench.shootout import controller
from ipcluster_kit.bench.shootout.plan import Combination, Plan, ShootoutConfig, validate
from ipcluster_kit.bench.shootout.recommend import KIND, TITLES, USER, overall, recommendations
from ipcluster_kit.bench.shootout.userfunc import UserFunction
from ipcluster_kit.bench.workloads import Workload, result_list
from ipcluster_kit.errors import KitError

# The shoot-out's clusters ping their engines every 100 ms instead of the kit's 500: registration
# completes on a heartbeat, so each of the 11 bring-ups is ~0.6 s shorter (measured: 2.25 s against
# 2.9 s for 2 engines). Ten pings a second cost the controller next to nothing, and every scheme has them.
SHOOTOUT_HEARTBEAT_MS = 100
REFERENCE_WORKLOADS = ("overhead", "sum", "primes")  # checked against a serial run
Progress = Callable[[str], None]


def _no_progress(message: str) -> None:
    pass


def digest(values: Sequence[Any]) -> str:
    return hashlib.sha256(repr(list(values)).encode("utf-8", "replace")).hexdigest()[:16]


class SchemeBackend(IppLbvChunk1):
    """``ipp-lbv-chunk1`` on a shoot-out cluster: the engines also import the heterogeneous tasks and
    the user's module, and each run records the work per engine (hetero) or a digest of the results
    (your function), to tell a non-deterministic function from a scheme that changes results."""

    def __init__(self, user: UserFunction | None = None):
        super().__init__()
        self.user = user
        self._results: tuple[str, list] | None = None

    def setup(self, ctx: BenchContext) -> None:
        super().setup(ctx)
        ctx.client[:].execute(f"import {hetero.__name__}", block=False).get(timeout=min(ctx.timeout, 60.0))

    def prepare(self, workload: Workload, task_seconds: Sequence[float] | None) -> dict:
        if workload.name == USER and self.user is not None:
            try:
                self.ctx.client[:].execute(self.user.import_code(), block=False).get(timeout=min(self.ctx.timeout, 60.0))
            except Exception as exc:
                module = self.user.func.__module__
                raise KitError(f"the engines cannot import {module!r}: {remote_error_summary(exc)[0]}") from None
        return super().prepare(workload, task_seconds)

    def run(self, workload: Workload) -> list:
        self._results = None
        got = super().run(workload)
        self._results = (workload.name, got)
        return got

    def details(self) -> dict | None:
        facts = dict(super().details() or {})
        name, got = self._results or ("", [])
        if name == "hetero":
            facts["engine_work_seconds"] = [round(x, 6) for x in hetero.work_per_engine(got)]
        elif name == USER:
            facts["results_digest"] = digest(got)
        return facts or None


def _check(refs: dict[str, Any]) -> Callable[[Workload, Any], str | None]:
    def check(workload: Workload, got: Any) -> str | None:
        if workload.name == "hetero":
            return hetero.check_results(got, hetero.durations_of(workload))
        if workload.name == USER:  # no serial reference: your function may be costly or random
            return result_list(got, workload.size)[1]
        return first_mismatch(got, refs[workload.name].results)

    return check


def _run_entry(record: RunRecord, plan: Plan, combo: Combination) -> dict:
    """A ``bench`` run entry plus the combination, the traceback and, for hetero, the bound."""
    workload = next(w for w in plan.workloads if w.name == record.workload)
    entry = results.run_entry(record, None, workload.size)
    entry.update({"scheme": combo.scheme, "hwm": combo.hwm, "combination": combo.label,
                  "traceback": record.traceback, "makespan_ratio": None, "lower_bound_seconds": None})  # fmt: skip
    facts = [d or {} for d in record.details]
    if workload.name == "hetero":
        bound = hetero.lower_bound(hetero.durations_of(workload), plan.engines)
        work = [d.get("engine_work_seconds", []) for d in facts]
        nominal = sum(hetero.durations_of(workload))
        entry["lower_bound_seconds"] = bound
        entry["params"]["engine_work_seconds"] = work
        # wall-clock seconds the tasks ran, over the seconds they were meant to: > 1 when the cores were shared
        entry["params"]["task_stretch"] = [round(sum(w) / nominal, 4) for w in work] if nominal > 0 else []
        if entry["status"] == "ok" and bound > 0:
            from ipcluster_kit.bench import stats

            entry["makespan_ratio"] = stats.summarize([s / bound for s in record.seconds]).to_dict()
    if workload.name == USER and facts:
        entry["params"]["results_digests"] = [d["results_digest"] for d in facts if "results_digest" in d]
    return entry


class BackgroundStop:
    """Stops a temporary cluster in a thread, so that the next one comes up meanwhile."""

    def __init__(self, cm: Any, label: str):
        self.label = label
        self.error: str | None = None
        self.thread = threading.Thread(target=self._stop, args=(cm,), name=f"stop {label}", daemon=False)
        self.thread.start()

    def _stop(self, cm: Any) -> None:
        try:
            cm.__exit__(None, None, None)
        except BaseException as exc:  # recorded and reported; the thread must not die silently
            self.error = f"stopping the cluster of {self.label} failed: {describe(exc)[0]}"

    def join(self, timeout: float = 60.0) -> str | None:
        self.thread.join(timeout)
        if self.thread.is_alive():
            return f"stopping the cluster of {self.label} took more than {timeout:g} s"
        return self.error


def _measure(cluster: Any, combo: Combination, plan: Plan, refs: dict[str, Any], entry: dict, progress: Progress) -> None:
    """Read back the scheme, connect, watch the hwm and measure; the findings go into ``entry``."""
    from ipcluster_kit.bench.noise import LoadProbe

    ctl = controller.read_back_scheme(cluster)
    ctl["confirmed"] = ctl["task_scheme"] == combo.scheme and ctl["log_scheme"] == combo.scheme
    entry["controller"] = ctl
    progress(f"  {combo.label}: up in {cluster.bringup_seconds:.1f} s; the controller runs"
             f" {ctl['task_scheme']} (connection file) / {ctl['log_scheme']} (log)")  # fmt: skip
    if not ctl["confirmed"]:
        entry["error"] = f"the controller runs {ctl['task_scheme']!r} (connection file) / {ctl['log_scheme']!r} (log), not {combo.scheme!r}"
        return
    try:
        client = controller.connect_for_tasks(cluster, timeout=min(plan.config.cluster_timeout, 60.0))
    except KitError as exc:
        entry["error"] = f"cannot farm tasks: {describe(exc)[0]}"
        return
    try:
        entry["engine_ids"] = sorted(client.ids)
        if combo.hwm is not None:
            seconds = controller.QUICK_PROBE_TASK_SECONDS if plan.config.quick else controller.PROBE_TASK_SECONDS
            entry["hwm_probe"] = controller.probe_hwm(client, combo.hwm, plan.engines, timeout=60.0, task_seconds=seconds)
        ctx = BenchContext(workers=plan.engines, timeout=plan.config.timeout, cluster=cluster, client=client)
        records = measure_round(ctx, [SchemeBackend(plan.user)], plan.workloads, warmup=plan.warmup, repeat=plan.repeat,
                                check=_check(refs), task_seconds={n: r.task_seconds for n, r in refs.items()},
                                load_probe=LoadProbe())  # fmt: skip
    finally:
        with contextlib.suppress(Exception):
            client.close()
    entry["runs"] = [_run_entry(r, plan, combo) for r in records]
    entry["status"] = "ok"


def run_combination(combo: Combination, plan: Plan, refs: dict[str, Any], *, previous: BackgroundStop | None = None,
                    progress: Progress = _no_progress) -> tuple[dict, BackgroundStop | None, list[str]]:  # fmt: skip
    """Bring up a cluster with ``combo``, confirm its scheme, measure, and start stopping it.

    Returns the combination's entry, the background stop (join it before the next timing), and
    notes (problems stopping the previous cluster). Failures are recorded in the entry, not raised;
    KeyboardInterrupt stops the cluster at once and propagates.
    """
    import warnings

    from ipcluster_kit.cluster.temporary import temporary_cluster

    started = time.monotonic()
    notes: list[str] = []
    entry: dict[str, Any] = {
        "label": combo.label, "scheme": combo.scheme, "hwm": combo.hwm, "status": "failed", "error": None,
        "controller": None, "hwm_probe": None, "bringup_seconds": None, "registration_gap_seen": False,
        "engine_ids": [], "seconds": None, "runs": [],
    }  # fmt: skip
    cm = temporary_cluster(plan.engines, combo.scheme, combo.hwm, timeout=plan.config.cluster_timeout, heartbeat_ms=SHOOTOUT_HEARTBEAT_MS)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cluster = cm.__enter__()
    except Exception as exc:  # up() has stopped whatever it started; the next combination goes on
        entry["error"] = f"cluster did not come up: {describe(exc)[0]}"
        if previous is not None and (note := previous.join()):
            notes.append(note)
        entry["seconds"] = time.monotonic() - started
        return entry, None, notes
    entry["bringup_seconds"] = cluster.bringup_seconds
    entry["registration_gap_seen"] = any(controller.GAP_WARNING in str(w.message) for w in caught)
    try:
        if previous is not None and (note := previous.join()):  # the previous cluster is gone before any timing
            notes.append(note)
        _measure(cluster, combo, plan, refs, entry, progress)
    except KeyboardInterrupt:
        cm.__exit__(*sys.exc_info())
        raise
    except Exception as exc:
        entry["error"] = f"measurement failed: {describe(exc)[0]}"
    entry["seconds"] = time.monotonic() - started
    return entry, BackgroundStop(cm, combo.label), notes


def ipyparallel_defaults() -> dict:
    """The installed ipyparallel's TaskScheduler defaults (scheme and hwm)."""
    import importlib.metadata as md

    from ipyparallel.controller.task_scheduler import TaskScheduler

    return {"scheme": TaskScheduler.scheme_name.default_value, "hwm": int(TaskScheduler.hwm.default_value),
            "source": f"ipyparallel {md.version('ipyparallel')} TaskScheduler defaults"}  # fmt: skip


def _workload_entries(plan: Plan, refs: dict[str, Any]) -> list[dict]:
    out = []
    for w in plan.workloads:
        entry: dict[str, Any] = {"name": w.name, "title": TITLES[w.name], "description": w.description, "tasks": w.size,
                                 "serial_reference": None, "durations": None, "lower_bound_seconds": None}  # fmt: skip
        ref = refs.get(w.name)
        if ref is not None:
            entry["serial_reference"] = results.serial_reference_entry(ref.task_seconds)
        if w.name == "hetero":
            d = hetero.durations_of(w)
            entry["durations"] = {"kind": w.args[0][2], "mean_requested": plan.sizes.hetero_mean, "seed": plan.config.seed,
                                  "sum": sum(d), "mean": sum(d) / len(d), "max": max(d), "min": min(d)}  # fmt: skip
            entry["lower_bound_seconds"] = hetero.lower_bound(d, plan.engines)
        if w.name == USER and plan.user is not None:
            entry["function"] = plan.user.spec
            entry["args_file"] = plan.user.args_file
        out.append(entry)
    return out


def _config_entry(plan: Plan) -> dict:
    config, sizes = plan.config, plan.sizes
    return {
        "workloads": [w.name for w in plan.workloads],
        "schemes": list(dict.fromkeys(c.scheme for c in plan.combos)),
        "hwms": sorted({c.hwm for c in plan.combos if c.hwm is not None}, reverse=True),
        "combinations": [c.label for c in plan.combos],
        "engines": plan.engines, "repeat": plan.repeat, "warmup": plan.warmup, "quick": bool(config.quick),
        "sizes": {"overhead_tasks": sizes.overhead_tasks, "hetero_tasks": sizes.hetero_tasks,
                  "hetero_mean_seconds": sizes.hetero_mean, "sum_n": sizes.sum_n,
                  "sum_tasks": sizes.sum_tasks, "primes_tasks": sizes.primes_tasks},
        "task_kind": config.task_kind, "seed": config.seed,
        "function": plan.user.spec if plan.user else None, "args_file": plan.user.args_file if plan.user else None,
        "chunksize": 1, "timeout_seconds": config.timeout,
    }  # fmt: skip


STATISTICS = {
    "makespan_ratio": "hetero: each timed makespan / lower bound max(sum(d) / engines, max(d)); summarised like the times",
    "tie": "the best combination (lowest median time) and the default are a tie when their intervals for the median overlap",
    "difference": "time: 1 - best median / default median; throughput (overhead): default median / best median - 1",
}


def _run_all(plan: Plan, refs: dict[str, Any], progress: Progress) -> tuple[list[dict], list[str]]:
    entries: list[dict] = []
    notes: list[str] = []
    pending: BackgroundStop | None = None
    try:
        for i, combo in enumerate(plan.combos, 1):
            progress(f"[{i}/{len(plan.combos)}] {combo.label}: starting a {plan.engines}-engine cluster")
            entry, pending, more = run_combination(combo, plan, refs, previous=pending, progress=progress)
            notes.extend(more)
            entries.append(entry)
            if entry["error"]:
                progress(f"  {combo.label}: failed: {entry['error']}")
            for line in (f"{r['workload']}: {r['error']}" for r in entry["runs"] if r["status"] != "ok"):
                progress(f"  {combo.label}: {line}")
            progress(f"  {combo.label}: done in {entry['seconds']:.1f} s")
    finally:
        if pending is not None and (note := pending.join()):
            notes.append(note)
    return entries, notes


def run_shootout(config: ShootoutConfig, *, progress: Progress | None = None, plan: Plan | None = None) -> dict:
    """Run every combination; return the result document (``bench-schemes`` v1).

    ``plan`` is ``validate(config)`` when the caller has it already (the user's module is then not
    loaded twice)."""
    progress = progress or _no_progress
    plan = plan if plan is not None else validate(config)
    defaults = ipyparallel_defaults()
    load_before = list(os.getloadavg())
    created = time.time()
    t0 = time.monotonic()
    refs: dict[str, Any] = {}
    for w in plan.workloads:
        if w.name in REFERENCE_WORKLOADS:
            progress(f"{w.name}: serial reference run")
            refs[w.name] = serial_reference(w)
    entries, notes = _run_all(plan, refs, progress)
    env = results.environment(None, "none", plan.engines, load_before, list(os.getloadavg()))
    env["cluster"] = {"source": "temporary", "profile": None, "engines": plan.engines, "scheme": None, "hwm": None,
                      "hosts": ["localhost"], "per_combination": True, "heartbeat_ms": SHOOTOUT_HEARTBEAT_MS}  # fmt: skip
    document = {
        **results.header(KIND, created, config.command),
        "config": _config_entry(plan),
        "statistics": {**results.statistics_block(), **STATISTICS},
        "defaults": defaults,
        "environment": env,
        "workloads": _workload_entries(plan, refs),
        "combinations": entries,
        "notes": notes,
        "recommendations": [],
        "recommended": None,
        "total_seconds": None,
    }
    document["recommendations"] = recommendations(document)
    document["recommended"] = overall(document)
    document["total_seconds"] = time.monotonic() - t0
    return document
