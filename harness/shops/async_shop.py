"""The asynchronous shop as the harness sees it: order service, barista replicas and a waiter on RabbitMQ.

Every service reaches the broker through its own Toxiproxy proxy, so no connection bypasses a
fault: edges `customer->orders` (entry), `orders->broker`, `barista->broker` (one proxy per
replica), `waiter->broker`; `orders->barista` is the broker path orders->broker + barista->broker
and `barista->waiter` is barista->broker + waiter->broker; `barista-link` (the baristas' own
network link) is barista->broker. The topology is declared by the harness when the shop starts, well
before any fault (see FACTS.md on young quorum queues).
Brewed = the barista service's brews; served = the waiter's servings.
"""
from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any

import pika

from cafe import topology
from harness.errors import ProcessError
from harness.infra.cluster import RabbitCluster
from harness.shops.base import Shop, http_json, read_all
from harness.shops.traits import ASYNC


class AsyncShop(Shop):
    kind = "async"
    traits = ASYNC
    accepted_status = 202
    observed_from = {"accepted": "the customer's answers (202)",
                     "brewed": "the baristas' brew records (GET /brews)",
                     "served": "the waiter's serving records (GET /served)"}
    roles = {"barista": "barista", "orders": "orders", "waiter": "waiter"}
    edge_aliases = {"orders->barista": ("orders->broker", "barista->broker"),
                    "barista->waiter": ("barista->broker", "waiter->broker"),
                    "barista-link": ("barista->broker",)}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._amqp = threading.local()
        self._connections: list[Any] = []
        self._homes: dict[str, int] = {}   # broker link (proxy name) -> index of its own node

    @property
    def broker(self) -> Any:
        if self.infra.broker is None:
            raise RuntimeError("the async shop needs an Infrastructure started with broker=True")
        return self.infra.broker

    @property
    def entry_url(self) -> str:
        return self.proxy_url(self.proxies["entry"])

    def amqp_urls_via(self, proxy_name: str, edge: str, replica: int | None = None) -> tuple[str, tuple[str, ...]]:
        """(URL, fallbacks) of one service replica's broker link: a proxy per broker node on `edge`.
        On a cluster the replica's own node is the next one in turn (the links spread over the
        nodes) and the other nodes, each through a proxy of its own on the same edge, are its
        fallbacks; a single node gives no fallbacks."""
        endpoints = self.broker.endpoints()
        home = self._homes.setdefault(proxy_name, len(self._homes) % len(endpoints))
        urls = []
        for k in range(len(endpoints)):
            index = (home + k) % len(endpoints)
            host, port = endpoints[index]
            name = proxy_name if len(endpoints) == 1 else f"{proxy_name}-n{index + 1}"
            proxy = self.proxy(name, edge, port, replica, upstream_host=host)
            urls.append(str(self.broker.amqp_url_at(proxy.listen_port)))
        return urls[0], tuple(urls[1:])

    def declare_topology(self) -> None:
        connection = pika.BlockingConnection(pika.URLParameters(self.broker.amqp_url))
        try:
            topology.declare(connection.channel(), self.settings.queues)
        finally:
            connection.close()

    def start(self) -> "AsyncShop":
        if isinstance(self.broker, RabbitCluster):   # a quorum queue gets one member on every node
            self.settings = replace(self.settings, quorum_members=self.broker.size)
        self.declare_topology()

        def config(service: str, db: str) -> Any:
            def for_index(index: int) -> Any:
                name = f"{service}-{index}"
                amqp, fallbacks = self.amqp_urls_via(f"{service}-broker", f"{service}->broker")
                return replace(self.base_config(name, db), amqp_url=amqp, amqp_fallbacks=fallbacks)
            return for_index

        def barista_config(index: int) -> Any:   # one broker proxy per replica, also for scaled-in ones
            amqp, fallbacks = self.amqp_urls_via(f"barista-{index}-broker", "barista->broker", index)
            return self.barista_config(index, amqp_url=amqp, amqp_fallbacks=fallbacks)

        # On a cluster the links take the nodes in turn, in this order: with two baristas the order
        # service's relay is at home on the third node, not on the first, where the topology was
        # declared and the queues' leaders start: a leader's death then hits the relay as an
        # election under a live connection, not only as a lost connection (broker-node-outage)
        self.supervisor.add(self.service("barista", "barista.py", barista_config), self.settings.baristas)
        self.supervisor.add(self.service("orders", "order_service.py", config("orders", "orders.db")), 1)
        self.supervisor.add(self.service("waiter", "waiter.py", config("waiter", "waiter.db")), 1)
        self.proxy("entry", "customer->orders", self.port("orders-1"))
        self.wait_linked(self.link_timeout_s)
        return self

    link_timeout_s = 30.0   # how long a starting shop may take to connect and subscribe

    def settled(self) -> bool:
        """Every running replica holds its broker link again (consumers subscribed, orders connected)."""
        return not self.unsubscribed(linked=True)

    def wait_linked(self, timeout: float) -> None:
        """Block until every running replica holds its broker link: the consumers subscribed to
        their queue, the order service connected. A service answers /health before its link is up
        and declares the topology when it connects, so a fault started before this could be undone
        by a late declaration. ProcessError naming the replicas still unlinked after `timeout` s."""
        deadline = time.monotonic() + timeout
        while (missing := self.unsubscribed(linked=True)) and time.monotonic() < deadline:
            time.sleep(0.05)
        if missing:
            raise ProcessError(f"async shop: {', '.join(missing)} not linked to the broker within {timeout:g}s")

    def brewed(self) -> list[dict[str, Any]]:
        return read_all(self.first_live_url("barista"), "/brews")

    def redeliveries(self) -> list[dict[str, Any]]:
        return read_all(self.first_live_url("barista"), "/redeliveries")

    def served(self) -> list[dict[str, Any]]:
        return read_all(self.first_live_url("waiter"), "/served")

    def order_records(self) -> list[dict[str, Any]]:
        """The order service's rows: it stores an order only when it takes it (with its event in
        the outbox, or after the broker confirmed it in direct mode)."""
        return [{"ref": row.get("ref"), "order_id": row["id"], "status": row["status"], "taken": True}
                for row in read_all(self.first_live_url("orders"), "/orders")]

    def _ready(self, queue: str) -> int:
        """Messages ready in `queue`, from a passive declare: exact now, unlike the management API's
        statistics, which lag by seconds. One harness connection per calling thread (pika rule).
        A kept connection that the broker dropped since its last use (a node restarted or cut off
        by a fault: pika learns of it only on the next read, StreamLostError) is replaced once;
        a new connection that fails raises."""
        while True:
            conn = getattr(self._amqp, "conn", None)
            fresh = conn is None or not conn.is_open
            try:
                if fresh:
                    conn = self._amqp.conn = pika.BlockingConnection(pika.URLParameters(self.broker.amqp_url))
                    self._amqp.channel = conn.channel()
                    self._connections.append(conn)
                return int(self._amqp.channel.queue_declare(queue, passive=True).method.message_count)
            except pika.exceptions.AMQPConnectionError:
                self._amqp.conn = None
                if fresh:
                    raise
            except Exception:
                self._amqp.conn = None
                raise

    def backlog(self) -> dict[str, Any]:
        """Orders waiting: taken and not yet published (`outbox_pending`: the order service's outbox,
        None and counted 0 when it did not answer), ready in the barista queue (passive declare:
        exact now), held unacked by baristas, brewed coffees waiting for the waiter, dead letters;
        `held`: unacked orders per barista replica (each replica's /health, skipped when it does not
        answer); `consumers` on the barista queue and `orders_node`, the broker node leading (quorum)
        or holding (classic) it (management API), and `baristas` (replicas now).
        The unacked count is the sum of `held` when every running replica answered (`unacked_from`
        "replicas"), else the management API's, whose statistics lag by seconds and can stay stale
        when the queue is idle (`unacked_from` "management"). The outbox is read first: an order
        published between the readings counts twice, never zero times."""
        outbox = self.outbox_pending()
        orders_ready = self._ready(topology.ORDERS_QUEUE)
        brewed_ready = self._ready(topology.BREWED_QUEUE)
        stats = self.broker.queue_stats(topology.ORDERS_QUEUE)
        held = self.held()
        running = sum(1 for r in self.supervisor.replicas("barista") if r.state == "running")
        exact = len(held) == running  # every running replica said what it holds: exact, no stats lag
        unacked = sum(held.values()) if exact else stats["unacked"]
        return {"outbox_pending": outbox, "orders_ready": orders_ready, "orders_unacked": unacked,
                "brewed_waiting": brewed_ready, "dead_letters": self.dead_letters(),
                "total": (outbox or 0) + orders_ready + unacked + brewed_ready,
                "unacked_from": "replicas" if exact else "management", "management_unacked": stats["unacked"],
                "consumers": stats["consumers"], "orders_node": stats["node"], "held": held,
                "baristas": self.replica_count("barista")}

    def outbox_pending(self) -> int | None:
        """Orders the order service took and has not yet had confirmed by the broker (its outbox
        rows waiting to be published: during a broker outage or resource alarm the backlog is
        there, not in a queue); None when no order service answered."""
        for replica in self.supervisor.replicas("orders"):
            if replica.state == "running":
                try:
                    return int(http_json(self.url(replica.name) + "/health", timeout=1.0)["outbox_pending"])
                except Exception:  # busy or going away: no reading this time
                    continue
        return None

    def held(self) -> dict[str, int]:
        """Orders each live barista replica holds unacked (its prefetch buffer plus brews)."""
        held: dict[str, int] = {}
        for replica in self.supervisor.replicas("barista"):
            if replica.state != "running":
                continue
            try:
                held[replica.name] = int(http_json(self.url(replica.name) + "/health", timeout=0.5)["held"])
            except Exception:  # busy or going away: no reading this time
                continue
        return held

    CONSUMERS = ("barista", "waiter")   # the services that must hold a subscription to their queue
    subscribe_grace_s = 10.0            # how long a healed shop may take to subscribe again

    def unsubscribed(self, linked: bool = False) -> list[str]:
        """Running replicas of the consuming services whose /health does not say `subscribed`
        (connected with a live subscription to their queue), or that did not answer; with `linked`,
        also the order service's replicas whose broker link is not "connected"."""
        missing = []
        for service in (*self.CONSUMERS, *(("orders",) if linked else ())):
            for replica in self.supervisor.replicas(service):
                if replica.state != "running":
                    continue
                try:
                    answer = http_json(self.url(replica.name) + "/health", timeout=1.0)
                    ok = bool(answer.get("subscribed") if service in self.CONSUMERS
                              else answer.get("broker") == "connected")
                except Exception:
                    ok = False
                if not ok:
                    missing.append(replica.name)
        return missing

    def heal_report(self) -> dict[str, Any]:
        """The base report, and `unsubscribed`: consumers still without a subscription once
        `subscribe_grace_s` has passed (a replica restarted at the heal reconnects first). A run
        where a replica stays subscribed to nothing is not healed: it looks alive and serves nothing."""
        report = super().heal_report()
        deadline = time.monotonic() + self.subscribe_grace_s
        while (missing := self.unsubscribed()) and time.monotonic() < deadline:
            time.sleep(0.2)
        report["unsubscribed"] = missing
        report["healed"] = bool(report["healed"]) and not missing
        if isinstance(self.broker, RabbitCluster):   # every member running, no partition, no rule left
            cluster = self.broker.health()
            rules = self.broker.rules_left()
            report["cluster"] = {**cluster, "iptables_rules_left": len(rules)}
            report["healed"] = bool(report["healed"]) and cluster["healed"] and not rules
        return report

    def dead_letters(self) -> int:
        return self._ready(topology.DEAD_LETTERS)

    def stop(self) -> None:
        try:
            super().stop()
        finally:  # the sampling threads have ended by now: closing their connections is safe
            for conn in self._connections:
                if conn.is_open:
                    try:
                        conn.close()
                    except Exception:
                        pass
