"""Clocks: intervals between stamps of different processes that cannot be negative, and are.

Every service stamps its own records with its own clock: the harness's generator the invoke
(`sent`) and the customer's answer, a barista `brewed`, the async waiter `served`. Acceptance and
response latencies use the harness's clock alone; fulfilment (served - intended) and the business
probe compare the harness's clock with the waiter's (async). Causally an order is brewed after it
was sent and served after it was brewed; a stamp that says otherwise comes from a skewed clock
(issue 20, item 6), and the latencies built on it are clamped at 1 µs by the histograms. Counted
per order, on first brew and first serving, beyond a tolerance of TOLERANCE_S:

    brewed_before_sent    the barista's brew stamp precedes the harness's send
    served_before_sent    the serving stamp precedes the send (a negative fulfilment)
    served_before_brewed  the serving stamp precedes the brew stamp (waiter vs barista)
    worst_s               the most negative of those intervals (s), None when there is none
    implausible           the orders with at least one of them

Always valid: what a skew does is judged by expectations (`clocks.*`); the report flags it.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.checkers.base import CheckerResult, CheckOptions
from harness.checkers.orders import first_time_by_key, invoked_orders, sample
from harness.history import Record

TOLERANCE_S = 0.001   # stamps of one host's processes agree far better than this without a skew
SAMPLE_LIMIT = 20


@dataclass(frozen=True)
class Clocks:
    name: str = "clocks"

    def check(self, history: Sequence[Record], opts: CheckOptions) -> CheckerResult:
        orders = invoked_orders(history)
        brewed, served = first_time_by_key(history, "brewed"), first_time_by_key(history, "served")
        pairs: dict[str, list[str]] = {"brewed_before_sent": [], "served_before_sent": [], "served_before_brewed": []}
        worst: float | None = None
        for ref, order in orders.items():
            checks = (("brewed_before_sent", order.sent, brewed.get(ref)),
                      ("served_before_sent", order.sent, served.get(ref)),
                      ("served_before_brewed", brewed.get(ref), served.get(ref)))
            for name, earlier, later in checks:
                if earlier is None or later is None:
                    continue
                gap = later - earlier
                if gap < -TOLERANCE_S:
                    pairs[name].append(ref)
                    worst = gap if worst is None else min(worst, gap)
        implausible = set().union(*pairs.values())
        data: dict[str, Any] = {name: len(refs) for name, refs in pairs.items()}
        data.update({"worst_s": None if worst is None else round(worst, 6), "implausible": len(implausible),
                     "samples": sample(implausible, SAMPLE_LIMIT)})
        return CheckerResult(self.name, True, data)
