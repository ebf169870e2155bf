"""The one percentile rule (harness.checkers.distribution): the checkers, the report and the benchmarks give
the same p50/p99 of the same latencies, which are what HdrHistogram gives; its edge cases."""
from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
from hdrh.histogram import HdrHistogram

from harness.checkers import CheckOptions, GeneratorHealth, Latency
from harness.checkers.distribution import (
    HIGHEST_US,
    LOWEST_US,
    SIGNIFICANT_DIGITS,
    microseconds,
    percentile,
    percentile_ms,
    summary,
    value_at,
)
from harness.history import Record
from harness.report.analysis import timeline_frame

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # benchmarks/ is a folder of scripts, not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks.common import constant_schedule, summarise  # noqa: E402

T0 = 1_700_000_000.0
_rng = random.Random(15)
DATA = {
    "1..60 ms": [float(ms) for ms in range(1, 61)],   # p99 is the 59th value; ceil(0.99 * 60) would be the 60th
    "7 values": [12.5, 3.0, 7.25, 3.0, 40.0, 1.0, 9.999],
    "1000 lognormal": [round(_rng.lognormvariate(2.0, 1.0), 3) for _ in range(1000)],
    "sub-ms and hours": [0.0004, 0.5, 2.048, 4096.5, 7_200_000.0],   # clamped to 1 µs and one hour
}


def history(latencies_ms: list[float], lag_ms: float = 0.25) -> list[Record]:
    """One order per latency, intended 10 ms apart, sent `lag_ms` (plus i µs) late, accepted `latency`
    after its intended time: records both a run's history and a benchmark step are made of."""
    records: list[Record] = [{"type": "run", "experiment": "test", "system": "async", "seed": 1,
                              "profile": "test", "t0": T0, "config": {}}]
    for i, latency in enumerate(latencies_ms):
        intended = T0 + i * 0.01
        records.append({"type": "invoke", "ref": str(i), "intended": intended, "sent": intended + (lag_ms + i / 1000) / 1000,
                        "order": {"product": "Latte"}})
        records.append({"type": "ok", "ref": str(i), "time": intended + latency / 1000, "status": 202,
                        "order_id": f"o{i}", "error": None})
    return records


@pytest.mark.parametrize("name", DATA)
def test_benchmark_checkers_and_report_give_the_same_p50_and_p99(name: str) -> None:
    latencies = DATA[name]
    records = history(latencies)
    step = summarise(100.0, constant_schedule(100.0, len(latencies) / 100, seed=1), T0, records, wall_s=1.0)
    checker = Latency().check(records, CheckOptions()).data["acceptance"]
    generator = GeneratorHealth().check(records, CheckOptions()).data
    timeline = timeline_frame(records, bucket_s=1e9).iloc[0]       # every order in one bucket
    lags = [(r["sent"] - r["intended"]) * 1000 for r in records if r["type"] == "invoke"]
    for q, key in ((50, "p50"), (99, "p99")):
        expected = percentile(latencies, q)
        assert expected is not None
        assert step.latency_ms[key] == checker[key] == expected, (key, step.latency_ms, checker)
        assert timeline[f"acceptance_{key}"] == expected, key
        assert step.lag_ms[key] == generator[f"lag_{key}_ms"] == percentile(lags, q), key
    assert step.latency_ms["max"] == checker["max"] == percentile(latencies, 100)


@pytest.mark.parametrize("name", DATA)
def test_percentiles_are_hdrhistograms_value_at_percentile(name: str) -> None:
    """The source of the rule: HdrHistogram's getValueAtPercentile over the same values (in µs)."""
    hist = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
    for us in microseconds(DATA[name]):
        hist.record_value(us)
    for q in (0.5, 50.0, 90.0, 99.0, 99.9, 100.0):
        assert percentile(DATA[name], q) == round(hist.get_value_at_percentile(q) / 1000, 3), q


def test_the_rank_is_hdrs_rounded_nearest_rank() -> None:
    assert value_at(list(range(1, 61)), 99) == 59           # rank int(59.4 + 0.5); ceil(59.4) would be 60
    assert value_at(list(range(1, 101)), 99) == 99
    assert value_at(list(range(1, 16)), 50) == 8            # rank int(7.5 + 0.5)
    assert value_at([1.5, 2.5], 0) == 1.5                   # rank at least 1
    assert value_at([1.5, 2.5], 100) == value_at([1.5, 2.5], 250) == 2.5   # q clamped to 100


def test_no_values_give_none() -> None:
    assert percentile([], 50) is None and percentile_ms([], 99) is None
    assert {k: v for k, v in summary([]).items() if k != "count"} == dict.fromkeys(("mean", "p50", "p90", "p99",
                                                                                    "p999", "max"))
    step = summarise(100.0, constant_schedule(100.0, 0.1, seed=1), T0, history([])[:1], wall_s=1.0)
    assert step.latency_ms == step.lag_ms == {"p50": None, "p99": None, "max": None}
    with pytest.raises(ValueError):
        value_at([], 50)


def test_one_value_is_every_percentile() -> None:
    assert [value_at([7], q) for q in (0.1, 50, 99, 100)] == [7] * 4
    # reported at HDR's precision: 3200 µs is in a bucket 2 µs wide, whose highest value is 3201 µs
    assert [percentile([3.2], q) for q in (0.1, 50, 99, 100)] == [3.201] * 4
    assert percentile([1.5], 50) == 1.5                     # exact below 2048 µs


def test_q_100_is_the_max() -> None:
    for values in DATA.values():
        assert percentile(values, 100) == summary(values)["max"]
        assert value_at(sorted(values), 100) == max(values)
