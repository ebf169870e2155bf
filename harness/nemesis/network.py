"""Network faults through Toxiproxy on a named edge (see harness.shops.base.EDGES).

One kind per Toxiproxy toxic (latency, bandwidth, timeout, reset_peer, slow_close, slicer,
limit_data) plus `down` (the edge's proxies disabled: listeners closed, connections cut).
`params` carries the toxic's attributes and optionally `stream` ("upstream" = client -> server,
"downstream" = server -> client, the default) and `toxicity` (default 1: Toxiproxy's randomness
is not seeded, so partial toxicity is not reproducible). Healing removes exactly the toxics this
fault added, and re-enables the proxies it disabled.
"""
from __future__ import annotations

import re
from typing import Any, ClassVar

from harness.nemesis.base import FaultWindow, register
from harness.shops.base import EDGES, Shop

# toxic -> its attributes (all numbers) and the defaults used when a param is not given
TOXICS: dict[str, dict[str, float]] = {
    "latency": {"latency": 100, "jitter": 0},
    "bandwidth": {"rate": 100},
    "timeout": {"timeout": 0},
    "reset_peer": {"timeout": 0},
    "slow_close": {"delay": 1000},
    "slicer": {"average_size": 64, "size_variation": 32, "delay": 1000},
    "limit_data": {"bytes": 1024},
}
STREAMS = ("upstream", "downstream")
TIME_PARAMS = ("latency", "jitter", "timeout", "delay")   # ms: divided by a profile's speed
RATE_PARAMS = ("rate",)                                   # KB/s: multiplied by it


def check_params(kind: str, params: dict[str, Any]) -> None:
    """Raise ValueError naming a bad network-fault parameter."""
    allowed = set(TOXICS.get(kind, {})) | {"stream", "toxicity"} if kind != "down" else set()
    for key, value in params.items():
        if key not in allowed:
            raise ValueError(f"{key}: not a parameter of {kind!r} (allowed: {', '.join(sorted(allowed)) or 'none'})")
        if key == "stream":
            if value not in STREAMS:
                raise ValueError(f"stream: {value!r} is not one of {STREAMS}")
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"{key}: must be a number >= 0, got {value!r}")
        elif key == "toxicity" and value > 1:
            raise ValueError(f"toxicity: must be <= 1, got {value}")


class EdgeFault:
    """Base of faults on an edge's proxies; `replica` narrows the edge to one replica's proxies."""

    kind: ClassVar[str] = ""
    description: ClassVar[str] = ""
    targets: ClassVar[tuple[str, ...]] = EDGES
    time_params: ClassVar[tuple[str, ...]] = TIME_PARAMS   # read by Experiment.for_profile (speed)
    rate_params: ClassVar[tuple[str, ...]] = RATE_PARAMS

    def __init__(self, window: FaultWindow) -> None:
        self.window = window
        self.proxies: list[str] = []

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        check_params(cls.kind, params)

    @classmethod
    def param_defaults(cls) -> dict[str, float]:
        """The toxic's attributes when a param is not given (read by Experiment.for_profile, which
        compresses a default latency like a given one)."""
        return dict(TOXICS.get(cls.kind, {}))

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
    description = "the edge is cut: its proxies are disabled (listeners closed, open connections dropped)"

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
for _toxic, _text in {
    "latency": "adds `latency` ms (+/- `jitter`) to data on the edge",
    "bandwidth": "limits the edge to `rate` KB/s",
    "timeout": "a blackhole: data is dropped; the connection closes after `timeout` ms (0: never)",
    "reset_peer": "resets connections (TCP RST) after `timeout` ms",
    "slow_close": "delays the close of connections by `delay` ms",
    "slicer": "slices data into small packets of `average_size` bytes, `delay` us apart",
    "limit_data": "closes connections after `bytes` bytes",
}.items():
    register(type(f"Toxic_{_toxic}", (Toxic,), {"kind": _toxic, "description": _text}))
