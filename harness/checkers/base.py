"""The checker role: a pure function from a history to a verdict (Jepsen's `checker`).

A checker never does I/O and never reads the clock: give it a history and options, get a
`CheckerResult`. `valid` is True, False, or None (unknown: the checker could not decide).
A checker that raises is reported as unknown by `run_checkers`, never as a crash.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from harness.history import Record


@dataclass(frozen=True)
class CheckOptions:
    """Thresholds shared by every checker."""

    slo_s: float = 30.0       # business probe: an accepted order must be served within this
    bucket_s: float = 1.0     # width of time buckets for "over time" series
    late_ms: float = 10.0     # generator lag above this counts the arrival as "late"
    max_lag_ms: float = 1000.0   # generator: a lag p99 above this makes the run inconclusive
    steady_min_orders: int = 5   # steady state: orders completed before the first fault, at least
    steady_min_availability: float = 0.95   # ... and the share of them accepted, at least
    steady_max_backlog: float | None = None  # ... and the backlog sampled before it, at most (None: any)

    def __post_init__(self) -> None:
        if self.bucket_s <= 0:
            raise ValueError(f"bucket_s must be > 0, got {self.bucket_s}")
        if self.slo_s < 0:
            raise ValueError(f"slo_s must be >= 0, got {self.slo_s}")


@dataclass(frozen=True)
class CheckerResult:
    """One checker's verdict; `data` holds JSON-serialisable numbers, strings, lists and dicts."""

    name: str
    valid: bool | None
    data: dict[str, Any]
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "valid": self.valid, "data": self.data, "error": self.error}


class Checker(Protocol):
    """Pure: the same history and options always give the same result."""

    @property
    def name(self) -> str: ...

    def check(self, history: Sequence[Record], opts: CheckOptions) -> CheckerResult: ...


def run_checkers(checkers: Sequence[Checker], history: Sequence[Record],
                 opts: CheckOptions | None = None) -> dict[str, CheckerResult]:
    """Every checker's result by name, in the given order.

    A checker that raises yields `CheckerResult(name, None, {}, error="ExcType: message")`
    and the others still run.
    """
    opts = opts or CheckOptions()
    results: dict[str, CheckerResult] = {}
    for checker in checkers:
        try:
            results[checker.name] = checker.check(history, opts)
        except Exception as exc:  # a crashing checker is "unknown", not a crashed run
            results[checker.name] = CheckerResult(checker.name, None, {}, error=f"{type(exc).__name__}: {exc}")
    return results


def combine_validity(verdicts: Sequence[bool | None]) -> bool | None:
    """False if any is False, else None if any is None, else True (True for none at all)."""
    if any(v is False for v in verdicts):
        return False
    if any(v is None for v in verdicts):
        return None
    return True


@dataclass(frozen=True)
class Composite:
    """Several checkers as one: data = {name: data}, validity combined by `combine_validity`."""

    checkers: tuple[Checker, ...]
    name: str = "composite"

    def check(self, history: Sequence[Record], opts: CheckOptions) -> CheckerResult:
        results = run_checkers(self.checkers, history, opts)
        errors = [f"{name}: {r.error}" for name, r in results.items() if r.error is not None]
        return CheckerResult(
            self.name,
            combine_validity([r.valid for r in results.values()]),
            {name: r.data for name, r in results.items()},
            error="; ".join(errors) or None,
        )


def compose(*checkers: Checker, name: str = "composite") -> Checker:
    """One checker running all of `checkers`; a raising member makes the whole unknown, not a crash."""
    return Composite(tuple(checkers), name)

