"""Brew-time model shared by both shops' baristas: fixed, uniform or exponential, seeded."""
from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

DISTRIBUTIONS = ("fixed", "uniform", "exponential")


@dataclass(frozen=True)
class BrewTime:
    """How long a brew takes, in milliseconds.

    fixed: always `mean_ms`; uniform: between `min_ms` and `max_ms`; exponential: mean `mean_ms`
    (capped at `max_ms` when given). `sample(key)` is a pure function of (seed, key), so the same
    order brews for the same time in both shops and on every replica.
    """

    distribution: str = "fixed"
    mean_ms: float = 100.0
    min_ms: float = 0.0
    max_ms: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.distribution not in DISTRIBUTIONS:
            raise ValueError(f"brew.distribution: {self.distribution!r} is not one of {DISTRIBUTIONS}")
        if self.mean_ms < 0 or self.min_ms < 0:
            raise ValueError("brew: times must be >= 0")
        if self.distribution == "uniform" and (self.max_ms is None or self.max_ms < self.min_ms):
            raise ValueError("brew: uniform needs max_ms >= min_ms")

    def sample(self, key: str) -> float:
        """Brew time in ms for the order identified by `key`."""
        if self.distribution == "fixed":   # no generator to seed (that costs more than the rest of a short brew)
            return float(self.mean_ms)
        rng = random.Random(f"{self.seed}:{key}")
        if self.distribution == "uniform":
            assert self.max_ms is not None
            return rng.uniform(self.min_ms, self.max_ms)
        value = rng.expovariate(1.0 / self.mean_ms) if self.mean_ms > 0 else 0.0
        return min(value, self.max_ms) if self.max_ms is not None else value

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BrewTime":
        return cls(**data)
