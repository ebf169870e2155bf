"""Delivery faults: hooks inside the services (cafe/hooks.py), armed over HTTP for the window.

    crash-before-ack   async barista: SIGKILL after a first delivery's brew is recorded, before the
                       ack, for a share `rate` of orders; crashed replicas are started again (and
                       re-armed) at once, so the broker redelivers the order to a live replica
    duplicate-publish  async order service: publish a share `rate` of events twice
    silent             barista (both shops): takes work and never finishes it (async: never acks;
                       sync: never answers); healed by killing and starting the replicas (async:
                       the held deliveries go back to the queue) or disarming the hook (sync)

Which orders a rate hits is a hash of (seed, order ref or event id): the same ones in every run.
A connection reset with deliveries in flight needs no hook: `reset_peer` on `barista->broker`.
"""
from __future__ import annotations

import json
import logging
import threading
import time
import urllib.request
from typing import Any, ClassVar

from harness.errors import NotApplicable
from harness.nemesis.base import FaultWindow, Kind, register
from harness.shops.base import Shop
from harness.shops.traits import RESTART

log = logging.getLogger("harness.nemesis")
WATCH_S = 0.2


def arm(shop: Shop, replica_name: str, body: dict[str, Any]) -> None:
    """POST the hooks `body` to one replica's control endpoint (an empty body disarms)."""
    request = urllib.request.Request(f"{shop.url(replica_name)}/control/faults", data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=5) as resp:  # noqa: S310 (loopback)
        resp.read()


class HookFault(Kind):
    """Arms a hook on the target's replicas at start and disarms it at stop."""

    hook: ClassVar[str] = ""       # applies to the shops whose traits serve it (harness/shops/traits.py)
    why_not: ClassVar[str] = ""    # why not elsewhere; "{shop}" is the shop's name

    def __init__(self, window: FaultWindow) -> None:
        self.window = window
        self.service = ""

    def body(self) -> dict[str, Any]:
        p = self.window.params
        return {self.hook: {"rate": float(p.get("rate", 1.0)), "seed": int(p.get("seed", 1))}}

    def setup(self, shop: Shop) -> None:
        if not shop.traits.serves(self.hook):
            raise NotApplicable(self.why_not.format(shop=shop.kind))
        self.service = shop.service_for(self.window.target)   # raises NotApplicable

    def replicas(self, shop: Shop) -> list[Any]:
        reps = shop.supervisor.replicas(self.service)
        return [r for r in reps if self.window.replica is None or r.index == self.window.replica]

    def start(self, shop: Shop) -> None:
        for r in self.replicas(shop):
            arm(shop, r.name, self.body())

    def stop(self, shop: Shop) -> None:
        """Disarm; or, where the shop heals this hook by a restart (what the service holds goes back
        where it came from, e.g. unacked deliveries to the queue when the connection closes), kill
        and start the replicas: a broken consumer does not finish gracefully."""
        if shop.traits.hooks.get(self.hook) == RESTART:
            for r in self.replicas(shop):
                shop.supervisor.kill(self.service, r.index)
                shop.supervisor.start(self.service, r.index)
            return
        for r in self.replicas(shop):
            if r.alive():
                arm(shop, r.name, {})

    def teardown(self, shop: Shop) -> None:
        pass


@register
class CrashBeforeAck(HookFault):
    kind = "crash-before-ack"
    hook = "crash_before_ack"
    why_not = "the {shop} shop has no acks: its hidden duplicate is a customer's retry (load.retries)"

    def __init__(self, window: FaultWindow) -> None:
        super().__init__(window)
        self.crashes = 0
        self._halt = threading.Event()
        self._watcher: threading.Thread | None = None

    def start(self, shop: Shop) -> None:
        super().start(shop)
        self._halt.clear()
        self._watcher = threading.Thread(target=self._watch, args=(shop,), name=f"{self.window.name}-watch",
                                         daemon=True)
        self._watcher.start()

    def _watch(self, shop: Shop) -> None:
        """Restart and re-arm every target replica that crashed, until the window ends."""
        while not self._halt.wait(WATCH_S):
            for r in self.replicas(shop):   # states refreshed: a replica that died by itself is "exited"
                if r.state == "exited" or (r.state == "running" and not r.alive()):
                    self.crashes += 1
                    try:
                        shop.supervisor.start(self.service, r.index)
                        if not self._halt.is_set():
                            arm(shop, r.name, self.body())
                    except Exception:  # the next round tries again; stop() restarts for sure
                        log.exception("%s: restarting %s failed", self.window.name, r.name)

    def stop(self, shop: Shop) -> None:
        """Disarm first, then start whatever is down: a replica can still crash between the two
        (a brew that passed the hook just before), so look twice."""
        self._halt.set()
        if self._watcher is not None:
            self._watcher.join(timeout=30)
        for r in self.replicas(shop):
            if r.alive():
                try:
                    arm(shop, r.name, {})
                except OSError:   # it crashed meanwhile: started below
                    pass
        for _ in range(2):
            time.sleep(WATCH_S)
            down = [r for r in self.replicas(shop) if not r.alive()]
            self.crashes += sum(1 for r in down if r.state == "exited")
            for r in down:
                shop.supervisor.start(self.service, r.index)

    def report(self) -> dict[str, Any]:
        return {"crashes": self.crashes}


@register
class DuplicatePublish(HookFault):
    kind = "duplicate-publish"
    hook = "duplicate_publish"
    why_not = "the {shop} shop publishes nothing: its hidden duplicate is a customer's retry (load.retries)"


@register
class Silent(HookFault):
    kind = "silent"
    hook = "silent"   # healed by a restart (async) or by disarming (sync): the shop's traits say which

    def body(self) -> dict[str, Any]:
        return {"silent": True}
