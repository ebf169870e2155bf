"""The async shop's broker topology, declared identically (and idempotently) by every participant.

    producers --(routing key = eventType)--> exchange "cafe.events" (topic, durable)
        CoffeeOrdered -> queue "barista.orders"  (shared by all barista replicas)
        CoffeeBrewed  -> queue "waiter.brewed"
        CoffeeServed  -> (no queue yet: a new consumer binds its own queue at runtime)
    rejected or over-delivered messages --> exchange "cafe.dlx" (fanout) -> queue "cafe.dead-letters"
    every event (optional, `declare_event_log`) --> stream "cafe.event-log": the shop's history,
        kept for late-comers that replay it from the first offset

Work queues are quorum queues by default (durable, `x-delivery-limit` dead-letters poison
messages after N deliveries); `classic` durable queues are the alternative. `Queues` says how they
are declared, with an optional length limit (`x-max-length`, `x-overflow`).

The declarations are data (`declarations`), declared by two small drivers: `declare` on a pika
channel (the harness) and `declare_async` on an aiormq channel (the services, cafe/amqp.py).
"""
from __future__ import annotations

from dataclasses import dataclass
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


OVERFLOWS = ("drop-head", "reject-publish")   # what a full work queue does (RabbitMQ's x-overflow)


@dataclass(frozen=True)
class Queues:
    """How the work queues are declared: `type` ("quorum" or "classic"), `delivery_limit`
    (quorum: deliveries before a message is dead-lettered), `max_length` (messages; None for no
    limit) and `overflow` when full: "drop-head" dead-letters the oldest message, "reject-publish"
    nacks the publish (the publisher must retry); `members`: a quorum queue's Raft members, one per
    node of a cluster (None: RabbitMQ's default, 3 at most). ValueError naming a bad field."""

    type: str = "quorum"
    delivery_limit: int = 5
    max_length: int | None = None
    overflow: str = "drop-head"
    members: int | None = None

    def __post_init__(self) -> None:
        if self.type not in ("quorum", "classic"):
            raise ValueError(f"queue_type: {self.type!r} is not one of ('quorum', 'classic')")
        if self.overflow not in OVERFLOWS:
            raise ValueError(f"overflow: {self.overflow!r} is not one of {OVERFLOWS}")
        if self.max_length is not None and self.max_length < 1:
            raise ValueError(f"max_length: must be >= 1, got {self.max_length}")
        if self.members is not None and self.members < 1:
            raise ValueError(f"quorum_members: must be >= 1, got {self.members}")

    def arguments(self, *, limited: bool = True) -> dict[str, Any]:
        """The queue arguments; `limited=False` leaves the length limit out (a newcomer's own queue)."""
        args: dict[str, Any] = {"x-dead-letter-exchange": DLX}
        if self.type == "quorum":
            args.update({"x-queue-type": "quorum", "x-delivery-limit": self.delivery_limit})
            if self.members is not None:
                args["x-quorum-initial-group-size"] = self.members
        if limited and self.max_length is not None:
            args.update({"x-max-length": self.max_length, "x-overflow": self.overflow})
        return args


DEFAULT_QUEUES = Queues()


def _dead_letter_arguments(queues: Queues) -> dict[str, Any] | None:
    """The dead-letter queue's: a quorum queue (with the work queues' members) when they are quorum
    queues, else a classic one."""
    if queues.type != "quorum":
        return None
    return {"x-queue-type": "quorum", **({"x-quorum-initial-group-size": queues.members} if queues.members else {})}
Declaration = tuple[str, dict[str, Any]]   # ("exchange" | "queue" | "bind", keyword arguments)


def declarations(queues: Queues = DEFAULT_QUEUES) -> list[Declaration]:
    """Exchanges, work queues, bindings and the dead-letter queue, in the order they are declared."""
    steps: list[Declaration] = [
        ("exchange", {"exchange": EXCHANGE, "exchange_type": "topic"}),
        ("exchange", {"exchange": DLX, "exchange_type": "fanout"}),
        # the same type as the work queues: a classic dead-letter queue lives on one node, and on a
        # cluster its node going down would fail every participant's declaration (seen: NOT_FOUND,
        # "home node ... of durable queue 'cafe.dead-letters' is down")
        ("queue", {"queue": DEAD_LETTERS, "arguments": _dead_letter_arguments(queues)}),
        ("bind", {"queue": DEAD_LETTERS, "exchange": DLX, "routing_key": ""}),
    ]
    for queue, routing_key in BINDINGS.items():
        steps.append(("queue", {"queue": queue, "arguments": queues.arguments()}))
        steps.append(("bind", {"queue": queue, "exchange": EXCHANGE, "routing_key": routing_key}))
    return steps


def declare(channel: Any, queues: Queues = DEFAULT_QUEUES) -> None:
    """Declare the topology (`declarations`) on a pika channel."""
    for kind, args in declarations(queues):
        if kind == "exchange":
            channel.exchange_declare(args["exchange"], exchange_type=args["exchange_type"], durable=True)
        elif kind == "queue":
            channel.queue_declare(args["queue"], durable=True, arguments=args["arguments"])
        else:
            channel.queue_bind(args["queue"], args["exchange"], routing_key=args["routing_key"] or None)


async def declare_async(channel: Any, queues: Queues = DEFAULT_QUEUES) -> None:
    """Declare the topology (`declarations`) on an aiormq channel."""
    for kind, args in declarations(queues):
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
