"""The synchronous shop as the harness sees it: cashier -> (HTTP, through Toxiproxy) -> barista replicas.

Edges: `customer->orders` (the entry proxy in front of the cashier), `orders->barista` (aliases
`cashier->barista` and `barista-link`: one proxy per barista replica, created with the replica, so a
replica added by scaling has its proxy too and network faults reach it).
Scaling: new baristas are started and ready before the cashier hears of them (`PUT /baristas` with
the proxy URL of every replica 1..n); leaving ones are removed from the cashier's set before they
are stopped. A restarted cashier starts with the current set. The cashier picks the least busy.
Brewed = the barista service's brews; served = the cashier's orders with status "served".
"""
from __future__ import annotations

import json
import urllib.request
from dataclasses import replace
from typing import Any

from harness.shops.base import Shop, http_json, read_all
from harness.shops.traits import SYNC


class SyncShop(Shop):
    kind = "sync"
    traits = SYNC
    accepted_status = 201
    observed_from = {"accepted": "the customer's answers (201)",
                     "brewed": "the baristas' brew records (GET /brews)",
                     "served": "the coffees the customers received: 201 answers carrying a brew id"}
    roles = {"barista": "barista", "cashier": "cashier", "orders": "cashier"}
    edge_aliases = {"cashier->barista": ("orders->barista",), "barista-link": ("orders->barista",)}
    programs_of = {"barista": "sync", "cashier": "sync"}   # service -> its folder under systems/

    @property
    def entry_url(self) -> str:
        return self.proxy_url(self.proxies["entry"])

    def barista_url(self, index: int) -> str:
        """The cashier's way to barista replica `index`: its own proxy (created once)."""
        return self.proxy_url(self.proxy(f"cashier-barista-{index}", "orders->barista",
                                         self.port(f"barista-{index}"), replica=index))

    def barista_set(self, n: int) -> list[dict[str, str]]:
        return [{"name": f"barista-{i}", "url": self.barista_url(i)} for i in range(1, n + 1)]

    def start(self) -> "SyncShop":
        def barista_config(index: int) -> Any:
            self.barista_url(index)          # its proxy exists before the cashier can call it
            return self.barista_config(index)

        def cashier_config(index: int) -> Any:
            urls = tuple(m["url"] for m in self.barista_set(self.replica_count("barista")))
            return replace(self.cashier_config(index), barista_urls=urls)

        self.supervisor.add(self.service("barista", "barista.py", barista_config, directory=self.programs_of["barista"]),
                            self.settings.baristas)
        self.supervisor.add(self.service("cashier", "cashier.py", cashier_config, directory=self.programs_of["cashier"]), 1)
        self.proxy("entry", "customer->orders", self.port("cashier-1"))
        return self

    def cashier_config(self, index: int) -> Any:
        """The ServiceConfig of cashier replica `index`, before its barista set is added."""
        return self.base_config(f"cashier-{index}", "cashier.db")

    def _routing_changed(self, service: str, n: int) -> None:
        if service != "barista":
            return
        body = json.dumps({"baristas": self.barista_set(n)}).encode()
        request = urllib.request.Request(self.url("cashier-1") + "/baristas", data=body, method="PUT",
                                         headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as resp:
            resp.read()

    def brewed(self) -> list[dict[str, Any]]:
        return read_all(self.first_live_url("barista"), "/brews")

    def served(self) -> list[dict[str, Any]]:
        rows = read_all(self.first_live_url("cashier"), "/orders")
        return [dict(row, order_id=row["id"], served_at=row["completed_at"])
                for row in rows if row["status"] == "served"]

    def servings(self, history: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The customer is served at the counter: a coffee is served when its 201 arrives with a
        brew id, observed by the load driver (not the cashier's own row, which says served
        before it answers and so could never show a loss)."""
        return [{"ref": r["ref"], "order_id": r.get("order_id"), "served_at": r["time"], "brew_id": r["brew_id"]}
                for r in history if r.get("type") == "ok" and r.get("brew_id")]

    def order_records(self) -> list[dict[str, Any]]:
        """The cashier's rows: "served" was taken (the coffee exists); "failed" was not (the
        barista call failed: a brew made anyway shows up as brewed, and the ledger counts it)."""
        return [{"ref": row.get("ref"), "order_id": row["id"], "status": row["status"],
                 "taken": row["status"] == "served"} for row in read_all(self.first_live_url("cashier"), "/orders")]

    def backlog(self) -> dict[str, Any]:
        """Calls in flight to baristas and customers waiting in line at the cashier; `held`: calls
        in flight per barista replica; `baristas`: replicas now."""
        health = http_json(self.url("cashier-1") + "/health", timeout=2)
        return {"in_flight": health["in_flight"], "waiting": health["waiting"],
                "total": health["in_flight"] + health["waiting"], "held": health.get("baristas", {}),
                "baristas": self.replica_count("barista")}
