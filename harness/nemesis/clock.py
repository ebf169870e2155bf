"""Clock skew: a service whose clock is off (issue 20, item 6).

Each service stamps its records with its own clock. `clock-skew` runs the target service's
processes under libfaketime (Debian's `faketime` package: `LD_PRELOAD` of libfaketimeMT with
`FAKETIME="<offset>s x<drift>"`, the monotonic clock faked alike so that sleeps stay valid): its
wall clock is `offset_s` off and runs at `drift` times the right pace. The processes must start
with it, so `setup` (before the load, off the record) restarts the target's replicas with it and
waits for them; the window's start and end only mark it, and the skew lasts the whole run
(`start_s` must be 0). The harness's own clock is untouched: acceptance and response latencies do
not move, what compares a service's stamps with the harness's is flagged (harness.checkers.clocks).
"""
from __future__ import annotations

import time
from typing import Any

from harness.errors import NotApplicable
from harness.infra.provision import LIBFAKETIME
from harness.nemesis.base import FaultWindow, ProcessFault, register
from harness.shops.base import Shop

HINT = "install Debian's faketime: `apt-get install -y faketime` (as root), or `chaoscafe provision`"
SETTLE_S = 30.0   # how long the restarted replicas may take to be linked again


def faketime_env(offset_s: float, drift: float) -> dict[str, str]:
    """The environment that puts a process's clocks `offset_s` off, running at `drift` x the pace."""
    return {"LD_PRELOAD": str(LIBFAKETIME), "FAKETIME": f"{offset_s:+.6f}s x{drift:g}",
            "FAKETIME_DONT_FAKE_MONOTONIC": "0", "FAKETIME_NO_CACHE": "1"}


@register
class ClockSkew(ProcessFault):
    kind = "clock-skew"

    def __init__(self, window: FaultWindow) -> None:
        super().__init__(window)
        self.offset_s = float(window.params.get("offset_s", 0.0))
        self.drift = float(window.params.get("drift", 1.0))
        self.replicas: list[str] = []

    def setup(self, shop: Shop) -> None:
        super().setup(shop)   # the target's service, or NotApplicable
        if shop.infra.runtime != "local":
            raise NotApplicable("clock-skew preloads libfaketime into local processes; this run's services are containers")
        if not LIBFAKETIME.exists():
            raise RuntimeError(f"clock-skew needs {LIBFAKETIME}: {HINT}")
        shop.supervisor.set_extra_env(self.service, faketime_env(self.offset_s, self.drift))
        self.replicas = [r.name for r in shop.supervisor.restart(self.service, self.window.replica)]
        deadline = time.monotonic() + SETTLE_S
        while not shop.settled():   # an async service links to the broker again after its restart
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.service}: not linked again within {SETTLE_S:g} s after its restart")
            time.sleep(0.1)

    def start(self, shop: Shop) -> None: ...   # set before the load: the window only marks it

    def stop(self, shop: Shop) -> None: ...

    def teardown(self, shop: Shop) -> None:
        if self.replicas:   # later starts of the service (none in this run) get the right clock again
            shop.supervisor.set_extra_env(self.service, {})

    def report(self) -> dict[str, Any]:
        return {"service": self.service, "replicas": self.replicas, "offset_s": self.offset_s, "drift": self.drift}

