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
from cafe.config import ServiceConfig, load_from_argv
from cafe.events import Event, new_event
from cafe.menu import load_menu
from cafe.orders import OrderRejected, OrderRequest, parse_order
from cafe.store import Database, now
from cafe.web import MAX_BODY, error, paging, read_body, run_app

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


class Relay(Connection):
    """Publishes pending outbox rows (outbox mode) or requests' events (direct mode), confirmed."""

    def __init__(self, config: ServiceConfig, db: Database, hooks: fault_hooks.Hooks) -> None:
        super().__init__(f"{config.name}-relay", config.amqp_url, heartbeat_s=config.heartbeat_s,
                         queue_type=config.queue_type, delivery_limit=config.delivery_limit)
        self.config, self.db, self.hooks = config, db, hooks
        self.published = 0

    def on_tick(self, channel: Any) -> None:
        if self.config.publish_mode == "outbox":
            self.flush()

    def flush(self) -> None:
        """Publish up to relay_batch pending outbox events, then mark them sent (at least once)."""
        if self.channel is None:
            return
        rows = self.db.query("SELECT x.seq, x.event_id, x.event_type, x.body, o.ref FROM outbox x LEFT JOIN orders o"
                             " ON o.id = x.order_id WHERE x.sent_at IS NULL ORDER BY x.seq LIMIT ?",
                             (self.config.relay_batch,))
        sent: list[int] = []
        try:
            for row in rows:
                publish_encoded(self.channel, row["event_type"], row["event_id"], row["body"])
                if self.hooks.hits("duplicate_publish", str(row["ref"] or row["event_id"])):
                    publish_encoded(self.channel, row["event_type"], row["event_id"], row["body"])
                sent.append(row["seq"])
        finally:
            if sent:
                with self.db.transaction() as tx:
                    tx.executemany("UPDATE outbox SET sent_at = ? WHERE seq = ?", [(now(), s) for s in sent])
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


def build_app(config: ServiceConfig) -> web.Application:
    db = Database(config.db, SCHEMA)
    menu = load_menu(config.menu)
    hooks = fault_hooks.Hooks()
    relay = Relay(config, db, hooks)

    def ordered_event(order_id: str, order: OrderRequest) -> Event:
        return new_event("CoffeeOrdered", order_id, order.to_dict())

    def store(order_id: str, order: OrderRequest, event: Event, received: float, outbox: bool,
              key: str | None) -> dict[str, Any]:
        """Insert the order (and its outbox event); sqlite3.IntegrityError if `key` was used before."""
        record = {"id": order_id, **order.to_dict(), "idempotency_key": key, "status": "accepted",
                  "event_id": event.event_id, "received_at": received, "accepted_at": now()}
        with db.transaction() as tx:
            tx.execute(
                "INSERT INTO orders (id, ref, product, size, customer, idempotency_key, status, event_id,"
                " received_at, accepted_at) VALUES (:id, :ref, :product, :size, :customer, :idempotency_key,"
                " :status, :event_id, :received_at, :accepted_at)", record)
            if outbox:
                tx.execute("INSERT INTO outbox (event_id, order_id, event_type, body, created_at)"
                           " VALUES (?, ?, ?, ?, ?)", (event.event_id, order_id, event.event_type,
                                                     event.encode(), record["accepted_at"]))
        return record

    def by_key(key: str | None) -> dict[str, Any] | None:
        rows = db.query("SELECT * FROM orders WHERE idempotency_key = ?", (key,)) if key else []
        return rows[0] if rows else None

    async def place_order(request: web.Request) -> web.Response:
        received = now()
        body = await read_body(request)
        try:
            order = parse_order(body, menu)
        except OrderRejected as exc:
            return web.json_response(exc.as_json(), status=400)
        key = request.headers.get("Idempotency-Key") if config.idempotency else None
        earlier = by_key(key)
        if earlier is not None:  # a retry: the order its first attempt created
            return web.json_response({**earlier, "replayed": True}, status=202)
        order_id = str(uuid.uuid4())
        event = ordered_event(order_id, order)
        if config.publish_mode == "outbox":
            try:
                record = store(order_id, order, event, received, outbox=True, key=key)
            except sqlite3.IntegrityError:  # the same key, concurrently: the other attempt won
                return web.json_response({**(by_key(key) or {}), "replayed": True}, status=202)
            relay.call_soon(relay.flush)
        else:
            try:
                await asyncio.wait_for(asyncio.wrap_future(relay.publish_now(event)), DIRECT_TIMEOUT_S)
            except TimeoutError:
                return error(504, "broker did not confirm the order in time", id=order_id)
            except Exception as exc:
                return error(503, f"broker unavailable: {exc.__class__.__name__}: {exc}", id=order_id)
            try:
                record = store(order_id, order, event, received, outbox=False, key=key)
            except sqlite3.IntegrityError:  # published twice: a concurrent retry (direct mode's race)
                return web.json_response({**(by_key(key) or {}), "replayed": True}, status=202)
        return web.json_response(record, status=202)

    async def get_order(request: web.Request) -> web.Response:
        rows = db.query("SELECT o.*, x.sent_at AS published_at FROM orders o LEFT JOIN outbox x"
                        " ON x.event_id = o.event_id WHERE o.id = ?", (request.match_info["order_id"],))
        if not rows:
            return error(404, "no such order", id=request.match_info["order_id"])
        return web.json_response(rows[0])

    async def list_orders(request: web.Request) -> web.Response:
        after, limit = paging(request)
        return web.json_response(db.page("orders", after, limit))

    async def health(request: web.Request) -> web.Response:
        pending = db.query("SELECT COUNT(*) AS n FROM outbox WHERE sent_at IS NULL")[0]["n"]
        return web.json_response({"status": "ok", "service": "orders", "name": config.name,
                                  "broker": "connected" if relay.connected.is_set() else "disconnected",
                                  "publish_mode": config.publish_mode, "outbox_pending": pending,
                                  "published": relay.published, "hooks": hooks.state()})

    async def start_relay(_app: web.Application) -> None:
        relay.start()

    async def stop_relay(_app: web.Application) -> None:
        await asyncio.get_running_loop().run_in_executor(None, relay.stop)
        db.close()

    app = web.Application(client_max_size=MAX_BODY)
    app.add_routes([web.post("/orders", place_order), web.get("/orders", list_orders),
                    web.get("/orders/{order_id}", get_order), web.get("/health", health),
                    *fault_hooks.routes(hooks, ("duplicate_publish",))])
    app.on_startup.append(start_relay)
    app.on_cleanup.append(stop_relay)
    return app


def main() -> None:
    config = load_from_argv(__doc__.splitlines()[0])
    run_app(build_app(config), config.host, config.port)


if __name__ == "__main__":
    main()
