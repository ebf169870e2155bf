"""Availability: the share of attempted orders (invoked + dropped) that the shop accepted.

An order belongs to a fault window when its *intended* time is in [start, end). Reported overall,
outside every window, inside each window and inside their union. A window whose heal disturbed the
shop (a "settled" record: FaultKind.heal_effect) has an aftermath [end, settled): its orders are the
heal's (`after_heal` of that window, and "in faults"), never another window's or "outside". A share
of 0 attempted is None. `recovery_s`: how long after the last fault the shop was back (see
`recovery_s`), the measure of a retry storm that outlives its trigger.
Always valid: availability is judged by expectations.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from harness.checkers.base import CheckerResult, CheckOptions
from harness.checkers.orders import invoked_orders
from harness.checkers.timeline import FaultSpan, fault_windows, in_any
from harness.history import OK, Record


@dataclass(frozen=True)
class Attempt:
    intended: float
    accepted: bool


def attempts(history: Sequence[Record]) -> list[Attempt]:
    """Every invoked order and every dropped arrival, with whether it was accepted."""
    invoked = [Attempt(o.intended, o.outcome == OK) for o in invoked_orders(history).values()]
    dropped = [Attempt(float(r["intended"]), False) for r in history if r.get("type") == "dropped"]
    return invoked + dropped


def share(selected: list[Attempt]) -> tuple[int, int, float | None]:
    """(attempted, accepted, accepted / attempted or None)."""
    accepted = sum(1 for a in selected if a.accepted)
    return len(selected), accepted, (round(accepted / len(selected), 6) if selected else None)


@dataclass(frozen=True)
class Availability:
    name: str = "availability"

    def check(self, history: Sequence[Record], opts: CheckOptions) -> CheckerResult:
        everything = attempts(history)
        windows = fault_windows(history)

        def where(keep: Callable[[float], bool]) -> list[Attempt]:
            return [a for a in everything if keep(a.intended)]

        def healing(t: float, but: FaultSpan | None = None) -> bool:   # in another window's aftermath
            return any(w is not but and w.in_aftermath(t) for w in windows)

        per_window = []
        for w in windows:
            attempted, accepted, ratio = share([a for a in everything
                                                if w.contains(a.intended) and not healing(a.intended, w)])
            entry: dict[str, Any] = {
                "name": w.name, "kind": w.kind, "target": w.target,
                "start_s": round(w.start_s, 6), "end_s": round(w.end_s, 6),
                "attempted": attempted, "accepted": accepted, "availability": ratio,
            }
            if w.settled is not None:
                after = share(where(w.in_aftermath))
                entry["after_heal"] = {"settled_s": round(w.settled - w.t0, 6), "attempted": after[0],
                                       "accepted": after[1], "availability": after[2]}
            per_window.append(entry)
        attempted, accepted, overall = share(everything)
        data: dict[str, Any] = {
            "attempted": attempted,
            "accepted": accepted,
            "overall": overall,
            "outside_faults": share(where(lambda t: not in_any(windows, t) and not healing(t)))[2],
            "in_faults": share(where(lambda t: in_any(windows, t) or healing(t)))[2],
            "windows": per_window,
            "recovery_s": recovery_s(everything, windows, opts.bucket_s),
        }
        return CheckerResult(self.name, True, data)


RECOVERED = 0.9   # a bucket's share accepted at which the shop counts as back


def recovery_s(everything: list[Attempt], windows: Sequence[FaultSpan], bucket_s: float) -> float | None:
    """Seconds from the end of the last fault (its aftermath included) until the shop is back: the
    start of the first bucket of intended time from which every later bucket with attempts has at
    least RECOVERED of them accepted (0.0 when it never dipped after the end). None without faults
    or without attempts after the end; the end of the arrivals when it never came back (so a shop
    stuck after its trigger is gone, a metastable state, shows the whole rest of the run)."""
    if not windows:
        return None
    end = max(w.aftermath_end for w in windows)
    after = [a for a in everything if a.intended >= end]
    if not after:
        return None
    buckets: dict[int, list[Attempt]] = {}
    for a in after:
        buckets.setdefault(int((a.intended - end) // bucket_s), []).append(a)
    back = 0
    for index in sorted(buckets):
        ratio = share(buckets[index])[2]
        if ratio is not None and ratio < RECOVERED:
            back = index + 1
    last = max(a.intended for a in after) - end
    return round(min(back * bucket_s, last), 6)
