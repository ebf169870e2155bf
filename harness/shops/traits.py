"""What each shop is, as data: the traits the harness asks about instead of branching on a shop's name.

Pure (imports nothing of the harness): the checkers and the report read these through the registry
(`harness.shops.TRAITS`) without loading an adapter or any infrastructure; the runtime asks the
adapter (`Shop.traits`, the same object). A shop is registered by a `ShopEntry` (its name, its
adapter as "module:Class", its traits) named by an entry point of the group `chaoscafe.shops`:
SYNC_SHOP, ASYNC_SHOP and SYNC_RESILIENT_SHOP here, a plugin's in its own package (docs/shops.md).

    needs_broker          the run starts RabbitMQ (a vhost on the set's node, or a private node)
    has_event_log         a stream keeps every event: a newcomer can replay the shop's history
    accepts_subscribers   a new consumer can join the running shop (the `join` action)
    hooks                 the fault hooks its services serve (cafe/hooks.py), and how a window heals
    catch_up              where a late-comer catches up from, per loyalty source
    serves_every_brew     a coffee brewed is served even when its customer stopped waiting
    queueing              how it differs from one shared M/M/c line (checkers/queueing.py notes)
    flow, colour, backlog_counts   the report: swimlanes, the shop's colour, the backlog caption
    reads                 where `chaoscafe shop up` says to read what happened
    explore_faults        the faults exploration draws for this shop, most disruptive-but-simple first
    counters              the shop's own counters (Shop.counters: what its policies did), named in
                          expectations as `shop.<name>` under `[expect.<this shop>]`
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

#: how a hook's window is healed: "disarm" (POST an empty body) or "restart" (kill and start the
#: replicas: what the service holds goes back where it came from)
DISARM, RESTART = "disarm", "restart"

#: queueing disciplines: one shared line that each replica takes from, up to `prefetch` at a time;
#: or a front that hands each order to one barista at once (it queues at that barista's hands)
SHARED_QUEUE, PER_REPLICA = "shared-queue", "per-replica"


@dataclass(frozen=True)
class CatchUp:
    """Where a late-comer catching up from one source reads: `path` on the replica `replica`
    (its page size sent when `paged`), or the broker's event log when `replica` is None."""

    replica: str | None = None
    path: str = ""
    paged: bool = False
    described: str = ""          # in words, for the reason another source is not applicable


@dataclass(frozen=True)
class Queueing:
    """How the shop differs from the M/M/c model's one shared line (notes of checkers/queueing.py)."""

    discipline: str              # SHARED_QUEUE or PER_REPLICA
    handover: str                # what costs time between two brews of a barista
    note: str                    # the shop's own effect on every stay and wait


@dataclass(frozen=True)
class Flow:
    """The swimlanes of the report's event flow (report/flow.py)."""

    lanes: tuple[str, ...]       # "Customer" first
    front: str                   # the lane that takes orders
    served: str                  # the lane that serves coffees
    taken_before_brewing: bool   # the front's "accepted" means it took the order (shown as its own event)


@dataclass(frozen=True)
class ShopTraits:
    """What one shop is; see the module docstring for each field."""

    needs_broker: bool
    has_event_log: bool
    accepts_subscribers: bool
    hooks: Mapping[str, str]
    catch_up: Mapping[str, CatchUp]
    serves_every_brew: bool
    queueing: Queueing
    flow: Flow
    colour: str
    backlog_counts: str
    reads: tuple[tuple[str, str], ...]                                   # (path, replica)
    explore_faults: tuple[tuple[str, str, tuple[dict[str, Any], ...]], ...] = field(default=())  # (kind, target, params)
    counters: Mapping[str, str] = field(default_factory=dict)   # name -> what it counts

    def serves(self, hook: str) -> bool:
        """Whether the services arm `hook` (cafe/hooks.py)."""
        return hook in self.hooks


SYNC = ShopTraits(
    needs_broker=False,
    has_event_log=False,
    accepts_subscribers=False,
    hooks={"silent": DISARM},
    catch_up={"pages": CatchUp("cashier-1", "/orders", paged=True, described="page through the cashier's GET /orders")},
    serves_every_brew=False,     # served = the answer: a customer who gave up never gets the coffee
    queueing=Queueing(PER_REPLICA, handover="HTTP call and brew record",
                      note="the cashier sends each call to the least busy barista at once: calls queue at a "
                           "barista's hands rather than in one shared line, and the cashier's own time "
                           "(HTTP through Toxiproxy) adds to every wait"),
    flow=Flow(("Customer", "Cashier", "Barista"), front="Cashier", served="Cashier", taken_before_brewing=False),
    colour="#d95f02",
    backlog_counts="orders in flight or waiting at the cashier",
    reads=(("/brews", "barista-1"), ("/orders", "cashier-1")),
    explore_faults=(
        ("latency", "customer->orders", ({"latency": 1500},)),
        ("kill", "barista", ({},)),
        ("pause", "barista", ({},)),
        ("reset_peer", "orders->barista", ({"timeout": 0}, {"timeout": 200})),
        ("down", "orders->barista", ({},)),
    ),
)

ASYNC = ShopTraits(
    needs_broker=True,
    has_event_log=True,
    accepts_subscribers=True,
    # silent: the held deliveries return to the queue only when the consumer's connection closes
    hooks={"crash_before_ack": DISARM, "duplicate_publish": DISARM, "silent": RESTART},
    catch_up={"replay": CatchUp(None, described="replay the event log"),
              "feed": CatchUp("waiter-1", "/feed", described="read the waiter's feed"),
              "pages": CatchUp("waiter-1", "/served", paged=True, described="page through the waiter's GET /served")},
    serves_every_brew=True,      # the waiter serves whatever was brewed
    queueing=Queueing(SHARED_QUEUE, handover="ack, publisher confirm, next delivery",
                      note="taking the order (HTTP, outbox relay, broker, waiter) adds a few ms to every stay "
                           "and wait that the model does not have"),
    flow=Flow(("Customer", "Order service", "Barista", "Waiter"), front="Order service", served="Waiter",
              taken_before_brewing=True),
    colour="#1b9e77",
    backlog_counts="messages queued or being processed",
    reads=(("/brews", "barista-1"), ("/served", "waiter-1"), ("/orders", "orders-1")),
    explore_faults=(
        ("crash-before-ack", "barista", ({"rate": 0.3, "seed": 1}, {"rate": 1.0, "seed": 1})),
        ("duplicate-publish", "orders", ({"rate": 0.3, "seed": 1}, {"rate": 1.0, "seed": 1})),
        ("latency", "customer->orders", ({"latency": 1500},)),
        ("kill", "barista", ({},)),
        ("pause", "barista", ({},)),
        ("reset_peer", "barista->broker", ({"timeout": 0}, {"timeout": 200})),
        ("kill", "waiter", ({},)),
    ),
)


SYNC_RESILIENT = replace(
    SYNC,
    queueing=Queueing(PER_REPLICA, handover="HTTP call and brew record",
                      note="as the sync shop's, and the cashier refuses (429) a customer whose expected wait is "
                           "longer than the deadline: a shed order never joins the line, so the waits of the "
                           "others stay short"),
    colour="#7570b3",
    backlog_counts="orders in flight or waiting at the cashier (shed customers never join)",
    counters={
        "attempts": "barista calls made (a retry is another attempt)",
        "retries": "attempts after an order's first (same order id, after a full-jitter backoff)",
        "circuit_opened": "times a barista replica's circuit opened",
        "circuit_fast_fails": "attempts refused at once because every circuit was open",
        "bulkhead_waits": "attempts that waited for room at a replica's bulkhead",
        "trials": "trial calls to a half-open circuit (one at a time per replica)",
        "timeouts_not_reported": "timeouts of attempts cut short by their caller's deadline, not counted "
                                 "against the barista's circuit",
        "deadline_exceeded": "orders whose deadline passed before a barista answered",
        "shed": "customers refused at once (429) because the line was longer than the deadline",
        "abandoned_brews": "brews the baristas gave up because every caller had passed its deadline",
    },
)


@dataclass(frozen=True)
class ShopEntry:
    """What an entry point of the group `chaoscafe.shops` names: the shop's `name` (the entry
    point's name too: what `--system` and `[expect.<name>]` say), its `adapter` as "module:Class"
    (a `harness.shops.base.Shop`, imported only when a run needs it) and its `traits`."""

    name: str
    adapter: str
    traits: ShopTraits


SYNC_SHOP = ShopEntry("sync", "harness.shops.sync_shop:SyncShop", SYNC)
ASYNC_SHOP = ShopEntry("async", "harness.shops.async_shop:AsyncShop", ASYNC)
SYNC_RESILIENT_SHOP = ShopEntry("sync-resilient", "harness.shops.resilient_shop:ResilientSyncShop", SYNC_RESILIENT)
