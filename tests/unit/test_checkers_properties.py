"""Properties of the checkers on random histories (Hypothesis): the ledger balances, results are
JSON, independent of record order, and internally consistent."""
from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from hdrh.histogram import HdrHistogram
from hypothesis import given
from hypothesis import strategies as st

from harness.checkers import (
    BusinessProbe,
    CheckOptions,
    Latency,
    Ledger,
    Throughput,
    default_checkers,
    run_checkers,
)
from harness.checkers.distribution import HIGHEST_US, LOWEST_US, PERCENTILES, SIGNIFICANT_DIGITS, summary
from harness.history import Record

T0 = 1_700_000_000.0
END_S = 40.0


@dataclass(frozen=True)
class PlannedOrder:
    intended: float
    lag: float
    outcome: str | None      # None: no completion record at all
    answer_after: float
    brews: int
    servings: int
    serve_after: float


planned_orders = st.builds(
    PlannedOrder,
    intended=st.floats(0, 20, allow_nan=False),
    lag=st.floats(0, 0.5, allow_nan=False),
    outcome=st.sampled_from(["ok", "ok", "fail", "info", None]),
    answer_after=st.floats(0.001, 5, allow_nan=False),
    brews=st.integers(0, 3),
    servings=st.integers(0, 3),
    serve_after=st.floats(0, 10, allow_nan=False),
)


def build(orders: Sequence[PlannedOrder], faults: Sequence[tuple[float, float]] = (),
          backlog: Sequence[int] = ()) -> list[Record]:
    """A history of `orders` (ref = index), fault windows and backlog samples, ending at END_S."""
    history: list[Record] = [{"type": "run", "t0": T0}]
    for i, (start, length) in enumerate(faults):
        history.append({"type": "fault", "phase": "start", "name": f"f{i}", "kind": "kill", "target": "b",
                        "time": T0 + start})
        history.append({"type": "fault", "phase": "end", "name": f"f{i}", "kind": "kill", "target": "b",
                        "time": T0 + start + length})
    for ref, o in enumerate(orders):
        sent = o.intended + o.lag
        history.append({"type": "invoke", "ref": str(ref), "intended": T0 + o.intended, "sent": T0 + sent})
        if o.outcome is not None:
            history.append({"type": o.outcome, "ref": str(ref), "time": T0 + sent + o.answer_after})
        for k in range(o.brews):
            history.append({"type": "brewed", "ref": str(ref), "order_id": f"o{ref}", "time": T0 + sent + k * 0.1})
        for k in range(o.servings):
            history.append({"type": "served", "ref": str(ref), "order_id": f"o{ref}",
                            "time": T0 + sent + o.serve_after + k * 0.1})
    history += [{"type": "backlog", "time": T0 + i, "total": total} for i, total in enumerate(backlog)]
    return [*history, {"type": "end", "time": T0 + END_S, "complete": True}]


@given(st.lists(st.integers(0, 3), max_size=40))
def test_ledger_balances_for_accepted_orders_served_any_number_of_times(servings: list[int]) -> None:
    orders = [PlannedOrder(i * 0.1, 0.0, "ok", 0.01, n, n, 0.5) for i, n in enumerate(servings)]
    result = Ledger().check(build(orders), CheckOptions())
    data = result.data
    assert data["lost"] + data["served"] == data["accepted"] == len(servings)
    assert data["duplicated"] == sum(1 for n in servings if n > 1)
    assert data["duplicate_servings"] == data["duplicate_brews"] == sum(n - 1 for n in servings if n > 1)
    assert data["unexpected"] == 0
    assert result.valid is (0 not in servings)


@given(st.lists(planned_orders, max_size=30))
def test_ledger_outcomes_partition_the_attempts(orders: list[PlannedOrder]) -> None:
    data = Ledger().check(build(orders), CheckOptions()).data
    outcomes = Counter(o.outcome for o in orders)
    assert data["attempted"] == data["accepted"] + data["rejected"] + data["unknown"] == len(orders)
    assert (data["accepted"], data["rejected"]) == (outcomes["ok"], outcomes["fail"])
    assert data["no_completion"] == outcomes[None]
    assert data["recovered"] == sum(1 for o in orders if o.outcome in ("info", None) and o.servings)
    assert data["lost"] == sum(1 for o in orders if o.outcome == "ok" and not o.servings)


@given(st.lists(planned_orders, max_size=30),
       st.lists(st.tuples(st.floats(0, 30, allow_nan=False), st.floats(0.1, 10, allow_nan=False)), max_size=3),
       st.lists(st.integers(0, 50), max_size=10), st.randoms(use_true_random=False))
def test_every_checker_gives_json_and_ignores_record_order(orders: list[PlannedOrder],
                                                           faults: list[tuple[float, float]],
                                                           backlog: list[int], rng: random.Random) -> None:
    history = build(orders, faults, backlog)
    shuffled = history[:]
    rng.shuffle(shuffled)
    opts = CheckOptions(slo_s=5.0, bucket_s=2.0)
    results = run_checkers(default_checkers(), history, opts)
    assert all(r.error is None for r in results.values())
    as_json = json.dumps({name: r.as_dict() for name, r in results.items()}, sort_keys=True)
    again = run_checkers(default_checkers(), shuffled, opts)
    assert json.dumps({name: r.as_dict() for name, r in again.items()}, sort_keys=True) == as_json


@given(st.lists(planned_orders, min_size=1, max_size=30))
def test_latency_summaries_are_ordered_and_counted(orders: list[PlannedOrder]) -> None:
    data = Latency().check(build(orders), CheckOptions()).data
    assert data["acceptance"]["count"] == sum(1 for o in orders if o.outcome == "ok")
    assert data["response"]["count"] == sum(1 for o in orders if o.outcome is not None)
    for part in (data["acceptance"], data["response"], data["fulfilment"]):
        if part["count"]:
            assert part["p50"] <= part["p90"] <= part["p99"] <= part["p999"] <= part["max"]
    assert sum(b["count"] for b in data["over_time"]) == len(orders)


@given(st.lists(planned_orders, max_size=30), st.sampled_from([0.25, 1.0, 3.0]))
def test_throughput_series_add_up_to_the_event_counts(orders: list[PlannedOrder], bucket_s: float) -> None:
    series = Throughput().check(build(orders), CheckOptions(bucket_s=bucket_s)).data["series"]
    totals = {key: round(sum(b[key] for b in series) * bucket_s) for key in ("sent", "accepted", "brewed", "served")}
    assert totals == {"sent": len(orders), "accepted": sum(1 for o in orders if o.outcome == "ok"),
                      "brewed": sum(o.brews for o in orders), "served": sum(o.servings for o in orders)}


@given(st.lists(planned_orders, max_size=30), st.floats(0.5, 10, allow_nan=False))
def test_probe_stretches_are_disjoint_and_agree_with_the_share(orders: list[PlannedOrder], slo_s: float) -> None:
    result = BusinessProbe().check(build(orders), CheckOptions(slo_s=slo_s))
    data = result.data
    stretches = data["overdue_stretches"]
    assert all(s < e for s, e in stretches)
    assert all(e1 < s2 for (_, e1), (s2, _) in zip(stretches, stretches[1:], strict=False))
    assert all(0 <= s and e <= END_S for s, e in stretches)
    assert data["longest_overdue_s"] == pytest.approx(max((e - s for s, e in stretches), default=0.0), abs=1e-5)
    assert result.valid is (None if not data["accepted"] else data["served_within_slo"] == data["accepted"])
    if stretches:  # an overdue stretch means some accepted order was not served in time
        assert result.valid is False


@given(st.lists(st.floats(-5, 4_000_000, allow_nan=False), min_size=1, max_size=300))
def test_summary_agrees_with_a_real_hdr_histogram(values_ms: list[float]) -> None:
    clamped_us = [min(HIGHEST_US, max(LOWEST_US, round(value * 1000))) for value in values_ms]
    hist = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
    for value in clamped_us:
        hist.record_value(value)
    result = summary(values_ms)
    assert result["count"] == hist.get_total_count()
    expected = hist.get_percentile_to_value_dict(list(PERCENTILES.values()))  # one scan for all
    for key, percentile in PERCENTILES.items():
        assert result[key] == round(expected[percentile] / 1000, 3), key
    assert result["max"] == round(hist.get_max_value() / 1000, 3)
    assert result["mean"] == pytest.approx(sum(clamped_us) / len(clamped_us) / 1000, abs=1e-3)  # exact, not HDR
