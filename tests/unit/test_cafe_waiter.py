"""The async waiter's rule without a process or a broker: an order is served once however often its
CoffeeBrewed arrives (idempotency on), every delivery is a serving with it off, and what is not a
CoffeeBrewed is dead-lettered. The waiter is a program, loaded here by path."""
from __future__ import annotations

import asyncio
import runpy
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from cafe.amqp import Delivery
from cafe.config import ServiceConfig
from cafe.events import Event, new_event
from cafe.store import Database

PROGRAM = Path(__file__).resolve().parents[2] / "systems" / "async" / "waiter.py"
waiter_program = SimpleNamespace(**runpy.run_path(str(PROGRAM), run_name="cafe_test_waiter"))
BREWED = new_event("CoffeeBrewed", "o-1", {"product": "Latte", "size": "small", "ref": "2", "customer": "ada",
                                           "brewId": "brew-1", "barista": "barista-1", "brewMs": 20.0})


class Settling:
    """Stands in for the waiter's consumer: what it acked (with the event published first) or rejected."""

    def __init__(self) -> None:
        self.acked: list[tuple[int, Event | None]] = []
        self.rejected: list[tuple[int, bool]] = []

    async def ack(self, delivery: Delivery, then_publish: Event | None = None, *, mandatory: bool = False) -> bool:
        self.acked.append((delivery.tag, then_publish))
        return True

    async def reject(self, delivery: Delivery, requeue: bool) -> bool:
        self.rejected.append((delivery.tag, requeue))
        return True


def waiter(tmp_path: Path, idempotency: bool = True) -> Any:
    config = ServiceConfig(name="waiter-1", port=1, db=str(tmp_path / "waiter.db"), idempotency=idempotency)
    w = waiter_program.Waiter(config, Database(config.db, waiter_program.SCHEMA))
    w.consumer = Settling()
    return w


def deliver(w: Any, tag: int, body: bytes, redelivered: bool = False) -> None:
    asyncio.run(w.on_deliveries([Delivery(tag, 1, redelivered, body, int(redelivered))]))


def test_an_order_is_served_once_however_often_its_coffee_brewed_arrives(tmp_path: Path) -> None:
    w = waiter(tmp_path)
    for tag in (1, 2, 3):
        deliver(w, tag, BREWED.encode(), redelivered=tag > 1)
    (row,) = w.db.query("SELECT * FROM served")
    assert row["order_id"] == "o-1" and row["customer"] == "ada" and row["brewed_event_id"] == BREWED.event_id
    served = [event for _, event in w.consumer.acked]
    assert [tag for tag, _ in w.consumer.acked] == [1, 2, 3]
    assert len({e.event_id for e in served}) == 1 and served[0].event_type == "CoffeeServed"
    assert served[0].payload == {"product": "Latte", "size": "small", "ref": "2", "customer": "ada",
                                 "waiter": "waiter-1", "brewId": "brew-1"}
    assert w.stats == {"served": 1, "duplicates_skipped": 2, "dead_lettered": 0}


def test_without_idempotency_every_delivery_is_a_serving(tmp_path: Path) -> None:
    w = waiter(tmp_path, idempotency=False)
    deliver(w, 1, BREWED.encode())
    deliver(w, 2, BREWED.encode(), redelivered=True)
    assert len(w.db.query("SELECT * FROM served")) == 2 and w.stats["served"] == 2
    assert w.consumer.acked[0][1].event_id != w.consumer.acked[1][1].event_id


def test_deliveries_that_arrive_together_are_served_in_one_transaction_and_each_acked(tmp_path: Path) -> None:
    w = waiter(tmp_path)
    other = new_event("CoffeeBrewed", "o-2", {**BREWED.payload, "brewId": "brew-2", "ref": "3"})
    batch = [Delivery(1, 1, False, BREWED.encode(), 0), Delivery(2, 1, False, b"{not json", 0),
             Delivery(3, 1, False, other.encode(), 0), Delivery(4, 1, True, BREWED.encode(), 1)]
    asyncio.run(w.on_deliveries(batch))
    assert [r["order_id"] for r in w.db.query("SELECT * FROM served ORDER BY seq")] == ["o-1", "o-2"]
    assert sorted(tag for tag, _ in w.consumer.acked) == [1, 3, 4] and w.consumer.rejected == [(2, False)]
    assert w.stats == {"served": 2, "duplicates_skipped": 1, "dead_lettered": 1}


def test_what_is_not_a_coffee_brewed_is_dead_lettered_and_not_served(tmp_path: Path) -> None:
    w = waiter(tmp_path)
    ordered = new_event("CoffeeOrdered", "o-2", {"product": "Latte", "size": "small"})
    deliver(w, 1, b"{not json")
    deliver(w, 2, ordered.encode())
    assert w.consumer.rejected == [(1, False), (2, False)] and w.consumer.acked == []
    assert w.db.query("SELECT * FROM served") == [] and w.stats["dead_lettered"] == 2
