"""The public API of ipcluster-kit: what the command line does, as functions.

The CLI (``ipcluster-kit ...``) parses its options, calls these functions and renders what they
return; the example notebooks call them directly. Every function checks its arguments first, with
the same checks (and the same one-line ``BadInput`` messages) as the command line, and nothing is
written or started when a value is bad.

- Profiles: :func:`init_profile`, :func:`read_profile`.
- Clusters: :func:`up`, :func:`preview_up`, :func:`status`, :func:`attach`, :func:`down`, :func:`doctor`,
  :func:`bootstrap`, :func:`temporary_cluster`.
- Benchmarks: :func:`bench` (every backend on sum/primes/overhead), :func:`shootout` (every
  scheme and hwm, with a recommendation), :func:`sweep` (one workload across chunk sizes).

Heavy modules (ipyparallel, matplotlib, ...) are imported inside the functions, so importing this
module is cheap.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ContextManager, Sequence

from ipcluster_kit.profile.spec import DEFAULT_SCHEME
from ipcluster_kit.validate import check_count, check_seconds

if TYPE_CHECKING:
    from ipcluster_kit.cluster.running import RunningCluster
    from ipcluster_kit.profile.spec import ProfileSpec
    from ipcluster_kit.profile.store import WritePlan

PathLike = str | os.PathLike
Progress = Callable[[str], None]
# progress(description, done, total) of a benchmark; total 0 while the number of steps is unknown
BenchProgress = Callable[[str, int, int], None]

DEFAULT_UP_TIMEOUT = 60.0
DEFAULT_DOWN_TIMEOUT = 10.0


# --- profiles -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProfileResult:
    """What :func:`init_profile` made (or, with ``dry_run``, would make)."""

    spec: "ProfileSpec"
    plan: "WritePlan"  # profile_dir, files (name -> text), exists, diff()
    written: bool
    backup_dir: Path | None = None  # the previous files, when ``force`` replaced a profile
    batch_script: str | None = None  # the engines' job script, for batch launchers
    note: str | None = None  # where an automatic scheme came from
    warnings: list[str] = field(default_factory=list)  # one line each: exposure, the pure scheme

    @property
    def profile_dir(self) -> Path:
        return self.plan.profile_dir


def init_profile(
    name: str,
    *,
    ipython_dir: PathLike | None = None,
    scheme: str | None = None,
    hwm: int | None = None,
    from_bench: PathLike | None = None,
    bench_workload: str | None = None,
    force: bool = False,
    dry_run: bool = False,
    **settings: Any,
) -> ProfileResult:
    """Make the profile ``name``: a normal IPython profile that ``ipcontroller``, ``ipcluster`` and
    ``ipp.Cluster`` use as it is, plus the kit's record.

    ``settings`` are the options of ``ipcluster-kit init`` (the keywords of
    :func:`ipcluster_kit.profile.spec.build_spec`: ``preset``, ``ip``, ``location``, ``ports``,
    ``launcher``, ``engines``, ``hosts``, ``encrypt``, ``heartbeat_ms``, ...). ``scheme="auto"`` with
    ``from_bench`` (a ``bench schemes --json`` file) takes the recommended scheme and hwm.
    Everything is validated first (BadInput); then every file is written or none (an existing
    profile needs ``force``, and is backed up). ``dry_run`` writes nothing.
    """
    from ipcluster_kit.profile.render import batch_script_preview
    from ipcluster_kit.profile.spec import build_spec
    from ipcluster_kit.profile.store import ensure_ipython_dir_writable, plan_write, write_profile

    note = None
    if scheme == "auto" or from_bench is not None or bench_workload is not None:
        from ipcluster_kit.bench.shootout.recommend import resolve_auto_scheme

        scheme, hwm, note = resolve_auto_scheme(scheme, hwm, from_bench, bench_workload)
    spec = build_spec(name, scheme=scheme, hwm=hwm, **settings)
    plan = plan_write(spec, ipython_dir)
    warnings = [w for w in (spec.exposure_warning(), spec.scheme_warning()) if w]
    batch_script = batch_script_preview(spec, plan.profile_dir)
    if dry_run:
        return ProfileResult(spec, plan, False, batch_script=batch_script, note=note, warnings=warnings)
    ensure_ipython_dir_writable(ipython_dir)
    backup = write_profile(plan, force=force)
    return ProfileResult(spec, plan, True, backup, batch_script, note, warnings)


def read_profile(name: str, *, ipython_dir: PathLike | None = None) -> tuple["ProfileSpec", Path]:
    """The settings of an existing profile and its directory; BadInput naming it when there is none."""
    from ipcluster_kit.profile.store import read_spec

    return read_spec(name, ipython_dir)


# --- clusters (delegating to ipcluster_kit.cluster) -------------------------------------------------


def attach(name: str, *, ipython_dir: PathLike | None = None) -> "RunningCluster":
    """The cluster ``up`` started for the profile (to ``connect()`` to); KitError when it is not up."""
    from ipcluster_kit.cluster.running import attach as attach_cluster

    return attach_cluster(name, ipython_dir)


def up(
    name: str,
    *,
    ipython_dir: PathLike | None = None,
    engines: int | None = None,
    timeout: float = DEFAULT_UP_TIMEOUT,
    min_engines: int | None = None,
    ssh_config: Sequence[str] | None = None,
    accept_new_host_keys: bool = False,
    progress: Progress | None = None,
) -> tuple["RunningCluster", bool]:
    """Start the profile's controller and engines (local, SSH hosts, an MPI world, a Slurm job); return
    once every engine has registered.

    Returns ``(cluster, started)``: ``started`` is False when it was up already. ``cluster.connect()``
    gives an ``ipyparallel.Client``; ``cluster.timeline`` says where the time went. On failure (or
    Ctrl-C) everything started is stopped and KitError says why. With ``min_engines``, at least that
    many registered engines is a success (``cluster.engines`` of them; ``cluster.warnings`` says
    what is missing), once others failed or at the deadline.
    """
    from ipcluster_kit.cluster.bringup import up as bring_up

    return bring_up(name, ipython_dir, engines=engines, timeout=timeout, min_engines=min_engines,
                    ssh_config=list(ssh_config) if ssh_config else None, accept_new_host_keys=accept_new_host_keys,
                    progress=progress or (lambda message: None))  # fmt: skip


def preview_up(
    name: str,
    *,
    ipython_dir: PathLike | None = None,
    engines: int | None = None,
    ssh_config: Sequence[str] | None = None,
    accept_new_host_keys: bool = False,
) -> dict:
    """What :func:`up` would run (``up --dry-run``): the controller's command and each engine set's
    exact command line(s) or job script. Starts nothing."""
    from ipcluster_kit.cluster.bringup import preview

    return preview(name, ipython_dir, engines=engines, ssh_config=ssh_config, accept_new_host_keys=accept_new_host_keys)


def status(name: str, *, ipython_dir: PathLike | None = None) -> dict:
    """What runs for the profile: controller, engines (by PID or rank, per host), engine sets, scheme."""
    from ipcluster_kit.cluster.running import status as cluster_status

    return cluster_status(name, ipython_dir)


def down(
    name: str, *, ipython_dir: PathLike | None = None, timeout: float = DEFAULT_DOWN_TIMEOUT, force: bool = False
) -> dict:
    """Stop everything of the profile's cluster (by PID, process group, and profile directory); returns
    what was stopped. ``force`` also works without a readable state file."""
    from ipcluster_kit.cluster.shutdown import down as shut_down

    return shut_down(name, ipython_dir, timeout=timeout, force=force)


def doctor(
    name: str,
    *,
    ipython_dir: PathLike | None = None,
    hosts: Sequence[str] | None = None,
    ssh_config: Sequence[str] | None = None,
    accept_new_host_keys: bool = False,
    remote_python: str | None = None,
    connect_timeout: float | None = None,
    max_clock_skew: float = 1.0,
) -> list:
    """Checks (``ipcluster_kit.checks.Check``) of what stands between the engines and the controller:
    SSH hosts (the profile's or ``hosts``), or the batch system."""
    from ipcluster_kit.cluster.doctor import doctor as run_doctor

    return run_doctor(name, ipython_dir, hosts=hosts, ssh_config=ssh_config, accept_new_host_keys=accept_new_host_keys,
                      remote_python=remote_python, connect_timeout=connect_timeout, max_clock_skew=max_clock_skew)  # fmt: skip


def bootstrap(
    name: str,
    *,
    ipython_dir: PathLike | None = None,
    hosts: Sequence[str] | None = None,
    ssh_config: Sequence[str] | None = None,
    accept_new_host_keys: bool = False,
    remote_python: str | None = None,
    connect_timeout: float | None = None,
    timeout: float = DEFAULT_UP_TIMEOUT,
    progress: Progress | None = None,
) -> tuple[Any, int]:
    """Add engines on SSH hosts to the running cluster; returns their record and the cluster's engine
    count once they registered. On failure the cluster is left as it was."""
    from ipcluster_kit.cluster.extend import add_engines

    return add_engines(name, ipython_dir, hosts=hosts, ssh_config=ssh_config, accept_new_host_keys=accept_new_host_keys,
                       remote_python=remote_python, connect_timeout=connect_timeout, timeout=timeout,
                       progress=progress or (lambda message: None))  # fmt: skip


def temporary_cluster(
    engines: int | None = None,
    scheme: str = DEFAULT_SCHEME,
    hwm: int | None = None,
    *,
    timeout: float = DEFAULT_UP_TIMEOUT,
    heartbeat_ms: int | None = None,
    progress: Progress | None = None,
) -> ContextManager["RunningCluster"]:
    """A throwaway local cluster for a ``with`` block: brought up, then stopped and deleted."""
    from ipcluster_kit.cluster.temporary import temporary_cluster as temporary

    if engines is not None:
        check_count("--engines", engines, 1)
    check_seconds("--timeout", timeout)
    return temporary(engines, scheme, hwm, timeout=timeout, heartbeat_ms=heartbeat_ms,
                     progress=progress or (lambda message: None))  # fmt: skip


# --- benchmarks -----------------------------------------------------------------------------------


def _measured(plan: Callable[[], Any], run: Callable[[Any], dict], png: Callable[[dict], bytes],
              json_path: PathLike | None, plot_path: PathLike | None) -> dict:  # fmt: skip
    """Every benchmark's order: validate (``plan()``), check the output paths, run, write the outputs."""
    from ipcluster_kit.bench import outputs

    planned = plan()
    outputs.check_outputs(json_path, plot_path)
    document = run(planned)
    outputs.write_outputs(document, json_path, plot_path, png)
    return document


def _text(path: PathLike | None) -> str | None:
    return str(path) if path else None


def bench(
    workloads: Sequence[str] = ("all",),
    *,
    backends: Sequence[str] | None = None,
    repeat: int = 5,
    warmup: int = 1,
    quick: bool = False,
    profile: str | None = None,
    ipython_dir: PathLike | None = None,
    engines: int | None = None,
    scaling: bool = False,
    tasks: int | None = None,
    sum_n: int | None = None,
    timeout: float = 600.0,
    cluster_timeout: float = 120.0,
    cluster: Any = None,
    json_path: PathLike | None = None,
    plot_path: PathLike | None = None,
    command: list[str] | None = None,
    progress: BenchProgress | None = None,
) -> dict:
    """Run workloads (sum, primes, overhead) on every backend, verified against serial, timed side by side.

    Runs on ``cluster`` (a running cluster, e.g. from :func:`up`), on ``profile``'s cluster, or on a
    temporary local one with ``engines`` engines. Returns the result document
    (``docs/bench-json.md``); ``json_path``/``plot_path`` (checked before the run) also get it
    written, and its plot.
    """
    from ipcluster_kit.bench import report
    from ipcluster_kit.bench.runner import BenchConfig, run_bench, validate

    config = BenchConfig(
        workloads=list(workloads) or ["all"], backends=list(backends) if backends else None, repeat=repeat,
        warmup=warmup, quick=quick, profile=profile, ipython_dir=_text(ipython_dir), engines=engines, scaling=scaling,
        tasks=tasks, sum_n=sum_n, timeout=timeout, cluster_timeout=cluster_timeout, command=command,
    )  # fmt: skip
    return _measured(lambda: validate(config, cluster), lambda _: run_bench(config, progress=progress, cluster=cluster),
                     report.png, json_path, plot_path)  # fmt: skip


def shootout(
    workloads: Sequence[str] = ("all",),
    *,
    schemes: Sequence[str] | None = None,
    hwms: Sequence[int] | None = None,
    engines: int | None = None,
    repeat: int | None = None,
    warmup: int | None = None,
    quick: bool = False,
    tasks: int | None = None,
    sum_n: int | None = None,
    hetero_tasks: int | None = None,
    hetero_mean: float | None = None,
    seed: int = 0,
    task_kind: str = "cpu",
    function: str | None = None,
    args_file: PathLike | None = None,
    timeout: float = 600.0,
    cluster_timeout: float = 120.0,
    json_path: PathLike | None = None,
    plot_path: PathLike | None = None,
    command: list[str] | None = None,
    progress: Progress | None = None,
) -> dict:
    """The scheme shoot-out: every scheme and hwm on the same work, each on a cluster of its own.

    Returns the result document with a recommendation per workload (``document["recommended"]``
    for a profile: ``init_profile(NAME, scheme="auto", from_bench=FILE)``). ``json_path`` and
    ``plot_path`` are checked before the first cluster starts and written at the end.
    """
    from ipcluster_kit.bench.shootout import report
    from ipcluster_kit.bench.shootout.plan import ShootoutConfig, validate
    from ipcluster_kit.bench.shootout.run import run_shootout

    config = ShootoutConfig(
        workloads=list(workloads) or ["all"], schemes=list(schemes) if schemes else None,
        hwms=list(hwms) if hwms else None, engines=engines, repeat=repeat, warmup=warmup, quick=quick, tasks=tasks,
        sum_n=sum_n, hetero_tasks=hetero_tasks, hetero_mean=hetero_mean, seed=seed, task_kind=task_kind,
        function=function, args_file=_text(args_file), timeout=timeout, cluster_timeout=cluster_timeout, command=command,
    )  # fmt: skip
    return _measured(lambda: validate(config), lambda plan: run_shootout(config, progress=progress, plan=plan),
                     report.png, json_path, plot_path)  # fmt: skip


def sweep(
    workload: str = "primes",
    *,
    chunks: Sequence[int] | None = None,
    points: int = 10,
    backends: Sequence[str] = (),
    repeat: int = 5,
    warmup: int = 1,
    quick: bool = False,
    profile: str | None = None,
    ipython_dir: PathLike | None = None,
    engines: int | None = None,
    tasks: int | None = None,
    sum_n: int | None = None,
    hetero_mean: float | None = None,
    seed: int = 0,
    task_kind: str = "cpu",
    function: str | None = None,
    args_file: PathLike | None = None,
    timeout: float = 600.0,
    cluster_timeout: float = 120.0,
    cluster: Any = None,
    json_path: PathLike | None = None,
    plot_path: PathLike | None = None,
    command: list[str] | None = None,
    progress: BenchProgress | None = None,
) -> dict:
    """One workload (sum, primes, hetero, or ``function`` over ``args_file``) through
    ``load_balanced_view().map`` at chunk sizes from 1 to one chunk per engine, against the chunk
    model's prediction, the automatic choice marked (``docs/bench-sweep-json.md``).

    ``chunks`` fixes the sizes (default: ``points`` of them on a log scale); ``backends`` adds
    others to the same rounds as references. Runs on ``cluster``, ``profile``'s, or a temporary one.
    """
    from ipcluster_kit.bench import sweep_report
    from ipcluster_kit.bench.sweep import SweepConfig, run_sweep, validate

    config = SweepConfig(
        workload=workload, chunks=list(chunks) if chunks else None, points=points, backends=list(backends or ()),
        repeat=repeat, warmup=warmup, quick=quick, profile=profile, ipython_dir=_text(ipython_dir), engines=engines,
        tasks=tasks, sum_n=sum_n, hetero_mean=hetero_mean, seed=seed, task_kind=task_kind, function=function,
        args_file=_text(args_file), timeout=timeout, cluster_timeout=cluster_timeout, command=command,
    )  # fmt: skip
    return _measured(lambda: validate(config), lambda plan: run_sweep(plan, progress=progress, cluster=cluster),
                     sweep_report.png, json_path, plot_path)  # fmt: skip
