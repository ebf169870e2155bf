"""The sync cashier's parts, shared by the plain sync shop and the resilient one (systems/sync*/cashier.py).

    SCHEMA, store    the cashier's own orders table (SQLite), one row per order with its outcome
    Baristas         the current barista set and the calls in flight to each (least busy, ties round robin)
    parse_baristas   the body of `PUT /baristas`
    BaristaClient    one brew call per order over kept-alive HTTP (the plain shop's only policy: a timeout)
    Cashier          the line, the tills, Idempotency-Key handling and the stored outcome of every taken order
    cashier_routes   the routes every cashier serves: orders, /health, GET/PUT /baristas

A `BrewCall` is `(order_id, body, received) -> (HTTP status for the customer, outcome)`: `received`
is when the cashier got the order (cafe.store.now(), seconds since the epoch), so a policy can keep
the whole call within the customer's patience.
"""
from __future__ import annotations

import asyncio
import itertools
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from cafe.config import ServiceConfig
from cafe.menu import Menu
from cafe.ordering import order_routes
from cafe.orders import OrderRequest
from cafe.store import Database, now
from cafe.web import JSONDecodeError, dumps, error, health, loads, read_body, reply

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

    def acquire(self, allowed: Callable[[str], bool] | None = None) -> tuple[str, str]:
        """The barista to call now (name, url), among those `allowed` (all when None); counts the
        call until release(name). LookupError when there is none."""
        names = [name for name in self.urls if allowed is None or allowed(name)]
        if not names:
            raise LookupError("no barista in the set" if allowed is None else "no barista may be called now")
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
BrewCall = Callable[[str, dict[str, Any], float], Awaitable[Answer]]


KEEP_ALIVE_S = 60.0   # an idle connection to a barista is kept this long (the barista's server keeps it 75 s)
JSON_HEADERS = {"Content-Type": "application/json"}
#: a brew call's header: how long the caller still waits, in ms from now (the barista gives the brew up after it)
DEADLINE_HEADER = "X-Request-Timeout-Ms"


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

    async def brew(self, order_id: str, body: dict[str, Any], received: float = 0.0) -> Answer:
        name, url = self.baristas.acquire()
        try:
            return await self._brew_at(url, order_id, body)
        finally:
            self.baristas.release(name)

    def brews_url(self, url: str) -> URL:
        if (brews := self.urls.get(url)) is None:
            brews = self.urls[url] = URL(f"{url}/brews")
        return brews

    async def _brew_at(self, url: str, order_id: str, body: dict[str, Any], timeout_s: float | None = None,
                       headers: dict[str, str] | None = None) -> Answer:
        """One call to the barista at `url` (within `timeout_s`, default the client's): the answer
        for the customer; a 502's outcome carries the barista's own status as `barista_status`."""
        assert self.session is not None, "BaristaClient used before open()"
        timeout = self.timeout if timeout_s is None else aiohttp.ClientTimeout(total=timeout_s)
        try:
            async with self.session.post(self.brews_url(url), data=dumps({"orderId": order_id, **body}),
                                         headers=JSON_HEADERS if headers is None else {**JSON_HEADERS, **headers},
                                         timeout=timeout) as resp:
                raw = await resp.read()
                data: Any = loads(raw) if raw.strip() else None
                if resp.status == 201:
                    return 201, {"status": "served", "barista": data["barista"], "brew_id": data["brew_id"]}
                return 502, {"status": "failed", "error": f"barista answered {resp.status}: {data}",
                             "barista_status": resp.status}
        except TimeoutError:
            waited = self.timeout_s if timeout_s is None else round(timeout_s, 3)
            return 504, {"status": "failed", "error": f"barista timeout after {waited}s"}
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
        if (refusal := self.refuse()) is not None:   # refused, nothing stored: say so (429, not 5xx)
            return refusal
        self.state["waiting"] += 1
        try:
            await self.tills.acquire()
        finally:
            self.state["waiting"] -= 1
        self.state["in_flight"] += 1
        started = time.monotonic()
        try:
            status, outcome = await self.brew(order_id, order.to_dict(), received)
        finally:
            self.state["in_flight"] -= 1
            self.tills.release()
            self.held(time.monotonic() - started)
        record = {"id": order_id, **order.to_dict(), "idempotency_key": key, "status": outcome["status"],
                  "error": outcome.get("error"), "barista": outcome.get("barista"),
                  "brew_id": outcome.get("brew_id"), "received_at": received, "completed_at": now()}
        await self.db.atomic(store, record, replaces)   # answered after the COMMIT that holds the row
        if status != 201:
            return status, {"error": record["error"], "order": record}
        return 201, record

    def held(self, seconds: float) -> None:
        """A till was held `seconds` for one order (a subclass may learn from it; here: nothing)."""

    def refuse(self) -> Answer | None:
        """The answer refusing a new customer before it joins the line (nothing stored), or None to
        take it: 429 when `queue_limit` customers already wait."""
        if self.state["waiting"] >= self.queue_limit:
            return 429, {"error": "cashier line is full", "waiting": self.state["waiting"], "taken": False}
        return None

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


def cashier_routes(config: ServiceConfig, menu: Menu, db: Database, cashier: Cashier, baristas: Baristas,
                   counts: Callable[[], dict[str, Any]],
                   more: Callable[[], dict[str, Any]] | None = None) -> list[web.RouteDef]:
    """A cashier's HTTP routes: the order routes over `cashier`, GET /health (`counts()`), and
    GET/PUT /baristas (the set, the calls in flight, and `more()` on GET)."""

    async def get_baristas(request: web.Request) -> web.Response:
        return reply({"baristas": baristas.members(), "calls": baristas.calls(), **(more() if more else {})})

    async def put_baristas(request: web.Request) -> web.Response:
        try:
            members = parse_baristas(await read_body(request))
        except ValueError as exc:
            return error(400, "invalid barista set", field="baristas", detail=str(exc))
        baristas.replace(members)
        return reply({"baristas": baristas.members(), "calls": baristas.calls()})

    return [*order_routes(menu, cashier.place, cashier.order, db, idempotency=config.idempotency),
            health("cashier", config.name, counts),
            web.get("/baristas", get_baristas), web.put("/baristas", put_baristas)]
