"""The classic workloads, written so that every task is a plain module-level function.

Functions here are pickled by reference, so engines and worker processes import them from
this module instead of receiving code: the same bytes run everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence


def nth_prime(n: int) -> int:
    """The n-th prime counting from 0 (``nth_prime(0) == 2``), by trial division.

    Each candidate is divided only by the primes found so far, up to its square root. The
    book's version lacks the ``else`` on the inner loop and so never yields; here a candidate
    is appended only when no divisor was found.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    primes: list[int] = []
    candidate = 2
    while len(primes) <= n:
        for p in primes:
            if p * p > candidate:
                primes.append(candidate)
                break
            if candidate % p == 0:
                break
        else:
            primes.append(candidate)
        candidate += 1
    return primes[n]


def sum_range(n: int) -> int:
    """One task of the sum workload: ``sum(range(n))``."""
    return sum(range(n))


def noop(x: Any) -> Any:
    """A task that does nothing: its round trip is pure overhead."""
    return x


def result_list(results: Any, tasks: int) -> tuple[list, str | None]:
    """``results`` as a list, and why it is not one result per task (None when it is)."""
    try:
        out = list(results)
    except TypeError:
        return [], f"returned {type(results).__name__}, not a sequence of results"
    if len(out) != tasks:
        return out, f"returned {len(out)} results for {tasks} tasks"
    return out, None


@dataclass(frozen=True)
class Workload:
    """A list of independent tasks: ``func`` applied to each of ``args``."""

    name: str
    func: Callable[[Any], Any]
    args: Sequence[Any]
    description: str

    def run_serial(self) -> list[Any]:
        return [self.func(a) for a in self.args]

    @property
    def size(self) -> int:
        return len(self.args)


# Default and --quick sizes. The defaults keep `bench all` on 2 cores within a couple of minutes.
SUM_N = 10_000_000
SUM_REPEATS = 16
PRIMES_COUNT = 1000
NOOP_COUNT = 1000

QUICK_SUM_N = 1_000_000
QUICK_SUM_REPEATS = 8
QUICK_PRIMES_COUNT = 300
QUICK_NOOP_COUNT = 200


def sum_workload(n: int = SUM_N, repeats: int = SUM_REPEATS) -> Workload:
    return Workload("sum", sum_range, [n] * repeats, f"sum(range({n:_})) x {repeats}")


def primes_workload(count: int = PRIMES_COUNT) -> Workload:
    return Workload("primes", nth_prime, list(range(count)), f"n-th prime for n in range({count})")


def overhead_workload(count: int = NOOP_COUNT) -> Workload:
    return Workload("overhead", noop, list(range(count)), f"{count} no-op tasks")


WORKLOAD_NAMES = ("sum", "primes", "overhead")


def make_workload(name: str, quick: bool = False, *, tasks: int | None = None, sum_n: int | None = None) -> Workload:
    """The named workload at its default or its ``--quick`` size.

    ``tasks`` overrides the number of tasks (sum: how many ``sum(range(n))``; primes: the count of
    primes; overhead: the count of no-op tasks); ``sum_n`` overrides ``n`` of the sum workload.
    """
    from ipcluster_kit.errors import BadInput
    from ipcluster_kit.validate import check_count

    if tasks is not None:
        check_count("--tasks", tasks, 1)
    if sum_n is not None:
        check_count("--sum-n", sum_n, 1)
    if name == "sum":
        n = sum_n if sum_n is not None else (QUICK_SUM_N if quick else SUM_N)
        return sum_workload(n, tasks if tasks is not None else (QUICK_SUM_REPEATS if quick else SUM_REPEATS))
    if name == "primes":
        return primes_workload(tasks if tasks is not None else (QUICK_PRIMES_COUNT if quick else PRIMES_COUNT))
    if name == "overhead":
        return overhead_workload(tasks if tasks is not None else (QUICK_NOOP_COUNT if quick else NOOP_COUNT))
    raise BadInput(f"unknown workload {name!r} (choose from {', '.join(WORKLOAD_NAMES)}, all)")
