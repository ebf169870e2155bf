"""Async shop, order service (A): `POST /orders` records the order, publishes `CoffeeOrdered`, answers 202.

publish_mode "outbox" (default): the order row and its event go into this service's SQLite database
in one transaction, and the 202 is sent once it is committed (on the database's own thread, never on
the event loop; orders that arrive while a commit runs share the next one: cafe.store's group commit). The relay
publishes pending events in batches, all of a batch in flight at once with publisher confirms, and
marks sent, in one transaction, exactly the events the broker confirmed. An accepted order survives
a broker outage: the relay retries until the broker is back.
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
import contextlib
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from cafe import hooks as fault_hooks
from cafe.amqp import Link
from cafe.config import ServiceConfig
from cafe.events import Event, new_event
from cafe.menu import load_menu
from cafe.ordering import order_routes
from cafe.orders import OrderRequest
from cafe.store import Database, now
from cafe.topology import ROUTED
from cafe.web import MAX_BODY, application, health, serve

log = logging.getLogger("cafe.orders")
DIRECT_TIMEOUT_S = 5.0
RELAY_IDLE_S = 0.2      # the relay looks at the outbox this often without a nudge (rows left by a restart)
RELAY_BACKOFF_MAX_S = 2.0   # after failed batches it waits RELAY_IDLE_S, doubling up to this
RELAY_LINGER_S = 0.01   # a nudged relay waits this long for more orders: events leave in batches, and the
                        # batches travel on (baristas, waiter: one database call, one write, one confirm
                        # for several), for 10 ms more between acceptance and brewing

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


@dataclass(frozen=True)
class Entry:
    """An order to store: its new id, the request, its CoffeeOrdered, when it arrived, the customer's
    Idempotency-Key (or None) and whether its event goes into the outbox (outbox mode)."""

    order_id: str
    order: OrderRequest
    event: Event
    received: float
    key: str | None
    outbox: bool


class OrderBook:
    """The order service's database (SCHEMA): orders, and the outbox of events still to publish.
    Its methods block: the service awaits them on the database's thread (`Database.call`), where
    the calls queued together share one COMMIT."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def take(self, e: Entry) -> tuple[dict[str, Any], bool]:
        """Store the entry in one transaction: the order (and, when `outbox`, its event as a pending
        outbox row); (its record, False). When its key is already used (also by an entry stored just
        before it in the same group), nothing is stored: (the order stored under that key, True)."""
        accepted_at = now()
        with self.db.transaction() as tx:
            if e.key is not None:
                row = tx.execute("SELECT * FROM orders WHERE idempotency_key = ?", (e.key,)).fetchone()
                if row is not None:
                    return dict(row), True
            record = {"id": e.order_id, **e.order.to_dict(), "idempotency_key": e.key, "status": "accepted",
                      "event_id": e.event.event_id, "received_at": e.received, "accepted_at": accepted_at}
            tx.execute(
                "INSERT INTO orders (id, ref, product, size, customer, idempotency_key, status, event_id,"
                " received_at, accepted_at) VALUES (:id, :ref, :product, :size, :customer, :idempotency_key,"
                " :status, :event_id, :received_at, :accepted_at)", record)
            if e.outbox:
                tx.execute("INSERT INTO outbox (event_id, order_id, event_type, body, created_at)"
                           " VALUES (?, ?, ?, ?, ?)", (e.event.event_id, e.order_id, e.event.event_type,
                                                     e.event.encode(), accepted_at))
        return record, False

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
        sent_at = now()
        with self.db.transaction() as tx:
            tx.executemany("UPDATE outbox SET sent_at = ? WHERE seq = ?", [(sent_at, s) for s in seqs])

class Relay:
    """Publishes pending outbox rows (outbox mode) or requests' events (direct mode), confirmed,
    over one broker `link` in the service's event loop."""

    def __init__(self, config: ServiceConfig, book: OrderBook, hooks: fault_hooks.Hooks) -> None:
        self.link = Link(f"{config.name}-relay", config.amqp_urls, heartbeat_s=config.heartbeat_s,
                         queues=config.queues)
        self.config, self.book, self.hooks = config, book, hooks
        self.published = 0
        self.batches = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def broker(self) -> str:
        return self.link.broker

    @property
    def blocked(self) -> bool:
        """The broker blocks the link (a memory or disk alarm): it reads nothing from it until it clears."""
        return self.link.blocked

    def nudge(self) -> None:
        """Orders were stored: publish them soon (nudges while a batch is out make one next batch)."""
        self._wake.set()

    def start(self) -> None:
        self.link.start()
        if self.config.publish_mode == "outbox":
            self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.link.stop()

    async def _run(self) -> None:
        backoff = RELAY_IDLE_S
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), RELAY_IDLE_S)
            await asyncio.sleep(RELAY_LINGER_S)   # the orders of the next few ms join this batch
            self._wake.clear()
            try:
                sent = await self.flush()
            except Exception as exc:  # not connected, nacked (a full queue), connection lost: the rows stay pending
                log.warning("relay: %s: %s", exc.__class__.__name__, exc)
                await asyncio.sleep(backoff)   # doubling while it keeps failing: a full queue needs time
                backoff = min(backoff * 2, RELAY_BACKOFF_MAX_S)
                continue
            backoff = RELAY_IDLE_S
            if sent >= self.config.relay_batch:
                self._wake.set()  # a full batch: there may be more

    async def flush(self) -> int:
        """Publish up to relay_batch pending outbox events, all in flight at once (the link's window),
        await their confirms, then mark sent, in one transaction, exactly those the broker confirmed
        (never one before its confirm: at least once); raise the first failure after marking. The
        number marked sent."""
        if not self.link.connected.is_set() or self.link.blocked:   # a blocked link: the rows wait here
            return 0
        rows = await self.book.db.call(self.book.pending, self.config.relay_batch)
        if not rows:
            return 0
        results = await asyncio.gather(*(self._publish_row(row) for row in rows), return_exceptions=True)
        confirmed = [row["seq"] for row, result in zip(rows, results, strict=True) if result is None]
        if confirmed:
            await self.book.db.call(self.book.mark_sent, confirmed)
            self.published += len(confirmed)
            self.batches += 1
        failure = next((r for r in results if isinstance(r, BaseException)), None)
        if failure is not None:
            raise failure
        return len(confirmed)

    async def _publish_row(self, row: dict[str, Any]) -> None:
        # mandatory: an event no queue takes (a binding deleted) is returned, raises Unroutable and
        # its row stays pending, instead of being confirmed, marked sent and dropped by the broker
        mandatory = row["event_type"] in ROUTED
        await self.link.publish(row["event_type"], row["event_id"], row["body"], mandatory=mandatory)
        if self.hooks.hits("duplicate_publish", str(row["ref"] or row["event_id"])):
            await self.link.publish(row["event_type"], row["event_id"], row["body"], mandatory=mandatory)

    async def publish_now(self, event: Event) -> None:
        """Direct mode: publish `event` and await its confirm (ConnectionError when not connected,
        cafe.amqp.Unroutable when no queue takes it: the order is then refused)."""
        mandatory = event.event_type in ROUTED
        await self.link.publish_event(event, mandatory=mandatory)
        if self.hooks.hits("duplicate_publish", str(event.payload.get("ref") or event.event_id)):
            await self.link.publish_event(event, mandatory=mandatory)
        self.published += 1


class OrderDesk:
    """Accepts orders: `accept(order, received, key)` answers (HTTP status, body).

    A key already used answers its order again (202, "replayed": true), nothing new stored or
    published. Else a new order id and its CoffeeOrdered event: in "outbox" mode the order and the
    event are stored in one transaction (a group commit) and the relay is nudged (202 once committed:
    accepted, published later, at least once); in "direct" mode the event is published first and
    the order stored only once the broker confirmed it (504 no confirm within `DIRECT_TIMEOUT_S`,
    503 broker unavailable or blocked by a resource alarm: nothing stored or published). Of concurrent attempts with one key, the one stored
    first wins: its order is answered to the others."""

    def __init__(self, book: OrderBook, relay: Relay, publish_mode: str) -> None:
        self.book, self.relay, self.publish_mode = book, relay, publish_mode

    async def accept(self, order: OrderRequest, received: float, key: str | None) -> Answer:
        order_id = str(uuid.uuid4())
        event = new_event("CoffeeOrdered", order_id, order.to_dict())
        if self.publish_mode == "outbox":
            record, replayed = await self.book.db.call(self.book.take, Entry(order_id, order, event, received, key, outbox=True))
            if not replayed:
                self.relay.nudge()
        else:
            earlier = await self.book.db.call(self.book.by_key, key) if key else None
            if earlier is not None:  # a retry: the order its first attempt created, not published again
                return 202, {**earlier, "replayed": True}
            if self.relay.blocked:   # a resource alarm: a publish now would wait for its end
                return 503, {"error": "broker blocked (resource alarm): order not taken", "id": order_id}
            try:
                await asyncio.wait_for(self.relay.publish_now(event), DIRECT_TIMEOUT_S)
            except TimeoutError:
                return 504, {"error": "broker did not confirm the order in time", "id": order_id}
            except Exception as exc:
                return 503, {"error": f"broker unavailable: {exc.__class__.__name__}: {exc}", "id": order_id}
            # a concurrent retry with the key that stored first wins (its event was published too)
            record, replayed = await self.book.db.call(self.book.take, Entry(order_id, order, event, received, key, outbox=False))
        return 202, ({**record, "replayed": True} if replayed else record)


def build_app(config: ServiceConfig) -> web.Application:
    db = Database(config.db, SCHEMA)
    menu = load_menu(config.menu)
    hooks = fault_hooks.Hooks()
    book = OrderBook(db)
    relay = Relay(config, book, hooks)
    desk = OrderDesk(book, relay, config.publish_mode)

    async def counts() -> dict[str, Any]:
        return {"broker": relay.broker, "blocked": relay.blocked, "publish_mode": config.publish_mode,
                "outbox_pending": await db.call(book.pending_count), "published": relay.published,
                "relay_batches": relay.batches, "disconnects": relay.link.disconnects, "failovers": relay.link.failovers,
                "returned": relay.link.returned, "nacked": relay.link.nacked,
                "redeclared": relay.link.redeclared, "hooks": hooks.state()}

    async def find(order_id: str) -> dict[str, Any] | None:
        return await db.call(book.get, order_id)

    return application([*order_routes(menu, desk.accept, find, db, idempotency=config.idempotency),
                        health("orders", config.name, counts), *fault_hooks.routes(hooks, ("duplicate_publish",))],
                       start=[relay.start], stop=[relay.stop, db.close], max_body=MAX_BODY)


if __name__ == "__main__":
    serve(__doc__, build_app)
