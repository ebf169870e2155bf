"""Counter shop (an example chaoscafe plugin), counter service: `POST /orders` brews the coffee and answers with it.

At most `brewers` brews run at once; further customers wait for free hands. An order and its brew
are stored in one transaction of this service's own SQLite database, and the 201 (the order, with
its `brew_id`) is sent once that COMMIT is done: an answered order exists. With idempotency on, a
customer's retry with the same Idempotency-Key gets the stored order again, not a second coffee.
HTTP: POST /orders, GET /orders?after=&limit=, GET /orders/{id}, GET /brews?after=&limit=, GET /health.
Run: python counter.py --config FILE.json
"""
from __future__ import annotations

import asyncio
import sqlite3
import uuid
from typing import Any

from aiohttp import web

from cafe.config import ServiceConfig
from cafe.menu import load_menu
from cafe.ordering import order_routes
from cafe.orders import OrderRequest
from cafe.store import Database, now
from cafe.web import MAX_BODY, application, health, pages, serve

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    ref TEXT,
    product TEXT NOT NULL,
    size TEXT NOT NULL,
    customer TEXT,
    idempotency_key TEXT UNIQUE,
    status TEXT NOT NULL,          -- served
    barista TEXT NOT NULL,
    brew_id TEXT NOT NULL,
    received_at REAL NOT NULL,
    completed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS brews (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    brew_id TEXT NOT NULL UNIQUE,
    order_id TEXT NOT NULL,
    ref TEXT,
    product TEXT NOT NULL,
    size TEXT NOT NULL,
    barista TEXT NOT NULL,
    brew_ms REAL NOT NULL,
    started_at REAL NOT NULL,
    brewed_at REAL NOT NULL
);
"""


class Counter:
    """Takes and brews orders (event loop only; SQLite on the database's own thread)."""

    def __init__(self, config: ServiceConfig, db: Database) -> None:
        self.config, self.db = config, db
        self.hands = asyncio.Semaphore(config.brewers)
        self.state = {"brewing": 0, "waiting": 0, "replayed": 0}

    async def take(self, order: OrderRequest, received: float, key: str | None) -> tuple[int, dict[str, Any]]:
        if key is not None:
            earlier = await self.db.fetch("SELECT * FROM orders WHERE idempotency_key = ?", (key,))
            if earlier:
                self.state["replayed"] += 1
                return 201, {**earlier[0], "replayed": True}
        order_id = str(uuid.uuid4())
        brew_ms = self.config.brew.sample(order.ref or order_id)
        self.state["waiting"] += 1
        try:
            await self.hands.acquire()
        finally:
            self.state["waiting"] -= 1
        self.state["brewing"] += 1
        try:
            started = now()
            await asyncio.sleep(brew_ms / 1000)
            brew = {"brew_id": str(uuid.uuid4()), "order_id": order_id, "ref": order.ref, "product": order.product,
                    "size": order.size, "barista": self.config.name, "brew_ms": brew_ms, "started_at": started,
                    "brewed_at": now()}
            record = {"id": order_id, **order.to_dict(), "idempotency_key": key, "status": "served",
                      "barista": self.config.name, "brew_id": brew["brew_id"], "received_at": received,
                      "completed_at": now()}
            await self.db.atomic(store, record, brew)   # answered after the COMMIT that holds both rows
        finally:
            self.state["brewing"] -= 1
            self.hands.release()
        return 201, record

    async def order(self, order_id: str) -> dict[str, Any] | None:
        rows = await self.db.fetch("SELECT * FROM orders WHERE id = ?", (order_id,))
        return rows[0] if rows else None


def store(tx: sqlite3.Connection, record: dict[str, Any], brew: dict[str, Any]) -> None:
    tx.execute("INSERT INTO brews (brew_id, order_id, ref, product, size, barista, brew_ms, started_at, brewed_at)"
               " VALUES (:brew_id, :order_id, :ref, :product, :size, :barista, :brew_ms, :started_at, :brewed_at)",
               brew)
    tx.execute("INSERT INTO orders (id, ref, product, size, customer, idempotency_key, status, barista, brew_id,"
               " received_at, completed_at) VALUES (:id, :ref, :product, :size, :customer, :idempotency_key,"
               " :status, :barista, :brew_id, :received_at, :completed_at)", record)


def build_app(config: ServiceConfig) -> web.Application:
    db = Database(config.db, SCHEMA)
    counter = Counter(config, db)

    def counts() -> dict[str, Any]:
        return {"brewers": config.brewers, **counter.state}

    return application([*order_routes(load_menu(config.menu), counter.take, counter.order, db,
                                      idempotency=config.idempotency),
                        pages("/brews", db, "brews"), health("counter", config.name, counts)],
                       stop=[db.close], max_body=MAX_BODY)


if __name__ == "__main__":
    serve(__doc__, build_app)
