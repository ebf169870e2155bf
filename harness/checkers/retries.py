"""Retries: how many attempts the customers made, and how much their retries amplified the load.

Attempts are the invokes (sent) and every retry (sent `delay_s` after its "retry" record). Per
bucket of `opts.bucket_s`: the attempts sent in it against the arrivals intended in it.

    attempts             invokes + retries
    retries              retry attempts; `orders_retried` orders with at least one
    max_attempts         the most attempts one order took
    budget_denied        orders whose retry the budget refused (the attempt's outcome stood)
    amplification        attempts / invokes over the run
    peak_attempts_per_s  the busiest bucket's attempts per second
    amplification_peak   the largest attempts / arrivals of a bucket with at least MIN_ARRIVALS arrivals

Always valid (None without invokes): expectations judge a retry storm.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.checkers.base import CheckerResult, CheckOptions
from harness.checkers.timeline import bucket_index, t0
from harness.history import Record

MIN_ARRIVALS = 3   # a bucket with fewer arrivals says nothing about amplification


@dataclass(frozen=True)
class Retries:
    name: str = "retries"

    def check(self, history: Sequence[Record], opts: CheckOptions) -> CheckerResult:
        invokes = [r for r in history if r.get("type") == "invoke"]
        if not invokes:
            return CheckerResult(self.name, None, {})
        origin = t0(history)
        retries = [r for r in history if r.get("type") == "retry"]
        sent = [float(r.get("sent") or r["intended"]) for r in invokes]
        sent += [float(r["time"]) + float(r.get("delay_s") or 0.0) for r in retries]
        attempts = Counter(bucket_index(origin, t, opts.bucket_s) for t in sent)
        arrivals = Counter(bucket_index(origin, float(r["intended"]), opts.bucket_s) for r in invokes)
        per_order = Counter(str(r["ref"]) for r in retries)
        ratios = [attempts[b] / n for b, n in arrivals.items() if n >= MIN_ARRIVALS]
        data: dict[str, Any] = {
            "attempts": len(sent),
            "retries": len(retries),
            "orders_retried": len(per_order),
            "max_attempts": 1 + max(per_order.values(), default=0),
            "budget_denied": sum(1 for r in history if r.get("budget_denied")),
            "amplification": round(len(sent) / len(invokes), 6),
            "peak_attempts_per_s": round(max(attempts.values()) / opts.bucket_s, 6),
            "amplification_peak": round(max(ratios), 6) if ratios else None,
        }
        return CheckerResult(self.name, True, data)
