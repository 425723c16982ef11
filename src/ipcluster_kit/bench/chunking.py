"""The automatic chunk size for ``load_balanced_view().map``.

Why chunks matter. With the default ``chunksize=1`` every element is one task, and every task
pays a round trip: client -> scheduler -> engine -> scheduler/hub -> client, each hop a Python
process that (de)serialises a message. With the scheduler's default high-water mark of 1 an
engine is idle from the moment it sends a result until its next task arrives. On a 2-core machine
that round trip costs a few milliseconds, the same as one task of the primes workload: the map then
runs slower than a plain loop. A chunk of ``c`` elements pays that overhead once for ``c`` elements.

Why not one big chunk per engine. Chunks are contiguous slices of the input, handed out in order,
each to the first engine that is free. The map ends when the last engine finishes, so the bigger
the chunks, the more an engine may idle at the end while another works through its last chunk;
and when the work grows along the input (primes: later tasks are dearer), the last chunk is the
dearest. Smaller chunks balance better.

The model. From two measurements,

- ``o``: the overhead of one chunk as an engine sees it, from no-op tasks at chunk size 1 through
  the very view that will run the map: ``m`` no-op tasks take ``W`` seconds on ``E`` engines, so
  ``o = W * E / m`` (each engine spends ``o`` per task on nothing but the round trip);
- ``d_i``: the duration of each task, from the serial reference run (timed task by task), taken
  as the running median of its neighbourhood (``SMOOTHING_WINDOW`` = 5 tasks): one run's per-task
  times are noisy (16 identical ``sum`` tasks measure 0.15 to 0.22 s), and the model should
  follow the trend along the input (primes grow), not place chunk borders around chance spikes,

the map with chunk size ``c`` is simulated as the view runs it. ipyparallel cuts the input into
``ceil(n / c)`` near-equal contiguous parts (so 1000 elements at ``c = 119`` are nine parts of
111-112, the last the dearest, not eight of 119 and a cheap one of 48); part ``j`` costs
``o + sum(d_i)`` over its elements and goes, in order, to the engine that becomes free first. The
predicted time is when the last engine finishes.

Every chunk size from 1 up to ``ceil(n / (k * E))`` is tried, one per distinct number of parts
(``k = min_chunks_per_engine``, default 4: at least four chunks per engine stay in play, a reserve
against engines that run slower than the serial run said, which the simulation cannot foresee).
The fastest wins; among chunk sizes within 1% of the fastest the largest is taken (fewer messages:
less CPU for the client and the controller, which on a small machine share the cores with the
engines).

Without per-task durations (only a mean ``d``), the closed form of the same model is used: total
time ``T(c) ~ n*d/E + (n/c)*o/E + c*d/2`` (work, overhead, and on average half a chunk of idling
at the end), minimised at ``c* = sqrt(2*n*o / (E*d))``, then clipped to the same bounds.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import asdict, dataclass
from typing import Sequence

MIN_CHUNKS_PER_ENGINE = 4
TIE_TOLERANCE = 0.01
SMOOTHING_WINDOW = 5


@dataclass(frozen=True)
class ChunkChoice:
    chunksize: int
    predicted_seconds: float  # the model's time for the whole map at this chunk size
    predicted_seconds_chunk1: float  # ... and at chunk size 1, for comparison
    overhead_seconds: float  # o: per-chunk overhead one engine sees
    mean_task_seconds: float
    max_chunksize: int  # the balance bound ceil(n / (k * E))
    method: str  # "simulation" or "closed-form"

    def to_dict(self) -> dict:
        return asdict(self)


def max_chunksize(n: int, engines: int, min_chunks_per_engine: int = MIN_CHUNKS_PER_ENGINE) -> int:
    """The largest chunk size that still gives every engine ``min_chunks_per_engine`` chunks."""
    if n <= 0:
        return 1
    return max(1, math.ceil(n / (max(1, engines) * max(1, min_chunks_per_engine))))


def chunk_bounds(n: int, chunksize: int, style: str = "ipyparallel") -> list[tuple[int, int]]:
    """The ``[low, high)`` slices a map of ``n`` elements sends as tasks.

    ``"ipyparallel"``: ``LoadBalancedView.map(chunksize=c)`` makes ``ceil(n / c)`` parts and cuts
    the input into that many near-equal contiguous slices (``Map.getPartition``: the first
    ``n % parts`` one longer), so ``c`` only sets the number of parts: 1000 elements at ``c=119``
    are 9 slices of 111-112, not 8 of 119 and one of 48. ``"fixed"``: slices of exactly ``c``
    and a shorter last one, as ``multiprocessing.Pool.map`` does.
    """
    if chunksize < 1:
        raise ValueError("chunksize must be >= 1")
    if n <= 0:
        return []
    if style == "fixed":
        return [(lo, min(lo + chunksize, n)) for lo in range(0, n, chunksize)]
    if style != "ipyparallel":
        raise ValueError(f"unknown chunk style {style!r}")
    parts = -(-n // chunksize)
    base, extra = divmod(n, parts)
    bounds, low = [], 0
    for p in range(parts):
        high = low + base + (1 if p < extra else 0)
        bounds.append((low, high))
        low = high
    return bounds


def simulate_map(
    task_seconds: Sequence[float], engines: int, chunksize: int, overhead_seconds: float, style: str = "ipyparallel"
) -> float:
    """Predicted time of a load-balanced map: contiguous chunks, in order, to the first free engine."""
    free = [0.0] * max(1, engines)
    heapq.heapify(free)
    finish = 0.0
    for low, high in chunk_bounds(len(task_seconds), chunksize, style):
        cost = overhead_seconds + math.fsum(task_seconds[low:high])
        t = heapq.heappop(free) + cost
        finish = max(finish, t)
        heapq.heappush(free, t)
    return finish


def smooth(task_seconds: Sequence[float], window: int = SMOOTHING_WINDOW) -> list[float]:
    """Running median over ``window`` neighbouring tasks (shorter at the ends)."""
    import statistics

    values = [max(float(d), 0.0) for d in task_seconds]
    half = max(window, 1) // 2
    return [statistics.median(values[max(0, i - half) : i + half + 1]) for i in range(len(values))]


def closed_form_chunksize(n: int, engines: int, overhead_seconds: float, mean_task_seconds: float) -> float:
    """``sqrt(2*n*o / (E*d))``: the minimum of ``n*d/E + (n/c)*o/E + c*d/2`` (not clipped)."""
    if mean_task_seconds <= 0:
        return math.inf
    return math.sqrt(2.0 * n * max(overhead_seconds, 0.0) / (max(1, engines) * mean_task_seconds))


def choose_chunksize(
    task_seconds: Sequence[float] | None,
    engines: int,
    overhead_seconds: float,
    *,
    n: int | None = None,
    mean_task_seconds: float | None = None,
    min_chunks_per_engine: int = MIN_CHUNKS_PER_ENGINE,
) -> ChunkChoice:
    """The chunk size for a map of ``n`` tasks on ``engines`` engines (see the module docstring).

    Give ``task_seconds`` (every task's duration) for the simulation, or ``n`` and
    ``mean_task_seconds`` for the closed form.
    """
    if engines < 1:
        raise ValueError("engines must be >= 1")
    overhead = max(float(overhead_seconds), 0.0)
    if task_seconds is not None and len(task_seconds) > 0:
        durations = smooth(task_seconds)
        n = len(durations)
        mean = math.fsum(max(float(d), 0.0) for d in task_seconds) / n
        upper = max_chunksize(n, engines, min_chunks_per_engine)
        # chunk sizes giving the same number of parts give the same map: try one of each
        by_parts: dict[int, int] = {}
        for c in range(1, upper + 1):
            by_parts.setdefault(-(-n // c), c)
        predicted = {c: simulate_map(durations, engines, c, overhead) for c in by_parts.values()}
        if 1 not in predicted:
            predicted[1] = simulate_map(durations, engines, 1, overhead)
        best = min(predicted.values())
        chosen = max(c for c, t in predicted.items() if t <= best * (1.0 + TIE_TOLERANCE))
        return ChunkChoice(chosen, predicted[chosen], predicted[1], overhead, mean, upper, "simulation")
    if not n or mean_task_seconds is None:
        raise ValueError("give task_seconds, or n and mean_task_seconds")
    mean = max(float(mean_task_seconds), 0.0)
    upper = max_chunksize(n, engines, min_chunks_per_engine)
    ideal = closed_form_chunksize(n, engines, overhead, mean)
    chosen = int(min(max(round(ideal) if math.isfinite(ideal) else upper, 1), upper))

    def model(c: int) -> float:
        return n * mean / engines + (n / c) * overhead / engines + c * mean / 2.0

    return ChunkChoice(chosen, model(chosen), model(1), overhead, mean, upper, "closed-form")


def dv_block_shares(task_seconds: Sequence[float], engines: int) -> list[float]:
    """The share of the total work in each of DirectView.map's contiguous blocks.

    ``DirectView.map`` cuts the input into ``engines`` contiguous blocks of (nearly) equal length,
    one per engine (the first ``n % engines`` blocks one element longer, as ipyparallel's
    ``Map.getPartition`` does); this says how unequal the blocks are in work.
    """
    n = len(task_seconds)
    total = math.fsum(task_seconds) or 1.0
    base, extra = divmod(n, max(1, engines))
    shares, low = [], 0
    for i in range(max(1, engines)):
        high = low + base + (1 if i < extra else 0)
        shares.append(math.fsum(task_seconds[low:high]) / total)
        low = high
    return shares
