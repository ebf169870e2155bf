"""The async shop's broker topology, declared identically (and idempotently) by every participant.

    producers --(routing key = eventType)--> exchange "cafe.events" (topic, durable)
        CoffeeOrdered -> queue "barista.orders"  (shared by all barista replicas)
        CoffeeBrewed  -> queue "waiter.brewed"
        CoffeeServed  -> (no queue yet: a new consumer binds its own queue at runtime)
    rejected or over-delivered messages --> exchange "cafe.dlx" (fanout) -> queue "cafe.dead-letters"
    every event (optional, `declare_event_log`) --> stream "cafe.event-log": the shop's history,
        kept for late-comers that replay it from the first offset

Work queues are quorum queues by default (durable, `x-delivery-limit` dead-letters poison
messages after N deliveries); `classic` durable queues are the alternative.
"""
from __future__ import annotations

from typing import Any

EXCHANGE = "cafe.events"
DLX = "cafe.dlx"
DEAD_LETTERS = "cafe.dead-letters"
ORDERS_QUEUE = "barista.orders"
BREWED_QUEUE = "waiter.brewed"
BINDINGS = {ORDERS_QUEUE: "CoffeeOrdered", BREWED_QUEUE: "CoffeeBrewed"}
EVENT_LOG = "cafe.event-log"


def queue_arguments(queue_type: str, delivery_limit: int) -> dict[str, Any]:
    args: dict[str, Any] = {"x-dead-letter-exchange": DLX}
    if queue_type == "quorum":
        args.update({"x-queue-type": "quorum", "x-delivery-limit": delivery_limit})
    return args


def declare(channel: Any, queue_type: str = "quorum", delivery_limit: int = 5) -> None:
    """Declare exchanges, work queues, bindings and the dead-letter queue on a pika channel."""
    channel.exchange_declare(EXCHANGE, exchange_type="topic", durable=True)
    channel.exchange_declare(DLX, exchange_type="fanout", durable=True)
    channel.queue_declare(DEAD_LETTERS, durable=True)
    channel.queue_bind(DEAD_LETTERS, DLX)
    for queue, routing_key in BINDINGS.items():
        channel.queue_declare(queue, durable=True, arguments=queue_arguments(queue_type, delivery_limit))
        channel.queue_bind(queue, EXCHANGE, routing_key=routing_key)


def declare_event_log(channel: Any) -> None:
    """Declare the event log: a stream queue bound to every event. Readers consume it with
    prefetch, manual acks and an `x-stream-offset` ("first", or the offset after the last one
    they processed). Declared before the first order, it holds the whole history."""
    channel.exchange_declare(EXCHANGE, exchange_type="topic", durable=True)
    channel.queue_declare(EVENT_LOG, durable=True, arguments={"x-queue-type": "stream"})
    channel.queue_bind(EVENT_LOG, EXCHANGE, routing_key="#")
