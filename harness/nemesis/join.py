"""`join`: not a fault but an action on the same schedule: a new consumer joins the running shop.

target "bell": the brewed bell (systems/newcomers/bell.py) starts at the window's start and stays
for the rest of the run; the window's end changes nothing. Nothing else in the shop is touched.
The sync shop has no events to subscribe to: a new behaviour there means changing the barista.
"""
from __future__ import annotations

from typing import Any, ClassVar

from harness.nemesis.base import FaultWindow, NotApplicable, no_params, register
from harness.newcomers import services as newcomers
from harness.shops.base import Shop

PROGRAMS = {"bell": "bell.py"}


@register
class Join:
    kind: ClassVar[str] = "join"
    description: ClassVar[str] = "a new consumer (the brewed bell) joins the running async shop and stays"
    targets: ClassVar[tuple[str, ...]] = tuple(PROGRAMS)

    def __init__(self, window: FaultWindow) -> None:
        self.window = window

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        no_params(cls.kind, params)

    def setup(self, shop: Shop) -> None:
        if shop.kind != "async":
            raise NotApplicable("the sync shop has no events to subscribe to: adding a behaviour means "
                                "changing and restarting the barista")

    def start(self, shop: Shop) -> None:
        if self.window.target not in shop.supervisor.services():
            newcomers.start(shop, self.window.target, PROGRAMS[self.window.target])

    def stop(self, shop: Shop) -> None:
        """Nothing to heal: the newcomer stays."""

    def teardown(self, shop: Shop) -> None:
        pass
