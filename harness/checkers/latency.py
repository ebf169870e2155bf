"""Latencies measured from each order's *intended* send time (free of coordinated omission).

acceptance: ok completion - intended; response: any completion - intended; fulfilment: first
serving - intended, for accepted orders that were served. All in ms. Always valid (expectations
judge latency), except unknown (None) when the history has no invoke at all.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.checkers.base import CheckerResult, CheckOptions
from harness.checkers.distribution import microseconds, percentile_ms, summary
from harness.checkers.orders import Order, first_time_by_key, invoked_orders
from harness.checkers.timeline import bucket_count, bucket_index, run_end, t0
from harness.history import OK, Record


def _elapsed_ms(start: float, end: float) -> float:
    return (end - start) * 1000


@dataclass(frozen=True)
class Latency:
    name: str = "latency"

    def check(self, history: Sequence[Record], opts: CheckOptions) -> CheckerResult:
        orders = invoked_orders(history)
        served = first_time_by_key(history, "served")
        accepted = [o for o in orders.values() if o.outcome == OK and o.completed is not None]
        fulfilled = [o for o in accepted if o.ref in served]
        data: dict[str, Any] = {
            "acceptance": summary(_elapsed_ms(o.intended, o.completed) for o in accepted if o.completed is not None),
            "response": summary(_elapsed_ms(o.intended, o.completed) for o in orders.values() if o.completed is not None),
            "fulfilment": summary(_elapsed_ms(o.intended, served[o.ref]) for o in fulfilled),
            "over_time": self._over_time(history, orders, served, opts.bucket_s),
        }
        return CheckerResult(self.name, True if orders else None, data)

    @staticmethod
    def _over_time(history: Sequence[Record], orders: dict[str, Order], served: dict[str, float],
                   bucket_s: float) -> list[dict[str, Any]]:
        """Per bucket of intended time: p50/p99 of acceptance and fulfilment, and the order count."""
        origin = t0(history)
        buckets: dict[int, list[Order]] = defaultdict(list)
        for order in orders.values():
            buckets[bucket_index(origin, order.intended, bucket_s)].append(order)
        series = []
        count = bucket_count(origin, run_end(history), bucket_s, (o.intended for o in orders.values()))
        for index in range(count):
            members = buckets.get(index, [])
            ok = [o for o in members if o.outcome == OK and o.completed is not None]
            acceptance = microseconds(_elapsed_ms(o.intended, o.completed) for o in ok if o.completed is not None)
            fulfilment = microseconds(_elapsed_ms(o.intended, served[o.ref]) for o in ok if o.ref in served)
            series.append({
                "t": round(index * bucket_s, 6),
                "acceptance_p50": percentile_ms(acceptance, 50.0),
                "acceptance_p99": percentile_ms(acceptance, 99.0),
                "fulfilment_p50": percentile_ms(fulfilment, 50.0),
                "fulfilment_p99": percentile_ms(fulfilment, 99.0),
                "count": len(members),
            })
        return series
