"""Network faults through Toxiproxy on a named edge (see harness.shops.settings.EDGES).

One kind per Toxiproxy toxic (latency, bandwidth, timeout, reset_peer, slow_close, slicer,
limit_data) plus `down` (the edge's proxies disabled: listeners closed, connections cut).
`params` carries the toxic's attributes and optionally `stream` ("upstream" = client -> server,
"downstream" = server -> client, the default) and `toxicity` (default 1: Toxiproxy's randomness
is not seeded, so partial toxicity is not reproducible). Healing removes exactly the toxics this
fault added, and re-enables the proxies it disabled.
"""
from __future__ import annotations

import re

from harness.experiment.faults import TOXICS
from harness.nemesis.base import FaultWindow, Kind, register
from harness.shops.base import Shop


class EdgeFault(Kind):
    """Base of faults on an edge's proxies; `replica` narrows the edge to one replica's proxies."""

    def __init__(self, window: FaultWindow) -> None:
        self.window = window
        self.proxies: list[str] = []

    def setup(self, shop: Shop) -> None:
        self.proxies = shop.proxies_for(self.window.target, self.window.replica)   # raises NotApplicable

    def stop(self, shop: Shop) -> None:
        raise NotImplementedError

    def teardown(self, shop: Shop) -> None:
        self.stop(shop)


class Toxic(EdgeFault):
    """Adds one toxic to every proxy of the edge at start; removes them at stop."""

    def __init__(self, window: FaultWindow) -> None:
        super().__init__(window)
        self.added: list[tuple[str, str]] = []

    def start(self, shop: Shop) -> None:
        params = dict(self.window.params)
        stream = params.pop("stream", "downstream")
        toxicity = float(params.pop("toxicity", 1.0))
        attributes = {**TOXICS[self.kind], **params}
        client = shop.infra.toxiproxy
        for proxy in self.proxies:
            name = client.add_toxic(proxy, self.kind, stream=stream, toxicity=toxicity, attributes=attributes,
                                    name=re.sub(r"[^A-Za-z0-9_-]", "_", f"{self.window.name}-{stream}")[:100])
            self.added.append((proxy, name))

    def stop(self, shop: Shop) -> None:
        client = shop.infra.toxiproxy
        while self.added:
            proxy, name = self.added.pop()
            if any(t.get("name") == name for t in client.toxics(proxy)):
                client.remove_toxic(proxy, name)


class Down(EdgeFault):
    kind = "down"

    def __init__(self, window: FaultWindow) -> None:
        super().__init__(window)
        self.disabled: list[str] = []

    def start(self, shop: Shop) -> None:
        for proxy in self.proxies:
            shop.infra.toxiproxy.disable(proxy)
            self.disabled.append(proxy)

    def stop(self, shop: Shop) -> None:
        while self.disabled:
            shop.infra.toxiproxy.enable(self.disabled.pop())


register(Down)
for _toxic in TOXICS:
    register(type(f"Toxic_{_toxic}", (Toxic,), {"kind": _toxic}))
