"""Changing the barista pool during a run: scheduled changes and the autoscaler, in one thread.

`Scaler` applies every scheduled change at t0 + start_s, or, with an autoscaler, asks the pure
policy (harness.elasticity.autoscaler.decide) every interval_s what the backlog samples in the history call
for. Every change is recorded as

    {"type": "scale", "time", "service", "target", "from", "to", "reason", "trigger", "took_s"}

where time is when the new pool is in place (new replicas ready / old ones stopped), trigger is
"schedule" or "autoscaler", and reason is the policy's explanation or "scheduled". A change that
fails is recorded with "error" and the run goes on. The initial pool is recorded at start as
{"type": "replicas", "service", "target", "count", "time"}.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from harness.checkers.backlog import backlog_samples
from harness.elasticity.autoscaler import Policy, decide
from harness.history import Record
from harness.shops.base import Shop

log = logging.getLogger("harness.elasticity.scaling")


class Scaler:
    """Runs scheduled changes [(start_s, target, replicas)] or an autoscaler Policy on the barista
    pool; `stop()` ends it (call it in a `finally`). The pool is not reset at the end: scaling is
    not a fault, and the run's observations read whichever replicas are there."""

    def __init__(self, shop: Shop, record: Callable[[Record], None], t0: float, *,
                 schedule: Sequence[tuple[float, str, int]] = (), policy: Policy | None = None,
                 interval_s: float = 0.5, history: Sequence[Record] = ()) -> None:
        self.shop, self.record, self.t0 = shop, record, t0
        self.schedule = sorted(schedule)
        self.policy, self.interval_s, self.history = policy, interval_s, history
        self.last_change: float | None = None
        self.changes = 0
        self._halt = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scaler", daemon=True)

    @property
    def enabled(self) -> bool:
        return bool(self.schedule) or self.policy is not None

    def start(self) -> "Scaler":
        self.record({"type": "replicas", "service": self.shop.service_for("barista"), "target": "barista",
                     "count": self.shop.replica_count("barista"), "time": time.time()})
        if self.enabled:
            self._thread.start()
        return self

    def _run(self) -> None:
        if self.policy is not None:
            self._autoscale(self.policy)
            return
        for at_s, target, replicas in self.schedule:
            if self._halt.wait(max(0.0, self.t0 + at_s - time.time())):
                return
            self.change(target, replicas, "scheduled", "schedule")

    def _autoscale(self, policy: Policy) -> None:
        if self._halt.wait(max(0.0, self.t0 - time.time())):
            return
        while not self._halt.wait(self.interval_s):
            now = time.time()
            decision = decide(policy, backlog_samples(self.history), self.shop.replica_count("barista"),
                              now, self.last_change)
            if decision is not None:
                self.change("barista", decision.to, decision.reason, "autoscaler", backlog=decision.backlog)

    def change(self, target: str, replicas: int, reason: str, trigger: str, **extra: Any) -> None:
        """Scale `target` to `replicas` now and record it (or the error)."""
        began = time.time()
        entry: Record = {"type": "scale", "service": self.shop.service_for(target), "target": target,
                         "from": None, "to": replicas, "reason": reason, "trigger": trigger, "requested": began, **extra}
        try:
            entry["from"] = self.shop.scale(target, replicas)
        except Exception as exc:  # a change that fails is recorded; the run goes on
            log.exception("scaling %s to %d failed", target, replicas)
            entry["error"] = f"{exc.__class__.__name__}: {exc}"[:300]
        done = time.time()
        self.last_change = done
        self.changes += 1
        self.record({**entry, "time": done, "took_s": round(done - began, 3)})

    def stop(self) -> None:
        self._halt.set()
        if self._thread.is_alive():
            self._thread.join(timeout=120)
