"""The verdict of a shop run: invariants in every run, validity that makes it inconclusive
(generator behind, a checker raised, no steady state before the first fault, a fault not
applied), expectations; four values (pass / fail / inconclusive / error)."""
from __future__ import annotations

from typing import Any

from test_checkers import T0, History

from harness.checkers import CheckerResult, CheckOptions, GeneratorHealth, SteadyState, default_checkers, run_checkers
from harness.experiment.model import Bound
from harness.experiment.results import assemble, status

HEALED = {"healed": {"healed": True}}


def verdict(records: list[dict[str, Any]], header: dict[str, Any] | None = None,
            expect: dict[str, Bound] | None = None, opts: CheckOptions | None = None,
            checked: dict[str, CheckerResult] | None = None) -> dict[str, Any]:
    checked = checked or run_checkers(default_checkers(), records, opts or CheckOptions())
    return assemble({"complete": True, **HEALED, **(header or {})}, checked, expect or {}, {})


def steady_run(failures_before: int = 0, lost: bool = False) -> list[dict[str, Any]]:
    h = History()
    for i in range(10):
        h.order(i, 0.1 * i, outcome="fail" if i < failures_before else "ok", brews=1 if i >= failures_before else 0,
                servings=1 if i >= failures_before else 0)
    h.fault("kill-barista", 2.0, 3.0)
    h.invoke(10, 2.5).complete(10, "ok", 2.6)
    if not lost:
        h.brewed(10, 3.5).served(10, 3.6)
    return h.end(5.0)


def test_a_clean_run_passes_and_carries_every_built_in_check() -> None:
    results = verdict(steady_run())
    assert results["status"] == "pass" and results["passed"] is True
    kinds = {c["name"]: c["kind"] for c in results["checks"]}
    assert kinds["invariant: nothing lost or unexpected"] == "invariant" and kinds["healed"] == "invariant"
    assert kinds["generator kept up"] == kinds["checkers ran"] == "validity"
    assert kinds["steady state before the first fault"] == "validity"


def test_a_lost_order_fails_the_run_even_when_the_file_expects_nothing() -> None:
    results = verdict(steady_run(lost=True))
    assert results["status"] == "fail" and not results["passed"]
    (failed,) = [c for c in results["checks"] if not c["passed"]]
    assert failed["name"] == "invariant: nothing lost or unexpected" and failed["observed"]["lost"] == 1


def test_no_steady_state_before_the_first_fault_is_inconclusive() -> None:
    results = verdict(steady_run(failures_before=3))
    assert results["status"] == "inconclusive" and not results["passed"]
    assert results["steady_state"]["availability_before"] == 0.7
    # an invariant broken as well: the run failed, whatever else
    assert verdict(steady_run(failures_before=3, lost=True))["status"] == "fail"


def test_an_expectation_that_fails_fails_the_run_and_validity_beats_it() -> None:
    assert verdict(steady_run(), expect={"orders.accepted": Bound(min=100)})["status"] == "fail"
    assert verdict(steady_run(failures_before=3), expect={"orders.accepted": Bound(min=100)})["status"] == \
        "inconclusive"


def test_a_raising_checker_makes_the_run_inconclusive() -> None:
    records = steady_run()
    checked = run_checkers(default_checkers(), records, CheckOptions())
    checked["latency"] = CheckerResult("latency", None, {}, error="ZeroDivisionError: boom")
    results = verdict(records, checked=checked)
    assert results["status"] == "inconclusive"
    assert [c["observed"] for c in results["checks"] if c["name"] == "checkers ran"] == [
        {"latency": "ZeroDivisionError: boom"}]


def test_a_fault_not_applied_and_a_shop_run_that_raised() -> None:
    assert verdict(steady_run(), header={"fault_errors": [{"error": "no such proxy"}]})["status"] == "inconclusive"
    errored = verdict(steady_run(), header={"error": "ConnectionError: x", "complete": False})
    assert errored["status"] == "error" and not errored["passed"]


def test_older_results_without_kinds_or_status_read_as_before() -> None:
    assert status({"checks": [{"name": "orders.lost", "passed": False}], "complete": True}) == "fail"
    assert status({"checks": [{"name": "x", "passed": True}], "complete": False}) == "inconclusive"


def test_generator_behind_beyond_the_bound_is_invalid() -> None:
    h = History()
    for i in range(10):
        h.invoke(i, 0.1 * i, sent=0.1 * i + 2.0).complete(i, "ok", 0.1 * i + 2.01)
    records = h.end(5.0)
    assert GeneratorHealth().check(records, CheckOptions()).valid is False          # 2 s behind
    assert GeneratorHealth().check(records, CheckOptions(max_lag_ms=5000)).valid is True


def test_steady_state_counts_only_orders_completed_before_the_fault_and_gates_the_backlog() -> None:
    h = History()
    for i in range(6):
        h.order(i, 0.1 * i)
    h.invoke(6, 1.9).complete(6, "fail", 2.2)   # in flight when the fault started: the fault's
    h.backlog(1.0, 40).fault("kill", 2.0, 3.0)
    records = h.end(4.0)
    result = SteadyState().check(records, CheckOptions())
    assert result.valid is True and result.data["attempted_before"] == 6
    assert SteadyState().check(records, CheckOptions(steady_max_backlog=10)).valid is False
    assert SteadyState().check(records, CheckOptions(steady_min_orders=7)).valid is False
    no_fault = History().order(0, 0.1).end(2.0)
    assert SteadyState().check(no_fault, CheckOptions()).valid is None


def test_steady_state_ends_when_the_first_fault_began_to_act_not_when_it_was_recorded() -> None:
    h = History()
    for i in range(10):
        h.order(i, 0.1 * i)
    h.invoke(10, 1.9).complete(10, "info", 2.01)    # broken by the kill being applied at 2.0
    h.add("fault", phase="start", name="kill", kind="kill", target="barista", time=T0 + 2.05, began=T0 + 2.0)
    h.add("fault", phase="end", name="kill", kind="kill", target="barista", time=T0 + 3.0)
    data = SteadyState().check(h.end(4.0), CheckOptions()).data
    assert data["attempted_before"] == 10 and data["availability_before"] == 1.0


def test_a_declared_fault_neither_applied_nor_reported_not_applicable_is_inconclusive() -> None:
    declared = {"config": {"experiment": {"faults": [{"kind": "kill"}, {"kind": "pause"}]}}}
    one = {"faults": [{"name": "kill-barista-1"}], "not_applicable": []}
    assert verdict(steady_run(), header={**declared, **one})["status"] == "inconclusive"
    both = {"faults": [{"name": "kill-barista-1"}], "not_applicable": [{"name": "pause-barista-2"}]}
    assert verdict(steady_run(), header={**declared, **both})["status"] == "pass"


def test_a_fault_that_began_after_the_last_arrival_makes_the_run_inconclusive() -> None:
    # broker-partition, 2026-12-02: a heal that restarted a stuck member pushed the bridge from
    # 39 s to 66.7 s of a 54 s load; it then hit no order, and the run had passed
    faults = [{"name": "isolate-leader", "start_s": 21.9, "end_s": 39.9},
              {"name": "bridge", "start_s": 66.7, "end_s": 95.9}]
    late = verdict(steady_run(), header={"faults": faults, "schedule": {"duration_s": 54.0}})
    assert late["status"] == "inconclusive"
    check = next(c for c in late["checks"] if c["name"] == "faults under load")
    assert check["kind"] == "validity" and check["observed"] == {"bridge": 66.7}
    faults[1] = {"name": "bridge", "start_s": 40.7, "end_s": 59.8}   # began under load, ended after it
    assert verdict(steady_run(), header={"faults": faults, "schedule": {"duration_s": 54.0}})["status"] == "pass"


def test_a_shop_run_that_failed_before_it_began_is_an_error_the_report_can_draw(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json as json_mod

    from harness.experiment.run import errored
    from harness.experiment.runs import select
    from harness.history import load
    from harness.report import write_report

    item = select(["barista-outage"])[0]
    run_dir = tmp_path / "runs" / "r1"
    shop_dir = run_dir / item.name / "async"
    shop_dir.mkdir(parents=True)
    (shop_dir / "history.jsonl").write_text('{"type":"end","time":1.0,"complete":false}\n')   # all it got
    results = errored(item.name, item.experiment, "async", profile="smoke", seed=None, out_dir=shop_dir,
                      run_id="r1", started=100.0, error=TimeoutError("broker not ready in time"))
    assert results["status"] == "error" and "broker not ready" in results["error"] and results["faults"] == []
    history = load(shop_dir / "history.jsonl")
    assert history[0]["type"] == "run" and history[0]["never_started"] is True and history[-1]["type"] == "end"
    (run_dir / "summary.json").write_text(json_mod.dumps([{"experiment": item.name, "system": "async"}]))
    report = write_report(run_dir, tmp_path / "out")
    assert "broker not ready in time" in (tmp_path / "out" / "r1" / f"{item.name}.html").read_text()
    assert report.index.is_file()
