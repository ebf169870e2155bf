"""Arrival-rate shapes: each rate at chosen times, max_rate bounds, breakpoints, scaled(), validation."""
from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

import harness.load as load
from harness.load.shapes import SHAPES, Constant, MorningRush, Ramp, Shape, Step

rates = st.floats(min_value=0, max_value=1000, allow_nan=False)
times = st.floats(min_value=0.01, max_value=1000, allow_nan=False)


@st.composite
def step_shapes(draw: st.DrawFn) -> Step:
    gaps = draw(st.lists(times, min_size=0, max_size=5))
    starts = [0.0, *(sum(gaps[: i + 1]) for i in range(len(gaps)))]
    return Step(tuple((at, draw(rates)) for at in starts))


any_shape: st.SearchStrategy[Shape] = st.one_of(
    st.builds(Constant, rates),
    step_shapes(),
    st.builds(Ramp, rates, rates, times),
    st.builds(MorningRush, rates, st.floats(min_value=1, max_value=20), st.floats(0, 1000), times),
)


# ---- rate at chosen times -------------------------------------------------------------------


def test_constant_is_the_same_everywhere() -> None:
    shape = Constant(12.5)
    assert [shape.rate(t) for t in (0, 1, 1e6)] == [12.5, 12.5, 12.5]
    assert shape.max_rate(10) == 12.5
    assert shape.breakpoints(10) == ()


def test_step_holds_each_rate_from_its_start_until_the_next() -> None:
    shape = Step(((0, 2), (10, 8), (20, 4)))
    assert shape.rate(0) == 2
    assert shape.rate(9.999) == 2
    assert shape.rate(10) == 8  # right-continuous: the new rate applies at its own start
    assert shape.rate(19.5) == 8
    assert shape.rate(20) == 4
    assert shape.rate(1e6) == 4


def test_step_max_rate_only_counts_steps_that_start_before_the_end() -> None:
    shape = Step(((0, 2), (10, 8), (20, 4)))
    assert shape.max_rate(10) == 2
    assert shape.max_rate(10.5) == 8
    assert shape.breakpoints(15) == (10.0,)
    assert shape.breakpoints(100) == (10.0, 20.0)


def test_step_accepts_lists_and_stores_hashable_float_tuples() -> None:
    shape = Step([[0, 1], [5, 3]])  # type: ignore[arg-type]  # as read from TOML
    assert shape.steps == ((0.0, 1.0), (5.0, 3.0))
    assert hash(shape) == hash(Step(((0.0, 1.0), (5.0, 3.0))))
    assert shape == Step(((0, 1), (5, 3)))


def test_ramp_is_linear_then_flat() -> None:
    shape = Ramp(from_rate=10, to_rate=30, duration_s=20)
    assert shape.rate(0) == 10
    assert shape.rate(5) == pytest.approx(15)
    assert shape.rate(10) == pytest.approx(20)
    assert shape.rate(20) == 30
    assert shape.rate(100) == 30
    assert shape.max_rate(10) == pytest.approx(20)
    assert shape.max_rate(100) == 30
    assert shape.breakpoints(100) == (20.0,)
    assert shape.breakpoints(20) == ()


def test_ramp_can_go_down() -> None:
    shape = Ramp(from_rate=40, to_rate=0, duration_s=4)
    assert shape.rate(1) == pytest.approx(30)
    assert shape.rate(4) == 0
    assert shape.max_rate(100) == 40


def test_morning_rush_is_base_then_peak_then_base() -> None:
    shape = MorningRush(base_rate=5, peak_factor=4, peak_start_s=60, peak_duration_s=30)
    assert shape.rate(0) == 5
    assert shape.rate(59.999) == 5
    assert shape.rate(60) == 20
    assert shape.rate(89.999) == 20
    assert shape.rate(90) == 5  # the window is half-open
    assert shape.rate(1000) == 5
    assert shape.peak_end_s == 90
    assert shape.max_rate(60) == 5  # the peak starts at the end: not inside [0, 60)
    assert shape.max_rate(61) == 20
    assert shape.breakpoints(120) == (60.0, 90.0)
    assert shape.breakpoints(75) == (60.0,)


def test_morning_rush_starting_at_zero_has_no_breakpoint_at_zero() -> None:
    assert MorningRush(1, 2, 0, 10).breakpoints(20) == (10.0,)


# ---- properties of every shape --------------------------------------------------------------


@given(any_shape, times, st.floats(min_value=0, max_value=1))
def test_rate_is_non_negative_and_bounded_by_max_rate(shape: Shape, duration: float, frac: float) -> None:
    t = frac * duration * 0.999999
    assert 0 <= shape.rate(t) <= shape.max_rate(duration) * (1 + 1e-12)


@given(any_shape, times)
def test_rate_is_affine_between_breakpoints(shape: Shape, duration: float) -> None:
    bounds = [0.0, *shape.breakpoints(duration), duration]
    assert bounds == sorted(set(bounds))
    for a, b in zip(bounds, bounds[1:], strict=False):
        left, quarter, mid = shape.rate(a), shape.rate(a + (b - a) / 4), shape.rate(a + (b - a) / 2)
        assert quarter == pytest.approx((left + mid) / 2, rel=1e-9, abs=1e-9)


@given(
    any_shape,
    st.floats(min_value=0, max_value=500),
    st.floats(min_value=0.01, max_value=100),
    st.floats(min_value=0, max_value=100),
)
def test_scaled_stretches_time_and_multiplies_rate(shape: Shape, t: float, tf: float, rf: float) -> None:
    scaled = shape.scaled(tf, rf)
    assert type(scaled) is type(shape)
    # Times exactly on a breakpoint may land a float's width on either side once multiplied.
    if any(math.isclose(t, b, rel_tol=1e-9) for b in shape.breakpoints(math.inf)):
        return
    assert scaled.rate(t * tf) == pytest.approx(rf * shape.rate(t), rel=1e-9, abs=1e-9)


def test_scaled_multiplies_every_time_and_rate_field() -> None:
    assert Constant(10).scaled(2, 3) == Constant(30)
    assert Step(((0, 1), (10, 2))).scaled(0.5, 10) == Step(((0, 10), (5, 20)))
    ramp = Ramp(1, 3, 60).scaled(0.1, 2)
    assert (ramp.from_rate, ramp.to_rate) == (2, 6)
    assert ramp.duration_s == pytest.approx(6)
    assert MorningRush(5, 4, 60, 30).scaled(0.5, 2) == MorningRush(10, 4, 30, 15)  # factor is a ratio


@pytest.mark.parametrize(
    ("tf", "rf", "field"), [(0, 1, "time_factor"), (-1, 1, "time_factor"), (1, -0.5, "rate_factor")]
)
def test_scaled_rejects_bad_factors(tf: float, rf: float, field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field}: "):
        Constant(1).scaled(tf, rf)


# ---- validation -----------------------------------------------------------------------------


def test_validation_message_names_field_and_value() -> None:
    with pytest.raises(ValueError) as error:
        MorningRush(base_rate=5, peak_factor=0.5, peak_start_s=10, peak_duration_s=5)
    assert str(error.value) == "peak_factor: must be >= 1, got 0.5"


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: Constant(-1), "rate_per_s"),
        (lambda: Constant(math.nan), "rate_per_s"),
        (lambda: Constant(math.inf), "rate_per_s"),
        (lambda: Constant("10"), "rate_per_s"),  # type: ignore[arg-type]
        (lambda: Step(()), "steps"),
        (lambda: Step(((1, 5),)), r"steps\[0\]\.at_s"),
        (lambda: Step(((0, 5), (0, 6))), r"steps\[1\]\.at_s"),
        (lambda: Step(((0, 5), (10, 6), (5, 1))), r"steps\[2\]\.at_s"),
        (lambda: Step(((0, 5), (10, -6))), r"steps\[1\]\.rate"),
        (lambda: Step(((0, 5, 1),)), r"steps\[0\]"),  # type: ignore[arg-type]
        (lambda: Ramp(-1, 5, 10), "from_rate"),
        (lambda: Ramp(1, -5, 10), "to_rate"),
        (lambda: Ramp(1, 5, 0), "duration_s"),
        (lambda: MorningRush(-1, 2, 0, 10), "base_rate"),
        (lambda: MorningRush(1, 0.99, 0, 10), "peak_factor"),
        (lambda: MorningRush(1, 2, -1, 10), "peak_start_s"),
        (lambda: MorningRush(1, 2, 0, 0), "peak_duration_s"),
    ],
)
def test_validation_errors_name_the_field(make: Callable[[], object], field: str) -> None:
    with pytest.raises(ValueError, match=rf"^{field}: "):
        make()


def test_zero_rates_are_allowed() -> None:
    assert Constant(0).rate(1) == 0
    assert MorningRush(0, 1, 0, 1).max_rate(10) == 0


# ---- registry and exports -------------------------------------------------------------------


def test_registry_names_every_shape() -> None:
    assert SHAPES == {"constant": Constant, "step": Step, "ramp": Ramp, "morning-rush": MorningRush}
    for cls in SHAPES.values():
        assert isinstance(cls.__new__(cls), Shape)  # runtime-checkable protocol


def test_package_exports_what_it_claims() -> None:
    for name in load.__all__:
        assert getattr(load, name) is not None
    assert set(load.__all__) == {
        "PROCESSES", "SHAPES", "Arrival", "ArrivalSchedule", "Constant", "MorningRush", "Ramp", "Shape",
        "Step", "build_schedule",
    }
