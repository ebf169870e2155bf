"""The counter shop as the harness sees it (the adapter protocol: harness/shops/base.py, docs/shops.md).

One service, `counter` (programs/counter.py), one replica, behind one Toxiproxy proxy: the edge
`customer->orders`. It plays every role a fault can target (barista, cashier, orders): killing the
barista kills the counter. Its brewing hands are the experiment's `baristas x brewers`, so it has
the same capacity as the other shops. Brewed = its brew records; served = the 201 answers that
carry a brew id, as the customers received them (like the sync shop).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from chaoscafe_counter import COUNTER
from harness.shops.base import Shop, http_json, read_all


class CounterShop(Shop):
    kind = "counter"
    traits = COUNTER
    accepted_status = 201
    programs = Path(__file__).resolve().parent / "programs"
    observed_from = {"accepted": "the customer's answers (201)",
                     "brewed": "the counter's brew records (GET /brews)",
                     "served": "the coffees the customers received: 201 answers carrying a brew id"}
    roles = {"barista": "counter", "cashier": "counter", "orders": "counter"}

    @property
    def entry_url(self) -> str:
        return self.proxy_url(self.proxies["entry"])

    def start(self) -> "CounterShop":
        def config(index: int) -> Any:
            hands = self.settings.baristas * self.settings.brewers   # the same capacity as the other shops
            return replace(self.base_config(f"counter-{index}", "counter.db"), brewers=hands)

        self.supervisor.add(self.service("counter", "counter.py", config), 1)
        self.proxy("entry", "customer->orders", self.port("counter-1"))
        return self

    def brewed(self) -> list[dict[str, Any]]:
        return read_all(self.first_live_url("counter"), "/brews")

    def served(self) -> list[dict[str, Any]]:
        return [dict(row, order_id=row["id"], served_at=row["completed_at"])
                for row in read_all(self.first_live_url("counter"), "/orders") if row["status"] == "served"]

    def servings(self, history: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A coffee is served when its 201 arrives with a brew id, as the load driver saw it."""
        return [{"ref": r["ref"], "order_id": r.get("order_id"), "served_at": r["time"], "brew_id": r["brew_id"]}
                for r in history if r.get("type") == "ok" and r.get("brew_id")]

    def order_records(self) -> list[dict[str, Any]]:
        """The counter's rows: every stored order was brewed (it is stored with its brew)."""
        return [{"ref": row.get("ref"), "order_id": row["id"], "status": row["status"], "taken": True}
                for row in read_all(self.first_live_url("counter"), "/orders")]

    def backlog(self) -> dict[str, Any]:
        """Orders being brewed and customers waiting for the counter's hands."""
        health = http_json(self.url("counter-1") + "/health", timeout=2)
        return {"in_flight": health["brewing"], "waiting": health["waiting"],
                "total": health["brewing"] + health["waiting"], "held": {"counter-1": health["brewing"]},
                "baristas": self.replica_count("barista")}
