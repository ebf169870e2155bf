"""Sync shop, barista service: `POST /brews` brews a coffee and answers when it is done.

At most `brewers` brews run at once; further requests wait for free hands. Every brew is recorded
in this service's own SQLite database and readable with `GET /brews?after=&limit=`.
With idempotency on, a second request for an order id already brewed (or brewing) gets that
brew back instead of a new one: the cashier retries under the same order id. Replicas share the
database, and an order id is claimed there before it is brewed (cafe/claims.py, the same rule as
the async barista's): a replica asked for an order another live replica is brewing waits for that
brew instead of making a second coffee. Every brew that was made is recorded, and answered once
the COMMIT holding its record is done. SQLite runs on the database's own thread (cafe.store), never
on the event loop: the look for an earlier brew and the claim are one call, the record another,
each committed with whatever other requests queued beside it. Fault hook (cafe/hooks.py): `silent`
takes requests and never answers them until it is disarmed.
Deadlines: a request may say how long its caller still waits, in the header `X-Request-Timeout-Ms`
(cafe.cashier.DEADLINE_HEADER, milliseconds from now: relative, so a skewed clock does not shorten
it). The brew for it is given up (no coffee, nothing recorded, the claim let go) once every caller
waiting for that order id has passed its deadline, whether it is waiting for hands, for another
replica's claim or brewing: answered 504 {"error": "deadline passed"}. A request without the
header waits as long as the brew takes (the plain sync shop sends none).
HTTP: POST /brews, GET /brews?after=&limit=, GET /health, GET/POST /control/faults.
Run: python systems/sync/barista.py --config FILE.json
"""
from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import web

from cafe import claims as claims_mod
from cafe import hooks as fault_hooks
from cafe.cashier import DEADLINE_HEADER
from cafe.config import ServiceConfig
from cafe.menu import load_menu
from cafe.orders import OrderRejected, OrderRequest, order_from
from cafe.store import Database, now
from cafe.web import (
    MAX_BODY,
    JSONDecodeError,
    Periodic,
    application,
    error,
    health,
    loads,
    pages,
    read_body,
    reply,
    serve,
)

SCHEMA = """
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
CREATE INDEX IF NOT EXISTS brews_order ON brews (order_id);
""" + claims_mod.SCHEMA


class DeadlinePassed(Exception):
    """Every caller waiting for this brew has given up: it was not made (nothing recorded)."""


Deadline = Callable[[], "float | None"]   # the loop time by which the brew's callers give up (None: never)
NO_DEADLINE: Deadline = lambda: None   # noqa: E731


class Barista:
    """One replica's brewing, independent of HTTP (event loop only). `brew(order, order_id)` answers
    the brew record of `order_id`: brewed now (at most `brewers` at once, the others waiting for
    hands), or, with idempotency on, the earlier brew of that order id: one in progress here
    (joined), one recorded in `db`, or one the live replica holding the claim makes (waited for).
    Every brew made is recorded in `db` (SCHEMA). While `hooks.silent`, a brew request is held and
    not answered. `db` is used through its own thread (cafe.store's awaited calls) only, claims too:
    `Claims.claim` holds the claims' lock while it waits for the database. `deadline` (loop time,
    None: none) is when the caller gives up; a brew joined by several callers lasts until the last
    one's deadline, and past it raises DeadlinePassed with nothing brewed."""

    def __init__(self, config: ServiceConfig, db: Database) -> None:
        self.config, self.db = config, db
        self.claims = claims_mod.Claims(db, config.name)
        self.hooks = fault_hooks.Hooks()
        self.hands = asyncio.Semaphore(config.brewers)
        self.state = {"brewing": 0, "waiting": 0, "held_silently": 0, "duplicates_skipped": 0, "started": 0,
                      "waited_for_claims": 0,
                      "abandoned": 0}   # brews given up because every caller had passed its deadline
        self.brewing: dict[str, asyncio.Future[dict[str, Any]]] = {}   # order id -> brew in progress
        self.deadlines: dict[str, float | None] = {}   # order id -> when its last waiting caller gives up

    async def brew(self, order: OrderRequest, order_id: str, deadline: float | None = None) -> dict[str, Any]:
        if self.hooks.silent:  # a broken barista: the call is taken and never answered while armed
            self.state["held_silently"] += 1
            while self.hooks.silent:
                await asyncio.sleep(0.1)
        if not self.config.idempotency:
            return await self.make(order, order_id, deadline=lambda: deadline)
        if order_id in self.brewing:   # asked again while this replica claims or brews it: join
            self.state["duplicates_skipped"] += 1
            held = self.deadlines.get(order_id)   # the brew lasts until the last caller gives up
            self.deadlines[order_id] = None if held is None or deadline is None else max(held, deadline)
            return await asyncio.shield(self.brewing[order_id])
        self.deadlines[order_id] = deadline
        job = asyncio.ensure_future(self.brew_once(order, order_id))
        self.brewing[order_id] = job   # before the first await: a request arriving meanwhile joins

        def done(_f: object) -> None:
            self.brewing.pop(order_id, None)
            self.deadlines.pop(order_id, None)

        job.add_done_callback(done)
        return await asyncio.shield(job)

    async def brew_once(self, order: OrderRequest, order_id: str) -> dict[str, Any]:
        """The order id's brew: an earlier one, or this replica's under its claim."""
        def deadline() -> float | None:
            return self.deadlines.get(order_id)

        earlier = await self.claimed(order_id, deadline)
        if earlier is not None:
            self.state["duplicates_skipped"] += 1
            return earlier
        try:
            return await self.make(order, order_id, claimed=True, deadline=deadline)
        except BaseException:   # no brew recorded: let the claim go all the same (after what is queued)
            with contextlib.suppress(sqlite3.ProgrammingError):   # the database closed: the process ends
                self.db.submit(self.claims.release, order_id)
            raise

    def earlier_brew(self, order_id: str) -> dict[str, Any] | None:
        rows = self.db.query("SELECT * FROM brews WHERE order_id = ? ORDER BY seq LIMIT 1", (order_id,))
        return rows[0] if rows else None

    def look_or_claim(self, order_id: str) -> tuple[bool, dict[str, Any] | None]:
        """On the database's thread: (claimed, earlier brew). The earlier brew of `order_id` if there
        is one; else whether this replica now holds its claim (and then no brew was recorded meanwhile:
        one recorded by the previous claimant lets the claim go and is answered)."""
        earlier = self.earlier_brew(order_id)
        if earlier is not None:
            return False, earlier
        if self.claims.claim(order_id):
            earlier = self.earlier_brew(order_id)   # the previous claimant may have just finished
            if earlier is not None:
                self.claims.release(order_id)
            return True, earlier
        return False, None

    async def claimed(self, order_id: str, deadline: Deadline = NO_DEADLINE) -> dict[str, Any] | None:
        """None once this replica holds the claim on `order_id` (it may brew); the brew record when
        the order was brewed, here or by the live replica that holds the claim (waited for, until
        `deadline()`: then DeadlinePassed)."""
        waited = False
        while True:
            claimed, earlier = await self.db.call(self.look_or_claim, order_id)
            if earlier is not None or claimed:
                return earlier
            self.check(deadline)
            if not waited:
                self.state["waited_for_claims"] += 1
                waited = True
            await asyncio.sleep(claims_mod.WAIT_POLL_S)

    def check(self, deadline: Deadline) -> None:
        """DeadlinePassed (counted as abandoned) when `deadline()` is past."""
        until = deadline()
        if until is not None and asyncio.get_running_loop().time() >= until:
            self.state["abandoned"] += 1
            raise DeadlinePassed()

    async def hands_free(self, deadline: Deadline) -> None:
        """Wait for free hands, until `deadline()` (read again when it passes: a join may extend it)."""
        loop = asyncio.get_running_loop()
        while True:
            self.check(deadline)
            until = deadline()
            try:
                await asyncio.wait_for(self.hands.acquire(), None if until is None else until - loop.time())
                return
            except TimeoutError:
                continue

    async def make(self, order: OrderRequest, order_id: str, *, claimed: bool = False,
                   deadline: Deadline = NO_DEADLINE) -> dict[str, Any]:
        """Brew `order` (waiting for free hands) and record it; the brew record. When `claimed`, the
        claim this replica holds is let go in the same call as the record (its other requests for the
        order id may look again: they find the record). DeadlinePassed, with nothing recorded, when
        `deadline()` passes before the brew is done."""
        brew_ms = self.config.brew.sample(order.ref or order_id)
        self.state["waiting"] += 1
        try:
            await self.hands_free(deadline)
        finally:
            self.state["waiting"] -= 1
        self.state["brewing"] += 1
        self.state["started"] += 1
        try:
            started = now()
            loop = asyncio.get_running_loop()
            done_at = loop.time() + brew_ms / 1000
            while (left := done_at - loop.time()) > 0:   # brewing, until the last caller gives up
                self.check(deadline)
                until = deadline()
                await asyncio.sleep(left if until is None else max(0.0, min(left, until - loop.time())))
            record = {
                "brew_id": str(uuid.uuid4()), "order_id": order_id, "ref": order.ref,
                "product": order.product, "size": order.size, "barista": self.config.name,
                "brew_ms": brew_ms, "started_at": started, "brewed_at": now(),
            }
            await self.db.call(self.record, record, claimed)   # answered after the COMMIT that holds it
        finally:
            self.state["brewing"] -= 1
            self.hands.release()
        return record

    def record(self, record: dict[str, Any], claimed: bool) -> None:
        """On the database's thread: store the brew record (SCHEMA); then let the claim go when `claimed`."""
        with self.db.transaction() as tx:
            tx.execute("INSERT INTO brews (brew_id, order_id, ref, product, size, barista, brew_ms, started_at,"
                       " brewed_at) VALUES (:brew_id, :order_id, :ref, :product, :size, :barista, :brew_ms,"
                       " :started_at, :brewed_at)", record)
        if claimed:
            self.claims.release(record["order_id"])


def build_app(config: ServiceConfig) -> web.Application:
    db = Database(config.db, SCHEMA)
    menu = load_menu(config.menu)
    barista = Barista(config, db)

    def beat() -> object:   # on the database's thread, as every use of the claims (Barista)
        return db.call(barista.claims.beat)

    heartbeat = Periodic(claims_mod.BEAT_S, beat)

    async def brew(request: web.Request) -> web.Response:
        body = await read_body(request)
        try:
            data = loads(body)
        except JSONDecodeError:
            return error(400, "invalid brew request", field="body", detail="malformed JSON")
        order_id = data.pop("orderId", None) if isinstance(data, dict) else None
        if not isinstance(order_id, str) or not order_id:
            return error(400, "invalid brew request", field="orderId", detail="missing")
        try:
            order = order_from(data, menu)
        except OrderRejected as exc:
            return error(400, "invalid brew request", field=exc.field, detail=exc.message)
        deadline = None
        if (timeout := request.headers.get(DEADLINE_HEADER)) is not None:
            try:
                deadline = asyncio.get_running_loop().time() + float(timeout) / 1000
            except ValueError:
                return error(400, "invalid brew request", field=DEADLINE_HEADER, detail=f"not a number: {timeout!r}")
        try:
            return reply(await barista.brew(order, order_id, deadline), status=201)
        except DeadlinePassed:
            return error(504, "deadline passed", detail="every caller had given up: nothing brewed")

    def counts() -> dict[str, Any]:
        return {"brewers": config.brewers, "idempotency": config.idempotency, "hooks": barista.hooks.state(),
                **barista.state}

    # claims of a killed or frozen replica go stale (cafe/claims.py): say this one is alive
    return application([web.post("/brews", brew), pages("/brews", db, "brews"),
                        health("barista", config.name, counts), *fault_hooks.routes(barista.hooks, ("silent",))],
                       start=[beat, heartbeat.start], stop=[heartbeat.stop, db.close],
                       max_body=MAX_BODY)


if __name__ == "__main__":
    serve(__doc__, build_app)
