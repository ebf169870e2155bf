"""Brew-time model: seeded, deterministic per order, right shape per distribution."""
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cafe.brewing import BrewTime


def test_fixed_is_constant() -> None:
    model = BrewTime("fixed", mean_ms=80)
    assert {model.sample(str(i)) for i in range(50)} == {80.0}


def test_same_seed_and_key_give_the_same_time_on_any_replica() -> None:
    a = BrewTime("exponential", mean_ms=100, seed=7)
    b = BrewTime.from_dict(a.to_dict())
    assert [a.sample(str(i)) for i in range(100)] == [b.sample(str(i)) for i in range(100)]
    assert a.sample("x") == a.sample("x")


def test_other_seed_changes_the_times() -> None:
    a = BrewTime("exponential", mean_ms=100, seed=1)
    b = BrewTime("exponential", mean_ms=100, seed=2)
    assert [a.sample(str(i)) for i in range(20)] != [b.sample(str(i)) for i in range(20)]


def test_uniform_stays_in_bounds() -> None:
    model = BrewTime("uniform", min_ms=20, max_ms=40, seed=3)
    samples = [model.sample(str(i)) for i in range(2000)]
    assert min(samples) >= 20 and max(samples) <= 40
    assert 28 < statistics.mean(samples) < 32


def test_exponential_mean_and_cap() -> None:
    model = BrewTime("exponential", mean_ms=50, seed=5)
    samples = [model.sample(str(i)) for i in range(5000)]
    assert 45 < statistics.mean(samples) < 55
    capped = BrewTime("exponential", mean_ms=50, max_ms=60, seed=5)
    assert max(capped.sample(str(i)) for i in range(5000)) == 60


@pytest.mark.parametrize("kwargs", [{"distribution": "normal"}, {"mean_ms": -1},
                                    {"distribution": "uniform", "min_ms": 5, "max_ms": 1}])
def test_bad_models_are_refused(kwargs) -> None:
    with pytest.raises(ValueError):
        BrewTime(**kwargs)


@given(st.integers(0, 2**32), st.text(max_size=20), st.floats(0, 10_000))
def test_samples_are_never_negative(seed: int, key: str, mean: float) -> None:
    assert BrewTime("exponential", mean_ms=mean, seed=seed).sample(key) >= 0
