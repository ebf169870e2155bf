"""Per-order view of a history: what was sent, how it completed, what the shops did with it.

Orders are keyed by `ref` (a string). Shop records without a ref (a poison or foreign order)
are keyed "order:<order_id>", so they can never collide with a ref from the schedule.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from harness.history import FAIL, INFO, OK, Record

COMPLETIONS = (OK, FAIL, INFO)


@dataclass(frozen=True)
class Order:
    """One invoked order. `outcome` is ok/fail/info; an invoke with no completion is info with
    `completed` None."""

    ref: str
    intended: float
    sent: float | None
    outcome: str
    completed: float | None


def shop_key(record: Record) -> str:
    """The ledger key of a brewed/served record: its ref, else "order:<order_id>"."""
    ref = record.get("ref")
    return str(ref) if ref is not None else f"order:{record.get('order_id')}"


def invoked_orders(history: Sequence[Record]) -> dict[str, Order]:
    """Every invoked ref (first invoke wins) with its first completion, in invoke order."""
    completions: dict[str, Record] = {}
    for record in history:
        if record.get("type") in COMPLETIONS:
            completions.setdefault(str(record["ref"]), record)
    orders: dict[str, Order] = {}
    for record in history:
        if record.get("type") != "invoke":
            continue
        ref = str(record["ref"])
        if ref in orders:
            continue
        done = completions.get(ref)
        sent = record.get("sent")
        orders[ref] = Order(
            ref, float(record["intended"]), None if sent is None else float(sent),
            done["type"] if done else INFO, None if done is None else float(done["time"]),
        )
    return orders


def counts_by_key(history: Iterable[Record], kind: str) -> Counter[str]:
    """How many `kind` ("brewed" or "served") records each key has."""
    return Counter(shop_key(r) for r in history if r.get("type") == kind)


def first_time_by_key(history: Iterable[Record], kind: str) -> dict[str, float]:
    """The earliest time of a `kind` record for each key."""
    first: dict[str, float] = {}
    for record in history:
        if record.get("type") == kind:
            key, time = shop_key(record), float(record["time"])
            first[key] = min(time, first.get(key, time))
    return first


def ref_sort_key(ref: str) -> tuple[int, int, str]:
    """Numeric refs first, in numeric order; anything else after, alphabetically."""
    return (0, int(ref), "") if ref.isdigit() else (1, 0, ref)


def sample(refs: Iterable[str], limit: int = 20) -> list[str]:
    return sorted(refs, key=ref_sort_key)[:limit]
