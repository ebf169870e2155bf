"""Where a contender closes the gap between two shops: the index's three-way view (issue 18).

For each experiment that ran, applicable, on a `baseline` shop, a `contender` and a `target` (by
default the plain sync shop, the resilient sync shop and the async shop), and each metric of
METRICS, the share of the baseline -> target difference the contender covers:

    closed = (contender - baseline) / (target - baseline)

1 (or more) means the contender does as well as the target, 0 no better than the baseline, a
negative share worse than the baseline. A difference between baseline and target smaller than the
metric's `tolerance` is no gap (None). Pure: reads results dicts only.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.experiment.metrics import lookup

BASELINE, CONTENDER, TARGET = "sync", "sync-resilient", "async"

#: (metric, label, tolerance): the difference below which two shops are level
METRICS: tuple[tuple[str, str, float], ...] = (
    ("availability.overall", "accepted, overall", 0.02),
    ("availability.in_faults", "accepted during faults", 0.02),
    ("latency_ms.response.p99", "customer's wait p99 (ms)", 50.0),
)


@dataclass(frozen=True)
class Gap:
    experiment: str
    metric: str
    label: str
    values: tuple[float, float, float]     # baseline, contender, target
    closed: float | None                   # the share of the gap the contender covers; None: no gap


def words(closed: float | None) -> str:
    """The share in words: closes the gap, closes part of it, cannot close it, widens it, no gap."""
    if closed is None:
        return "no gap"
    if closed >= 0.8:
        return "closes the gap"
    if closed >= 0.2:
        return "closes part of it"
    if closed > -0.2:
        return "cannot close it"
    return "is worse than the baseline"


def gaps(results: Mapping[str, Mapping[str, dict[str, Any]]], baseline: str = BASELINE,
         contender: str = CONTENDER, target: str = TARGET) -> list[Gap]:
    """The gaps of every experiment of `results` ({experiment: {shop: results dict}}) that ran, and
    was applicable, on all three shops; metrics a run lacks are left out."""
    found = []
    for experiment, shops in results.items():
        runs = [shops.get(name) for name in (baseline, contender, target)]
        if any(r is None or r.get("applicable") is False for r in runs):
            continue
        for metric, label, tolerance in METRICS:
            values = [lookup(r, metric) for r in runs if r is not None]
            if len(values) != 3 or not all(isinstance(v, (int, float)) for v in values):
                continue
            b, c, t = (float(v) for v in values)
            closed = None if abs(t - b) < tolerance else round((c - b) / (t - b), 2)
            found.append(Gap(experiment, metric, label, (b, c, t), closed))
    return found
