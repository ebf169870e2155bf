"""Topology accidents on a live async shop (issue 20, item 2): a deleted binding and a deleted queue.

A publish that no binding routes is confirmed and dropped unless it is `mandatory`; the shop's
routed events are, so they come back, stay pending and go out again once the shop has declared its
topology again. A queue deleted under its consumers cancels their subscriptions (basic.cancel); the
consumers notice, declare it again and subscribe again, and say so on /health. The experiment
`topology-accident` runs the binding case under load in CI's main job; here each case is checked
step by step, the scenario of the issue: 20 orders, the accident, 20 more, 20 more."""
from __future__ import annotations

from typing import Any

import pytest
from shopping import orders, served_refs

from cafe import topology
from cafe.brewing import BrewTime
from harness.load.batch import place_orders, wait_until
from harness.nemesis import FAULT_KINDS, FaultWindow
from harness.shops import AsyncShop, ShopSettings
from harness.shops.base import http_json

pytestmark = pytest.mark.integration

SETTINGS = ShopSettings(baristas=2, brewers=2, brew=BrewTime("fixed", mean_ms=10), prefetch=2, capacity=16)




def health(shop: AsyncShop, name: str) -> dict[str, Any]:
    return http_json(shop.url(name) + "/health")


def started(kind: str, queue: str, shop: AsyncShop) -> Any:
    """A fault of `kind` on `queue`, set up and started on `shop` as the nemesis would."""
    fault = FAULT_KINDS[kind](FaultWindow(kind, kind, queue, 0, 60))
    fault.setup(shop)
    fault.start(shop)
    return fault


def place(shop: AsyncShop, n: int, start: int) -> set[str]:
    answers = place_orders(shop.entry_url, orders(n, start), concurrency=4)
    assert [s for s, _ in answers] == [202] * n
    return {str(i) for i in range(start, start + n)}


@pytest.mark.parametrize("queue", list(topology.BINDINGS))
def test_an_unbound_queue_loses_no_order_the_shop_binds_it_again(infra: Any, queue: str) -> None:
    with AsyncShop(infra, SETTINGS) as shop:
        broker = shop.broker
        first = place(shop, 20, 0)
        assert wait_until(lambda: first <= served_refs(shop), 30)
        broker.unbind(topology.EXCHANGE, queue, topology.BINDINGS[queue])
        assert topology.BINDINGS[queue] not in broker.bindings(topology.EXCHANGE, queue)
        second = place(shop, 20, 20)
        # nothing was dropped: every order of the accident is served, without the harness repairing anything
        assert wait_until(lambda: second <= served_refs(shop), 30), sorted(second - served_refs(shop))
        assert topology.BINDINGS[queue] in broker.bindings(topology.EXCHANGE, queue)   # the shop's own doing
        returned = (health(shop, "orders-1")["returned"] if queue == topology.ORDERS_QUEUE
                    else sum(health(shop, f"barista-{i}")["returned"] for i in (1, 2)))
        assert returned >= 1                                                        # the accident did hit
        third = place(shop, 20, 40)
        assert wait_until(lambda: third <= served_refs(shop), 30)
        assert health(shop, "orders-1")["outbox_pending"] == 0
        served = [str(r["ref"]) for r in shop.served()]
        assert len(served) == len(set(served)) == 60


def test_the_fault_kind_unbinds_and_its_end_binds_again(infra: Any) -> None:
    with AsyncShop(infra, SETTINGS) as shop:
        fault = started("unbind", topology.BREWED_QUEUE, shop)
        assert topology.BINDINGS[topology.BREWED_QUEUE] not in shop.broker.bindings(topology.EXCHANGE,
                                                                                   topology.BREWED_QUEUE)
        fault.stop(shop)   # no order since: the shop had no reason to bind it again
        assert fault.report() == {"queue": topology.BREWED_QUEUE, "routing_key": "CoffeeBrewed",
                                  "rebound_by_shop": False}
        assert topology.BINDINGS[topology.BREWED_QUEUE] in shop.broker.bindings(topology.EXCHANGE,
                                                                               topology.BREWED_QUEUE)


def test_a_deleted_queue_is_declared_again_and_its_consumers_subscribe_again(infra: Any) -> None:
    with AsyncShop(infra, SETTINGS) as shop:
        first = place(shop, 20, 0)
        assert wait_until(lambda: first <= served_refs(shop), 30)
        assert all(health(shop, f"barista-{i}")["subscribed"] for i in (1, 2))
        shop.broker.delete_queue(topology.ORDERS_QUEUE)
        # every replica notices the broker's cancel at once and subscribes again to the queue it declared
        assert wait_until(lambda: all(health(shop, f"barista-{i}")["resubscribed"] >= 1
                                      and health(shop, f"barista-{i}")["subscribed"] for i in (1, 2)), 10)
        assert wait_until(lambda: shop.broker.queue_stats(topology.ORDERS_QUEUE)["consumers"] == 2, 10)
        second = place(shop, 20, 20)
        assert wait_until(lambda: second <= served_refs(shop), 30), sorted(second - served_refs(shop))
        assert health(shop, "orders-1")["outbox_pending"] == 0
        report = shop.heal_report()
        assert report["unsubscribed"] == [] and report["healed"], report


def test_the_queue_delete_kind_deletes_and_the_waiter_subscribes_again_before_its_end(infra: Any) -> None:
    with AsyncShop(infra, SETTINGS) as shop:
        fault = started("queue-delete", topology.BREWED_QUEUE, shop)
        assert wait_until(lambda: health(shop, "waiter-1")["resubscribed"] >= 1, 10)
        refs = place(shop, 20, 0)    # brewed coffees reach the queue the waiter declared again
        assert wait_until(lambda: refs <= served_refs(shop), 30), sorted(refs - served_refs(shop))
        fault.stop(shop)
        report = fault.report()
        assert report["queue"] == topology.BREWED_QUEUE and report["redeclared_by_shop"] is True
        assert shop.heal_report()["healed"]


def test_a_consumer_left_without_a_subscription_is_not_healed(infra: Any) -> None:
    """The end-of-run check compares the consumers with the live replicas: a replica that runs and
    answers but holds no subscription (here: its broker edge cut) fails it."""
    with AsyncShop(infra, SETTINGS) as shop:
        assert shop.heal_report()["unsubscribed"] == []
        (proxy,) = shop.proxies_for("barista->broker", replica=1)
        infra.toxiproxy.disable(proxy)
        try:
            shop.subscribe_grace_s = 1.0
            assert wait_until(lambda: "barista-1" in shop.unsubscribed(), 15)
            report = shop.heal_report()
            assert report["unsubscribed"] == ["barista-1"] and not report["healed"]
            assert health(shop, "barista-1")["status"] == "ok"     # alive and answering: only the check sees it
        finally:
            infra.toxiproxy.enable(proxy)
        assert wait_until(lambda: shop.unsubscribed() == [], 15)
