"""Queueing theory for the elasticity experiments: M/M/c (Erlang C) predictions and Little's law.

Pure functions, no I/O. Rates are per second, times in seconds. For Poisson arrivals at rate λ,
exponential service at rate μ per server and c servers (A = λ/μ offered load, ρ = A/c):

    P(wait) = [A^c/c! · c/(c−A)] / [Σ_{k<c} A^k/k! + A^c/c! · c/(c−A)]        (Erlang C)
    Wq = P(wait) / (cμ − λ)       Lq = λ·Wq       L = Lq + A       W = Wq + 1/μ

Capacity is c·μ; at ρ >= 1 the queue grows without bound and only capacity is predicted.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

TOLERANCE = 0.2   # measured / predicted outside [0.8, 1.2] is reported as a disagreement


def erlang_c(servers: int, offered_load: float) -> float:
    """Probability that an arrival waits in an M/M/c queue; 1.0 when offered_load >= servers."""
    if servers < 1:
        raise ValueError(f"servers must be >= 1, got {servers}")
    if offered_load < 0:
        raise ValueError(f"offered load must be >= 0, got {offered_load}")
    if offered_load >= servers:
        return 1.0
    # A^k/k! computed iteratively: no factorial overflow for large c
    term, below = 1.0, 0.0
    for k in range(servers):
        below += term
        term *= offered_load / (k + 1)
    top = term * servers / (servers - offered_load)
    return top / (below + top)


@dataclass(frozen=True)
class MMcPrediction:
    """What M/M/c predicts for one replica count (None where the queue is unstable)."""

    servers: int
    arrival_rate: float
    service_rate: float
    capacity_per_s: float          # c·μ
    utilisation: float             # ρ = λ/(cμ), may exceed 1
    throughput_per_s: float        # min(λ, cμ)
    wait_probability: float        # Erlang C
    mean_wait_s: float | None      # Wq
    mean_queue: float | None       # Lq, orders waiting for a barista
    mean_in_system: float | None   # L = Lq + λ/μ, waiting or being brewed
    mean_sojourn_s: float | None   # W = Wq + 1/μ

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def mmc(arrival_rate: float, service_rate: float, servers: int) -> MMcPrediction:
    """The M/M/c prediction; waits and backlogs are None when λ >= cμ (no steady state)."""
    if arrival_rate < 0 or service_rate <= 0:
        raise ValueError(f"need arrival_rate >= 0 and service_rate > 0, got {arrival_rate}, {service_rate}")
    capacity = servers * service_rate
    load = arrival_rate / service_rate
    p_wait = erlang_c(servers, load)
    stable = arrival_rate < capacity
    wq = p_wait / (capacity - arrival_rate) if stable else None
    lq = arrival_rate * wq if wq is not None else None
    return MMcPrediction(servers, arrival_rate, service_rate, capacity, arrival_rate / capacity,
                         min(arrival_rate, capacity), p_wait, wq, lq,
                         lq + load if lq is not None else None,
                         wq + 1 / service_rate if wq is not None else None)


def capped_exponential_mean(mean: float, cap: float | None) -> float:
    """E[min(X, cap)] for X exponential with the given mean: mean·(1 − e^(−cap/mean))."""
    if cap is None or mean <= 0:
        return mean
    return mean * (1 - math.exp(-cap / mean))


@dataclass(frozen=True)
class LittleCheck:
    """Little's law on one run: time-average backlog against arrival rate × mean time in system."""

    mean_backlog: float            # time average of the samples
    arrival_rate: float            # orders that entered per second of the observed span
    mean_time_in_system_s: float
    predicted_backlog: float       # arrival_rate × mean_time_in_system_s
    ratio: float | None            # mean_backlog / predicted_backlog
    holds: bool | None             # ratio within TOLERANCE (None when nothing was predicted)

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def time_average(samples: Sequence[tuple[float, float]]) -> float:
    """Time-weighted mean of a step function given as (time, value) samples sorted by time; each
    value holds until the next sample (a single sample is its own average)."""
    if not samples:
        raise ValueError("no samples")
    if len(samples) == 1 or samples[-1][0] <= samples[0][0]:
        return sum(v for _, v in samples) / len(samples)
    area = sum(v * (t1 - t0) for (t0, v), (t1, _) in zip(samples, samples[1:], strict=False))
    return area / (samples[-1][0] - samples[0][0])


def littles_law(samples: Sequence[tuple[float, float]], stays: Sequence[tuple[float, float]],
                tolerance: float = TOLERANCE) -> LittleCheck:
    """Check L = λ·W. `samples`: (time, backlog) sorted by time; `stays`: (entered, left) of every
    order in the same system. Only stays that overlap the sampled span count, clipped to it, so
    λ·W equals the time average of the true occupancy and the ratio measures the sampling."""
    start, end = samples[0][0], samples[-1][0]
    span = end - start
    clipped = [(max(a, start), min(b, end)) for a, b in stays if b > start and a < end]
    mean_backlog = time_average(samples)
    if span <= 0 or not clipped:
        return LittleCheck(mean_backlog, 0.0, 0.0, 0.0, None, None)
    rate = len(clipped) / span
    mean_stay = sum(b - a for a, b in clipped) / len(clipped)
    predicted = rate * mean_stay
    ratio = mean_backlog / predicted if predicted > 0 else None
    holds = None if ratio is None else within(ratio, tolerance)
    return LittleCheck(mean_backlog, rate, mean_stay, predicted, ratio, holds)


def within(ratio: float, tolerance: float = TOLERANCE) -> bool:
    """True when measured and predicted differ by at most `tolerance` of the prediction."""
    return 1 - tolerance <= ratio <= 1 + tolerance


def ratio(measured: float | None, predicted: float | None) -> float | None:
    if measured is None or predicted is None or predicted == 0:
        return None
    return round(measured / predicted, 4)


def scaling_efficiency(throughput: dict[int, float]) -> dict[int, float | None]:
    """throughput(c) / (c · throughput(1)) for every replica count c; None without a c = 1 run."""
    base = throughput.get(1)
    return {c: (round(t / (c * base), 4) if base else None) for c, t in sorted(throughput.items())}
