"""Services that join a running shop (systems/newcomers/): the loyalty service and the brewed bell.

`start(shop, name, program, **fields)` adds one replica of systems/newcomers/<program> to the
shop's supervisor (its own SQLite database, the shop's settings plus `fields`) and returns its
URL once it is healthy. Nothing else in the shop is touched.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from harness.errors import NotApplicable
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
    """The config fields of a loyalty service catching up from `source` in `shop`, where the shop's
    traits say (`catch_up`: the broker's event log, or a replica's read API); NotApplicable where
    the shop has no such source."""
    if source not in LOYALTY_SOURCES:
        raise ValueError(f"source: {source!r} is not one of {LOYALTY_SOURCES}")
    traits = shop.traits
    where = traits.catch_up.get(source)
    if where is None:
        reason = "keeps no events" if not traits.has_event_log else f"offers no {source}"
        only = " or ".join(c.described for c in traits.catch_up.values())
        raise NotApplicable(f"the {shop.kind} shop {reason}: no {source} to catch up from "
                            f"(a late-comer can only {only})")
    if where.replica is None:   # the event log on the broker
        broker = shop.infra.broker
        assert broker is not None
        return {"source": source, "amqp_url": broker.amqp_url, "prefetch": 500}
    fields: dict[str, Any] = {"source": source, "source_url": f"{shop.url(where.replica)}{where.path}"}
    return {**fields, "page_size": PAGE_SIZE} if where.paged else fields


def declare_event_log(shop: Shop) -> None:
    """Create the shop's event log stream (before the first order, so it holds everything); for a
    shop whose traits say `has_event_log`."""
    import pika

    from cafe.amqp import parameters
    from cafe.topology import declare_event_log as declare

    broker = shop.infra.broker
    if broker is None:
        raise NotApplicable(f"the {shop.kind} shop has no broker and no event log")
    if not shop.traits.has_event_log:
        raise NotApplicable(f"the {shop.kind} shop has no event log")
    connection = pika.BlockingConnection(parameters(broker.amqp_url, 10))
    try:
        declare(connection.channel())
    finally:
        connection.close()
