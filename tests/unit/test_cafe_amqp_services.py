"""The async services on their broker plumbing (cafe.amqp), without a broker: a barista's brew
survives the loss of its delivery's connection (the redelivered order finds it, instead of waiting
for a claim no one brews under), and a barista holds at most `brewers` brews at once while the
deliveries beyond them wait without hands. The services are programs, loaded here by path."""
from __future__ import annotations

import asyncio
import runpy
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from cafe.amqp import Delivery
from cafe.brewing import BrewTime
from cafe.config import ServiceConfig
from cafe.events import new_event

SYSTEMS = Path(__file__).resolve().parents[2] / "systems"
program = SimpleNamespace(**runpy.run_path(str(SYSTEMS / "async" / "barista.py"), run_name="cafe_test_amqp_barista"))


class Settled:
    """Stands in for the barista's consumer: what was acked (with its follow-up event) or rejected."""

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


def barista(tmp_path: Path, name: str = "barista-1", **fields: Any) -> Any:
    config = ServiceConfig(name=name, port=1, db=str(tmp_path / "barista.db"), amqp_url="amqp://127.0.0.1:1",
                           brew=BrewTime("fixed", mean_ms=fields.pop("brew_ms", 50.0)), **fields)
    b = program.Barista(config)
    b.consumer = Settled()
    b.claims.beat()
    return b


def ordered(order_id: str) -> Any:
    return new_event("CoffeeOrdered", order_id, {"product": "Latte", "size": "small", "ref": order_id})


def test_a_brew_begun_is_recorded_even_when_its_delivery_is_lost_and_the_redelivery_finds_it(tmp_path: Path) -> None:
    b = barista(tmp_path)
    other = barista(tmp_path, name="barista-2")
    event = ordered("o-1")

    async def connection_lost_mid_brew() -> Any:
        task = asyncio.ensure_future(b.on_delivery(Delivery(1, 1, False, event.encode(), 0)))
        while b.stats["brewing"] == 0:
            await asyncio.sleep(0.005)
        task.cancel()                     # aiormq cancels the delivery's task when its channel closes
        while b.stats["brewed"] == 0:     # ... the brew goes on and is recorded
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)         # the claim released behind the record
        other.claims.beat()
        b.claims.beat()
        await other.on_delivery(Delivery(1, 2, True, event.encode(), 1))   # redelivered to the other replica
        assert len(b.db.query("SELECT * FROM brews")) == 1
        return other.consumer.acked

    try:
        ((tag, brewed),) = asyncio.run(connection_lost_mid_brew())
    finally:
        asyncio.run(b.close())
        asyncio.run(other.close())
    assert b.consumer.acked == [] and tag == 1 and brewed.payload["barista"] == "barista-1"
    assert other.stats["duplicates_skipped"] == 1 and other.stats["started"] == 0


def test_at_most_brewers_brews_at_once_and_each_delivery_acked_with_its_coffee_brewed(tmp_path: Path) -> None:
    b = barista(tmp_path, brewers=2, brew_ms=100.0)
    seen: list[int] = []

    async def five() -> None:
        jobs = [asyncio.ensure_future(b.on_delivery(Delivery(i, 1, False, ordered(f"o-{i}").encode(), 0)))
                for i in range(5)]
        while not all(job.done() for job in jobs):
            seen.append(b.stats["brewing"])
            await asyncio.sleep(0.01)

    try:
        asyncio.run(five())
    finally:
        asyncio.run(b.close())
    assert max(seen) == 2 and b.stats["brewed"] == 5
    assert sorted(tag for tag, _ in b.consumer.acked) == [0, 1, 2, 3, 4]
    assert {e.order_id for _, e in b.consumer.acked} == {f"o-{i}" for i in range(5)}
    assert b.consumer.mandatory is True   # a CoffeeBrewed no queue takes comes back: the order is requeued
