"""Latency distributions with HdrHistogram semantics (1 µs .. 1 hour, 3 significant digits), in ms.

Percentiles and max are exactly what `HdrHistogram.get_value_at_percentile` / `get_max_value`
return for the same values (the highest value equivalent to the one at HDR's target rank), but are
found from the sorted values rather than by scanning HDR's ~23,000 buckets in Python, which made
per-bucket series too slow. The mean is exact. Values below 1 µs (including negative ones) count
as 1 µs, values above an hour as an hour. Everything reported is in ms, rounded to 3 decimals.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3_600_000_000
SIGNIFICANT_DIGITS = 3
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9}
SUMMARY_KEYS = ("count", "mean", *PERCENTILES, "max")

# Never recorded into: used only for its bucket arithmetic (which values are equivalent).
_SHAPE = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def microseconds(values_ms: Iterable[float]) -> list[int]:
    """`values_ms` in whole microseconds, clamped to the histogram's range, sorted."""
    return sorted(min(HIGHEST_US, max(LOWEST_US, round(v * 1000))) for v in values_ms)


def _ms(us: float) -> float:
    return round(us / 1000, 3)


def percentile_ms(sorted_us: Sequence[int], percentile: float) -> float | None:
    """HdrHistogram's value at `percentile` (0 < percentile <= 100) in ms; None when empty."""
    if not sorted_us:
        return None
    rank = max(1, int(min(percentile, 100.0) * len(sorted_us) / 100 + 0.5))  # HDR's target count
    return _ms(_SHAPE.get_highest_equivalent_value(sorted_us[rank - 1]))


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
