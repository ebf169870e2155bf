"""The shop registry and each shop's traits: declared once, the same object on the adapter, and
consistent with what the harness asks of them (hooks the faults arm, loyalty sources, report lanes)."""
from __future__ import annotations

from harness.cli import SHOP_CHOICES, parser
from harness.nemesis import FAULT_KINDS
from harness.nemesis.delivery import HookFault
from harness.newcomers.services import LOYALTY_SOURCES
from harness.shops import REGISTRY, SHOP_NAMES, TRAITS, adapter, traits_of
from harness.shops.traits import DISARM, PER_REPLICA, RESTART, SHARED_QUEUE


def test_every_registered_shop_declares_its_traits_once() -> None:
    assert tuple(TRAITS) == SHOP_NAMES == tuple(REGISTRY)
    for name in SHOP_NAMES:
        shop = adapter(name)
        assert shop.kind == name and shop.traits is TRAITS[name] is traits_of(name)


def test_traits_agree_with_what_the_harness_asks() -> None:
    hooks = {cls.hook for cls in FAULT_KINDS.values() if isinstance(cls, type) and issubclass(cls, HookFault)}
    for name, traits in TRAITS.items():
        assert set(traits.hooks) <= hooks and set(traits.hooks.values()) <= {DISARM, RESTART}, name
        assert set(traits.catch_up) <= set(LOYALTY_SOURCES), name
        from_log = [s for s, c in traits.catch_up.items() if c.replica is None]
        assert not from_log or (traits.has_event_log and traits.needs_broker), name
        assert traits.queueing.discipline in (SHARED_QUEUE, PER_REPLICA), name
        flow = traits.flow
        assert flow.lanes[0] == "Customer" and {flow.front, flow.served} <= set(flow.lanes), name
        assert traits.colour.startswith("#") and traits.reads and traits.explore_faults, name


def test_the_command_line_offers_the_registered_shops() -> None:
    assert SHOP_CHOICES == [*SHOP_NAMES, "all", "both"]
    args = parser().parse_args(["shop", "up", SHOP_NAMES[-1]])
    assert args.kind == SHOP_NAMES[-1]
    assert parser().parse_args(["run"]).system == "all"
    from harness.cli import _shops
    assert _shops("all") == _shops("both") == list(SHOP_NAMES) and _shops("sync") == ["sync"]


def test_shops_are_found_through_entry_points_and_a_bad_plugin_is_left_out_saying_why() -> None:
    from importlib.metadata import EntryPoint

    from harness.shops import BUILT_IN, ENTRY_POINTS, discover

    def point(name: str, value: str) -> EntryPoint:
        return EntryPoint(name, value, ENTRY_POINTS)

    shops, problems = discover([point("sync", "harness.shops.traits:SYNC_SHOP"),        # a built-in, again
                                point("async", "harness.shops.traits:ASYNC_SHOP")])
    assert list(shops) == ["sync", "async", "sync-resilient"] and problems == []
    shops, problems = discover([])                      # stale metadata: the built-ins are there all the same
    assert tuple(shops.values()) == BUILT_IN and problems == []
    shops, problems = discover([point("gone", "no_such_module_here:SHOP"),
                                point("traits", "harness.shops.traits:SYNC"),
                                point("other", "harness.shops.traits:SYNC_SHOP")])
    assert list(shops) == ["sync", "async", "sync-resilient"]
    assert problems == [
        "shop plugin 'gone' (no_such_module_here:SHOP) not loaded: ModuleNotFoundError: "
        "No module named 'no_such_module_here'",
        "shop plugin 'other' (harness.shops.traits:SYNC_SHOP) not loaded: its ShopEntry is named 'sync'",
        "shop plugin 'traits' (harness.shops.traits:SYNC) not loaded: it names a ShopTraits, not a "
        "harness.shops.traits.ShopEntry"]
