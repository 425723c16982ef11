"""The automatic chunk size for ``load_balanced_view().map``.

Why chunks matter. With the default ``chunksize=1`` every element is one task, and every task
pays a round trip: client -> scheduler -> engine -> scheduler/hub -> client, each hop a Python
process that (de)serialises a message. With the scheduler's default high-water mark of 1 an
engine is idle from the moment it sends a result until its next task arrives. On a 2-core machine
that round trip costs a few milliseconds, the same as one task of the primes workload: the map then
runs slower than a plain loop. A chunk of ``c`` elements pays that overhead once for ``c`` elements.

Why not always one big chunk per engine. Chunks are contiguous slices of the input, handed out in
order, each to the first engine that is free. The map ends when the last engine finishes, so the
bigger the chunks, the more an engine may idle at the end while another works through its last
chunk; when the work grows along the input (primes: later tasks are dearer) the last chunk is the
dearest, and when an engine computes slower than the others for a while (it shares its core with
the controller, the client or someone else's work) one chunk per engine leaves the others waiting
for it. Smaller chunks balance better.

The model. From what the probe measured through the very view that will run the map
(:func:`ipcluster_kit.bench.probe.probe_costs`, see :class:`ClusterCosts`):

- ``o``: the overhead of one chunk as an engine sees it: ``m`` no-op tasks at chunk size 1 take
  ``W`` seconds on ``E`` engines, so ``o = W * E / m``;
- ``L``: what one map costs once, beyond ``o`` (the first dispatch and the last result back);
- ``s``: how fast the engines compute, all at once, against the client computing alone (the same
  calibration task timed on both sides; 1.0 when not measured; above 1 for slower hosts);

and ``d_i``: the duration of each task, from the serial reference run (timed task by task, the
shorter of two passes), taken as the running median of its neighbourhood (``SMOOTHING_WINDOW`` = 5
tasks), scaled so that the total stays the measured one: one run's per-task times are noisy (16
identical ``sum`` tasks measure 0.15 to 0.22 s), and the model should follow the trend along the
input (primes grow), not place chunk borders around chance spikes;

the map with chunk size ``c`` is simulated as the view runs it. ipyparallel cuts the input into
``ceil(n / c)`` near-equal contiguous parts (so 1000 elements at ``c = 119`` are nine parts of
111-112, the last the dearest, not eight of 119 and a cheap one of 48); part ``j`` costs
``o + s * sum(d_i)`` over its elements and goes, in order, to the engine that becomes free first.
Engines are not equally fast for the whole map on a shared machine, so the simulation is run once
per engine with that engine ``SPEED_SPREAD`` slower than the others (their mean speed still the
measured ``s``), and the predicted time is ``L`` plus the mean of those makespans: the balancing
reserve, priced. One chunk per engine pays the slow engine's whole delay, smaller chunks let the
others take over part of its share, and the round trips they cost are in ``o``.

Every chunk size from 1 to ``ceil(n / E)`` (one chunk per engine) is a candidate, one per distinct
number of parts (sizes giving the same number of parts give the same map). The fastest wins; among
chunk sizes within ``TIE_TOLERANCE`` of the fastest the largest is taken (fewer messages: less CPU
for the client and the controller, which on a small machine share the cores with the engines).

Without per-task durations (only a mean ``d``), the closed form of the same model is used: total
time ``T(c) ~ n*d/E + (n/c)*o/E + c*d/2`` (work, overhead, and on average half a chunk of idling
at the end), minimised at ``c* = sqrt(2*n*o / (E*d))``, then clipped to ``[1, ceil(n / E)]``.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import asdict, dataclass
from typing import Iterable, Sequence

TIE_TOLERANCE = 0.01
SMOOTHING_WINDOW = 5
# How much slower than the others one engine computes over a map, the engines' mean speed kept:
# with one contiguous block per engine (DirectView.map on 16 equal sum tasks, 9 runs on the quiet
# reference machine) the busier engine worked 0.3-14% longer than the mean of the two, 3.2% on
# average, which is what one engine 6% slower than the other gives. benchmarks/README.md has more.
SPEED_SPREAD = 0.06
# Beyond this many candidates (inputs of tens of thousands of elements) a geometric grid is tried.
MAX_CANDIDATES = 400


@dataclass(frozen=True)
class ClusterCosts:
    """What a probe of the view measured (see the module docstring)."""

    overhead_seconds: float  # o: per chunk, as one engine sees it
    latency_seconds: float = 0.0  # L: once per map, beyond o
    engine_speed: float = 1.0  # s: engine time / serial time for the same work

    def __post_init__(self) -> None:
        for name in ("overhead_seconds", "latency_seconds"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not math.isfinite(self.engine_speed) or self.engine_speed <= 0:
            raise ValueError(f"engine_speed must be a finite number > 0, got {self.engine_speed!r}")


@dataclass(frozen=True)
class ChunkChoice:
    chunksize: int
    predicted_seconds: float  # the model's time for the whole map at this chunk size
    predicted_seconds_chunk1: float  # ... and at chunk size 1, for comparison
    overhead_seconds: float  # o: per-chunk overhead one engine sees
    mean_task_seconds: float
    max_chunksize: int  # the largest candidate: ceil(n / E), one chunk per engine
    method: str  # "simulation" or "closed-form"
    parts: int = 0  # ceil(n / chunksize): the tasks the map sends
    latency_seconds: float = 0.0  # L
    engine_speed: float = 1.0  # s
    speed_spread: float = 0.0  # how much slower one engine was assumed to be

    def to_dict(self) -> dict:
        return asdict(self)


def max_chunksize(n: int, engines: int, min_chunks_per_engine: int = 1) -> int:
    """The largest chunk size that still gives every engine ``min_chunks_per_engine`` chunks."""
    if n <= 0:
        return 1
    return max(1, math.ceil(n / (max(1, engines) * max(1, min_chunks_per_engine))))


def parts_of(n: int, chunksize: int) -> int:
    """How many tasks ``map(chunksize=c)`` sends for ``n`` elements: ``ceil(n / c)``."""
    return -(-n // chunksize) if n > 0 else 0


def canonical_chunksize(n: int, chunksize: int) -> int:
    """The smallest chunk size giving the same parts as ``chunksize`` (so the same map)."""
    if n <= 0:
        return 1
    return -(-n // parts_of(n, max(1, chunksize)))


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
    parts = parts_of(n, chunksize)
    base, extra = divmod(n, parts)
    bounds, low = [], 0
    for p in range(parts):
        high = low + base + (1 if p < extra else 0)
        bounds.append((low, high))
        low = high
    return bounds


def _prefix_sums(task_seconds: Sequence[float]) -> list[float]:
    sums = [0.0]
    for d in task_seconds:
        sums.append(sums[-1] + max(float(d), 0.0))
    return sums


def _makespan(prefix: Sequence[float], engines: int, bounds: Iterable[tuple[int, int]], overhead: float,
              slowdown: Sequence[float]) -> float:  # fmt: skip
    """When the last engine finishes: chunks in order, each to the engine free first (lowest id on a tie)."""
    free = [(0.0, e) for e in range(engines)]
    finish = 0.0
    for low, high in bounds:
        t, e = heapq.heappop(free)
        t += overhead + (prefix[high] - prefix[low]) * slowdown[e]
        finish = max(finish, t)
        heapq.heappush(free, (t, e))
    return finish


def simulate_map(
    task_seconds: Sequence[float], engines: int, chunksize: int, overhead_seconds: float, style: str = "ipyparallel",
    *, slowdown: Sequence[float] | None = None,
) -> float:  # fmt: skip
    """Predicted time of a load-balanced map: contiguous chunks, in order, to the first free engine.

    ``slowdown``: one factor per engine on its work (default: all 1.0).
    """
    engines = max(1, engines)
    factors = list(slowdown) if slowdown is not None else [1.0] * engines
    if len(factors) != engines:
        raise ValueError(f"slowdown needs one factor per engine ({engines}), got {len(factors)}")
    prefix = _prefix_sums(task_seconds)
    return _makespan(prefix, engines, chunk_bounds(len(task_seconds), chunksize, style), overhead_seconds, factors)


def _scenarios(engines: int, spread: float) -> list[list[float]]:
    """One engine ``spread`` slower than the others (each in turn, at most 8 of them), the factors
    scaled to average 1.0: the probe measured the engines' mean speed, this is how they differ."""
    if spread <= 0 or engines < 2:
        return [[1.0] * engines]
    mean = 1.0 + spread / engines
    out = []
    for slow in sorted({round(i * (engines - 1) / 7) for i in range(8)} if engines > 8 else range(engines)):
        factors = [1.0 / mean] * engines
        factors[slow] = (1.0 + spread) / mean
        out.append(factors)
    return out


def smooth(task_seconds: Sequence[float], window: int = SMOOTHING_WINDOW) -> list[float]:
    """Running median over ``window`` neighbouring tasks (shorter at the ends), scaled to the same total.

    The median follows the trend and ignores a chance spike; the scaling keeps the work: the median
    of skewed durations is below their mean (exponential durations: 0.69 of it), and a model fed
    the bare running median of the heterogeneous workload predicted 15% too little work.
    """
    import statistics

    values = [max(float(d), 0.0) for d in task_seconds]
    half = max(window, 1) // 2
    medians = [statistics.median(values[max(0, i - half) : i + half + 1]) for i in range(len(values))]
    total, smoothed = math.fsum(values), math.fsum(medians)
    return [m * total / smoothed for m in medians] if smoothed > 0 else values


class MapModel:
    """The model of one map: smoothed task durations, ``E`` engines, the probe's costs.

    ``predict(c)`` is the predicted time at chunk size ``c``; ``choose()`` the automatic choice.
    """

    def __init__(self, task_seconds: Sequence[float], engines: int, costs: ClusterCosts,
                 speed_spread: float = SPEED_SPREAD) -> None:  # fmt: skip
        if engines < 1:
            raise ValueError("engines must be >= 1")
        if not task_seconds:
            raise ValueError("the model needs at least one task duration")
        if not math.isfinite(speed_spread) or speed_spread < 0:
            raise ValueError(f"speed_spread must be a finite number >= 0, got {speed_spread!r}")
        self.n = len(task_seconds)
        self.engines = engines
        self.costs = costs
        self.speed_spread = speed_spread
        self.mean_task_seconds = math.fsum(max(float(d), 0.0) for d in task_seconds) / self.n
        self._prefix = _prefix_sums([d * costs.engine_speed for d in smooth(task_seconds)])
        self._scenarios = _scenarios(engines, speed_spread)
        self._memo: dict[int, float] = {}

    @property
    def max_chunksize(self) -> int:
        return max_chunksize(self.n, self.engines)

    def predict(self, chunksize: int) -> float:
        """Predicted seconds for the whole map at ``chunksize`` (any size >= 1; beyond n is n)."""
        parts = parts_of(self.n, max(1, chunksize))
        if parts not in self._memo:
            bounds = chunk_bounds(self.n, canonical_chunksize(self.n, chunksize))
            spans = [_makespan(self._prefix, self.engines, bounds, self.costs.overhead_seconds, f) for f in self._scenarios]
            self._memo[parts] = self.costs.latency_seconds + math.fsum(spans) / len(spans)
        return self._memo[parts]

    def lower_bound(self, chunksize: int) -> float:
        """No map at ``chunksize`` is faster: all work and all round trips spread evenly."""
        parts = parts_of(self.n, max(1, chunksize))
        work = self._prefix[-1] + parts * self.costs.overhead_seconds
        return self.costs.latency_seconds + work / self.engines

    def candidates(self) -> list[int]:
        """Every distinct map from chunk size 1 to one chunk per engine (a geometric grid when too many)."""
        return candidate_chunksizes(self.n, self.engines)

    def choose(self, tolerance: float = TIE_TOLERANCE) -> ChunkChoice:
        """The fastest candidate; within ``tolerance`` of it, the largest."""
        predicted: dict[int, float] = {}
        best = math.inf
        for c in sorted(self.candidates(), reverse=True):  # few parts first: cheap, and a bound to prune with
            if self.lower_bound(c) > best * (1.0 + tolerance):
                continue
            predicted[c] = self.predict(c)
            best = min(best, predicted[c])
        chosen = max(c for c, t in predicted.items() if t <= best * (1.0 + tolerance))
        return ChunkChoice(
            chunksize=chosen, predicted_seconds=predicted[chosen], predicted_seconds_chunk1=self.predict(1),
            overhead_seconds=self.costs.overhead_seconds, mean_task_seconds=self.mean_task_seconds,
            max_chunksize=self.max_chunksize, method="simulation", parts=parts_of(self.n, chosen),
            latency_seconds=self.costs.latency_seconds, engine_speed=self.costs.engine_speed,
            speed_spread=self.speed_spread,
        )  # fmt: skip


def candidate_chunksizes(n: int, engines: int, limit: int = MAX_CANDIDATES) -> list[int]:
    """Chunk sizes from 1 to ``ceil(n / engines)``, one per distinct number of parts, ascending.

    Each is the smallest size with its number of parts. With more than ``limit`` of them, a
    geometric grid of about ``limit`` (always with 1 and the largest).
    """
    if n <= 0:
        return [1]
    upper = max_chunksize(n, engines)
    sizes = sorted({canonical_chunksize(n, c) for c in range(1, upper + 1)}) if upper <= 4 * limit else []
    if sizes and len(sizes) <= limit:
        return sizes
    return geometric_chunksizes(n, engines, limit)


def geometric_chunksizes(n: int, engines: int, points: int) -> list[int]:
    """About ``points`` chunk sizes spaced evenly on a log scale from 1 to ``ceil(n / engines)``.

    Each is made canonical (the smallest size with its number of parts) and duplicates dropped, so
    no two give the same map; 1 and ``ceil(n / engines)`` are always in.
    """
    upper = max_chunksize(n, engines)
    points = max(2, points)
    if upper <= 1:
        return [1]
    ratio = upper ** (1.0 / (points - 1))
    raw = {1, upper} | {round(ratio**i) for i in range(points)}
    return sorted({canonical_chunksize(n, max(1, min(c, upper))) for c in raw})


def closed_form_chunksize(n: int, engines: int, overhead_seconds: float, mean_task_seconds: float) -> float:
    """``sqrt(2*n*o / (E*d))``: the minimum of ``n*d/E + (n/c)*o/E + c*d/2`` (not clipped)."""
    if mean_task_seconds <= 0:
        return math.inf
    return math.sqrt(2.0 * n * max(overhead_seconds, 0.0) / (max(1, engines) * mean_task_seconds))


def choose_chunksize(
    task_seconds: Sequence[float] | None,
    engines: int,
    overhead_seconds: float | ClusterCosts,
    *,
    n: int | None = None,
    mean_task_seconds: float | None = None,
    speed_spread: float = SPEED_SPREAD,
) -> ChunkChoice:
    """The chunk size for a map of ``n`` tasks on ``engines`` engines (see the module docstring).

    Give ``task_seconds`` (every task's duration) for the simulation, or ``n`` and
    ``mean_task_seconds`` for the closed form. ``overhead_seconds`` is ``o`` alone or the probe's
    whole :class:`ClusterCosts`.
    """
    if engines < 1:
        raise ValueError("engines must be >= 1")
    costs = overhead_seconds if isinstance(overhead_seconds, ClusterCosts) else ClusterCosts(max(float(overhead_seconds), 0.0))
    if task_seconds is not None and len(task_seconds) > 0:
        return MapModel(task_seconds, engines, costs, speed_spread).choose()
    if not n or mean_task_seconds is None:
        raise ValueError("give task_seconds, or n and mean_task_seconds")
    mean = max(float(mean_task_seconds), 0.0)
    d = mean * costs.engine_speed
    upper = max_chunksize(n, engines)
    ideal = closed_form_chunksize(n, engines, costs.overhead_seconds, d)
    chosen = int(min(max(round(ideal) if math.isfinite(ideal) else upper, 1), upper))

    def model(c: int) -> float:
        return costs.latency_seconds + n * d / engines + (n / c) * costs.overhead_seconds / engines + c * d / 2.0

    return ChunkChoice(chosen, model(chosen), model(1), costs.overhead_seconds, mean, upper, "closed-form",
                       parts_of(n, chosen), costs.latency_seconds, costs.engine_speed, 0.0)  # fmt: skip


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
