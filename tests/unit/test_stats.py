"""Confidence intervals and repeated-run folding on hand-made numbers."""
from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.experiment import repeats
from harness.regression.stats import Interval, mean_ci, significant, t975


def test_t_table_values() -> None:
    assert t975(1) == 12.706 and t975(4) == 2.776 and t975(30) == 2.042
    assert t975(45) == 2.021 and t975(10_000) == 1.960
    with pytest.raises(ValueError):
        t975(0)


def test_mean_ci_textbook_example() -> None:
    # 5 values, mean 10, s = sqrt(2.5): half-width = 2.776 * 1.5811 / sqrt(5) = 1.963
    iv = mean_ci([8.0, 9.0, 10.0, 11.0, 12.0])
    assert iv.mean == 10.0
    assert math.isclose(iv.stdev, math.sqrt(2.5))
    assert math.isclose(iv.high - iv.mean, 2.776 * math.sqrt(2.5) / math.sqrt(5), rel_tol=1e-9)
    assert math.isclose(iv.mean - iv.low, iv.high - iv.mean)


def test_one_value_has_no_width_and_is_never_significant() -> None:
    one = mean_ci([3.0])
    assert (one.low, one.high) == (3.0, 3.0)
    assert not significant(one, mean_ci([100.0, 101.0]))
    with pytest.raises(ValueError):
        mean_ci([])


def test_significance_needs_disjoint_intervals() -> None:
    low, high = mean_ci([1.0, 1.1, 0.9]), mean_ci([5.0, 5.2, 4.8])
    assert significant(low, high) and significant(high, low)
    wide = mean_ci([1.0, 9.0, 5.0])
    assert not significant(low, wide)
    assert not significant(low, None)


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2, max_size=30))
def test_interval_contains_the_mean_and_round_trips(values: list[float]) -> None:
    iv = mean_ci(values)
    assert iv.low <= iv.mean + 1e-6 and iv.mean <= iv.high + 1e-6
    assert Interval.from_dict(iv.to_dict()) == iv


def run(seed: int, p99: float, passed: bool = True) -> dict[str, Any]:
    return {"seed": seed, "passed": passed, "orders": {"lost": 0},
            "latency_ms": {"acceptance": {"p99": p99}}, "checks": [{"name": "x", "passed": passed}]}


def test_seeds_and_directories() -> None:
    assert repeats.seeds(7, 3) == [7, 8, 9]
    with pytest.raises(ValueError):
        repeats.seeds(1, 0)
    from pathlib import Path
    assert repeats.out_dir(Path("e/s"), 1) == Path("e/s")
    assert repeats.out_dir(Path("e/s"), 3) == Path("e/s/repeat-3")


def test_fold_adds_intervals_and_fails_when_any_repetition_failed() -> None:
    runs = [run(1, 10.0), run(2, 20.0), run(3, 30.0, passed=False)]
    folded = repeats.fold(runs[0], runs)
    section = folded["repeats"]
    assert section["n"] == 3 and section["seeds"] == [1, 2, 3] and section["passed"] == [True, True, False]
    p99 = section["metrics"]["latency_ms.acceptance.p99"]
    assert p99["mean"] == 20.0 and p99["values"] == [10.0, 20.0, 30.0] and p99["ci_low"] < 20.0 < p99["ci_high"]
    assert section["metrics"]["orders.lost"]["ci_low"] == section["metrics"]["orders.lost"]["ci_high"] == 0.0
    assert folded["passed"] is False
    assert folded["checks"][-1] == {"name": "repeats", "expected": "all 3 repetitions pass", "min": None,
                                    "max": None, "observed": "2/3 passed", "passed": False}
    assert repeats.fold(runs[0], runs[:2])["passed"] is True


def test_a_metric_missing_in_one_repetition_gets_no_interval() -> None:
    runs = [run(1, 10.0), {**run(2, 20.0), "latency_ms": {}}]
    assert "latency_ms.acceptance.p99" not in repeats.summarise(runs)["metrics"]


def test_folding_repetitions_of_a_shop_run_not_applicable_keeps_it_not_applicable() -> None:
    from harness.experiment.repeats import fold
    not_run = {"experiment": "e", "system": "sync", "status": "not-applicable", "applicable": False,
               "passed": False, "checks": [], "seed": 1}
    folded = fold(not_run, [not_run, {**not_run, "seed": 2}])
    assert folded["status"] == "not-applicable" and folded["checks"] == [] and folded["repeats"]["n"] == 2
