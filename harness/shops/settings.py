"""What every shop is configured with, as data: `ShopSettings` and the named network `EDGES`.

Pure (no infrastructure): the experiment schema builds `ShopSettings` and validates edge names
with it. An adapter (harness/shops/*_shop.py) turns the settings into its services' configuration.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from cafe.brewing import BrewTime
from cafe.topology import Queues

# Network edges, named the same in both shops where they mean the same thing (docs/architecture.md)
EDGES = ("customer->orders", "orders->barista", "barista-link", "cashier->barista", "barista->waiter",
         "orders->broker", "barista->broker", "waiter->broker")


@dataclass(frozen=True)
class ShopSettings:
    """The configuration both shops share, so a comparison is fair: same capacity, same brew times."""

    baristas: int = 1                 # barista replicas (processes)
    brewers: int = 1                  # brews in parallel per replica
    brew: BrewTime = field(default_factory=BrewTime)
    capacity: int = 8                 # sync cashier: orders handled at once
    barista_timeout_s: float = 10.0   # sync cashier -> barista call timeout
    prefetch: int = 1                 # async barista: unacked orders held per replica
    idempotency: bool = True
    publish_mode: str = "outbox"      # async order service: outbox | direct
    queue_type: str = "quorum"
    delivery_limit: int = 5
    max_length: int | None = None     # async work queues: messages held at most (None: no limit) ...
    overflow: str = "drop-head"       # ... and what a full one does: drop-head | reject-publish
    heartbeat_s: int = 10             # AMQP heartbeat of the async services
    quorum_members: int | None = None  # async on a cluster: a quorum queue's members, one per node (set by the shop)
    menu: str | None = None
    slow_replica: int | None = None   # this barista replica (1-based) brews `slow_factor` times slower
    slow_factor: float = 1.0
    patience_s: float | None = None   # the customers' patience (the load's client timeout): a shop may keep its calls within it

    @property
    def queues(self) -> Queues:
        """How the async shop's work queues are declared (cafe.topology.Queues)."""
        return Queues(self.queue_type, self.delivery_limit, self.max_length, self.overflow, self.quorum_members)

    def brew_of(self, replica: int) -> BrewTime:
        """The brew-time model of barista replica `replica` (the slow one's times are scaled)."""
        if replica != self.slow_replica or self.slow_factor == 1.0:
            return self.brew
        b = self.brew
        return replace(b, mean_ms=b.mean_ms * self.slow_factor, min_ms=b.min_ms * self.slow_factor,
                       max_ms=None if b.max_ms is None else b.max_ms * self.slow_factor)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
