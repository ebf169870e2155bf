"""Shop adapters: the same operations for every architecture (see base.Shop), and the registry of shops.

The registry is metadata only: importing `harness.shops` loads no adapter and no infrastructure, so the
pure core (the experiment schema, the checkers, the report) can name the shops. `adapter(name)` imports
an adapter class on first use; `SHOPS[name]` is the same, as a read-only mapping. `TRAITS[name]` (or
`traits_of(name)`) is what the shop is (needs a broker, keeps an event log, serves which hooks, its
report lanes, ...: harness/shops/traits.py), the same object as its adapter's `traits`: the harness asks
these instead of branching on a shop's name.

Shops are plugins: each is a `ShopEntry` (name, adapter "module:Class", traits) named by an entry
point of the group `chaoscafe.shops` (ENTRY_POINTS), found when this package is first imported.
The built-in shops register the same way (pyproject.toml) and are there even when the installed
metadata is stale (BUILT_IN); plugins follow them in name order. A plugin that cannot be loaded,
is not a ShopEntry, is named otherwise than its entry point, or takes a built-in's name is left
out, and why is in PROBLEMS (the CLI prints each as one line). docs/shops.md: how to write one.

    base        Shop (the adapter protocol), ShopSettings, EDGES, http_json
    sync_shop   SyncShop: cashier -> barista over HTTP, each edge through Toxiproxy
    async_shop  AsyncShop: order service -> RabbitMQ -> baristas -> waiter
    resilient_shop  ResilientSyncShop: the sync call with deadlines, retries, breakers, a bulkhead and shedding
    traits      ShopTraits and ShopEntry: what each shop is, as data (pure)
"""
from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Iterator, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING

from harness.shops.traits import ASYNC_SHOP, SYNC_RESILIENT_SHOP, SYNC_SHOP, ShopEntry, ShopTraits

if TYPE_CHECKING:
    from harness.shops.async_shop import AsyncShop
    from harness.shops.base import Shop
    from harness.shops.settings import ShopSettings
    from harness.shops.sync_shop import SyncShop

ENTRY_POINTS = "chaoscafe.shops"
BUILT_IN: tuple[ShopEntry, ...] = (SYNC_SHOP, ASYNC_SHOP, SYNC_RESILIENT_SHOP)
RESERVED = ("both", "all")   # words that name every shop on the command line and in [expect.*]
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")


def discover(found: Iterable[EntryPoint] | None = None) -> tuple[dict[str, ShopEntry], list[str]]:
    """({name: ShopEntry}, problems): the built-in shops, then every loadable plugin of
    `found` (default: the installed entry points of ENTRY_POINTS) in name order; each plugin
    left out has one line in problems saying which entry point and why."""
    shops = {entry.name: entry for entry in BUILT_IN}
    problems: list[str] = []
    points = entry_points(group=ENTRY_POINTS) if found is None else found
    for point in sorted(points, key=lambda p: p.name):
        where = f"shop plugin {point.name!r} ({point.value})"
        try:
            entry = point.load()
        except Exception as exc:   # a broken plugin must not break the harness for the other shops
            problems.append(f"{where} not loaded: {exc.__class__.__name__}: {exc}")
            continue
        if point.name in shops and shops[point.name] is entry:
            continue   # a built-in, registered by its entry point too
        if not isinstance(entry, ShopEntry):
            problems.append(f"{where} not loaded: it names a {type(entry).__name__}, not a "
                            "harness.shops.traits.ShopEntry")
        elif entry.name != point.name:
            problems.append(f"{where} not loaded: its ShopEntry is named {entry.name!r}")
        elif point.name in shops or point.name in RESERVED:
            problems.append(f"{where} not loaded: the name {point.name!r} is taken")
        elif not _NAME.match(point.name):
            problems.append(f"{where} not loaded: a shop's name is lower-case letters, digits and '-'")
        elif ":" not in entry.adapter:
            problems.append(f"{where} not loaded: adapter {entry.adapter!r} is not 'module:Class'")
        else:
            shops[point.name] = entry
    return shops, problems


ENTRIES, PROBLEMS = discover()
#: shop name -> "module:Class" of its adapter, in report order (built-ins first)
REGISTRY: dict[str, str] = {name: entry.adapter for name, entry in ENTRIES.items()}
SHOP_NAMES: tuple[str, ...] = tuple(REGISTRY)
#: shop name -> its traits (the adapter's `traits` is the same object)
TRAITS: dict[str, ShopTraits] = {name: entry.traits for name, entry in ENTRIES.items()}


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


__all__ = ["BUILT_IN", "ENTRIES", "ENTRY_POINTS", "PROBLEMS", "REGISTRY", "SHOPS", "SHOP_NAMES", "TRAITS", "AsyncShop",
           "Shop", "ShopEntry", "ShopSettings", "ShopTraits", "SyncShop", "adapter", "discover", "traits_of"]
