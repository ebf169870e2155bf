"""Broker faults: the RabbitMQ node crashes (SIGKILL, restarted with its data at the end) or stops
gracefully (started again at the end); they stop the node itself, so a run with one gets a private
node (`private_broker`), never the vhost of a node other runs share. A resource alarm (`broker-alarm`)
leaves the node running and is lifted at its end, and topology accidents need only a vhost of
their own: `unbind` deletes the binding of a work queue, `queue-delete` the queue itself. None
applies to the sync shop, which has no broker."""
from __future__ import annotations

import contextlib
import time
from typing import Any

from cafe import topology
from harness.errors import NotApplicable
from harness.nemesis.base import FaultWindow, Kind, register
from harness.shops.base import Shop


class BrokerFault(Kind):
    """Base of faults on the broker node (their FaultKind says `private_broker`)."""

    def __init__(self, window: FaultWindow) -> None:
        self.window = window
        self.down = False

    def setup(self, shop: Shop) -> None:
        if shop.infra.broker is None:
            raise NotApplicable(f"the {shop.kind} shop has no broker")
        if shop.infra.broker.shared:
            raise RuntimeError(f"{self.kind} stops the broker, but this run has a vhost on a shared node: "
                               "start it with a private node (Experiment.needs_private_broker)")

    def stop(self, shop: Shop) -> None:
        if self.down and shop.infra.broker is not None:
            shop.infra.broker.restart()
            self.down = False

    def teardown(self, shop: Shop) -> None:
        self.stop(shop)


@register
class BrokerCrash(BrokerFault):
    kind = "broker-crash"

    def start(self, shop: Shop) -> None:
        assert shop.infra.broker is not None
        shop.infra.broker.crash()
        self.down = True


@register
class BrokerStop(BrokerFault):
    kind = "broker-stop"

    def start(self, shop: Shop) -> None:
        assert shop.infra.broker is not None
        shop.infra.broker.stop()
        self.down = True



@register
class BrokerAlarm(Kind):
    """Raise the node's `resource` alarm (memory or disk) at the window's start and clear it at its
    end, each time waiting until the node says so (a disk alarm waits for the disk monitor's next
    check). The node keeps running: its vhost on a shared node suffices, and the end restores the
    limit before the next run. `report()`: the resource, how long raising and clearing took (s),
    and the run's connections the broker held blocked just before the end (the alarm's hit)."""

    kind = "broker-alarm"
    settle_s = 20.0   # how long to wait for the node to report the alarm raised or cleared

    def __init__(self, window: FaultWindow) -> None:
        self.window = window
        self.resource = str(window.params.get("resource", "memory"))
        self.raised = False
        self.raised_after_s: float | None = None
        self.cleared_after_s: float | None = None
        self.blocked_connections: int | None = None

    def setup(self, shop: Shop) -> None:
        if shop.infra.broker is None:
            raise NotApplicable(f"the {shop.kind} shop has no broker")

    def start(self, shop: Shop) -> None:
        broker = shop.infra.broker
        assert broker is not None
        began = time.monotonic()
        self.raised = True   # from here on, the end must restore the limit (also when raising fails half-way)
        broker.set_alarm(self.resource, wait_s=self.settle_s)   # returns once the node reports it raised
        self.raised_after_s = round(time.monotonic() - began, 3)

    def stop(self, shop: Shop) -> None:
        broker = shop.infra.broker
        if not self.raised or broker is None:
            return
        with contextlib.suppress(Exception):   # what the alarm holds (None when the node cannot say)
            self.blocked_connections = broker.blocked_connections()
        began = time.monotonic()
        broker.clear_alarm(self.resource, wait_s=self.settle_s)   # returns once the node reports it cleared
        self.raised = False
        self.cleared_after_s = round(time.monotonic() - began, 3)

    def teardown(self, shop: Shop) -> None:
        self.stop(shop)

    def report(self) -> dict[str, Any]:
        return {"resource": self.resource, "raised_after_s": self.raised_after_s,
                "cleared_after_s": self.cleared_after_s, "blocked_connections": self.blocked_connections}


class TopologyFault(Kind):
    """Base of the topology accidents on one work queue (`window.target`): `start` breaks it and
    sets `broken`; the window's end (or the teardown) calls `repair` once."""

    def __init__(self, window: FaultWindow) -> None:
        self.window = window
        self.queue = window.target
        self.broken = False

    def setup(self, shop: Shop) -> None:
        if shop.infra.broker is None:
            raise NotApplicable(f"the {shop.kind} shop has no broker")

    def stop(self, shop: Shop) -> None:
        if self.broken and shop.infra.broker is not None:
            self.repair(shop)
            self.broken = False

    def repair(self, shop: Shop) -> None: ...

    def teardown(self, shop: Shop) -> None:
        self.stop(shop)


@register
class Unbind(TopologyFault):
    """Delete the binding that routes the target queue's event type to it from the events
    exchange (management API); the window's end binds it again. `report()` says whether the
    binding was there at the end (the shop declared it again itself) before the repair."""

    kind = "unbind"

    def __init__(self, window: FaultWindow) -> None:
        super().__init__(window)
        self.routing_key = topology.BINDINGS[window.target]
        self.rebound_by_shop: bool | None = None

    def start(self, shop: Shop) -> None:
        assert shop.infra.broker is not None
        shop.infra.broker.unbind(topology.EXCHANGE, self.queue, self.routing_key)
        self.broken = True

    def repair(self, shop: Shop) -> None:
        assert shop.infra.broker is not None
        self.rebound_by_shop = self.routing_key in shop.infra.broker.bindings(topology.EXCHANGE, self.queue)
        shop.infra.broker.bind(topology.EXCHANGE, self.queue, self.routing_key)

    def report(self) -> dict[str, Any]:
        return {"queue": self.queue, "routing_key": self.routing_key, "rebound_by_shop": self.rebound_by_shop}


@register
class QueueDelete(TopologyFault):
    """Delete the target work queue with its messages (management API): its consumers get the
    broker's basic.cancel. The window's end declares the topology again (the shop's own
    declarations, idempotent). `report()` says whether the queue existed again at the end (the
    shop declared it itself) and how many consumers it had then."""

    kind = "queue-delete"

    def __init__(self, window: FaultWindow) -> None:
        super().__init__(window)
        self.redeclared_by_shop: bool | None = None
        self.consumers_at_end: int | None = None

    def start(self, shop: Shop) -> None:
        assert shop.infra.broker is not None
        shop.infra.broker.delete_queue(self.queue)
        self.broken = True

    def repair(self, shop: Shop) -> None:
        assert shop.infra.broker is not None
        try:
            self.consumers_at_end = shop.infra.broker.queue_stats(self.queue)["consumers"]
            self.redeclared_by_shop = True
        except Exception:   # BrokerError: the queue does not exist (404)
            self.redeclared_by_shop = False
        shop.declare_topology()   # type: ignore[attr-defined]   # only a shop with a broker gets here

    def report(self) -> dict[str, Any]:
        return {"queue": self.queue, "redeclared_by_shop": self.redeclared_by_shop,
                "consumers_at_end": self.consumers_at_end}
