"""Brewed bell, a new consumer added to a running async shop: rings once per coffee brewed.

SCENARIOS.md item 8. On start it declares its own queue `bell.brewed`, binds it to CoffeeBrewed
and consumes it; nothing else in the shop changes or restarts. Every CoffeeBrewed published after
the binding reaches it. A ring is keyed by brewId, so a redelivered event does not ring twice.
HTTP: GET /rings?after=&limit=, GET /health (joined_at: when the binding was in place).
Run: python systems/newcomers/bell.py --config FILE.json
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from cafe.amqp import Consumer, Delivery
from cafe.config import ServiceConfig
from cafe.events import InvalidEvent, decode
from cafe.store import Database, now
from cafe.topology import EXCHANGE
from cafe.web import application, health, pages, serve

log = logging.getLogger("cafe.bell")
BELL_QUEUE = "bell.brewed"

SCHEMA = """
CREATE TABLE IF NOT EXISTS rings (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    brew_id TEXT NOT NULL UNIQUE,
    order_id TEXT NOT NULL,
    ref TEXT,
    brewed_at REAL,
    rung_at REAL NOT NULL
);
"""


class Bell(Consumer):
    def __init__(self, config: ServiceConfig, db: Database) -> None:
        super().__init__(f"{config.name}-consumer", config.amqp_url, BELL_QUEUE, self.on_delivery,
                         prefetch=config.prefetch, heartbeat_s=config.heartbeat_s,
                         queues=config.queues, ordered=True)
        self.db = db
        self.joined_at: float | None = None
        self.stats = {"rings": 0, "duplicates_skipped": 0, "invalid": 0}

    async def on_connect(self, channel: Any) -> None:
        await channel.queue_declare(BELL_QUEUE, durable=True,
                                    arguments=self.queues.arguments(limited=False))
        await channel.queue_bind(BELL_QUEUE, EXCHANGE, routing_key="CoffeeBrewed")
        if self.joined_at is None:
            self.joined_at = now()
        await super().on_connect(channel)

    async def on_delivery(self, delivery: Delivery) -> None:
        try:
            event = decode(delivery.body)
        except InvalidEvent as exc:
            log.warning("dead-lettering an invalid message: %s", exc)
            self.stats["invalid"] += 1
            await self.reject(delivery, requeue=False)
            return
        p = event.payload

        def ring() -> int:
            with self.db.transaction() as tx:
                return int(tx.execute("INSERT OR IGNORE INTO rings (brew_id, order_id, ref, brewed_at, rung_at)"
                                      " VALUES (?, ?, ?, ?, ?)", (p["brewId"], event.order_id, p.get("ref"),
                                                                  p.get("brewedAt"), now())).rowcount)

        rung = await asyncio.to_thread(ring)
        self.stats["rings" if rung else "duplicates_skipped"] += 1
        await self.ack(delivery)


def build_app(config: ServiceConfig) -> web.Application:
    db = Database(config.db, SCHEMA)
    bell = Bell(config, db)

    def counts() -> dict[str, Any]:
        return {"broker": bell.broker, "joined_at": bell.joined_at, **bell.stats}

    return application([pages("/rings", db, "rings"), health("bell", config.name, counts)],
                       start=[bell.start], stop=[bell.stop, db.close])


if __name__ == "__main__":
    serve(__doc__, build_app)
