"""The async order service's rules without a process or a broker: `OrderDesk` (outbox and direct
modes, idempotency keys, group commit), `OrderBook` (orders and their outbox) and the `Relay`'s batch
(all in flight at once; marks sent exactly what the broker confirmed). The order service is a
program, loaded here by path."""
from __future__ import annotations

import asyncio
import json
import runpy
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from cafe.amqp import Unroutable
from cafe.config import ServiceConfig
from cafe.hooks import Hooks
from cafe.orders import OrderRequest
from cafe.store import Database

PROGRAM = Path(__file__).resolve().parents[2] / "systems" / "async" / "order_service.py"
service = SimpleNamespace(**runpy.run_path(str(PROGRAM), run_name="cafe_test_order_service"))
MOCHA = OrderRequest("Mocha", "large", customer="grace", ref="3")


class FakeRelay:
    """What the desk asks of the relay: a nudge (outbox mode) or a confirmed publish (direct mode)."""

    def __init__(self, confirm: BaseException | None = None, answer: bool = True, blocked: bool = False) -> None:
        self.nudged = 0
        self.published: list[Any] = []
        self.confirm, self.answer, self.blocked = confirm, answer, blocked

    def nudge(self) -> None:
        self.nudged += 1

    async def publish_now(self, event: Any) -> None:
        self.published.append(event)
        if self.confirm is not None:
            raise self.confirm
        if not self.answer:
            await asyncio.sleep(3600)   # the broker never confirms


class FakeLink:
    """The relay's broker link: records publishes; the `fail_at`-th one (1-based) is nacked. All of a
    batch's publishes are in flight before the first confirm comes back (`most_in_flight`)."""

    def __init__(self, fail_at: int | None = None, connected: bool = True) -> None:
        self.bodies: list[bytes] = []
        self.fail_at = fail_at
        self.connected = asyncio.Event()
        if connected:
            self.connected.set()
        self.in_flight = self.most_in_flight = 0
        self.mandatory: list[bool] = []
        self.unroutable_at: int | None = None
        self.blocked = False   # the broker's connection.blocked (a resource alarm)

    async def publish(self, event_type: str, event_id: str, body: bytes, *, mandatory: bool = False) -> None:
        self.bodies.append(body)
        self.mandatory.append(mandatory)
        n = len(self.bodies)
        if mandatory and n == self.unroutable_at:   # returned by the broker: no queue bound for it
            raise Unroutable(f"{event_type} {event_id}: no queue bound for it")
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await asyncio.sleep(0.01)   # the confirm's round trip
        self.in_flight -= 1
        if self.fail_at is not None and n == self.fail_at:
            raise RuntimeError("nacked")


def book(tmp_path: Path) -> Any:
    return service.OrderBook(Database(tmp_path / "orders.db", service.SCHEMA))


def outbox(b: Any) -> list[dict[str, Any]]:
    return b.db.query("SELECT * FROM outbox ORDER BY seq")


def test_outbox_mode_stores_the_order_and_its_event_together_and_nudges_the_relay(tmp_path: Path) -> None:
    b, relay = book(tmp_path), FakeRelay()
    status, record = asyncio.run(service.OrderDesk(b, relay, "outbox").accept(MOCHA, 1.0, None))
    assert status == 202 and record["status"] == "accepted" and record["customer"] == "grace"
    (row,) = outbox(b)
    event = json.loads(row["body"])
    assert row["event_id"] == record["event_id"] == event["eventId"] and row["sent_at"] is None
    assert event["eventType"] == "CoffeeOrdered" and event["orderId"] == record["id"]
    assert event["payload"]["ref"] == "3"
    assert relay.nudged == 1 and relay.published == []    # published by the relay, not here
    assert b.get(record["id"])["published_at"] is None and b.pending_count() == 1


def test_a_keyed_retry_is_the_same_order_and_nothing_new_is_stored_or_published(tmp_path: Path) -> None:
    b, relay = book(tmp_path), FakeRelay()
    desk = service.OrderDesk(b, relay, "outbox")

    async def retry() -> tuple[Any, Any]:
        return await desk.accept(MOCHA, 1.0, "k-1"), await desk.accept(MOCHA, 2.0, "k-1")

    (s1, first), (s2, again) = asyncio.run(retry())
    assert s1 == s2 == 202 and again == {**first, "seq": 1, "replayed": True}
    assert len(outbox(b)) == 1 and relay.nudged == 1


def test_concurrent_attempts_with_one_key_the_first_stored_wins(tmp_path: Path) -> None:
    b, relay = book(tmp_path), FakeRelay()
    desk = service.OrderDesk(b, relay, "outbox")

    async def together() -> list[Any]:
        return list(await asyncio.gather(desk.accept(MOCHA, 1.0, "k-1"), desk.accept(MOCHA, 2.0, "k-1"),
                                         desk.accept(MOCHA, 3.0, None)))

    (s1, first), (s2, again), (s3, other) = asyncio.run(together())
    assert s1 == s2 == s3 == 202 and again == {**first, "seq": 1, "replayed": True} and other["id"] != first["id"]
    assert len(outbox(b)) == 2 and relay.nudged == 2


def test_an_order_that_cannot_be_stored_is_not_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    b = book(tmp_path)
    desk = service.OrderDesk(b, FakeRelay(), "outbox")

    def broken(entry: Any) -> Any:
        raise OSError("disk full")

    monkeypatch.setattr(b, "take", broken)
    with pytest.raises(OSError, match="disk full"):
        asyncio.run(desk.accept(MOCHA, 1.0, None))
    assert outbox(b) == [] and b.db.query("SELECT * FROM orders") == []


def test_direct_mode_stores_an_order_only_once_the_broker_confirmed_it(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    b = book(tmp_path)
    status, record = asyncio.run(service.OrderDesk(b, relay := FakeRelay(), "direct").accept(MOCHA, 1.0, None))
    assert status == 202 and [e.event_id for e in relay.published] == [record["event_id"]] and outbox(b) == []

    status, body = asyncio.run(service.OrderDesk(b, FakeRelay(ConnectionError("broker not connected")),
                                                 "direct").accept(MOCHA, 1.0, None))
    assert status == 503 and body["error"] == "broker unavailable: ConnectionError: broker not connected"
    monkeypatch.setitem(service.OrderDesk.accept.__globals__, "DIRECT_TIMEOUT_S", 0.05)
    status, body = asyncio.run(service.OrderDesk(b, FakeRelay(answer=False), "direct").accept(MOCHA, 1.0, None))
    assert status == 504 and body["error"] == "broker did not confirm the order in time" and "id" in body
    assert [r["id"] for r in b.db.query("SELECT id FROM orders")] == [record["id"]]   # refused: not stored


def test_direct_mode_refuses_at_once_while_the_broker_blocks_the_link(tmp_path: Path) -> None:
    """A resource alarm: publishing now would wait for its end (or time out, and be brewed after the
    customer was told it failed); the order is refused, neither stored nor published."""
    b = book(tmp_path)
    status, body = asyncio.run(service.OrderDesk(b, relay := FakeRelay(blocked=True), "direct").accept(MOCHA, 1.0, None))
    assert status == 503 and "resource alarm" in body["error"] and "id" in body
    assert relay.published == [] and b.db.query("SELECT id FROM orders") == []


def test_the_outbox_relay_publishes_nothing_while_its_link_is_blocked(tmp_path: Path) -> None:
    link = FakeLink()
    link.blocked = True
    relay = relay_for(tmp_path, 10, link)
    assert asyncio.run(relay.flush()) == 0 and link.bodies == [] and len(outbox(relay.book)) == 5
    link.blocked = False   # the alarm cleared: out they go
    assert asyncio.run(relay.flush()) == 5


def relay_for(tmp_path: Path, batch: int, link: FakeLink, hooks: Hooks | None = None) -> Any:
    config = ServiceConfig(name="orders-1", port=1, db=str(tmp_path / "orders.db"), relay_batch=batch)
    b = book(tmp_path)
    relay = service.Relay(config, b, hooks or Hooks())
    relay.link = link
    for i in range(5):
        asyncio.run(service.OrderDesk(b, FakeRelay(), "outbox").accept(
            OrderRequest("Latte", "small", ref=str(i)), float(i), None))
    return relay


def test_the_relay_publishes_a_batch_all_in_flight_at_once_in_order_and_marks_it_sent(tmp_path: Path) -> None:
    relay = relay_for(tmp_path, batch=3, link=(link := FakeLink()))
    assert asyncio.run(relay.flush()) == 3
    assert [json.loads(b)["payload"]["ref"] for b in link.bodies] == ["0", "1", "2"] and link.most_in_flight == 3
    assert [r["sent_at"] is not None for r in outbox(relay.book)] == [True, True, True, False, False]
    assert relay.published == 3 and relay.book.pending_count() == 2
    asyncio.run(relay.flush())
    assert relay.book.pending_count() == 0 and len(link.bodies) == 5


def test_the_relay_marks_sent_exactly_what_the_broker_confirmed(tmp_path: Path) -> None:
    relay = relay_for(tmp_path, batch=5, link=FakeLink(fail_at=3))
    with pytest.raises(RuntimeError, match="nacked"):
        asyncio.run(relay.flush())
    assert [r["sent_at"] is not None for r in outbox(relay.book)] == [True, True, False, True, True]
    assert relay.published == 4
    relay.link = link = FakeLink()   # the nacked one goes out again
    asyncio.run(relay.flush())
    assert [json.loads(b)["payload"]["ref"] for b in link.bodies] == ["2"] and relay.book.pending_count() == 0


def test_nothing_is_marked_sent_before_its_confirm(tmp_path: Path) -> None:
    relay = relay_for(tmp_path, batch=5, link=(link := FakeLink()))

    async def look_while_in_flight() -> list[bool]:
        flush = asyncio.ensure_future(relay.flush())
        while not link.in_flight:
            await asyncio.sleep(0)
        sent = [r["sent_at"] is not None for r in outbox(relay.book)]
        await flush
        return sent

    assert asyncio.run(look_while_in_flight()) == [False] * 5 and relay.book.pending_count() == 0


def test_the_duplicate_publish_hook_publishes_chosen_events_twice_and_marks_them_once(tmp_path: Path) -> None:
    hooks = Hooks()
    hooks.arm({"duplicate_publish": {"rate": 1.0, "seed": 0}}, ("duplicate_publish",))
    relay = relay_for(tmp_path, batch=2, link=(link := FakeLink()), hooks=hooks)
    asyncio.run(relay.flush())
    assert sorted(json.loads(b)["payload"]["ref"] for b in link.bodies) == ["0", "0", "1", "1"]
    assert relay.published == 2 and hooks.fired == {"duplicate_publish": 2}


def test_the_relay_does_nothing_without_a_connection(tmp_path: Path) -> None:
    relay = relay_for(tmp_path, batch=5, link=FakeLink(connected=False))
    assert asyncio.run(relay.flush()) == 0
    assert relay.book.pending_count() == 5 and relay.link.bodies == []


def test_the_app_passes_the_customers_idempotency_key_to_the_desk(tmp_path: Path) -> None:
    config = ServiceConfig(name="orders-1", port=1, db=str(tmp_path / "orders.db"), amqp_url="amqp://127.0.0.1:1")

    async def orders() -> list[tuple[int, dict[str, Any]]]:
        async with TestClient(TestServer(service.build_app(config))) as client:   # no broker: stays pending
            answers = []
            for key in ("k-1", "k-1", None):
                headers = {"Idempotency-Key": key} if key else {}
                resp = await client.post("/orders", json={"product": "Mocha", "size": "large"}, headers=headers)
                answers.append((resp.status, await resp.json()))
            health = await (await client.get("/health")).json()
            assert health["outbox_pending"] == 2 and health["broker"] == "disconnected"
            return answers

    (s1, first), (s2, again), (s3, other) = asyncio.run(orders())
    assert s1 == s2 == s3 == 202 and again["id"] == first["id"] and again["replayed"] is True
    assert other["id"] != first["id"]


def test_an_event_the_broker_returns_stays_pending_and_goes_out_next_time(tmp_path: Path) -> None:
    relay = relay_for(tmp_path, batch=5, link=(link := FakeLink()))
    link.unroutable_at = 3
    with pytest.raises(Unroutable):
        asyncio.run(relay.flush())
    assert link.mandatory == [True] * 5                                    # CoffeeOrdered must reach a queue
    assert relay.book.pending_count() == 1 and relay.published == 4        # the returned one is not marked sent
    assert asyncio.run(relay.flush()) == 1 and relay.book.pending_count() == 0
