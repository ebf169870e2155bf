"""The backlog of orders waiting in the shop, as sampled in "backlog" records (`time`, `total`).

time_to_drain_s runs from the first sample at the maximum to the first later sample at 0: 0.0 when
the backlog never rose above 0, None when it never drained or there are no samples.
Always valid: the backlog is judged by expectations.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.checkers.base import CheckerResult, CheckOptions
from harness.checkers.timeline import t0
from harness.history import Record


def backlog_samples(history: Sequence[Record]) -> list[tuple[float, float]]:
    """(time, total) of every backlog sample with a reading, in time order."""
    return sorted((float(r["time"]), float(r["total"])) for r in list(history)
                  if r.get("type") == "backlog" and r.get("total") is not None)


def time_to_drain(samples: list[tuple[float, float]]) -> float | None:
    """Seconds from the first maximum to the next zero, for samples sorted by time."""
    if not samples:
        return None
    peak = max(total for _, total in samples)
    if peak == 0:
        return 0.0
    at = next(i for i, (_, total) in enumerate(samples) if total == peak)
    return next((round(time - samples[at][0], 6) for time, total in samples[at + 1:] if total == 0), None)


@dataclass(frozen=True)
class Backlog:
    name: str = "backlog"

    def check(self, history: Sequence[Record], opts: CheckOptions) -> CheckerResult:
        origin = t0(history)
        samples = sorted((float(r["time"]), r["total"]) for r in history
                         if r.get("type") == "backlog" and r.get("total") is not None)
        totals = [total for _, total in samples]
        data: dict[str, Any] = {
            "samples": len(samples),
            "max": max(totals) if totals else None,
            "mean": round(sum(totals) / len(totals), 6) if totals else None,
            "series": [{"t": round(time - origin, 6), "total": total} for time, total in samples],
            "time_to_drain_s": time_to_drain(samples),
        }
        return CheckerResult(self.name, True, data)
