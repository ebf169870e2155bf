"""Both shops end to end on real processes, the real broker and the real Toxiproxy."""
from __future__ import annotations

import json
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path

import pika
import pytest

from cafe import topology
from cafe.brewing import BrewTime
from harness.load.batch import place_orders, run_batch, sample_orders, wait_until
from harness.shops import SHOPS, AsyncShop, ShopSettings

pytestmark = pytest.mark.integration

FAST = ShopSettings(baristas=2, brewers=4, brew=BrewTime("fixed", mean_ms=20), capacity=16, prefetch=4)


def make_infra(kind: str, request: pytest.FixtureRequest):
    return request.getfixturevalue("infra" if kind == "async" else "proxy_only_infra")


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_200_orders_each_brewed_and_served_exactly_once(kind: str, request: pytest.FixtureRequest) -> None:
    with SHOPS[kind](make_infra(kind, request), FAST) as shop:
        result = run_batch(shop, 200, concurrency=32, drain_s=120)
        brewed = shop.brewed()
        served = shop.served()
    assert result.statuses == {shop.accepted_status: 200}
    assert sorted(int(b["ref"]) for b in brewed) == list(range(200))
    assert sorted(int(s["ref"]) for s in served) == list(range(200))
    assert len({b["order_id"] for b in brewed}) == 200
    assert {b["barista"] for b in brewed} == {"barista-1", "barista-2"}  # both replicas worked
    print(f"{kind}: 200 orders in {result.seconds:.2f}s = {result.throughput:.1f} served/s")


def tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")} - {"sqlite_sequence"}


@pytest.mark.parametrize(("kind", "expected"), [
    ("sync", {"cashier.db": {"orders"}, "barista.db": {"brews", "claims", "claimants"}}),
    ("async", {"orders.db": {"orders", "outbox"},
               "barista.db": {"brews", "processed", "redeliveries", "claims", "claimants"},
               "waiter.db": {"served"}}),
])
def test_each_service_owns_its_database(kind: str, expected: dict, request: pytest.FixtureRequest) -> None:
    with SHOPS[kind](make_infra(kind, request), FAST) as shop:
        run_batch(shop, 10)
        found = {p.name: tables(p) for p in shop.dir.glob("*.db")}
    assert found == expected
    # every service wrote its own rows, nobody else's
    for name in found:
        with sqlite3.connect(shop.dir / name) as conn:
            for table in found[name]:
                assert conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] >= 10 or \
                    table in ("processed", "redeliveries", "claimants")   # claimants: one row per replica


BAD_BODIES = [
    ("malformed JSON", b'{"product": "latte"', "body"),
    ("unknown product", json.dumps({"product": "tea", "size": "large"}).encode(), "product"),
    ("missing field", json.dumps({"product": "latte"}).encode(), "size"),
    ("1 MiB body", b'{"product": "' + b"a" * (1024 * 1024) + b'", "size": "large"}', "body"),
]


def post(url: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(f"{url}/orders", data=body, method="POST",
                                     headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_bad_orders_get_a_4xx_naming_the_problem_and_store_nothing(kind: str, request: pytest.FixtureRequest) -> None:
    with SHOPS[kind](make_infra(kind, request), FAST) as shop:
        for what, body, field in BAD_BODIES:
            status, answer = post(shop.entry_url, body)
            assert 400 <= status < 500, what
            assert answer.get("field") == field, (what, answer)
            assert answer.get("detail"), what
        ok_status, _ = post(shop.entry_url, json.dumps({"product": "latte", "size": "small"}).encode())
        assert ok_status == shop.accepted_status
        assert wait_until(lambda: len(shop.served()) == 1, 30)
        orders = [p for p in shop.dir.glob("*.db") if p.name in ("cashier.db", "orders.db")]
        with sqlite3.connect(orders[0]) as conn:
            assert conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 1
        assert len(shop.brewed()) == 1


def publish_raw(shop: AsyncShop, body: bytes) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(shop.broker.amqp_url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(topology.EXCHANGE, "CoffeeOrdered", body, pika.BasicProperties(delivery_mode=2))
    finally:
        connection.close()


def test_poison_messages_are_dead_lettered_and_the_barista_keeps_serving(infra) -> None:
    with AsyncShop(infra, FAST) as shop:
        publish_raw(shop, b"\x00 not an event")
        publish_raw(shop, json.dumps({"eventType": "CoffeeOrdered", "schemaVersion": 1}).encode())
        assert wait_until(lambda: shop.dead_letters() == 2, 30)
        result = run_batch(shop, 20)
        assert result.served_orders == 20
        health = json.loads(urllib.request.urlopen(shop.url("barista-1") + "/health").read())
        other = json.loads(urllib.request.urlopen(shop.url("barista-2") + "/health").read())
        assert health["dead_lettered"] + other["dead_lettered"] == 2
        assert all(r.alive() for r in shop.supervisor.replicas("barista"))


def test_broker_crash_and_restart_loses_no_accepted_order_with_the_outbox(private_infra) -> None:
    infra = private_infra
    settings = ShopSettings(baristas=1, brewers=2, brew=BrewTime("fixed", mean_ms=20), prefetch=2)
    with AsyncShop(infra, settings) as shop:
        first = place_orders(shop.entry_url, sample_orders(30, seed=1))
        assert [s for s, _ in first] == [202] * 30
        # Let the first batch settle: a quorum queue written to just before a SIGKILL can be
        # unusable after restart on RabbitMQ 3.10 (FACTS.md); that is a broker fault to surface in
        # experiments, not what this test is about.
        assert wait_until(lambda: len(shop.served()) == 30, 60)
        infra.broker.crash()
        # the broker is dead: the outbox keeps accepting orders
        during = place_orders(shop.entry_url, [dict(o, ref=str(100 + i)) for i, o in enumerate(sample_orders(30, 2))])
        assert [s for s, _ in during] == [202] * 30
        health = json.loads(urllib.request.urlopen(shop.url("orders-1") + "/health").read())
        assert health["outbox_pending"] == 30 and health["broker"] == "disconnected"
        infra.broker.restart()
        accepted = {body["id"] for _, body in first + during}
        assert wait_until(lambda: {s["order_id"] for s in shop.served()} >= accepted, 90), "orders lost"
        served = shop.served()
        assert len(served) == len({s["order_id"] for s in served})  # idempotent waiter: once each


def test_long_brews_keep_the_broker_connection(infra) -> None:
    """A brew longer than several heartbeat intervals must not cost the connection (FACTS.md)."""
    settings = ShopSettings(baristas=1, brewers=1, brew=BrewTime("fixed", mean_ms=4000), heartbeat_s=1)
    with AsyncShop(infra, settings) as shop:
        place_orders(shop.entry_url, sample_orders(2))
        assert wait_until(lambda: len(shop.served()) == 2, 40)
        health = json.loads(urllib.request.urlopen(shop.url("barista-1") + "/health").read())
        assert health["disconnects"] == 0 and health["broker"] == "connected"
