"""Queueing theory: Erlang C against published values, M/M/c identities, Little's law on synthetic data."""
from __future__ import annotations

import math

import pytest

from harness.elasticity.theory import (
    capped_exponential_mean,
    erlang_c,
    littles_law,
    mmc,
    ratio,
    scaling_efficiency,
    time_average,
    within,
)


@pytest.mark.parametrize(("servers", "load", "expected"), [
    (1, 0.5, 0.5),             # M/M/1: P(wait) = rho
    (2, 1.0, 1 / 3),           # M/M/2: 2 rho^2 / (1 + rho) with rho = 0.5
    (3, 2.0, 4 / 9),           # Gross & Harris style example: A = 2 erlangs, 3 servers
    (11, 10.0, 0.6821),        # call-centre table: 10 erlangs offered to 11 agents
    (12, 10.0, 0.4494),        # ... and to 12 agents
])
def test_erlang_c_matches_published_values(servers: int, load: float, expected: float) -> None:
    assert erlang_c(servers, load) == pytest.approx(expected, abs=5e-4)


def test_erlang_c_edges() -> None:
    assert erlang_c(4, 0.0) == 0.0
    assert erlang_c(2, 2.0) == 1.0 and erlang_c(2, 3.0) == 1.0
    assert 0 < erlang_c(200, 180.0) < 1          # no factorial overflow
    with pytest.raises(ValueError):
        erlang_c(0, 1.0)


def test_mmc_mm1_closed_forms() -> None:
    p = mmc(8.0, 10.0, 1)                        # rho = 0.8
    assert p.mean_wait_s == pytest.approx(0.8 / (10 - 8))
    assert p.mean_queue == pytest.approx(0.8 ** 2 / 0.2)
    assert p.mean_in_system == pytest.approx(0.8 / 0.2)
    assert p.mean_sojourn_s == pytest.approx(1 / (10 - 8))
    assert p.capacity_per_s == 10 and p.throughput_per_s == 8


def test_mmc_littles_law_and_overload() -> None:
    p = mmc(34.0, 10.0, 4)
    assert p.mean_queue == pytest.approx(34.0 * p.mean_wait_s)
    assert p.mean_in_system == pytest.approx(34.0 * p.mean_sojourn_s)
    over = mmc(50.0, 10.0, 4)
    assert over.mean_wait_s is None and over.throughput_per_s == 40 and over.utilisation == 1.25


def test_capped_exponential_mean() -> None:
    assert capped_exponential_mean(100, None) == 100
    assert capped_exponential_mean(100, 1000) == pytest.approx(100 * (1 - math.exp(-10)))


def test_time_average_weights_by_duration() -> None:
    assert time_average([(0, 0), (1, 10), (3, 0)]) == pytest.approx(10 * 2 / 3)
    assert time_average([(5, 4)]) == 4


def test_littles_law_on_a_synthetic_history() -> None:
    # one order arrives every second from t=0 and stays 2.5 s: occupancy alternates 2 and 3 (mean 2.5)
    stays = [(float(i), i + 2.5) for i in range(100)]
    samples = []
    for k in range(10, 900):                     # sampled every 0.1 s inside the busy span
        t = k / 10
        samples.append((t, sum(1 for a, b in stays if a <= t < b)))
    check = littles_law(samples, stays)
    assert check.arrival_rate == pytest.approx(1.0, rel=0.02)
    assert check.mean_time_in_system_s == pytest.approx(2.5, rel=0.02)
    assert check.holds and check.ratio == pytest.approx(1.0, abs=0.05)


def test_littles_law_reports_a_mismatch() -> None:
    stays = [(float(i), i + 2.0) for i in range(50)]
    samples = [(k / 2, 10.0) for k in range(2, 90)]   # a sampler that reads 5x too much
    check = littles_law(samples, stays)
    assert check.holds is False and check.ratio > 4


def test_ratio_within_and_efficiency() -> None:
    assert ratio(9, 10) == 0.9 and ratio(1, None) is None and ratio(1, 0) is None
    assert within(0.81) and within(1.19) and not within(0.79) and not within(1.21)
    assert scaling_efficiency({1: 10.0, 2: 19.0, 4: 30.0}) == {1: 1.0, 2: 0.95, 4: 0.75}
    assert scaling_efficiency({2: 19.0}) == {2: None}
