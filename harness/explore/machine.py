"""A Hypothesis state machine that drives a live shop step by step.

Each example starts a fresh Infrastructure and shop (real processes, broker, Toxiproxy) and tears
them down at the end, so examples never share state. Rules place a few orders, inject a fault
from the shop's menu (harness.explore.strategies.MENUS), heal one, scale the baristas, or wait.
Invariants are read from the live shop after every step: nothing served that was never placed,
and (with idempotency) no order served twice. The teardown heals everything, waits for the shop
to serve every accepted order, and checks that nothing was lost and every fault healed.

When an example fails, its timeline (faults with their times, orders per second) is written as
an experiment TOML (`timeline.toml` in its directory); the orders there are an approximation (the
same count per second, spread evenly), while the faults keep their times. Subclass with
`machine_for(system, config, root)`.
"""
from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any, ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from cafe.brewing import BrewTime
from harness.errors import NotApplicable
from harness.experiment.model import Experiment, FaultSpec
from harness.explore.search import to_toml
from harness.explore.strategies import CONFIGS, MENUS, Menu, experiment_for
from harness.infra.stack import Infrastructure
from harness.load.batch import place_orders, wait_until
from harness.nemesis import FAULT_KINDS, FaultWindow
from harness.shops import SHOP_NAMES, SHOPS, Shop, ShopSettings

DRAIN_S = 30.0


class ShopMachine(RuleBasedStateMachine):
    system: ClassVar[str] = SHOP_NAMES[0]   # machine_for sets the shop
    config: ClassVar[str] = "strong"
    root: ClassVar[Path] = Path(".")
    counter: ClassVar[itertools.count[int]] = itertools.count(1)

    def __init__(self) -> None:
        super().__init__()
        self.dir = self.root / f"machine-{next(self.counter):03d}"
        idempotent = CONFIGS[self.config]["idempotency"]
        settings = ShopSettings(baristas=2, brewers=2, brew=BrewTime("fixed", mean_ms=20), capacity=8,
                                prefetch=2, idempotency=idempotent)
        self.infra = Infrastructure(self.dir, broker=SHOPS[self.system].traits.needs_broker).__enter__()
        try:
            self.shop: Shop = SHOPS[self.system](self.infra, settings).__enter__()
        except BaseException:
            self.infra.__exit__(None, None, None)
            raise
        self.t0 = time.time()
        self.refs = itertools.count()
        self.accepted: set[str] = set()
        self.placed: dict[float, int] = {}
        self.active: dict[str, tuple[Any, FaultWindow]] = {}
        self.done: list[FaultWindow] = []

    # rules --------------------------------------------------------------------------------------------
    @rule(n=st.integers(1, 6))
    def place(self, n: int) -> None:
        orders = [{"product": "Latte", "size": "small", "ref": str(next(self.refs)), "customer": "c"} for _ in range(n)]
        answers = place_orders(self.shop.entry_url, orders, concurrency=4, timeout_s=5,
                               keyed=CONFIGS[self.config]["idempotency_key"])
        second = float(int(time.time() - self.t0))
        self.placed[second] = self.placed.get(second, 0) + n
        self.accepted |= {o["ref"] for o, (status, _) in zip(orders, answers, strict=True)
                          if status == self.shop.accepted_status}

    @rule(menu=st.sampled_from(tuple(m for name in SHOP_NAMES for m in MENUS[name])))
    def inject(self, menu: Menu) -> None:
        key = f"{menu.kind} {menu.target}"
        if menu not in MENUS[self.system] or key in self.active:
            return
        window = FaultWindow(f"{menu.kind}-{len(self.done) + len(self.active) + 1}", menu.kind, menu.target,
                             time.time() - self.t0, 1.0, params=dict(menu.params[0]))
        fault = FAULT_KINDS[menu.kind](window)
        try:
            fault.setup(self.shop)
        except NotApplicable:
            return
        fault.start(self.shop)
        self.active[key] = (fault, window)

    @precondition(lambda self: bool(self.active))
    @rule(data=st.data())
    def heal(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.active)))
        self._heal(key)

    @rule(n=st.integers(1, 3))
    def scale(self, n: int) -> None:
        self.shop.scale("barista", n)

    @rule(seconds=st.sampled_from((0.2, 0.5, 1.0)))
    def wait(self, seconds: float) -> None:
        time.sleep(seconds)

    # invariants ---------------------------------------------------------------------------------------
    def _served_refs(self) -> list[str] | None:
        try:
            return [str(r.get("ref")) for r in self.shop.served()]
        except Exception:   # the reading service is down in a fault: nothing to judge now
            return None

    @invariant()
    def nothing_unexpected_and_no_double_serving(self) -> None:
        served = self._served_refs()
        if served is None:
            return
        placed = {str(i) for i in range(self._placed_count())}
        assert set(served) <= placed, f"served but never placed: {sorted(set(served) - placed)[:5]}"
        if CONFIGS[self.config]["idempotency"]:
            twice = sorted({r for r in served if served.count(r) > 1})
            assert not twice, f"served twice: {twice[:5]}"

    def _placed_count(self) -> int:
        return sum(self.placed.values())

    def _heal(self, key: str) -> None:
        fault, window = self.active.pop(key)
        fault.stop(self.shop)
        self.done.append(FaultWindow(window.name, window.kind, window.target, window.start_s,
                                     max(1.0, time.time() - self.t0 - window.start_s), params=window.params))

    def teardown(self) -> None:
        failed = True
        try:
            for key in list(self.active):
                self._heal(key)
            served: set[str] = set()

            def all_served() -> bool:
                nonlocal served
                served = set(self._served_refs() or [])
                return self.accepted <= served

            wait_until(all_served, DRAIN_S)
            assert self.accepted <= served, f"accepted, never served: {sorted(self.accepted - served)[:5]}"
            report = self.shop.heal_report()
            assert report["healed"], f"not healed: {report}"
            failed = False
        finally:
            if failed:
                self._write_timeline()
            try:
                self.shop.__exit__(None, None, None)
            finally:
                self.infra.__exit__(None, None, None)

    def _write_timeline(self) -> None:
        seconds = max([*self.placed, 0.0]) + 1
        faults = [FaultSpec(kind=w.kind, target=w.target, start_s=round(w.start_s, 1), duration_s=round(w.duration_s, 1),
                            params=dict(w.params)) for w in self.done]
        steps = [(float(s), float(n)) for s, n in sorted(self.placed.items())]
        data = experiment_for(self.system, self.config, [], 1, seed=7).model_dump(mode="json", exclude_none=True)
        data["load"].update(shape="step", process="uniform", steps=steps or [(0.0, 1.0)])
        data["run"]["duration_s"] = seconds
        data["faults"] = [f.model_dump(exclude_none=True) for f in faults]
        data["run"]["drain_s"] = max(data["run"]["drain_s"], max((f.start_s + f.duration_s for f in faults), default=0))
        (self.dir / "timeline.toml").write_text(to_toml(Experiment.model_validate(data)))


def machine_for(system: str, config: str, root: Path) -> type[ShopMachine]:
    """A ShopMachine subclass for one shop and configuration, writing under `root`."""
    root.mkdir(parents=True, exist_ok=True)
    return type(f"ShopMachine_{system}_{config}", (ShopMachine,),
                {"system": system, "config": config, "root": root, "counter": itertools.count(1)})
