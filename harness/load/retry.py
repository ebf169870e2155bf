"""What a customer does when an attempt ends unknown (a timeout, a reset, a 5xx): the retry policy.

    RetryPolicy   how often (`retries`), how long to wait before attempt n+1: "fixed" `after_s`
                  every time, or "exponential" after_s x 2^(n-1) up to `max_s`; with `jitter`
                  "full" a uniform draw in [0, that] (AWS's "full jitter"), seeded by the order and
                  the attempt, so two runs of one schedule wait alike
    RetryBudget   a token bucket (Finagle's and gRPC's retry budget): every first attempt deposits
                  `budget` tokens, every retry takes one, RESERVE to start with; without a token
                  the customer does not retry (the attempt's outcome stands, `budget_denied`)

Retries against a shop that is down add load exactly when it can take the least: immediate retries
multiply the arrival rate (amplification), and a shop that recovers into that load may stay
overloaded after its trigger is gone (a metastable failure). Backoff with jitter spreads the retries
out, a budget caps them. Pure: no I/O.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

BACKOFFS = ("fixed", "exponential")
JITTERS = ("none", "full")
RESERVE = 10.0   # tokens a budget starts with: the first retries of a run are not refused


@dataclass(frozen=True)
class RetryPolicy:
    """A customer's retry policy; `budget` None means no budget (retry up to `retries` times)."""

    retries: int = 0
    after_s: float = 1.0
    backoff: str = "fixed"
    max_s: float = 30.0
    jitter: str = "none"
    budget: float | None = None

    def __post_init__(self) -> None:
        if self.backoff not in BACKOFFS:
            raise ValueError(f"retry_backoff: {self.backoff!r} is not one of {BACKOFFS}")
        if self.jitter not in JITTERS:
            raise ValueError(f"retry_jitter: {self.jitter!r} is not one of {JITTERS}")

    def delay_s(self, ref: str, attempt: int) -> float:
        """Seconds to wait after failed attempt `attempt` (1-based) of order `ref` before the next."""
        base = self.after_s if self.backoff == "fixed" else min(self.max_s, self.after_s * 2 ** (attempt - 1))
        if self.jitter == "none":
            return base
        return random.Random(f"{ref}:{attempt}").uniform(0.0, base)


class RetryBudget:
    """A token bucket of retries (see the module docstring); one per driver, not thread-safe (one
    event loop uses it). `denied` counts the retries it refused."""

    def __init__(self, ratio: float | None) -> None:
        self.ratio = ratio
        self.tokens = RESERVE
        self.denied = 0

    def first_attempt(self) -> None:
        if self.ratio is not None:
            self.tokens = min(self.tokens + self.ratio, RESERVE + 1000.0)

    def allow_retry(self) -> bool:
        """Take a token for a retry; False (and counted in `denied`) when there is none."""
        if self.ratio is None:
            return True
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        self.denied += 1
        return False
