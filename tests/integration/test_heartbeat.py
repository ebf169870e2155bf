"""The services' AMQP heartbeat as an experiment sets it (`[shop] heartbeat_s`, issue 20 item 7):
negotiated with the broker as given, 0 turning it off, and the shop works either way."""
from __future__ import annotations

import json
from typing import Any

import pytest

from cafe.brewing import BrewTime
from harness.load.batch import place_orders, wait_until
from harness.shops import AsyncShop, ShopSettings

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("heartbeat_s", [0, 3])
def test_the_heartbeat_is_negotiated_as_set_and_orders_are_served(infra: Any, heartbeat_s: int) -> None:
    settings = ShopSettings(baristas=1, brewers=2, brew=BrewTime("fixed", mean_ms=10), heartbeat_s=heartbeat_s)
    with AsyncShop(infra, settings) as shop:
        orders = [{"product": "Latte", "size": "small", "ref": str(i), "customer": "c"} for i in range(5)]
        assert [s for s, _ in place_orders(shop.entry_url, orders, concurrency=2)] == [202] * 5
        assert wait_until(lambda: len(shop.served()) == 5, 30)
        node = shop.broker.node
        res = node.ctl("list_connections", "-p", shop.broker.vhost, "--formatter", "json", "timeout",
                       "client_properties")
        rows = json.loads(res.stdout)
        # the services name their connections (the harness's own readers do not)
        services = [r for r in rows if "connection_name" in json.dumps(r.get("client_properties"))]
        assert len(services) >= 3 and {r["timeout"] for r in services} == {heartbeat_s}, services
