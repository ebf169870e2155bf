"""`join`: not a fault but an action on the same schedule: a new consumer joins the running shop.

target "bell": the brewed bell (systems/newcomers/bell.py) starts at the window's start and stays
for the rest of the run; the window's end changes nothing. Nothing else in the shop is touched.
The sync shop has no events to subscribe to: a new behaviour there means changing the barista.
"""
from __future__ import annotations

from harness.errors import NotApplicable
from harness.nemesis.base import FaultWindow, Kind, register
from harness.newcomers import services as newcomers
from harness.shops.base import Shop

PROGRAMS = {"bell": "bell.py"}


@register
class Join(Kind):
    kind = "join"

    def __init__(self, window: FaultWindow) -> None:
        self.window = window

    def setup(self, shop: Shop) -> None:
        if not shop.traits.accepts_subscribers:
            raise NotApplicable(f"the {shop.kind} shop has no events to subscribe to: adding a behaviour means "
                                "changing and restarting the barista")

    def start(self, shop: Shop) -> None:
        if self.window.target not in shop.supervisor.services():
            newcomers.start(shop, self.window.target, PROGRAMS[self.window.target])

    def stop(self, shop: Shop) -> None:
        """Nothing to heal: the newcomer stays."""

    def teardown(self, shop: Shop) -> None:
        pass
