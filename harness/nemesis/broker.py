"""Broker faults: the RabbitMQ node crashes (SIGKILL, restarted with its data at the end) or stops
gracefully (started again at the end). Not applicable to the sync shop, which has no broker. They
stop the node itself, so a run with one gets a private node (`private_broker`), never the vhost
of a node other runs share."""
from __future__ import annotations

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
