"""Async shop, waiter worker: consumes `CoffeeBrewed`, serves (records it), publishes `CoffeeServed`, acks.

With idempotency on (default) an order is served once however often its `CoffeeBrewed` arrives;
with it off every delivery is a serving, so duplicates show up in `GET /served`.
HTTP: GET /served?after=&limit=, GET /health.
Run: python systems/async/waiter.py --config FILE.json
"""
from __future__ import annotations

import asyncio
import logging
import uuid

from aiohttp import web

from cafe.amqp import Consumer, Delivery
from cafe.config import ServiceConfig, load_from_argv
from cafe.events import InvalidEvent, decode, new_event
from cafe.store import Database, now
from cafe.topology import BREWED_QUEUE
from cafe.web import paging, run_app

log = logging.getLogger("cafe.waiter")
EVENT_NS = uuid.UUID("7f1c6a52-3b0e-4d0c-9a55-2f4f1c0de002")

SCHEMA = """
CREATE TABLE IF NOT EXISTS served (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    serve_id TEXT NOT NULL UNIQUE,
    order_id TEXT NOT NULL,
    ref TEXT,
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


def build_app(config: ServiceConfig) -> web.Application:
    db = Database(config.db, SCHEMA)
    stats = {"served": 0, "duplicates_skipped": 0, "dead_lettered": 0}

    def on_delivery(delivery: Delivery) -> None:
        try:
            event = decode(delivery.body)
            if event.event_type != "CoffeeBrewed":
                raise InvalidEvent(f"eventType: waiter consumes CoffeeBrewed, got {event.event_type}")
        except InvalidEvent as exc:
            log.warning("dead-lettering an invalid message: %s", exc)
            stats["dead_lettered"] += 1
            consumer.reject(delivery, requeue=False)
            return
        p = event.payload
        with db.transaction() as tx:
            seen = tx.execute("SELECT serve_id FROM served WHERE order_id = ? LIMIT 1",
                              (event.order_id,)).fetchone() if config.idempotency else None
            if seen is None:
                serve_id = str(uuid.uuid4())
                tx.execute(
                    "INSERT INTO served (serve_id, order_id, ref, product, size, waiter, brew_id,"
                    " brewed_event_id, redelivered, served_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (serve_id, event.order_id, p.get("ref"), p["product"], p["size"], config.name,
                     p["brewId"], event.event_id, int(delivery.redelivered), now()))
                stats["served"] += 1
            else:
                serve_id = seen[0]
                stats["duplicates_skipped"] += 1
        served = new_event("CoffeeServed", event.order_id, {
            "product": p["product"], "size": p["size"], "ref": p.get("ref"), "waiter": config.name,
            "brewId": p["brewId"]}, event_id=str(uuid.uuid5(EVENT_NS, serve_id)))
        try:
            consumer.ack(delivery, then_publish=served)
        except Exception as exc:  # publish refused: the delivery comes back and is deduplicated
            log.warning("could not publish CoffeeServed for %s: %s", event.order_id, exc)

    consumer = Consumer(f"{config.name}-consumer", config.amqp_url, BREWED_QUEUE, on_delivery,
                        prefetch=config.prefetch, heartbeat_s=config.heartbeat_s,
                        queue_type=config.queue_type, delivery_limit=config.delivery_limit)

    async def served(request: web.Request) -> web.Response:
        after, limit = paging(request)
        return web.json_response(db.page("served", after, limit))

    async def health(request: web.Request) -> web.Response:
        return web.json_response({
            "status": "ok", "service": "waiter", "name": config.name,
            "broker": "connected" if consumer.connected.is_set() else "disconnected",
            "idempotency": config.idempotency, "disconnects": consumer.disconnects, **stats})

    async def start(_app: web.Application) -> None:
        consumer.start()

    async def stop(_app: web.Application) -> None:
        await asyncio.get_running_loop().run_in_executor(None, consumer.stop)
        db.close()

    app = web.Application()
    app.add_routes([web.get("/served", served), web.get("/health", health)])
    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return app


def main() -> None:
    config = load_from_argv(__doc__.splitlines()[0])
    run_app(build_app(config), config.host, config.port)


if __name__ == "__main__":
    main()
