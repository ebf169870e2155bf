"""The async order service's rules without a process or a broker: `OrderDesk` (outbox and direct
modes, idempotency keys), `OrderBook` (orders and their outbox) and the `Relay`'s batch (marks sent
only what the broker confirmed). The order service is a program, loaded here by path."""
from __future__ import annotations

import asyncio
import concurrent.futures
import json
import runpy
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from cafe.config import ServiceConfig
from cafe.hooks import Hooks
from cafe.orders import OrderRequest
from cafe.store import Database

PROGRAM = Path(__file__).resolve().parents[2] / "systems" / "async" / "order_service.py"
service = SimpleNamespace(**runpy.run_path(str(PROGRAM), run_name="cafe_test_order_service"))
MOCHA = OrderRequest("Mocha", "large", customer="grace", ref="3")


class FakeRelay:
    """What the desk asks of the relay: a nudge (outbox mode) or a confirmed publish (direct mode)."""

    def __init__(self, confirm: BaseException | None = None, answer: bool = True) -> None:
        self.nudged: list[Any] = []
        self.published: list[Any] = []
        self.confirm, self.answer = confirm, answer

    def call_soon(self, fn: Any) -> bool:
        self.nudged.append(fn)
        return True

    def flush(self) -> None: ...

    def publish_now(self, event: Any) -> concurrent.futures.Future[None]:
        self.published.append(event)
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        if self.confirm is not None:
            future.set_exception(self.confirm)
        elif self.answer:
            future.set_result(None)
        return future   # never answered when `answer` is False: the broker did not confirm


class FakeChannel:
    """Records basic_publish calls; the `fail_at`-th one (1-based) raises, as a nacked publish does."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.bodies: list[bytes] = []
        self.fail_at = fail_at

    def basic_publish(self, exchange: str, routing_key: str, body: bytes, properties: Any) -> None:
        if self.fail_at is not None and len(self.bodies) + 1 == self.fail_at:
            raise RuntimeError("nacked")
        self.bodies.append(body)


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
    assert relay.nudged == [relay.flush] and relay.published == []    # published by the relay, not here
    assert b.get(record["id"])["published_at"] is None and b.pending_count() == 1


def test_a_keyed_retry_is_the_same_order_and_nothing_new_is_stored_or_published(tmp_path: Path) -> None:
    b, relay = book(tmp_path), FakeRelay()
    desk = service.OrderDesk(b, relay, "outbox")

    async def retry() -> tuple[Any, Any]:
        return await desk.accept(MOCHA, 1.0, "k-1"), await desk.accept(MOCHA, 2.0, "k-1")

    (s1, first), (s2, again) = asyncio.run(retry())
    assert s1 == s2 == 202 and again == {**first, "seq": 1, "replayed": True}
    assert len(outbox(b)) == 1 and len(relay.nudged) == 1


def test_a_concurrent_attempt_with_the_same_key_that_stored_first_wins(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    b = book(tmp_path)
    desk = service.OrderDesk(b, FakeRelay(), "outbox")
    asyncio.run(desk.accept(MOCHA, 1.0, "k-1"))
    first = b.by_key("k-1")
    looks = iter([None, first])                    # the retry looked before the first attempt stored
    monkeypatch.setattr(b, "by_key", lambda key: next(looks))
    status, answer = asyncio.run(desk.accept(MOCHA, 2.0, "k-1"))
    assert status == 202 and answer == {**first, "replayed": True} and len(outbox(b)) == 1


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


def relay_for(tmp_path: Path, batch: int, channel: FakeChannel, hooks: Hooks | None = None) -> Any:
    config = ServiceConfig(name="orders-1", port=1, db=str(tmp_path / "orders.db"), relay_batch=batch)
    b = book(tmp_path)
    relay = service.Relay(config, b, hooks or Hooks())
    relay.channel = channel
    for i in range(5):
        asyncio.run(service.OrderDesk(b, FakeRelay(), "outbox").accept(
            OrderRequest("Latte", "small", ref=str(i)), float(i), None))
    return relay


def test_the_relay_publishes_a_batch_in_order_and_marks_it_sent(tmp_path: Path) -> None:
    relay = relay_for(tmp_path, batch=3, channel=(channel := FakeChannel()))
    relay.flush()
    assert [json.loads(b)["payload"]["ref"] for b in channel.bodies] == ["0", "1", "2"]
    assert [r["sent_at"] is not None for r in outbox(relay.book)] == [True, True, True, False, False]
    assert relay.published == 3 and relay.book.pending_count() == 2
    relay.flush()
    assert relay.book.pending_count() == 0 and len(channel.bodies) == 5


def test_the_relay_marks_sent_only_what_the_broker_confirmed(tmp_path: Path) -> None:
    relay = relay_for(tmp_path, batch=5, channel=FakeChannel(fail_at=3))
    with pytest.raises(RuntimeError, match="nacked"):
        relay.flush()
    assert [r["sent_at"] is not None for r in outbox(relay.book)] == [True, True, False, False, False]
    assert relay.published == 2
    relay.channel = channel = FakeChannel()   # reconnected: the rest goes out, from the first unconfirmed
    relay.flush()
    assert [json.loads(b)["payload"]["ref"] for b in channel.bodies] == ["2", "3", "4"]


def test_the_duplicate_publish_hook_publishes_chosen_events_twice_and_marks_them_once(tmp_path: Path) -> None:
    hooks = Hooks()
    hooks.arm({"duplicate_publish": {"rate": 1.0, "seed": 0}}, ("duplicate_publish",))
    relay = relay_for(tmp_path, batch=2, channel=(channel := FakeChannel()), hooks=hooks)
    relay.flush()
    assert [json.loads(b)["payload"]["ref"] for b in channel.bodies] == ["0", "0", "1", "1"]
    assert relay.published == 2 and hooks.fired == {"duplicate_publish": 2}


def test_the_relay_does_nothing_without_a_connection(tmp_path: Path) -> None:
    relay = relay_for(tmp_path, batch=5, channel=FakeChannel())
    relay.channel = None
    relay.flush()
    assert relay.book.pending_count() == 5


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
