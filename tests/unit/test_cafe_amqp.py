"""cafe.amqp without a broker: the confirm window (at most W publishes unconfirmed, settled as the
broker's confirms arrive), ack only after the follow-up event is confirmed, a failed publish gives
the delivery back, deliveries of an old connection are not settled, a batch consumer gets
the deliveries that arrived together as one list, and a mandatory publish the broker returns
raises Unroutable after the topology was declared again."""
from __future__ import annotations

import asyncio
from typing import Any

import aiormq
import pytest
from pamqp import commands as spec

from cafe import amqp
from cafe.amqp import Consumer, Delivery, Link
from cafe.events import new_event
from cafe.topology import EXCHANGE


class FakeChannel:
    """An aiormq channel: publishes wait for a confirm the test releases (or a nack); acks and
    nacks are recorded in order with the publishes, as frames on the wire."""

    def __init__(self) -> None:
        self.wire: list[tuple[str, Any]] = []
        self.confirms: list[asyncio.Future[None]] = []
        self.is_closed = False
        self.unbound: set[str] = set()    # routing keys no queue is bound for
        self.declared: list[str] = []     # what the topology declarations declared, in order

    async def exchange_declare(self, *, exchange: str, exchange_type: str, durable: bool) -> None:
        self.declared.append(exchange)

    async def queue_declare(self, queue: str, *, durable: bool, arguments: Any) -> None:
        self.declared.append(queue)

    async def queue_bind(self, queue: str, exchange: str, *, routing_key: str) -> None:
        self.declared.append(f"{exchange}->{queue}")
        self.unbound.discard(routing_key)

    async def basic_publish(self, body: bytes, *, exchange: str, routing_key: str, properties: Any,
                            wait: bool, timeout: float | None = None, mandatory: bool = False) -> None:
        assert exchange == EXCHANGE and properties.delivery_mode == 2 and properties.message_type == routing_key
        self.wire.append(("publish", properties.message_id))
        if mandatory and routing_key in self.unbound:   # the broker's basic.return, then its confirm
            returned = spec.Basic.Return(reply_code=312, reply_text="NO_ROUTE", exchange=exchange,
                                         routing_key=routing_key)
            message = aiormq.abc.DeliveredMessage(delivery=returned, header=None, body=body, channel=None)
            raise aiormq.exceptions.PublishError(message, returned)
        confirm: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.confirms.append(confirm)
        await confirm

    async def basic_ack(self, tag: int, wait: bool = True) -> None:
        self.wire.append(("ack", tag))

    async def basic_nack(self, tag: int, requeue: bool = True, wait: bool = True) -> None:
        self.wire.append(("nack" if requeue else "dead-letter", tag))

    def confirm_all(self, error: BaseException | None = None) -> int:
        """The broker confirms (a multiple ack) every publish still waiting: how many."""
        waiting = [c for c in self.confirms if not c.done()]
        for confirm in waiting:
            if error is None:
                confirm.set_result(None)
            else:
                confirm.set_exception(error)
        return len(waiting)


def connected(link: Link, channel: FakeChannel, generation: int = 1) -> FakeChannel:
    link.channel, link.generation = channel, generation
    link._slots = asyncio.Semaphore(link.window)
    link.connected.set()
    return channel


async def turns(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def test_at_most_w_publishes_are_in_flight_and_confirms_release_the_window() -> None:
    async def scenario() -> list[int]:
        link = Link("t", "amqp://127.0.0.1:1", window=3)
        channel = connected(link, FakeChannel())
        publishes = asyncio.gather(*(link.publish("CoffeeOrdered", str(i), b"{}") for i in range(7)))
        seen = []
        while not publishes.done():
            await turns()
            seen.append(link.in_flight)
            channel.confirm_all()
        await publishes
        assert link.published == 7 and [m for _, m in channel.wire] == [str(i) for i in range(7)]
        return seen

    assert asyncio.run(scenario())[:3] == [3, 3, 1]


class FakeConnection:
    """What Link asks of its aiormq connection here: `blocked` (connection.blocked) and `close`."""

    def __init__(self, blocked: bool) -> None:
        self.blocked, self.is_closed = blocked, False

    async def close(self) -> None:
        self.is_closed = True


def test_a_blocked_connection_waits_for_its_confirm_past_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """A resource alarm: the broker reads nothing until it clears, so the publish waits (reconnecting
    would not help: every publishing connection is blocked) and is confirmed after it."""
    monkeypatch.setattr(amqp, "CONFIRM_TIMEOUT_S", 0.02)

    async def scenario() -> tuple[int, bool]:
        link = Link("t", "amqp://127.0.0.1:1")
        channel = connected(link, FakeChannel())
        link._conn = conn = FakeConnection(blocked=True)
        assert link.blocked
        publish = asyncio.ensure_future(link.publish("CoffeeOrdered", "e", b"{}"))
        await asyncio.sleep(0.2)                  # ten timeouts long
        assert not publish.done()
        conn.blocked = False                      # connection.unblocked, then the confirm
        channel.confirm_all()
        await publish
        return link.published, conn.is_closed

    assert asyncio.run(scenario()) == (1, False)


def test_a_confirm_right_after_the_unblock_is_no_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """connection.unblocked comes before the confirm: a timeout that falls between the two (CI saw
    it under load) must not drop the connection; a whole timeout after the unblock, it does."""
    monkeypatch.setattr(amqp, "CONFIRM_TIMEOUT_S", 0.05)

    async def scenario() -> tuple[int, bool, float]:
        link = Link("t", "amqp://127.0.0.1:1")
        channel = connected(link, FakeChannel())
        link._conn = conn = FakeConnection(blocked=True)
        publish = asyncio.ensure_future(link.publish("CoffeeOrdered", "e", b"{}"))
        await asyncio.sleep(0.12)
        conn.blocked = False                      # unblocked; the confirm is late
        await asyncio.sleep(0.04)                 # past the timeout of the wait that saw the block
        assert not publish.done()
        channel.confirm_all()
        await publish
        late = asyncio.ensure_future(link.publish("CoffeeOrdered", "f", b"{}"))
        conn.blocked = True
        await asyncio.sleep(0.06)
        conn.blocked = False                      # unblocked, and no confirm ever
        began = asyncio.get_running_loop().time()
        with pytest.raises(TimeoutError):
            await late
        return link.published, conn.is_closed, asyncio.get_running_loop().time() - began

    published, closed, after = asyncio.run(scenario())
    assert published == 1 and closed and after >= 0.04   # dropped, a whole timeout after the unblock at the most


def test_an_unblocked_connection_without_a_confirm_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(amqp, "CONFIRM_TIMEOUT_S", 0.02)

    async def scenario() -> tuple[bool, bool]:
        link = Link("t", "amqp://127.0.0.1:1")
        channel = connected(link, FakeChannel())
        link._conn = conn = FakeConnection(blocked=False)
        with pytest.raises(TimeoutError):
            await link.publish("CoffeeOrdered", "e", b"{}")
        return conn.is_closed, all(c.cancelled() for c in channel.confirms)

    assert asyncio.run(scenario()) == (True, True)   # dropped, and the confirm no one awaits is cancelled


def test_a_nacked_follow_up_event_is_published_again_with_the_delivery_held(monkeypatch: pytest.MonkeyPatch) -> None:
    """A full queue with overflow reject-publish nacks: the delivery is neither acked nor requeued
    (it would come straight back and spend its delivery limit) until the event gets in."""
    monkeypatch.setattr(amqp, "NACK_BACKOFF_S", (0.01, 0.02))
    brewed = new_event("CoffeeBrewed", "o-1", {"product": "Latte", "size": "small", "brewId": "b",
                                               "barista": "barista-1", "brewMs": 1.0})

    async def scenario() -> tuple[list[tuple[str, Any]], int]:
        consumer = Consumer("t", "amqp://127.0.0.1:1", "q", batch=lambda ds: asyncio.sleep(0))
        channel = connected(consumer, FakeChannel())
        consumer.pending = 1
        ack = asyncio.ensure_future(consumer.ack(Delivery(5, 1, False, b"", 0, channel=channel), then_publish=brewed))
        for _ in range(2):   # the queue is full twice
            await turns()
            channel.confirm_all(aiormq.exceptions.DeliveryError(None, None))
            await asyncio.sleep(0.03)
        await turns()
        channel.confirm_all()
        assert await ack is True and consumer.pending == 0
        return channel.wire, consumer.nacked

    wire, nacked = asyncio.run(scenario())
    assert wire == [("publish", brewed.event_id)] * 3 + [("ack", 5)] and nacked == 2


def test_publishing_without_a_connection_raises_connection_error() -> None:
    with pytest.raises(ConnectionError):
        asyncio.run(Link("t", "amqp://127.0.0.1:1").publish("CoffeeOrdered", "e", b"{}"))


def test_a_delivery_is_acked_only_after_its_follow_up_event_is_confirmed() -> None:
    brewed = new_event("CoffeeBrewed", "o-1", {"product": "Latte", "size": "small", "brewId": "b",
                                               "barista": "barista-1", "brewMs": 1.0})

    async def scenario() -> list[tuple[str, Any]]:
        consumer = Consumer("t", "amqp://127.0.0.1:1", "q", batch=lambda ds: asyncio.sleep(0))
        channel = connected(consumer, FakeChannel())
        consumer.pending = 1
        ack = asyncio.ensure_future(consumer.ack(Delivery(7, 1, False, b"", 0, channel=channel), then_publish=brewed))
        await turns()
        assert channel.wire == [("publish", brewed.event_id)] and not ack.done()   # not acked yet
        channel.confirm_all()
        assert await ack is True and consumer.pending == 0
        return channel.wire

    assert asyncio.run(scenario()) == [("publish", brewed.event_id), ("ack", 7)]


def test_a_follow_up_event_that_is_not_confirmed_gives_the_delivery_back() -> None:
    served = new_event("CoffeeServed", "o-1", {"product": "Latte", "size": "small", "waiter": "w"})

    async def scenario() -> list[tuple[str, Any]]:
        consumer = Consumer("t", "amqp://127.0.0.1:1", "q", batch=lambda ds: asyncio.sleep(0))
        channel = connected(consumer, FakeChannel())
        consumer.pending = 1
        ack = asyncio.ensure_future(consumer.ack(Delivery(3, 1, False, b"", 0, channel=channel), then_publish=served))
        await turns()
        channel.confirm_all(RuntimeError("nacked"))
        with pytest.raises(RuntimeError, match="nacked"):
            await ack
        return channel.wire

    assert asyncio.run(scenario()) == [("publish", served.event_id), ("nack", 3)]   # requeued: at least once


def test_a_delivery_from_an_earlier_connection_is_not_settled() -> None:
    async def scenario() -> tuple[bool, bool, list[Any]]:
        consumer = Consumer("t", "amqp://127.0.0.1:1", "q", batch=lambda ds: asyncio.sleep(0))
        old = FakeChannel()
        channel = connected(consumer, FakeChannel(), generation=2)
        stale = Delivery(1, 1, False, b"", 0, channel=old)
        return await consumer.ack(stale), await consumer.reject(stale, requeue=False), channel.wire + old.wire

    assert asyncio.run(scenario()) == (False, False, [])


class Message:
    """What aiormq hands a consumer callback."""

    def __init__(self, tag: int, channel: FakeChannel, headers: dict[str, Any] | None = None) -> None:
        self.delivery = spec.Basic.Deliver(consumer_tag="c", delivery_tag=tag, redelivered=tag > 1,
                                           exchange=EXCHANGE, routing_key="CoffeeOrdered")
        self.header = type("Header", (), {"properties": spec.Basic.Properties(headers=headers)})()
        self.body, self.channel = b"{}", channel


def test_deliveries_that_arrive_together_are_handed_over_as_one_batch() -> None:
    async def scenario() -> list[list[tuple[int, bool, int]]]:
        batches: list[list[Delivery]] = []

        async def batch(deliveries: list[Delivery]) -> None:
            batches.append(deliveries)

        consumer = Consumer("t", "amqp://127.0.0.1:1", "q", batch=batch, prefetch=10)
        channel = connected(consumer, FakeChannel())
        for tag in (1, 2, 3):   # one read from the socket: aiormq makes a task for each
            asyncio.ensure_future(consumer._on_message(Message(tag, channel, {"x-delivery-count": tag - 1})))
        await turns()
        await consumer._on_message(Message(4, channel))    # a later turn: the next batch
        await turns()
        assert consumer.pending == 4 and consumer.batches == 2
        return [[(d.tag, d.redelivered, d.delivery_count) for d in b] for b in batches]

    assert asyncio.run(scenario()) == [[(1, False, 0), (2, True, 1), (3, True, 2)], [(4, True, 0)]]


def test_a_consumer_needs_exactly_one_kind_of_handler() -> None:
    with pytest.raises(ValueError, match="one of them"):
        Consumer("t", "amqp://127.0.0.1:1", "q")


def test_a_link_that_cannot_connect_retries_with_backoff_and_stops(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(amqp, "BACKOFF_S", (0.01, 0.02))

    async def scenario() -> tuple[int, str]:
        link = Link("t", "amqp://guest:guest@127.0.0.1:1/")   # nothing listens there
        link.start()
        for _ in range(200):   # three failed attempts take ~0.05 s; a loaded machine gets up to 10 s
            if link.disconnects >= 3:
                break
            await asyncio.sleep(0.05)
        await link.stop()
        return link.disconnects, link.broker

    disconnects, broker = asyncio.run(scenario())
    assert disconnects >= 3 and broker == "disconnected"


def test_the_frames_of_one_loop_turn_leave_as_one_write_in_order() -> None:
    class Transport:
        def __init__(self) -> None:
            self.sent: list[bytes] = []
            self.closed = False

        def write(self, data: bytes) -> None:
            self.sent.append(data)

        def is_closing(self) -> bool:
            return self.closed

        def close(self) -> None:
            self.closed = True

        def get_extra_info(self, name: str) -> str:
            return f"real {name}"

    async def scenario() -> tuple[list[bytes], Any]:
        real = Transport()
        coalesced = amqp._CoalescedTransport(real, asyncio.get_running_loop())  # type: ignore[arg-type]
        for frame in (b"publish-1", b"ack-7", b"publish-2"):
            coalesced.write(frame)
        assert real.sent == []                  # nothing sent during the turn
        await asyncio.sleep(0)
        coalesced.write(b"heartbeat")
        coalesced.close()                       # what is pending leaves before the close
        return real.sent, (coalesced.get_extra_info("peername"), coalesced.writes, coalesced.sends, real.closed)

    sent, (peer, writes, sends, closed) = asyncio.run(scenario())
    assert sent == [b"publish-1ack-7publish-2", b"heartbeat"]
    assert (peer, writes, sends, closed) == ("real peername", 4, 2, True)


def test_a_returned_mandatory_publish_raises_unroutable_and_the_topology_is_declared_again() -> None:
    async def scenario() -> FakeChannel:
        link = Link("t", "amqp://127.0.0.1:1")
        channel = connected(link, FakeChannel())
        channel.unbound.add("CoffeeOrdered")
        with pytest.raises(amqp.Unroutable, match="CoffeeOrdered e1: no queue bound"):
            await link.publish("CoffeeOrdered", "e1", b"{}", mandatory=True)
        assert (link.returned, link.redeclared, link.published) == (1, 1, 0)
        assert "cafe.events->barista.orders" in channel.declared and not channel.unbound
        second = asyncio.ensure_future(link.publish("CoffeeOrdered", "e1", b"{}", mandatory=True))
        await turns()
        channel.confirm_all()
        await second
        assert link.published == 1
        return channel

    asyncio.run(scenario())


def test_a_publish_that_is_not_mandatory_is_confirmed_even_when_nothing_routes_it() -> None:
    async def scenario() -> int:   # what a confirm alone promises: the broker took it, not that a queue did
        link = Link("t", "amqp://127.0.0.1:1")
        channel = connected(link, FakeChannel())
        channel.unbound.add("CoffeeServed")
        publish = asyncio.ensure_future(link.publish("CoffeeServed", "e2", b"{}"))
        await turns()
        channel.confirm_all()
        await publish
        return link.returned

    assert asyncio.run(scenario()) == 0
