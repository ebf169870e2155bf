"""The asynchronous shop as the harness sees it: order service, barista replicas and a waiter on RabbitMQ.

Every service reaches the broker through its own Toxiproxy proxy, so no connection bypasses a
fault: edges `harness->orders` (entry), `orders->broker`, `barista->broker` (one proxy per
replica), `waiter->broker`. The topology is declared by the harness when the shop starts, well
before any fault (see FACTS.md on young quorum queues).
Brewed = the barista service's brews; served = the waiter's servings.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import pika

from cafe import topology
from harness.shops.base import Shop, read_all


class AsyncShop(Shop):
    kind = "async"
    accepted_status = 202

    @property
    def broker(self) -> Any:
        if self.infra.broker is None:
            raise RuntimeError("the async shop needs an Infrastructure started with broker=True")
        return self.infra.broker

    @property
    def entry_url(self) -> str:
        return self.proxy_url(self.proxies["entry"])

    def amqp_url_via(self, proxy_name: str, edge: str) -> str:
        proxy = self.proxy(proxy_name, edge, self.broker.amqp_port)
        b = self.broker
        return f"amqp://{b.username}:{b.password}@127.0.0.1:{proxy.listen_port}/%2F"

    def declare_topology(self) -> None:
        connection = pika.BlockingConnection(pika.URLParameters(self.broker.amqp_url))
        try:
            topology.declare(connection.channel(), self.settings.queue_type, self.settings.delivery_limit)
        finally:
            connection.close()

    def start(self) -> "AsyncShop":
        self.declare_topology()

        def config(service: str, db: str) -> Any:
            def for_index(index: int) -> Any:
                name = f"{service}-{index}"
                edge_proxy = f"{name}-broker" if service == "barista" else f"{service}-broker"
                amqp = self.amqp_url_via(edge_proxy, f"{service}->broker")
                return replace(self.base_config(name, db), amqp_url=amqp)
            return for_index

        self.supervisor.add(self.service("barista", "barista.py", config("barista", "barista.db")),
                            self.settings.baristas)
        self.supervisor.add(self.service("waiter", "waiter.py", config("waiter", "waiter.db")), 1)
        self.supervisor.add(self.service("orders", "order_service.py", config("orders", "orders.db")), 1)
        self.proxy("entry", "harness->orders", self.port("orders-1"))
        return self

    def brewed(self) -> list[dict[str, Any]]:
        return read_all(self.first_live_url("barista"), "/brews")

    def served(self) -> list[dict[str, Any]]:
        return read_all(self.first_live_url("waiter"), "/served")

    def backlog(self) -> dict[str, int]:
        orders = self.broker.queue_stats(topology.ORDERS_QUEUE)
        brewed = self.broker.queue_stats(topology.BREWED_QUEUE)
        dead = self.broker.queue_stats(topology.DEAD_LETTERS)
        return {"orders_ready": orders["ready"], "orders_unacked": orders["unacked"],
                "brewed_waiting": brewed["total"], "dead_letters": dead["total"],
                "total": orders["total"] + brewed["total"]}

    def dead_letters(self) -> int:
        return int(self.broker.queue_stats(topology.DEAD_LETTERS)["total"])
