"""The fault protocol (Jepsen's nemesis): a fault is set up, started at its window's start, stopped
(healed) at its end, and torn down; kinds plug in through `register` without touching the runner.

Contract: `stop` heals completely and is idempotent (the runner calls it at the window's end and
again, to be sure, at the end of the run, also after Ctrl-C). A fault that cannot apply to a shop
raises `NotApplicable` from `setup`; the run reports it instead of silently skipping it.
"""
from __future__ import annotations

from typing import Any, ClassVar, Protocol

from harness.experiment.faults import KINDS, FaultKind, FaultWindow
from harness.shops.base import Shop


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


class Kind:
    """Base of fault classes: `kind` names its FaultKind (harness.experiment.faults.KINDS), which
    `register` copies in as `spec`, `description` and `targets`; `check_params` is the spec's."""

    kind: ClassVar[str] = ""
    spec: ClassVar[FaultKind]
    description: ClassVar[str] = ""
    targets: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        cls.spec.check_params(params)


def register(cls: type[Kind]) -> type[Kind]:
    """Class decorator adding a fault class to FAULT_KINDS under `cls.kind`, with its metadata from
    KINDS; TypeError if the kind has no metadata (declare it in harness/experiment/faults.py)."""
    spec = KINDS.get(cls.kind)
    if spec is None:
        raise TypeError(f"{cls.__name__}: fault kind {cls.kind!r} is not declared in harness.experiment.faults.KINDS")
    cls.spec, cls.description, cls.targets = spec, spec.description, spec.targets
    FAULT_KINDS[cls.kind] = cls
    return cls


class ProcessFault(Kind):
    """Base of faults on a shop's service processes (`target` names a role, see Shop.service_for)."""

    def __init__(self, window: FaultWindow) -> None:
        self.window = window
        self.service = ""

    def setup(self, shop: Shop) -> None:
        self.service = shop.service_for(self.window.target)   # raises NotApplicable

    def teardown(self, shop: Shop) -> None:
        pass
