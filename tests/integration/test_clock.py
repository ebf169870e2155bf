"""A service with a skewed clock (issue 20, item 6): libfaketime in its processes, set before the load.

The fault restarts the target's replicas under libfaketime; their stamps move by the offset, the
harness's do not, and the shop keeps working (asyncio's timers run on the faked monotonic clock)."""
from __future__ import annotations

import time
from typing import Any

import pytest
from shopping import orders

from cafe.brewing import BrewTime
from harness.load.batch import place_orders, wait_until
from harness.nemesis import FAULT_KINDS, FaultWindow, NotApplicable
from harness.nemesis.clock import LIBFAKETIME
from harness.shops import AsyncShop, ShopSettings, SyncShop

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not LIBFAKETIME.exists(), reason="needs Debian's faketime (apt-get install faketime)")]

SETTINGS = ShopSettings(baristas=1, brewers=2, brew=BrewTime("fixed", mean_ms=10))


def skew(target: str, offset_s: float) -> Any:
    return FAULT_KINDS["clock-skew"](FaultWindow("skew", "clock-skew", target, 0, 60, params={"offset_s": offset_s}))


def test_a_skewed_waiter_stamps_its_servings_by_the_offset_and_still_serves(infra: Any) -> None:
    with AsyncShop(infra, SETTINGS) as shop:
        fault = skew("waiter", -30.0)
        fault.setup(shop)
        assert fault.report()["replicas"] == ["waiter-1"]
        sent = time.time()
        assert [s for s, _ in place_orders(shop.entry_url, orders(5), concurrency=2)] == [202] * 5
        assert wait_until(lambda: len(shop.served()) == 5, 30)
        served_at = [float(r["served_at"]) for r in shop.served()]
        assert all(sent - 31 < t < sent - 25 for t in served_at), (sent, served_at)   # 30 s behind the harness
        brewed_at = [float(r["brewed_at"]) for r in shop.brewed()]
        assert all(t >= sent - 1 for t in brewed_at)                                   # the barista's clock is right
        fault.teardown(shop)


def test_the_sync_shop_has_no_waiter_to_skew(infra: Any) -> None:
    with SyncShop(infra, SETTINGS) as shop, pytest.raises(NotApplicable, match="no 'waiter'"):
        skew("waiter", -1.0).setup(shop)
