"""Shop adapters: the same operations for every architecture (see base.Shop), and the registry of shops.

The registry is metadata only: importing `harness.shops` loads no adapter and no infrastructure, so the
pure core (the experiment schema, the checkers, the report) can name the shops. `adapter(name)` imports
an adapter class on first use; `SHOPS[name]` is the same, as a read-only mapping. `TRAITS[name]` (or
`traits_of(name)`) is what the shop is (needs a broker, keeps an event log, serves which hooks, its
report lanes, ...: harness/shops/traits.py), the same object as its adapter's `traits`: the harness asks
these instead of branching on a shop's name. Adding a shop: its adapter, its traits, two lines here.

    base        Shop (the adapter protocol), ShopSettings, EDGES, http_json
    sync_shop   SyncShop: cashier -> barista over HTTP, each edge through Toxiproxy
    async_shop  AsyncShop: order service -> RabbitMQ -> baristas -> waiter
    traits      ShopTraits: what each shop is, as data (pure)
"""
from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from harness.shops.traits import ASYNC, SYNC, ShopTraits

if TYPE_CHECKING:
    from harness.shops.async_shop import AsyncShop
    from harness.shops.base import Shop
    from harness.shops.settings import ShopSettings
    from harness.shops.sync_shop import SyncShop

#: shop name -> "module:Class" of its adapter, in report order. The one place that lists the shops.
REGISTRY: dict[str, str] = {
    "sync": "harness.shops.sync_shop:SyncShop",
    "async": "harness.shops.async_shop:AsyncShop",
}
SHOP_NAMES: tuple[str, ...] = tuple(REGISTRY)
#: shop name -> its traits (the adapter's `traits` is the same object)
TRAITS: dict[str, ShopTraits] = {"sync": SYNC, "async": ASYNC}


def traits_of(name: str) -> ShopTraits:
    """The traits of the shop registered as `name`; KeyError naming the known shops if there is none."""
    try:
        return TRAITS[name]
    except KeyError:
        raise KeyError(f"no shop named {name!r} (known: {', '.join(REGISTRY)})") from None


def adapter(name: str) -> type[Shop]:
    """The adapter class registered as `name`; KeyError naming the known shops if there is none."""
    try:
        module, _, cls = REGISTRY[name].partition(":")
    except KeyError:
        raise KeyError(f"no shop named {name!r} (known: {', '.join(REGISTRY)})") from None
    found: type[Shop] = getattr(importlib.import_module(module), cls)
    return found


class _Shops(Mapping[str, "type[Shop]"]):
    def __getitem__(self, name: str) -> type[Shop]:
        return adapter(name)

    def __iter__(self) -> Iterator[str]:
        return iter(REGISTRY)

    def __len__(self) -> int:
        return len(REGISTRY)


SHOPS: Mapping[str, type[Shop]] = _Shops()


def __getattr__(name: str) -> object:   # `from harness.shops import Shop, AsyncShop, ...` stays as it was
    lazy = {"Shop": "harness.shops.base", "ShopSettings": "harness.shops.settings",
            "SyncShop": "harness.shops.sync_shop", "AsyncShop": "harness.shops.async_shop"}
    if name in lazy:
        return getattr(importlib.import_module(lazy[name]), name)
    raise AttributeError(f"module 'harness.shops' has no attribute {name!r}")


__all__ = ["REGISTRY", "SHOPS", "SHOP_NAMES", "TRAITS", "AsyncShop", "Shop", "ShopSettings", "ShopTraits", "SyncShop",
           "adapter", "traits_of"]
