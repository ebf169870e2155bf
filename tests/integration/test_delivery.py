"""Delivery semantics on live shops: a crash before the ack really makes the broker redeliver,
idempotency turns that into one coffee, the sync shop's retries with and without an
Idempotency-Key, a silent barista, the feed and the late-comer, the bell joining a running shop,
and the barista replicas' shared claims. The delivery experiments themselves (duplicate-delivery,
its unsafe twin, business-probe, new-consumer-live, late-comer) run in CI's main job, judged by their
expectations and the invariants of every run."""
from __future__ import annotations

import json
import time
import urllib.request
from collections import Counter
from typing import Any

import pytest

from cafe.brewing import BrewTime
from harness.load.batch import place_orders, wait_until
from harness.nemesis import FAULT_KINDS, FaultWindow
from harness.newcomers import latecomer
from harness.newcomers import services as newcomers
from harness.shops import AsyncShop, ShopSettings, SyncShop
from harness.shops.base import http_json, read_all

pytestmark = pytest.mark.integration


def settings(idempotency: bool) -> ShopSettings:
    return ShopSettings(baristas=2, brewers=2, brew=BrewTime("fixed", mean_ms=20), prefetch=2,
                        idempotency=idempotency, capacity=16)


def orders(n: int, start: int = 0) -> list[dict[str, str]]:
    return [{"product": "Latte", "size": "small", "ref": str(i), "customer": f"c{i % 7}"} for i in range(start, start + n)]


def post(url: str, body: dict[str, Any], headers: dict[str, str] | None = None, timeout: float = 10) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"content-type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


@pytest.mark.parametrize("idempotency", [True, False])
def test_crash_before_ack_is_redelivered_and_idempotency_keeps_one_coffee(infra: Any, idempotency: bool) -> None:
    window = FaultWindow("crash", "crash-before-ack", "barista", 0, 60, replica=1, params={"rate": 1.0})
    with AsyncShop(infra, settings(idempotency)) as shop:
        fault = FAULT_KINDS["crash-before-ack"](window)
        fault.setup(shop)
        fault.start(shop)
        answers = place_orders(shop.entry_url, orders(30), concurrency=4)
        assert [s for s, _ in answers] == [202] * 30
        assert wait_until(lambda: len({r["ref"] for r in shop.served()}) == 30, 60)
        fault.stop(shop)
        redelivered = shop.redeliveries()
        brews = Counter(b["ref"] for b in shop.brewed())
        served = Counter(r["ref"] for r in shop.served())
        alive = all(r.alive() for r in shop.supervisor.replicas("barista"))
    assert fault.report()["crashes"] >= 1           # barista-1 really died, and was started again
    assert redelivered and all(r["order_id"] for r in redelivered)   # the broker's redelivered flag, seen
    assert alive
    if idempotency:
        assert set(brews.values()) == {1} and set(served.values()) == {1}
    else:
        assert sum(n - 1 for n in brews.values()) >= 1  # brewed again after the crash


def test_duplicate_publish_makes_a_second_delivery_that_idempotency_absorbs(infra: Any) -> None:
    window = FaultWindow("dup", "duplicate-publish", "orders", 0, 60, params={"rate": 1.0})
    with AsyncShop(infra, settings(True)) as shop:
        fault = FAULT_KINDS["duplicate-publish"](window)
        fault.setup(shop)
        fault.start(shop)
        place_orders(shop.entry_url, orders(10), concurrency=2)
        assert wait_until(lambda: len(shop.served()) >= 10, 30)
        fault.stop(shop)
        state = http_json(f"{shop.url('orders-1')}/control/faults")
        wait_until(lambda: sum(http_json(f"{shop.url(f'barista-{i}')}/health")["duplicates_skipped"]
                               for i in (1, 2)) >= 10, 10)
        skipped = sum(http_json(f"{shop.url(f'barista-{i}')}/health")["duplicates_skipped"] for i in (1, 2))
        brews = Counter(b["ref"] for b in shop.brewed())
    assert state["fired"]["duplicate_publish"] == 10 and "duplicate_publish" not in state   # fired, disarmed
    assert skipped >= 10                      # every order arrived twice; the second was recognised
    assert set(brews.values()) == {1}


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("keyed", [True, False])
def test_a_retry_with_the_same_idempotency_key_is_the_same_order(kind: str, keyed: bool,
                                                                  request: pytest.FixtureRequest) -> None:
    infra = request.getfixturevalue("infra" if kind == "async" else "proxy_only_infra")
    shop_cls = AsyncShop if kind == "async" else SyncShop
    with shop_cls(infra, settings(True)) as shop:
        headers = {"Idempotency-Key": "order-7"} if keyed else None
        first = post(f"{shop.entry_url}/orders", orders(1, 7)[0], headers)
        again = post(f"{shop.entry_url}/orders", orders(1, 7)[0], headers)
        assert wait_until(lambda: len(shop.served()) >= (1 if keyed else 2), 30)
        brews = [b for b in shop.brewed() if b["ref"] == "7"]
    assert first[0] == again[0] == shop.accepted_status
    if keyed:
        assert again[1]["id"] == first[1]["id"] and again[1].get("replayed") is True and len(brews) == 1
    else:
        assert again[1]["id"] != first[1]["id"] and len(brews) == 2    # the hidden duplicate


def test_sync_barista_brews_an_order_id_once(proxy_only_infra: Any) -> None:
    with SyncShop(proxy_only_infra, settings(True)) as shop:
        url = f"{shop.url('barista-1')}/brews"
        one = post(url, {"orderId": "o-1", "product": "Latte", "size": "small", "ref": "1"})
        two = post(url, {"orderId": "o-1", "product": "Latte", "size": "small", "ref": "1"})
        assert one[0] == two[0] == 201 and one[1]["brew_id"] == two[1]["brew_id"]
        assert len(read_all(shop.url("barista-1"), "/brews")) == 1


def test_silent_barista_takes_orders_and_never_serves_them_until_healed(infra: Any) -> None:
    window = FaultWindow("quiet", "silent", "barista", 0, 60)
    with AsyncShop(infra, settings(True)) as shop:
        fault = FAULT_KINDS["silent"](window)
        fault.setup(shop)
        fault.start(shop)
        answers = place_orders(shop.entry_url, orders(6), concurrency=2)
        assert [s for s, _ in answers] == [202] * 6                     # accepted, no error anywhere
        assert not wait_until(lambda: len(shop.served()) > 0, 2)       # and nothing served
        held = sum(http_json(f"{shop.url(f'barista-{i}')}/health")["held_silently"] for i in (1, 2))
        fault.stop(shop)
        assert wait_until(lambda: len(shop.served()) == 6, 30)          # served once healed
    assert held >= 1


def test_feed_pages_are_stable_and_linked(infra: Any) -> None:
    with AsyncShop(infra, settings(True)) as shop:
        place_orders(shop.entry_url, orders(250), concurrency=8)
        assert wait_until(lambda: len(shop.served()) == 250, 60)
        waiter = shop.url("waiter-1")
        current = http_json(f"{waiter}/feed")
        first = http_json(f"{waiter}/feed/1")
        with urllib.request.urlopen(f"{waiter}/feed/1") as resp:
            cache = resp.headers["Cache-Control"]
    assert current["page"] == 3 and not current["archived"] and len(current["entries"]) == 50
    assert current["links"]["prev-archive"] == "/feed/2"
    assert first["archived"] and len(first["entries"]) == 100 and "immutable" in cache
    assert first["links"]["next-archive"] == "/feed/2"
    assert {e["customer"] for e in first["entries"]} <= {f"c{i}" for i in range(7)}


@pytest.mark.parametrize("source", ["replay", "feed", "pages"])
def test_loyalty_catches_up_survives_a_kill_and_follows_live(infra: Any, source: str) -> None:
    with AsyncShop(infra, settings(True)) as shop:
        if source == "replay":
            newcomers.declare_event_log(shop)
        placed = orders(300)
        place_orders(shop.entry_url, placed, concurrency=8)
        assert wait_until(lambda: len(shop.served()) == 300, 60)
        result = latecomer.catch_up(shop, source, target=300, restart=True, timeout_s=60)
        place_orders(shop.entry_url, orders(5, 300), concurrency=2)
        url = shop.url(f"loyalty-{source}-1")
        assert wait_until(lambda: http_json(f"{url}/health")["awarded"] == 305, 30)
        points = http_json(f"{url}/points")
    # held by its failpoint at a third, however fast the source: the kill lands mid-way
    assert result["caught_up"] and result["killed_at_awarded"] == latecomer.kill_point(300) == 100
    assert result["killed_mid_way"]
    expected = Counter(o["customer"] for o in orders(305))
    assert points["customers"] == dict(expected) and points["total"] == 305


def test_sync_loyalty_pages_the_cashier(proxy_only_infra: Any) -> None:
    with SyncShop(proxy_only_infra, settings(True)) as shop:
        place_orders(shop.entry_url, orders(120), concurrency=8)
        result = latecomer.catch_up(shop, "pages", target=120, restart=True, timeout_s=60)
        points = http_json(f"{shop.url('loyalty-pages-1')}/points")
        with pytest.raises(newcomers.NotApplicable):
            newcomers.loyalty_fields(shop, "replay")
    assert result["caught_up"] and points["customers"] == dict(Counter(o["customer"] for o in orders(120)))
    assert result["killed_at_awarded"] == 40 and result["killed_mid_way"]


def test_sync_replicas_share_the_claim_a_keyed_retry_on_the_other_replica_waits_for_the_brew(
        proxy_only_infra: Any) -> None:
    """The cashier's keyed retry lands on the other replica while the first is still brewing: the
    second must not brew again (the same rule as the async barista's, cafe/claims.py)."""
    from concurrent.futures import ThreadPoolExecutor

    slow = ShopSettings(baristas=2, brewers=2, brew=BrewTime("fixed", mean_ms=1500), capacity=4, idempotency=True)
    with SyncShop(proxy_only_infra, slow) as shop:
        order = {"orderId": "o-9", "product": "Latte", "size": "small", "ref": "9"}
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(post, f"{shop.url('barista-1')}/brews", order)
            time.sleep(0.4)
            second = pool.submit(post, f"{shop.url('barista-2')}/brews", order)
            (s1, b1), (s2, b2) = first.result(), second.result()
        brews = [b for b in read_all(shop.url("barista-1"), "/brews") if b["order_id"] == "o-9"]
        started = sum(http_json(f"{shop.url(f'barista-{i}')}/health").get("started", 0) for i in (1, 2))
    assert s1 == s2 == 201 and len(brews) == 1 and b1["brew_id"] == b2["brew_id"]   # one coffee, the same
    assert started == 1                                              # ... and only one was made


def test_async_a_duplicate_delivery_on_the_other_replica_waits_for_the_brew_and_every_brew_is_recorded(
        infra: Any) -> None:
    """Both copies of a republished CoffeeOrdered reach the two replicas at once: one brews, the
    other waits for that brew (claims) instead of brewing a coffee whose record would be dropped."""
    slow = ShopSettings(baristas=2, brewers=1, brew=BrewTime("fixed", mean_ms=1500), prefetch=1, idempotency=True)
    window = FaultWindow("dup", "duplicate-publish", "orders", 0, 60, params={"rate": 1.0})
    with AsyncShop(infra, slow) as shop:
        fault = FAULT_KINDS["duplicate-publish"](window)
        fault.setup(shop)
        fault.start(shop)
        place_orders(shop.entry_url, orders(1, 3), concurrency=1)
        assert wait_until(lambda: len(shop.served()) >= 1, 30)
        fault.stop(shop)
        health = [http_json(f"{shop.url(f'barista-{i}')}/health") for i in (1, 2)]
        assert wait_until(lambda: sum(http_json(f"{shop.url(f'barista-{i}')}/health")["duplicates_skipped"]
                                      for i in (1, 2)) >= 1, 10)
        brews = shop.brewed()
        served = shop.served()
    assert sum(h.get("started", 0) for h in health) == len(brews) == 1   # every coffee made is on record: one
    assert len(served) == 1
