"""The customers' retry policy and budget (harness.load.retry) and what the retries checker makes of them."""
from __future__ import annotations

import pytest

from harness.checkers import Retries
from harness.checkers.availability import Attempt, recovery_s
from harness.checkers.base import CheckOptions
from harness.checkers.timeline import FaultSpan
from harness.load.retry import RESERVE, RetryBudget, RetryPolicy

T0 = 1_700_000_000.0


def test_fixed_and_exponential_backoff_and_full_jitter() -> None:
    assert [RetryPolicy(5, 0.2).delay_s("7", n) for n in (1, 2, 3)] == [0.2, 0.2, 0.2]
    exp = RetryPolicy(5, 0.2, "exponential", max_s=1.0)
    assert [exp.delay_s("7", n) for n in (1, 2, 3, 4)] == [0.2, 0.4, 0.8, 1.0]   # doubling, capped
    jittered = RetryPolicy(5, 0.2, "exponential", max_s=1.0, jitter="full")
    draws = [jittered.delay_s(str(ref), 3) for ref in range(200)]
    assert all(0 <= d <= 0.8 for d in draws) and len(set(draws)) > 150         # spread over [0, 0.8]
    assert jittered.delay_s("7", 3) == jittered.delay_s("7", 3)                 # seeded by order and attempt
    with pytest.raises(ValueError, match="retry_backoff: 'linear'"):
        RetryPolicy(backoff="linear")


def test_a_budget_allows_its_share_of_retries_after_the_reserve() -> None:
    budget = RetryBudget(0.1)
    for _ in range(100):
        budget.first_attempt()                  # 100 orders: 10 tokens earned, RESERVE to start with
    allowed = sum(budget.allow_retry() for _ in range(100))
    assert allowed == RESERVE + 10 and budget.denied == 100 - allowed
    unlimited = RetryBudget(None)
    assert all(unlimited.allow_retry() for _ in range(1000)) and unlimited.denied == 0


def test_the_retries_checker_counts_attempts_and_the_peak_amplification() -> None:
    history = [{"type": "run", "t0": T0}]
    for ref in range(4):                       # 4 arrivals in the first second, each retried twice in the second
        history.append({"type": "invoke", "ref": str(ref), "intended": T0 + 0.1 * ref, "sent": T0 + 0.1 * ref})
        history += [{"type": "retry", "ref": str(ref), "time": T0 + 1.1, "delay_s": 0.1, "attempt": n}
                    for n in (1, 2)]
    history.append({"type": "ok", "ref": "0", "time": T0 + 1.5, "attempts": 3})
    history.append({"type": "info", "ref": "1", "time": T0 + 1.5, "attempts": 3, "budget_denied": True})
    data = Retries().check(history, CheckOptions()).data
    assert (data["attempts"], data["retries"], data["orders_retried"], data["max_attempts"]) == (12, 8, 4, 3)
    assert data["amplification"] == 3.0 and data["peak_attempts_per_s"] == 8.0 and data["budget_denied"] == 1
    assert data["amplification_peak"] == 1.0   # only the first second had arrivals: 4 attempts for 4


def test_recovery_is_how_long_after_the_last_fault_the_shop_was_back() -> None:
    fault = FaultSpan("kill", "kill", "barista", T0 + 10, T0 + 20, T0)
    quick = [Attempt(T0 + 20 + i * 0.5, True) for i in range(20)]
    assert recovery_s(quick, [fault], 1.0) == 0.0
    slow = [Attempt(T0 + 20 + i * 0.5, i >= 8) for i in range(20)]       # refused for 4 s after the end
    assert recovery_s(slow, [fault], 1.0) == 4.0
    stuck = [Attempt(T0 + 20 + i * 0.5, False) for i in range(20)]       # never back: the rest of the run
    assert recovery_s(stuck, [fault], 1.0) == 9.5
    assert recovery_s(quick, [], 1.0) is None
