"""The user function of ``bench_sweep.py``: irregular tasks that a user might bring.

``walk(seed)`` runs a random walk whose length is drawn from the seed (from a fraction of a millisecond
to ~20 ms of pure Python, ~2 ms typically), so the cost of a task is neither equal nor growing along the
input: the sweep's fourth case, next to equal (sum), growing (primes) and exponential (hetero).
Used as ``--function sweep_tasks:walk --args benchmarks/sweep_tasks_args.json`` (run from
``benchmarks/``, or with it on ``PYTHONPATH``).
"""

from __future__ import annotations

import random


def walk(seed: int) -> int:
    """Steps until a random walk of a seed-drawn length ends: deterministic for a seed."""
    rng = random.Random(seed)
    steps = int(rng.lognormvariate(10.3, 0.8))  # median ~30,000 steps (~2 ms here), long right tail
    position = 0
    for _ in range(steps):
        position += 1 if rng.random() < 0.5 else -1
    return position
