"""The async shop's broker plumbing: one aiormq connection per service, in the service's own event loop.

    Link        one connection and channel, publisher confirms on, the topology declared, kept up
                until `stop()`: reconnect with backoff (0.2 s doubling to 2 s), `generation` counts
                the connections, `disconnects` the losses, `broker` says "connected" or not (/health).
                Given several URLs (the nodes of a cluster, its own first), a lost or refused
                connection moves to the next one (`failovers`)
    publish     persistent, to the events exchange; awaits the broker's confirm. Up to `window`
                publishes are in flight at once (unconfirmed), settled as the broker's (multiple)
                acks arrive: callers that publish concurrently share the round trips instead of
                waiting for one confirm each (RabbitMQ here: ~1.4k/s one by one, far more in windows).
                `mandatory`: a message no binding routes comes back (basic.return before its
                confirm) and raises `Unroutable`, after the link declared its topology again
    Consumer    a Link that consumes a queue with manual acks and `prefetch`; every delivery runs
                its handler as its own task (or one after the other with `ordered`), so up to
                `prefetch` deliveries are worked on and confirmed at once. A subscription the broker
                cancels (its queue deleted) is noticed at once: the queue is declared again and
                consumed again (`subscribed`, `resubscribed`)
    Delivery    what a handler gets; `ack(delivery, then_publish=event)` publishes the follow-up
                event, awaits its confirm and only then acks (at least once)

The frames written in one turn of the event loop leave as one write (`_CoalescedTransport`, through
aiormq's transport factory): acks and publishes settled together cost one send, one packet through
Toxiproxy and one read by the broker. Nothing here blocks the event loop: SQLite runs elsewhere.
Heartbeats are aiormq's (sent and checked by the loop); a connection the broker went silent on for
1.5 x (heartbeat + 1) s is dropped and reconnected (pika noticed after 15-30 s at heartbeat 10). A publish
not confirmed within `CONFIRM_TIMEOUT_S` drops the connection too (a dead one), unless the broker
has blocked it (`blocked`: a memory or disk alarm): reconnecting would not help, as every connection
that publishes is blocked, so the publish waits for the alarm to clear. Consumers publish and ack on
one connection: a blocked connection holds their acks too, but they ack only after their follow-up
event is confirmed, so a second, publish-only connection would not free a single message sooner. `parameters` is pika's, for the harness.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiormq
import aiormq.connection
import pika
from pamqp import commands as spec
from yarl import URL

from cafe import topology
from cafe.events import Event

log = logging.getLogger("cafe.amqp")
WINDOW = 256              # publishes in flight (unconfirmed) per connection; see docs/performance.md
CONFIRM_TIMEOUT_S = 30.0  # a publish not confirmed by then: the connection is blocked or dead
CONNECT_TIMEOUT_S = 5.0
BACKOFF_S = (0.2, 2.0)    # first and longest wait between connection attempts
NACK_BACKOFF_S = (0.05, 2.0)  # first and longest wait before publishing a nacked follow-up event again
# On a cluster, a link whose publishes were nacked this many times in a row reopens its connection:
# seen with RabbitMQ 3.10, a channel nacked while a quorum queue elected a new leader went on being
# nacked for 10-30 s after the election, while a new connection was confirmed at once
# (broker-node-outage; docs/architecture.md). On one node a nack means a full queue: no reconnect.
NACKS_BEFORE_RECONNECT = 3
STOP_GRACE_S = 10.0       # how long stop() waits for the deliveries in hand to be settled
PERSISTENT = 2


def _settled(confirm: asyncio.Future[Any]) -> None:
    if not confirm.cancelled():
        confirm.exception()


def parameters(url: str, heartbeat_s: int) -> pika.URLParameters:
    """pika connection parameters for the harness's own connections (the services use aiormq)."""
    params = pika.URLParameters(url)
    params.heartbeat = heartbeat_s
    params.blocked_connection_timeout = 30
    params.socket_timeout = 5
    params.connection_attempts = 1
    return params


class _CoalescedTransport:
    """A TCP transport whose writes of one turn of the event loop leave as one write: the frames
    that tasks queue together (acks and publishes settled by one multiple confirm, deliveries'
    follow-up events) cost one send, one packet through Toxiproxy and one read by the broker
    instead of one each. Everything but `write` is the real transport's."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport, self._loop = transport, loop
        self._pending: list[bytes] = []
        self.writes = self.sends = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(bytes(data))
        self.writes += 1

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending and not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))
            self.sends += 1

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _CoalescingTCP(aiormq.connection.TransportFactory):
    """aiormq's plain TCP connection, written through a `_CoalescedTransport`."""

    async def create(self, url: URL, **kwargs: Any) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        try:
            transport, _ = await loop.create_connection(lambda: protocol, url.host or "127.0.0.1", url.port or 5672)
        except OSError as exc:
            raise aiormq.exceptions.AMQPConnectionError(*exc.args) from exc
        coalesced: Any = _CoalescedTransport(transport, loop)
        return reader, asyncio.StreamWriter(coalesced, protocol, reader, loop)


class _Connection(aiormq.Connection):
    """aiormq's connection, dropped after 1.5 x (heartbeat + 1) s of silence (aiormq: 3 x; pika: 15-30 s)."""

    HEARTBEAT_GRACE_MULTIPLIER = 1.5  # type: ignore[assignment]  # aiormq multiplies, an int is not needed

    @property
    def blocked(self) -> bool:
        """True between the broker's connection.blocked and connection.unblocked (a resource alarm).
        aiormq 7 keeps this only in a private event (set while unblocked); tests/integration/
        test_alarm.py fails if a new aiormq moves it."""
        unblocked = getattr(self, "_Connection__connection_unblocked", None)
        return unblocked is not None and not unblocked.is_set()


def properties(event_type: str, event_id: str) -> spec.Basic.Properties:
    return spec.Basic.Properties(delivery_mode=PERSISTENT, content_type="application/json",
                                 message_id=event_id, message_type=event_type)


@dataclass(frozen=True)
class Delivery:
    """A message handed to a handler; `generation` identifies the connection it arrived on."""

    tag: int
    generation: int
    redelivered: bool
    body: bytes
    delivery_count: int  # x-delivery-count of quorum queues (0 on first delivery)
    stream_offset: int | None = None  # x-stream-offset of a message read from a stream
    channel: Any = field(default=None, compare=False, repr=False)  # the channel to settle it on


class Unroutable(Exception):
    """The broker returned a `mandatory` publish: no queue is bound for its routing key (a binding
    or a queue deleted). Nothing was delivered; the link has declared its topology again."""


class Link:
    """One broker connection in the running event loop, kept up from `start()` until `stop()`.

    `on_connect(channel)` runs after each (re)connect, once confirms are on and the topology is
    declared; `connected` is set while up. Subclasses add `begin_stop` and `ready_to_close`."""

    def __init__(self, name: str, url: str | Sequence[str], *, heartbeat_s: int = 10,
                 queues: topology.Queues = topology.DEFAULT_QUEUES, window: int = WINDOW) -> None:
        self.urls = (url,) if isinstance(url, str) else tuple(url)
        if not self.urls:
            raise ValueError(f"{name}: no broker URL")
        self.name, self.url, self.heartbeat_s = name, self.urls[0], heartbeat_s
        self.failovers = 0          # times a failed session moved the link to the next node's URL
        self.queues, self.window = queues, window
        self.connected = asyncio.Event()
        self.generation = 0
        self.disconnects = 0
        self.published = 0          # publishes confirmed by the broker
        self.in_flight = 0          # publishes sent and not yet confirmed
        self.returned = 0           # mandatory publishes the broker returned (unroutable)
        self.nacked = 0             # publishes the broker nacked (a full queue that rejects publishes)
        self.nack_streak = 0        # nacks since the last confirmed publish
        self.redeclared = 0         # times the topology was declared again after a return or a cancel
        self._redeclaring = asyncio.Lock()
        self.channel: Any = None
        self._conn: Any = None
        self._slots: asyncio.Semaphore | None = None
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # hooks for subclasses -------------------------------------------------
    async def on_connect(self, channel: Any) -> None: ...

    async def begin_stop(self, channel: Any) -> None: ...

    def ready_to_close(self) -> bool:
        return True

    # life ------------------------------------------------------------------
    @property
    def broker(self) -> str:
        """"connected" or "disconnected", as a service's /health says it."""
        return "connected" if self.connected.is_set() else "disconnected"

    @property
    def blocked(self) -> bool:
        """True while connected and blocked by the broker (a memory or disk alarm: it reads nothing
        this connection sends, so publishes wait, and with them the acks written after them)."""
        conn = self._conn
        return conn is not None and self.connected.is_set() and bool(conn.blocked)

    def start(self) -> None:
        """Connect in the background (a start step of cafe.web.application: runs in the loop)."""
        self._task = asyncio.ensure_future(self._run())

    async def stop(self, timeout: float = STOP_GRACE_S) -> None:
        """Stop consuming, wait (at most `timeout`) until what is in hand is settled, close."""
        self._stopping.set()
        if self.channel is not None and self.connected.is_set():
            with contextlib.suppress(Exception):
                await self.begin_stop(self.channel)
            deadline = asyncio.get_running_loop().time() + timeout
            while not self.ready_to_close() and asyncio.get_running_loop().time() < deadline \
                    and self.connected.is_set():
                await asyncio.sleep(0.05)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._close()

    async def _run(self) -> None:
        backoff = BACKOFF_S[0]
        while not self._stopping.is_set():
            try:
                await self._session()
                backoff = BACKOFF_S[0]
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # refused, reset, closed by the broker, timed out: reconnect
                log.warning("%s: broker connection lost or refused: %s: %s", self.name,
                            exc.__class__.__name__, exc)
                self._fail_over()
            finally:
                self.connected.clear()
                self.channel = None
                await self._close()
            if not self._stopping.is_set():
                self.disconnects += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), backoff)
                backoff = min(backoff * 2, BACKOFF_S[1])

    def _fail_over(self) -> None:
        """Move to the next node's URL (a cluster: a node that refused, paused or dropped the
        connection is tried again only after the others)."""
        if len(self.urls) > 1:
            self.url = self.urls[(self.urls.index(self.url) + 1) % len(self.urls)]
            self.failovers += 1
            log.info("%s: failing over to the next broker node (URL %d of %d)", self.name, self.urls.index(self.url) + 1,
                     len(self.urls))

    async def _session(self) -> None:
        url = URL(self.url).update_query(heartbeat=str(self.heartbeat_s), name=self.name)
        self._conn = _Connection(url, transport_factory=_CoalescingTCP())
        await asyncio.wait_for(self._conn.connect(), CONNECT_TIMEOUT_S)
        self.generation += 1
        channel = await self._conn.channel(publisher_confirms=True)
        await topology.declare_async(channel, self.queues)
        self._slots = asyncio.Semaphore(self.window)
        self.channel = channel
        await self.on_connect(channel)
        self.connected.set()
        log.info("%s: connected to broker (generation %d)", self.name, self.generation)
        closed = [self._conn.closing, channel.closing]
        try:
            done, _ = await asyncio.wait(closed, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for future in closed:
                future.cancel()
        reason = next(iter(done)).exception() if done and not next(iter(done)).cancelled() else None
        raise ConnectionError(f"connection closed: {reason!r}")

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2.0)

    # publishing -------------------------------------------------------------
    async def publish(self, event_type: str, event_id: str, body: bytes, *, mandatory: bool = False) -> None:
        """Publish persistently to the events exchange and await the broker's confirm. Raises
        ConnectionError when not connected, aiormq.exceptions.DeliveryError when the broker nacks,
        TimeoutError (and drops the connection) when no confirm comes within CONFIRM_TIMEOUT_S while
        the connection is not `blocked` (a blocked one waits for the alarm to clear), and
        with `mandatory`, Unroutable when no queue is bound for `event_type` (the message was
        returned, not delivered; the topology is declared again before it raises)."""
        channel, slots = self.channel, self._slots
        if channel is None or slots is None or not self.connected.is_set():
            raise ConnectionError(f"{self.name}: broker not connected")
        async with slots:
            self.in_flight += 1
            confirm = asyncio.ensure_future(channel.basic_publish(
                body, exchange=topology.EXCHANGE, routing_key=event_type,
                properties=properties(event_type, event_id), wait=False, mandatory=mandatory))
            # its outcome is read here, or (cancelled: a lost connection, a caller that gave up) by
            # this callback, so asyncio never logs "Task exception was never retrieved"
            confirm.add_done_callback(_settled)
            try:
                was_blocked = False
                while not (await asyncio.wait({confirm}, timeout=CONFIRM_TIMEOUT_S))[0]:
                    # a resource alarm: the broker reads it once the alarm clears, so the publish
                    # waits, and gets one whole timeout more after connection.unblocked (its confirm
                    # follows the unblock: a timeout falling between the two is no dead connection)
                    if self.blocked or was_blocked:
                        was_blocked = self.blocked
                        continue
                    log.warning("%s: no confirm within %gs: dropping the connection", self.name, CONFIRM_TIMEOUT_S)
                    await self._close()
                    raise TimeoutError(f"{self.name}: no confirm within {CONFIRM_TIMEOUT_S:g}s")
                confirm.result()
            except aiormq.exceptions.PublishError as exc:   # basic.return: nothing was delivered
                self.returned += 1
                log.warning("%s: %s %s returned unroutable: declaring the topology again", self.name,
                            event_type, event_id)
                await self.redeclare(channel)
                raise Unroutable(f"{event_type} {event_id}: no queue bound for it") from exc
            except aiormq.exceptions.DeliveryError:   # basic.nack
                self.nacked += 1
                self.nack_streak += 1
                if self.nack_streak >= NACKS_BEFORE_RECONNECT and len(self.urls) > 1 and self._conn is not None:
                    log.warning("%s: %d nacks in a row on a cluster: reopening the connection", self.name,
                                self.nack_streak)
                    self.nack_streak = 0
                    await self._close()
                raise
            finally:
                self.in_flight -= 1
                if not confirm.done():   # timed out, or the caller gave up: no one awaits it now
                    confirm.cancel()
        self.nack_streak = 0
        self.published += 1

    async def publish_event(self, event: Event, *, mandatory: bool = False) -> None:
        """`publish` an event (confirmed)."""
        await self.publish(event.event_type, event.event_id, event.encode(), mandatory=mandatory)

    async def redeclare(self, channel: Any) -> None:
        """Declare the topology again on `channel` (its queues and bindings, idempotently): after a
        return or a cancelled subscription, something was deleted. Concurrent callers share one
        declaration; a failure drops the connection (the reconnect declares it)."""
        if self._redeclaring.locked():
            async with self._redeclaring:   # another caller is declaring it: wait for that one
                return
        async with self._redeclaring:
            try:
                await topology.declare_async(channel, self.queues)
                self.redeclared += 1
            except Exception as exc:
                log.warning("%s: declaring the topology again failed (%s: %s): reconnecting", self.name,
                            exc.__class__.__name__, exc)
                await self._close()


Handler = Callable[[Delivery], Awaitable[None]]
BatchHandler = Callable[[list[Delivery]], Awaitable[None]]


class Consumer(Link):
    """Consumes `queue` with manual acks and `prefetch`; `handler(delivery)` is awaited for each
    delivery as its own task, so up to `prefetch` are handled at once (`ordered`: one at a time, in
    the order they arrived). With `batch` instead, the deliveries that arrive together (read in
    one turn of the event loop) are handed over as one list, each list in its own task: one
    database transaction and one thread hop for all of them (still at most `prefetch` in hand)."""

    def __init__(self, name: str, url: str, queue: str, handler: Handler | None = None, *, prefetch: int = 1,
                 arguments: Callable[[], dict[str, Any]] | None = None, ordered: bool = False,
                 batch: BatchHandler | None = None, **kwargs: Any) -> None:
        super().__init__(name, url, **kwargs)
        if (handler is None) == (batch is None):
            raise ValueError("a Consumer needs a handler or a batch handler (one of them)")
        self.queue, self.handler, self.batch, self.prefetch = queue, handler, batch, prefetch
        self.arguments = arguments  # consumer arguments, asked anew on every (re)connect
        self.pending = 0  # deliveries of this connection handed to the handler, not yet acked or rejected
        self.batches = 0
        self.resubscribed = 0  # subscriptions the broker cancelled and this consumer made again
        self._tag: str | None = None
        self._order = asyncio.Lock() if ordered else None
        self._arrived: list[Delivery] = []

    @property
    def subscribed(self) -> bool:
        """True while connected with a live subscription to the queue (for /health)."""
        return self.connected.is_set() and self._tag is not None

    async def on_connect(self, channel: Any) -> None:
        self.pending = 0
        await channel.basic_qos(prefetch_count=self.prefetch)
        channel.on_consumer_cancel_callbacks.add(self._on_cancel)
        await self._subscribe(channel)

    async def _subscribe(self, channel: Any) -> None:
        ok = await channel.basic_consume(self.queue, self._on_message, no_ack=False,
                                         arguments=self.arguments() if self.arguments else None)
        self._tag = ok.consumer_tag

    def _on_cancel(self, frame: Any) -> None:
        """The broker cancelled a subscription (basic.cancel: its queue was deleted): declare the
        topology again and consume again on the same channel, in a task of its own (this callback
        runs in aiormq's frame reader, which the declarations' answers need)."""
        channel = self.channel
        if frame.consumer_tag != self._tag or channel is None or self._stopping.is_set():
            return
        self._tag = None
        log.warning("%s: the broker cancelled the subscription to %s: subscribing again", self.name, self.queue)
        asyncio.ensure_future(self._resubscribe(channel)).add_done_callback(_log_failure)

    async def _resubscribe(self, channel: Any) -> None:
        """What was in hand stays to be settled (the broker forgot it with the queue). A failure
        drops the connection: the reconnect subscribes anew."""
        await self.redeclare(channel)
        if channel is not self.channel or channel.is_closed or self._stopping.is_set():
            return   # redeclare dropped the connection: the reconnect subscribes
        try:
            await self._subscribe(channel)
            self.resubscribed += 1
        except Exception as exc:
            log.warning("%s: subscribing again failed (%s: %s): reconnecting", self.name, exc.__class__.__name__, exc)
            await self._close()

    async def begin_stop(self, channel: Any) -> None:
        if self._tag is not None:
            await channel.basic_cancel(self._tag)

    def ready_to_close(self) -> bool:
        return self.pending == 0

    async def _on_message(self, message: Any) -> None:
        headers = message.header.properties.headers or {}
        offset = headers.get("x-stream-offset")
        delivery = Delivery(message.delivery.delivery_tag, self.generation, bool(message.delivery.redelivered),
                            message.body, int(headers.get("x-delivery-count", 0) or 0),
                            None if offset is None else int(offset), message.channel)
        self.pending += 1
        if self.batch is not None:
            self._arrived.append(delivery)
            if len(self._arrived) == 1:   # the first of this turn: hand over all of them next turn
                asyncio.get_running_loop().call_soon(self._hand_over)
            return
        assert self.handler is not None
        if self._order is None:
            await self.handler(delivery)
            return
        async with self._order:
            await self.handler(delivery)

    def _hand_over(self) -> None:
        arrived, self._arrived = self._arrived, []
        if arrived and self.batch is not None:
            self.batches += 1
            task = asyncio.ensure_future(self.batch(arrived))
            task.add_done_callback(_log_failure)

    # settling ---------------------------------------------------------------
    def _current(self, delivery: Delivery) -> bool:
        return (self.channel is not None and delivery.generation == self.generation
                and delivery.channel is self.channel and not self.channel.is_closed)

    async def ack(self, delivery: Delivery, then_publish: Event | None = None, *, mandatory: bool = False) -> bool:
        """Publish `then_publish` (confirmed; `mandatory`: it must reach a queue), then ack; False
        when the delivery's connection is gone (the broker will redeliver it). A publish the broker
        nacks (a full queue with `reject-publish`) is tried again, the delivery held, with backoff
        (NACK_BACKOFF_S) while its connection lasts. Any other failure (also Unroutable) gives the
        delivery back (requeued, so it is processed again: at least once) and raises."""
        if not self._current(delivery):
            return False
        if then_publish is not None:
            backoff = NACK_BACKOFF_S[0]
            while True:
                try:
                    await self.publish_event(then_publish, mandatory=mandatory)
                    break
                except aiormq.exceptions.DeliveryError:
                    # nacked: the broker did not take it (a full queue that rejects publishes). Hold
                    # the delivery and try again later: requeued, it would come straight back and
                    # spend its delivery limit until dead-lettered, brewed and never served.
                    if self._current(delivery) and not self._stopping.is_set():
                        await asyncio.sleep(backoff)
                        backoff = min(backoff * 2, NACK_BACKOFF_S[1])
                        continue
                    with contextlib.suppress(Exception):
                        await self.reject(delivery, requeue=True)
                    raise
                except Exception:
                    with contextlib.suppress(Exception):  # the channel is gone: the broker requeues it anyway
                        await self.reject(delivery, requeue=True)
                    raise
            if not self._current(delivery):
                return False
        await delivery.channel.basic_ack(delivery.tag, wait=False)
        self.pending -= 1
        return True

    async def reject(self, delivery: Delivery, requeue: bool) -> bool:
        """Nack; requeue=False dead-letters the message."""
        if not self._current(delivery):
            return False
        await delivery.channel.basic_nack(delivery.tag, requeue=requeue, wait=False)
        self.pending -= 1
        return True


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("a background task (a batch handler, a resubscription) failed", exc_info=task.exception())

