"""A consumer added while the shop runs (SCENARIOS.md item 8): did it miss or repeat anything, and
did the shop notice it joining?

Reads {"type": "joined", "service", "time"} (when the newcomer's queue was bound), "rang"
records ({"brew_id", "order_id", "ref", "time"}) and "brewed" records with their `brew_id`.
Every coffee brewed at or after the join must ring exactly once; rings for earlier brews (whose
event was still in flight at the join) are counted, not judged. The shop's acceptance latency
before and after the join shows whether adding the consumer disturbed it.
Valid iff nothing brewed after the join is missing and no ring was repeated; None without a join;
False when the newcomer started but never joined (no time).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.checkers.base import CheckerResult, CheckOptions
from harness.checkers.distribution import summary
from harness.checkers.orders import invoked_orders, sample
from harness.history import OK, Record


def _p99(values_ms: list[float]) -> float | None:
    p99 = summary(values_ms)["p99"]
    return None if p99 is None else float(p99)


@dataclass(frozen=True)
class Newcomer:
    name: str = "newcomer"

    def check(self, history: Sequence[Record], opts: CheckOptions) -> CheckerResult:
        joins = [r for r in history if r.get("type") == "joined"]
        if not joins:
            return CheckerResult(self.name, None, {})
        if any(r.get("time") is None for r in joins):   # started, but never bound its queue
            return CheckerResult(self.name, False, {"service": joins[0].get("service"), "joined_s": None,
                                                    "brewed_after_join": 0, "missing": None, "repeated": None})
        joined = min(float(r["time"]) for r in joins)
        brews = {str(r["brew_id"]): r for r in history if r.get("type") == "brewed" and r.get("brew_id")}
        rings = Counter(str(r["brew_id"]) for r in history if r.get("type") == "rang")
        after = {b for b, r in brews.items() if float(r["time"]) >= joined}
        missing = after - rings.keys()
        repeated = {b for b, n in rings.items() if n > 1}
        unknown = rings.keys() - brews.keys()
        completions = {str(r["ref"]): float(r["time"]) for r in history if r.get("type") == OK}
        before_ms: list[float] = []
        after_ms: list[float] = []
        for ref, order in invoked_orders(history).items():
            if order.outcome == OK and ref in completions:
                (after_ms if order.intended >= joined else before_ms).append((completions[ref] - order.intended) * 1000)
        p99_before, p99_after = _p99(before_ms), _p99(after_ms)
        data: dict[str, Any] = {
            "service": joins[0].get("service"),
            "joined_s": round(joined - _t0(history), 3),
            "brewed_after_join": len(after),
            "rang": sum(rings.values()),
            "missing": len(missing),
            "repeated": len(repeated),
            "early": len(rings.keys() & (brews.keys() - after)),
            "unknown": len(unknown),
            "acceptance_p99_before_ms": p99_before,
            "acceptance_p99_after_ms": p99_after,
            "acceptance_p99_ratio": round(p99_after / p99_before, 3) if p99_before and p99_after else None,
            "samples": {"missing": sample(str(brews[b].get("ref")) for b in missing)},
        }
        return CheckerResult(self.name, not missing and not repeated and not unknown, data)


def _t0(history: Sequence[Record]) -> float:
    return next((float(r["t0"]) for r in history if r.get("type") == "run"), 0.0)
