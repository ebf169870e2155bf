"""What a careful team puts around a synchronous call: the resilient sync cashier's policies.

The plain sync cashier (cafe/cashier.py BaristaClient) has one policy: a timeout per call. The
resilient one (systems/sync_resilient/cashier.py) wraps every brew call in four more, each from a
well-kept library or the standard library rather than written by hand:

    deadline         the order's whole call lasts at most `deadline_s` from when the cashier got it
                     (the customers' patience): each attempt's timeout is min(attempt timeout, time
                     left), and the time left goes to the barista (cafe.cashier.DEADLINE_HEADER), which
                     stops brewing for a customer who has given up
    retries          tenacity: a failed attempt (no answer in time, unreachable, a 5xx, every circuit
                     open) is tried again under the same order id, so the barista (idempotent by order
                     id) brews once; the wait is exponential with full jitter (tenacity's
                     wait_random_exponential: uniform in [0, min(cap, base x 2^n)]), or until the first
                     circuit half-opens when that is later; no attempt starts that cannot end in time
    circuit breaker  purgatory, one per barista replica: `threshold` failed calls in a row open it; an
                     open circuit is not called for `reset_s`, then one trial call decides (a success
                     closes it, a failure opens it again) while the others wait for its answer
                     (Hystrix's single test request); a call's outcome is reported to its circuit when
                     it ends, except a timeout of an attempt that had less than STARVED_SHARE of the
                     attempt timeout: cut short by its caller's deadline, it says nothing about the
                     barista (a herd let through a half-open circuit at once, some with 20 ms left,
                     reopened it with their own timeouts: flaky-network, docs/performance.md)
    bulkhead         at most `bulkhead` calls in flight to one replica (asyncio), so a slow replica
                     cannot hold every till; a call waits for a free slot until its attempt timeout

Load shedding is the cashier's (`Shedder`): a customer is refused at once (429, Retry-After) when
the wait the line promises is longer than the deadline: the order could only time out.

Why purgatory: asyncio-native (its breakers are used with `async with`), typed, released in 2024
(aiobreaker, the other asyncio breaker on PyPI, last released in 2021), no dependency beyond the
standard library for its in-memory state.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState
from purgatory.service._async.circuitbreaker import AsyncCircuitBreaker
from tenacity import AsyncRetrying, RetryCallState, retry_if_result, wait_random_exponential

from cafe.cashier import DEADLINE_HEADER, Answer, BaristaClient, Baristas

#: a retry is not started with less than this left before the deadline (seconds): it could not finish
MIN_ATTEMPT_S = 0.02
#: a timeout of an attempt that had less than this share of the attempt timeout (cut short by its
#: caller's deadline) is not reported to the circuit: it says nothing about the barista
STARVED_SHARE = 0.5


class Unanswered(Exception):
    """An attempt that ends without a coffee: `answer` is what the customer would get. Raised before
    a call when no replica may be called, and inside the breaker's context when the call failed
    (so that the circuit counts it)."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer[1].get("error"))
        self.answer = answer


def retryable(answer: Answer) -> bool:
    """Whether an attempt's answer may be tried again: no answer in time (504), unreachable or
    every circuit open (503), or the barista's own 5xx (502 with `barista_status` >= 500)."""
    status, outcome = answer
    return status in (503, 504) or (status == 502 and outcome.get("barista_status", 0) >= 500)


class ResilientClient(BaristaClient):
    """Brew calls with a deadline, retries, a circuit breaker and a bulkhead per barista replica
    (module docstring). `brew(order_id, body, received)` answers as BaristaClient.brew does (201
    served; 504, 503 or 502 failed, the last attempt's), plus 503 {"error": "every barista's
    circuit is open", "retry_after_s"} when no replica may be called before the deadline.
    `received`: seconds since the epoch (cafe.store.now()). Event loop only; `counts()` for /health."""

    def __init__(self, baristas: Baristas, *, attempt_timeout_s: float, deadline_s: float, bulkhead: int,
                 breaker_threshold: int, breaker_reset_s: float, backoff_s: float, connections: int = 100) -> None:
        super().__init__(baristas, attempt_timeout_s, connections)
        self.deadline_s, self.bulkhead = deadline_s, bulkhead
        self.threshold, self.reset_s = breaker_threshold, breaker_reset_s
        self.wait_jitter = wait_random_exponential(multiplier=backoff_s, max=max(backoff_s, deadline_s / 4))
        self.factory = AsyncCircuitBreakerFactory(default_threshold=breaker_threshold, default_ttl=breaker_reset_s)
        self.factory.add_listener(self._breaker_event)
        self.breakers: dict[str, AsyncCircuitBreaker] = {}
        self.trials: set[str] = set()   # replicas whose half-open circuit has its trial call in flight
        self.freed = asyncio.Condition()
        self.stats = {"attempts": 0, "retries": 0, "circuit_opened": 0, "circuit_fast_fails": 0,
                      "bulkhead_waits": 0, "deadline_exceeded": 0, "trials": 0,
                      "timeouts_not_reported": 0}

    def _breaker_event(self, name: str, event: str, payload: Any) -> None:
        if event == "state_changed" and getattr(payload, "state", None) == "opened":
            self.stats["circuit_opened"] += 1

    def open_until(self, name: str) -> float | None:
        """Epoch seconds until which barista `name`'s circuit stays open; None when it may be called."""
        breaker = self.breakers.get(name)
        if breaker is None or breaker.context.state != "opened" or breaker.context.opened_at is None:
            return None
        until = breaker.context.opened_at + self.reset_s
        return until if until > time.time() else None

    def on_trial(self, name: str) -> bool:
        """Whether barista `name`'s next call is its circuit's trial: the circuit is not closed and
        not open any more (past its reset time, or half-opened)."""
        breaker = self.breakers.get(name)
        return breaker is not None and breaker.context.state != "closed" and self.open_until(name) is None

    def circuits(self) -> dict[str, str]:
        """Each called replica's circuit: closed, opened or half-opened (purgatory's names)."""
        states: dict[str, str] = {}
        for name, breaker in self.breakers.items():
            state = breaker.context.state
            # an opened circuit past its reset time half-opens with the next call
            states[name] = "half-opened" if state == "opened" and self.open_until(name) is None else state
        return states

    def counts(self) -> dict[str, Any]:
        return {**self.stats, "circuits": self.circuits(), "bulkhead": self.bulkhead}

    async def brew(self, order_id: str, body: dict[str, Any], received: float = 0.0) -> Answer:
        loop = asyncio.get_running_loop()
        waited = max(0.0, time.time() - received) if received else 0.0   # in line before this call
        deadline = loop.time() + self.deadline_s - waited
        retry_at: list[float] = []   # loop time the first circuit half-opens, when the last attempt met only open ones

        def wait(state: RetryCallState) -> float:
            jitter = float(self.wait_jitter(state))
            return max(jitter, retry_at[-1] - loop.time()) if retry_at else jitter

        def stop(state: RetryCallState) -> bool:
            return loop.time() + (state.upcoming_sleep or 0.0) + MIN_ATTEMPT_S >= deadline

        async def attempt() -> Answer:
            retry_at.clear()
            answer = await self.attempt(order_id, body, deadline)
            if (until := answer[1].get("retry_after_s")) is not None:
                retry_at.append(loop.time() + until)
            return answer

        def gave_up(state: RetryCallState) -> Answer:
            self.stats["deadline_exceeded"] += 1
            assert state.outcome is not None
            answer: Answer = state.outcome.result()
            return answer

        def before_sleep(state: RetryCallState) -> None:
            self.stats["retries"] += 1

        if deadline - loop.time() < MIN_ATTEMPT_S:
            self.stats["deadline_exceeded"] += 1
            return 504, {"status": "failed", "error": "deadline passed in the line: no barista called"}
        retrying = AsyncRetrying(wait=wait, stop=stop, retry=retry_if_result(retryable), sleep=asyncio.sleep,
                                 retry_error_callback=gave_up, before_sleep=before_sleep)
        answer: Answer = await retrying(attempt)
        return answer

    async def attempt(self, order_id: str, body: dict[str, Any], deadline: float) -> Answer:
        """One call to the least busy replica whose circuit is not open and whose bulkhead has room
        (waiting for room until the attempt's timeout); 503 with `retry_after_s` when every circuit
        is open."""
        loop = asyncio.get_running_loop()
        ends = min(deadline, loop.time() + self.timeout_s)
        try:
            name, url = await self.choose(ends)
        except Unanswered as none:   # no replica may be called
            return none.answer
        self.stats["attempts"] += 1
        if self.on_trial(name):
            self.trials.add(name)
            self.stats["trials"] += 1
        try:
            breaker = self.breakers.get(name) or await self._breaker(name)
            left = ends - loop.time()
            answer = await self._brew_at(url, order_id, body, timeout_s=max(left, 0.001),
                                         headers={DEADLINE_HEADER: str(max(1, int((deadline - loop.time()) * 1000)))})
            if answer[0] == 504 and left < STARVED_SHARE * self.timeout_s:
                self.stats["timeouts_not_reported"] += 1
                return answer
            try:
                async with breaker:   # the call's outcome, reported to its circuit
                    if retryable(answer):
                        raise Unanswered(answer)
            except (Unanswered, OpenedState):   # counted; or opened by other calls meanwhile
                pass
            return answer
        finally:
            self.trials.discard(name)
            self.baristas.release(name)
            async with self.freed:
                self.freed.notify_all()

    async def _breaker(self, name: str) -> AsyncCircuitBreaker:
        self.breakers[name] = await self.factory.get_breaker(name)
        return self.breakers[name]

    async def choose(self, ends: float) -> tuple[str, str]:
        """(name, url) of the replica to call (counted in flight until Baristas.release); Unanswered
        with the customer's answer when every circuit is open or no replica had room by `ends`."""
        loop = asyncio.get_running_loop()
        waited = False
        while True:
            open_until = {name: self.open_until(name) for name in self.baristas.urls}
            if open_until and all(until is not None for until in open_until.values()):
                self.stats["circuit_fast_fails"] += 1
                first = min(until for until in open_until.values() if until is not None)
                raise Unanswered((503, {"status": "failed", "error": "every barista's circuit is open",
                                       "retry_after_s": round(max(0.0, first - time.time()), 3)}))
            try:
                return self.baristas.acquire(self._room(open_until))
            except LookupError:
                if not self.baristas.urls:
                    raise Unanswered((503, {"status": "failed", "error": "barista unavailable: no barista in the set"})) from None
            if not waited:
                self.stats["bulkhead_waits"] += 1
                waited = True
            left = ends - loop.time()
            if left <= 0:
                raise Unanswered((504, {"status": "failed", "error": "no barista had room before the attempt's timeout"}))
            async with self.freed:
                try:
                    await asyncio.wait_for(self.freed.wait(), left)
                except TimeoutError:
                    pass

    def _room(self, open_until: dict[str, float | None]) -> Callable[[str], bool]:
        """Which replicas may be called now: not open, room in the bulkhead, and where the circuit
        awaits its trial, no trial in flight."""
        def allowed(name: str) -> bool:
            if open_until.get(name) is not None or self.baristas.in_flight.get(name, 0) >= self.bulkhead:
                return False
            return not self.on_trial(name) or name not in self.trials
        return allowed


class Shedder:
    """Load shedding at the cashier: the expected wait in line from an EWMA of how long a till is
    held (seconds), the tills and the customers ahead. `refuse(waiting)` answers 429 with
    `retry_after_s` when that wait is longer than `deadline_s` (the customer would give up first),
    else None. `held(seconds)` records one till's holding time."""

    def __init__(self, capacity: int, deadline_s: float, alpha: float = 0.2) -> None:
        self.capacity, self.deadline_s, self.alpha = capacity, deadline_s, alpha
        self.mean_hold_s: float | None = None

    def held(self, seconds: float) -> None:
        self.mean_hold_s = seconds if self.mean_hold_s is None else \
            self.alpha * seconds + (1 - self.alpha) * self.mean_hold_s

    def expected_wait_s(self, waiting: int, in_flight: int) -> float:
        """Seconds until a new customer gets a till: the line ahead of it leaves at capacity /
        mean hold per second (Little's law); 0 while tills are free or nothing was measured yet."""
        if self.mean_hold_s is None or in_flight + waiting < self.capacity:
            return 0.0
        return (waiting + 1) * self.mean_hold_s / self.capacity

    def refuse(self, waiting: int, in_flight: int) -> Answer | None:
        wait = self.expected_wait_s(waiting, in_flight)
        if wait <= self.deadline_s:
            return None
        # come back when the line ahead has shortened to what a customer waits
        return 429, {"error": "the line is longer than a customer waits: come back later", "taken": False,
                     "expected_wait_s": round(wait, 3), "retry_after_s": round(wait - self.deadline_s, 3),
                     "waiting": waiting}
