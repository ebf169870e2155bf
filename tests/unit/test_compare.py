"""Regression comparison on hand-built results: what counts as a regression, and what does not."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from harness.regression.baseline import save_baseline, trim
from harness.regression.compare import (
    TOLERANCES,
    CompareError,
    Tolerance,
    compare_one,
    compare_sets,
    judge,
    load_envelopes,
    load_set,
    load_tolerances,
    near_misses,
    regressions,
    room_used,
)


def results(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "experiment": "barista-outage", "system": "async", "profile": "smoke", "passed": True, "complete": True,
        "schedule": {"digest": "abc"},
        "orders": {"attempted": 100, "accepted": 100, "lost": 0, "duplicated": 0},
        "latency_ms": {"acceptance": {"p50": 5.0, "p99": 40.0}, "fulfilment": {"p50": 300.0, "p99": 4000.0}},
        "throughput": {"accepted_per_s": 10.0, "served_per_s": 10.0, "series": [{"t": 0}]},
        "availability": {"overall": 1.0, "in_faults": 0.98},
        "checks": [{"name": "orders.lost", "expected": "<= 0", "min": None, "max": 0, "observed": 0, "passed": True},
                   {"name": "availability.in_faults", "expected": ">= 0.95", "min": 0.95, "max": None,
                    "observed": 0.98, "passed": True}],
    }
    for key, value in over.items():
        section, _, field = key.partition("__")
        if field:
            base[section] = {**base[section], field: value}
        else:
            base[section] = value
    return base


def statuses(base: dict[str, Any], cur: dict[str, Any]) -> dict[str, str]:
    return {c.metric: c.status for c in compare_one(("e", "s"), base, cur, TOLERANCES)}


def test_identical_results_have_no_change() -> None:
    changes = compare_one(("e", "s"), results(), results(), TOLERANCES)
    assert {c.status for c in changes} == {"same"}
    assert not regressions(changes)


def test_a_verdict_flipping_to_fail_is_a_regression_and_names_the_check() -> None:
    failed_check = {"name": "availability.in_faults", "expected": ">= 0.95", "min": 0.95, "max": None,
                    "observed": 0.5, "passed": False}
    cur = results(passed=False, checks=[results()["checks"][0], failed_check], availability__in_faults=0.5)
    got = statuses(results(), cur)
    assert got["verdict"] == "regression"
    assert got["check: availability.in_faults"] == "regression"
    assert got["availability.in_faults"] == "regression"


def test_fail_to_pass_is_an_improvement() -> None:
    assert statuses(results(passed=False), results())["verdict"] == "improved"


def verdict_change(base: dict[str, Any], cur: dict[str, Any]) -> Any:
    found = [c for c in compare_one(("e", "s"), base, cur, TOLERANCES) if c.metric == "verdict"]
    return found[0] if found else None


def test_pass_to_inconclusive_or_error_is_a_regression() -> None:
    inconclusive = results(status="inconclusive", passed=False)
    change = verdict_change(results(status="pass"), inconclusive)
    assert (change.baseline, change.current, change.status, change.rule) == (
        "pass", "INCONCLUSIVE", "regression", "may not flip to inconclusive")
    errored = results(status="error", passed=False, complete=False, error="RuntimeError: broker did not start")
    change = verdict_change(results(), errored)
    assert (change.current, change.status, change.rule) == ("ERROR", "regression", "may not flip to error")
    assert change in regressions(compare_one(("e", "s"), results(), errored, TOLERANCES))
    change = verdict_change(results(), results(status="fail", passed=False))
    assert (change.baseline, change.current, change.rule) == ("pass", "FAIL", "may not flip to fail")


def test_anything_to_pass_is_an_improvement() -> None:
    for before in ("fail", "inconclusive", "error"):
        change = verdict_change(results(status=before, passed=False), results(status="pass"))
        assert change.status == "improved", before
        assert change.current == "pass"


def test_other_verdict_moves_are_changes_not_regressions() -> None:
    moves = [("fail", "inconclusive"), ("inconclusive", "fail"), ("fail", "error"), ("error", "inconclusive"),
             ("inconclusive", "error"), ("error", "fail")]
    for before, after in moves:
        change = verdict_change(results(status=before, passed=False), results(status=after, passed=False))
        assert change.status == "changed", (before, after)
        assert change not in regressions([change])
    assert verdict_change(results(status="inconclusive", passed=False),
                          results(status="inconclusive", passed=False)) is None


def test_old_results_without_status_compare_by_the_derived_status() -> None:
    errored_old = results(passed=False, complete=False, error="RuntimeError: boom")   # no "status" key
    assert verdict_change(results(), errored_old).current == "ERROR"
    assert verdict_change(results(passed=False, complete=False), results(passed=False)) is None   # fail, fail


def test_lost_growing_is_a_regression_only_where_zero_is_expected() -> None:
    assert statuses(results(), results(orders__lost=1))["orders.lost"] == "regression"
    no_expectation = results(checks=[])
    assert statuses(no_expectation, results(checks=[], orders__lost=3))["orders.lost"] == "changed"
    assert statuses(results(orders__lost=2), results(orders__lost=0))["orders.lost"] == "improved"
    # where duplicates are expected (an unsafe variant), fewer of them is a change, not an improvement
    assert statuses(results(checks=[], orders__lost=3), results(checks=[], orders__lost=1))["orders.lost"] == "changed"


def test_latency_within_its_ratio_or_floor_is_the_same() -> None:
    # p99 40 -> 200 ms: 5x, but only 160 ms worse, under the 1000 ms floor
    assert statuses(results(), results(latency_ms={"acceptance": {"p50": 5.0, "p99": 200.0},
                                                   "fulfilment": {"p50": 300.0, "p99": 4000.0}}))[
        "latency_ms.acceptance.p99"] == "same"
    # fulfilment p99 4000 -> 25000: 6.25x (the rule allows 5x) and 21 s worse, past the 5 s floor
    worse = results(latency_ms={"acceptance": {"p50": 5.0, "p99": 40.0}, "fulfilment": {"p50": 300.0, "p99": 25000.0}})
    assert statuses(results(), worse)["latency_ms.fulfilment.p99"] == "regression"
    assert statuses(worse, results())["latency_ms.fulfilment.p99"] == "improved"


def test_throughput_is_higher_is_better() -> None:
    assert statuses(results(), results(throughput__served_per_s=3.0))["throughput.served_per_s"] == "regression"
    assert statuses(results(), results(throughput__served_per_s=4.0))["throughput.served_per_s"] == "same"


@pytest.mark.parametrize(("base", "cur", "expected"), [
    (1.0, 0.9, "same"), (1.0, 0.8, "regression"), (0.8, 1.0, "improved"), (None, None, "same"), (None, 1.0, "changed"),
])
def test_shares_compare_as_differences(base: float | None, cur: float | None, expected: str) -> None:
    assert judge("availability.overall", Tolerance("higher", absolute=0.15), base, cur, expects_zero=False) == expected


def test_a_timing_regression_on_a_host_that_stole_the_cpu_is_noisy_not_a_regression() -> None:
    # measured in a CI run: 26% of the CPU stolen, the probe's share 0.98 -> 0.58
    worse = {"probe": {"share_within_slo": 0.58}, "latency_ms": {"acceptance": {"p50": 834.0, "p99": 40.0},
                                                                  "fulfilment": {"p50": 300.0, "p99": 4000.0}}}
    quiet = results(host={"steal_share": 0.04}, **worse)
    stolen = results(host={"steal_share": 0.26}, **worse)
    base = results(probe={"share_within_slo": 0.98})
    assert statuses(base, quiet)["probe.share_within_slo"] == "regression"
    assert statuses(base, quiet)["latency_ms.acceptance.p50"] == "regression"
    changes = {c.metric: c for c in compare_one(("e", "s"), base, stolen, TOLERANCES)}
    assert changes["probe.share_within_slo"].status == "noisy"
    assert changes["latency_ms.acceptance.p50"].status == "noisy"
    assert "stole 26% of the CPU" in changes["probe.share_within_slo"].rule
    assert not regressions(changes.values())
    # the limit is a parameter; results without a host block (older runs) are judged as before
    assert {c.metric: c.status for c in compare_one(("e", "s"), base, stolen, TOLERANCES, steal_limit=0.3)}[
        "probe.share_within_slo"] == "regression"
    assert statuses(base, results(**worse))["probe.share_within_slo"] == "regression"
    with pytest.raises(ValueError, match="steal limit"):
        compare_sets({("e", "s"): base}, {("e", "s"): stolen}, steal_limit=1.5)


@given(metric=st.sampled_from([m for m, t in TOLERANCES.items() if not t.exact]),
       base=st.floats(0.001, 1e5), cur=st.floats(0.0, 1e6))
def test_room_used_crosses_one_where_judge_calls_a_regression(metric: str, base: float, cur: float) -> None:
    tol = TOLERANCES[metric]
    used = room_used(tol, base, cur)
    assert used is not None and used >= 0
    assume(abs(used - 1) > 1e-6)   # on the line itself rounding decides
    assert (judge(metric, tol, base, cur, expects_zero=False) == "regression") == (used > 1)


def test_room_used_of_the_ci38_near_miss_and_of_what_it_does_not_rule() -> None:
    # late-comer@200 / sync-resilient acceptance p50 in ci38: 204 ms against 8.4, x5 floor 200 -> 98%
    assert room_used(Tolerance("lower", ratio=4.0, floor=200.0), 8.4, 204.0) == pytest.approx(0.978, abs=0.001)
    assert room_used(TOLERANCES["latency_ms.acceptance.p50"], 8.4, 204.0) == pytest.approx(0.391, abs=0.001)
    assert room_used(TOLERANCES["availability.overall"], 0.9, 0.95) == 0.0          # better: nothing used
    assert room_used(TOLERANCES["orders.lost"], 0, 1) is None                        # exact: no room
    assert room_used(TOLERANCES["availability.overall"], None, 0.5) is None


def test_near_misses_are_the_same_ones_past_half_their_room_closest_first() -> None:
    base = results()
    cur = results(availability__overall=0.88, latency_ms={"acceptance": {"p50": 5.0, "p99": 700.0},
                                                           "fulfilment": {"p50": 300.0, "p99": 4000.0}})
    changes = compare_one(("e", "s"), base, cur, TOLERANCES)
    assert [(c.metric, c.room_used) for c in near_misses(changes)] == [
        ("latency_ms.acceptance.p99", 0.66), ("availability.overall", 0.6)]
    worse = compare_one(("e", "s"), base, results(availability__overall=0.7), TOLERANCES)
    assert not near_misses(worse)   # a regression is reported as one, not as a near miss


def test_ledger_invariants_verdicts_and_checks_are_judged_however_busy_the_host() -> None:
    failed_check = {"name": "availability.in_faults", "expected": ">= 0.95", "min": 0.95, "max": None,
                    "observed": 0.5, "passed": False}
    cur = results(host={"steal_share": 0.9}, orders__lost=3, passed=False,
                  checks=[{**results()["checks"][0], "observed": 3, "passed": False}, failed_check])
    got = statuses(results(), cur)
    assert got["orders.lost"] == "regression"
    assert got["verdict"] == "regression"
    assert got["check: availability.in_faults"] == "regression"


def test_missing_and_new_shop_runs() -> None:
    changes = compare_sets({("a", "sync"): results(), ("b", "sync"): results()},
                           {("a", "sync"): results(), ("c", "sync"): results()})
    by_key = {(c.experiment, c.status) for c in changes if c.metric == "results"}
    assert by_key == {("b", "missing"), ("c", "new")}
    assert [c.experiment for c in regressions(changes)] == ["b"]
    # a part of the set (a user's few experiments): what it did not run is not missing
    part = compare_sets({("a", "sync"): results(), ("b", "sync"): results()}, {("a", "sync"): results()},
                        ran_only=True)
    assert not regressions(part) and {c.experiment for c in part} == {"a"}


def test_a_different_schedule_or_profile_is_noted_not_failed() -> None:
    got = statuses(results(), results(schedule={"digest": "xyz"}, profile="full"))
    assert got["arrival schedule"] == "note" and got["profile"] == "note"
    assert "regression" not in got.values()


def write_run(root: Path, data: dict[tuple[str, str], dict[str, Any]]) -> Path:
    for (exp, system), res in data.items():
        path = root / exp / system / "results.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(res))
        (path.parent / "history.jsonl").write_text("{}\n")
    return root


def test_load_set_reads_a_run_dir_or_the_newest_run_of_an_out_dir(tmp_path: Path) -> None:
    write_run(tmp_path / "out" / "runs" / "20260101-000000", {("old", "sync"): results()})
    write_run(tmp_path / "out" / "runs" / "20260102-000000", {("new", "sync"): results()})
    assert list(load_set(tmp_path / "out")) == [("new", "sync")]
    assert list(load_set(tmp_path / "out" / "runs" / "20260101-000000")) == [("old", "sync")]
    with pytest.raises(CompareError, match="no such directory"):
        load_set(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CompareError, match="no <experiment>/<shop>/results.json"):
        load_set(tmp_path / "empty")


def test_baseline_keeps_results_drops_series_and_histories(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", {("a", "sync"): results(), ("a", "async"): results()})
    written = save_baseline(run, tmp_path / "baseline")
    assert len(written) == 2
    assert not list((tmp_path / "baseline").rglob("history.jsonl"))
    saved = json.loads((tmp_path / "baseline" / "a" / "sync" / "results.json").read_text())
    assert "series" not in saved["throughput"] and saved["throughput"]["served_per_s"] == 10.0
    assert json.loads((tmp_path / "baseline" / "BASELINE.json").read_text())["shop_runs"] == ["a/async", "a/sync"]
    assert not regressions(compare_sets(load_set(tmp_path / "baseline"), load_set(run)))
    assert trim({"x": [{"series": 1, "y": 2}]}) == {"x": [{"y": 2}]}


def test_a_baseline_of_several_runs_judges_each_metric_against_its_worst_run(tmp_path: Path) -> None:
    """A bimodal outcome (availability 0.7 in one run, 0.48 in another): one run cannot be its
    baseline, the worst of several can; beyond that worst, it is a regression again."""
    def run(name: str, overall: float, p50: float) -> Path:
        return write_run(tmp_path / name, {("storm", "sync-resilient"): results(availability__overall=overall,
                                                                                latency_ms={"acceptance": {"p50": p50, "p99": 40.0},
                                                                                            "fulfilment": {"p50": 300.0, "p99": 4000.0}})})
    first, second = run("r1", 0.70, 5.0), run("r2", 0.48, 90.0)
    written = save_baseline(first, tmp_path / "bl", [second])
    envelope = json.loads((tmp_path / "bl" / "storm" / "sync-resilient" / "envelope.json").read_text())
    assert envelope["values"]["availability.overall"] == [0.70, 0.48] and len(written) == 2
    assert json.loads((tmp_path / "bl" / "BASELINE.json").read_text())["more_runs"] == [str(second)]
    base, envelopes = load_set(tmp_path / "bl"), load_envelopes(tmp_path / "bl")
    like_second = load_set(run("r3", 0.47, 100.0))
    assert regressions(compare_sets(base, like_second))                          # against one draw: flagged
    assert not regressions(compare_sets(base, like_second, TOLERANCES, envelopes))   # within the worst seen
    beyond = compare_sets(base, load_set(run("r4", 0.25, 5.0)), TOLERANCES, envelopes)
    (bad,) = regressions(beyond)
    assert bad.metric == "availability.overall" and bad.baseline == 0.48 and "worst of 2 baseline runs" in bad.rule


def test_an_incomplete_run_cannot_become_the_baseline(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", {("a", "sync"): results(complete=False)})
    with pytest.raises(CompareError, match="incomplete"):
        save_baseline(run, tmp_path / "baseline")


def test_tolerance_file_overrides_and_rejects_unknown_metrics(tmp_path: Path) -> None:
    good = tmp_path / "tol.toml"
    good.write_text('["latency_ms.acceptance.p99"]\nbetter = "lower"\nratio = 0.1\n')
    assert load_tolerances(good)["latency_ms.acceptance.p99"] == Tolerance("lower", ratio=0.1)
    bad = tmp_path / "bad.toml"
    bad.write_text('["latency.p99"]\nbetter = "lower"\n')
    with pytest.raises(CompareError, match="unknown metric 'latency.p99'"):
        load_tolerances(bad)
    bad.write_text('["orders.lost"]\nbetter = "up"\n')
    with pytest.raises(CompareError, match="needs better"):
        load_tolerances(bad)
    bad.write_text('["orders.lost"]\nbetter = "lower"\nslack = 1\n')
    with pytest.raises(CompareError, match="slack"):
        load_tolerances(bad)


def test_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    base = write_run(tmp_path / "base", {("a", "async"): results()})
    same = write_run(tmp_path / "same", {("a", "async"): results()})
    worse = write_run(tmp_path / "worse", {("a", "async"): results(orders__lost=2)})
    assert main(["compare", str(base), str(same)]) == 0
    assert "no regression in 1 shop runs" in capsys.readouterr().out
    assert main(["compare", str(base), str(worse), "--json", str(tmp_path / "changes.json")]) == 1
    out = capsys.readouterr().out
    assert "orders.lost" in out and "regression" in out
    saved = json.loads((tmp_path / "changes.json").read_text())
    assert {"experiment": "a", "system": "async", "metric": "orders.lost", "baseline": 0, "current": 2,
            "status": "regression", "rule": "exact where expected 0", "room_used": None} in saved
    close = write_run(tmp_path / "close", {("a", "async"): results(availability__overall=0.88)})
    assert main(["compare", str(base), str(close)]) == 0
    out = capsys.readouterr().out
    assert "1 near miss(es)" in out and "a / async availability.overall: 0.88 against 1, 60% of the room" in out
    stolen = write_run(tmp_path / "stolen", {("a", "async"): results(host={"steal_share": 0.3},
                                                                      throughput__served_per_s=1.0)})
    assert main(["compare", str(base), str(stolen)]) == 0
    assert "1 timing metric(s) not judged" in capsys.readouterr().out
    assert main(["compare", str(base), str(stolen), "--steal-limit", "1"]) == 1
    assert main(["compare", str(base), str(stolen), "--steal-limit", "2"]) == 2
    assert "--steal-limit 2" in capsys.readouterr().out
    assert main(["compare", str(base), str(tmp_path / "nope")]) == 2
    assert "no such directory" in capsys.readouterr().out
    assert main(["baseline", str(worse), "--out", str(tmp_path / "bl")]) == 0
    assert (tmp_path / "bl" / "a" / "async" / "results.json").is_file()
    # a baseline is never cut down to a smaller set unasked (a new user's 3 runs replaced the 105)
    other = write_run(tmp_path / "other", {("b", "async"): results()})
    assert main(["baseline", str(other), "--out", str(tmp_path / "bl")]) == 2
    assert "--replace" in capsys.readouterr().out and (tmp_path / "bl" / "a" / "async" / "results.json").is_file()
    assert main(["baseline", str(other), "--out", str(tmp_path / "bl"), "--replace"]) == 0
    assert not (tmp_path / "bl" / "a").exists()
    # --only updates one experiment's shop runs; a name the run lacks is bad input (exit 2)
    assert main(["baseline", str(base), "--out", str(tmp_path / "bl"), "--only", "a"]) == 0
    assert sorted(load_set(tmp_path / "bl")) == [("a", "async"), ("b", "async")]
    assert main(["baseline", str(base), "--out", str(tmp_path / "bl"), "--only", "c"]) == 2
    assert "no shop run of 'c'" in capsys.readouterr().out


def test_a_shop_run_not_applicable_on_one_side_is_changed_and_nothing_else_is_compared() -> None:
    not_run = {"experiment": "barista-outage", "system": "async", "profile": "smoke", "status": "not-applicable",
               "applicable": False, "passed": False, "complete": True, "checks": []}
    for base, cur in ((results(), not_run), (not_run, results())):
        changes = compare_one(("e", "s"), base, cur, TOLERANCES)
        assert [(c.metric, c.status) for c in changes] == [("verdict", "changed")]
        assert not regressions(changes)
    assert compare_one(("e", "s"), not_run, not_run, TOLERANCES) == []


def test_a_baseline_update_replaces_one_experiments_shop_runs_and_keeps_the_others(tmp_path: Path) -> None:
    """--only: the named experiment's variants come from the new runs (with their envelope); every
    other shop run, its envelope and BASELINE.json's own keys stay; the update is recorded."""
    def run(name: str, served: float, other: float) -> Path:
        return write_run(tmp_path / name, {("scale@c=1", "sync"): results(throughput__served_per_s=served),
                                           ("scale@c=2", "sync"): results(throughput__served_per_s=served),
                                           ("storm", "sync"): results(throughput__served_per_s=other)})
    out = tmp_path / "bl"
    save_baseline(run("r1", 10.0, 5.0), out, [run("r2", 9.0, 4.0)])
    meta = json.loads((out / "BASELINE.json").read_text())
    (out / "BASELINE.json").write_text(json.dumps({**meta, "note": "kept"}))
    storm_before = (out / "storm" / "sync" / "envelope.json").read_text()
    written = save_baseline(run("n1", 20.0, 99.0), out, [run("n2", 18.0, 99.0)], only=["scale"])
    assert sorted(p.parent.parent.name for p in written if p.name == "results.json") == ["scale@c=1", "scale@c=2"]
    envelopes = load_envelopes(out)
    assert envelopes[("scale@c=1", "sync")]["throughput.served_per_s"] == [20.0, 18.0]
    assert (out / "storm" / "sync" / "envelope.json").read_text() == storm_before
    assert load_set(out)[("storm", "sync")]["throughput"]["served_per_s"] == 5.0
    meta = json.loads((out / "BASELINE.json").read_text())
    assert meta["note"] == "kept" and meta["from_run"] == str(tmp_path / "r1")
    assert meta["shop_runs"] == ["scale@c=1/sync", "scale@c=2/sync", "storm/sync"]
    (update,) = meta["updates"]
    assert update["experiments"] == ["scale"] and update["from_run"] == str(tmp_path / "n1")
    assert update["shop_runs"] == ["scale@c=1/sync", "scale@c=2/sync"]
    with pytest.raises(CompareError, match="no shop run of 'scal'"):
        save_baseline(run("n3", 1.0, 1.0), out, only=["scal"])
    with pytest.raises(CompareError, match="no baseline to update"):
        save_baseline(run("n4", 1.0, 1.0), tmp_path / "none", only=["scale"])
    envelope = (out / "scale@c=1" / "sync" / "envelope.json").read_text()
    for bad in ("{", "[1, 2, 3]", "null", '{"updates": "one"}'):   # unreadable, or JSON of another shape
        (out / "BASELINE.json").write_text(bad)
        with pytest.raises(CompareError, match="BASELINE.json: not"):
            save_baseline(run("n5", 1.0, 1.0), out, [run("n6", 1.0, 1.0)], only=["scale"])
        assert load_set(out)[("scale@c=1", "sync")]["throughput"]["served_per_s"] == 20.0   # left as it was
        assert (out / "scale@c=1" / "sync" / "envelope.json").read_text() == envelope


def test_the_runs_of_a_baseline_must_be_of_the_same_set(tmp_path: Path) -> None:
    first = write_run(tmp_path / "r1", {("a", "sync"): results(), ("b", "sync"): results()})
    other = write_run(tmp_path / "r2", {("c", "sync"): results()})
    with pytest.raises(CompareError, match="r2: lacks 2 shop run.s. of .*a/sync, b/sync"):
        save_baseline(first, tmp_path / "bl", [other])
    assert not (tmp_path / "bl").exists()


def test_results_and_envelopes_of_another_shape_are_one_clear_error(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", {("a", "sync"): results()})
    (run / "a" / "sync" / "results.json").write_text("[]")
    with pytest.raises(CompareError, match="results.json: not a results file .a JSON list"):
        load_set(run)
    (run / "a" / "sync" / "envelope.json").write_text('{"runs": [1], "values": []}')
    with pytest.raises(CompareError, match="envelope.json: not an envelope file"):
        load_envelopes(run)


def test_baseline_out_that_cannot_hold_a_baseline_is_bad_input(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    run = write_run(tmp_path / "run", {("a", "sync"): results()})
    (tmp_path / "afile").write_text("x")
    assert main(["baseline", str(run), "--out", str(tmp_path / "afile")]) == 2
    assert "is a file, not a directory" in capsys.readouterr().out
    assert main(["baseline", str(run), "--out", str(tmp_path / "afile" / "below")]) == 2
    assert main(["baseline", str(run), "--out", "/proc/chaoscafe-baseline"]) == 2
    assert "cannot write the baseline there" in capsys.readouterr().out
    assert main(["baseline", str(run), "--out", str(tmp_path / "bl")]) == 0
    assert "1 results, 0 envelopes" in capsys.readouterr().out
