"""The scheduler shoot-out: every task scheme and high-water mark on the same work, side by side.

For each combination of scheme (``lru``, ``leastload``, ``weighted``, ``plainrandom``, ``twobin``,
``pure``) and ``hwm`` (default 1 and 0; ``pure`` is the C scheduler, where ``hwm`` does not apply, so
it runs once), :func:`run_shootout`:

1. starts a temporary local cluster with that scheme (:func:`shootout_cluster`: the kit's ``up``/``down``
   on a throwaway profile, heartbeat 100 ms so that the eleven bring-ups are quicker);
2. reads back from the controller which scheduler really runs: the ``task_scheme`` the controller
   wrote into the client connection file, and the line its scheduler logged on start
   (``Task scheduler started [NAME]``, or ``using pure DEALER Task scheduler``); for a Python scheme
   it also probes the ``hwm`` by submitting a few sleeping tasks and asking the hub how many are
   outstanding per engine and how many are still unassigned;
3. connects a client that can farm tasks whatever order the engines registered in (the ``pure``
   trap: :func:`connect_for_tasks`);
4. runs the workloads through ``load_balanced_view().map(f, args, chunksize=1)`` (every task goes
   through the scheduler), ``warmup`` untimed rounds then ``repeat`` timed ones, the order of the
   workloads rotating from round to round, every result verified before its time counts;
5. stops the cluster (in the background, while the next one comes up; it is gone before any timing).

Workloads: ``overhead`` (no-op tasks: throughput), ``hetero`` (exponentially distributed durations,
:mod:`ipcluster_kit.bench.hetero`, reported against the lower bound), ``sum`` and ``primes`` (the
classic ones of :mod:`ipcluster_kit.bench.workloads`), and ``user``: a function of the user's given as
``module:function`` with an argument list (a JSON list, or a ``.py`` file defining ``ARGS``). A
combination that fails (a cluster that does not come up, a function that raises) is recorded with the
reason, the remote traceback's summary included, and the shoot-out goes on with the next one.

The result is a document of the ``bench`` family (``schema: ipcluster-kit/bench-schedulers``; each
run entry has exactly the fields of a ``bench`` run, see ``docs/bench-json.md``), with a
recommendation per workload: the best combination by median, compared with ipyparallel's default
(``leastload``, ``hwm=1``), and called a tie when their 95% intervals overlap.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import importlib
import json
import math
import os
import re
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ipcluster_kit.bench import hetero, stats
from ipcluster_kit.bench.workloads import Workload, make_workload
from ipcluster_kit.errors import BadInput, KitError
from ipcluster_kit.profile.spec import SCHEMES

SCHEMA_NAME = "ipcluster-kit/bench-schedulers"
SCHEMA_VERSION = 1

PURE = "pure"
PYTHON_SCHEMES = tuple(s for s in SCHEMES if s != PURE)
DEFAULT_SCHEMES = tuple(SCHEMES)
DEFAULT_HWMS = (1, 0)
# ipyparallel 9's TaskScheduler defaults; run_shootout reads the installed version's and records them.
IPP_DEFAULT_SCHEME = "leastload"
IPP_DEFAULT_HWM = 1

WORKLOAD_NAMES = ("overhead", "hetero", "sum", "primes")
USER = "user"
TITLES = {"overhead": "no-op throughput", "hetero": "heterogeneous tasks", "sum": "sum", "primes": "primes", USER: "your function"}
# Which workload's recommendation a profile gets (`init --scheduler auto`), first present wins.
RECOMMEND_ORDER = (USER, "hetero", "primes", "sum", "overhead")
BACKEND = "ipp-lbv-chunk1"

DEFAULT_REPEAT = 5
QUICK_REPEAT = 3
DEFAULT_WARMUP = 1
QUICK_WARMUP = 0  # the engines have imported the task modules and run the hwm probe already
DEFAULT_TIMEOUT = 600.0
DEFAULT_CLUSTER_TIMEOUT = 120.0
PROBE_TASK_SECONDS = 0.2
# The shoot-out's clusters ping their engines every 100 ms instead of the kit's 500: registration
# completes on a heartbeat, so each of the 11 bring-ups is ~0.6 s shorter (measured: 2.25 s against
# 2.9 s for 2 engines). Ten pings a second cost the controller next to nothing, and every scheme has them.
SHOOTOUT_HEARTBEAT_MS = 100
QUICK_PROBE_TASK_SECONDS = 0.1


@dataclass(frozen=True)
class Sizes:
    overhead_tasks: int
    hetero_tasks: int
    hetero_mean: float  # seconds
    sum_n: int
    sum_tasks: int
    primes_tasks: int


# The default shoot-out (11 clusters) takes about 4 minutes on 2 cores, --quick under one (bring-up is ~2.5 s of each
# cluster's ~5 s there): see benchmarks/bench_schedulers.py.
DEFAULT_SIZES = Sizes(overhead_tasks=200, hetero_tasks=80, hetero_mean=0.015, sum_n=1_500_000, sum_tasks=6, primes_tasks=200)
QUICK_SIZES = Sizes(overhead_tasks=20, hetero_tasks=10, hetero_mean=0.01, sum_n=300_000, sum_tasks=2, primes_tasks=20)


# --- combinations -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Combination:
    """One scheme with one high-water mark; ``hwm`` is None for ``pure``, where it does not apply."""

    scheme: str
    hwm: int | None

    @property
    def label(self) -> str:
        return "pure (hwm n/a)" if self.hwm is None else f"{self.scheme}, hwm={self.hwm}"

    @property
    def key(self) -> tuple[str, int | None]:
        return self.scheme, self.hwm


def combinations(schemes: Sequence[str] | None = None, hwms: Sequence[int] | None = None) -> list[Combination]:
    """Every scheme with every hwm, in the order given; ``pure`` once (hwm n/a). BadInput on bad values."""
    schemes = list(schemes) if schemes else list(DEFAULT_SCHEMES)
    hwms = list(hwms) if hwms is not None and len(hwms) else list(DEFAULT_HWMS)
    for scheme in schemes:
        if scheme not in SCHEMES:
            raise BadInput(f"unknown --scheme {scheme!r} (choose from {', '.join(SCHEMES)})")
    for hwm in hwms:
        if isinstance(hwm, bool) or not isinstance(hwm, int) or hwm < 0:
            raise BadInput(f"invalid --hwm {hwm!r}: it must be 0 (no limit) or a positive number of tasks per engine")
    out: list[Combination] = []
    for scheme in dict.fromkeys(schemes):
        for hwm in [None] if scheme == PURE else dict.fromkeys(hwms):
            out.append(Combination(scheme, hwm))
    return out


# --- the user's function ------------------------------------------------------------------------

_FUNCTION_SPEC = re.compile(r"^([A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*):([A-Za-z_][\w]*)$")


@dataclass
class UserFunction:
    spec: str  # module:function
    func: Callable[[Any], Any]
    args: list
    args_file: str
    module_dir: str | None  # put on the engines' sys.path so that they import the module too

    def workload(self) -> Workload:
        return Workload(USER, self.func, self.args, f"{self.spec} over {len(self.args)} argument(s) from {self.args_file}")


def parse_function_spec(text: str) -> tuple[str, str]:
    match = _FUNCTION_SPEC.match(text or "")
    if not match:
        raise BadInput(f"invalid --function {text!r}: expected module:function (e.g. mytasks:simulate)")
    return match.group(1), match.group(2)


def load_args(path: str | os.PathLike) -> list:
    """The argument list: a JSON file holding a list, or a Python file defining ``ARGS``.

    Each element is one task's single argument (``f(element)``); pass a list or tuple and unpack
    it in the function for several.
    """
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"invalid --args {str(path)!r}: no such file")
    if path.suffix == ".py":
        import runpy

        try:
            namespace = runpy.run_path(str(path), run_name="__ipck_args__")
        except Exception as exc:
            raise BadInput(f"invalid --args {str(path)!r}: running it raised {type(exc).__name__}: {exc}") from None
        if "ARGS" not in namespace:
            raise BadInput(f"invalid --args {str(path)!r}: the file defines no ARGS")
        args = namespace["ARGS"]
        if not isinstance(args, (list, tuple, range)):
            raise BadInput(f"invalid --args {str(path)!r}: ARGS is a {type(args).__name__}, not a list")
        args = list(args)
    else:
        try:
            args = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInput(f"invalid --args {str(path)!r}: cannot read it ({exc})") from None
        except ValueError as exc:
            raise BadInput(f"invalid --args {str(path)!r}: not valid JSON ({exc})") from None
        if not isinstance(args, list):
            raise BadInput(f"invalid --args {str(path)!r}: the JSON is a {type(args).__name__}, not a list")
    if not args:
        raise BadInput(f"invalid --args {str(path)!r}: the argument list is empty")
    return args


def load_user_function(spec: str, args_file: str | os.PathLike | None) -> UserFunction:
    """Import ``module:function`` here (the current directory is searched, as ``python -m`` does)."""
    module_name, func_name = parse_function_spec(spec)
    if args_file is None:
        raise BadInput(f"--function {spec} needs --args FILE (a JSON list, or a .py file defining ARGS)")
    args = load_args(args_file)
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise BadInput(f"invalid --function {spec!r}: cannot import {module_name!r} ({type(exc).__name__}: {exc})") from None
    func = getattr(module, func_name, None)
    if not callable(func):
        raise BadInput(f"invalid --function {spec!r}: module {module_name!r} has no function {func_name!r}")
    module_file = getattr(module, "__file__", None)
    root = None
    if module_file:
        root = Path(module_file).resolve().parent
        for _ in range(module_name.count(".")):  # a package module: the directory above the package
            root = root.parent
    return UserFunction(spec, func, args, str(args_file), str(root) if root else None)


# --- configuration ------------------------------------------------------------------------------


@dataclass
class ShootoutConfig:
    workloads: Sequence[str] = ("all",)
    schemes: Sequence[str] | None = None  # None: all six
    hwms: Sequence[int] | None = None  # None: 1 and 0
    engines: int | None = None  # None: the CPU count
    repeat: int | None = None  # None: 5, or 3 with quick
    warmup: int | None = None  # None: 1, or 0 with quick
    quick: bool = False
    tasks: int | None = None  # tasks of overhead, sum and primes (as `bench --tasks`)
    sum_n: int | None = None
    hetero_tasks: int | None = None
    hetero_mean: float | None = None  # seconds
    seed: int = 0
    task_kind: str = hetero.DEFAULT_KIND
    function: str | None = None
    args_file: str | None = None
    timeout: float = DEFAULT_TIMEOUT  # per map call
    cluster_timeout: float = DEFAULT_CLUSTER_TIMEOUT
    command: list[str] | None = None


@dataclass
class Plan:
    """The validated configuration: what runs, at which sizes."""

    config: ShootoutConfig
    combos: list[Combination]
    workloads: list[Workload]
    user: UserFunction | None
    engines: int
    repeat: int
    warmup: int
    sizes: Sizes


def expand_workloads(names: Sequence[str]) -> list[str]:
    out: list[str] = []
    for name in names or ("all",):
        if name == "all":
            picked = list(WORKLOAD_NAMES)
        elif name in WORKLOAD_NAMES:
            picked = [name]
        else:
            raise BadInput(f"unknown workload {name!r} (choose from {', '.join(WORKLOAD_NAMES)}, all; --function adds yours)")
        out.extend(p for p in picked if p not in out)
    return out


def validate(config: ShootoutConfig) -> Plan:
    """Check every value before any cluster starts; BadInput names the first bad one."""
    combos = combinations(config.schemes, config.hwms)
    repeat = config.repeat if config.repeat is not None else (QUICK_REPEAT if config.quick else DEFAULT_REPEAT)
    warmup = config.warmup if config.warmup is not None else (QUICK_WARMUP if config.quick else DEFAULT_WARMUP)
    if repeat < 1:
        raise BadInput(f"invalid --repeat {repeat}: at least 1 timed repeat is needed")
    if warmup < 0:
        raise BadInput(f"invalid --warmup {warmup}: it must be 0 or more")
    engines = config.engines if config.engines is not None else (os.cpu_count() or 1)
    if engines < 1:
        raise BadInput(f"invalid --engines {engines}: at least 1 engine is needed")
    if not config.timeout > 0:
        raise BadInput(f"invalid --timeout {config.timeout:g}: it must be more than 0 seconds")
    if not config.cluster_timeout > 0:
        raise BadInput(f"invalid --cluster-timeout {config.cluster_timeout:g}: it must be more than 0 seconds")
    if config.hetero_tasks is not None and config.hetero_tasks < 1:
        raise BadInput(f"invalid --hetero-tasks {config.hetero_tasks}: at least 1 task is needed")
    if config.hetero_mean is not None and not (0 < config.hetero_mean <= 60):
        raise BadInput(f"invalid --hetero-mean {config.hetero_mean:g}: a mean task duration in seconds, more than 0 and at most 60")
    if config.task_kind not in hetero.TASK_KINDS:
        raise BadInput(f"unknown --task-kind {config.task_kind!r} (choose from {', '.join(hetero.TASK_KINDS)})")
    if config.args_file is not None and config.function is None:
        raise BadInput("--args is the argument list of --function module:function; give --function too")

    if config.tasks is not None and config.tasks < 1:
        raise BadInput(f"invalid --tasks {config.tasks}: a workload needs at least 1 task")
    if config.sum_n is not None and config.sum_n < 1:
        raise BadInput(f"invalid --sum-n {config.sum_n}: it must be at least 1")

    base = QUICK_SIZES if config.quick else DEFAULT_SIZES

    def pick(value: Any, default: Any) -> Any:
        return default if value is None else value

    sizes = Sizes(
        overhead_tasks=pick(config.tasks, base.overhead_tasks),
        hetero_tasks=pick(config.hetero_tasks, base.hetero_tasks),
        hetero_mean=pick(config.hetero_mean, base.hetero_mean),
        sum_n=pick(config.sum_n, base.sum_n),
        sum_tasks=pick(config.tasks, base.sum_tasks),
        primes_tasks=pick(config.tasks, base.primes_tasks),
    )
    workloads: list[Workload] = []
    for name in expand_workloads(config.workloads):
        if name == "hetero":
            workloads.append(hetero.hetero_workload(sizes.hetero_tasks, sizes.hetero_mean, config.seed, config.task_kind))
        elif name == "sum":
            workloads.append(make_workload("sum", tasks=sizes.sum_tasks, sum_n=sizes.sum_n))
        elif name == "primes":
            workloads.append(make_workload("primes", tasks=sizes.primes_tasks))
        else:
            workloads.append(make_workload("overhead", tasks=sizes.overhead_tasks))
    user = load_user_function(config.function, config.args_file) if config.function else None
    if user is not None:
        workloads.append(user.workload())
    return Plan(config, combos, workloads, user, engines, repeat, warmup, sizes)


# --- reading the controller ---------------------------------------------------------------------

_LOG_PYTHON = re.compile(r"Task scheduler started \[(\w+)\]")
_LOG_PURE = re.compile(r"using pure DEALER Task scheduler")


def scheme_from_log(text: str) -> tuple[str | None, str | None]:
    """The scheme the controller's task scheduler announced in its log, and that line."""
    for line in text.splitlines():
        match = _LOG_PYTHON.search(line)
        if match:
            return match.group(1), line.strip()
        if _LOG_PURE.search(line):
            return PURE, line.strip()
    return None, None


def read_back_scheme(cluster: Any, wait: float = 10.0) -> dict:
    """What the controller says it runs: the connection file's ``task_scheme`` and its log line.

    The scheduler logs its start in its own process, shortly after the controller: the log is
    read again for up to ``wait`` seconds until the line is there.
    """
    try:
        task_scheme = json.loads(Path(cluster.client_file).read_text()).get("task_scheme")
    except (OSError, ValueError):
        task_scheme = None
    log_path = Path(cluster.profile_dir) / "log" / "kit-controller.log"
    deadline = time.monotonic() + wait
    while True:
        try:
            log_scheme, line = scheme_from_log(log_path.read_text(errors="replace"))
        except OSError:
            log_scheme, line = None, None
        if log_scheme is not None or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    return {"task_scheme": task_scheme, "log_scheme": log_scheme, "log_line": line, "log": str(log_path)}


def probe_hwm(client: Any, hwm: int, engines: int, timeout: float, task_seconds: float = PROBE_TASK_SECONDS) -> dict:
    """:func:`probe_hwm_once`, and when that does not confirm the hwm, once more with tasks three times
    as long (on a busy machine the hub may report the tasks only after the first one finished)."""
    result = probe_hwm_once(client, hwm, engines, timeout, task_seconds)
    if not result["consistent"]:
        result = probe_hwm_once(client, hwm, engines, timeout, task_seconds * 3)
        result["attempts"] = 2
    else:
        result["attempts"] = 1
    return result


def probe_hwm_once(client: Any, hwm: int, engines: int, timeout: float, task_seconds: float = PROBE_TASK_SECONDS) -> dict:
    """Watch the high-water mark at work: ``engines * max(hwm, 1) + 2`` sleeping tasks at once.

    With ``hwm = k > 0`` the scheduler hands each engine at most ``k`` of them and holds the rest
    back (the hub counts them as unassigned); with ``hwm = 0`` it assigns every task at once. The
    hub's ``queue_status`` is read until it has seen every task and the picture is settled, for at
    most 1.5 times a task's duration. Readings taken before the hub saw all tasks, or after one
    finished, are not used.
    """
    n = engines * max(hwm, 1) + 2

    def reading() -> tuple[list[int], int, int]:
        status = client.queue_status()
        per_engine = [v for k, v in status.items() if k != "unassigned" and isinstance(v, dict)]
        return ([int(v.get("tasks", 0)) for v in per_engine], int(status.get("unassigned", 0)),
                sum(int(v.get("completed", 0)) for v in per_engine))  # fmt: skip

    _, _, completed_before = reading()
    view = client.load_balanced_view()
    ar = view.map(time.sleep, [task_seconds] * n, chunksize=1, block=False)
    deadline = time.perf_counter() + task_seconds * 1.5  # readings after a task finished are not used
    last: tuple[list[int], int] | None = None
    settled = 0
    readings = 0
    while time.perf_counter() < deadline:
        outstanding, unassigned, completed = reading()
        if completed > completed_before:
            break  # a task finished: held-back tasks are being handed out now
        if unassigned + sum(outstanding) == n:
            readings += 1
            if hwm == 0:
                last = (outstanding, unassigned)
                if unassigned == 0:
                    break
            else:
                full = sum(outstanding) == engines * hwm and unassigned == n - engines * hwm
                settled = settled + 1 if full and last == (outstanding, unassigned) else (1 if full else 0)
                last = (outstanding, unassigned)
                if settled >= 3:  # the same full picture three times in a row: the rest is held back
                    break
        time.sleep(0.02)
    ar.get(timeout=timeout)
    if last is None:
        return {"tasks": n, "task_seconds": task_seconds, "max_outstanding_per_engine": None, "unassigned": None,
                "readings": 0, "consistent": False, "observed": "the hub did not report every task in time"}  # fmt: skip
    outstanding, unassigned = last
    if hwm == 0:
        consistent = unassigned == 0
        observed = "no limit: every task assigned at once" if consistent else f"{unassigned} of {n} tasks still unassigned"
    else:
        consistent = settled >= 3 and max(outstanding) <= hwm
        observed = f"at most {max(outstanding)} task(s) per engine, {unassigned} of {n} held back"
    return {"tasks": n, "task_seconds": task_seconds, "max_outstanding_per_engine": max(outstanding),
            "unassigned": unassigned, "readings": readings, "consistent": consistent, "observed": observed}  # fmt: skip


# --- the pure trap ------------------------------------------------------------------------------

GAP_WARNING = "Task farming will be disabled"


def _task_farming_works(client: Any, timeout: float) -> bool:
    from ipcluster_kit.bench.workloads import noop

    try:
        return client.load_balanced_view().apply_async(noop, 1).get(timeout=timeout) == 1
    except RuntimeError as exc:  # "Task farming is disabled"
        if "farming" in str(exc):
            return False
        raise


def connect_for_tasks(cluster: Any, timeout: float = 60.0) -> Any:
    """A client whose load-balanced views work, whatever order the engines registered in.

    With the ``pure`` scheme, an ipyparallel client that sees a gap in the engine ids (engine 1
    registered before engine 0) closes its task socket for good: every load-balanced call then
    raises RuntimeError, and a client *created* during the gap fails at once ("IO Loop failed to
    start"). ``cluster.connect()`` makes its client after every engine registered, so it sees no gap;
    here a client that fails that way is retried until ``timeout`` (engine 0 may still be registering),
    and the client returned has proven it can farm a task. A hole that does not close (an engine
    died) is a KitError that says so: no client can fix it.
    """
    expected = int(cluster.engines)
    pure = getattr(cluster, "scheme", None) == PURE
    deadline = time.monotonic() + timeout
    last = "no attempt"
    while True:
        remaining = max(deadline - time.monotonic(), 1.0)
        try:
            client = cluster.connect(timeout=remaining)
        except RuntimeError as exc:
            if not pure:
                raise
            client, last = None, f"no client could connect ({exc})"
        if client is not None:
            ids = sorted(client.ids)
            if len(ids) < expected:
                client.close()
                raise KitError(f"only {len(ids)} of {expected} engines answer")
            if pure and ids != list(range(len(ids))):
                last = f"engine ids {ids} have a gap"
            elif _task_farming_works(client, remaining):
                return client
            else:
                last = "the client refuses load-balanced tasks (task farming disabled)"
            client.close()
        if time.monotonic() >= deadline:
            hint = " (with the pure scheduler: an engine died or re-registered; restart the cluster)" if pure else ""
            raise KitError(f"cannot farm tasks on this cluster within {timeout:g} s: {last}{hint}")
        time.sleep(0.2)


# --- errors from the engines --------------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_FRAME = re.compile(r"^File (?P<file>.+?):(?P<line>\d+), in (?P<func>[^\s(]+)")
TRACEBACK_LINES = 40


def remote_error_summary(exc: BaseException) -> tuple[str, list[str]]:
    """One line (``ValueError: bad input 3 (usertasks.py:3 in work), task 3 of 6 failed``) and the
    remote traceback without colour codes (its last ``TRACEBACK_LINES`` lines)."""
    elist = getattr(exc, "elist", None)
    if elist:
        ename, evalue, tb, info = elist[0]
        failed = len(elist)
    elif hasattr(exc, "ename"):
        ename, evalue, tb, info = exc.ename, exc.evalue, getattr(exc, "traceback", ""), getattr(exc, "engine_info", None)
        failed = 1
    else:
        return f"{type(exc).__name__}: {exc}", []
    lines = [line.rstrip() for line in _ANSI.sub("", tb or "").splitlines() if line.strip()]
    frames = [m for m in (_FRAME.match(line.strip()) for line in lines) if m]
    where = ""
    if frames:
        last = frames[-1]
        where = f" ({os.path.basename(last.group('file'))}:{last.group('line')} in {last.group('func')})"
    engine = ""
    if isinstance(info, dict) and info.get("engine_id") is not None:
        engine = f" on engine {info['engine_id']}"
    count = f"; {failed} task(s) failed" if failed > 1 else ""
    summary = " ".join(f"{ename}: {evalue}".split())[:300] + where + engine + count
    return summary, lines[-TRACEBACK_LINES:]


def _describe(exc: BaseException) -> str:
    message = exc.message if isinstance(exc, KitError) else f"{type(exc).__name__}: {exc}"
    return " ".join(str(message).split())[:500]


def digest(results: Sequence[Any]) -> str:
    return hashlib.sha256(repr(list(results)).encode("utf-8", "replace")).hexdigest()[:16]


# --- one combination ----------------------------------------------------------------------------

Progress = Callable[[str], None]


def _no_progress(message: str) -> None:
    pass


@dataclass
class _Run:
    """A bench-style run record (the fields ``results.run_entry`` reads) plus shoot-out extras."""

    workload: str
    backend: str
    workers: int
    params: dict = field(default_factory=dict)
    warmup_seconds: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    error: str | None = None
    foreign_cpus: list[float | None] = field(default_factory=list)  # other work during each timed run
    traceback: list[str] | None = None
    engine_work: list[list[float]] = field(default_factory=list)
    digests: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


class _BackgroundStop:
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
            self.error = f"stopping the cluster of {self.label} failed: {_describe(exc)}"

    def join(self, timeout: float = 60.0) -> str | None:
        self.thread.join(timeout)
        if self.thread.is_alive():
            return f"stopping the cluster of {self.label} took more than {timeout:g} s"
        return self.error


def _prepare_engines(client: Any, plan: Plan, timeout: float) -> str | None:
    """Import the task modules on every engine; returns why the user's module cannot be, or None."""
    view = client[:]
    view.execute("import ipcluster_kit.bench.workloads, ipcluster_kit.bench.hetero", block=False).get(timeout=timeout)
    if plan.user is None:
        return None
    module = plan.user.func.__module__
    code = f"import {module}"
    if plan.user.module_dir:
        code = f"import sys\nif {plan.user.module_dir!r} not in sys.path: sys.path.insert(0, {plan.user.module_dir!r})\n" + code
    try:
        view.execute(code, block=False).get(timeout=timeout)
    except Exception as exc:
        summary, _ = remote_error_summary(exc)
        return f"the engines cannot import {module!r}: {summary}"
    return None


def _check(workload: Workload, got: Any, refs: dict[str, list]) -> str | None:
    from ipcluster_kit.bench.runner import first_mismatch

    if workload.name == "hetero":
        return hetero.check_results(got, hetero.durations_of(workload))
    if workload.name == USER:
        try:
            n = len(got)
        except TypeError:
            return f"returned {type(got).__name__}, not a sequence of results"
        return None if n == workload.size else f"returned {n} results for {workload.size} tasks"
    return first_mismatch(got, refs[workload.name])


def _measure(client: Any, combo: Combination, plan: Plan, refs: dict[str, list], progress: Progress) -> list[_Run]:
    import ipyparallel as ipp

    from ipcluster_kit.bench.noise import LoadProbe

    load_probe = LoadProbe()
    timeout = plan.config.timeout
    view = client.load_balanced_view()
    runs = {w.name: _Run(w.name, BACKEND, plan.engines, params={"chunksize": 1}) for w in plan.workloads}
    user_error = _prepare_engines(client, plan, min(timeout, 60.0))
    if user_error is not None:
        runs[USER].error = f"setup failed: {user_error}"
    aborted = None
    total = plan.warmup + plan.repeat
    for round_no in range(total):
        warm = round_no < plan.warmup
        shift = round_no % len(plan.workloads)
        for workload in plan.workloads[shift:] + plan.workloads[:shift]:
            run = runs[workload.name]
            if not run.ok or aborted:
                continue
            snapshot = None if warm else load_probe.start()
            start = time.perf_counter()
            try:
                got = view.map(workload.func, workload.args, chunksize=1, block=False).get(timeout=timeout)
                elapsed = time.perf_counter() - start
            except ipp.error.TimeoutError:
                run.error = f"run failed: no result within {timeout:g} s"
                aborted = f"abandoned: {workload.name} timed out in this combination, its tasks still occupy the engines"
                continue
            except ipp.error.RemoteError as exc:  # the task raised on an engine (CompositeError too)
                summary, tb = remote_error_summary(exc)
                run.error, run.traceback = f"run failed: {summary}", tb
                continue
            except Exception as exc:
                run.error = f"run failed: {_describe(exc)}"
                continue
            mismatch = _check(workload, got, refs)
            if mismatch is not None:
                run.error = f"results are wrong: {mismatch}"
                continue
            if warm:
                run.warmup_seconds.append(elapsed)
                continue
            run.seconds.append(elapsed)
            run.foreign_cpus.append(load_probe.foreign_cpus(snapshot) if snapshot is not None else None)
            if workload.name == "hetero":
                run.engine_work.append([round(x, 6) for x in hetero.work_per_engine(got)])
            elif workload.name == USER:
                run.digests.append(digest(got))
    for run in runs.values():
        if run.ok and aborted and len(run.seconds) < plan.repeat:
            run.error = aborted
        if not run.ok:
            run.seconds.clear()
            run.warmup_seconds.clear()
            run.foreign_cpus.clear()
    return list(runs.values())


def _run_entry(run: _Run, plan: Plan, combo: Combination) -> dict:
    from ipcluster_kit.bench import results

    workload = next(w for w in plan.workloads if w.name == run.workload)
    entry = results.run_entry(run, None, workload.size)
    entry.update({"scheme": combo.scheme, "hwm": combo.hwm, "combination": combo.label,
                  "traceback": run.traceback, "makespan_ratio": None, "lower_bound_seconds": None})  # fmt: skip
    if workload.name == "hetero":
        bound = hetero.lower_bound(hetero.durations_of(workload), plan.engines)
        entry["lower_bound_seconds"] = bound
        entry["params"]["engine_work_seconds"] = run.engine_work
        nominal = sum(hetero.durations_of(workload))
        # wall-clock seconds the tasks ran, over the seconds they were meant to: > 1 when the cores were shared
        entry["params"]["task_stretch"] = [round(sum(work) / nominal, 4) for work in run.engine_work] if nominal > 0 else []
        if entry["status"] == "ok" and bound > 0:
            entry["makespan_ratio"] = stats.summarize([s / bound for s in run.seconds]).to_dict()
    if workload.name == USER and run.digests:
        entry["params"]["results_digests"] = run.digests
    return entry


def run_combination(combo: Combination, plan: Plan, refs: dict[str, list], *, previous: _BackgroundStop | None = None,
                    progress: Progress = _no_progress) -> tuple[dict, _BackgroundStop | None, list[str]]:  # fmt: skip
    """Bring up a cluster with ``combo``, confirm its scheme, measure, and start stopping it.

    Returns the combination's entry, the background stop (join it before the next timing), and
    notes (problems stopping the previous cluster). Failures are recorded in the entry, not raised;
    KeyboardInterrupt stops the cluster at once and propagates.
    """
    import warnings

    started = time.monotonic()
    notes: list[str] = []
    entry: dict[str, Any] = {
        "label": combo.label, "scheme": combo.scheme, "hwm": combo.hwm, "status": "failed", "error": None,
        "controller": None, "hwm_probe": None, "bringup_seconds": None, "registration_gap_seen": False,
        "engine_ids": [], "seconds": None, "runs": [],
    }  # fmt: skip
    cm = shootout_cluster(plan.engines, combo.scheme, combo.hwm, timeout=plan.config.cluster_timeout)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cluster = cm.__enter__()
    except Exception as exc:  # up() has stopped whatever it started; the next combination goes on
        entry["error"] = f"cluster did not come up: {_describe(exc)}"
        if previous is not None and (note := previous.join()):
            notes.append(note)
        entry["seconds"] = time.monotonic() - started
        return entry, None, notes
    entry["bringup_seconds"] = cluster.bringup_seconds
    entry["registration_gap_seen"] = any(GAP_WARNING in str(w.message) for w in caught)
    try:
        if previous is not None and (note := previous.join()):  # the previous cluster is gone before any timing
            notes.append(note)
        controller = read_back_scheme(cluster)
        controller["confirmed"] = controller["task_scheme"] == combo.scheme and controller["log_scheme"] == combo.scheme
        entry["controller"] = controller
        progress(f"  {combo.label}: up in {cluster.bringup_seconds:.1f} s; the controller runs"
                 f" {controller['task_scheme']} (connection file) / {controller['log_scheme']} (log)")  # fmt: skip
        if not controller["confirmed"]:
            entry["error"] = (f"the controller runs {controller['task_scheme']!r} (connection file) /"
                              f" {controller['log_scheme']!r} (log), not {combo.scheme!r}")  # fmt: skip
        else:
            try:
                client = connect_for_tasks(cluster, timeout=min(plan.config.cluster_timeout, 60.0))
            except KitError as exc:
                entry["error"] = f"cannot farm tasks: {_describe(exc)}"
            else:
                try:
                    entry["engine_ids"] = sorted(client.ids)
                    if combo.hwm is not None:
                        seconds = QUICK_PROBE_TASK_SECONDS if plan.config.quick else PROBE_TASK_SECONDS
                        entry["hwm_probe"] = probe_hwm(client, combo.hwm, plan.engines, timeout=60.0, task_seconds=seconds)
                    runs = _measure(client, combo, plan, refs, progress)
                finally:
                    with contextlib.suppress(Exception):
                        client.close()
                entry["runs"] = [_run_entry(r, plan, combo) for r in runs]
                entry["status"] = "ok"
    except KeyboardInterrupt:
        cm.__exit__(*sys.exc_info())
        raise
    except Exception as exc:
        entry["error"] = f"measurement failed: {_describe(exc)}"
    entry["seconds"] = time.monotonic() - started
    return entry, _BackgroundStop(cm, combo.label), notes


@contextlib.contextmanager
def shootout_cluster(engines: int, scheme: str, hwm: int | None, *, timeout: float,
                     heartbeat_ms: int = SHOOTOUT_HEARTBEAT_MS) -> Iterator[Any]:  # fmt: skip
    """A throwaway local cluster with ``scheme`` and ``hwm``, stopped (by PID) and deleted on exit.

    :func:`ipcluster_kit.cluster.local.temporary_cluster` with a chosen heartbeat period.
    """
    import shutil
    import tempfile
    import uuid

    from ipcluster_kit.cluster.local import down, up
    from ipcluster_kit.profile.spec import build_spec
    from ipcluster_kit.profile.store import plan_write, write_profile

    root = Path(tempfile.mkdtemp(prefix="ipck-sched-"))
    name = f"kit-sched-{uuid.uuid4().hex[:8]}"
    try:
        spec = build_spec(name, preset="local", scheme=scheme, hwm=hwm, engines=engines, heartbeat_ms=heartbeat_ms)
        write_profile(plan_write(spec, root))
        cluster, _ = up(name, root, timeout=timeout)
        try:
            yield cluster
        finally:
            down(name, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --- the whole shoot-out ------------------------------------------------------------------------


def ipyparallel_defaults() -> dict:
    """The installed ipyparallel's TaskScheduler defaults (scheme and hwm)."""
    try:
        from ipyparallel.controller.task_scheduler import TaskScheduler

        scheme, hwm = TaskScheduler.scheme_name.default_value, int(TaskScheduler.hwm.default_value)
    except Exception:  # an ipyparallel without these traits: the 9.x values
        scheme, hwm = IPP_DEFAULT_SCHEME, IPP_DEFAULT_HWM
    import importlib.metadata as md

    return {"scheme": scheme, "hwm": hwm, "source": f"ipyparallel {md.version('ipyparallel')} TaskScheduler defaults"}


def _workload_entries(plan: Plan, refs: dict[str, Any]) -> list[dict]:
    out = []
    for w in plan.workloads:
        entry: dict[str, Any] = {"name": w.name, "title": TITLES[w.name], "description": w.description, "tasks": w.size,
                                 "serial_reference": None, "durations": None, "lower_bound_seconds": None}  # fmt: skip
        ref = refs.get(w.name)
        if ref is not None:
            d = ref.task_seconds
            entry["serial_reference"] = {"seconds": sum(d), "task_seconds_mean": sum(d) / len(d),
                                         "task_seconds_min": min(d), "task_seconds_max": max(d)}  # fmt: skip
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


def run_shootout(config: ShootoutConfig, *, progress: Progress | None = None) -> dict:
    """Run every combination; return the result document (``bench-schedulers`` v1)."""
    from ipcluster_kit.bench import results
    from ipcluster_kit.bench.runner import serial_reference

    progress = progress or _no_progress
    plan = validate(config)
    defaults = ipyparallel_defaults()
    load_before = list(os.getloadavg())
    created = time.time()
    t0 = time.monotonic()

    refs: dict[str, Any] = {}
    for w in plan.workloads:
        if w.name in ("overhead", "sum", "primes"):
            progress(f"{w.name}: serial reference run")
            refs[w.name] = serial_reference(w)
    ref_results = {name: ref.results for name, ref in refs.items()}

    entries: list[dict] = []
    notes: list[str] = []
    pending: _BackgroundStop | None = None
    try:
        for i, combo in enumerate(plan.combos, 1):
            progress(f"[{i}/{len(plan.combos)}] {combo.label}: starting a {plan.engines}-engine cluster")
            entry, pending, more = run_combination(combo, plan, ref_results, previous=pending, progress=progress)
            notes.extend(more)
            entries.append(entry)
            if entry["error"]:
                progress(f"  {combo.label}: failed: {entry['error']}")
            failed = [f"{r['workload']}: {r['error']}" for r in entry["runs"] if r["status"] != "ok"]
            for line in failed:
                progress(f"  {combo.label}: {line}")
            progress(f"  {combo.label}: done in {entry['seconds']:.1f} s")
    finally:
        if pending is not None and (note := pending.join()):
            notes.append(note)

    env = results.environment(None, "none", plan.engines, load_before, list(os.getloadavg()))
    env["cluster"] = {"source": "temporary", "profile": None, "engines": plan.engines, "scheme": None, "hwm": None,
                      "hosts": ["localhost"], "per_combination": True, "heartbeat_ms": SHOOTOUT_HEARTBEAT_MS}  # fmt: skip
    from ipcluster_kit import __version__

    document = {
        "schema": SCHEMA_NAME,
        "schema_version": SCHEMA_VERSION,
        "created": _dt.datetime.fromtimestamp(created, _dt.timezone.utc).isoformat(timespec="seconds"),
        "tool": {"name": "ipcluster-kit", "version": __version__, "command": config.command},
        "config": {
            "workloads": [w.name for w in plan.workloads],
            "schemes": list(dict.fromkeys(c.scheme for c in plan.combos)),
            "hwms": sorted({c.hwm for c in plan.combos if c.hwm is not None}, reverse=True),
            "combinations": [c.label for c in plan.combos],
            "engines": plan.engines, "repeat": plan.repeat, "warmup": plan.warmup, "quick": bool(config.quick),
            "sizes": {"overhead_tasks": plan.sizes.overhead_tasks, "hetero_tasks": plan.sizes.hetero_tasks,
                      "hetero_mean_seconds": plan.sizes.hetero_mean, "sum_n": plan.sizes.sum_n,
                      "sum_tasks": plan.sizes.sum_tasks, "primes_tasks": plan.sizes.primes_tasks},
            "task_kind": config.task_kind, "seed": config.seed,
            "function": plan.user.spec if plan.user else None, "args_file": plan.user.args_file if plan.user else None,
            "chunksize": 1, "timeout_seconds": config.timeout,
        },  # fmt: skip
        "statistics": {
            "center": "median",
            "interval": stats.CI_METHOD,
            "interval_level": stats.TARGET_COVERAGE,
            "makespan_ratio": "hetero: each timed makespan / lower bound max(sum(d) / engines, max(d)); summarised like the times",
            "tie": "the best combination (lowest median time) and the default are a tie when their intervals for the median overlap",
            "difference": "time: 1 - best median / default median; throughput (overhead): default median / best median - 1",
        },
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


# --- recommendation -----------------------------------------------------------------------------


def _overlap(a: dict, b: dict) -> bool:
    return max(a["ci_low"], b["ci_low"]) <= min(a["ci_high"], b["ci_high"])


def _value(workload: dict, stats_: dict, which: str = "median") -> float:
    """A run's time expressed in the workload's own unit: tasks/s, x of the bound, or seconds."""
    t = stats_[which]
    if workload["name"] == "overhead":
        return workload["tasks"] / t if t > 0 else math.inf
    if workload["name"] == "hetero" and workload.get("lower_bound_seconds"):
        return t / workload["lower_bound_seconds"]
    return t


def format_value(workload: dict, stats_: dict, *, long: bool = False) -> str:
    """``437 tasks/s [430–445]``, ``1.16x of the bound [1.14–1.19]`` or ``0.52 s [0.51–0.53]``."""
    med = _value(workload, stats_)
    if workload["name"] == "overhead":  # higher is better: the interval's ends swap
        low, high = _value(workload, stats_, "ci_high"), _value(workload, stats_, "ci_low")
        return f"{med:,.0f}{' tasks' if long else ''}/s [{low:,.0f}–{high:,.0f}]"
    low, high = _value(workload, stats_, "ci_low"), _value(workload, stats_, "ci_high")
    if workload["name"] == "hetero" and workload.get("lower_bound_seconds"):
        return f"{med:.2f}x{' of the bound' if long else ''} [{low:.2f}–{high:.2f}]"
    return f"{med:.3g} s [{low:.3g}–{high:.3g}]"


def difference(workload: dict, best: dict, default: dict) -> tuple[float, str]:
    """How much better the best is than the default, in percent, and the words for it."""
    if workload["name"] == "overhead":
        return (default["median"] / best["median"] - 1) * 100, "more tasks/s than"
    if workload["name"] == "hetero":
        return (1 - best["median"] / default["median"]) * 100, "better than"
    return (1 - best["median"] / default["median"]) * 100, "faster than"


MIN_REPEATS_TO_COMPARE = 3


def recommend_workload(document: dict, workload: dict) -> dict | None:
    """The best combination on one workload, against the default, with a verdict and a line.

    Verdicts: ``better`` (intervals apart: the best is recommended), ``tie`` (they overlap: keep the
    default), ``default-best``, ``inconclusive`` (fewer than 3 repeats: keep the default),
    ``no-default`` (the default combination was not measured or failed: the best is recommended).
    """
    name = workload["name"]
    candidates = []
    for combo in document["combinations"]:
        for run in combo["runs"]:
            if run["workload"] == name and run["status"] == "ok" and run["stats"]:
                candidates.append((combo, run["stats"]))
    if not candidates:
        return None
    defaults = document["defaults"]
    best_combo, best = min(candidates, key=lambda c: c[1]["median"])
    found = [c for c in candidates if c[0]["scheme"] == defaults["scheme"] and c[0]["hwm"] == defaults["hwm"]]
    default_combo, default = found[0] if found else (None, None)
    title = TITLES.get(name, name)
    if name == USER:
        title = next((w.get("function") for w in document["workloads"] if w["name"] == USER), None) or title
    default_label = f"the default {defaults['scheme']}, hwm={defaults['hwm']}"
    ties = [c["label"] for c, s in candidates if c is not best_combo and _overlap(s, best)]
    pct = None
    if default is None:
        verdict = "no-default"
    elif default_combo is best_combo:
        verdict = "default-best"
    elif min(best["n"], default["n"]) < MIN_REPEATS_TO_COMPARE:
        verdict = "inconclusive"
    elif _overlap(best, default):
        verdict = "tie"
    else:
        verdict = "better"
    long_best = format_value(workload, best, long=True)
    if default is not None and default_combo is not best_combo:
        pct, words = difference(workload, best, default)
        default_text = f"{default_label} ({format_value(workload, default)})"
    if verdict == "better":
        line = f"for {title}: {best_combo['label']}, {long_best}, {pct:.0f}% {words} {default_text}"
    elif verdict == "tie":
        line = (f"for {title}: {best_combo['label']} is fastest ({long_best}), {pct:.0f}% {words} {default_text},"
                " but that is a tie with the default (within noise): keep the default")  # fmt: skip
    elif verdict == "inconclusive":
        line = (f"for {title}: {best_combo['label']} is fastest ({long_best}), {pct:.0f}% {words} {default_text},"
                f" but {min(best['n'], default['n'])} repeat(s) cannot tell them apart (use --repeat 5 or more): keep the default")  # fmt: skip
    elif verdict == "default-best":
        named = "; ".join(ties[:4]) + (f"; and {len(ties) - 4} more" if len(ties) > 4 else "")
        others = f"; {len(ties)} other(s) within noise ({named})" if ties else "; every other combination is slower beyond noise"
        line = f"for {title}: {default_label} is best ({long_best}){others}"
    else:
        line = f"for {title}: {best_combo['label']}, {long_best} ({default_label} was not measured or failed)"
    chosen = best_combo if verdict in ("better", "no-default") else default_combo
    return {
        "workload": name, "verdict": verdict,
        "best": {"label": best_combo["label"], "scheme": best_combo["scheme"], "hwm": best_combo["hwm"], "stats": best},
        "default": None if default is None else {"label": default_combo["label"], "scheme": default_combo["scheme"],
                                                 "hwm": default_combo["hwm"], "stats": default},
        "difference_percent": pct,
        "within_noise_of_best": ties,
        "chosen": {"scheme": chosen["scheme"], "hwm": chosen["hwm"], "label": chosen["label"]},
        "line": line,
    }  # fmt: skip


def recommendations(document: dict) -> list[dict]:
    out = []
    for workload in document["workloads"]:
        rec = recommend_workload(document, workload)
        if rec is not None:
            out.append(rec)
    return out


def overall(document: dict, workload: str | None = None) -> dict | None:
    """The recommendation a profile gets: for ``workload``, or the first of ``RECOMMEND_ORDER`` measured."""
    by_name = {r["workload"]: r for r in document.get("recommendations") or []}
    order = [workload] if workload else [w for w in RECOMMEND_ORDER if w in by_name]
    for name in order:
        rec = by_name.get(name)
        if rec is not None:
            return {"workload": name, "scheme": rec["chosen"]["scheme"], "hwm": rec["chosen"]["hwm"],
                    "verdict": rec["verdict"], "line": rec["line"]}  # fmt: skip
    return None


def failures(document: dict) -> list[str]:
    """One line per combination or run that failed."""
    out = []
    for combo in document["combinations"]:
        if combo["error"]:
            out.append(f"{combo['label']}: {combo['error']}")
        out.extend(f"{combo['label']} on {r['workload']}: {r['error']}" for r in combo["runs"] if r["status"] != "ok")
    return out


# --- the document: schema, reading --------------------------------------------------------------

_STATS = {"type": "object", "required": list(stats.Summary.__dataclass_fields__)}
SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "ipcluster-kit bench schedulers result, version 1",
    "type": "object",
    "required": ["schema", "schema_version", "created", "tool", "config", "statistics", "defaults", "environment",
                 "workloads", "combinations", "notes", "recommendations", "recommended", "total_seconds"],
    "properties": {
        "schema": {"const": SCHEMA_NAME},
        "schema_version": {"const": SCHEMA_VERSION},
        "created": {"type": "string"},
        "tool": {"type": "object", "required": ["name", "version", "command"]},
        "config": {
            "type": "object",
            "required": ["workloads", "schemes", "hwms", "combinations", "engines", "repeat", "warmup", "quick", "sizes",
                         "task_kind", "seed", "function", "args_file", "chunksize", "timeout_seconds"],
            "properties": {
                "schemes": {"type": "array", "items": {"enum": list(SCHEMES)}, "minItems": 1},
                "hwms": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                "engines": {"type": "integer", "minimum": 1},
                "repeat": {"type": "integer", "minimum": 1},
                "warmup": {"type": "integer", "minimum": 0},
                "task_kind": {"enum": list(hetero.TASK_KINDS)},
            },
        },
        "statistics": {"type": "object", "required": ["center", "interval", "interval_level", "tie"]},
        "defaults": {"type": "object", "required": ["scheme", "hwm"],
                     "properties": {"scheme": {"enum": list(SCHEMES)}, "hwm": {"type": "integer", "minimum": 0}}},
        "environment": {"type": "object", "required": ["python", "platform", "cpu_count", "load_average", "versions", "workers", "cluster"]},
        "workloads": {
            "type": "array", "minItems": 1,
            "items": {"type": "object", "required": ["name", "title", "description", "tasks", "serial_reference", "lower_bound_seconds"],
                      "properties": {"name": {"enum": [*WORKLOAD_NAMES, USER]}, "tasks": {"type": "integer", "minimum": 1},
                                     "lower_bound_seconds": {"type": ["number", "null"], "minimum": 0}}},
        },
        "combinations": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["label", "scheme", "hwm", "status", "error", "controller", "hwm_probe", "bringup_seconds",
                             "registration_gap_seen", "engine_ids", "seconds", "runs"],
                "properties": {
                    "scheme": {"enum": list(SCHEMES)},
                    "hwm": {"type": ["integer", "null"], "minimum": 0},
                    "status": {"enum": ["ok", "failed"]},
                    "error": {"type": ["string", "null"]},
                    "controller": {"oneOf": [{"type": "null"}, {"type": "object", "required": ["task_scheme", "log_scheme", "log_line", "confirmed"]}]},
                    "registration_gap_seen": {"type": "boolean"},
                    "runs": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["workload", "backend", "workers", "status", "error", "verified", "params", "warmup_seconds",
                                         "seconds", "stats", "speedup", "speedup_interval", "efficiency", "tasks_per_second",
                                         "seconds_per_task", "scheme", "hwm", "combination", "traceback", "makespan_ratio",
                                         "lower_bound_seconds"],
                            "properties": {
                                "status": {"enum": ["ok", "failed"]},
                                "seconds": {"type": "array", "items": {"type": "number", "minimum": 0}},
                                "stats": {"oneOf": [{"type": "null"}, _STATS]},
                                "makespan_ratio": {"oneOf": [{"type": "null"}, _STATS]},
                                "traceback": {"type": ["array", "null"], "items": {"type": "string"}},
                            },
                        },
                    },
                },
            },
        },
        "notes": {"type": "array", "items": {"type": "string"}},
        "recommendations": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["workload", "verdict", "best", "default", "difference_percent", "within_noise_of_best", "chosen", "line"],
                "properties": {
                    "verdict": {"enum": ["better", "tie", "default-best", "inconclusive", "no-default"]},
                    "chosen": {"type": "object", "required": ["scheme", "hwm"],
                               "properties": {"scheme": {"enum": list(SCHEMES)}, "hwm": {"type": ["integer", "null"], "minimum": 0}}},
                    "line": {"type": "string"},
                },
            },
        },
        "recommended": {"oneOf": [{"type": "null"}, {"type": "object", "required": ["workload", "scheme", "hwm", "verdict", "line"]}]},
        "total_seconds": {"type": ["number", "null"], "minimum": 0},
    },
}  # fmt: skip


def validation_errors(document: Any, *, full: bool = False) -> list[str]:
    """Why ``document`` is not a shoot-out result (empty when it is); ``full`` uses jsonschema."""
    if not isinstance(document, dict):
        return ["not a JSON object"]
    if document.get("schema") != SCHEMA_NAME:
        return [f"not a scheduler shoot-out result (schema is {document.get('schema')!r}, expected {SCHEMA_NAME!r};"
                " write one with `ipcluster-kit bench schedulers --json FILE`)"]  # fmt: skip
    if document.get("schema_version") != SCHEMA_VERSION:
        return [f"unsupported schema_version {document.get('schema_version')!r} (this kit reads {SCHEMA_VERSION})"]
    if full:
        import jsonschema

        validator = jsonschema.Draft202012Validator(SCHEMA)
        return [f"{'/'.join(str(p) for p in e.absolute_path) or '(top)'}: {e.message}"
                for e in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))]  # fmt: skip
    errors = [f"{key}: missing" for key in SCHEMA["required"] if key not in document]
    if errors:
        return errors
    for i, rec in enumerate(document["recommendations"] if isinstance(document["recommendations"], list) else [None]):
        chosen = rec.get("chosen") if isinstance(rec, dict) else None
        if not isinstance(chosen, dict) or chosen.get("scheme") not in SCHEMES or not (
            chosen.get("hwm") is None or (isinstance(chosen.get("hwm"), int) and chosen["hwm"] >= 0)
        ) or not isinstance(rec.get("workload"), str):
            errors.append(f"recommendations/{i}: not a recommendation with a known scheme and hwm")
    if not isinstance(document["combinations"], list):
        errors.append("combinations: not a list")
    return errors


def load(path: str | os.PathLike) -> dict:
    """Read and check a shoot-out result file; BadInput naming the file when it is not one."""
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
        raise BadInput(f"{str(path)!r} is not a valid scheduler shoot-out result: {errors[0]}{more}")
    return document


def _choice(document: dict, path: str | os.PathLike, workload: str | None) -> dict:
    available = [r["workload"] for r in document["recommendations"]]
    if workload is not None and workload not in available:
        raise BadInput(f"{str(path)!r} has no successful {workload!r} result (it has: {', '.join(available) or 'none'})")
    choice = overall(document, workload)
    if choice is None:
        raise BadInput(f"{str(path)!r} has no successful result to recommend a scheduler from")
    return choice


def recommended_from_file(path: str | os.PathLike, workload: str | None = None) -> tuple[str, int | None]:
    """``(scheme, hwm)`` recommended by a ``bench schedulers --json`` file, for ``init --scheduler auto``.

    ``workload`` picks whose recommendation (default: your function if measured, else hetero, primes,
    sum, overhead). When the best is a tie with the default (or too few repeats tell them apart) the
    default is returned. ``hwm`` is None for ``pure`` (it has none).
    """
    choice = _choice(load(path), path, workload)
    return choice["scheme"], choice["hwm"]


def resolve_auto_scheduler(
    scheduler: str | None, hwm: int | None, from_bench: str | os.PathLike | None, workload: str | None = None
) -> tuple[str | None, int | None, str | None]:
    """What ``init`` passes to ``build_spec``: ``(scheme, hwm, note)``.

    ``--scheduler auto`` (or ``--from-bench FILE`` alone) takes scheme and hwm from the shoot-out
    file; an explicit ``--hwm`` still wins. Any other ``--scheduler`` is passed through unchanged.
    BadInput (before anything is written) for ``auto`` without a file, a file with a scheduler named
    too, or a file that is not a shoot-out result.
    """
    if scheduler != "auto" and from_bench is None:
        return scheduler, hwm, None
    if from_bench is None:
        raise BadInput("--scheduler auto needs --from-bench FILE (written by `ipcluster-kit bench schedulers --json FILE`)")
    if scheduler not in (None, "auto"):
        raise BadInput(f"--from-bench chooses the scheduler: give --scheduler auto (or nothing), not --scheduler {scheduler}")
    choice = _choice(load(from_bench), from_bench, workload)
    note = f"scheduler from {from_bench} ({choice['workload']}): {choice['line']}"
    return choice["scheme"], (hwm if hwm is not None else choice["hwm"]), note


# --- report: table, lines, plot -----------------------------------------------------------------


def _run(combo: dict, workload: str) -> dict | None:
    return next((r for r in combo["runs"] if r["workload"] == workload), None)


def table(document: dict):
    """A Rich table: one row per combination, one column per workload (median [95% interval])."""
    from rich.table import Table

    cfg = document["config"]
    title = (f"ipcluster-kit bench schedulers: {cfg['engines']} engines, {cfg['repeat']} repeat(s) after"
             f" {cfg['warmup']} warm-up(s), chunksize 1; median [interval]")  # fmt: skip
    t = Table(title=title, title_justify="left")
    t.add_column("scheme, hwm")
    t.add_column("controller says", justify="left")
    t.add_column("up", justify="right")
    workloads = document["workloads"]
    for w in workloads:
        unit = {"overhead": "tasks/s", "hetero": "x bound"}.get(w["name"], "s")
        t.add_column(f"{w['title'] if w['name'] != USER else w.get('function', USER)} ({unit})", justify="right")
    best = {r["workload"]: r["best"]["label"] for r in document["recommendations"]}
    defaults = document["defaults"]
    for combo in document["combinations"]:
        ctl = combo["controller"] or {}
        said = f"{ctl.get('task_scheme')}" + ("" if ctl.get("confirmed") else " [red](mismatch)[/]") if ctl else "-"
        probe = combo["hwm_probe"]
        if probe is not None:
            said += f", hwm {'ok' if probe['consistent'] else '[red]?[/]'}"
        label = combo["label"] + (" (default)" if combo["scheme"] == defaults["scheme"] and combo["hwm"] == defaults["hwm"] else "")
        cells = []
        for w in workloads:
            run = _run(combo, w["name"])
            if combo["status"] != "ok" and run is None:
                cells.append("[red]-[/]")
            elif run is None:
                cells.append("-")
            elif run["status"] != "ok":
                cells.append("[red]failed[/]")
            else:
                text = format_value(w, run["stats"])
                cells.append(f"[green]{text}[/]" if best.get(w["name"]) == combo["label"] else text)
        up = f"{combo['bringup_seconds']:.1f} s" if combo["bringup_seconds"] else "-"
        t.add_row(label, said, up, *cells)
    return t


def lines(document: dict) -> list[str]:
    """The recommendation per workload, then notes: failures, wide intervals, busy machine."""
    out = [r["line"] for r in document["recommendations"]]
    rec = document.get("recommended")
    if rec:
        hwm = "" if rec["hwm"] is None else f" --hwm {rec['hwm']}"
        out.append(f"a profile for this work: ipcluster-kit init NAME --scheduler {rec['scheme']}{hwm}"
                   f"  (or --scheduler auto --from-bench FILE; from the {rec['workload']} result)")  # fmt: skip
    for line in failures(document):
        out.append(f"failed: {line}")
    failed_with_tb = [(c, r) for c in document["combinations"] for r in c["runs"] if r["status"] != "ok" and r.get("traceback")]
    if failed_with_tb:  # the first remote traceback's last lines; every one is in the JSON
        combo, run = failed_with_tb[0]
        out.append(f"  remote traceback ({combo['label']}, {run['workload']}): ... {' | '.join(run['traceback'][-3:])}")
    n = document["config"]["repeat"]
    some = next((r["stats"] for c in document["combinations"] for r in c["runs"] if r["stats"]), None)
    if some and some["wide"]:
        out.append(f"with {n} repeat(s) each interval is [min, max] of the repeats and holds the median with"
                   f" {some['coverage']:.0%} confidence; --repeat 6 or more gives a true 95% interval.")  # fmt: skip
    digests = {d for c in document["combinations"] for r in c["runs"] if r["workload"] == USER and r["status"] == "ok"
               for d in r["params"].get("results_digests", [])}  # fmt: skip
    if len(digests) > 1:
        out.append(f"your function's results were not the same every time ({len(digests)} different digests):"
                   " it is not deterministic, or its results depend on the scheduler.")  # fmt: skip
    gaps = [c["label"] for c in document["combinations"] if c["registration_gap_seen"]]
    if gaps:
        out.append(f"{len(gaps)} pure start(s) registered engine 1 before engine 0 (a client made then would refuse"
                   " load-balanced tasks); the shoot-out's client, made after registration, was not affected.")  # fmt: skip
    stretch = [x for c in document["combinations"] for r in c["runs"] if r["workload"] == "hetero" and r["status"] == "ok"
               for x in r["params"].get("task_stretch", [])]  # fmt: skip
    if stretch and statistics.median(stretch) > 1.15:
        kind = document["config"]["task_kind"]
        out.append(f"heterogeneous tasks ran {statistics.median(stretch):.2f}x their nominal duration in wall-clock time"
                   f" (median over runs){' because the cores were shared with the controller, the client and other work' if kind == 'cpu' else ''}:"
                   " the ratio to the bound includes that" + ("; --task-kind sleep isolates the scheduler." if kind == "cpu" else "."))  # fmt: skip
    busy = [(r.get("foreign_cpus_median"), c["label"], r["workload"]) for c in document["combinations"] for r in c["runs"]
            if r.get("foreign_cpus_median") is not None]  # fmt: skip
    if busy:
        worst = max(busy)
        if worst[0] >= 0.25:
            out.append(f"other work kept up to {worst[0]:.2f} CPUs busy during the timed runs (worst: {worst[1]},"
                       f" {worst[2]}; per run in foreign_cpus): differences may come from it, not from the scheduler.")  # fmt: skip
    env = document["environment"]
    load = env["load_average"]["before"][0]
    cpus = env.get("cpus_usable") or env.get("cpu_count") or 1
    if not busy and load > 0.5 * cpus:  # the per-run figure, when there is one, says more than the load average
        out.append(f"the machine was busy when the run started (load {load:.2f} on {cpus} CPUs): differences are less certain.")
    out.extend(document.get("notes") or [])
    if document.get("total_seconds"):
        out.append(f"the shoot-out took {document['total_seconds']:.0f} s ({len(document['combinations'])} clusters).")
    return out


def plot(document: dict, path: str | os.PathLike) -> Path:
    """One panel per workload: each combination's median with its interval; default hatched, best coloured."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    workloads = document["workloads"]
    combos = document["combinations"]
    labels = [c["label"] for c in combos]
    best = {r["workload"]: r["best"]["label"] for r in document["recommendations"]}
    defaults = document["defaults"]
    ncols = min(len(workloads), 3)
    nrows = math.ceil(len(workloads) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.0 * ncols, 0.32 * len(combos) * nrows + 1.6 * nrows + 0.6),
                             squeeze=False, layout="constrained")  # fmt: skip
    for ax, w in zip(axes.flat, workloads):
        ys, values, err_low, err_high, colors, hatches = [], [], [], [], [], []
        for i, combo in enumerate(combos):
            run = _run(combo, w["name"])
            if run is None or run["status"] != "ok":
                ax.text(0, i, "  failed" if run is not None or combo["error"] else "", va="center", color="tab:red", fontsize=7)
                continue
            s = run["stats"]
            med = _value(w, s)
            ends = sorted([_value(w, s, "ci_low"), _value(w, s, "ci_high")])
            ys.append(i)
            values.append(med)
            err_low.append(max(med - ends[0], 0))
            err_high.append(max(ends[1] - med, 0))
            is_default = combo["scheme"] == defaults["scheme"] and combo["hwm"] == defaults["hwm"]
            colors.append("tab:green" if best.get(w["name"]) == combo["label"] else ("0.55" if is_default else "tab:blue"))
            hatches.append("//" if is_default else "")
        default_run = next((_run(c, w["name"]) for c in combos
                            if c["scheme"] == defaults["scheme"] and c["hwm"] == defaults["hwm"]), None)  # fmt: skip
        if default_run is not None and default_run["status"] == "ok":  # the default's interval: within it is a tie
            ends = sorted([_value(w, default_run["stats"], "ci_low"), _value(w, default_run["stats"], "ci_high")])
            ax.axvspan(ends[0], ends[1], color="0.85", zorder=0)
        bars = ax.barh(ys, values, xerr=[err_low, err_high], capsize=2, color=colors, edgecolor="0.2", linewidth=0.4)
        for bar, hatch in zip(bars, hatches):
            bar.set_hatch(hatch)
        for y, v, e in zip(ys, values, err_high):
            ax.annotate(f"{v:,.0f}" if w["name"] == "overhead" else f"{v:.3g}", (v + e, y), xytext=(3, 0),
                        textcoords="offset points", va="center", fontsize=6)  # fmt: skip
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.invert_yaxis()
        if w["name"] == "overhead":
            ax.set_xlabel("no-op tasks per second (higher is better)")
        elif w["name"] == "hetero" and w.get("lower_bound_seconds"):
            ax.axvline(1.0, color="0.3", ls="--", lw=1)
            ax.set_xlabel("makespan / lower bound (1 = perfect; lower is better)")
            lo = min(values) if values else 1.0
            ax.set_xlim(left=min(0.9, lo * 0.9))
        else:
            ax.set_xlabel("seconds (lower is better)")
        title = w["title"] if w["name"] != USER else w.get("function", USER)
        ax.set_title(f"{title}: {w['description']}", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    for ax in list(axes.flat)[len(workloads):]:
        ax.set_visible(False)
    env = document["environment"]
    fig.suptitle(f"ipcluster-kit bench schedulers — {document['config']['engines']} engines, {env.get('cpu_count')} CPUs,"
                 f" {document['created']} (green: best; hatched: ipyparallel's default, grey band: its interval; whiskers: interval)",
                 fontsize="medium")  # fmt: skip
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def dumps(document: dict) -> str:
    return json.dumps(document, indent=2, allow_nan=False) + "\n"


def write(path: str | os.PathLike, document: dict) -> Path:
    from ipcluster_kit.files import atomic_write

    path = Path(path)
    atomic_write(path, dumps(document))
    return path
