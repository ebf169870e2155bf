"""Latency distributions with HdrHistogram semantics (1 µs .. 1 hour, 3 significant digits), in ms.

The percentile rule, the one the checkers, the report (tables, CSV, plots) and the benchmarks use:

    value_at(sorted_values, q)   the value at rank  max(1, floor(q/100 * n + 0.5))  of n sorted values
                                 (1-based; q clamped to 0..100: q=0 is the smallest value, q=100 the largest) — the
                                 target count of HdrHistogram's `getValueAtPercentile`, i.e. a nearest
                                 rank rounded half up, not the textbook ceil(q/100 * n) nearest rank
                                 (for n=60 values p99 is the 59th, where ceil would take the 60th);
    percentile_ms(sorted_us, q)  that value, for whole-µs values, reported the way HDR reports it: the
                                 highest value equivalent to it at 3 significant digits, in ms;
    percentile(values_ms, q)     the same from any ms values (what a checker, the report's timeline
                                 and a benchmark report as p50, p99, ...).

`percentile_ms` and `percentile` return None for no values. Percentiles and max are exactly what
`HdrHistogram.get_value_at_percentile` / `get_max_value` return for the same values, but are found
from the sorted values rather than by scanning HDR's ~23,000 buckets in Python, which made
per-bucket series too slow. The mean is exact. Values below 1 µs (including negative ones) count
as 1 µs, values above an hour as an hour. Everything reported is in ms, rounded to 3 decimals.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3_600_000_000
SIGNIFICANT_DIGITS = 3
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9}
SUMMARY_KEYS = ("count", "mean", *PERCENTILES, "max")

# Never recorded into: used only for its bucket arithmetic (which values are equivalent).
_SHAPE = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)

V = TypeVar("V", int, float)


def microseconds(values_ms: Iterable[float]) -> list[int]:
    """`values_ms` in whole microseconds, clamped to the histogram's range, sorted."""
    return sorted(min(HIGHEST_US, max(LOWEST_US, round(v * 1000))) for v in values_ms)


def _ms(us: float) -> float:
    return round(us / 1000, 3)


def value_at(sorted_values: Sequence[V], percentile: float) -> V:
    """The value at `percentile` (0..100) of `sorted_values` (ascending, any unit, at least one) by
    HDR's rank rule (see the module docstring): one of the values, not rounded to a bucket."""
    if not sorted_values:
        raise ValueError("value_at: no values")
    rank = max(1, int(min(percentile, 100.0) * len(sorted_values) / 100 + 0.5))  # HDR's target count
    return sorted_values[min(rank, len(sorted_values)) - 1]


def percentile_ms(sorted_us: Sequence[int], percentile: float) -> float | None:
    """HdrHistogram's value at `percentile` (0 < percentile <= 100) in ms; None when empty.

    `sorted_us` are whole microseconds in the histogram's range, ascending (as `microseconds` gives)."""
    if not sorted_us:
        return None
    return _ms(_SHAPE.get_highest_equivalent_value(value_at(sorted_us, percentile)))


def percentile(values_ms: Iterable[float], q: float) -> float | None:
    """HdrHistogram's value at percentile `q` (0 < q <= 100) of `values_ms` (ms, any order), in ms
    rounded to 3 decimals; None when empty. Equals `summary(values_ms)`'s pXX for the same values."""
    return percentile_ms(microseconds(values_ms), q)


def summary(values_ms: Iterable[float]) -> dict[str, float | int | None]:
    """{count, mean, p50, p90, p99, p999, max} in ms; all but count are None when empty."""
    us = microseconds(values_ms)
    if not us:
        return {"count": 0, **{key: None for key in SUMMARY_KEYS[1:]}}
    return {
        "count": len(us),
        "mean": _ms(sum(us) / len(us)),
        **{key: percentile_ms(us, p) for key, p in PERCENTILES.items()},
        "max": _ms(_SHAPE.get_highest_equivalent_value(us[-1])),
    }
