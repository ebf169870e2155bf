"""Arrival schedules: uniform counts and spacing, Poisson statistics, determinism, content, validation.

Poisson tests are seeded and so deterministic, but they assert with a statistical margin (about four
standard deviations) so that any seed would pass: they test the process, not one lucky draw.
"""
from __future__ import annotations

import hashlib
import json
import math
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.load.schedule import HAIR_S, PROCESSES, Arrival, ArrivalSchedule, build_schedule
from harness.load.shapes import Constant, MorningRush, Ramp, Shape, Step

MIX = {"Latte": 3.0, "Espresso": 1.0, "Mocha": 1.0}
SIZES = {"Latte": ("small", "medium", "large"), "Espresso": ("small",), "Mocha": ("medium", "large")}


def build(shape: Shape, duration: float, process: str = "uniform", seed: int = 7,
          mix: Mapping[str, float] = MIX, sizes: Mapping[str, Sequence[str]] = SIZES) -> ArrivalSchedule:
    return build_schedule(shape, duration, process=process, seed=seed, menu_mix=mix, sizes=sizes)


def offsets(schedule: ArrivalSchedule) -> list[float]:
    return [a.offset_s for a in schedule.arrivals]


def count_in(schedule: ArrivalSchedule, start: float, end: float) -> int:
    return sum(1 for a in schedule.arrivals if start <= a.offset_s < end)


def within_sigmas(count: int, expected: float, k: float = 4.0) -> bool:
    """A Poisson count is within k standard deviations (sqrt of the mean) of its mean."""
    return abs(count - expected) <= k * math.sqrt(expected)


# Small rates and durations keep every Hypothesis example under a few thousand arrivals.
small_rates = st.floats(min_value=0, max_value=50)
small_times = st.floats(min_value=0.1, max_value=30)


@st.composite
def step_shapes(draw: st.DrawFn) -> Step:
    gaps = draw(st.lists(small_times, max_size=4))
    starts = [0.0, *(sum(gaps[: i + 1]) for i in range(len(gaps)))]
    return Step(tuple((at, draw(small_rates)) for at in starts))


shapes: st.SearchStrategy[Shape] = st.one_of(
    st.builds(Constant, small_rates),
    step_shapes(),
    st.builds(Ramp, small_rates, small_rates, small_times),
    st.builds(MorningRush, st.floats(0, 10), st.floats(1, 5), st.floats(0, 30), small_times),
)
processes = st.sampled_from(PROCESSES)
seeds = st.integers(min_value=0, max_value=2**63)


# ---- uniform --------------------------------------------------------------------------------


def test_uniform_constant_gives_exactly_rate_times_duration_evenly_spaced() -> None:
    schedule = build(Constant(10), 3.0)
    assert len(schedule) == 30
    assert schedule.arrivals[0].offset_s == pytest.approx(0.1)
    gaps = [b - a for a, b in zip(offsets(schedule), offsets(schedule)[1:], strict=False)]
    assert gaps == pytest.approx([0.1] * 29, abs=2 * HAIR_S)
    assert schedule.arrivals[-1].offset_s == pytest.approx(3.0 - HAIR_S)  # pulled inside [0, 3)
    assert schedule.expected_rate() == 10


def test_uniform_constant_ten_per_second_for_two_seconds_gives_twenty() -> None:
    schedule = build(Constant(10), 2.0)
    assert offsets(schedule) == pytest.approx([k / 10 for k in range(1, 20)] + [2.0 - HAIR_S])


def test_uniform_counts_whole_orders_only() -> None:
    assert len(build(Constant(2.5), 1.0)) == 2
    assert len(build(Constant(0.5), 1.0)) == 0
    assert len(build(Constant(0), 100.0)) == 0


def test_uniform_count_survives_float_error() -> None:
    assert 8.2 * 15.0 < 123  # 122.99999999999999 in floats; still 123 whole orders
    schedule = build(Constant(8.2), 15.0)
    assert len(schedule) == 123
    assert schedule.arrivals[-1].offset_s == pytest.approx(15.0 - HAIR_S)


def test_uniform_morning_rush_counts_in_and_out_of_the_peak() -> None:
    base, factor, start, length, duration = 5.0, 4.0, 10.0, 5.0, 30.0
    schedule = build(MorningRush(base, factor, start, length), duration)
    assert abs(count_in(schedule, start, start + length) - base * factor * length) <= 1
    assert abs(count_in(schedule, 0, start) - base * start) <= 1
    assert abs(count_in(schedule, start + length, duration) - base * (duration - start - length)) <= 1
    assert len(schedule) == base * (duration - length) + base * factor * length


def test_the_busiest_second_of_a_rush_is_its_peak_rate() -> None:
    schedule = build(MorningRush(5.0, 4.0, 10.0, 5.0), 30.0)
    assert schedule.busiest_second() == 20
    assert ArrivalSchedule((), 1.0).busiest_second() == 0


def test_uniform_ramp_follows_the_integral() -> None:
    schedule = build(Ramp(0, 10, 10), 15.0)  # Λ(t) = t²/2 up to 10 s, then 50 + 10 (t - 10)
    assert len(schedule) == 100
    for t in (1.0, 3.0, 5.5, 10.0, 12.5):
        expected = t * t / 2 if t <= 10 else 50 + 10 * (t - 10)
        assert abs(count_in(schedule, 0, t) - expected) <= 1
    # order k is due at sqrt(2k) during the ramp
    assert offsets(schedule)[:50] == pytest.approx([math.sqrt(2 * k) for k in range(1, 51)])


def test_uniform_step_counts_per_stage() -> None:
    schedule = build(Step(((0, 2), (5, 20), (6, 0), (8, 4))), 10.0)
    # order k is due when the integral reaches k, so each stage's last order falls on its end: (a, b]
    stages = ((0, 5), (5, 6), (6, 8), (8, 10))
    assert [sum(1 for t in offsets(schedule) if a < t <= b) for a, b in stages] == [10, 20, 0, 8]
    assert 5.0 in offsets(schedule) and 6.0 in offsets(schedule)


@given(shapes, small_times)
def test_uniform_count_is_the_whole_part_of_the_integral(shape: Shape, duration: float) -> None:
    # Reference integral by the midpoint rule on a fine grid (exact for the pieces it does not straddle).
    n = 20_000
    integral = sum(shape.rate((i + 0.5) * duration / n) for i in range(n)) * duration / n
    assert abs(len(build(shape, duration)) - integral) <= 1 + 1e-6 * integral + shape.max_rate(duration) * duration / n


# ---- poisson --------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_poisson_constant_count_and_inter_arrivals(seed: int) -> None:
    lam, duration = 50.0, 200.0
    schedule = build(Constant(lam), duration, "poisson", seed)
    assert within_sigmas(len(schedule), lam * duration)
    gaps = [b - a for a, b in zip(offsets(schedule), offsets(schedule)[1:], strict=False)]
    assert statistics.fmean(gaps) == pytest.approx(1 / lam, rel=0.05)
    # exponential gaps: the standard deviation equals the mean (uniform spacing would give ~0)
    assert statistics.stdev(gaps) / statistics.fmean(gaps) == pytest.approx(1.0, abs=0.1)


def test_poisson_rush_window_runs_at_factor_times_base() -> None:
    base, factor, start, length, duration = 20.0, 5.0, 50.0, 50.0, 150.0
    schedule = build(MorningRush(base, factor, start, length), duration, "poisson", 11)
    inside, outside = count_in(schedule, start, start + length), len(schedule) - count_in(schedule, start, start + length)
    assert within_sigmas(inside, base * factor * length)
    assert within_sigmas(outside, base * (duration - length))
    assert (inside / length) / (outside / (duration - length)) == pytest.approx(factor, rel=0.15)


def test_poisson_ramp_follows_the_integral() -> None:
    schedule = build(Ramp(0, 100, 100), 100.0, "poisson", 5)  # Λ(t) = t²/2
    for t in (20.0, 50.0, 80.0, 100.0):
        assert within_sigmas(count_in(schedule, 0, t), t * t / 2)


def test_poisson_zero_rate_gives_no_arrivals() -> None:
    schedule = build(Constant(0), 10.0, "poisson")
    assert len(schedule) == 0
    assert schedule.expected_rate() == 0
    assert schedule.to_jsonl() == ""


def test_poisson_rejects_a_shape_whose_max_rate_is_not_a_bound() -> None:
    class Liar(Constant):
        def max_rate(self, duration: float) -> float:
            return 1.0

    with pytest.raises(ValueError, match=r"^shape: rate"):
        build(Liar(10), 10.0, "poisson")


# ---- determinism and invariants -------------------------------------------------------------


@given(shapes, small_times, processes, seeds)
def test_same_inputs_give_the_same_schedule_and_digest(shape: Shape, duration: float, process: str,
                                                       seed: int) -> None:
    first, second = build(shape, duration, process, seed), build(shape, duration, process, seed)
    assert first == second
    assert first.digest() == second.digest()
    assert first.to_jsonl() == second.to_jsonl()


@given(seeds, seeds)
def test_different_seeds_give_different_poisson_offsets(seed: int, other: int) -> None:
    if seed == other:
        return
    first, second = build(Constant(20), 5.0, "poisson", seed), build(Constant(20), 5.0, "poisson", other)
    assert offsets(first) != offsets(second)
    assert first.digest() != second.digest()


@given(shapes, small_times, processes, seeds)
def test_arrivals_are_sorted_indexed_and_inside_the_run(shape: Shape, duration: float, process: str,
                                                        seed: int) -> None:
    schedule = build(shape, duration, process, seed)
    assert [a.index for a in schedule.arrivals] == list(range(len(schedule)))
    assert offsets(schedule) == sorted(offsets(schedule))
    assert all(0 <= a.offset_s < duration for a in schedule.arrivals)
    # still inside once rounded to the microsecond, as written to schedule.jsonl
    assert all(0 <= json.loads(line)["offset_s"] < duration for line in schedule.to_jsonl().splitlines())


def test_the_mix_order_does_not_matter() -> None:
    reordered = dict(reversed(list(MIX.items())))
    assert build(Constant(10), 10.0, mix=reordered).digest() == build(Constant(10), 10.0).digest()


def test_content_of_the_first_orders_does_not_depend_on_the_shape_or_process() -> None:
    uniform = build(Constant(10), 10.0, "uniform", 3)
    rush = build(MorningRush(2, 10, 1, 3), 20.0, "poisson", 3)
    n = min(len(uniform), len(rush))
    assert n > 50
    content = [(a.product, a.size) for a in uniform.arrivals[:n]]
    assert content == [(a.product, a.size) for a in rush.arrivals[:n]]
    assert content != [(a.product, a.size) for a in build(Constant(10), 10.0, "uniform", 4).arrivals[:n]]


# ---- content --------------------------------------------------------------------------------


def test_menu_mix_proportions_follow_the_weights() -> None:
    schedule = build(Constant(100), 60.0)  # 6000 orders
    counts = Counter(a.product for a in schedule.arrivals)
    total = sum(MIX.values())
    for product, weight in MIX.items():
        p = weight / total
        sigma = math.sqrt(p * (1 - p) / len(schedule))
        assert abs(counts[product] / len(schedule) - p) <= 4 * sigma


def test_sizes_are_drawn_uniformly() -> None:
    schedule = build(Constant(100), 60.0, mix={"Latte": 1})
    counts = Counter(a.size for a in schedule.arrivals)
    assert set(counts) == {"small", "medium", "large"}
    assert all(abs(c / len(schedule) - 1 / 3) <= 4 * math.sqrt(2 / 9 / len(schedule)) for c in counts.values())


menus = st.dictionaries(
    st.text(min_size=1, max_size=8),
    st.tuples(st.floats(min_value=0.01, max_value=100), st.lists(st.text(min_size=1, max_size=5), min_size=1,
                                                                  max_size=4)),
    min_size=1, max_size=5,
)


@given(menus, seeds, processes)
def test_sizes_are_always_valid_for_the_product(menu: dict[str, tuple[float, list[str]]], seed: int,
                                                process: str) -> None:
    mix = {product: weight for product, (weight, _) in menu.items()}
    sizes = {product: choices for product, (_, choices) in menu.items()}
    schedule = build(Constant(20), 5.0, process, seed, mix, sizes)
    assert all(a.product in mix and a.size in sizes[a.product] for a in schedule.arrivals)


# ---- canonical form -------------------------------------------------------------------------


def test_jsonl_is_canonical() -> None:
    schedule = build(Constant(2), 1.5, mix={"Flat White": 1}, sizes={"Flat White": ["small"]})
    customers = [a.customer for a in schedule.arrivals]
    assert all(c.startswith("customer-") and len(c) == 12 for c in customers)
    assert schedule.to_jsonl() == (
        f'{{"customer":"{customers[0]}","index":0,"offset_s":0.500000,"product":"Flat White","size":"small"}}\n'
        f'{{"customer":"{customers[1]}","index":1,"offset_s":1.000000,"product":"Flat White","size":"small"}}\n'
        f'{{"customer":"{customers[2]}","index":2,"offset_s":1.499999,"product":"Flat White","size":"small"}}\n'
    )
    header = '{"duration_s":1.500000}\n'
    assert schedule.digest() == hashlib.sha256((header + schedule.to_jsonl()).encode()).hexdigest()


def test_jsonl_lines_have_sorted_keys_and_six_decimals() -> None:
    schedule = build(Ramp(1, 30, 5), 5.0, "poisson", mix={"Café ☕": 1}, sizes={"Café ☕": ["grand"]})
    for line, arrival in zip(schedule.to_jsonl().splitlines(), schedule.arrivals, strict=True):
        record = json.loads(line)
        assert list(record) == sorted(record)
        assert line.isascii()
        assert record == {"customer": arrival.customer, "index": arrival.index,
                          "offset_s": round(arrival.offset_s, 6), "product": "Café ☕", "size": "grand"}
        assert len(line.split('"offset_s":')[1].split(",")[0].split(".")[1]) == 6


def test_digest_depends_on_duration_and_content() -> None:
    base = build(Constant(10), 10.0)
    assert build(Constant(10), 10.5).digest() != base.digest()  # one more arrival, longer run
    assert build(Constant(10), 10.0, seed=8).digest() != base.digest()  # same offsets, other content


# ---- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"process": "bursty"}, "process"),
        ({"duration": 0.0}, "duration_s"),
        ({"duration": math.inf}, "duration_s"),
        ({"seed": "7"}, "seed"),
        ({"mix": {}}, "menu_mix"),
        ({"mix": {"Latte": -1.0}}, r"menu_mix\['Latte'\]"),
        ({"mix": {"Latte": 0.0}}, r"menu_mix\['Latte'\]"),
        ({"mix": {"Latte": math.nan}}, r"menu_mix\['Latte'\]"),
        ({"mix": {"Chai": 1.0}}, r"sizes\['Chai'\]"),
        ({"sizes": {**SIZES, "Mocha": ()}}, r"sizes\['Mocha'\]"),
    ],
)
def test_bad_arguments_name_the_field(kwargs: dict[str, object], field: str) -> None:
    args: dict[str, object] = {"shape": Constant(1), "duration": 10.0, **kwargs}
    with pytest.raises(ValueError, match=rf"^{field}: "):
        build(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("arrivals", "field"),
    [
        ((Arrival(1, 0.5, "Latte", "small"),), r"arrivals\[0\]\.index"),
        ((Arrival(0, 0.5, "Latte", "small"), Arrival(1, 0.4, "Latte", "small")), r"arrivals\[1\]\.offset_s"),
        ((Arrival(0, 10.0, "Latte", "small"),), r"arrivals\[0\]\.offset_s"),
        ((Arrival(0, -0.1, "Latte", "small"),), r"arrivals\[0\]\.offset_s"),
    ],
)
def test_a_hand_built_schedule_is_checked(arrivals: tuple[Arrival, ...], field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field}: "):
        ArrivalSchedule(arrivals, 10.0)


def test_arrival_ref_is_its_index_as_text() -> None:
    assert Arrival(12, 0.0, "Latte", "small").ref == "12"


def test_customers_come_from_their_own_stream() -> None:
    with_customers = build(Constant(20), 5.0, "poisson", seed=3)
    without = build_schedule(Constant(20), 5.0, process="poisson", seed=3, menu_mix=MIX, sizes=SIZES, customers=0)
    assert [(a.offset_s, a.product, a.size) for a in with_customers.arrivals] == \
        [(a.offset_s, a.product, a.size) for a in without.arrivals]
    assert all(a.customer == "" for a in without.arrivals)
    assert '"customer"' not in without.to_jsonl()
    regulars = {a.customer for a in with_customers.arrivals}
    assert len(regulars) > 20 and all("customer-001" <= c <= "customer-100" for c in regulars)
    assert [a.customer for a in build(Constant(20), 5.0, "poisson", seed=3).arrivals] == \
        [a.customer for a in with_customers.arrivals]
