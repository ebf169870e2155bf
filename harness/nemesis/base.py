"""The fault protocol (Jepsen's nemesis): a fault is set up, started at its window's start, stopped
(healed) at its end, and torn down; kinds plug in through `register` without touching the runner.

Contract: `stop` heals completely and is idempotent (the runner calls it at the window's end and
again, to be sure, at the end of the run, also after Ctrl-C). A fault that cannot apply to a shop
raises `NotApplicable` from `setup`; the run reports it instead of silently skipping it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from harness.shops.base import Shop


class NotApplicable(Exception):
    """This fault has no meaning for this shop (e.g. the broker in the sync shop)."""


@dataclass(frozen=True)
class FaultWindow:
    """One scheduled fault: `kind` on `target` from start_s for duration_s (seconds after t0)."""

    name: str
    kind: str
    target: str
    start_s: float
    duration_s: float
    replica: int | None = None           # one replica (1-based) or None for all
    params: dict[str, Any] = field(default_factory=dict)
    wait_for_work_s: float = 0.0         # start at the first moment within this after start_s that the target holds work

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


class Fault(Protocol):
    kind: ClassVar[str]
    description: ClassVar[str]
    targets: ClassVar[tuple[str, ...]]       # what `target` may name for this kind

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None: ...   # ValueError naming a bad parameter

    def setup(self, shop: Shop) -> None: ...
    def start(self, shop: Shop) -> None: ...
    def stop(self, shop: Shop) -> None: ...
    def teardown(self, shop: Shop) -> None: ...


FAULT_KINDS: dict[str, Any] = {}  # kind -> fault class (see Fault)


def work_held(shop: Shop, window: FaultWindow) -> dict[str, Any]:
    """What the fault's target holds right now, recorded as the fault's `hit` when it starts (a
    fault that hit nothing proves nothing): for a barista target, the orders its replicas hold
    (async: unacked deliveries; sync: calls in flight), per replica; for any other target, the
    orders in the shop (its backlog: queued, held, in flight). `held` is None when the shop
    could not say (e.g. the service did not answer), with the reason in `error`."""
    try:
        if window.target == "barista":
            held = shop.held()
            mine = {name: n for name, n in held.items()
                    if window.replica is None or name == f"barista-{window.replica}"}
            return {"held": sum(mine.values()), "replicas": mine, "of": "orders held by the target"}
        total = shop.backlog().get("total")
        return {"held": None if total is None else int(total), "of": "orders in the shop"}
    except Exception as exc:   # a stopped or paused service: no reading
        return {"held": None, "error": f"{exc.__class__.__name__}: {exc}"[:200]}


def register(cls: type) -> type:
    """Class decorator adding a fault kind to FAULT_KINDS under `cls.kind`."""
    FAULT_KINDS[cls.kind] = cls  # type: ignore[attr-defined]
    return cls


def no_params(kind: str, params: dict[str, Any]) -> None:
    if params:
        raise ValueError(f"{next(iter(params))}: {kind!r} takes no parameters")


class ProcessFault:
    """Base of faults on a shop's service processes (`target` names a role, see Shop.service_for)."""

    kind: ClassVar[str] = ""
    description: ClassVar[str] = ""
    targets: ClassVar[tuple[str, ...]] = ("barista", "orders", "cashier", "waiter")

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        no_params(cls.kind, params)

    def __init__(self, window: FaultWindow) -> None:
        self.window = window
        self.service = ""

    def setup(self, shop: Shop) -> None:
        self.service = shop.service_for(self.window.target)   # raises NotApplicable

    def teardown(self, shop: Shop) -> None:
        pass
