"""The closed-loop batch client of the demo: a batch of orders through a shop, every coffee accounted for.

Not the experiment harness (that is open-loop and recorded, harness/load/driver.py); this is a quick,
honest smoke run: place N orders with bounded concurrency, wait until the shop served them, count.
It drives anything shaped like a shop (`BatchTarget`); it imports no adapter.
"""
from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from cafe.menu import load_menu


class BatchTarget(Protocol):
    """What the batch needs of a shop (harness.shops.base.Shop has it): where to order, which
    status means accepted, and its read APIs (rows with "order_id")."""

    @property
    def kind(self) -> str: ...
    @property
    def accepted_status(self) -> int: ...
    @property
    def entry_url(self) -> str: ...
    def served(self) -> list[dict[str, Any]]: ...
    def brewed(self) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class BatchResult:
    shop: str
    placed: int
    accepted: int
    statuses: dict[int, int]
    brewed: int
    served: int
    served_orders: int        # distinct orders served
    duplicate_servings: int
    seconds: float            # first order sent -> last order served (or timeout)

    @property
    def throughput(self) -> float:
        return self.served_orders / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "throughput_per_s": round(self.throughput, 1)}


def sample_orders(n: int, seed: int = 1) -> list[dict[str, str]]:
    """n valid orders from the menu, deterministic for a seed; `ref` is the order's index."""
    menu = load_menu()
    rng = random.Random(seed)
    orders = []
    for i in range(n):
        product = rng.choice(sorted(menu.products))
        orders.append({"product": product, "size": rng.choice(menu.sizes_of(product)), "ref": str(i)})
    return orders


async def _place(entry_url: str, orders: list[dict[str, str]], concurrency: int,
                 timeout_s: float, keyed: bool = False) -> list[tuple[int, Any]]:
    limit = asyncio.Semaphore(concurrency)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:
        async def one(order: dict[str, str]) -> tuple[int, Any]:
            async with limit:
                try:
                    headers = {"Idempotency-Key": f"order-{order.get('ref')}"} if keyed else None
                    async with session.post(f"{entry_url}/orders", json=order, headers=headers) as resp:
                        return resp.status, await resp.json(content_type=None)
                except (TimeoutError, aiohttp.ClientError) as exc:
                    return 0, repr(exc)
        return await asyncio.gather(*(one(o) for o in orders))


def place_orders(entry_url: str, orders: list[dict[str, str]], *, concurrency: int = 32,
                 timeout_s: float = 30.0, keyed: bool = False) -> list[tuple[int, Any]]:
    """POST every order to `{entry_url}/orders`; (HTTP status or 0 on a transport error, body) each.
    `keyed`: each carries `Idempotency-Key: order-<ref>`."""
    return asyncio.run(_place(entry_url, orders, concurrency, timeout_s, keyed))


def wait_until(predicate: Callable[[], bool], timeout_s: float, interval_s: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return predicate()


def run_batch(shop: BatchTarget, n: int, *, seed: int = 1, concurrency: int = 32, drain_s: float = 60.0) -> BatchResult:
    """Place n orders through `shop` and wait (up to drain_s) until every order this batch had
    accepted is served (orders of earlier batches do not count towards that)."""
    orders = sample_orders(n, seed)
    start = time.monotonic()
    answers = place_orders(shop.entry_url, orders, concurrency=concurrency)
    statuses: dict[int, int] = {}
    for status, _ in answers:
        statuses[status] = statuses.get(status, 0) + 1
    accepted = statuses.get(shop.accepted_status, 0)
    batch = {body["id"] for status, body in answers if status == shop.accepted_status}
    served: list[dict[str, Any]] = []

    def all_served() -> bool:
        nonlocal served
        served = shop.served()
        return batch <= {row["order_id"] for row in served}

    wait_until(all_served, drain_s)
    seconds = time.monotonic() - start
    distinct = len({row["order_id"] for row in served})
    return BatchResult(shop.kind, n, accepted, statuses, len(shop.brewed()), len(served), distinct,
                       len(served) - distinct, seconds)
