"""benchmarks/generator_reference.py's pure parts: how a round is judged, and how Vegeta is found."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchmarks.generator_reference import find_vegeta, judge, schedule_lags_ms


def _tool(name: str, p50: float | None, p99: float | None, ok: int = 100, scheduled: int = 100) -> dict:
    latency = {"p50": p50, "p99": p99, "max": p99}
    return {"tool": name, "scheduled": scheduled, "ok": ok, "errors": [], "latency_ms": latency,
            "latency_from_sent_ms": dict(latency)}


def test_within_the_tolerance_passes() -> None:
    verdict = judge(_tool("chaoscafe", 10.5, 21.0), _tool("vegeta", 10.0, 20.0), 0.10, 0.1)
    assert verdict["passed"] and verdict["p50_ratio"] == 1.05 and verdict["p99_diff_ms"] == 1.0


def test_more_than_the_tolerance_and_the_floor_fails_naming_the_percentile() -> None:
    verdict = judge(_tool("chaoscafe", 10.0, 25.0), _tool("vegeta", 10.0, 20.0), 0.10, 0.1)
    assert not verdict["passed"]
    assert verdict["reasons"] == [
        "p99 from the intended time 25.000 ms vs vegeta 20.000 ms: above by more than 10% and more than 0.1 ms",
        "p99 from the send 25.000 ms vs vegeta 20.000 ms: off by more than 10% and more than 0.1 ms"]


def test_the_send_and_the_intended_time_are_judged_apart() -> None:
    ours, ref = _tool("chaoscafe", 10.0, 20.0), _tool("vegeta", 10.0, 20.0)
    ours["latency_ms"] = {"p50": 11.5, "p99": 21.0, "max": 21.0}   # our own lag added 1.5 ms at p50
    verdict = judge(ours, ref, 0.10, 0.1)
    assert not verdict["passed"] and verdict["p50_diff_ms"] == 1.5 and verdict["sent_p50_diff_ms"] == 0.0
    assert [r.split(" ms")[0] for r in verdict["reasons"]] == ["p50 from the intended time 11.500"]


def test_the_floor_lets_sub_millisecond_latencies_differ_by_that_much() -> None:
    ours, ref = _tool("chaoscafe", 0.30, 0.60), _tool("vegeta", 0.22, 0.50)   # 36% and 20% apart
    assert judge(ours, ref, 0.10, 0.1)["passed"]
    assert not judge(ours, ref, 0.10, 0.05)["passed"]


def test_unanswered_orders_fail_the_round_on_either_side() -> None:
    verdict = judge(_tool("chaoscafe", 1.0, 2.0), _tool("vegeta", 1.0, 2.0, ok=97), 0.10, 0.1)
    assert not verdict["passed"] and verdict["reasons"] == ["vegeta: 97 of 100 answered 202 []"]
    assert not judge(_tool("chaoscafe", None, None, ok=0), _tool("vegeta", 1.0, 2.0), 0.1, 0.1)["passed"]


def test_find_vegeta_takes_the_environment_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = tmp_path / "vegeta"
    binary.write_text("#!/bin/sh\n")
    monkeypatch.setenv("CHAOSCAFE_VEGETA", str(binary))
    assert find_vegeta() is None          # not executable
    os.chmod(binary, 0o755)
    assert find_vegeta() == binary
    monkeypatch.setenv("CHAOSCAFE_VEGETA", str(tmp_path / "missing"))
    assert find_vegeta() is None          # set but wrong: not silently another one


def test_more_punctual_than_the_reference_is_no_fault_but_a_faster_request_is() -> None:
    ours, ref = _tool("chaoscafe", 0.33, 0.60), _tool("vegeta", 0.40, 0.97)   # Vegeta's own lag in its numbers
    ours["latency_from_sent_ms"] = ref["latency_from_sent_ms"] = {"p50": 0.19, "p99": 0.32, "max": 1.0}
    assert judge(ours, ref, 0.10, 0.1)["passed"]
    ours["latency_from_sent_ms"] = {"p50": 0.19, "p99": 0.10, "max": 1.0}    # timing a different thing
    assert judge(ours, ref, 0.10, 0.1)["reasons"] == [
        "p99 from the send 0.100 ms vs vegeta 0.320 ms: off by more than 10% and more than 0.1 ms"]


def test_vegetas_schedule_is_placed_so_that_no_lag_is_negative() -> None:
    # at 500/s: the first request 0.4 ms late, the second on time, the third 0.1 ms late
    starts = [100.0004, 100.002, 100.0041]
    lags = schedule_lags_ms(starts, 500)
    assert min(lags) == 0 and all(x >= 0 for x in lags)
    assert [round(x, 3) for x in lags] == [0.4, 0.0, 0.1]
    assert schedule_lags_ms([], 500) == []
