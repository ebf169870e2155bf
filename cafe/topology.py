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

The declarations are data (`declarations`), declared by two small drivers: `declare` on a pika
channel (the harness) and `declare_async` on an aiormq channel (the services, cafe/amqp.py).
"""
from __future__ import annotations

from typing import Any

EXCHANGE = "cafe.events"
DLX = "cafe.dlx"
DEAD_LETTERS = "cafe.dead-letters"
ORDERS_QUEUE = "barista.orders"
BREWED_QUEUE = "waiter.brewed"
BINDINGS = {ORDERS_QUEUE: "CoffeeOrdered", BREWED_QUEUE: "CoffeeBrewed"}
# events that must reach a queue: published `mandatory`, so one that matches no binding comes back
# (basic.return) instead of being confirmed and dropped; CoffeeServed has no consumer of its own yet
ROUTED = frozenset(BINDINGS.values())
EVENT_LOG = "cafe.event-log"


def queue_arguments(queue_type: str, delivery_limit: int) -> dict[str, Any]:
    args: dict[str, Any] = {"x-dead-letter-exchange": DLX}
    if queue_type == "quorum":
        args.update({"x-queue-type": "quorum", "x-delivery-limit": delivery_limit})
    return args


Declaration = tuple[str, dict[str, Any]]   # ("exchange" | "queue" | "bind", keyword arguments)


def declarations(queue_type: str = "quorum", delivery_limit: int = 5) -> list[Declaration]:
    """Exchanges, work queues, bindings and the dead-letter queue, in the order they are declared."""
    steps: list[Declaration] = [
        ("exchange", {"exchange": EXCHANGE, "exchange_type": "topic"}),
        ("exchange", {"exchange": DLX, "exchange_type": "fanout"}),
        ("queue", {"queue": DEAD_LETTERS, "arguments": None}),
        ("bind", {"queue": DEAD_LETTERS, "exchange": DLX, "routing_key": ""}),
    ]
    for queue, routing_key in BINDINGS.items():
        steps.append(("queue", {"queue": queue, "arguments": queue_arguments(queue_type, delivery_limit)}))
        steps.append(("bind", {"queue": queue, "exchange": EXCHANGE, "routing_key": routing_key}))
    return steps


def declare(channel: Any, queue_type: str = "quorum", delivery_limit: int = 5) -> None:
    """Declare the topology (`declarations`) on a pika channel."""
    for kind, args in declarations(queue_type, delivery_limit):
        if kind == "exchange":
            channel.exchange_declare(args["exchange"], exchange_type=args["exchange_type"], durable=True)
        elif kind == "queue":
            channel.queue_declare(args["queue"], durable=True, arguments=args["arguments"])
        else:
            channel.queue_bind(args["queue"], args["exchange"], routing_key=args["routing_key"] or None)


async def declare_async(channel: Any, queue_type: str = "quorum", delivery_limit: int = 5) -> None:
    """Declare the topology (`declarations`) on an aiormq channel."""
    for kind, args in declarations(queue_type, delivery_limit):
        if kind == "exchange":
            await channel.exchange_declare(exchange=args["exchange"], exchange_type=args["exchange_type"],
                                           durable=True)
        elif kind == "queue":
            await channel.queue_declare(args["queue"], durable=True, arguments=args["arguments"])
        else:
            await channel.queue_bind(args["queue"], args["exchange"], routing_key=args["routing_key"])


def declare_event_log(channel: Any) -> None:
    """Declare the event log: a stream queue bound to every event. Readers consume it with
    prefetch, manual acks and an `x-stream-offset` ("first", or the offset after the last one
    they processed). Declared before the first order, it holds the whole history."""
    channel.exchange_declare(EXCHANGE, exchange_type="topic", durable=True)
    channel.queue_declare(EVENT_LOG, durable=True, arguments={"x-queue-type": "stream"})
    channel.queue_bind(EVENT_LOG, EXCHANGE, routing_key="#")
