"""Loyalty service, a late-comer: one point per coffee served, to the customer who ordered it.

It starts after the shop has served orders and must learn that history (SCENARIOS.md item 5):
    source "replay"  the async shop's event log (a RabbitMQ stream) from the first offset; the
                     customer comes with CoffeeServed, or from the order's CoffeeOrdered before it
    source "feed"    the waiter's Atom-style feed (source_url .../feed: prev-archive back, then forward)
    source "pages"   a paged collection by seq (source_url .../served on the async waiter, or
                     .../orders on the sync cashier, whose rows count when their status is served)
and then keeps following it live. An order earns its point once: `awarded` is keyed by order id
and the reading position is stored in the same transaction as the award, so a restart (or a
redelivery) in the middle never awards twice.
Failpoint `hold_at_awarded` N (0: off; the harness sets it to a third of the history, to kill the service there): a process
that starts with fewer than N orders awarded stops reading once it has awarded N (a batch is cut
there, its position stored with it) and holds, /health saying `held`, until it is killed; started
again from its database (N awarded already), it reads on.
HTTP: GET /points, GET /health.
Run: python systems/newcomers/loyalty.py --config FILE.json
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin

from aiohttp import web

from cafe.amqp import Consumer, Delivery
from cafe.config import ServiceConfig
from cafe.events import InvalidEvent, decode
from cafe.store import Database, now
from cafe.topology import EVENT_LOG
from cafe.web import application, blocking, health, serve

log = logging.getLogger("cafe.loyalty")

SCHEMA = """
CREATE TABLE IF NOT EXISTS awarded (
    order_id TEXT PRIMARY KEY,
    customer TEXT NOT NULL,
    awarded_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS points (
    customer TEXT PRIMARY KEY,
    points INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS customers (   -- replay: who ordered what, learnt from CoffeeOrdered
    order_id TEXT PRIMARY KEY,
    customer TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS position (    -- where reading resumes after a restart
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""
ANONYMOUS = "anonymous"


class Ledger:
    """The loyalty database: awards (once per order) and reading positions, updated together."""

    def __init__(self, db: Database, hold_at: int = 0) -> None:
        self.db = db
        self.awarded = int(db.query("SELECT COUNT(*) AS n FROM awarded")[0]["n"])
        self.seen = 0  # entries or events read since start (including already awarded ones)
        self.hold_at = hold_at if hold_at > self.awarded else 0   # the failpoint, spent once passed
        self.held = threading.Event()

    def room(self) -> int | None:
        """Orders this process may still award before its failpoint holds it (None: no failpoint)."""
        return max(0, self.hold_at - self.awarded) if self.hold_at else None

    def hold_reached(self) -> bool:
        """True (and `held` set) once the failpoint's count is awarded: the caller stops reading."""
        if self.room() == 0:
            self.held.set()
        return self.held.is_set()

    def position(self, name: str) -> int | None:
        rows = self.db.query("SELECT value FROM position WHERE name = ?", (name,))
        return int(rows[0]["value"]) if rows else None

    def apply(self, items: list[tuple[str, str | None]], position: tuple[str, int] | None) -> int:
        """Award (order_id, customer) items not awarded yet and store `position`, atomically;
        return how many were new."""
        new = 0
        with self.db.transaction() as tx:
            for order_id, customer in items:
                who = customer or ANONYMOUS
                if tx.execute("INSERT OR IGNORE INTO awarded (order_id, customer, awarded_at) VALUES (?, ?, ?)",
                              (order_id, who, now())).rowcount:
                    tx.execute("INSERT INTO points (customer, points) VALUES (?, 1) ON CONFLICT(customer)"
                               " DO UPDATE SET points = points + 1", (who,))
                    new += 1
            if position is not None:
                tx.execute("INSERT INTO position (name, value) VALUES (?, ?) ON CONFLICT(name)"
                           " DO UPDATE SET value = excluded.value", position)
        self.awarded += new
        self.seen += len(items)
        return new


def cut(rows: list[Any], awards: Callable[[Any], bool], room: int | None) -> list[Any]:
    """The longest prefix of `rows` holding at most `room` rows that `awards` (all of them when
    `room` is None): a batch cut at the failpoint, so that its stored position is the last row kept."""
    if room is None:
        return rows
    for i, row in enumerate(rows):
        if awards(row):
            if room == 0:
                return rows[:i]
            room -= 1
    return rows


def http_json(url: str, timeout: float = 10.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (loopback URL from config)
        return json.loads(resp.read())


class Reader(threading.Thread):
    """A thread that reads a source over HTTP into `ledger` until `finish()`. `caught_up` is set once
    it has read to the end; `errors` counts failed reads (it waits `poll_s` and tries again)."""

    def __init__(self, name: str, config: ServiceConfig, ledger: Ledger) -> None:
        super().__init__(name=name, daemon=True)
        self.config, self.ledger = config, ledger
        self.halt = threading.Event()
        self.caught_up = threading.Event()
        self.errors = 0

    def finish(self, timeout: float = 10.0) -> None:
        """Stop reading and wait (at most `timeout` s) for the thread to end."""
        self.halt.set()
        self.join(timeout)


def served(row: dict[str, Any]) -> bool:
    """A paged row earns a point: a serving (no status) or a sync order whose status is served."""
    return row.get("status", "served") == "served"


class PageReader(Reader):
    """Reads `GET {source_url}?after=&limit=` forward by seq (source "pages"), then polls. A row
    earns a point when it has no `status` (a serving) or its status is "served" (a sync order)."""

    def __init__(self, config: ServiceConfig, ledger: Ledger) -> None:
        super().__init__("pages", config, ledger)

    def run(self) -> None:
        after = self.ledger.position("after") or 0
        while not self.halt.is_set():
            if self.ledger.hold_reached():
                self.halt.wait()
                continue
            try:
                page = http_json(f"{self.config.source_url}?after={after}&limit={self.config.page_size}")
            except OSError as exc:
                self.errors += 1
                log.warning("pages: %s", exc)
                self.halt.wait(self.config.poll_s)
                continue
            items = cut(page["items"], served, self.ledger.room())
            if items:
                after = items[-1]["seq"]
                awards = [(r.get("order_id") or r["id"], r.get("customer")) for r in items if served(r)]
                self.ledger.apply(awards, ("after", after))
            if len(items) < len(page["items"]):
                continue   # cut at the failpoint: hold
            if page.get("next") is None:
                self.caught_up.set()
                self.halt.wait(self.config.poll_s)


class FeedReader(Reader):
    """Reads the waiter's Atom-style feed (source "feed"): back along prev-archive to the page it
    remembers (page 1 at first), then forward along next-archive to the current page, then polls."""

    def __init__(self, config: ServiceConfig, ledger: Ledger) -> None:
        super().__init__("feed", config, ledger)
        self.pages_read = 0

    def get(self, link: str) -> dict[str, Any]:
        self.pages_read += 1
        doc: dict[str, Any] = http_json(urljoin(self.config.source_url, link))
        return doc

    def run(self) -> None:
        while not self.halt.is_set():
            try:
                self._read()
            except OSError as exc:
                self.errors += 1
                log.warning("feed: %s", exc)
                self.halt.wait(self.config.poll_s)

    def _start(self) -> str:
        """The first page to read: the one after the last archived page done, found by walking back."""
        done = self.ledger.position("page") or 0
        doc = self.get(self.config.source_url)
        while doc["page"] > done + 1 and "prev-archive" in doc["links"]:
            doc = self.get(doc["links"]["prev-archive"])
        return str(doc["links"]["via"])

    def _read(self) -> None:
        path = self._start()
        last = self.ledger.position("seq") or 0
        while not self.halt.is_set():
            if self.ledger.hold_reached():
                self.halt.wait()
                return
            doc = self.get(path)
            fresh = sorted((e for e in doc["entries"] if e["seq"] > last), key=lambda e: e["seq"])
            entries = cut(fresh, lambda e: True, self.ledger.room())
            if entries:
                last = entries[-1]["seq"]
            self.ledger.apply([(e["orderId"], e.get("customer")) for e in entries], ("seq", last))
            if len(entries) < len(fresh):
                continue   # cut at the failpoint: hold
            if doc["archived"]:
                self.ledger.apply([], ("page", doc["page"]))
                path = doc["links"].get("next-archive", doc["links"]["current"])
            else:
                self.caught_up.set()
                self.halt.wait(self.config.poll_s)
                path = doc["links"]["via"]  # the same page again: it may have filled up meanwhile


class Replayer(Consumer):
    """Consumes the event log stream from the first offset (or after the last one processed)."""

    def __init__(self, config: ServiceConfig, ledger: Ledger) -> None:
        super().__init__(f"{config.name}-replay", config.amqp_url, EVENT_LOG, self.on_delivery,
                         prefetch=max(config.prefetch, 500), arguments=self.offset,
                         heartbeat_s=config.heartbeat_s, queues=config.queues, ordered=True)
        self.ledger = ledger
        self.caught_up = threading.Event()
        self.errors = 0

    async def finish(self) -> None:
        """Stop consuming and close the connection (as `Reader.finish`)."""
        await self.stop()

    def offset(self) -> dict[str, Any]:
        stored = self.ledger.position("offset")
        return {"x-stream-offset": "first" if stored is None else stored + 1}

    async def on_delivery(self, delivery: Delivery) -> None:
        """Apply one event of the log (in its own thread: SQLite), then ack; one at a time, in order.
        At the failpoint it holds instead (the event unacked, read again after a restart)."""
        if self.ledger.hold_reached():
            await asyncio.Event().wait()   # until the process is killed (or the consumer stopped)
        await asyncio.to_thread(self.apply, delivery)
        await self.ack(delivery)
        if self.pending == 0:
            self.caught_up.set()  # nothing more delivered right now: the log is read to its end

    def apply(self, delivery: Delivery) -> None:
        offset = delivery.stream_offset
        try:
            event = decode(delivery.body)
        except InvalidEvent as exc:
            self.errors += 1
            log.warning("skipping an invalid event at offset %s: %s", offset, exc)
            event = None
        position = ("offset", int(offset)) if offset is not None else None
        if event is not None and event.event_type == "CoffeeOrdered" and event.payload.get("customer"):
            with self.ledger.db.transaction() as tx:
                tx.execute("INSERT OR IGNORE INTO customers (order_id, customer) VALUES (?, ?)",
                           (event.order_id, event.payload["customer"]))
            self.ledger.apply([], position)
        elif event is not None and event.event_type == "CoffeeServed":
            customer = event.payload.get("customer")
            if not customer:
                rows = self.ledger.db.query("SELECT customer FROM customers WHERE order_id = ?", (event.order_id,))
                customer = rows[0]["customer"] if rows else None
            self.ledger.apply([(event.order_id, customer)], position)
        else:
            self.ledger.apply([], position)


def build_app(config: ServiceConfig) -> web.Application:
    if config.source not in ("replay", "feed", "pages"):
        raise SystemExit(f"{config.name}: source must be replay, feed or pages (got {config.source!r})")
    if config.source != "replay" and not config.source_url:
        raise SystemExit(f"{config.name}: source {config.source!r} needs source_url")
    db = Database(config.db, SCHEMA)
    ledger = Ledger(db, config.hold_at_awarded)
    started = now()
    reader: Replayer | Reader
    if config.source == "replay":
        reader = Replayer(config, ledger)
    elif config.source == "feed":
        reader = FeedReader(config, ledger)
    else:
        reader = PageReader(config, ledger)

    async def points(request: web.Request) -> web.Response:
        rows = db.query("SELECT customer, points FROM points ORDER BY customer")
        return web.json_response({"customers": {r["customer"]: r["points"] for r in rows},
                                  "awarded": ledger.awarded, "total": sum(r["points"] for r in rows)})

    def counts() -> dict[str, Any]:
        return {"source": config.source, "awarded": ledger.awarded, "seen": ledger.seen,
                "caught_up": reader.caught_up.is_set(), "errors": reader.errors, "started_at": started,
                "held": ledger.held.is_set(),
                "position": {name: ledger.position(name) for name in ("offset", "page", "seq", "after")},
                "pages_read": getattr(reader, "pages_read", None)}

    stop = reader.finish if isinstance(reader, Replayer) else blocking(reader.finish)
    return application([web.get("/points", points), health("loyalty", config.name, counts)],
                       start=[reader.start], stop=[stop, db.close])


if __name__ == "__main__":
    serve(__doc__, build_app)
