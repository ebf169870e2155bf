"""Fault schedules: validation rules, and the runner's start / stop / heal-at-end logic.

The runner is tested with a fault kind defined here that only records calls: the logic under test
is the scheduling and healing, not a real fault (those are in tests/integration/test_faults.py).
"""
from __future__ import annotations

import time
from typing import Any, ClassVar

import pytest

from harness.experiment import ExperimentError, from_dict
from harness.experiment.faults import KINDS
from harness.nemesis import FAULT_KINDS, FaultWindow, Nemesis, NotApplicable
from harness.nemesis.network import TOXICS
from harness.shops.settings import EDGES

BASE: dict[str, Any] = {"title": "t", "claim": "c", "time_scale": "x", "run": {"duration_s": 30, "drain_s": 10},
                        "load": {"shape": "constant", "rate": 1}}


def experiment(*faults: dict[str, Any]) -> Any:
    return from_dict({**BASE, "faults": list(faults)}, "f.toml")


def fault(kind: str = "kill", target: str = "barista", start: float = 5, duration: float = 5, **extra: Any) -> dict:
    return {"kind": kind, "target": target, "start_s": start, "duration_s": duration, **extra}


def test_every_toxic_and_down_and_process_and_broker_kinds_are_registered() -> None:
    assert set(TOXICS) | {"down", "kill", "pause", "stop", "broker-crash", "broker-stop", "crash-before-ack",
                          "duplicate-publish", "silent", "join", "unbind", "queue-delete", "broker-alarm",
                          "clock-skew", "broker-node-kill", "broker-node-pause", "broker-node-stop",
                          "broker-partition"} == set(FAULT_KINDS)


@pytest.mark.parametrize("spec", [
    fault(), fault("pause", "orders"), fault("stop", "waiter"),
    fault("latency", "orders->barista", params={"latency": 50, "jitter": 5, "stream": "upstream"}),
    fault("down", "customer->orders"), fault("broker-crash", "broker"), fault("unbind", "barista.orders"),
    fault("queue-delete", "waiter.brewed"),
    fault("reset_peer", "barista->broker", replica=2, params={"timeout": 0, "toxicity": 1}),
    fault("crash-before-ack", "barista", params={"rate": 0.2, "seed": 3}), fault("silent", "barista"),
    fault("duplicate-publish", "orders", params={"rate": 1}), fault("join", "bell"),
    fault("broker-alarm", "broker"), fault("broker-alarm", "broker", params={"resource": "disk"}),
    fault("clock-skew", "waiter", start=0, params={"offset_s": -2.5, "drift": 1.001}),
])
def test_valid_faults(spec: dict) -> None:
    (window,) = experiment(spec).windows()
    assert window.kind == spec["kind"] and window.end_s == spec["start_s"] + spec["duration_s"]


@pytest.mark.parametrize(("spec", "words"), [
    (fault("kill", "broker"), "faults[0].target = 'broker': unknown target 'broker' for 'kill'"),
    (fault("latency", "barista"), "unknown target 'barista' for 'latency'"),
    (fault("broker-crash", "barista"), "unknown target 'barista' for 'broker-crash'"),
    (fault("latency", "orders->barista", params={"delay": 3}), "faults[0].params: delay: not a parameter"),
    (fault("latency", "orders->barista", params={"stream": "sideways"}), "stream: 'sideways'"),
    (fault("latency", "orders->barista", params={"latency": -1}), "latency: must be a number >= 0"),
    (fault("reset_peer", "orders->barista", params={"toxicity": 2}), "toxicity: must be <= 1"),
    (fault("kill", params={"signal": 9}), "'kill' takes no parameters"),
    (fault(start=35, duration=10), "ends at 45"),
    (fault(replica=0), "faults[0].replica"),
    (fault("crash-before-ack", "barista", params={"rate": 0}), "rate: must be a number in (0, 1], got 0"),
    (fault("crash-before-ack", "barista", params={"every": 3}), "every: not a parameter of 'crash-before-ack'"),
    (fault("duplicate-publish", "barista"), "unknown target 'barista' for 'duplicate-publish'"),
    (fault("silent", "barista", params={"rate": 1}), "'silent' takes no parameters"),
    (fault("join", "orders"), "unknown target 'orders' for 'join'"),
    (fault("unbind", "cafe.dead-letters"), "unknown target 'cafe.dead-letters' for 'unbind'"),
    (fault("unbind", "barista.orders", params={"routing_key": "#"}), "'unbind' takes no parameters"),
    (fault("broker-alarm", "broker", params={"resource": "cpu"}), "resource: 'cpu' is not one of ('memory', 'disk')"),
    (fault("broker-alarm", "broker", params={"level": 1}), "level: not a parameter of 'broker-alarm'"),
    (fault("broker-alarm", "barista"), "unknown target 'barista' for 'broker-alarm'"),
    (fault("clock-skew", "waiter", start=5), "a clock-skew is set when the shop starts"),
    (fault("clock-skew", "waiter", start=0, params={"drift": 3}), "drift: must be in [0.5, 2]"),
    (fault("clock-skew", "waiter", start=0, params={"offset_s": "soon"}), "offset_s: must be a number"),
    (fault("clock-skew", "broker", start=0), "unknown target 'broker' for 'clock-skew'"),
])
def test_invalid_faults_give_one_clean_line(spec: dict, words: str) -> None:
    with pytest.raises(ExperimentError) as info:
        experiment(spec)
    assert words in str(info.value)
    assert str(info.value).startswith("f.toml: ") and "\n" not in str(info.value)


def test_overlaps_are_allowed_except_same_kind_on_the_same_target() -> None:
    experiment(fault(start=5, duration=10), fault("pause", "barista", start=8, duration=2))     # different kind
    experiment(fault(start=5, duration=10), fault("kill", "orders", start=8, duration=2))       # different target
    experiment(fault(start=5, duration=3), fault(start=8, duration=3))                           # back to back
    experiment(fault(replica=1, start=5, duration=10), fault(replica=2, start=6, duration=2))   # other replica
    with pytest.raises(ExperimentError, match=r"faults\[1\] overlaps faults\[0\]"):
        experiment(fault(start=5, duration=10), fault(start=8, duration=2))


def test_edges_are_named_once_for_both_shops() -> None:
    assert {"customer->orders", "orders->barista", "barista->waiter"} <= set(EDGES)


class Recorder:
    """A fault kind that records what the runner asked of it (with the time)."""

    kind: ClassVar[str] = "record"
    description: ClassVar[str] = "records calls"
    targets: ClassVar[tuple[str, ...]] = ("barista",)
    calls: ClassVar[list[tuple[str, str, float]]] = []

    def __init__(self, window: FaultWindow) -> None:
        self.window = window

    def setup(self, shop: Any) -> None:
        if shop == "no-barista-here":
            raise NotApplicable("this shop has no barista")
        self.calls.append(("setup", self.window.name, time.time()))

    def start(self, shop: Any) -> None:
        if self.window.params.get("explode"):
            raise RuntimeError("boom")
        self.calls.append(("start", self.window.name, time.time()))

    def stop(self, shop: Any) -> None:
        self.calls.append(("stop", self.window.name, time.time()))

    def teardown(self, shop: Any) -> None:
        self.calls.append(("teardown", self.window.name, time.time()))


@pytest.fixture
def recorder() -> Any:
    FAULT_KINDS["record"] = Recorder
    Recorder.calls = []
    yield Recorder
    del FAULT_KINDS["record"]


def test_runner_starts_and_stops_windows_on_time_and_records_them(recorder: Any) -> None:
    records: list[dict] = []
    t0 = time.time() + 0.1
    windows = [FaultWindow("a", "record", "barista", 0.0, 0.3), FaultWindow("b", "record", "barista", 0.1, 0.1)]
    nemesis = Nemesis(windows, "shop", records.append, t0).start()
    time.sleep(0.6)
    nemesis.heal()
    order = [(c[0], c[1]) for c in recorder.calls]
    assert order[:2] == [("setup", "a"), ("setup", "b")]
    assert order[2:6] == [("start", "a"), ("start", "b"), ("stop", "b"), ("stop", "a")]
    starts = {c[1]: c[2] - t0 for c in recorder.calls if c[0] == "start"}
    assert starts["a"] == pytest.approx(0.0, abs=0.08) and starts["b"] == pytest.approx(0.1, abs=0.08)
    phases = [(r["phase"], r["name"]) for r in records]
    assert phases == [("start", "a"), ("start", "b"), ("end", "b"), ("end", "a")]
    assert not nemesis.active


def test_heal_stops_whatever_is_still_active(recorder: Any) -> None:
    """Ctrl-C or an error mid-run: heal() ends every active window and tears everything down."""
    records: list[dict] = []
    nemesis = Nemesis([FaultWindow("long", "record", "barista", 0.0, 3600.0)], "shop", records.append,
                      time.time()).start()
    time.sleep(0.2)
    assert "long" in nemesis.active
    nemesis.heal()
    assert [c[0] for c in recorder.calls] == ["setup", "start", "stop", "teardown"]
    assert [r["phase"] for r in records] == ["start", "end"]
    nemesis.heal()  # idempotent: nothing healed twice
    assert [c[0] for c in recorder.calls].count("stop") == 1


class SlowHeal(Recorder):
    kind: ClassVar[str] = "slow-heal"

    def stop(self, shop: Any) -> None:
        time.sleep(0.4)   # a heal that overruns the next window's start
        super().stop(shop)


def test_a_heal_that_overran_slides_the_windows_after_it_so_they_keep_their_length(
        recorder: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """broker-partition: an isolate-leader heal that restarted a member (23 s) left the bridge after
    it 6.6 of its 15 s, too short for the cluster to react; now the rest of the schedule slides."""
    import harness.nemesis.runner as runner

    monkeypatch.setattr(runner, "SLIP_AFTER_S", 0.1)
    FAULT_KINDS["slow-heal"] = SlowHeal
    try:
        records: list[dict] = []
        t0 = time.time() + 0.05
        windows = [FaultWindow("a", "slow-heal", "barista", 0.0, 0.1), FaultWindow("b", "record", "barista", 0.2, 0.3)]
        nemesis = Nemesis(windows, "shop", records.append, t0).start()
        while not nemesis.done():
            time.sleep(0.05)
        nemesis.heal()
    finally:
        del FAULT_KINDS["slow-heal"]
    at = {(c[0], c[1]): c[2] - t0 for c in recorder.calls}
    assert at["start", "b"] == pytest.approx(0.5, abs=0.1)   # after a's heal (0.1 + 0.4), not at 0.2
    assert at["stop", "b"] - at["start", "b"] == pytest.approx(0.3, abs=0.08)   # its whole length
    (b_start,) = [r for r in records if r["name"] == "b" and r["phase"] == "start"]
    assert b_start["slip_s"] == pytest.approx(0.3, abs=0.1)


class SlowApply(Recorder):
    """broker-alarm: rabbitmqctl raises and clears the alarm, each confirmed, in 1-5 s."""

    kind: ClassVar[str] = "slow-apply"
    spec: ClassVar[Any] = type("Spec", (), {"slow_apply": True})()

    def start(self, shop: Any) -> None:
        time.sleep(0.3)   # the raise, confirmed
        super().start(shop)

    def stop(self, shop: Any) -> None:
        self.calls.append(("heal-began", self.window.name, time.time()))
        time.sleep(0.2)   # the clear, confirmed
        super().stop(shop)


def test_a_slow_fault_holds_its_length_from_its_effect_and_ends_when_its_heal_began(recorder: Any) -> None:
    """broker-alarm-direct: a raise that took 4.8 s of a 5.25 s window left the alarm 0.45 s in
    force before the clear began, and the orders taken while the clear was confirmed weighed in it."""
    FAULT_KINDS["slow-apply"] = SlowApply
    try:
        records: list[dict] = []
        t0 = time.time() + 0.05
        windows = [FaultWindow("alarm", "slow-apply", "barista", 0.0, 0.4),
                   FaultWindow("after", "record", "barista", 0.7, 0.1)]
        nemesis = Nemesis(windows, "shop", records.append, t0).start()
        while not nemesis.done():
            time.sleep(0.05)
        nemesis.heal()
    finally:
        del FAULT_KINDS["slow-apply"]
    at = {(c[0], c[1]): c[2] - t0 for c in recorder.calls}
    start, end = [r for r in records if r["name"] == "alarm"]
    assert start["applied_after_s"] == pytest.approx(0.3, abs=0.1)
    assert end["time"] - start["time"] == pytest.approx(0.4, abs=0.08)      # its declared length, in force
    assert end["time"] - t0 == pytest.approx(at["heal-began", "alarm"], abs=0.02)
    assert end["healed_after_s"] == pytest.approx(0.2, abs=0.08)
    assert at["start", "after"] == pytest.approx(1.0, abs=0.1)               # the schedule slid by 0.3 s


class Abandoner(Recorder):
    kind: ClassVar[str] = "abandoner"

    def abandon(self, shop: Any) -> None:
        self.calls.append(("abandon", self.window.name, time.time()))


def test_an_abandoned_run_undoes_its_faults_without_healing_them(recorder: Any) -> None:
    """An interrupted run (heal(abandon=True)): a kind with abandon() is abandoned, not stopped
    (no wait for its target to recover); one without it is stopped as always."""
    FAULT_KINDS["abandoner"] = Abandoner
    try:
        records: list[dict] = []
        windows = [FaultWindow("cut", "abandoner", "barista", 0.0, 3600.0),
                   FaultWindow("kill", "record", "barista", 0.0, 3600.0)]
        nemesis = Nemesis(windows, "shop", records.append, time.time()).start()
        time.sleep(0.2)
        nemesis.heal(abandon=True)
    finally:
        del FAULT_KINDS["abandoner"]
    done = sorted((c[0], c[1]) for c in recorder.calls if c[0] in ("abandon", "stop"))
    assert done == [("abandon", "cut"), ("stop", "kill")]
    assert [(r["name"], r.get("abandoned")) for r in records if r["phase"] == "end"] == [("cut", True), ("kill", None)]
    assert not nemesis.active


def test_not_applicable_is_reported_not_skipped(recorder: Any) -> None:
    records: list[dict] = []
    nemesis = Nemesis([FaultWindow("x", "record", "barista", 0.0, 1.0)], "no-barista-here", records.append,
                      time.time())
    assert nemesis.not_applicable == [{"name": "x", "kind": "record", "target": "barista",
                                       "reason": "this shop has no barista"}]
    assert records[0]["phase"] == "not-applicable"
    nemesis.start().heal()
    assert not any(c[0] == "start" for c in recorder.calls)


def test_a_fault_that_fails_to_start_is_recorded_as_an_error(recorder: Any) -> None:
    records: list[dict] = []
    window = FaultWindow("bad", "record", "barista", 0.0, 0.1, params={"explode": True})
    nemesis = Nemesis([window], "shop", records.append, time.time()).start()
    time.sleep(0.3)
    nemesis.heal()
    assert [r["phase"] for r in records] == ["error"]
    assert records[0]["error"] == "RuntimeError: boom"


class SettlesLater:
    """A shop whose connections are back on the third look after a heal."""

    def __init__(self) -> None:
        self.looks = 0

    def held(self) -> dict[str, int]:
        return {}

    def settled(self) -> bool:
        self.looks += 1
        return self.looks >= 3


def test_a_heal_with_a_side_effect_records_when_the_shop_settled(recorder: Any,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Removing a timeout toxic closes every connection through the proxy: the runner records, in
    the background, when the shop had its connections back (the window's aftermath)."""
    from harness.nemesis import runner
    monkeypatch.setattr(runner, "SETTLE_GRACE_S", 0.05)
    monkeypatch.setattr(recorder, "spec", KINDS["timeout"], raising=False)
    records: list[dict] = []
    shop = SettlesLater()
    nemesis = Nemesis([FaultWindow("t", "record", "barista", 0.0, 0.1)], shop, records.append, time.time()).start()
    time.sleep(0.2)
    nemesis.heal()   # waits for the aftermath to be recorded
    assert [r["phase"] for r in records] == ["start", "end", "settled"]
    settled = records[-1]
    assert settled["settled"] is True and settled["effect"] == "closes every connection through the proxy"
    assert 0.05 <= settled["after_s"] < 5 and shop.looks == 3


class BusyLater:
    """A shop whose barista-2 holds nothing for the first `idle` looks, then two orders."""

    def __init__(self, idle: int) -> None:
        self.looks, self.idle = 0, idle

    def held(self) -> dict[str, int]:
        self.looks += 1
        return {"barista-1": 5, "barista-2": 0 if self.looks <= self.idle else 2}


def test_a_fault_records_what_its_target_held_and_can_wait_for_work(recorder: Any) -> None:
    records: list[dict] = []
    shop = BusyLater(idle=3)
    t0 = time.time()
    windows = [FaultWindow("now", "record", "barista", 0.0, 0.05, replica=2),
               FaultWindow("waits", "record", "barista", 0.1, 0.3, replica=2, wait_for_work_s=1.0)]
    nemesis = Nemesis(windows, shop, records.append, t0).start()
    time.sleep(0.6)
    nemesis.heal()
    hits = {r["name"]: r["hit"] for r in records if r["phase"] == "start"}
    assert hits["now"] == {"held": 0, "replicas": {"barista-2": 0}, "of": "orders held by the target"}
    assert hits["waits"]["held"] == 2 and shop.looks > 3      # it looked until the replica held work


def test_fault_metrics_validate_and_read_from_the_fault_list() -> None:
    from harness.experiment.metrics import is_fault_metric, lookup

    assert is_fault_metric("faults.kill-barista.hit") and not is_fault_metric("faults.hit")
    assert is_fault_metric("faults.alarm.blocked_connections") and not is_fault_metric("faults..hit")
    results = {"faults": [{"name": "kill-barista", "hit": {"held": 3}},
                          {"name": "alarm", "details": {"blocked_connections": 2}}, {"name": "other"}]}
    assert lookup(results, "faults.kill-barista.hit") == 3
    assert lookup(results, "faults.alarm.blocked_connections") == 2   # what the fault reported at its end
    assert lookup(results, "faults.other.hit") is None and lookup(results, "faults.missing.hit") is None
    assert lookup(results, "faults.other.blocked_connections") is None


def test_a_clock_skew_runs_its_processes_under_libfaketime_and_compresses_its_offset() -> None:
    from harness.nemesis.clock import faketime_env
    env = faketime_env(-2.5, 1.001)
    assert env["FAKETIME"] == "-2.500000s x1.001" and env["LD_PRELOAD"].endswith("libfaketimeMT.so.1")
    assert env["FAKETIME_DONT_FAKE_MONOTONIC"] == "0"   # sleeps fail with EINVAL when only the wall clock is faked
    exp = from_dict({**BASE, "faults": [fault("clock-skew", "waiter", start=0, params={"offset_s": -2})],
                     "profiles": {"fast": {"speed": 2}}}, "f.toml")
    (window,) = exp.for_profile("fast").windows()
    assert window.params == {"offset_s": -1}   # a time: divided by the speed (drift, a ratio, is not)
