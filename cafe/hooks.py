"""Fault hooks inside a service, armed by the harness over HTTP (`POST /control/faults`).

Some delivery faults cannot be made from outside a process at the right moment: a crash after
the brew is recorded and before the ack, a republish of an event already sent, a consumer that
takes messages and never answers. A service keeps one `Hooks` object; the harness arms it with
a JSON body and disarms it with `{}`. Which messages a rate hits is decided by a hash of (seed,
key), not by a random generator; the key is the order's ref (its index in the arrival schedule)
where there is one, so the same orders are hit in every run with the same seed.

    {"crash_before_ack": {"rate": 0.1, "seed": 7}}   barista: SIGKILL itself after brewing
    {"duplicate_publish": {"rate": 0.2, "seed": 7}}  order service: publish chosen events twice
    {"silent": true}                                  barista: take work, never finish or ack it
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


def chosen(key: str, rate: float, seed: int) -> bool:
    """Whether `key` falls in the `rate` share picked by `seed` (deterministic, uniform)."""
    if rate <= 0:
        return False
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


@dataclass
class Hooks:
    """The armed hooks of one service process (all off when it starts)."""

    rates: dict[str, tuple[float, int]] = field(default_factory=dict)   # hook -> (rate, seed)
    silent: bool = False
    fired: dict[str, int] = field(default_factory=dict)

    def hits(self, hook: str, key: str) -> bool:
        """Whether the armed `hook` applies to `key`; counts it when it does."""
        rate, seed = self.rates.get(hook, (0.0, 0))
        hit = chosen(key, rate, seed)
        if hit:
            self.fired[hook] = self.fired.get(hook, 0) + 1
        return hit

    def arm(self, body: dict[str, Any], allowed: tuple[str, ...]) -> None:
        """Replace the armed hooks with `body` (ValueError naming a bad field)."""
        rates: dict[str, tuple[float, int]] = {}
        silent = False
        for key, value in body.items():
            if key not in allowed:
                raise ValueError(f"{key}: not a hook of this service (hooks: {', '.join(allowed)})")
            if key == "silent":
                if not isinstance(value, bool):
                    raise ValueError(f"silent: must be true or false, got {value!r}")
                silent = value
                continue
            if not isinstance(value, dict) or set(value) - {"rate", "seed"}:
                raise ValueError(f"{key}: must be {{\"rate\": 0..1, \"seed\": int}}, got {value!r}")
            rate, seed = value.get("rate", 1.0), value.get("seed", 0)
            if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
                raise ValueError(f"{key}.rate: must be a number in [0, 1], got {rate!r}")
            if isinstance(seed, bool) or not isinstance(seed, int):
                raise ValueError(f"{key}.seed: must be an integer, got {seed!r}")
            rates[key] = (float(rate), seed)
        self.rates, self.silent = rates, silent

    def state(self) -> dict[str, Any]:
        return {**{k: {"rate": r, "seed": s} for k, (r, s) in self.rates.items()},
                "silent": self.silent, "fired": dict(self.fired)}


def routes(hooks: Hooks, allowed: tuple[str, ...]) -> list[web.RouteDef]:
    """GET/POST /control/faults for `hooks`; a bad body is a 400 naming the field."""

    async def get(request: web.Request) -> web.Response:
        return web.json_response(hooks.state())

    async def post(request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read() or b"{}")
            if not isinstance(body, dict):
                raise ValueError("body: must be a JSON object")
            hooks.arm(body, allowed)
        except ValueError as exc:
            return web.json_response({"error": str(exc), "field": str(exc).split(":")[0]}, status=400)
        return web.json_response(hooks.state())

    return [web.get("/control/faults", get), web.post("/control/faults", post)]
