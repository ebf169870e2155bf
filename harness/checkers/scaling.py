"""The barista pool over a run: replicas over time, every scale change and its reason, and how the
work spread over the replicas (share brewed, waits, orders held) — elasticity and backpressure.

Reads "replicas" (the initial pool), "scale" (each change, see harness.elasticity.scaling), "backlog"
(samples with `baristas` and `held` per replica), "invoke" (sent) and "brewed" (barista, started,
time) records, and the run record's `queueing.slow_replica` (the replica made slow, if any). A replica's wait is brew start - order sent; its fulfilment is brew end - sent.
Valid unless a scale change failed.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.checkers.base import CheckerResult, CheckOptions
from harness.checkers.distribution import summary
from harness.checkers.orders import invoked_orders
from harness.checkers.timeline import run_end, t0
from harness.history import Record, run_record


def pool_series(history: Sequence[Record], origin: float) -> tuple[int | None, list[dict[str, Any]]]:
    """(initial replicas, [{t, replicas}] at the start and after each successful change)."""
    initial = next((int(r["count"]) for r in history if r.get("type") == "replicas"), None)
    series = [] if initial is None else [{"t": 0.0, "replicas": initial}]
    for r in sorted((r for r in history if r.get("type") == "scale" and not r.get("error")),
                    key=lambda r: float(r["time"])):
        series.append({"t": round(float(r["time"]) - origin, 6), "replicas": int(r["to"])})
    return initial, series


def replica_seconds(series: list[dict[str, Any]], end_s: float) -> float:
    """The integral of the pool size from t = 0 to end_s (barista-seconds paid for)."""
    total = 0.0
    for step, nxt in zip(series, [*series[1:], {"t": end_s}], strict=True):
        total += step["replicas"] * max(0.0, min(float(nxt["t"]), end_s) - max(float(step["t"]), 0.0))
    return round(total, 3)


def per_replica(history: Sequence[Record]) -> dict[str, dict[str, Any]]:
    """For each barista replica: brewed, share of all brews, wait and fulfilment (ms) from send."""
    sent = {o.ref: o.sent for o in invoked_orders(history).values() if o.sent is not None}
    brews = [r for r in history if r.get("type") == "brewed"]
    waits: dict[str, list[float]] = defaultdict(list)
    fulfil: dict[str, list[float]] = defaultdict(list)
    counts: dict[str, int] = defaultdict(int)
    for r in brews:
        name = str(r.get("barista"))
        counts[name] += 1
        at = sent.get(str(r.get("ref")))
        if at is not None and r.get("started") is not None:
            waits[name].append((float(r["started"]) - at) * 1000)
            fulfil[name].append((float(r["time"]) - at) * 1000)
    total = len(brews)
    return {name: {"brewed": counts[name], "share": round(counts[name] / total, 4),
                   "wait_ms": summary(waits[name]), "fulfilment_ms": summary(fulfil[name])}
            for name in sorted(counts)}


def held_by_replica(history: Sequence[Record]) -> dict[str, dict[str, float]]:
    """Orders held per replica in the backlog samples: {name: {max, mean}} over samples reading it."""
    readings: dict[str, list[float]] = defaultdict(list)
    for r in history:
        if r.get("type") == "backlog" and isinstance(r.get("held"), dict):
            for name, n in r["held"].items():
                readings[name].append(float(n))
    return {name: {"max": max(v), "mean": round(sum(v) / len(v), 3)} for name, v in sorted(readings.items())}


def backlog_per_replica(history: Sequence[Record]) -> float | None:
    """Mean of total / baristas over the samples that have both."""
    values = [float(r["total"]) / int(r["baristas"]) for r in history
              if r.get("type") == "backlog" and r.get("total") is not None and r.get("baristas")]
    return round(sum(values) / len(values), 4) if values else None


@dataclass(frozen=True)
class Scaling:
    name: str = "scaling"

    def check(self, history: Sequence[Record], opts: CheckOptions) -> CheckerResult:
        origin = t0(history)
        initial, series = pool_series(history, origin)
        changes = sorted((r for r in history if r.get("type") == "scale"), key=lambda r: float(r["time"]))
        events: list[dict[str, Any]] = [{"t": round(float(r["time"]) - origin, 6), "from": r.get("from"), "to": r.get("to"),
                   "trigger": r.get("trigger"), "reason": r.get("reason"), "took_s": r.get("took_s"),
                   "backlog": r.get("backlog"), "error": r.get("error")} for r in changes]
        ok = [e for e in events if not e["error"]]
        shares = per_replica(history)
        data: dict[str, Any] = {
            "initial_replicas": initial,
            "max_replicas": max((s["replicas"] for s in series), default=None),
            "min_replicas": min((s["replicas"] for s in series), default=None),
            "final_replicas": series[-1]["replicas"] if series else None,
            "scale_ups": sum(1 for e in ok if e["from"] is not None and e["to"] > e["from"]),
            "scale_downs": sum(1 for e in ok if e["from"] is not None and e["to"] < e["from"]),
            "errors": sum(1 for e in events if e["error"]),
            "events": events,
            "series": series,
            "replica_seconds": replica_seconds(series, run_end(history) - origin) if series else None,
            "per_replica": shares,
            "max_share": max((s["share"] for s in shares.values()), default=None),
            "held": held_by_replica(history),
            "backlog_per_replica": backlog_per_replica(history),
        }
        slow = (run_record(list(history)).get("queueing") or {}).get("slow_replica")
        name = f"barista-{slow}" if slow else None
        data["slow_replica"] = name
        data["slow_share"] = shares.get(name, {}).get("share", 0.0) if name else None
        data["slow_held_max"] = data["held"].get(name, {}).get("max") if name else None
        return CheckerResult(self.name, not data["errors"], data)
