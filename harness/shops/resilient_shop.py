"""The resilient synchronous shop: the sync shop's cashier -> barista call, built as a careful team would.

The same services, proxies, edges, observations and scaling as the sync shop (SyncShop), with the
cashier of systems/sync_resilient/ (cafe/resilience.py: a deadline propagated to the barista,
retries with full-jitter backoff, a circuit breaker per barista replica, a bulkhead, load
shedding). The barista is the sync shop's own program (it honours the deadline header).

Configured from the same shared settings, so the comparison stays fair: the attempt timeout is
`barista_timeout_s`; the order's deadline is 0.9 x the customers' patience (`patience_s`, the load's
client timeout: an answer arrives before the customer hangs up), or 3 x `barista_timeout_s` when
there is none; a circuit stays open the smaller of `barista_timeout_s` and the deadline (a circuit
open longer than a customer waits turns customers away after the barista is back); the bulkhead is 2 x `brewers` calls per
replica; retries wait from `barista_timeout_s` / 20. Every one of these scales with a profile's
`speed`, as its sources do.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from harness.shops.base import http_json
from harness.shops.sync_shop import SyncShop
from harness.shops.traits import SYNC_RESILIENT

PATIENCE_SHARE = 0.9   # the order's deadline, as a share of the customers' patience


class ResilientSyncShop(SyncShop):
    kind = "sync-resilient"
    traits = SYNC_RESILIENT
    programs_of = {"barista": "sync", "cashier": "sync_resilient"}

    def counters(self) -> dict[str, float]:
        """What the cashier's policies did (its /health `resilience` counters and `shed`) and the
        brews the baristas gave up (their /health `abandoned`, summed over the live replicas)."""
        cashier = http_json(self.url("cashier-1") + "/health", timeout=5)
        counts = {name: cashier["resilience"][name] for name in self.traits.counters if name in cashier["resilience"]}
        counts["shed"] = cashier.get("shed", 0)
        counts["abandoned_brews"] = sum(
            http_json(self.url(r.name) + "/health", timeout=5).get("abandoned", 0)
            for r in self.supervisor.replicas("barista") if r.state == "running")
        return counts

    def describe(self) -> dict[str, Any]:
        """The sync shop's description plus `policies`: the cashier's effective deadline, attempt
        timeout, bulkhead, breaker threshold and reset, backoff base (s) and shedding, as its
        /health reports them (None when the cashier does not answer)."""
        try:
            policies = http_json(self.url("cashier-1") + "/health", timeout=5).get("policies")
        except Exception:  # noqa: BLE001 - a description never fails a run
            policies = None
        return {**super().describe(), "policies": policies}

    def cashier_config(self, index: int) -> Any:
        s = self.settings
        deadline = None if s.patience_s is None else round(PATIENCE_SHARE * s.patience_s, 6)
        return replace(super().cashier_config(index), deadline_s=deadline)
