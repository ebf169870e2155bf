"""Runs fault windows on schedule in a background thread and heals whatever is still active at the end."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from harness.errors import NotApplicable
from harness.nemesis.base import FAULT_KINDS, FaultWindow, work_held
from harness.shops.base import Shop

log = logging.getLogger("harness.nemesis")
WORK_POLL_S = 0.005   # how often a fault waiting for work looks at its target
SLIP_AFTER_S = 1.0    # an event this late (the action before it overran) slides the rest of the schedule
SETTLE_GRACE_S = 0.5  # after a heal with a side effect: time for the closed connections to be noticed ...
SETTLE_LIMIT_S = 30.0  # ... then at most this long for the shop to settle (Shop.settled)
Record = dict[str, Any]


class Nemesis:
    """Starts each window's fault at t0 + start_s and stops it at t0 + end_s (t0: wall-clock epoch),
    both later by `slip_s` once a heal overran: the windows after it keep their length, and their
    start records carry `slip_s`.

    Every transition is recorded through `record` as {"type": "fault", "phase": "start"|"end"|
    "not-applicable"|"error", "name", "kind", "target", "time"}, with the time at which the
    transition took effect; a "start" record has `hit`, what the target held just before
    (harness.nemesis.base.work_held), and `began`, when applying it began; an "end" record has
    `details` when the fault reports what it did. A slow kind (FaultKind.slow_apply: broker-alarm,
    raised and cleared by rabbitmqctl calls that wait for the node, 0.4-5 s each) holds its declared
    length from when it took effect: the schedule after its start slides by the time applying took
    (`applied_after_s` in its start record), and its end record's time is when the heal began, the
    last moment it certainly held (`healed_after_s`: how long healing took). A kind whose heal has
    a side effect (FaultKind.heal_effect) gets a "settled" record once the shop has settled after it (`after_s`
    since the end). `heal()` stops the thread and heals every active fault; call it in a `finally`
    so that a failed or interrupted run leaves no fault behind.
    """

    def __init__(self, windows: list[FaultWindow], shop: Shop, record: Callable[[Record], None], t0: float) -> None:
        self.shop, self.record, self.t0 = shop, record, t0
        self.faults: list[tuple[FaultWindow, Any]] = []
        self.not_applicable: list[dict[str, str]] = []
        self.active: dict[str, tuple[FaultWindow, Any]] = {}
        self._lock = threading.Lock()
        self._halt = threading.Event()
        self.slip_s = 0.0   # how far the schedule slid behind the declared one (heals that overran)
        self._settling: list[threading.Thread] = []
        self._thread = threading.Thread(target=self._run, name="nemesis", daemon=True)
        for window in windows:
            fault = FAULT_KINDS[window.kind](window)
            try:
                fault.setup(shop)
            except NotApplicable as exc:
                self.not_applicable.append({"name": window.name, "kind": window.kind, "target": window.target,
                                            "reason": str(exc)})
                self._note(window, "not-applicable", reason=str(exc))
                continue
            self.faults.append((window, fault))

    def begin(self, t0: float, record: Callable[[Record], None]) -> None:
        """Set the run's t0 and where records go from now on (a nemesis set up before the run
        record was written, to learn what applies, is handed the history here); call before `start`."""
        self.t0, self.record = t0, record

    def _note(self, window: FaultWindow, phase: str, at: float | None = None, **extra: Any) -> None:
        self.record({"type": "fault", "phase": phase, "name": window.name, "kind": window.kind,
                     "target": window.target, "replica": window.replica,
                     "time": time.time() if at is None else at, **extra})

    def start(self) -> "Nemesis":
        self._thread.start()
        return self

    def done(self) -> bool:
        """True once every window was started and stopped (or `heal` halted the schedule): a heal
        that overran its window (a cluster waiting for a member) delays the windows after it."""
        return self._thread.ident is not None and not self._thread.is_alive()

    def _run(self) -> None:
        events = sorted([(w.start_s, 1, w.name, "start") for w, _ in self.faults]
                        + [(w.end_s, 0, w.name, "stop") for w, _ in self.faults])
        by_name = {w.name: (w, f) for w, f in self.faults}
        healed_last = False
        for at_s, _, name, action in events:
            due = self.t0 + at_s + self.slip_s
            late = time.time() - due
            # a heal that overran (a cluster restarting a member: 15-25 s) slides the rest of the
            # schedule, so that the windows after it keep their declared length instead of starting
            # late and ending on time; a start that waited for work (wait_for_work_s) does not
            if healed_last and late > SLIP_AFTER_S:
                self.slip_s = round(self.slip_s + late, 3)
                due += late
            if self._halt.wait(max(0.0, due - time.time())):
                return
            window, fault = by_name[name]
            with self._lock:
                if action == "start":
                    self._apply(window, fault, "start")
                elif name in self.active:
                    self._apply(window, fault, "stop")
            healed_last = action == "stop"

    def _hit(self, window: FaultWindow) -> dict[str, Any]:
        """What the target holds at the fault's start; with `wait_for_work_s`, poll until it holds
        something or that time has passed (the fault then starts anyway)."""
        deadline = time.monotonic() + window.wait_for_work_s
        while True:
            hit = work_held(self.shop, window)
            if (hit.get("held") or 0) > 0 or time.monotonic() >= deadline or self._halt.is_set():
                return hit
            time.sleep(WORK_POLL_S)

    def _apply(self, window: FaultWindow, fault: Any, action: str) -> None:
        hit = self._hit(window) if action == "start" else None
        began = time.time()
        try:
            getattr(fault, action)(self.shop)
        except Exception as exc:  # a fault that fails is recorded, the run goes on
            log.exception("fault %s: %s failed", window.name, action)
            self._note(window, "error", action=action, error=f"{exc.__class__.__name__}: {exc}")
            if action == "start":
                return
        spec = getattr(fault, "spec", None)
        slow = getattr(spec, "slow_apply", False)
        took = round(time.time() - began, 3)
        if action == "start":
            self.active[window.name] = (window, fault)
            condition = {"from_start": True} if getattr(spec, "from_start", False) else {}
            slid = {"slip_s": self.slip_s} if self.slip_s else {}
            applied = {"applied_after_s": took} if slow else {}
            self._note(window, "start", hit=hit, began=began, **condition, **slid, **applied)
            if slow:   # the window's length counts from here: its end and what follows slide
                self.slip_s = round(self.slip_s + took, 3)
        else:
            self.active.pop(window.name, None)
            report = getattr(fault, "report", None)   # what the fault did, for kinds that count it
            healed = {"at": began, "healed_after_s": took} if slow else {}
            self._note(window, "end", **healed, **({"details": report()} if report else {}))
            effect = getattr(getattr(fault, "spec", None), "heal_effect", "")
            if effect:   # the heal disturbed the shop itself: record when it has settled, in the background
                settle = threading.Thread(target=self._settle, args=(window, effect, time.time()),
                                          name=f"settle-{window.name}", daemon=True)
                self._settling.append(settle)
                settle.start()

    def _abandon(self, window: FaultWindow, fault: Any) -> None:
        try:
            fault.abandon(self.shop)
        except Exception as exc:   # teardown and the infrastructure's cleanup come next all the same
            log.exception("fault %s: abandon failed", window.name)
            self._note(window, "error", action="abandon", error=f"{exc.__class__.__name__}: {exc}")
        self.active.pop(window.name, None)
        self._note(window, "end", abandoned=True)

    def _settle(self, window: FaultWindow, effect: str, ended: float) -> None:
        """Record {"phase": "settled", "effect", "after_s", "settled"} once the shop has settled after
        the heal of `window` (or SETTLE_LIMIT_S passed: settled False); what fails in between is
        the heal's doing (the window's aftermath), not a later window's."""
        time.sleep(SETTLE_GRACE_S)
        deadline = ended + SETTLE_LIMIT_S
        settled = False
        while time.time() < deadline:
            try:
                settled = self.shop.settled()
            except Exception:   # a replica going away: not settled yet
                settled = False
            if settled:
                break
            time.sleep(0.1)
        self._note(window, "settled", effect=effect, after_s=round(time.time() - ended, 3), settled=settled)

    def heal(self, *, abandon: bool = False) -> None:
        """Stop scheduling, heal every active fault (recording its end), tear everything down.
        `abandon`: the run was interrupted or failed and its infrastructure is torn down next; a
        fault that offers `abandon()` then undoes what it did (an iptables rule removed) without
        waiting for its target to recover (a cluster's heal can take 15 s or more), recorded as an
        end with `abandoned`."""
        self._halt.set()
        if self._thread.is_alive():
            self._thread.join(timeout=120)
        with self._lock:
            for window, fault in list(self.active.values()):
                if abandon and hasattr(fault, "abandon"):
                    self._abandon(window, fault)
                else:
                    self._apply(window, fault, "stop")
            for _, fault in self.faults:
                try:
                    fault.teardown(self.shop)
                except Exception:
                    log.exception("teardown of %s failed", fault)
        for settle in self._settling:   # every aftermath recorded before the history is read
            settle.join(timeout=SETTLE_LIMIT_S + 5)
