"""The async shop's exact queue reading (`AsyncShop._ready`) over a kept pika connection: one the
broker dropped since its last use (a node restarted or cut off by a fault) is replaced once, so a
fault's `hit` and the backlog samples read on (broker-partition's bridge recorded no `hit` in every
run: its probe reused the connection the heal before it had cut); a new connection that fails, and
any other error, raise. No broker: pika's connection is replaced by a stand-in."""
from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import pika
import pytest

from harness.shops.async_shop import AsyncShop


class Conn:
    def __init__(self, count: int | None = None, error: Exception | None = None) -> None:
        self.is_open, self.count, self.error = True, count, error

    def channel(self) -> Any:
        return SimpleNamespace(queue_declare=self.declare)

    def declare(self, queue: str, passive: bool) -> Any:
        if self.error is not None:
            raise self.error
        return SimpleNamespace(method=SimpleNamespace(message_count=self.count))


def shop(kept: Conn | None) -> Any:
    amqp = threading.local()
    if kept is not None:
        amqp.conn, amqp.channel = kept, kept.channel()
    return SimpleNamespace(_amqp=amqp, _connections=[], broker=SimpleNamespace(amqp_url="amqp://u:p@127.0.0.1:1/v"))


def test_a_kept_connection_the_broker_dropped_is_replaced_once(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[Conn] = []
    monkeypatch.setattr(pika, "BlockingConnection", lambda params: opened.append(Conn(7)) or opened[-1])
    s = shop(Conn(error=pika.exceptions.StreamLostError("Connection reset by peer")))
    assert AsyncShop._ready(s, "barista.orders") == 7
    assert len(opened) == 1 and s._amqp.conn is opened[0] and s._connections == opened
    assert AsyncShop._ready(s, "barista.orders") == 7 and len(opened) == 1   # kept again


def test_a_new_connection_that_fails_and_other_errors_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(params: Any) -> Conn:
        raise pika.exceptions.AMQPConnectionError("refused")

    monkeypatch.setattr(pika, "BlockingConnection", refused)
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        AsyncShop._ready(shop(Conn(error=pika.exceptions.StreamLostError("reset"))), "q")   # dropped, then refused
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        AsyncShop._ready(shop(None), "q")
    missing = shop(Conn(error=pika.exceptions.ChannelClosedByBroker(404, "NOT_FOUND")))
    with pytest.raises(pika.exceptions.ChannelClosedByBroker):
        AsyncShop._ready(missing, "q")
    assert missing._amqp.conn is None      # the next reading opens a new one
