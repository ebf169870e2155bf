"""pika plumbing for the async shop: one BlockingConnection per thread, reconnect with backoff.

pika is not thread-safe: every channel call happens in the thread that owns the connection.
Other threads hand work to it with `call_soon` (pika's add_callback_threadsafe). The connection
thread calls process_data_events every 0.2 s, so heartbeats survive long brews done elsewhere.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions

from cafe import topology
from cafe.events import Event

log = logging.getLogger("cafe.amqp")
TICK_S = 0.2


def parameters(url: str, heartbeat_s: int) -> pika.URLParameters:
    params = pika.URLParameters(url)
    params.heartbeat = heartbeat_s
    params.blocked_connection_timeout = 30
    params.socket_timeout = 5
    params.connection_attempts = 1
    return params


def publish(channel: Any, event: Event) -> None:
    """Publish persistently to the events exchange; with confirms on, blocks until the broker acks
    (raises pika.exceptions.NackError if it refuses)."""
    publish_encoded(channel, event.event_type, event.event_id, event.encode())


def publish_encoded(channel: Any, event_type: str, event_id: str, body: bytes) -> None:
    """`publish` for an event already encoded (e.g. read back from an outbox)."""
    channel.basic_publish(
        topology.EXCHANGE,
        event_type,
        body,
        pika.BasicProperties(delivery_mode=2, content_type="application/json",
                             message_id=event_id, type=event_type),
    )


@dataclass(frozen=True)
class Delivery:
    """A message handed to a handler; `generation` identifies the connection it arrived on."""

    tag: int
    generation: int
    redelivered: bool
    body: bytes
    delivery_count: int  # x-delivery-count of quorum queues (0 on first delivery)
    stream_offset: int | None = None  # x-stream-offset of a message read from a stream


class Connection(threading.Thread):
    """Owns one broker connection in its own thread and keeps it up until `stop()`.

    `on_connect(channel)` runs after each (re)connect (confirms on, topology declared);
    `on_tick(channel)` runs every tick while connected. `connected` is set while up.
    """

    def __init__(self, name: str, url: str, *, heartbeat_s: int = 10, queue_type: str = "quorum",
                 delivery_limit: int = 5) -> None:
        super().__init__(name=name, daemon=True)
        self.url, self.heartbeat_s = url, heartbeat_s
        self.queue_type, self.delivery_limit = queue_type, delivery_limit
        self.connected = threading.Event()
        self.generation = 0
        self.channel: Any = None
        self._conn: pika.BlockingConnection | None = None
        self._stopping = threading.Event()
        self.disconnects = 0

    # hooks for subclasses -------------------------------------------------
    def on_connect(self, channel: Any) -> None: ...
    def on_tick(self, channel: Any) -> None: ...
    def ready_to_close(self) -> bool:
        return True

    def begin_stop(self, channel: Any) -> None: ...

    # thread API ------------------------------------------------------------
    def call_soon(self, fn: Callable[[], object]) -> bool:
        """Run `fn` in the connection thread; False if there is no connection now."""
        conn = self._conn
        if conn is None or not conn.is_open:
            return False
        try:
            conn.add_callback_threadsafe(fn)
            return True
        except Exception:  # connection closed in between
            return False

    @property
    def broker(self) -> str:
        """"connected" or "disconnected", as a service's /health says it."""
        return "connected" if self.connected.is_set() else "disconnected"

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self.join(timeout)

    def run(self) -> None:
        backoff = 0.2
        while not self._stopping.is_set():
            try:
                self._session()
                backoff = 0.2
            except Exception as exc:  # pika raises a wide family; all mean "reconnect"
                self.disconnects += 1
                log.warning("%s: broker connection lost or refused: %s: %s", self.name,
                            exc.__class__.__name__, exc)
            finally:
                self.connected.clear()
                self.channel = None
                conn, self._conn = self._conn, None
                if conn is not None and conn.is_open:
                    try:
                        conn.close()
                    except Exception:
                        pass
            if not self._stopping.is_set():
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 2.0)

    def _session(self) -> None:
        self._conn = pika.BlockingConnection(parameters(self.url, self.heartbeat_s))
        self.generation += 1
        channel = self._conn.channel()
        channel.confirm_delivery()
        topology.declare(channel, self.queue_type, self.delivery_limit)
        self.channel = channel
        self.on_connect(channel)
        self.connected.set()
        log.info("%s: connected to broker (generation %d)", self.name, self.generation)
        stop_deadline: float | None = None
        while True:
            self._conn.process_data_events(time_limit=TICK_S)
            self.on_tick(channel)
            if self._stopping.is_set():
                if stop_deadline is None:
                    self.begin_stop(channel)
                    stop_deadline = time.monotonic() + 10.0
                if self.ready_to_close() or time.monotonic() > stop_deadline:
                    self._conn.close()
                    return


class Consumer(Connection):
    """Consumes `queue` with manual acks and `prefetch`; `handler(delivery)` runs in this thread."""

    def __init__(self, name: str, url: str, queue: str, handler: Callable[[Delivery], None], *,
                 prefetch: int = 1, arguments: Callable[[], dict[str, Any]] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(name, url, **kwargs)
        self.queue, self.handler, self.prefetch = queue, handler, prefetch
        self.arguments = arguments  # consumer arguments, asked anew on every (re)connect
        self.pending = 0  # deliveries handed to the handler and not yet acked or rejected
        self._tag: str | None = None

    def on_connect(self, channel: Any) -> None:
        self.pending = 0
        channel.basic_qos(prefetch_count=self.prefetch)
        self._tag = channel.basic_consume(self.queue, self._on_message,
                                          arguments=self.arguments() if self.arguments else None)

    def begin_stop(self, channel: Any) -> None:
        if self._tag is not None:
            channel.basic_cancel(self._tag)

    def ready_to_close(self) -> bool:
        return self.pending == 0

    def _on_message(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        headers = properties.headers or {}
        self.pending += 1
        self.handler(Delivery(method.delivery_tag, self.generation, bool(method.redelivered), body,
                              int(headers.get("x-delivery-count", 0) or 0), headers.get("x-stream-offset")))

    # settle from the connection thread (use call_soon from others) ----------
    def _current(self, delivery: Delivery) -> bool:
        return self.channel is not None and delivery.generation == self.generation and self.channel.is_open

    def ack(self, delivery: Delivery, then_publish: Event | None = None) -> bool:
        """Publish `then_publish` (confirmed) and ack; False when the delivery's connection is gone
        (the broker will redeliver it)."""
        if not self._current(delivery):
            return False
        if then_publish is not None:
            try:
                publish(self.channel, then_publish)
            except Exception:
                # not confirmed: give the delivery back so it is processed again (at least once)
                try:
                    self.reject(delivery, requeue=True)
                except Exception:  # the channel is gone: the broker requeues it anyway
                    pass
                raise
        self.channel.basic_ack(delivery.tag)
        self.pending -= 1
        return True

    def reject(self, delivery: Delivery, requeue: bool) -> bool:
        """Nack; requeue=False dead-letters the message."""
        if not self._current(delivery):
            return False
        self.channel.basic_nack(delivery.tag, requeue=requeue)
        self.pending -= 1
        return True
