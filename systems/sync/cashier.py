"""Sync shop, cashier service: `POST /orders` asks a barista to brew over HTTP and waits for the coffee.

The cashier handles `capacity` orders at once; further customers wait in line (429 beyond
`queue_limit`: refused and not stored, so the customer knows it was not taken). Each order is stored in this service's own SQLite database with its outcome:
201 served; 504 the barista did not answer within `barista_timeout_s`; 503 no barista reachable;
502 the barista answered with an error.

Baristas are chosen least-busy: the one with the fewest calls from this cashier in flight, ties
broken round robin. Calls go over one pool of kept-alive connections (at most `capacity` in use, as
many as the tills), not a connection per call. The set of baristas starts as `barista_urls` (named barista-1..N) and can be
replaced at runtime with `PUT /baristas` {"baristas": [{"name", "url"}, ...]} (the harness does so
when it scales); calls already made to a barista that left the set finish normally.
`GET /baristas` and `/health` show the set and the calls in flight per barista.

Idempotency (on unless the shop turns it off): a customer's retry carries the same
`Idempotency-Key` header. An attempt still in progress is joined (the retry gets its answer); a
served order is answered again as it was; a failed one is tried again under the same order id,
which the barista (idempotent by order id) recognises, so a coffee that was brewed although the
call timed out is not brewed twice. The order's row is then replaced (a new `seq`, so readers
paging by seq see the new outcome). Without the key or with idempotency off, every request is a
new order: the hidden duplicate of the synchronous world.
SQLite runs on the database's own thread (cafe.store: `fetch`, `atomic`), never on the event loop;
an order's answer is sent once the COMMIT holding its row is done (orders finishing together share
one COMMIT).
Run: python systems/sync/cashier.py --config FILE.json
"""
from __future__ import annotations

import asyncio
import itertools
import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from cafe.config import ServiceConfig
from cafe.menu import load_menu
from cafe.ordering import order_routes
from cafe.orders import OrderRequest
from cafe.store import Database, now
from cafe.web import MAX_BODY, JSONDecodeError, application, dumps, error, health, loads, read_body, reply, serve

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    ref TEXT,
    product TEXT NOT NULL,
    size TEXT NOT NULL,
    customer TEXT,
    idempotency_key TEXT UNIQUE,   -- the customer's Idempotency-Key (idempotency on), else NULL
    status TEXT NOT NULL,          -- served | failed
    error TEXT,
    barista TEXT,
    brew_id TEXT,
    received_at REAL NOT NULL,
    completed_at REAL NOT NULL
);
"""


class Baristas:
    """The current barista set and the calls in flight to each; least-busy choice, ties round robin.
    Used from the event loop only (no locking needed)."""

    def __init__(self, members: list[tuple[str, str]]) -> None:
        self.urls: dict[str, str] = {}
        self.in_flight: dict[str, int] = {}
        self.turn = itertools.count()
        self.replace(members)

    def replace(self, members: list[tuple[str, str]]) -> None:
        self.urls = dict(members)
        self.in_flight = {name: self.in_flight.get(name, 0) for name in {*self.urls, *self.in_flight}
                          if name in self.urls or self.in_flight.get(name, 0) > 0}

    def acquire(self) -> tuple[str, str]:
        """The barista to call now (name, url); counts the call until release(name)."""
        names = list(self.urls)
        if not names:
            raise LookupError("no barista in the set")
        start = next(self.turn) % len(names)
        rotated = names[start:] + names[:start]
        name = min(rotated, key=lambda n: self.in_flight.get(n, 0))
        self.in_flight[name] = self.in_flight.get(name, 0) + 1
        return name, self.urls[name]

    def release(self, name: str) -> None:
        self.in_flight[name] -= 1
        if name not in self.urls and self.in_flight[name] == 0:
            del self.in_flight[name]

    def members(self) -> list[dict[str, str]]:
        return [{"name": name, "url": url} for name, url in self.urls.items()]

    def calls(self) -> dict[str, int]:
        return dict(self.in_flight)


def parse_baristas(body: bytes) -> list[tuple[str, str]]:
    """[(name, url)] from a `PUT /baristas` body; ValueError naming what is wrong."""
    try:
        data = loads(body)
    except JSONDecodeError:
        raise ValueError("malformed JSON") from None
    items = data.get("baristas") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise ValueError("expected a non-empty list under 'baristas'")
    members = []
    for item in items:
        if not (isinstance(item, dict) and isinstance(item.get("name"), str) and isinstance(item.get("url"), str)
                and item["url"].startswith("http://")):
            raise ValueError(f"each barista needs a name and an http:// url, got {item!r}")
        members.append((item["name"], item["url"]))
    return members


Answer = tuple[int, dict[str, Any]]   # (HTTP status for the customer, JSON body)
BrewCall = Callable[[str, dict[str, Any]], Awaitable[Answer]]


KEEP_ALIVE_S = 60.0   # an idle connection to a barista is kept this long (the barista's server keeps it 75 s)
JSON_HEADERS = {"Content-Type": "application/json"}


class BaristaClient:
    """Brew calls to the least-busy barista of `baristas` over HTTP. `brew(order_id, body)` answers
    (status for the customer, outcome): 201 {"status": "served", "barista", "brew_id"}; else
    {"status": "failed", "error"} with 504 (no answer within `timeout_s`), 503 (no barista reachable)
    or 502 (the barista answered with an error). Between `open()` and `close()` only.

    One session, one pool of kept-alive connections, at most `connections` in use at once (the
    cashier's capacity: a call holds a till, so no call ever waits for a connection)."""

    def __init__(self, baristas: Baristas, timeout_s: float, connections: int = 100) -> None:
        self.baristas, self.timeout_s, self.connections = baristas, timeout_s, connections
        self.session: aiohttp.ClientSession | None = None
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.urls: dict[str, URL] = {}   # a barista's base url -> its /brews

    def open(self) -> None:
        connector = aiohttp.TCPConnector(limit=self.connections, limit_per_host=0, keepalive_timeout=KEEP_ALIVE_S)
        self.session = aiohttp.ClientSession(connector=connector, skip_auto_headers=("User-Agent",))

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    async def brew(self, order_id: str, body: dict[str, Any]) -> Answer:
        name, url = self.baristas.acquire()
        try:
            return await self._brew_at(url, order_id, body)
        finally:
            self.baristas.release(name)

    def brews_url(self, url: str) -> URL:
        if (brews := self.urls.get(url)) is None:
            brews = self.urls[url] = URL(f"{url}/brews")
        return brews

    async def _brew_at(self, url: str, order_id: str, body: dict[str, Any]) -> Answer:
        assert self.session is not None, "BaristaClient used before open()"
        try:
            async with self.session.post(self.brews_url(url), data=dumps({"orderId": order_id, **body}),
                                         headers=JSON_HEADERS, timeout=self.timeout) as resp:
                raw = await resp.read()
                data = loads(raw) if raw.strip() else None
                if resp.status == 201:
                    return 201, {"status": "served", "barista": data["barista"], "brew_id": data["brew_id"]}
                return 502, {"status": "failed", "error": f"barista answered {resp.status}: {data}"}
        except TimeoutError:
            return 504, {"status": "failed", "error": f"barista timeout after {self.timeout_s}s"}
        except (aiohttp.ClientError, ValueError, KeyError) as exc:
            return 503, {"status": "failed", "error": f"barista unavailable: {exc.__class__.__name__}: {exc}"}


class Cashier:
    """Takes orders: a line of at most `queue_limit` waiting customers, `capacity` tills, one `brew`
    call per order, and every taken order's outcome stored in `db` (SCHEMA). Event loop only.

    `place(order, received, key)` answers (HTTP status, body): 429 when the line is full (nothing
    stored, "taken": false); else the brew call's status with the stored record (201), or with
    {"error", "order": record}. With an Idempotency-Key: a retry while the first attempt is in
    progress gets that attempt's answer; a served order is answered again (201, "replayed": true)
    without a brew call; a failed one is tried again under the same order id and its row replaced
    (a new seq). Without a key every call is a new order. The database is read and written on its
    own thread (awaited); an answer is given once the COMMIT holding the order's row is done."""

    def __init__(self, db: Database, brew: BrewCall, *, capacity: int, queue_limit: int) -> None:
        self.db, self.brew, self.queue_limit = db, brew, queue_limit
        self.tills = asyncio.Semaphore(capacity)
        self.state = {"in_flight": 0, "waiting": 0, "replayed": 0}
        self.attempts: dict[str, asyncio.Future[Answer]] = {}   # idempotency key -> attempt in progress

    async def place(self, order: OrderRequest, received: float, key: str | None) -> Answer:
        if key is None:
            return await self.take(order, received, str(uuid.uuid4()), None, replaces=False)
        if key in self.attempts:  # the first attempt is still in progress: its answer is ours
            self.state["replayed"] += 1
            return await asyncio.shield(self.attempts[key])
        # registered before the first await (the lookup): a retry arriving meanwhile joins this attempt
        attempt = asyncio.ensure_future(self.attempt(order, received, key))
        self.attempts[key] = attempt
        try:
            return await asyncio.shield(attempt)
        finally:
            if attempt.done():
                self.attempts.pop(key, None)
            else:
                attempt.add_done_callback(lambda _f: self.attempts.pop(key, None))

    async def attempt(self, order: OrderRequest, received: float, key: str) -> Answer:
        """One attempt at the order under Idempotency-Key `key`: the served order answered again, or
        taken (again, under its first order id when an earlier attempt failed)."""
        earlier = await self.db.fetch("SELECT * FROM orders WHERE idempotency_key = ?", (key,))
        if earlier and earlier[0]["status"] == "served":
            self.state["replayed"] += 1
            return 201, {**earlier[0], "replayed": True}
        order_id = earlier[0]["id"] if earlier else str(uuid.uuid4())
        return await self.take(order, received, order_id, key, replaces=bool(earlier))

    async def take(self, order: OrderRequest, received: float, order_id: str, key: str | None, *,
                   replaces: bool) -> Answer:
        """Take one order under `order_id` (replacing its row when `replaces`): (HTTP status, body)."""
        if self.state["waiting"] >= self.queue_limit:   # refused, nothing stored: say so (429, not 5xx)
            return 429, {"error": "cashier line is full", "waiting": self.state["waiting"], "taken": False}
        self.state["waiting"] += 1
        try:
            await self.tills.acquire()
        finally:
            self.state["waiting"] -= 1
        self.state["in_flight"] += 1
        try:
            status, outcome = await self.brew(order_id, order.to_dict())
        finally:
            self.state["in_flight"] -= 1
            self.tills.release()
        record = {"id": order_id, **order.to_dict(), "idempotency_key": key, "status": outcome["status"],
                  "error": outcome.get("error"), "barista": outcome.get("barista"),
                  "brew_id": outcome.get("brew_id"), "received_at": received, "completed_at": now()}
        await self.db.atomic(store, record, replaces)   # answered after the COMMIT that holds the row
        if status != 201:
            return status, {"error": record["error"], "order": record}
        return 201, record

    async def order(self, order_id: str) -> dict[str, Any] | None:
        rows = await self.db.fetch("SELECT * FROM orders WHERE id = ?", (order_id,))
        return rows[0] if rows else None


def store(tx: sqlite3.Connection, record: dict[str, Any], replaces: bool) -> None:
    """Store an order's outcome (SCHEMA), in place of its earlier row when `replaces` (a new seq)."""
    if replaces:
        tx.execute("DELETE FROM orders WHERE id = ?", (record["id"],))
    tx.execute(
        "INSERT INTO orders (id, ref, product, size, customer, idempotency_key, status, error, barista,"
        " brew_id, received_at, completed_at) VALUES (:id, :ref, :product, :size, :customer,"
        " :idempotency_key, :status, :error, :barista, :brew_id, :received_at, :completed_at)", record)


def build_app(config: ServiceConfig) -> web.Application:
    if not config.barista_urls:
        raise SystemExit(f"{config.name}: barista_urls is empty: the cashier needs a barista")
    db = Database(config.db, SCHEMA)
    menu = load_menu(config.menu)
    baristas = Baristas([(f"barista-{i}", url) for i, url in enumerate(config.barista_urls, start=1)])
    client = BaristaClient(baristas, config.barista_timeout_s, connections=config.capacity)
    cashier = Cashier(db, client.brew, capacity=config.capacity, queue_limit=config.queue_limit)

    async def get_baristas(request: web.Request) -> web.Response:
        return reply({"baristas": baristas.members(), "calls": baristas.calls()})

    async def put_baristas(request: web.Request) -> web.Response:
        try:
            members = parse_baristas(await read_body(request))
        except ValueError as exc:
            return error(400, "invalid barista set", field="baristas", detail=str(exc))
        baristas.replace(members)
        return reply({"baristas": baristas.members(), "calls": baristas.calls()})

    def counts() -> dict[str, Any]:
        return {"capacity": config.capacity, **cashier.state, "baristas": baristas.calls()}

    return application([*order_routes(menu, cashier.place, cashier.order, db, idempotency=config.idempotency),
                        health("cashier", config.name, counts),
                        web.get("/baristas", get_baristas), web.put("/baristas", put_baristas)],
                       start=[client.open], stop=[client.close, db.close], max_body=MAX_BODY)


if __name__ == "__main__":
    serve(__doc__, build_app)
