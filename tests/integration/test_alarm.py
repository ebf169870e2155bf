"""A RabbitMQ resource alarm on a live async shop (issue 20, item 1).

When the memory or disk alarm fires, the broker blocks every connection that publishes
(connection.blocked) and reads nothing more from it. The outbox shop keeps taking orders: they
wait in its outbox, which the backlog counts, and go out once the alarm clears. The shop that
publishes directly refuses orders at once (503) instead of publishing into a connection the broker
does not read. The experiment `broker-alarm` runs the outbox case under the morning rush."""
from __future__ import annotations

import time
from typing import Any

import pytest
from shopping import orders, served_refs

from cafe.brewing import BrewTime
from harness.load.batch import place_orders, wait_until
from harness.nemesis import FAULT_KINDS, FaultWindow
from harness.shops import AsyncShop, ShopSettings
from harness.shops.base import http_json

pytestmark = pytest.mark.integration

SETTINGS = ShopSettings(baristas=1, brewers=2, brew=BrewTime("fixed", mean_ms=10), prefetch=2, capacity=16)




def alarm(shop: AsyncShop, resource: str = "memory") -> Any:
    fault = FAULT_KINDS["broker-alarm"](FaultWindow("alarm", "broker-alarm", "broker", 0, 60,
                                                    params={"resource": resource}))
    fault.setup(shop)
    fault.start(shop)
    return fault


def test_the_outbox_shop_takes_orders_through_a_memory_alarm_and_serves_them_after(infra: Any) -> None:
    with AsyncShop(infra, SETTINGS) as shop:
        first = {str(i) for i in range(10)}
        assert [s for s, _ in place_orders(shop.entry_url, orders(10, 0), concurrency=4)] == [202] * 10
        assert wait_until(lambda: first <= served_refs(shop), 30)
        fault = alarm(shop)
        try:
            assert shop.infra.broker.alarms() == ["memory"]
            began = time.monotonic()
            answers = place_orders(shop.entry_url, orders(20, 10), concurrency=4, timeout_s=10)
            assert [s for s, _ in answers] == [202] * 20          # taken: an insert needs no broker
            assert time.monotonic() - began < 8
            # the orders wait in the outbox, and the backlog sees them there
            assert wait_until(lambda: (shop.backlog()["outbox_pending"] or 0) >= 1, 10)
            backlog = shop.backlog()
            assert backlog["total"] >= backlog["outbox_pending"] >= 1
            assert wait_until(lambda: http_json(shop.url("orders-1") + "/health")["blocked"], 10)
            time.sleep(1.0)
            assert not {str(i) for i in range(10, 30)} & served_refs(shop)   # nothing got through the alarm
        finally:
            fault.stop(shop)
        report = fault.report()
        assert report["resource"] == "memory" and report["blocked_connections"] >= 1, report
        later = {str(i) for i in range(10, 30)}
        assert wait_until(lambda: later <= served_refs(shop), 30), sorted(later - served_refs(shop))
        assert http_json(shop.url("orders-1") + "/health")["outbox_pending"] == 0
        assert shop.infra.broker.alarms() == []
        served = [str(r["ref"]) for r in shop.served()]
        assert len(served) == len(set(served)) == 30


def test_the_direct_shop_refuses_orders_during_an_alarm_and_none_of_them_is_brewed(infra: Any) -> None:
    settings = ShopSettings(baristas=1, brewers=2, brew=BrewTime("fixed", mean_ms=10), prefetch=2, capacity=16,
                            publish_mode="direct")
    with AsyncShop(infra, settings) as shop:
        assert [s for s, _ in place_orders(shop.entry_url, orders(5, 0), concurrency=2)] == [202] * 5
        fault = alarm(shop)
        try:
            answers = place_orders(shop.entry_url, orders(20, 5), concurrency=4, timeout_s=15)
            statuses = [s for s, _ in answers]
            assert 202 not in statuses and set(statuses) <= {503, 504}, statuses
            # at most the first publishes race the broker's notice (504: unknown); then 503 at once
            assert statuses.count(503) >= 16, statuses
            assert http_json(shop.url("orders-1") + "/health")["blocked"]
        finally:
            fault.stop(shop)
        assert wait_until(lambda: not http_json(shop.url("orders-1") + "/health")["blocked"], 10)
        assert [s for s, _ in place_orders(shop.entry_url, orders(5, 25), concurrency=2)] == [202] * 5
        taken = {str(i) for i in (*range(5), *range(25, 30))}
        assert wait_until(lambda: taken <= served_refs(shop), 30)
        refused = {str(i) for (status, _), i in zip(answers, range(5, 25), strict=True) if status == 503}
        time.sleep(1.0)
        assert not refused & served_refs(shop)                      # a refused order is never brewed


def test_a_disk_alarm_is_raised_and_cleared_by_the_fault_kind(infra: Any) -> None:
    with AsyncShop(infra, SETTINGS) as shop:
        fault = alarm(shop, "disk")
        try:
            assert shop.infra.broker.alarms() == ["disk"]
        finally:
            fault.stop(shop)
        assert shop.infra.broker.alarms() == []
        report = fault.report()
        assert report["resource"] == "disk" and report["cleared_after_s"] is not None
        assert shop.heal_report()["healed"]
