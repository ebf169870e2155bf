"""Broker faults: the RabbitMQ node crashes (SIGKILL, restarted with its data at the end) or stops
gracefully (started again at the end). Not applicable to the sync shop, which has no broker. They
stop the node itself, so a run with one gets a private node (`private_broker`), never the vhost
of a node other runs share."""
from __future__ import annotations

from typing import Any, ClassVar

from harness.nemesis.base import FaultWindow, NotApplicable, no_params, register
from harness.shops.base import Shop


class BrokerFault:
    kind: ClassVar[str] = ""
    description: ClassVar[str] = ""
    targets: ClassVar[tuple[str, ...]] = ("broker",)
    private_broker: ClassVar[bool] = True   # read by Experiment.needs_private_broker

    def __init__(self, window: FaultWindow) -> None:
        self.window = window
        self.down = False

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        no_params(cls.kind, params)

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
    description = "SIGKILL the RabbitMQ node; restart it with the same data when the window ends"

    def start(self, shop: Shop) -> None:
        assert shop.infra.broker is not None
        shop.infra.broker.crash()
        self.down = True


@register
class BrokerStop(BrokerFault):
    kind = "broker-stop"
    description = "stop the RabbitMQ node gracefully; start it again when the window ends"

    def start(self, shop: Shop) -> None:
        assert shop.infra.broker is not None
        shop.infra.broker.stop()
        self.down = True
