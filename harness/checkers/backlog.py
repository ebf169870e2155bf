"""The backlog of orders waiting in the shop, as sampled in "backlog" records (`time`, `total`).

time_to_drain_s runs from the first sample at the maximum to the first later sample at 0: 0.0 when
the backlog never rose above 0, None when it never drained or there are no samples. In a run with
faults it is the backlog they leave: only samples from the first fault's start on count
(`drain_from_s`, seconds after t0; None without faults). Before, a run where the faults built no
backlog measured from a pre-fault fluctuation (4 orders at 2 s, at 10 orders/s) to the first sample
that happened to read 0, 34 s later (broker-partition in one CI run).
`orders_nodes`: where the barista queue was, from the samples' `orders_node` (the broker node
leading a quorum queue or holding a classic one, as the management API said): consecutive samples
on one node as a span {node, from_s, to_s, samples, max_orders} (seconds after t0; `max_orders`, the
most orders ready or unacked in it); empty without such samples (the sync shop, older histories).
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


def node_spans(history: Sequence[Record], origin: float) -> list[dict[str, Any]]:
    """The barista queue's node over time (see the module docstring), in time order."""
    spans: list[dict[str, Any]] = []
    for r in sorted((r for r in history if r.get("type") == "backlog" and r.get("orders_node")),
                    key=lambda r: float(r["time"])):
        t = round(float(r["time"]) - origin, 3)
        orders = (r.get("orders_ready") or 0) + (r.get("orders_unacked") or 0)
        if spans and spans[-1]["node"] == r["orders_node"]:
            last = spans[-1]
            last.update(to_s=t, samples=last["samples"] + 1, max_orders=max(last["max_orders"], orders))
        else:
            spans.append({"node": r["orders_node"], "from_s": t, "to_s": t, "samples": 1, "max_orders": orders})
    return spans


@dataclass(frozen=True)
class Backlog:
    name: str = "backlog"

    def check(self, history: Sequence[Record], opts: CheckOptions) -> CheckerResult:
        origin = t0(history)
        samples = sorted((float(r["time"]), r["total"]) for r in history
                         if r.get("type") == "backlog" and r.get("total") is not None)
        totals = [total for _, total in samples]
        starts = [float(r["time"]) for r in history if r.get("type") == "fault" and r.get("phase") == "start"]
        drain_from = min(starts) if starts else None
        after = [(time, total) for time, total in samples if drain_from is None or time >= drain_from]
        data: dict[str, Any] = {
            "samples": len(samples),
            "max": max(totals) if totals else None,
            "mean": round(sum(totals) / len(totals), 6) if totals else None,
            "series": [{"t": round(time - origin, 6), "total": total} for time, total in samples],
            "time_to_drain_s": time_to_drain(after),
            "drain_from_s": round(drain_from - origin, 6) if drain_from is not None else None,
            "orders_nodes": node_spans(history, origin),
        }
        return CheckerResult(self.name, True, data)
