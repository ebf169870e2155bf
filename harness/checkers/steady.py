"""The steady-state hypothesis before the method (Chaos Toolkit): was the shop serving before the
first fault started? A fault injected into a shop that was not working proves nothing.

Looks at the orders intended and completed before the first fault window's start (an order still in
flight when the fault starts is the fault's, not the steady state's): how many there were, the
share accepted (ok), and the largest backlog sampled in that time. Valid is None for a run with no
fault (nothing to gate), else True iff at least `opts.steady_min_orders` orders were attempted
before the first fault, their share accepted is at least `opts.steady_min_availability`, and (when
`opts.steady_max_backlog` is set) no backlog sample before the fault exceeds it. A False here makes
the run inconclusive, not failed (harness.experiment.results). A condition set before the load
(a start record with `from_start`, e.g. a clock skew) is not a fault to gate: no steady state
exists before it, and the hypothesis is checked before the first other fault.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.checkers.base import CheckerResult, CheckOptions
from harness.checkers.orders import invoked_orders
from harness.checkers.timeline import fault_windows, t0
from harness.history import OK, Record


@dataclass(frozen=True)
class SteadyState:
    name: str = "steady_state"

    def check(self, history: Sequence[Record], opts: CheckOptions) -> CheckerResult:
        conditions = {str(r["name"]) for r in history
                      if r.get("type") == "fault" and r.get("phase") == "start" and r.get("from_start")}
        windows = [w for w in fault_windows(history) if w.name not in conditions]
        if not windows:
            return CheckerResult(self.name, None, {"first_fault_s": None})
        # the first fault began to act when it was being applied ("began"), a little before its
        # start record's time (written once it had taken effect)
        began = [float(r["began"]) for r in history if r.get("type") == "fault" and r.get("phase") == "start"
                 and r.get("began") is not None and str(r["name"]) not in conditions]
        first = min([w.start for w in windows] + began)
        before = [o for o in invoked_orders(history).values()
                  if o.intended < first and o.completed is not None and o.completed < first]
        accepted = sum(1 for o in before if o.outcome == OK)
        backlogs = [float(r["total"]) for r in history
                    if r.get("type") == "backlog" and r.get("total") is not None and float(r["time"]) < first]
        availability = accepted / len(before) if before else None
        backlog_max = max(backlogs) if backlogs else None
        reasons: list[str] = []
        if len(before) < opts.steady_min_orders:
            reasons.append(f"{len(before)} orders before the first fault (at least {opts.steady_min_orders})")
        if availability is not None and availability < opts.steady_min_availability:
            reasons.append(f"availability {availability:.3f} before the first fault "
                           f"(at least {opts.steady_min_availability})")
        if opts.steady_max_backlog is not None and backlog_max is not None and backlog_max > opts.steady_max_backlog:
            reasons.append(f"backlog {backlog_max:g} before the first fault (at most {opts.steady_max_backlog:g})")
        data: dict[str, Any] = {"first_fault_s": round(first - t0(history), 3), "attempted_before": len(before),
                                "accepted_before": accepted, "availability_before": availability,
                                "backlog_max_before": backlog_max, "reasons": reasons}
        return CheckerResult(self.name, not reasons, data)
