"""Services that join a running shop (systems/newcomers/): the loyalty service and the brewed bell.

`start(shop, name, program, **fields)` adds one replica of systems/newcomers/<program> to the
shop's supervisor (its own SQLite database, the shop's settings plus `fields`) and returns its
URL once it is healthy. Nothing else in the shop is touched.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from harness.nemesis.base import NotApplicable
from harness.shops.base import Shop

LOYALTY_SOURCES = ("replay", "feed", "pages")
PAGE_SIZE = 100   # entries per GET when paging: the waiter's feed pages hold as many (ServiceConfig default)


def start(shop: Shop, name: str, program: str, **fields: Any) -> str:
    """Start newcomer `name` (one replica, `<name>-1`) running systems/newcomers/<program>; in the
    async shop it talks to the broker directly unless `fields` says otherwise."""
    if shop.infra.broker is not None:
        fields = {"amqp_url": shop.infra.broker.amqp_url, **fields}

    def config_for(index: int) -> Any:
        return replace(shop.base_config(f"{name}-{index}", f"{name}.db"), **fields)

    shop.supervisor.add(shop.service(name, program, config_for, directory="newcomers"), 1)
    return shop.url(f"{name}-1")


def loyalty_fields(shop: Shop, source: str) -> dict[str, Any]:
    """The config fields of a loyalty service catching up from `source` in `shop`;
    NotApplicable where the shop has no such source."""
    if source not in LOYALTY_SOURCES:
        raise ValueError(f"source: {source!r} is not one of {LOYALTY_SOURCES}")
    if shop.kind == "sync":
        if source != "pages":
            raise NotApplicable(f"the sync shop keeps no events: no {source} to catch up from "
                                "(a late-comer can only page through the cashier's GET /orders)")
        return {"source": "pages", "source_url": f"{shop.url('cashier-1')}/orders", "page_size": PAGE_SIZE}
    if source == "replay":
        broker = shop.infra.broker
        assert broker is not None
        return {"source": "replay", "amqp_url": broker.amqp_url, "prefetch": 500}
    if source == "feed":
        return {"source": "feed", "source_url": f"{shop.url('waiter-1')}/feed"}   # pages of the waiter's size
    return {"source": "pages", "source_url": f"{shop.url('waiter-1')}/served", "page_size": PAGE_SIZE}


def declare_event_log(shop: Shop) -> None:
    """Create the async shop's event log stream (before the first order, so it holds everything)."""
    import pika

    from cafe.amqp import parameters
    from cafe.topology import declare_event_log as declare

    broker = shop.infra.broker
    if broker is None:
        raise NotApplicable("the sync shop has no broker and no event log")
    connection = pika.BlockingConnection(parameters(broker.amqp_url, 10))
    try:
        declare(connection.channel())
    finally:
        connection.close()
