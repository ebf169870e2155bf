"""Waiting in tests: poll something until it holds or a deadline passes, then let the test assert.

    stats = wait_for(lambda: node.queue_stats("q"), until=lambda s: s["ready"] == 7, timeout_s=15, interval_s=0.2)
    assert stats == {"ready": 7, ...}      # the test's own assertion, on the last value read

`wait_for` returns instead of failing so that a test keeps its assertion (and pytest shows the
value) and can clean up before asserting. For a plain condition the harness's own
`harness.load.batch.wait_until(predicate, timeout_s)` (True/False) is what the tests use.
Importable as `polling` from any test: pytest puts tests/ on sys.path for tests/conftest.py.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(probe: Callable[[], T], until: Callable[[T], object] = bool, *, timeout_s: float,
             interval_s: float) -> T:
    """Call `probe` every `interval_s` seconds until `until(value)` is true or `timeout_s` seconds have
    passed; return the last value (the first that `until` accepts, or the one read at the deadline).
    `probe` is called at least once; `interval_s` may be 0 when `probe` itself waits."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if until(value) or time.monotonic() >= deadline:
            return value
        time.sleep(interval_s)
