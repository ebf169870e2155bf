"""Checkers on hand-built histories: each test states the history and the verdict it must give."""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

import harness.checkers as checkers
from harness.checkers import (
    Availability,
    Backlog,
    BusinessProbe,
    CheckerResult,
    CheckOptions,
    GeneratorHealth,
    Latency,
    Ledger,
    Throughput,
    compose,
    default_checkers,
    fault_windows,
    run_checkers,
    run_end,
)
from harness.history import Record

T0 = 1_700_000_000.0
OPTS = CheckOptions()


class History:
    """A history under construction; every time argument is in seconds since T0."""

    def __init__(self) -> None:
        self.records: list[Record] = [{"type": "run", "experiment": "test", "system": "async", "seed": 1,
                                       "profile": "test", "t0": T0, "config": {}}]

    def add(self, type_: str, **fields: Any) -> History:
        self.records.append({"type": type_, **fields})
        return self

    def invoke(self, ref: int, intended: float, sent: float | None = None) -> History:
        sent = intended if sent is None else sent
        return self.add("invoke", ref=str(ref), intended=T0 + intended, sent=T0 + sent, order={"product": "Latte"})

    def complete(self, ref: int, outcome: str, at: float) -> History:
        return self.add(outcome, ref=str(ref), time=T0 + at, status=202 if outcome == "ok" else None,
                        order_id=f"o{ref}", error=None)

    def brewed(self, ref: int | None, at: float, order_id: str | None = None) -> History:
        return self.add("brewed", ref=None if ref is None else str(ref), order_id=order_id or f"o{ref}",
                        time=T0 + at, started=T0 + at - 0.1, barista="b1")

    def served(self, ref: int | None, at: float, order_id: str | None = None) -> History:
        return self.add("served", ref=None if ref is None else str(ref), order_id=order_id or f"o{ref}", time=T0 + at)

    def order(self, ref: int, at: float, outcome: str = "ok", brews: int = 1, servings: int = 1,
              takes: float = 0.5) -> History:
        """An order intended and sent at `at`, completed 10 ms later, brewed and served `takes` after."""
        self.invoke(ref, at).complete(ref, outcome, at + 0.01)
        for _ in range(brews):
            self.brewed(ref, at + takes)
        for _ in range(servings):
            self.served(ref, at + takes + 0.1)
        return self

    def dropped(self, ref: int, intended: float) -> History:
        return self.add("dropped", ref=str(ref), intended=T0 + intended, reason="behind")

    def fault(self, name: str, start: float, end: float | None = None) -> History:
        self.add("fault", phase="start", name=name, kind="kill", target="barista", time=T0 + start)
        return self if end is None else self.add("fault", phase="end", name=name, kind="kill",
                                                 target="barista", time=T0 + end)

    def backlog(self, at: float, total: int) -> History:
        return self.add("backlog", time=T0 + at, total=total)

    def end(self, at: float) -> list[Record]:
        return [*self.add("end", time=T0 + at, complete=True).records]


def check(checker: Any, history: Sequence[Record], opts: CheckOptions = OPTS) -> CheckerResult:
    result: CheckerResult = checker.check(history, opts)
    json.dumps(result.as_dict())  # every result must be JSON-serialisable
    return result


# --- base: running and composing ---------------------------------------------------------------

class Exploding:
    name = "exploding"

    def check(self, history: Sequence[Record], opts: CheckOptions) -> CheckerResult:
        raise RuntimeError("boom")


class Fixed:
    def __init__(self, name: str, valid: bool | None) -> None:
        self.name, self.valid = name, valid

    def check(self, history: Sequence[Record], opts: CheckOptions) -> CheckerResult:
        return CheckerResult(self.name, self.valid, {"n": len(history)})


def test_a_raising_checker_is_unknown_and_the_others_still_run() -> None:
    history = History().order(0, 1.0).end(5.0)
    results = run_checkers([Exploding(), Ledger()], history, OPTS)
    assert list(results) == ["exploding", "ledger"]
    assert results["exploding"] == CheckerResult("exploding", None, {}, error="RuntimeError: boom")
    assert results["ledger"].valid is True


def test_without_a_run_record_the_checkers_needing_t0_are_unknown_and_the_rest_still_decide() -> None:
    history = History().order(0, 1.0).end(5.0)[1:]
    results = run_checkers(default_checkers(), history, OPTS)
    assert {name for name, r in results.items() if r.valid is not None} == {"ledger", "generator", "clocks"}
    unknown = [r for r in results.values() if r.valid is None and r.name != "newcomer"]
    assert all(r.error == "ValueError: history has no run record" for r in unknown)
    assert results["newcomer"].data == {} and results["newcomer"].error is None   # no consumer joined


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [((True, True), True), ((True, None), None), ((None, False), False), ((True, False), False), ((), True)],
)
def test_compose_combines_validity(verdicts: tuple[bool | None, ...], expected: bool | None) -> None:
    composite = compose(*(Fixed(f"c{i}", v) for i, v in enumerate(verdicts)), name="all")
    result = composite.check([{"type": "run", "t0": T0}], OPTS)
    assert (result.name, result.valid) == ("all", expected)
    assert result.data == {f"c{i}": {"n": 1} for i in range(len(verdicts))}


def test_compose_reports_a_raising_member_as_unknown_with_its_error() -> None:
    result = compose(Fixed("fine", True), Exploding()).check([{"type": "run", "t0": T0}], OPTS)
    assert (result.valid, result.data, result.error) == (None, {"fine": {"n": 1}, "exploding": {}},
                                                         "exploding: RuntimeError: boom")


def test_default_checkers_has_one_of_each_and_the_package_exports_what_it_claims() -> None:
    names = [c.name for c in default_checkers()]
    assert names == ["ledger", "latency", "throughput", "availability", "probe", "generator", "backlog",
                     "scaling", "theory", "newcomer", "steady_state", "clocks", "retries"]
    assert all(hasattr(checkers, name) for name in checkers.__all__)


def test_options_refuse_a_zero_bucket() -> None:
    with pytest.raises(ValueError, match="bucket_s"):
        CheckOptions(bucket_s=0)


# --- timeline ------------------------------------------------------------------------------------

def test_run_end_is_the_end_record_else_the_latest_time_seen() -> None:
    history = History().order(0, 1.0).end(9.0)
    late_record = {"type": "served", "ref": "0", "order_id": "o0", "time": T0 + 12.0}  # read from a shop afterwards
    assert run_end([*history, late_record]) == T0 + 9.0
    assert run_end(history[:-1]) == pytest.approx(T0 + 1.6)  # the serving, 0.6 s after the order
    assert run_end([*history[:-1], late_record]) == T0 + 12.0


def test_fault_windows_pair_by_name_and_an_open_window_closes_at_the_run_end() -> None:
    history = History().fault("a", 2.0).fault("b", 3.0, 4.0).order(0, 1.0)
    history.add("fault", phase="end", name="a", kind="kill", target="barista", time=T0 + 5.0)
    history.fault("a", 6.0)  # a second "a", never healed
    windows = fault_windows(history.end(10.0))
    assert [(w.name, w.start_s, w.end_s) for w in windows] == [("a", 2.0, 5.0), ("b", 3.0, 4.0), ("a", 6.0, 10.0)]
    assert (windows[0].kind, windows[0].target) == ("kill", "barista")
    assert windows[1].contains(T0 + 3.0) and not windows[1].contains(T0 + 4.0)


# --- ledger --------------------------------------------------------------------------------------

def test_ledger_clean_run_is_valid_with_nothing_wrong() -> None:
    history = History().order(0, 0.0).order(1, 0.5).order(2, 1.0).end(5.0)
    result = check(Ledger(), history)
    assert result.valid is True
    data = result.data
    assert (data["attempted"], data["accepted"], data["brewed"], data["served"]) == (3, 3, 3, 3)
    problems = ["dropped", "rejected", "unknown", "lost", "duplicated", "duplicate_brews", "duplicate_servings",
                "unexpected", "recovered", "rejected_but_brewed", "unknown_brewed"]
    assert {k: data[k] for k in problems} == dict.fromkeys(problems, 0)
    assert data["samples"] == {"lost": [], "duplicated": [], "unexpected": [], "recovered": [],
                               "served_not_brewed": []}


def test_ledger_an_accepted_order_never_served_is_lost() -> None:
    history = History().order(0, 0.0).order(1, 0.1, servings=0).order(2, 0.2, brews=0, servings=0).end(5.0)
    result = check(Ledger(), history)
    assert result.valid is False
    assert (result.data["lost"], result.data["brewed"], result.data["served"]) == (2, 2, 1)
    assert result.data["samples"]["lost"] == ["1", "2"]


def test_ledger_reports_duplicates_without_judging_them() -> None:
    history = History().order(0, 0.0, brews=2, servings=2).order(1, 0.1, brews=3).order(2, 0.2).end(5.0)
    result = check(Ledger(), history)
    assert result.valid is True
    data = result.data
    assert (data["duplicated"], data["duplicate_brews"], data["duplicate_servings"]) == (2, 3, 1)
    assert (data["brewed"], data["served"]) == (3, 3)
    assert data["samples"]["duplicated"] == ["0", "1"]


def test_ledger_brews_and_servings_never_invoked_are_unexpected_even_without_a_ref() -> None:
    history = History().order(0, 0.0).served(7, 1.0).brewed(None, 1.0, "poison").served(None, 1.2, "poison")
    result = check(Ledger(), history.end(5.0))
    assert result.valid is False
    assert result.data["unexpected"] == 2
    assert result.data["samples"]["unexpected"] == ["7", "order:poison"]


def test_ledger_an_unknown_order_served_anyway_is_recovered() -> None:
    history = History().order(0, 0.0, outcome="info").order(1, 0.1, outcome="info", brews=0, servings=0)
    result = check(Ledger(), history.end(5.0))
    assert result.valid is True  # an unknown order that never arrived is not lost
    assert (result.data["unknown"], result.data["recovered"], result.data["unknown_brewed"]) == (2, 1, 1)
    assert (result.data["lost"], result.data["samples"]["recovered"]) == (0, ["0"])


def test_ledger_rejected_orders_are_counted_and_a_brewed_rejection_is_flagged() -> None:
    history = History().order(0, 0.0, outcome="fail", brews=0, servings=0).order(1, 0.1, outcome="fail")
    result = check(Ledger(), history.end(5.0))
    assert result.valid is True
    assert (result.data["rejected"], result.data["accepted"], result.data["lost"]) == (2, 0, 0)
    assert (result.data["rejected_but_brewed"], result.data["rejected_but_served"]) == (1, 1)


def test_ledger_an_invoke_without_completion_is_unknown() -> None:
    history = History().order(0, 0.0).invoke(1, 0.1).end(5.0)
    data = check(Ledger(), history).data
    assert (data["attempted"], data["accepted"], data["unknown"], data["no_completion"]) == (2, 1, 1, 1)


def test_ledger_the_first_completion_of_an_order_decides_its_outcome() -> None:
    history = History().order(0, 0.0, servings=0).complete(0, "info", 1.0).invoke(1, 0.1).complete(1, "fail", 0.2)
    data = check(Ledger(), history.complete(1, "ok", 0.3).end(5.0)).data
    assert (data["accepted"], data["rejected"], data["unknown"], data["lost"]) == (1, 1, 0, 1)


def test_ledger_counts_dropped_arrivals_apart_from_attempts() -> None:
    data = check(Ledger(), History().order(0, 0.0).dropped(1, 0.1).dropped(2, 0.2).end(5.0)).data
    assert (data["attempted"], data["dropped"], data["unexpected"]) == (1, 2, 0)


def test_ledger_samples_are_capped_and_sorted_numerically() -> None:
    history = History()
    for ref in range(30, 0, -1):
        history.order(ref, 0.0, servings=0)
    assert check(Ledger(), history.end(5.0)).data["samples"]["lost"] == [str(r) for r in range(1, 21)]


# --- latency -------------------------------------------------------------------------------------

def test_latency_is_measured_from_the_intended_time_not_the_sent_time() -> None:
    history = History().invoke(0, 1.0, sent=3.0).complete(0, "ok", 3.05).served(0, 4.0).end(5.0)
    data = check(Latency(), history).data
    assert data["acceptance"]["p50"] >= 2000.0
    assert data["acceptance"]["max"] == pytest.approx(2050.0, rel=1e-3)
    assert data["fulfilment"]["p50"] == pytest.approx(3000.0, rel=1e-3)


def test_latency_percentiles_of_1_to_1000_ms_are_within_hdr_precision() -> None:
    history = History()
    for ref in range(1000):
        history.invoke(ref, 0.0).complete(ref, "ok", (ref + 1) / 1000)
    data = check(Latency(), history.end(2.0)).data["acceptance"]
    expected = {"count": 1000, "mean": 500.5, "p50": 500.0, "p90": 900.0, "p99": 990.0, "p999": 999.0, "max": 1000.0}
    assert data["count"] == expected.pop("count")
    for key, value in expected.items():
        assert data[key] == pytest.approx(value, rel=1e-3), key


def test_latency_response_covers_every_completion_and_fulfilment_the_first_serving() -> None:
    history = History().order(0, 0.0, takes=1.0, servings=2).order(1, 0.0, outcome="fail", brews=0, servings=0)
    history.order(2, 0.0, outcome="info").invoke(3, 0.0)
    data = check(Latency(), history.end(5.0)).data
    assert (data["acceptance"]["count"], data["response"]["count"], data["fulfilment"]["count"]) == (1, 3, 1)
    assert data["fulfilment"]["max"] == pytest.approx(1100.0, rel=1e-3)


def test_latency_over_time_buckets_by_intended_time() -> None:
    history = History().order(0, 0.2).order(1, 0.7, takes=2.0).order(2, 2.5, outcome="fail", servings=0)
    history.invoke(3, 0.9, sent=1.5).complete(3, "ok", 1.51)  # intended in bucket 0, answered in bucket 1
    data = check(Latency(), history.end(3.0)).data["over_time"]
    assert [b["t"] for b in data] == [0.0, 1.0, 2.0]
    assert [b["count"] for b in data] == [3, 0, 1]
    assert data[0]["acceptance_p99"] == pytest.approx(610.0, rel=1e-3)
    assert data[0]["acceptance_p50"] == pytest.approx(10.0, rel=1e-3)
    assert data[0]["fulfilment_p99"] == pytest.approx(2100.0, rel=1e-3)
    assert data[1]["acceptance_p50"] is None and data[2]["fulfilment_p50"] is None


def test_latency_without_invokes_is_unknown_with_empty_summaries() -> None:
    result = check(Latency(), History().end(1.0))
    assert result.valid is None
    assert result.data["acceptance"] == {"count": 0, "mean": None, "p50": None, "p90": None, "p99": None,
                                         "p999": None, "max": None}


# --- throughput ----------------------------------------------------------------------------------

def test_throughput_buckets_each_event_by_its_own_time() -> None:
    history = History().order(0, 0.1, takes=1.0).order(1, 0.2, takes=1.0, brews=2).order(2, 1.5, takes=1.0)
    result = check(Throughput(), history.end(4.0), CheckOptions(bucket_s=0.5))
    series = result.data["series"]
    assert [b["t"] for b in series] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5]
    assert [b["sent"] for b in series] == [4.0, 0, 0, 2.0, 0, 0, 0, 0]  # 2 orders in 0.5 s
    assert [b["accepted"] for b in series] == [4.0, 0, 0, 2.0, 0, 0, 0, 0]
    assert [b["brewed"] for b in series] == [0, 0, 6.0, 0, 0, 2.0, 0, 0]
    assert [b["served"] for b in series] == [0, 0, 4.0, 0, 0, 2.0, 0, 0]
    assert result.data["peak_served_per_s"] == 4.0
    assert result.data["served_per_s"] == pytest.approx(3 / 2.6)  # last serving at 2.6 s
    assert result.data["accepted_per_s"] == pytest.approx(3 / 1.51)


def test_throughput_in_faults_counts_servings_per_second_of_fault_time() -> None:
    history = History().fault("a", 1.0, 3.0).fault("b", 2.0, 4.0)  # overlapping: 3 s of fault time
    for ref, at in enumerate([0.5, 1.5, 2.5, 3.5, 4.5, 4.6]):
        history.served(ref, at)
    assert check(Throughput(), history.end(5.0)).data["served_in_faults_per_s"] == pytest.approx(1.0)
    assert check(Throughput(), History().served(0, 1.0).end(2.0)).data["served_in_faults_per_s"] is None


# --- availability --------------------------------------------------------------------------------

def test_availability_inside_and_outside_a_fault_window() -> None:
    history = History().fault("kill-barista", 2.0, 4.0)
    for ref, at in enumerate([0.0, 1.0, 5.0, 6.0]):  # outside: all accepted
        history.order(ref, at)
    history.order(10, 2.0).order(11, 2.5, outcome="fail").order(12, 3.0, outcome="info").dropped(13, 3.9)
    history.order(14, 4.0, outcome="fail")  # at the window's end: outside
    data = check(Availability(), history.end(8.0)).data
    assert data["overall"] == pytest.approx(5 / 9, abs=1e-6)
    assert data["outside_faults"] == pytest.approx(4 / 5, abs=1e-6)
    assert data["in_faults"] == pytest.approx(1 / 4)
    assert data["windows"] == [{"name": "kill-barista", "kind": "kill", "target": "barista", "start_s": 2.0,
                                "end_s": 4.0, "attempted": 4, "accepted": 1, "availability": 0.25}]


def test_the_aftermath_of_a_heal_is_that_windows_not_the_next_ones_nor_outside() -> None:
    """A timeout toxic removed at 4 s closes every connection; the shop settled at 5 s. The orders
    refused in between are the heal's: in the first window's `after_heal`, never the next window's
    (it starts at 4.5 s) nor "outside"."""
    history = History().fault("timeout-1", 2.0, 4.0).fault("timeout-2", 4.5, 7.0)
    history.add("fault", phase="settled", name="timeout-1", kind="timeout", target="x", time=T0 + 5.0,
                effect="closes every connection through the proxy", after_s=1.0, settled=True)
    history.order(0, 1.0).order(1, 3.0)                                       # before; in the first
    history.order(2, 4.2, outcome="fail").order(3, 4.7, outcome="info")        # the heal's
    history.order(4, 6.0).order(5, 8.0)                                        # the second's; outside
    data = check(Availability(), history.end(9.0)).data
    first, second = data["windows"]
    assert (first["attempted"], first["after_heal"]) == (1, {"settled_s": 5.0, "attempted": 2, "accepted": 0,
                                                             "availability": 0.0})
    assert (second["attempted"], second["accepted"]) == (1, 1) and "after_heal" not in second
    assert data["outside_faults"] == 1.0 and data["in_faults"] == pytest.approx(2 / 4)


def test_clocks_count_stamps_of_different_processes_in_an_impossible_order() -> None:
    """A waiter whose clock runs 2 s behind: its servings precede the sends and the brews. Before
    this checker the negative fulfilment was clamped to 1 us without a word."""
    from harness.checkers import Clocks
    history = History().order(0, 1.0)                               # plausible
    history.invoke(1, 2.0).complete(1, "ok", 2.01).brewed(1, 2.5).served(1, 0.6)    # served 1.4 s before sent
    history.invoke(2, 3.0).complete(2, "ok", 3.01).brewed(2, 2.9995).served(2, 3.2)  # within the tolerance
    data = check(Clocks(), history.end(5.0)).data
    assert {k: data[k] for k in ("brewed_before_sent", "served_before_sent", "served_before_brewed",
                                 "implausible")} == {"brewed_before_sent": 0, "served_before_sent": 1,
                                                     "served_before_brewed": 1, "implausible": 1}
    assert data["worst_s"] == pytest.approx(-1.9) and data["samples"] == ["1"]
    clean = check(Clocks(), History().order(0, 1.0).end(3.0)).data
    assert clean["implausible"] == 0 and clean["worst_s"] is None


def test_the_steady_state_is_checked_before_the_first_fault_that_is_not_a_condition() -> None:
    """A clock skew is set before the load (a start record with from_start): there is no steady
    state before it; the hypothesis is judged before the next fault, or not at all."""
    history = History()
    history.add("fault", phase="start", name="skew", kind="clock-skew", target="waiter", time=T0, from_start=True)
    for ref in range(6):
        history.order(ref, 0.5 + ref * 0.2)
    data = check(checkers.SteadyState(), history.fault("kill", 3.0, 4.0).end(5.0))
    assert data.valid is True and data.data["first_fault_s"] == 3.0 and data.data["attempted_before"] == 6
    only = History()
    only.add("fault", phase="start", name="skew", kind="clock-skew", target="waiter", time=T0, from_start=True)
    assert check(checkers.SteadyState(), only.order(0, 0.5).end(2.0)).valid is None   # nothing to gate


def test_availability_with_nothing_attempted_is_none() -> None:
    data = check(Availability(), History().fault("f", 1.0, 2.0).order(0, 3.0).end(4.0)).data
    assert (data["overall"], data["outside_faults"], data["in_faults"]) == (1.0, 1.0, None)
    assert data["windows"][0]["availability"] is None


# --- business probe ------------------------------------------------------------------------------

def test_probe_all_served_in_time_is_valid() -> None:
    result = check(BusinessProbe(), History().order(0, 0.0).order(1, 1.0).end(5.0), CheckOptions(slo_s=1.0))
    assert result.valid is True
    assert result.data["overdue_stretches"] == [] and result.data["first_overdue_s"] is None
    assert (result.data["share_within_slo"], result.data["longest_overdue_s"]) == (1.0, 0.0)


def test_probe_overdue_stretches_are_the_union_of_late_intervals() -> None:
    history = History().fault("cut", 5.0, 9.0)
    history.order(0, 0.0, takes=0.4)       # served at 0.5: in time
    history.order(1, 6.0, takes=3.9)       # served at 10.0, overdue from 7.0
    history.order(2, 7.0, takes=4.9)       # served at 12.0, overdue from 8.0: merges into [7, 12]
    history.order(3, 15.0, servings=0)     # never served: overdue from 16.0 to the run end
    history.order(4, 14.0, outcome="fail", servings=0)  # not accepted: ignored
    history.order(5, 19.5, servings=0)     # never served, deadline after the run end: no stretch
    history.order(6, 17.5, takes=5.0)      # served at 22.6, after the run end: overdue [18.5, 20]
    result = check(BusinessProbe(), history.end(20.0), CheckOptions(slo_s=1.0))
    data = result.data
    assert result.valid is False
    assert (data["accepted"], data["served_within_slo"], data["never_served"]) == (6, 1, 2)
    assert data["share_within_slo"] == pytest.approx(1 / 6, abs=1e-6)
    assert data["overdue_stretches"] == [[7.0, 12.0], [16.0, 20.0]]
    assert data["longest_overdue_s"] == pytest.approx(5.0)
    assert data["first_overdue_s"] == pytest.approx(7.0)
    assert data["detection_s"] == pytest.approx(2.0)  # fault began at 5.0


def test_probe_detection_is_none_without_a_fault_before_the_first_overdue() -> None:
    history = History().order(0, 0.0, takes=1.4).fault("late", 10.0, 11.0)  # served at 1.5, 0.5 s overdue
    data = check(BusinessProbe(), history.end(12.0), CheckOptions(slo_s=1.0)).data
    assert (data["first_overdue_s"], data["detection_s"], data["overdue_stretches"]) == (1.0, None, [[1.0, 1.5]])


def test_probe_with_nothing_accepted_is_unknown() -> None:
    result = check(BusinessProbe(), History().order(0, 0.0, outcome="fail").end(1.0))
    assert (result.valid, result.data["share_within_slo"]) == (None, None)


# --- generator -----------------------------------------------------------------------------------

def test_generator_reports_lag_and_late_arrivals_and_fails_on_drops() -> None:
    history = History()
    for ref, lag_ms in enumerate([0.5, 1, 2, 5, 9, 11, 40, 100]):
        history.invoke(ref, float(ref), sent=ref + lag_ms / 1000)
    clean = check(GeneratorHealth(), history.records)
    assert clean.valid is True
    assert (clean.data["late"], clean.data["dropped"], clean.data["scheduled"]) == (3, 0, 8)
    assert clean.data["lag_max_ms"] == pytest.approx(100.0, rel=1e-3)
    assert clean.data["lag_p50_ms"] == pytest.approx(5.0, rel=1e-3)
    assert check(GeneratorHealth(), history.records, CheckOptions(late_ms=50)).data["late"] == 1
    dropped = check(GeneratorHealth(), history.dropped(8, 8.0).end(9.0))
    assert (dropped.valid, dropped.data["dropped"], dropped.data["scheduled"]) == (False, 1, 9)


# --- backlog -------------------------------------------------------------------------------------

def test_backlog_drain_time_runs_from_the_peak_to_the_next_empty_sample() -> None:
    history = History()
    for at, total in [(0, 0), (1, 10), (2, 40), (3, 40), (4, 5), (5, 0), (6, 3), (7, 0)]:
        history.backlog(at, total)
    data = check(Backlog(), history.end(8.0)).data
    assert (data["samples"], data["max"], data["mean"], data["time_to_drain_s"]) == (8, 40, 12.25, 3.0)
    assert data["series"][:2] == [{"t": 0.0, "total": 0}, {"t": 1.0, "total": 10}]


@pytest.mark.parametrize(("totals", "drain"), [([], None), ([0, 0], 0.0), ([3, 5, 4], None)])
def test_backlog_drain_edge_cases(totals: list[int], drain: float | None) -> None:
    history = History()
    for at, total in enumerate(totals):
        history.backlog(at, total)
    assert check(Backlog(), history.end(9.0)).data["time_to_drain_s"] == drain


def test_backlog_drain_time_counts_the_backlog_the_faults_leave() -> None:
    """A fluctuation before the first fault is no backlog to drain: the peak that counts is at or
    after the fault's start (the first fault when there are several)."""
    history = History()
    for at, total in [(1, 4), (2, 1), (3, 2)]:
        history.backlog(at, total)
    history.fault("cut", 5, 9).fault("cut-again", 12, 14)
    for at, total in [(6, 3), (8, 30), (9, 12), (10.5, 0), (13, 1), (15, 0)]:
        history.backlog(at, total)
    data = check(Backlog(), history.end(16.0)).data
    assert (data["max"], data["time_to_drain_s"], data["drain_from_s"]) == (30, 2.5, 5.0)
    quiet = History()
    for at, total in [(1, 4), (2, 1), (3, 2), (6, 3), (8, 1), (8.5, 0)]:
        quiet.backlog(at, total)
    quiet.fault("cut", 5, 9)
    assert check(Backlog(), quiet.end(16.0)).data["time_to_drain_s"] == 2.5   # from 3 at 6 s, not from 4 at 1 s


def test_backlog_ignores_failed_samples() -> None:
    """A sample the sampler could not take (service paused or down) has total None and is skipped."""
    history = History()
    for at, total in [(0, 2), (1, None), (2, 6), (3, 0)]:
        history.backlog(at, total)
    data = check(Backlog(), history.end(4.0)).data
    assert (data["samples"], data["max"], data["time_to_drain_s"]) == (3, 6, 1.0)


def test_ledger_settles_unknown_outcomes_from_the_shops_own_record() -> None:
    h = History()
    for ref in range(4):
        h.invoke(ref, 0.1 * ref).complete(ref, "info", 0.1 * ref + 0.05)
    h.brewed(0, 1.0)                                                     # brewed: taken, whatever the record
    h.add("order_records", count=2, time=T0 + 2)
    h.add("order_record", ref="1", order_id="o1", status="served", taken=True)
    h.add("order_record", ref="2", order_id="o2", status="failed", taken=False)   # 2 and 3: not taken
    data = check(Ledger(), h.end(3.0)).data
    assert data["unknown"] == 4
    assert (data["unknown_taken"], data["unknown_not_taken"], data["unknown_unsettled"]) == (2, 2, 0)


def test_ledger_leaves_unknowns_unsettled_when_the_record_could_not_be_read() -> None:
    h = History()
    h.invoke(0, 0.1).complete(0, "info", 0.2)
    h.invoke(1, 0.2).complete(1, "info", 0.3).served(1, 1.0)
    data = check(Ledger(), h.end(2.0)).data
    assert (data["unknown_taken"], data["unknown_not_taken"], data["unknown_unsettled"]) == (1, 0, 1)


def test_ledger_a_serving_no_barista_brewed_breaks_the_invariant() -> None:
    h = History().order(0, 0.1)
    h.invoke(1, 0.2).complete(1, "ok", 0.3).served(1, 0.5)      # served, never brewed
    result = check(Ledger(), h.end(2.0))
    assert result.valid is False and result.data["served_not_brewed"] == 1 and result.data["lost"] == 0
