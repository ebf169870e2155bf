"""The late-comer phase (SCENARIOS.md item 5): a loyalty service joins after the history exists.

After the load and the drain, for each source (replay of the event log, the Atom-style feed,
paging), a fresh loyalty service starts, catches up with every coffee served so far (one point
per served order to its customer), optionally is killed a third of the way (held there by its
failpoint, so that the kill lands mid-way however fast the source) and started again, and then must
also award orders placed after it caught up. Its totals must equal, customer by customer, what
the history says was served: `expected_points` (pure) against GET /points.

Measured per source: time from start to caught up (`catch_up_s`, including the ~1 s the
process takes to start, `start_s`), awards per second once it runs, pages or events read.
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from harness.checkers.orders import counts_by_key
from harness.errors import NotApplicable
from harness.history import Record
from harness.load.batch import place_orders, wait_until
from harness.newcomers.services import loyalty_fields, start
from harness.shops.base import Shop
from harness.shops.base import http_json as get_json

ANONYMOUS = "anonymous"   # as systems/newcomers/loyalty.py names an order without a customer
POLL_S = 0.05


def expected_points(history: Sequence[Record]) -> Counter[str]:
    """Points per customer that a correct loyalty service awards: one per served order that was
    invoked, to the customer the invoke named (ANONYMOUS when none). A ref served twice (a
    duplicate coffee) still earns one point: points are per order, not per cup."""
    customers = {str(r["ref"]): (r.get("order") or {}).get("customer") or ANONYMOUS
                 for r in history if r.get("type") == "invoke"}
    served = counts_by_key(history, "served")
    return Counter(customers[ref] for ref in served if ref in customers)


def compare_points(expected: Counter[str], actual: dict[str, int]) -> dict[str, Any]:
    """{"correct", "expected_total", "actual_total", "wrong": {customer: [expected, actual]}}."""
    wrong = {c: [expected.get(c, 0), actual.get(c, 0)] for c in sorted(set(expected) | set(actual))
             if expected.get(c, 0) != actual.get(c, 0)}
    return {"correct": not wrong, "expected_total": sum(expected.values()),
            "actual_total": sum(actual.values()), "wrong": dict(list(wrong.items())[:20]),
            "customers_wrong": len(wrong)}


def _health(url: str) -> dict[str, Any]:
    """A late-comer's /health; {} while it is restarting or not answering yet."""
    try:
        health: dict[str, Any] = get_json(f"{url}/health")
        return health
    except OSError:
        return {}


def _awarded(url: str) -> int:
    return int(_health(url).get("awarded", -1))


def _held(url: str) -> bool:
    return bool(_health(url).get("held"))


def kill_point(target: int) -> int:
    """Where a restarted late-comer is killed: after a third of `target` awards (at least one), so
    that 0 < kill_point < target whenever target >= 2."""
    return max(1, target // 3)


def catch_up(shop: Shop, source: str, *, target: int, restart: bool, timeout_s: float) -> dict[str, Any]:
    """Start a loyalty service reading `source` and wait until it awarded `target` orders
    (NotApplicable where the shop has no such source). With `restart`, it holds at its failpoint
    once it has awarded `kill_point(target)` (systems/newcomers/loyalty.py, `hold_at_awarded`), is
    SIGKILLed there and started again from its own database: `killed_at_awarded` says where the
    kill landed, `killed_mid_way` whether that was strictly between nothing and everything."""
    fields = loyalty_fields(shop, source)
    if restart:
        fields["hold_at_awarded"] = kill_point(target)
    name = f"loyalty-{source}"
    began = time.time()
    url = start(shop, name, "loyalty.py", **fields)
    ready = time.time()
    killed_at: int | None = None
    if restart:
        wait_until(lambda: _held(url), timeout_s, POLL_S)
        killed_at = _awarded(url)
        shop.supervisor.kill(name)
        shop.supervisor.start(name)
    caught_up = wait_until(lambda: _awarded(url) >= target, timeout_s, POLL_S)
    done = time.time()
    health = get_json(f"{url}/health")
    reading = done - ready
    return {"source": source, "caught_up": caught_up, "catch_up_s": round(done - began, 3),
            "start_s": round(ready - began, 3), "awarded": health["awarded"], "target": target,
            "awards_per_s": round(target / reading, 1) if reading > 0 else None,
            "killed_at_awarded": killed_at,
            "killed_mid_way": None if killed_at is None else 0 < killed_at < target,
            "read": health.get("seen"), "pages_read": health.get("pages_read"), "url": url}


def live_orders(shop: Shop, n: int) -> int:
    """Place n more orders (customer "customer-live") after the late-comers caught up; how many
    the shop accepted."""
    orders = [{"product": "Espresso", "size": "small", "ref": f"live-{i}", "customer": "customer-live"}
              for i in range(n)]
    answers = place_orders(shop.entry_url, orders, concurrency=8)
    return sum(1 for status, _ in answers if status == shop.accepted_status)


def run_phase(shop: Shop, history: Sequence[Record], *, sources: Sequence[str], restart: bool, more_orders: int,
              timeout_s: float) -> dict[str, Any]:
    """Catch up from each source in turn, then place `more_orders` live orders; the `latecomer`
    section of results.json. `correct` is True iff every applicable source ended with exactly the
    expected points per customer, live orders included."""
    expected = expected_points(history)
    target = sum(expected.values())
    report: dict[str, Any] = {"history_orders": target, "customers": len(expected), "restart": restart,
                              "sources": {}}
    running: dict[str, dict[str, Any]] = {}
    for source in sources:
        try:
            running[source] = catch_up(shop, source, target=target, restart=restart, timeout_s=timeout_s)
            report["sources"][source] = running[source]
        except NotApplicable as exc:
            report["sources"][source] = {"source": source, "not_applicable": str(exc)}
    accepted = live_orders(shop, more_orders) if more_orders and running else 0
    expected_live = expected + Counter({"customer-live": accepted}) if accepted else expected
    report["live_orders"] = {"placed": more_orders if running else 0, "accepted": accepted}
    for data in running.values():
        url: str = data.pop("url")

        def awarded_all(u: str = url) -> bool:
            return _awarded(u) >= target + accepted

        wait_until(awarded_all, timeout_s, POLL_S)
        points = get_json(f"{url}/points")["customers"]
        data["points"] = compare_points(expected_live, points)
    report["correct"] = bool(running) and all(d["caught_up"] and d["points"]["correct"] for d in running.values())
    return report
