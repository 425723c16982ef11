"""Summaries of repeated timings: median, min, max, and a 95% interval for the median.

The interval is distribution-free: it comes from order statistics and needs no assumption about
the shape of the timing distribution (which on a shared machine is skewed, with a long right tail).
For ``n`` sorted samples ``x(1) <= ... <= x(n)``, the interval ``[x(k), x(n+1-k)]`` holds the true
median with probability ``1 - 2 * P(B <= k - 1)``, ``B ~ Binomial(n, 1/2)``. We take the largest
``k`` whose coverage is still at least 95%.

With few repeats no such ``k`` exists: with 5 samples even ``[min, max]`` covers the median only
with probability 1 - 2/32 = 93.75%, with 3 samples 75%, with 1 sample not at all. Then the interval
is ``[min, max]`` and ``coverage`` says what it really is; ``wide`` is set. Six repeats are the
fewest for a true 95% interval (``[min, max]``, coverage 96.9%); nine give ``[x(2), x(8)]``.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from typing import Sequence

CI_METHOD = "order-statistics (binomial, distribution-free) interval for the median"
TARGET_COVERAGE = 0.95


@dataclass(frozen=True)
class Summary:
    n: int
    median: float
    min: float
    max: float
    mean: float
    ci_low: float
    ci_high: float
    coverage: float  # the interval's real confidence level (>= 0.95 unless ``wide``)
    wide: bool  # too few samples for a 95% interval: [min, max] with lower coverage

    def to_dict(self) -> dict:
        return asdict(self)


def _binom_cdf_half(k: int, n: int) -> float:
    """P(B <= k) for B ~ Binomial(n, 1/2)."""
    if k < 0:
        return 0.0
    return sum(math.comb(n, i) for i in range(0, min(k, n) + 1)) / 2**n


def median_interval_rank(n: int, level: float = TARGET_COVERAGE) -> tuple[int, float]:
    """``(k, coverage)``: the interval ``[x(k), x(n+1-k)]`` (1-based) and its coverage.

    ``k`` is the largest rank whose coverage is at least ``level``; when even ``k = 1`` falls
    short (fewer than 6 samples for 95%), ``k = 1`` and the smaller coverage is returned.
    """
    if n < 1:
        raise ValueError("need at least one sample")
    best_k, best_cov = 1, 1.0 - 2.0 * _binom_cdf_half(0, n)
    for k in range(1, (n + 1) // 2 + 1):
        coverage = 1.0 - 2.0 * _binom_cdf_half(k - 1, n)
        if coverage >= level:
            best_k, best_cov = k, coverage
        else:
            break
    return best_k, max(best_cov, 0.0)


def summarize(samples: Sequence[float], level: float = TARGET_COVERAGE) -> Summary:
    """Median, min, max, mean and the distribution-free interval for the median."""
    values = sorted(float(s) for s in samples)
    if not values:
        raise ValueError("need at least one sample")
    n = len(values)
    k, coverage = median_interval_rank(n, level)
    return Summary(
        n=n,
        median=statistics.median(values),
        min=values[0],
        max=values[-1],
        mean=statistics.fmean(values),
        ci_low=values[k - 1],
        ci_high=values[n - k],
        coverage=round(coverage, 6),
        wide=coverage < level,
    )


def ratio_interval(num: Summary, den: Summary) -> tuple[float, float]:
    """A conservative interval for ``median(num) / median(den)`` from the two medians' intervals.

    Both ends are taken at the extremes (``num.low / den.high``, ``num.high / den.low``), so the
    interval is at least as wide as either; its coverage is at least ``c1 + c2 - 1`` (Bonferroni).
    """
    low = num.ci_low / den.ci_high if den.ci_high > 0 else math.inf
    high = num.ci_high / den.ci_low if den.ci_low > 0 else math.inf
    return low, high
