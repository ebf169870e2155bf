"""Async shop, waiter worker: consumes `CoffeeBrewed`, serves (records it), publishes `CoffeeServed`, acks.

With idempotency on (default) an order is served once however often its `CoffeeBrewed` arrives;
with it off every delivery is a serving, so duplicates show up in `GET /served`.
HTTP: GET /served?after=&limit= (pages), GET /feed and /feed/{page} (an Atom-style archived feed of
servings, see cafe/feed.py), GET /health.
Run: python systems/async/waiter.py --config FILE.json
"""
from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from aiohttp import web

from cafe import feed
from cafe.amqp import Consumer, Delivery
from cafe.config import ServiceConfig
from cafe.events import Event, InvalidEvent, decode, new_event
from cafe.store import Database, now
from cafe.topology import BREWED_QUEUE
from cafe.web import application, error, health, pages, serve


def served_entry(row: dict[str, Any]) -> dict[str, Any]:
    """A feed entry: one serving, as the CoffeeServed fact."""
    return {"id": row["serve_id"], "seq": row["seq"], "type": "CoffeeServed", "orderId": row["order_id"],
            "ref": row["ref"], "customer": row["customer"], "product": row["product"], "size": row["size"],
            "servedAt": row["served_at"]}

log = logging.getLogger("cafe.waiter")
EVENT_NS = uuid.UUID("7f1c6a52-3b0e-4d0c-9a55-2f4f1c0de002")

SCHEMA = """
CREATE TABLE IF NOT EXISTS served (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    serve_id TEXT NOT NULL UNIQUE,
    order_id TEXT NOT NULL,
    ref TEXT,
    customer TEXT,
    product TEXT NOT NULL,
    size TEXT NOT NULL,
    waiter TEXT NOT NULL,
    brew_id TEXT NOT NULL,
    brewed_event_id TEXT NOT NULL,
    redelivered INTEGER NOT NULL,
    served_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS served_order ON served (order_id);
"""


class Waiter:
    """Serves brewed coffees, independent of HTTP: for each CoffeeBrewed delivered, records a serving
    in `db` (SCHEMA) on the database's thread, then publishes CoffeeServed and acks once it is
    confirmed (up to `prefetch` deliveries at once, their confirms in flight together). With
    idempotency on, an order already served is not served again: its CoffeeServed is published again
    with the same eventId. A message that is not a valid CoffeeBrewed is dead-lettered."""

    def __init__(self, config: ServiceConfig, db: Database) -> None:
        self.config, self.db = config, db
        self.stats = {"served": 0, "duplicates_skipped": 0, "dead_lettered": 0}
        self.consumer = Consumer(f"{config.name}-consumer", config.amqp_urls, BREWED_QUEUE, batch=self.on_deliveries,
                                 prefetch=config.prefetch, heartbeat_s=config.heartbeat_s,
                                 queues=config.queues)

    async def on_deliveries(self, deliveries: list[Delivery]) -> None:
        """Deliveries that arrived together: the invalid ones dead-lettered, the others served in
        one transaction (on the database's thread: cafe.store's `call`), then each CoffeeServed published, and each
        delivery acked once its event is confirmed (all of them in flight at once)."""
        events: list[tuple[Event, Delivery]] = []
        for delivery in deliveries:
            try:
                event = decode(delivery.body)
                if event.event_type != "CoffeeBrewed":
                    raise InvalidEvent(f"eventType: waiter consumes CoffeeBrewed, got {event.event_type}")
            except InvalidEvent as exc:
                log.warning("dead-lettering an invalid message: %s", exc)
                self.stats["dead_lettered"] += 1
                await self.consumer.reject(delivery, requeue=False)
                continue
            events.append((event, delivery))
        if not events:
            return
        served = await self.db.call(self.serve, events)
        await asyncio.gather(*(self._settle(delivery, event) for (_, delivery), event in zip(events, served, strict=True)))

    async def _settle(self, delivery: Delivery, served: Event) -> None:
        try:
            await self.consumer.ack(delivery, then_publish=served)
        except Exception as exc:  # publish refused: the delivery comes back and is deduplicated
            log.warning("could not publish CoffeeServed for %s: %s", served.order_id, exc)

    def serve(self, events: list[tuple[Event, Delivery]]) -> list[Event]:
        """Record the serving of each event's order (once, with idempotency on), in one transaction:
        their CoffeeServed. Runs in the database's thread."""
        with self.db.transaction() as tx:
            return [self._serve(tx, event, delivery) for event, delivery in events]

    def _serve(self, tx: Any, event: Event, delivery: Delivery) -> Event:
        p = event.payload
        seen = tx.execute("SELECT serve_id FROM served WHERE order_id = ? LIMIT 1",
                          (event.order_id,)).fetchone() if self.config.idempotency else None
        if seen is None:
            serve_id = str(uuid.uuid4())
            tx.execute(
                "INSERT INTO served (serve_id, order_id, ref, customer, product, size, waiter, brew_id,"
                " brewed_event_id, redelivered, served_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (serve_id, event.order_id, p.get("ref"), p.get("customer"), p["product"], p["size"],
                 self.config.name, p["brewId"], event.event_id, int(delivery.redelivered), now()))
            self.stats["served"] += 1
        else:
            serve_id = seen[0]
            self.stats["duplicates_skipped"] += 1
        return new_event("CoffeeServed", event.order_id, {
            "product": p["product"], "size": p["size"], "ref": p.get("ref"), "customer": p.get("customer"),
            "waiter": self.config.name, "brewId": p["brewId"]}, event_id=str(uuid.uuid5(EVENT_NS, serve_id)))

    async def close(self) -> None:
        await self.consumer.stop()
        self.db.close()


def build_app(config: ServiceConfig) -> web.Application:
    db = Database(config.db, SCHEMA)
    waiter = Waiter(config, db)

    def last_seq() -> int:
        return int(db.query("SELECT COALESCE(MAX(seq), 0) AS n FROM served")[0]["n"])

    def feed_page(page: int) -> web.Response:
        after, until = feed.bounds(page, config.page_size)
        rows = db.query("SELECT * FROM served WHERE seq > ? AND seq <= ?", (after, until))
        doc = feed.document(page, rows, size=config.page_size, last_seq=last_seq(), base="/feed",
                            feed_id=f"urn:chaoscafe:{config.name}:served", entry=served_entry)
        cache = "public, max-age=31536000, immutable" if doc["archived"] else "no-cache"
        return web.json_response(doc, headers={"Cache-Control": cache})

    async def feed_current(request: web.Request) -> web.Response:
        return feed_page(feed.page_count(last_seq(), config.page_size))

    async def feed_archive(request: web.Request) -> web.Response:
        try:
            page = int(request.match_info["page"])
        except ValueError:
            return error(400, "page must be an integer", field="page", value=request.match_info["page"])
        if not 1 <= page <= feed.page_count(last_seq(), config.page_size):
            return error(404, "no such page", field="page", value=page)
        return feed_page(page)

    def counts() -> dict[str, Any]:
        return {"broker": waiter.consumer.broker, "blocked": waiter.consumer.blocked, "idempotency": config.idempotency,
                "disconnects": waiter.consumer.disconnects, "failovers": waiter.consumer.failovers, "subscribed": waiter.consumer.subscribed,
                "resubscribed": waiter.consumer.resubscribed, **waiter.stats}

    return application([pages("/served", db, "served"), web.get("/feed", feed_current),
                        web.get("/feed/{page}", feed_archive), health("waiter", config.name, counts)],
                       start=[waiter.consumer.start], stop=[waiter.close])


if __name__ == "__main__":
    serve(__doc__, build_app)
