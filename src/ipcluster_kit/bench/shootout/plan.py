"""What a shoot-out runs, validated before any cluster starts: combinations, workloads, sizes."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence

from ipcluster_kit.bench import hetero
from ipcluster_kit.bench.shootout.recommend import PURE, USER, WORKLOAD_NAMES
from ipcluster_kit.bench.shootout.userfunc import UserFunction, load_user_function
from ipcluster_kit.bench.workloads import Workload, make_workload
from ipcluster_kit.errors import BadInput
from ipcluster_kit.profile.spec import SCHEMES
from ipcluster_kit.validate import check_count, check_seconds

DEFAULT_SCHEMES = tuple(SCHEMES)
DEFAULT_HWMS = (1, 0)
DEFAULT_REPEAT = 5
QUICK_REPEAT = 3
DEFAULT_WARMUP = 1
QUICK_WARMUP = 0  # the engines have imported the task modules and run the hwm probe already
DEFAULT_TIMEOUT = 600.0
DEFAULT_CLUSTER_TIMEOUT = 120.0
MAX_HETERO_MEAN = 60.0  # seconds


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


@dataclass(frozen=True)
class Combination:
    """One scheme with one high-water mark; ``hwm`` is None for ``pure``, where it does not apply."""

    scheme: str
    hwm: int | None

    @property
    def label(self) -> str:
        return "pure (hwm n/a)" if self.hwm is None else f"{self.scheme}, hwm={self.hwm}"


def combinations(schemes: Sequence[str] | None = None, hwms: Sequence[int] | None = None) -> list[Combination]:
    """Every scheme with every hwm, in the order given; ``pure`` once (hwm n/a). BadInput on bad values."""
    schemes = list(schemes) if schemes else list(DEFAULT_SCHEMES)
    hwms = list(hwms) if hwms is not None and len(hwms) else list(DEFAULT_HWMS)
    for scheme in schemes:
        if scheme not in SCHEMES:
            raise BadInput(f"unknown --scheme {scheme!r} (choose from {', '.join(SCHEMES)})")
    for hwm in hwms:
        check_count("--hwm", hwm, 0)
    out: list[Combination] = []
    for scheme in dict.fromkeys(schemes):
        for hwm in [None] if scheme == PURE else dict.fromkeys(hwms):
            out.append(Combination(scheme, hwm))
    return out


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


def _sizes(config: ShootoutConfig) -> Sizes:
    base = QUICK_SIZES if config.quick else DEFAULT_SIZES

    def pick(value: Any, default: Any) -> Any:
        return default if value is None else value

    return Sizes(
        overhead_tasks=pick(config.tasks, base.overhead_tasks),
        hetero_tasks=pick(config.hetero_tasks, base.hetero_tasks),
        hetero_mean=pick(config.hetero_mean, base.hetero_mean),
        sum_n=pick(config.sum_n, base.sum_n),
        sum_tasks=pick(config.tasks, base.sum_tasks),
        primes_tasks=pick(config.tasks, base.primes_tasks),
    )


def _workload(name: str, sizes: Sizes, config: ShootoutConfig) -> Workload:
    if name == "hetero":
        return hetero.hetero_workload(sizes.hetero_tasks, sizes.hetero_mean, config.seed, config.task_kind)
    if name == "sum":
        return make_workload("sum", tasks=sizes.sum_tasks, sum_n=sizes.sum_n)
    if name == "primes":
        return make_workload("primes", tasks=sizes.primes_tasks)
    return make_workload("overhead", tasks=sizes.overhead_tasks)


def validate(config: ShootoutConfig) -> Plan:
    """Check every value before any cluster starts; BadInput names the first bad one."""
    from ipcluster_kit.bench.runner import MAX_LOCAL_ENGINES, expand_workloads

    combos = combinations(config.schemes, config.hwms)
    repeat = config.repeat if config.repeat is not None else (QUICK_REPEAT if config.quick else DEFAULT_REPEAT)
    warmup = config.warmup if config.warmup is not None else (QUICK_WARMUP if config.quick else DEFAULT_WARMUP)
    check_count("--repeat", repeat, 1)
    check_count("--warmup", warmup, 0)
    engines = check_count("--engines", config.engines if config.engines is not None else (os.cpu_count() or 1), 1,
                          maximum=MAX_LOCAL_ENGINES)  # each combination's cluster runs on this machine
    check_seconds("--timeout", config.timeout)
    check_seconds("--cluster-timeout", config.cluster_timeout)
    if config.hetero_tasks is not None:
        check_count("--hetero-tasks", config.hetero_tasks, 1)
    if config.hetero_mean is not None:
        check_seconds("--hetero-mean", config.hetero_mean, maximum=MAX_HETERO_MEAN)
    if config.task_kind not in hetero.TASK_KINDS:
        raise BadInput(f"unknown --task-kind {config.task_kind!r} (choose from {', '.join(hetero.TASK_KINDS)})")
    if config.args_file is not None and config.function is None:
        raise BadInput("--args is the argument list of --function module:function; give --function too")
    if config.tasks is not None:
        check_count("--tasks", config.tasks, 1)
    if config.sum_n is not None:
        check_count("--sum-n", config.sum_n, 1)
    sizes = _sizes(config)
    names = expand_workloads(config.workloads, WORKLOAD_NAMES, hint="; --function adds yours")
    workloads = [_workload(name, sizes, config) for name in names]
    user = load_user_function(config.function, config.args_file) if config.function else None
    if user is not None:
        workloads.append(user.workload(USER))
    return Plan(config, combos, workloads, user, engines, repeat, warmup, sizes)
