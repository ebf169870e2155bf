"""The open-loop load driver: every order is sent at its intended time, whatever earlier ones do.

wrk2/k6 style: the schedule is fixed up front and one event loop walks it: it waits until the
next arrival is due (`harness.load.pacer`: to tens of microseconds, not the loop timers' whole
milliseconds), then dispatches every arrival due by now (one wait per batch, not per arrival),
each as its own request task, so a stalled shop cannot slow the generator down (no
coordinated omission). Latency is measured from the intended time. When the generator itself
falls behind, the lag is recorded on every invoke; when `max_in_flight` requests are open, an
arrival is recorded as `dropped` instead of sent. Outcomes are classified by
`harness.history.classify` only. Requests go through `harness.load.http.OriginClient` (a lean
HTTP/1.1 client), on uvloop when it is installed.

This is one shard's engine: `harness.load.workers.ShardedDriver` runs one of these per worker
process over the arrivals `ref % N == k`, each writing its own file, and merges them into the
history (`HistoryWriter.absorb`). Live counters and HdrHistograms of lag and accepted latency
(`DriverStats`) are kept instead of the records: the records go to `record` as they happen.

Retries (off by default; `harness.load.retry.RetryPolicy`): a customer whose attempt ends in
`info` (a timeout, a reset, a 5xx: the shop may have taken the order) tries again, up to `retries`
times, with the same order, after the policy's delay (fixed, or exponential with full jitter) and
while its retry budget has a token (else the attempt's outcome stands, `budget_denied`). With `idempotency_key` every attempt of an order carries the same
`Idempotency-Key` header, so a shop that honours it answers a retry with the first attempt's
order instead of taking a second one. Every attempt but the last is recorded as a `retry`
record (with the `delay_s` before the next); the order's one completion record is its last attempt's, and its latency still runs
from the first intended time.
"""
from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from hdrh.histogram import HdrHistogram

from harness.history import OTHER, REFUSED, RESET, TIMEOUT, classify
from harness.load.http import OriginClient, TransportError
from harness.load.pacer import Pacer
from harness.load.retry import RetryBudget, RetryPolicy
from harness.load.schedule import Arrival, ArrivalSchedule

Record = dict[str, Any]
LOWEST_US, HIGHEST_US, DIGITS = 1, 3_600_000_000, 3   # as harness.checkers.distribution


def error_kind(exc: BaseException) -> str:
    """Map a client exception to a history error kind (see harness.history)."""
    if isinstance(exc, TransportError):
        return exc.kind
    if isinstance(exc, asyncio.TimeoutError):
        return TIMEOUT
    if isinstance(exc, ConnectionRefusedError):
        return REFUSED
    import aiohttp  # the services' client; the driver's own client raises TransportError

    if isinstance(exc, aiohttp.ClientConnectorError):
        return REFUSED  # the connection was never established: the order never left
    if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, aiohttp.ClientPayloadError,
                        ConnectionResetError)):
        return RESET
    return OTHER


LOOP_ENV = "CHAOSCAFE_LOOP"   # "asyncio": asyncio's own event loop instead of uvloop's (as cafe.web's services)


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed (about 40% less CPU per request here), else asyncio's;
    `CHAOSCAFE_LOOP=asyncio` turns it off."""
    if os.environ.get(LOOP_ENV, "uvloop") == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; a platform without it still runs
        return None
    return uvloop.new_event_loop


def histogram() -> HdrHistogram:
    """An empty histogram of µs values, the harness's range and precision."""
    return HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)


def _us(seconds: float) -> int:
    return min(HIGHEST_US, max(LOWEST_US, round(seconds * 1e6)))


@dataclass
class DriverStats:
    """Live counters and histograms (written by the driver's event loop only; read by anyone).

    `lag` holds sent - intended of every invoke, `latency` completion - intended of every `ok`,
    both in µs (values below 1 µs count as 1 µs)."""

    scheduled: int = 0
    sent: int = 0
    completed: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: {"ok": 0, "fail": 0, "info": 0})
    dropped: int = 0
    in_flight: int = 0
    lag: HdrHistogram = field(default_factory=histogram, repr=False)
    latency: HdrHistogram = field(default_factory=histogram, repr=False)

    def counters(self) -> dict[str, Any]:
        return {"scheduled": self.scheduled, "sent": self.sent, "completed": self.completed,
                "outcomes": dict(self.outcomes), "dropped": self.dropped, "in_flight": self.in_flight}

    def summary(self) -> dict[str, Any]:
        """Counters and lag / accepted latency (p50, p99, max in ms) from the histograms."""
        def ms(h: HdrHistogram) -> dict[str, float | None]:
            if h.get_total_count() == 0:
                return {"p50": None, "p99": None, "max": None}
            return {"p50": round(h.get_value_at_percentile(50) / 1000, 3),
                    "p99": round(h.get_value_at_percentile(99) / 1000, 3),
                    "max": round(h.get_max_value() / 1000, 3)}
        return {**self.counters(), "lag_ms": ms(self.lag), "latency_ms": ms(self.latency)}


NO_RETRY = RetryPolicy()


class OpenLoopDriver:
    """Sends `schedule` (or a shard of one: its arrivals in time order) to `{entry_url}/orders`
    starting at wall-clock `t0`; records through `record`."""

    def __init__(self, entry_url: str, schedule: ArrivalSchedule | Sequence[Arrival], t0: float, *,
                 accepted_status: int, client_timeout_s: float, max_in_flight: int, record: Callable[[Record], None],
                 retry: RetryPolicy = NO_RETRY, idempotency_key: bool = False) -> None:
        self.entry_url = entry_url
        self.arrivals: tuple[Arrival, ...] = tuple(schedule.arrivals if isinstance(schedule, ArrivalSchedule)
                                                   else schedule)
        self.t0 = t0
        self.accepted_status = accepted_status
        self.client_timeout_s = client_timeout_s
        self.max_in_flight = max_in_flight
        self.record = record
        self.retry, self.idempotency_key = retry, idempotency_key
        self.budget = RetryBudget(retry.budget)
        self.stats = DriverStats(scheduled=len(self.arrivals))

    def run(self) -> DriverStats:
        """Blocks until every arrival was sent (or dropped) and every request completed or timed out."""
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            runner.run(self._run())
        return self.stats

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        client = OriginClient(self.entry_url, timeout_s=self.client_timeout_s)
        tasks: set[asyncio.Task[None]] = set()
        arrivals, n, i = self.arrivals, len(self.arrivals), 0
        # convert the wall-clock t0 to the monotonic clock once: waiting uses monotonic time
        mono_t0 = time.monotonic() + (self.t0 - time.time())
        # the pacer wakes the loop when arrivals are due (the loops' own timers have whole milliseconds)
        due = asyncio.Event()
        pacer = Pacer(loop, [mono_t0 + a.offset_s for a in arrivals], due.set)
        try:
            while i < n:
                now = time.monotonic()
                if mono_t0 + arrivals[i].offset_s > now:
                    await due.wait()     # one wait until the next arrival is due ...
                    due.clear()
                    if pacer.error is not None:
                        raise RuntimeError(f"the generator's pacer failed: {pacer.error!r}") from pacer.error
                    continue
                while i < n and mono_t0 + arrivals[i].offset_s <= now:   # ... then all that are due
                    arrival = arrivals[i]
                    i += 1
                    if self.stats.in_flight >= self.max_in_flight:
                        self.stats.dropped += 1
                        self.record({"type": "dropped", "ref": str(arrival.index),
                                     "intended": self.t0 + arrival.offset_s, "reason": "max_in_flight"})
                        continue
                    self.stats.in_flight += 1
                    task = loop.create_task(self._send(client, arrival))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            pacer.close()
            for task in tasks:
                task.cancel()
            client.close()

    async def _send(self, client: OriginClient, arrival: Arrival) -> None:
        ref = str(arrival.index)
        order = {"product": arrival.product, "size": arrival.size, "ref": ref}
        if arrival.customer:
            order["customer"] = arrival.customer
        body = orjson.dumps(order)
        headers = {"Idempotency-Key": f"order-{ref}"} if self.idempotency_key else None
        intended = self.t0 + arrival.offset_s
        sent = time.time()
        self.record({"type": "invoke", "ref": ref, "intended": intended, "sent": sent,
                     "order": {k: v for k, v in order.items() if k != "ref"}})
        self.stats.sent += 1
        self.stats.lag.record_value(_us(sent - intended))
        attempt = 0
        denied = False
        self.budget.first_attempt()
        while True:
            attempt += 1
            outcome, fields = await self._attempt(client, body, headers)
            if outcome != "info" or attempt > self.retry.retries:
                break
            if not self.budget.allow_retry():
                denied = True
                break
            delay = self.retry.delay_s(ref, attempt)
            self.record({"type": "retry", "ref": ref, "time": time.time(), "attempt": attempt,
                         "delay_s": round(delay, 6), **fields})
            await asyncio.sleep(delay)
        done = time.time()
        self.record({"type": outcome, "ref": ref, "time": done, **fields,
                     **({"attempts": attempt} if attempt > 1 else {}), **({"budget_denied": True} if denied else {})})
        self.stats.in_flight -= 1
        self.stats.completed += 1
        self.stats.outcomes[outcome] += 1
        if outcome == "ok":
            self.stats.latency.record_value(_us(done - intended))

    async def _attempt(self, client: OriginClient, body: bytes, headers: dict[str, str] | None) -> tuple[str, Record]:
        """One POST: its outcome and the fields of its record (status, order_id, error, error_kind)."""
        status: int | None = None
        answer: Any = None
        kind: str | None = None
        error: str | None = None
        try:
            status, raw = await client.post("/orders", body, headers)
            if raw.strip():
                answer = orjson.loads(raw)
        except TransportError as exc:
            kind, error = exc.kind, str(exc)[:300]
        except Exception as exc:  # every failure becomes a recorded outcome, never a crash
            if status is None:
                kind = error_kind(exc)
            error = f"{exc.__class__.__name__}: {exc}"[:300]
        outcome = classify(status, kind, self.accepted_status)
        order_id = answer.get("id") if isinstance(answer, dict) else None
        if error is None and outcome != "ok" and isinstance(answer, dict):
            error = str(answer.get("error", ""))[:300] or None
        fields: Record = {"status": status, "order_id": order_id, "error": error, "error_kind": kind}
        if outcome == "ok" and isinstance(answer, dict) and answer.get("brew_id"):
            fields["brew_id"] = answer["brew_id"]   # the coffee the customer received with the answer
        return outcome, fields
