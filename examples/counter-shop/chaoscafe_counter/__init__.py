"""The counter shop, an example chaoscafe plugin (docs/shops.md): one process that takes an order,
brews it with its own hands and answers with the coffee, the simplest architecture there is.

This module is what the entry point names, so it stays data (what the harness reads without
starting anything): the shop's traits and its ShopEntry. The adapter is `chaoscafe_counter.adapter`,
imported only when a run needs it; the service program is `programs/counter.py`.
"""
from __future__ import annotations

from harness.shops.traits import SHARED_QUEUE, CatchUp, Flow, Queueing, ShopEntry, ShopTraits

COUNTER = ShopTraits(
    needs_broker=False,
    has_event_log=False,
    accepts_subscribers=False,
    hooks={},                    # serves no fault hook (cafe/hooks.py): such faults are not applicable
    catch_up={"pages": CatchUp("counter-1", "/orders", paged=True,
                               described="page through the counter's GET /orders")},
    serves_every_brew=False,     # served = the answer: a customer who gave up never gets the coffee
    queueing=Queueing(SHARED_QUEUE, handover="HTTP answer and SQLite commit",
                      note="one process takes and brews: the customers wait in one line for its hands"),
    flow=Flow(("Customer", "Counter"), front="Counter", served="Counter", taken_before_brewing=False),
    colour="#7570b3",
    backlog_counts="orders being brewed or waiting at the counter",
    reads=(("/orders", "counter-1"), ("/brews", "counter-1")),
    explore_faults=(
        ("latency", "customer->orders", ({"latency": 1500},)),
        ("kill", "barista", ({},)),
        ("pause", "barista", ({},)),
    ),
)

COUNTER_SHOP = ShopEntry("counter", "chaoscafe_counter.adapter:CounterShop", COUNTER)
