"""The order ledger: Jepsen's total-queue on multisets, per hop (ordered -> brewed -> served).

Every invoked ref has one outcome (ok / fail / info; no completion at all counts as info).
Brewed and served records are matched to invoked refs; records without a ref are keyed
"order:<order_id>" and so are always unexpected. `redelivered` counts the orders the broker
delivered again ("redelivered" records: the barista saw the redelivered flag); `dead_lettered` the
messages the broker dead-lettered by the end ("dead_letters" record: rejected, over the delivery
limit or dropped from a full queue; a lost order there was lost loudly);
`unknown_unresolved` the orders whose outcome the customer never learnt that were brewed and
yet never served (a coffee made for nobody). Valid iff nothing accepted was lost, nothing
unexpected was brewed or served, and nothing was served that no barista recorded brewing
(`served_not_brewed`: served must be a subset of brewed); duplicates are reported, not judged (expectations do).

Unknown outcomes are settled after the run from the shop's own order record ("order_record"
records, read once: an "order_records" record says the read succeeded) and from what it brewed
and served: `unknown_taken` the shop kept the order (recorded as taken, or brewed or served),
`unknown_not_taken` it did not (absent or not taken in a record that was read, never brewed or
served), `unknown_unsettled` the record could not be read. The customer's view (`unknown`)
stays beside what really happened.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.checkers.base import CheckerResult, CheckOptions
from harness.checkers.orders import counts_by_key, invoked_orders, sample, shop_key
from harness.history import FAIL, INFO, OK, Record

SAMPLE_LIMIT = 20


@dataclass(frozen=True)
class Ledger:
    name: str = "ledger"

    def check(self, history: Sequence[Record], opts: CheckOptions) -> CheckerResult:
        orders = invoked_orders(history)
        by_outcome = {kind: {ref for ref, o in orders.items() if o.outcome == kind} for kind in (OK, FAIL, INFO)}
        accepted, rejected, unknown = by_outcome[OK], by_outcome[FAIL], by_outcome[INFO]
        brews, servings = counts_by_key(history, "brewed"), counts_by_key(history, "served")

        lost = accepted - servings.keys()
        served_not_brewed = servings.keys() - brews.keys()   # served must be a subset of brewed
        duplicated = {k for k, n in brews.items() if n > 1} | {k for k, n in servings.items() if n > 1}
        unexpected = (brews.keys() | servings.keys()) - orders.keys()
        recovered = unknown & servings.keys()
        taken = brews.keys() | servings.keys() | {shop_key(r) for r in history
                                                   if r.get("type") == "order_record" and r.get("taken")}
        records_read = any(r.get("type") == "order_records" for r in history)
        unknown_taken = unknown & taken
        unknown_not_taken = (unknown - taken) if records_read else set()
        data = {
            "attempted": len(orders),
            "dropped": sum(1 for r in history if r.get("type") == "dropped"),
            "accepted": len(accepted),
            "rejected": len(rejected),
            "unknown": len(unknown),
            "no_completion": sum(1 for o in orders.values() if o.completed is None),
            "brewed": len(brews),
            "served": len(servings),
            "lost": len(lost),
            "duplicated": len(duplicated),
            "duplicate_brews": sum(n - 1 for n in brews.values()),
            "duplicate_servings": sum(n - 1 for n in servings.values()),
            "unexpected": len(unexpected),
            "served_not_brewed": len(served_not_brewed),
            "recovered": len(recovered),
            "unknown_taken": len(unknown_taken),
            "unknown_not_taken": len(unknown_not_taken),
            "unknown_unsettled": len(unknown - unknown_taken - unknown_not_taken),
            "rejected_but_brewed": len(rejected & brews.keys()),
            "rejected_but_served": len(rejected & servings.keys()),
            "unknown_brewed": len(unknown & brews.keys()),
            "unknown_unresolved": len((unknown & brews.keys()) - servings.keys()),
            "redelivered": len({shop_key(r) for r in history if r.get("type") == "redelivered"}),
            "dead_lettered": max((int(r["count"]) for r in history if r.get("type") == "dead_letters"), default=0),
            "samples": {
                "lost": sample(lost, SAMPLE_LIMIT),
                "duplicated": sample(duplicated, SAMPLE_LIMIT),
                "unexpected": sample(unexpected, SAMPLE_LIMIT),
                "served_not_brewed": sample(served_not_brewed, SAMPLE_LIMIT),
                "recovered": sample(recovered, SAMPLE_LIMIT),
            },
        }
        return CheckerResult(self.name, not lost and not unexpected and not served_not_brewed, data)
