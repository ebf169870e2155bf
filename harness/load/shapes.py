"""Arrival-rate shapes: λ(t) in orders per second, t in seconds since the start of the run.

A shape is a tiny immutable value (after Locust's `LoadTestShape`): it answers "how many orders per
second at time t" and nothing else. It never decides when orders are sent; `schedule.py` does that.

Contract of every shape (the `Shape` protocol):
    rate(t)             >= 0 and finite for every t >= 0; right-continuous (a step at `at` already
                        has its new rate at `at`).
    max_rate(duration)  >= rate(t) for every t in [0, duration); the λmax used for thinning.
    breakpoints(d)      the times in (0, d), ascending, where the rate may jump or bend; between two
                        consecutive breakpoints (and 0 and d) the rate is affine, so a schedule can
                        integrate it exactly.
    scaled(tf, rf)      the same shape with every time (window start, window length) multiplied by tf
                        and every rate by rf: scaled(tf, rf).rate(t * tf) == rf * rate(t).

Invalid arguments raise ValueError naming the field and the value, e.g.
"peak_factor: must be >= 1, got 0.5".
"""
from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@runtime_checkable
class Shape(Protocol):
    """An arrival-rate shape; see the module docstring for the contract."""

    def rate(self, t: float) -> float: ...

    def max_rate(self, duration: float) -> float: ...

    def breakpoints(self, duration: float) -> tuple[float, ...]: ...

    def scaled(self, time_factor: float, rate_factor: float) -> Shape: ...


def _number(name: str, value: object, *, at_least: float = 0.0, strictly: bool = False) -> float:
    """`value` as a float if it is a finite real >= at_least (> if strictly); else ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name}: must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name}: must be finite, got {value!r}")
    if value < at_least or (strictly and value == at_least):
        raise ValueError(f"{name}: must be {'>' if strictly else '>='} {at_least:g}, got {value!r}")
    return float(value)


def _factors(time_factor: float, rate_factor: float) -> tuple[float, float]:
    """Validated arguments of `scaled`: time_factor > 0, rate_factor >= 0."""
    return (
        _number("time_factor", time_factor, strictly=True),
        _number("rate_factor", rate_factor),
    )


def _inside(times: Sequence[float], duration: float) -> tuple[float, ...]:
    """The times strictly inside (0, duration), sorted, without duplicates."""
    return tuple(sorted({t for t in times if 0.0 < t < duration}))


@dataclass(frozen=True)
class Constant:
    """The same rate for the whole run."""

    rate_per_s: float

    def __post_init__(self) -> None:
        _number("rate_per_s", self.rate_per_s)

    def rate(self, t: float) -> float:
        return self.rate_per_s

    def max_rate(self, duration: float) -> float:
        return self.rate_per_s

    def breakpoints(self, duration: float) -> tuple[float, ...]:
        return ()

    def scaled(self, time_factor: float, rate_factor: float) -> Constant:
        _, rf = _factors(time_factor, rate_factor)
        return Constant(self.rate_per_s * rf)


@dataclass(frozen=True)
class Step:
    """Piecewise-constant stages as data: ((at_s, rate), ...), at_s strictly increasing from 0.

    Each rate holds from its at_s until the next at_s; the last one holds for ever. Lists (as read
    from TOML) are accepted and stored as tuples of floats.
    """

    steps: tuple[tuple[float, float], ...]
    _starts: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.steps, (str, bytes)) or not isinstance(self.steps, Sequence) or not self.steps:
            raise ValueError(f"steps: must be a non-empty sequence of (at_s, rate) pairs, got {self.steps!r}")
        normal: list[tuple[float, float]] = []
        for i, step in enumerate(self.steps):
            if isinstance(step, (str, bytes)) or not isinstance(step, Sequence) or len(step) != 2:
                raise ValueError(f"steps[{i}]: must be an (at_s, rate) pair, got {step!r}")
            at = _number(f"steps[{i}].at_s", step[0])
            rate = _number(f"steps[{i}].rate", step[1])
            if i == 0 and at != 0.0:
                raise ValueError(f"steps[0].at_s: must be 0, got {step[0]!r}")
            if normal and at <= normal[-1][0]:
                raise ValueError(f"steps[{i}].at_s: must be > steps[{i - 1}].at_s ({normal[-1][0]:g}), got {step[0]!r}")
            normal.append((at, rate))
        object.__setattr__(self, "steps", tuple(normal))
        object.__setattr__(self, "_starts", tuple(at for at, _ in normal))

    def rate(self, t: float) -> float:
        i = bisect.bisect_right(self._starts, t) - 1
        return self.steps[max(i, 0)][1]

    def max_rate(self, duration: float) -> float:
        return max(rate for at, rate in self.steps if at == 0.0 or at < duration)

    def breakpoints(self, duration: float) -> tuple[float, ...]:
        return _inside(self._starts, duration)

    def scaled(self, time_factor: float, rate_factor: float) -> Step:
        tf, rf = _factors(time_factor, rate_factor)
        return Step(tuple((at * tf, rate * rf) for at, rate in self.steps))


@dataclass(frozen=True)
class Ramp:
    """Linear from from_rate at t=0 to to_rate at t=duration_s, then to_rate for ever."""

    from_rate: float
    to_rate: float
    duration_s: float

    def __post_init__(self) -> None:
        _number("from_rate", self.from_rate)
        _number("to_rate", self.to_rate)
        _number("duration_s", self.duration_s, strictly=True)

    def rate(self, t: float) -> float:
        if t >= self.duration_s:
            return self.to_rate
        frac = max(t, 0.0) / self.duration_s
        return self.from_rate + (self.to_rate - self.from_rate) * frac

    def max_rate(self, duration: float) -> float:
        return max(self.from_rate, self.rate(min(duration, self.duration_s)))

    def breakpoints(self, duration: float) -> tuple[float, ...]:
        return _inside((self.duration_s,), duration)

    def scaled(self, time_factor: float, rate_factor: float) -> Ramp:
        tf, rf = _factors(time_factor, rate_factor)
        return Ramp(self.from_rate * rf, self.to_rate * rf, self.duration_s * tf)


@dataclass(frozen=True)
class MorningRush:
    """base_rate, then base_rate * peak_factor in [peak_start_s, peak_start_s + peak_duration_s), then base_rate."""

    base_rate: float
    peak_factor: float
    peak_start_s: float
    peak_duration_s: float

    def __post_init__(self) -> None:
        _number("base_rate", self.base_rate)
        _number("peak_factor", self.peak_factor, at_least=1.0)
        _number("peak_start_s", self.peak_start_s)
        _number("peak_duration_s", self.peak_duration_s, strictly=True)

    @property
    def peak_end_s(self) -> float:
        """The first instant after the peak."""
        return self.peak_start_s + self.peak_duration_s

    def rate(self, t: float) -> float:
        if self.peak_start_s <= t < self.peak_end_s:
            return self.base_rate * self.peak_factor
        return self.base_rate

    def max_rate(self, duration: float) -> float:
        return self.base_rate * self.peak_factor if self.peak_start_s < duration else self.base_rate

    def breakpoints(self, duration: float) -> tuple[float, ...]:
        return _inside((self.peak_start_s, self.peak_end_s), duration)

    def scaled(self, time_factor: float, rate_factor: float) -> MorningRush:
        tf, rf = _factors(time_factor, rate_factor)
        return MorningRush(self.base_rate * rf, self.peak_factor, self.peak_start_s * tf, self.peak_duration_s * tf)


SHAPES: dict[str, type[Shape]] = {"constant": Constant, "step": Step, "ramp": Ramp, "morning-rush": MorningRush}
