"""Serial vs the multiprocessing.managers job queue (``manager-queue`` backend), side by side.

Two measurements, each repeated and reported as medians, the runs interleaved so that a busy
moment on a shared machine hits both sides alike:

1. primes: ``nth_prime(n)`` for n in range(1000), serially and by the queue with 2 worker
   processes -> wall times and the speedup (serial / queue);
2. tiny jobs: ``noop(i)`` for many i through the queue -> jobs per second, one job per round
   trip (the book's pattern) and, for comparison, 16 jobs per round trip.
Each queue figure is taken two ways: ``run_map`` (server and workers started for the call, so
start-up is inside the time, as for a one-off script) and ``QueuePool.map`` (started once
before timing, as the other ``bench`` backends are measured).

    python benchmarks/bench_manager_queue.py [OUTPUT.json] [--repeats N] [--quick]

Writes JSON (default ``benchmarks/results/manager_queue.json``) with every run and the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from ipcluster_kit.bench.workloads import noop, nth_prime
from ipcluster_kit.mqueue.backend import QueuePool, run_map
from ipcluster_kit.mqueue.worker import choose_start_method

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "manager_queue.json"


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def machine() -> dict:
    try:
        model = next(
            (ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name")),
            platform.processor(),
        )
    except OSError:
        model = platform.processor()
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "note": "shared machine: other jobs may run at the same time; compare the ratios, not the absolute times",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", nargs="?", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--primes", type=int, default=1000, help="number of primes tasks")
    parser.add_argument("--tiny", type=int, default=5000, help="number of no-op jobs per tiny-jobs run")
    parser.add_argument("--quick", action="store_true", help="3 repeats, 300 primes, 1000 no-op jobs")
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.primes, args.tiny = 3, 300, 1000
    P = args.processes
    load_at_start = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    expected = [nth_prime(n) for n in range(args.primes)]  # also warms up imports and caches

    names = ("serial_primes", "queue_primes", "pool_primes", "tiny_batch1", "tiny_batch16", "pool_tiny_batch1")
    runs: dict[str, list[float]] = {name: [] for name in names}
    start_methods = set()
    tiny = list(range(args.tiny))
    for rep in range(args.repeats):
        t, value = timed(lambda: [nth_prime(n) for n in range(args.primes)])
        runs["serial_primes"].append(t)
        # A pool per repeat, started before timing (like the other bench backends) ...
        with QueuePool(P) as pool:
            start_methods.add(pool.start_method)
            pool.map(noop, range(10), timeout=60)  # warm-up: connections made, task imported
            t, value = timed(lambda: pool.map(nth_prime, range(args.primes), timeout=600))
            assert value == expected, "manager-queue returned wrong primes"
            runs["pool_primes"].append(t)
            t, value = timed(lambda: pool.map(noop, tiny, timeout=600))
            assert value == tiny
            runs["pool_tiny_batch1"].append(t)
        # ... then run_map with nothing running (the pool's threads are gone: workers fork).
        start_methods.add(choose_start_method())
        t, value = timed(lambda: run_map(nth_prime, range(args.primes), processes=P, timeout=600))
        assert value == expected, "manager-queue returned wrong primes"
        runs["queue_primes"].append(t)
        t, value = timed(lambda: run_map(noop, tiny, processes=P, timeout=600))
        assert value == tiny
        runs["tiny_batch1"].append(t)
        t, value = timed(lambda: run_map(noop, tiny, processes=P, timeout=600, batch=16))
        assert value == tiny
        runs["tiny_batch16"].append(t)
        print(
            f"repeat {rep + 1}/{args.repeats}: serial {runs['serial_primes'][-1]:.3f} s, "
            f"run_map {runs['queue_primes'][-1]:.3f} s, pool {runs['pool_primes'][-1]:.3f} s; tiny "
            f"{args.tiny / runs['tiny_batch1'][-1]:.0f} jobs/s (pool {args.tiny / runs['pool_tiny_batch1'][-1]:.0f}, "
            f"batch 16: {args.tiny / runs['tiny_batch16'][-1]:.0f})",
            file=sys.stderr,
        )

    med = {k: statistics.median(v) for k, v in runs.items()}

    def speedups(name: str) -> list[float]:
        return [s / q for s, q in zip(runs["serial_primes"], runs[name])]

    info = machine()
    info["load_average_at_start"] = load_at_start
    info["load_average_at_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    result = {
        "benchmark": "manager_queue",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": info,
        "settings": {
            "repeats": args.repeats, "processes": P, "primes_tasks": args.primes, "tiny_jobs": args.tiny,
            "start_methods": sorted(start_methods),
            "server": "threads of the calling process, 127.0.0.1, random port and key; workers over TCP",
        },  # fmt: skip
        "primes": {
            "serial_seconds_median": round(med["serial_primes"], 4),
            "run_map_seconds_median": round(med["queue_primes"], 4),
            "pool_seconds_median": round(med["pool_primes"], 4),
            "speedup_run_map_median": round(statistics.median(speedups("queue_primes")), 3),
            "speedup_pool_median": round(statistics.median(speedups("pool_primes")), 3),
            "note": "speedups are medians of per-repeat ratios (serial and queue run back to back)",
            "runs_seconds": {k: [round(x, 4) for x in runs[k]] for k in ("serial_primes", "queue_primes", "pool_primes")},
        },
        "tiny_jobs": {
            "jobs_per_second_run_map_median": round(args.tiny / med["tiny_batch1"]),
            "jobs_per_second_pool_median": round(args.tiny / med["pool_tiny_batch1"]),
            "jobs_per_second_run_map_batch16_median": round(args.tiny / med["tiny_batch16"]),
            "runs_seconds": {k: [round(x, 4) for x in runs[k]] for k in ("tiny_batch1", "pool_tiny_batch1", "tiny_batch16")},
            "note": "run_map: worker start-up, submit, every job's round trip and collection; pool: all but start-up",
        },
        "reference": {"book": "2 local consumers: primes 1.85x faster than serial, ~4,400 tiny jobs/s"},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"primes x{args.primes}: serial {med['serial_primes']:.3f} s; manager-queue with {P} processes: "
        f"run_map {med['queue_primes']:.3f} s ({result['primes']['speedup_run_map_median']:.2f}x), "
        f"pool {med['pool_primes']:.3f} s ({result['primes']['speedup_pool_median']:.2f}x). "
        f"Tiny jobs: run_map {result['tiny_jobs']['jobs_per_second_run_map_median']} jobs/s, "
        f"pool {result['tiny_jobs']['jobs_per_second_pool_median']} jobs/s, "
        f"run_map batch 16 {result['tiny_jobs']['jobs_per_second_run_map_batch16_median']} jobs/s. "
        f"Wrote {args.output}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
