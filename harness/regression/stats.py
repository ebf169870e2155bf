"""Summary statistics over repeated runs: mean and a 95% confidence interval (Student's t).

Pure functions; `chaoscafe run --repeat N` and the report use them. With n runs the interval is
mean ± t(0.975, n-1) · s / sqrt(n), s the sample standard deviation. One run has no interval.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# two-sided 95% quantiles t(0.975, df) for df = 1..30 (any statistics textbook's t table)
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
         2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
         2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)
_T975_LARGE = ((40, 2.021), (60, 2.000), (120, 1.980))
Z975 = 1.960


def t975(df: int) -> float:
    """The two-sided 95% quantile of Student's t with `df` degrees of freedom (df >= 1);
    between table rows the next smaller df is used, which errs on the wide side."""
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    value = _T975[-1]
    for at, t in _T975_LARGE:
        if df >= at:
            value = t
    return value if df < 1000 else Z975


@dataclass(frozen=True)
class Interval:
    """Mean of n values and its 95% confidence interval (low == high == mean when n == 1)."""

    n: int
    mean: float
    low: float
    high: float
    stdev: float

    def overlaps(self, other: "Interval") -> bool:
        return self.low <= other.high and other.low <= self.high

    def to_dict(self) -> dict[str, float | int]:
        return {"n": self.n, "mean": self.mean, "ci_low": self.low, "ci_high": self.high, "stdev": self.stdev}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Interval":
        return cls(int(data["n"]), float(data["mean"]), float(data["ci_low"]), float(data["ci_high"]),
                   float(data.get("stdev", 0.0)))


def mean_ci(values: Sequence[float]) -> Interval:
    """Mean and 95% CI of `values` (at least one)."""
    if not values:
        raise ValueError("mean_ci needs at least one value")
    n = len(values)
    mean = math.fsum(values) / n
    if n == 1:
        return Interval(1, mean, mean, mean, 0.0)
    stdev = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = t975(n - 1) * stdev / math.sqrt(n)
    return Interval(n, mean, mean - half, mean + half, stdev)


def significant(a: Interval | None, b: Interval | None) -> bool:
    """Whether two shops differ significantly: both intervals exist, come from at least two
    runs each, and do not overlap. Conservative (overlapping 95% intervals can still differ)."""
    if a is None or b is None or a.n < 2 or b.n < 2:
        return False
    return not a.overlaps(b)
