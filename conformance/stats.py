"""Small statistics for timing checks: the Mann-Whitney U test (normal approximation, tie-corrected)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median


@dataclass(frozen=True)
class Comparison:
    u: float
    p_value: float  # two-sided
    median_a: float
    median_b: float

    @property
    def median_gap(self) -> float:
        return abs(self.median_a - self.median_b)


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> Comparison:
    """Do ``a`` and ``b`` come from one distribution? Two-sided p-value; suitable from ~20 samples each."""
    n1, n2 = len(a), len(b)
    if n1 == 0 or n2 == 0:
        raise ValueError("both samples need values")
    pooled = sorted([(value, 0) for value in a] + [(value, 1) for value in b])
    ranks = [0.0] * len(pooled)
    tie_term = 0.0
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        rank = (i + j) / 2 + 1  # average rank of the tied run
        for k in range(i, j + 1):
            ranks[k] = rank
        t = j - i + 1
        tie_term += t**3 - t
        i = j + 1
    rank_sum_a = sum(rank for rank, (_, group) in zip(ranks, pooled, strict=True) if group == 0)
    u = rank_sum_a - n1 * (n1 + 1) / 2
    n = n1 + n2
    variance = n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1)))
    if variance <= 0:
        return Comparison(u, 1.0, median(a), median(b))
    z = (abs(u - n1 * n2 / 2) - 0.5) / math.sqrt(variance)  # continuity correction
    p_value = math.erfc(max(z, 0.0) / math.sqrt(2))
    return Comparison(u, min(1.0, p_value), median(a), median(b))
