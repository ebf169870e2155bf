"""Async shop, barista worker (B): consumes `CoffeeOrdered`, brews, records, publishes `CoffeeBrewed`, acks.

Replicas share the queue `barista.orders` and the barista service's SQLite database. Up to
`prefetch` orders are held unacked by a replica; `brewers` of them brew at once (hands: a
semaphore in the event loop, which also keeps the broker connection and its heartbeats going);
SQLite runs on the database's own thread; each CoffeeBrewed is published as its brew ends, up to
`prefetch` confirms in flight at once, and each delivery is acked once its CoffeeBrewed is confirmed. With idempotency on (default) an order id is
claimed in the shared database before it is brewed (cafe/claims.py, the same rule as the sync
barista's): a delivery of an order another live replica is brewing waits for that brew. The
processed order ids are stored in the same transaction as the brew, so a redelivered order is not
brewed again: its `CoffeeBrewed` is published again with the same eventId. Every brew that was
made is recorded, also one that lost the race for `processed` (the duplicate stays visible). A malformed or unknown event is
dead-lettered at once; a brew that raises is returned to the queue until the delivery limit.
Fault hooks (cafe/hooks.py, armed by the harness): `crash_before_ack` SIGKILLs the replica after
a first delivery's brew is recorded and before its CoffeeBrewed is published and acked, so the
broker redelivers it; `silent` takes deliveries and never brews nor acks them.
HTTP: GET /brews?after=&limit=, GET /redeliveries?after=&limit=, GET /health, GET/POST /control/faults.
Run: python systems/async/barista.py --config FILE.json
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import uuid
from typing import Any

from aiohttp import web

from cafe import claims as claims_mod
from cafe import hooks as fault_hooks
from cafe.amqp import Consumer, Delivery
from cafe.config import ServiceConfig
from cafe.events import Event, InvalidEvent, decode, new_event
from cafe.store import Database, now
from cafe.topology import ORDERS_QUEUE
from cafe.web import Periodic, application, health, pages, serve

log = logging.getLogger("cafe.barista")
EVENT_NS = uuid.UUID("7f1c6a52-3b0e-4d0c-9a55-2f4f1c0de001")

SCHEMA = """
CREATE TABLE IF NOT EXISTS brews (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    brew_id TEXT NOT NULL UNIQUE,
    order_id TEXT NOT NULL,
    ref TEXT,
    customer TEXT,
    product TEXT NOT NULL,
    size TEXT NOT NULL,
    barista TEXT NOT NULL,
    brew_ms REAL NOT NULL,
    ordered_event_id TEXT NOT NULL,
    brewed_event_id TEXT NOT NULL,
    redelivered INTEGER NOT NULL,
    started_at REAL NOT NULL,
    brewed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS redeliveries (   -- every delivery that came with the redelivered flag
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id TEXT NOT NULL,
    ref TEXT,
    barista TEXT NOT NULL,
    delivery_count INTEGER NOT NULL,
    seen_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS processed (
    order_id TEXT PRIMARY KEY,
    brew_id TEXT NOT NULL
);
""" + claims_mod.SCHEMA


class Barista:
    """The brewing logic of one replica, independent of HTTP, in the event loop. Its database is used
    through the database's own thread only (cafe.store's awaited calls), the claims too: the look for
    an earlier brew and the claim are one call, the record of a brew another, and calls queued
    together share one COMMIT. Brews take one of `brewers` hands (a semaphore) while they brew."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.db = Database(config.db, SCHEMA)
        self.claims = claims_mod.Claims(self.db, config.name)
        self.hands = asyncio.Semaphore(config.brewers)
        self.consumer = Consumer(f"{config.name}-consumer", config.amqp_urls, ORDERS_QUEUE, self.on_delivery,
                                 prefetch=config.prefetch, heartbeat_s=config.heartbeat_s,
                                 queues=config.queues)
        self.stats = {"brewing": 0, "brewed": 0, "duplicates_skipped": 0, "dead_lettered": 0, "failed": 0,
                      "held_silently": 0, "started": 0, "waited_for_claims": 0}
        self.hooks = fault_hooks.Hooks()
        self._brews: set[asyncio.Future[Any]] = set()   # brews in progress (shielded from their delivery), releases

    async def on_delivery(self, delivery: Delivery) -> None:
        try:
            event = decode(delivery.body)
            if event.event_type != "CoffeeOrdered":
                raise InvalidEvent(f"eventType: barista consumes CoffeeOrdered, got {event.event_type}")
        except InvalidEvent as exc:
            log.warning("dead-lettering an invalid message: %s", exc)
            self.stats["dead_lettered"] += 1
            await self.consumer.reject(delivery, requeue=False)
            return
        if self.hooks.silent:  # a broken consumer: the order is taken and nothing ever happens
            self.stats["held_silently"] += 1
            return
        try:
            brewed = await self.brew(event, delivery)
        except Exception:
            log.exception("brew of order %s failed", event.order_id)
            self.stats["failed"] += 1
            requeue = self.config.queue_type == "quorum" or not delivery.redelivered
            await self.consumer.reject(delivery, requeue=requeue)
            return
        try:
            # mandatory: a CoffeeBrewed no queue would take comes back (Unroutable) and so does the order
            await self.consumer.ack(delivery, then_publish=brewed, mandatory=True)
        except Exception as exc:  # publish nacked or returned, or channel closed: the order comes back
            log.warning("could not publish CoffeeBrewed for %s: %s", brewed.order_id, exc)

    async def brew(self, event: Event, delivery: Delivery) -> Event:
        """Brew `event`'s order (or find its brew): its CoffeeBrewed. A brew begun runs to its end and
        is recorded even when the delivery's connection is lost meanwhile (aiormq then cancels the
        delivery's task): the redelivered order finds that brew, wherever it goes, instead of
        waiting for a claim this live replica would never brew under."""
        job = asyncio.ensure_future(self._brew_once(event, delivery))
        self._brews.add(job)
        job.add_done_callback(self._brews.discard)
        return await asyncio.shield(job)

    async def _brew_once(self, event: Event, delivery: Delivery) -> Event:
        try:
            return await self._brew(event, delivery)
        except BaseException:   # not recorded: this replica's other deliveries of the order may look again
            release = asyncio.ensure_future(self.db.call(self.claims.release, event.order_id))
            self._brews.add(release)
            release.add_done_callback(self._brews.discard)
            raise

    # on the database's thread ------------------------------------------------------
    def _previous(self, order_id: str) -> Event | None:
        rows = self.db.query("SELECT b.* FROM processed p JOIN brews b ON b.brew_id = p.brew_id"
                             " WHERE p.order_id = ?", (order_id,))
        return self._brewed_event(rows[0]) if rows else None

    def _look_or_claim(self, order_id: str) -> tuple[bool, Event | None]:
        """(claimed, the CoffeeBrewed of an earlier brew): the earlier brew of `order_id` if there is
        one; else whether this replica now holds its claim (the previous claimant may have just
        finished: its brew is answered then)."""
        previous = self._previous(order_id)
        if previous is not None:
            return False, previous
        if self.claims.claim(order_id):
            previous = self._previous(order_id)
            if previous is not None:   # nothing to brew: the claim is let go at once
                self.claims.release(order_id)
            return True, previous
        return False, None

    def _record(self, record: dict[str, Any]) -> bool:
        """Record a brew (the coffee exists: its record stays, whoever else brewed it) and let the
        claim go (this replica's other deliveries of the order may look again: they find this
        brew); True if it is the order's first (its order id now in `processed`, with idempotency on)."""
        with self.db.transaction() as tx:
            tx.execute(
                "INSERT INTO brews (brew_id, order_id, ref, customer, product, size, barista, brew_ms,"
                " ordered_event_id, brewed_event_id, redelivered, started_at, brewed_at) VALUES"
                " (:brew_id, :order_id, :ref, :customer, :product, :size, :barista, :brew_ms,"
                " :ordered_event_id, :brewed_event_id, :redelivered, :started_at, :brewed_at)", record)
            first = not self.config.idempotency or tx.execute(
                "INSERT OR IGNORE INTO processed (order_id, brew_id) VALUES (?, ?)",
                (record["order_id"], record["brew_id"])).rowcount == 1
        self.claims.release(record["order_id"])
        return bool(first)

    # event loop ---------------------------------------------------------------------
    async def _claimed(self, order_id: str) -> Event | None:
        """None once this replica holds the claim on `order_id` (it may brew); the CoffeeBrewed of
        the brew when the order was brewed, here or by the live replica holding the claim (waited
        for, without holding a hand)."""
        waited = False
        while True:
            claimed, previous = await self.db.call(self._look_or_claim, order_id)
            if previous is not None or claimed:
                return previous
            if not waited:
                self.stats["waited_for_claims"] += 1
                waited = True
            await asyncio.sleep(claims_mod.WAIT_POLL_S)

    async def _brew(self, event: Event, delivery: Delivery) -> Event:
        if delivery.redelivered:
            await self.db.atomic(lambda tx: tx.execute(
                "INSERT INTO redeliveries (order_id, ref, barista, delivery_count, seen_at) VALUES (?, ?, ?, ?, ?)",
                (event.order_id, event.payload.get("ref"), self.config.name, delivery.delivery_count, now())))
        if self.config.idempotency:
            previous = await self._claimed(event.order_id)
            if previous is not None:
                self.stats["duplicates_skipped"] += 1
                return previous
        payload = event.payload
        brew_ms = self.config.brew.sample(payload.get("ref") or event.order_id)
        async with self.hands:
            self.stats["brewing"] += 1
            self.stats["started"] += 1
            try:
                started = now()
                if brew_ms > 0:
                    await asyncio.sleep(brew_ms / 1000)
                brew_id = str(uuid.uuid4())
                record = {"brew_id": brew_id, "order_id": event.order_id, "ref": payload.get("ref"),
                          "customer": payload.get("customer"), "product": payload["product"], "size": payload["size"],
                          "barista": self.config.name, "brew_ms": brew_ms, "ordered_event_id": event.event_id,
                          "brewed_event_id": str(uuid.uuid5(EVENT_NS, brew_id)),
                          "redelivered": int(delivery.redelivered), "started_at": started, "brewed_at": now()}
                first_brew = await self.db.call(self._record, record)   # answered after its COMMIT
            finally:
                self.stats["brewing"] -= 1
        if not first_brew:   # a claimant taken over came back and brewed it too: announce the first brew
            previous = await self.db.call(self._previous, event.order_id)
            if previous is not None:
                return previous
        self.stats["brewed"] += 1
        first = not delivery.redelivered and delivery.delivery_count == 0
        if first and self.hooks.hits("crash_before_ack", str(payload.get("ref") or event.order_id)):
            log.warning("crash_before_ack: order %s brewed and recorded, not acked: SIGKILL", event.order_id)
            os.kill(os.getpid(), signal.SIGKILL)
        return self._brewed_event(record)

    @staticmethod
    def _brewed_event(row: dict[str, Any]) -> Event:
        return new_event("CoffeeBrewed", row["order_id"], {
            "product": row["product"], "size": row["size"], "ref": row["ref"], "customer": row.get("customer"),
            "brewId": row["brew_id"],
            "barista": row["barista"], "brewMs": row["brew_ms"], "brewedAt": row["brewed_at"],
        }, event_id=row["brewed_event_id"])

    async def close(self) -> None:
        await self.consumer.stop()
        self.db.close()


def build_app(config: ServiceConfig) -> web.Application:
    barista = Barista(config)

    def counts() -> dict[str, Any]:
        return {"broker": barista.consumer.broker, "blocked": barista.consumer.blocked, "brewers": config.brewers,
                "prefetch": config.prefetch, "idempotency": config.idempotency, "held": barista.consumer.pending,
                "disconnects": barista.consumer.disconnects, "failovers": barista.consumer.failovers, "subscribed": barista.consumer.subscribed,
                "resubscribed": barista.consumer.resubscribed, "returned": barista.consumer.returned,
                "nacked": barista.consumer.nacked,
                "hooks": barista.hooks.state(), **barista.stats}

    def beat() -> object:   # on the database's thread, as every use of the claims
        return barista.db.call(barista.claims.beat)

    # claims of a killed or frozen replica go stale (cafe/claims.py): say this one is alive
    heartbeat = Periodic(claims_mod.BEAT_S, beat)
    return application(
        [pages("/brews", barista.db, "brews"), pages("/redeliveries", barista.db, "redeliveries"),
         health("barista", config.name, counts), *fault_hooks.routes(barista.hooks, ("crash_before_ack", "silent"))],
        start=[beat, heartbeat.start, barista.consumer.start],
        stop=[heartbeat.stop, barista.close])


if __name__ == "__main__":
    serve(__doc__, build_app)
