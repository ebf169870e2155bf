"""Length-limited work queues on a live async shop (issue 20, item 4).

`[shop] max_length` caps both work queues; `overflow` says what a full one does. With
"reject-publish" the broker nacks the publish: the barista holds the order and publishes its
CoffeeBrewed again with backoff (requeueing it would spend its delivery limit until it is
dead-lettered: brewed, never served). With "drop-head" the broker dead-letters the oldest message:
every dropped order is in `cafe.dead-letters`, counted, never silently gone."""
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

N = 30


def settings(overflow: str) -> ShopSettings:
    return ShopSettings(baristas=1, brewers=2, brew=BrewTime("fixed", mean_ms=10), prefetch=4, capacity=16,
                        max_length=5, overflow=overflow)




def paused_waiter(shop: AsyncShop) -> Any:
    fault = FAULT_KINDS["pause"](FaultWindow("pause", "pause", "waiter", 0, 60))
    fault.setup(shop)
    fault.start(shop)
    return fault


def test_reject_publish_holds_the_orders_and_publishes_again_until_the_waiter_takes_them(infra: Any) -> None:
    with AsyncShop(infra, settings("reject-publish")) as shop:
        fault = paused_waiter(shop)
        try:
            assert [s for s, _ in place_orders(shop.entry_url, orders(N), concurrency=4)] == [202] * N
            # the waiter's queue is full: the barista's CoffeeBrewed publishes are nacked and tried again
            assert wait_until(lambda: http_json(shop.url("barista-1") + "/health")["nacked"] >= 3, 15)
            time.sleep(2.0)
            # capped (the paused waiter holds its prefetch unacked besides); a quorum queue applies its
            # limit as it commits, so concurrent publishes can overshoot it by a few (6 seen in CI)
            assert shop.broker.queue_stats("waiter.brewed")["ready"] <= 5 + 4
            assert shop.dead_letters() == 0          # nothing requeued until its delivery limit
        finally:
            fault.stop(shop)
        refs = {str(i) for i in range(N)}
        assert wait_until(lambda: refs <= served_refs(shop), 60), sorted(refs - served_refs(shop))
        assert shop.dead_letters() == 0
        served = [str(r["ref"]) for r in shop.served()]
        assert len(served) == len(set(served)) == N


def test_drop_head_dead_letters_every_order_it_drops(infra: Any) -> None:
    with AsyncShop(infra, settings("drop-head")) as shop:
        fault = paused_waiter(shop)
        try:
            assert [s for s, _ in place_orders(shop.entry_url, orders(N), concurrency=4)] == [202] * N
            # both queues hold 5 at most: orders the baristas could not take yet, and CoffeeBrewed
            # for the paused waiter, are dropped from the head, into the dead letters
            assert wait_until(lambda: shop.dead_letters() >= 1, 20)
        finally:
            fault.stop(shop)
        assert wait_until(lambda: len(served_refs(shop)) + shop.dead_letters() == N, 20), \
            (len(served_refs(shop)), shop.dead_letters())
        time.sleep(1.0)
        assert len(served_refs(shop)) + shop.dead_letters() == N     # every order served or dead-lettered
        assert shop.dead_letters() >= 1
