"""The business probe (SCENARIOS.md item 6): every accepted order is served within slo_s of its
intended time, checked from outside, as a customer would.

An accepted order not served in time is overdue over [intended + slo_s, min(first serving, run
end)]; the union of those intervals gives the overdue stretches (seconds since t0). An order never
served counts as not within the SLO even if the run ended before its deadline. detection_s is the
first overdue moment minus the start of the earliest fault window that began at or before it.
Valid iff every accepted order was served within the SLO; None when nothing was accepted.

The same probe over *placed* orders (accepted or unknown: every order the shop did not clearly
refuse, which a customer expects to get) gives `placed_within_slo`. `first_error_s` is how long
after the first fault a customer first saw an error (a failed or unknown outcome): the synchronous
shop tells its customers at once, the asynchronous one may never, so only the probe notices.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.checkers.base import CheckerResult, CheckOptions
from harness.checkers.orders import first_time_by_key, invoked_orders
from harness.checkers.timeline import fault_windows, run_end, t0, union
from harness.history import FAIL, INFO, OK, Record


@dataclass(frozen=True)
class BusinessProbe:
    name: str = "probe"

    def check(self, history: Sequence[Record], opts: CheckOptions) -> CheckerResult:
        origin, finish = t0(history), run_end(history)
        served = first_time_by_key(history, "served")
        accepted = [o for o in invoked_orders(history).values() if o.outcome == OK]
        late = [o for o in accepted if o.ref not in served or served[o.ref] - o.intended > opts.slo_s]
        stretches = union([(o.intended + opts.slo_s, min(served.get(o.ref, finish), finish)) for o in late])
        first_overdue = stretches[0][0] if stretches else None
        fault_starts = [w.start for w in fault_windows(history)]
        detection = None
        if first_overdue is not None and any(s <= first_overdue for s in fault_starts):
            detection = round(first_overdue - min(fault_starts), 6)
        within = len(accepted) - len(late)
        ratio = round(within / len(accepted), 6) if accepted else None
        orders = invoked_orders(history).values()
        placed = [o for o in orders if o.outcome in (OK, INFO)]
        placed_late = sum(1 for o in placed if o.ref not in served or served[o.ref] - o.intended > opts.slo_s)
        first_fault = min(fault_starts) if fault_starts else None
        errors = sorted(o.completed for o in orders
                        if o.outcome in (FAIL, INFO) and o.completed is not None
                        and first_fault is not None and o.completed >= first_fault)
        data: dict[str, Any] = {
            "slo_s": opts.slo_s,
            "accepted": len(accepted),
            "served_within_slo": within,
            "never_served": sum(1 for o in accepted if o.ref not in served),
            "share_within_slo": ratio,
            "overdue_stretches": [[round(s - origin, 6), round(e - origin, 6)] for s, e in stretches],
            "longest_overdue_s": round(max((e - s for s, e in stretches), default=0.0), 6),
            "first_overdue_s": None if first_overdue is None else round(first_overdue - origin, 6),
            "detection_s": detection,
            "placed": len(placed),
            "placed_within_slo": round((len(placed) - placed_late) / len(placed), 6) if placed else None,
            "first_error_s": round(errors[0] - first_fault, 6) if errors and first_fault is not None else None,
        }
        return CheckerResult(self.name, None if ratio is None else ratio == 1.0, data)
