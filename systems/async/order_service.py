"""Async shop, order service (A): `POST /orders` records the order, publishes `CoffeeOrdered`, answers 202.

publish_mode "outbox" (default): the order row and its event go into this service's SQLite database
in one transaction; a relay thread publishes pending events with publisher confirms and marks them
sent. An accepted order survives a broker outage: the relay retries until the broker is back.
publish_mode "direct" (the naive variant): the request publishes itself and waits for the confirm;
when the broker is unreachable the order is refused with 503.
With idempotency on, an `Idempotency-Key` header makes a retried request return the order its
first attempt created (202, the same order) instead of taking a second one.
Fault hook (cafe/hooks.py): `duplicate_publish` publishes chosen events twice, as a producer does
when a confirm is lost and it cannot know the broker already has the message.
HTTP: POST /orders, GET /orders?after=&limit=, GET /orders/{id}, GET /health, GET/POST /control/faults.
Run: python systems/async/order_service.py --config FILE.json
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sqlite3
import uuid
from typing import Any

from aiohttp import web

from cafe import hooks as fault_hooks
from cafe.amqp import Connection, publish, publish_encoded
from cafe.config import ServiceConfig
from cafe.events import Event, new_event
from cafe.menu import load_menu
from cafe.ordering import order_routes
from cafe.orders import OrderRequest
from cafe.store import Database, now
from cafe.web import MAX_BODY, application, blocking, health, serve

log = logging.getLogger("cafe.orders")
DIRECT_TIMEOUT_S = 5.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    ref TEXT,
    product TEXT NOT NULL,
    size TEXT NOT NULL,
    customer TEXT,
    idempotency_key TEXT UNIQUE,    -- the customer's Idempotency-Key (idempotency on), else NULL
    status TEXT NOT NULL,           -- accepted (what happens next is told by events)
    event_id TEXT NOT NULL,
    received_at REAL NOT NULL,
    accepted_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    order_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    body BLOB NOT NULL,
    created_at REAL NOT NULL,
    sent_at REAL
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (sent_at) WHERE sent_at IS NULL;
"""


Answer = tuple[int, dict[str, Any]]   # (HTTP status, JSON body)


class OrderBook:
    """The order service's database (SCHEMA): orders, and the outbox of events still to publish."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, order_id: str, order: OrderRequest, event: Event, received: float, *, outbox: bool,
            key: str | None) -> dict[str, Any]:
        """Store the order (and, when `outbox`, its event as a pending outbox row) in one transaction;
        the order's record. sqlite3.IntegrityError (nothing stored) if `key` was used before."""
        record = {"id": order_id, **order.to_dict(), "idempotency_key": key, "status": "accepted",
                  "event_id": event.event_id, "received_at": received, "accepted_at": now()}
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO orders (id, ref, product, size, customer, idempotency_key, status, event_id,"
                " received_at, accepted_at) VALUES (:id, :ref, :product, :size, :customer, :idempotency_key,"
                " :status, :event_id, :received_at, :accepted_at)", record)
            if outbox:
                tx.execute("INSERT INTO outbox (event_id, order_id, event_type, body, created_at)"
                           " VALUES (?, ?, ?, ?, ?)", (event.event_id, order_id, event.event_type,
                                                     event.encode(), record["accepted_at"]))
        return record

    def by_key(self, key: str | None) -> dict[str, Any] | None:
        """The order stored under Idempotency-Key `key` (None for no key)."""
        rows = self.db.query("SELECT * FROM orders WHERE idempotency_key = ?", (key,)) if key else []
        return rows[0] if rows else None

    def get(self, order_id: str) -> dict[str, Any] | None:
        """The order with `published_at`: when its outbox row was sent (None if not yet, or direct)."""
        rows = self.db.query("SELECT o.*, x.sent_at AS published_at FROM orders o LEFT JOIN outbox x"
                             " ON x.event_id = o.event_id WHERE o.id = ?", (order_id,))
        return rows[0] if rows else None

    def pending(self, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` unsent outbox rows, oldest first: seq, event_id, event_type, body, ref."""
        return self.db.query("SELECT x.seq, x.event_id, x.event_type, x.body, o.ref FROM outbox x LEFT JOIN"
                             " orders o ON o.id = x.order_id WHERE x.sent_at IS NULL ORDER BY x.seq LIMIT ?",
                             (limit,))

    def pending_count(self) -> int:
        return int(self.db.query("SELECT COUNT(*) AS n FROM outbox WHERE sent_at IS NULL")[0]["n"])

    def mark_sent(self, seqs: list[int]) -> None:
        """The outbox rows `seqs` were published (confirmed): they are not sent again."""
        with self.db.transaction() as tx:
            tx.executemany("UPDATE outbox SET sent_at = ? WHERE seq = ?", [(now(), s) for s in seqs])


class Relay(Connection):
    """Publishes pending outbox rows (outbox mode) or requests' events (direct mode), confirmed."""

    def __init__(self, config: ServiceConfig, book: OrderBook, hooks: fault_hooks.Hooks) -> None:
        super().__init__(f"{config.name}-relay", config.amqp_url, heartbeat_s=config.heartbeat_s,
                         queue_type=config.queue_type, delivery_limit=config.delivery_limit)
        self.config, self.book, self.hooks = config, book, hooks
        self.published = 0

    def on_tick(self, channel: Any) -> None:
        if self.config.publish_mode == "outbox":
            self.flush()

    def flush(self) -> None:
        """Publish up to relay_batch pending outbox events in order, then mark sent those the broker
        confirmed (at least once: the first one that fails, and all after it, stay pending)."""
        if self.channel is None:
            return
        rows = self.book.pending(self.config.relay_batch)
        sent: list[int] = []
        try:
            for row in rows:
                publish_encoded(self.channel, row["event_type"], row["event_id"], row["body"])
                if self.hooks.hits("duplicate_publish", str(row["ref"] or row["event_id"])):
                    publish_encoded(self.channel, row["event_type"], row["event_id"], row["body"])
                sent.append(row["seq"])
        finally:
            if sent:
                self.book.mark_sent(sent)
                self.published += len(sent)

    def publish_now(self, event: Event) -> concurrent.futures.Future[None]:
        """Direct mode: publish from the connection thread; the future fails if not confirmed."""
        future: concurrent.futures.Future[None] = concurrent.futures.Future()

        def run() -> None:
            try:
                publish(self.channel, event)
                if self.hooks.hits("duplicate_publish", str(event.payload.get("ref") or event.event_id)):
                    publish(self.channel, event)
                self.published += 1
                future.set_result(None)
            except Exception as exc:
                future.set_exception(exc)

        if not self.connected.is_set() or not self.call_soon(run):
            future.set_exception(ConnectionError("broker not connected"))
        return future


class OrderDesk:
    """Accepts orders: `accept(order, received, key)` answers (HTTP status, body).

    A key already used answers its order again (202, "replayed": true), nothing new stored or
    published. Else a new order id and its CoffeeOrdered event: in "outbox" mode the order and the
    event are stored in one transaction and the relay is nudged (202: accepted, published later, at
    least once); in "direct" mode the event is published first and the order stored only once the
    broker confirmed it (504 no confirm within `DIRECT_TIMEOUT_S`, 503 broker unavailable: nothing
    stored). A concurrent attempt with the same key that stored first wins: its order is answered."""

    def __init__(self, book: OrderBook, relay: Relay, publish_mode: str) -> None:
        self.book, self.relay, self.publish_mode = book, relay, publish_mode

    async def accept(self, order: OrderRequest, received: float, key: str | None) -> Answer:
        earlier = self.book.by_key(key)
        if earlier is not None:  # a retry: the order its first attempt created
            return 202, {**earlier, "replayed": True}
        order_id = str(uuid.uuid4())
        event = new_event("CoffeeOrdered", order_id, order.to_dict())
        if self.publish_mode == "outbox":
            try:
                record = self.book.add(order_id, order, event, received, outbox=True, key=key)
            except sqlite3.IntegrityError:  # the same key, concurrently: the other attempt won
                return 202, {**(self.book.by_key(key) or {}), "replayed": True}
            self.relay.call_soon(self.relay.flush)
        else:
            try:
                await asyncio.wait_for(asyncio.wrap_future(self.relay.publish_now(event)), DIRECT_TIMEOUT_S)
            except TimeoutError:
                return 504, {"error": "broker did not confirm the order in time", "id": order_id}
            except Exception as exc:
                return 503, {"error": f"broker unavailable: {exc.__class__.__name__}: {exc}", "id": order_id}
            try:
                record = self.book.add(order_id, order, event, received, outbox=False, key=key)
            except sqlite3.IntegrityError:  # published twice: a concurrent retry (direct mode's race)
                return 202, {**(self.book.by_key(key) or {}), "replayed": True}
        return 202, record


def build_app(config: ServiceConfig) -> web.Application:
    db = Database(config.db, SCHEMA)
    menu = load_menu(config.menu)
    hooks = fault_hooks.Hooks()
    book = OrderBook(db)
    relay = Relay(config, book, hooks)
    desk = OrderDesk(book, relay, config.publish_mode)

    def counts() -> dict[str, Any]:
        return {"broker": relay.broker, "publish_mode": config.publish_mode, "outbox_pending": book.pending_count(),
                "published": relay.published, "hooks": hooks.state()}

    return application([*order_routes(menu, desk.accept, book.get, db, idempotency=config.idempotency),
                        health("orders", config.name, counts), *fault_hooks.routes(hooks, ("duplicate_publish",))],
                       start=[relay.start], stop=[blocking(relay.stop), db.close], max_body=MAX_BODY)


if __name__ == "__main__":
    serve(__doc__, build_app)
