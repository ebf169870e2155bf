"""The synchronous shop as the harness sees it: cashier -> (HTTP, through Toxiproxy) -> barista replicas.

Edges: `customer->orders` (the entry proxy in front of the cashier), `orders->barista` (aliases
`cashier->barista` and `barista-link`: one proxy per barista replica).
Brewed = the barista service's brews; served = the cashier's orders with status "served".
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from harness.shops.base import Shop, http_json, read_all


class SyncShop(Shop):
    kind = "sync"
    accepted_status = 201
    roles = {"barista": "barista", "cashier": "cashier", "orders": "cashier"}
    edge_aliases = {"cashier->barista": ("orders->barista",), "barista-link": ("orders->barista",)}

    @property
    def entry_url(self) -> str:
        return self.proxy_url(self.proxies["entry"])

    def start(self) -> "SyncShop":
        def barista_config(index: int) -> Any:
            return self.base_config(f"barista-{index}", "barista.db")

        def cashier_config(index: int) -> Any:
            urls = tuple(self.proxy_url(self.proxy(f"cashier-barista-{i}", "orders->barista",
                                                   self.port(f"barista-{i}"), replica=i))
                         for i in range(1, self.settings.baristas + 1))
            return replace(self.base_config(f"cashier-{index}", "cashier.db"), barista_urls=urls)

        self.supervisor.add(self.service("barista", "barista.py", barista_config), self.settings.baristas)
        self.supervisor.add(self.service("cashier", "cashier.py", cashier_config), 1)
        self.proxy("entry", "customer->orders", self.port("cashier-1"))
        return self

    def brewed(self) -> list[dict[str, Any]]:
        return read_all(self.first_live_url("barista"), "/brews")

    def served(self) -> list[dict[str, Any]]:
        rows = read_all(self.first_live_url("cashier"), "/orders")
        return [dict(row, order_id=row["id"], served_at=row["completed_at"])
                for row in rows if row["status"] == "served"]

    def backlog(self) -> dict[str, int]:
        health = http_json(self.url("cashier-1") + "/health", timeout=2)
        return {"in_flight": health["in_flight"], "waiting": health["waiting"],
                "total": health["in_flight"] + health["waiting"]}
