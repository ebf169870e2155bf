"""Resilient sync shop, cashier service: the plain sync cashier's call, built as a careful team would.

The same `POST /orders` -> barista `POST /brews` call as systems/sync/cashier.py (the same line,
tills, Idempotency-Key handling and stored outcomes: cafe/cashier.py), with the policies of
cafe/resilience.py around every barista call:

- a deadline: an order's whole call lasts at most `deadline_s` from when it was received (the
  customers' patience), each attempt at most `barista_timeout_s` of it; the time left goes to the
  barista in `X-Request-Timeout-Ms`, and the barista stops brewing when it passes;
- retries with exponential backoff and full jitter (tenacity), under the same order id, so the
  barista (idempotent by order id) brews once, and only while an attempt can still end in time;
- a circuit breaker per barista replica (purgatory): `breaker_threshold` failed calls in a row open
  it for `breaker_reset_s`; when every circuit is open the order fails at once (503, Retry-After);
- a bulkhead: at most `bulkhead` calls in flight to one replica;
- load shedding (`shed`): a customer whose expected wait in line is longer than `deadline_s` is
  refused at once (429 with Retry-After, nothing stored), not left to time out.

Answers, as the plain cashier's: 201 served; 504, 503 or 502 failed (the last attempt's), stored as
failed; 429 refused (not stored). `GET /health` adds the policies' counters (attempts, retries,
circuits opened, fast fails, bulkhead waits, deadlines exceeded, shed) and each replica's circuit.
Run: python systems/sync_resilient/cashier.py --config FILE.json
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from cafe.cashier import SCHEMA, Answer, Baristas, BrewCall, Cashier, cashier_routes
from cafe.config import ServiceConfig
from cafe.menu import load_menu
from cafe.resilience import ResilientClient, Shedder
from cafe.store import Database
from cafe.web import MAX_BODY, application, serve


class ResilientCashier(Cashier):
    """The plain Cashier, refusing at once (Shedder) a customer the line could not serve in time."""

    def __init__(self, db: Database, brew: BrewCall, shedder: Shedder | None, *, capacity: int,
                 queue_limit: int) -> None:
        super().__init__(db, brew, capacity=capacity, queue_limit=queue_limit)
        self.shedder = shedder
        self.state["shed"] = 0

    def held(self, seconds: float) -> None:
        if self.shedder is not None:
            self.shedder.held(seconds)

    def refuse(self) -> Answer | None:
        if (refusal := super().refuse()) is not None or self.shedder is None:
            return refusal
        refusal = self.shedder.refuse(self.state["waiting"], self.state["in_flight"])
        if refusal is not None:
            self.state["shed"] += 1
        return refusal


def build_app(config: ServiceConfig) -> web.Application:
    if not config.barista_urls:
        raise SystemExit(f"{config.name}: barista_urls is empty: the cashier needs a barista")
    db = Database(config.db, SCHEMA)
    baristas = Baristas([(f"barista-{i}", url) for i, url in enumerate(config.barista_urls, start=1)])
    timeout = config.barista_timeout_s
    deadline = config.deadline_s if config.deadline_s is not None else 3 * timeout
    policies = {"deadline_s": deadline, "attempt_timeout_s": min(timeout, deadline),
                "bulkhead": config.bulkhead or 2 * config.brewers, "breaker_threshold": config.breaker_threshold,
                "breaker_reset_s": config.breaker_reset_s or min(timeout, deadline),
                "backoff_s": config.backoff_s or timeout / 20, "shed": config.shed}
    client = ResilientClient(baristas, attempt_timeout_s=policies["attempt_timeout_s"], deadline_s=deadline,
                             bulkhead=policies["bulkhead"], breaker_threshold=config.breaker_threshold,
                             breaker_reset_s=policies["breaker_reset_s"], backoff_s=policies["backoff_s"],
                             connections=config.capacity)
    cashier = ResilientCashier(db, client.brew, Shedder(config.capacity, deadline) if config.shed else None,
                               capacity=config.capacity, queue_limit=config.queue_limit)

    def counts() -> dict[str, Any]:
        return {"capacity": config.capacity, "deadline_s": deadline, **cashier.state, "baristas": baristas.calls(),
                "resilience": client.counts(), "policies": policies}

    return application(cashier_routes(config, load_menu(config.menu), db, cashier, baristas, counts,
                                      more=lambda: {"circuits": client.circuits()}),
                       start=[client.open], stop=[client.close, db.close], max_body=MAX_BODY)


if __name__ == "__main__":
    serve(__doc__, build_app)
