"""The baristas' rules without a process or a broker: the sync `Barista` (brews an order id once,
joins a brew in progress, waits for a live replica's claim, `brewers` hands, the silent hook, SQLite
never on the event loop, its brew route's 400s) and
the async `Barista`'s idempotent brew of a redelivered order. The services are programs, loaded here
by path."""
from __future__ import annotations

import asyncio
import runpy
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from cafe.amqp import Delivery
from cafe.brewing import BrewTime
from cafe.config import ServiceConfig
from cafe.events import decode, new_event
from cafe.orders import OrderRequest
from cafe.store import Database

SYSTEMS = Path(__file__).resolve().parents[2] / "systems"
sync = SimpleNamespace(**runpy.run_path(str(SYSTEMS / "sync" / "barista.py"), run_name="cafe_test_sync_barista"))
async_ = SimpleNamespace(**runpy.run_path(str(SYSTEMS / "async" / "barista.py"), run_name="cafe_test_async_barista"))
FLAT_WHITE = OrderRequest("Flat White", "small", ref="1")


def config(tmp_path: Path, name: str = "barista-1", **fields: Any) -> ServiceConfig:
    return ServiceConfig(name=name, port=1, db=str(tmp_path / "barista.db"),
                         brew=BrewTime(mean_ms=fields.pop("brew_ms", 20.0)), **fields)


def sync_barista(tmp_path: Path, **fields: Any) -> Any:
    c = config(tmp_path, **fields)
    barista = sync.Barista(c, Database(c.db, sync.SCHEMA))
    barista.claims.beat()
    return barista


def brews(barista: Any) -> list[dict[str, Any]]:
    return barista.db.query("SELECT * FROM brews ORDER BY seq")


def test_an_order_id_asked_again_gets_its_first_brew(tmp_path: Path) -> None:
    barista = sync_barista(tmp_path)

    async def twice() -> tuple[Any, Any]:
        return await barista.brew(FLAT_WHITE, "o-1"), await barista.brew(FLAT_WHITE, "o-1")

    first, again = asyncio.run(twice())
    assert again == {**first, "seq": 1} and len(brews(barista)) == 1
    assert barista.state["duplicates_skipped"] == 1 and barista.state["started"] == 1


def test_a_request_for_an_order_being_brewed_joins_that_brew(tmp_path: Path) -> None:
    barista = sync_barista(tmp_path, brew_ms=100.0)

    async def together() -> list[Any]:
        return list(await asyncio.gather(barista.brew(FLAT_WHITE, "o-1"), barista.brew(FLAT_WHITE, "o-1")))

    first, joined = asyncio.run(together())
    assert first == joined and len(brews(barista)) == 1 and barista.state["started"] == 1
    assert barista.brewing == {} and barista.state["waited_for_claims"] == 0   # joined, not polled


def test_the_sync_barista_never_runs_sqlite_on_the_event_loop(tmp_path: Path) -> None:
    barista = sync_barista(tmp_path)
    threads: set[str] = set()
    query, transaction = barista.db.query, barista.db.transaction

    def watched_query(*args: Any) -> Any:
        threads.add(threading.current_thread().name)
        return query(*args)

    def watched_transaction() -> Any:
        threads.add(threading.current_thread().name)
        return transaction()

    barista.db.query, barista.db.transaction = watched_query, watched_transaction

    async def some() -> list[Any]:
        first = await asyncio.gather(*(barista.brew(FLAT_WHITE, f"o-{i % 3}") for i in range(6)))
        return [*first, await barista.brew(FLAT_WHITE, "o-1")]

    records = asyncio.run(some())
    assert threads == {"db:barista.db"}
    assert len({r["brew_id"] for r in records}) == 3 and len(brews(barista)) == 3


def test_the_brew_route_refuses_what_is_not_a_brew_request_with_400(tmp_path: Path) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    async def ask() -> list[tuple[int, Any]]:
        async with TestClient(TestServer(sync.build_app(config(tmp_path)))) as client:
            answers = []
            for body in (b"{", b'{"product": "Latte", "size": "small"}', b'{"orderId": "o-1", "product": "Mud", "size": "small"}',
                         b'{"orderId": "o-1", "product": "Latte", "size": "small"}'):
                resp = await client.post("/brews", data=body)
                answers.append((resp.status, await resp.json()))
            return answers

    bad_json, no_id, bad_order, good = asyncio.run(ask())
    assert bad_json == (400, {"error": "invalid brew request", "field": "body", "detail": "malformed JSON"})
    assert no_id == (400, {"error": "invalid brew request", "field": "orderId", "detail": "missing"})
    assert bad_order[0] == 400 and bad_order[1]["field"] == "product"
    assert good[0] == 201 and good[1]["order_id"] == "o-1" and good[1]["barista"] == "barista-1"


def test_without_idempotency_every_request_is_a_brew(tmp_path: Path) -> None:
    barista = sync_barista(tmp_path, idempotency=False)

    async def twice() -> tuple[Any, Any]:
        return await barista.brew(FLAT_WHITE, "o-1"), await barista.brew(FLAT_WHITE, "o-1")

    first, second = asyncio.run(twice())
    assert first["brew_id"] != second["brew_id"] and len(brews(barista)) == 2


def test_an_order_a_live_replica_is_brewing_is_waited_for_not_brewed_again(tmp_path: Path) -> None:
    barista = sync_barista(tmp_path)
    other = sync_barista(tmp_path, name="barista-2")
    assert other.claims.claim("o-1")                     # replica 2 is brewing o-1

    def other_finishes() -> None:
        time.sleep(0.2)
        other.claims.beat()
        asyncio.run(other.make(FLAT_WHITE, "o-1"))

    finisher = threading.Thread(target=other_finishes)
    finisher.start()
    record = asyncio.run(barista.brew(FLAT_WHITE, "o-1"))
    finisher.join()
    assert record["barista"] == "barista-2" and len(brews(barista)) == 1
    assert barista.state["waited_for_claims"] == 1 and barista.state["started"] == 0


def test_at_most_brewers_brews_run_at_once(tmp_path: Path) -> None:
    barista = sync_barista(tmp_path, brewers=1, brew_ms=200.0)
    seen: list[tuple[int, int]] = []

    async def three() -> None:
        jobs = [asyncio.ensure_future(barista.brew(FLAT_WHITE, f"o-{i}")) for i in range(3)]
        for _ in range(100):   # every order claimed (on the database's thread) and at the hands
            await asyncio.sleep(0.005)
            if barista.state["brewing"] + barista.state["waiting"] == 3:
                break
        seen.append((barista.state["brewing"], barista.state["waiting"]))
        await asyncio.gather(*jobs)

    asyncio.run(three())
    assert seen == [(1, 2)] and len(brews(barista)) == 3
    first, second, third = brews(barista)
    assert first["brewed_at"] <= second["started_at"] and second["brewed_at"] <= third["started_at"]


def test_a_silent_barista_holds_the_request_until_disarmed(tmp_path: Path) -> None:
    barista = sync_barista(tmp_path)
    barista.hooks.arm({"silent": True}, ("silent",))

    async def held() -> Any:
        job = asyncio.ensure_future(barista.brew(FLAT_WHITE, "o-1"))
        await asyncio.sleep(0.3)
        assert not job.done() and brews(barista) == [] and barista.state["held_silently"] == 1
        barista.hooks.arm({}, ("silent",))
        return await job

    assert asyncio.run(held())["order_id"] == "o-1"


class Settled:
    """Stands in for the async barista's consumer: what would be acked, published or rejected."""

    def __init__(self) -> None:
        self.acked: list[tuple[int, Any]] = []
        self.rejected: list[tuple[int, bool]] = []

    async def ack(self, delivery: Delivery, then_publish: Any = None, *, mandatory: bool = False) -> bool:
        self.acked.append((delivery.tag, then_publish))
        self.mandatory = mandatory
        return True

    async def reject(self, delivery: Delivery, requeue: bool) -> bool:
        self.rejected.append((delivery.tag, requeue))
        return True

    async def stop(self) -> None: ...


def test_the_async_barista_brews_a_redelivered_order_once_and_announces_the_same_event(tmp_path: Path) -> None:
    c = config(tmp_path, amqp_url="amqp://127.0.0.1:1")
    barista = async_.Barista(c)
    barista.consumer = Settled()
    barista.claims.beat()
    ordered = new_event("CoffeeOrdered", "o-1", {"product": "Latte", "size": "small", "ref": "4"})
    try:
        asyncio.run(barista.on_delivery(Delivery(1, 1, False, ordered.encode(), 0)))
        asyncio.run(barista.on_delivery(Delivery(2, 1, True, ordered.encode(), 1)))       # redelivered
        asyncio.run(barista.on_delivery(Delivery(3, 1, False, b"{not json", 0)))          # dead-lettered
        assert len(barista.db.query("SELECT * FROM brews")) == 1
        assert len(barista.db.query("SELECT * FROM redeliveries")) == 1
        assert barista.consumer.rejected == [(3, False)]
    finally:
        asyncio.run(barista.close())
    (tag1, first), (tag2, again) = barista.consumer.acked
    assert (tag1, tag2) == (1, 2) and first.event_type == again.event_type == "CoffeeBrewed"
    assert decode(first.encode()).event_id == again.event_id and first.payload == again.payload
    assert barista.stats["brewed"] == 1 and barista.stats["duplicates_skipped"] == 1
