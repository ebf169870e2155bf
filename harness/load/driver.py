"""The open-loop load driver: every order is sent at its intended time, whatever earlier ones do.

wrk2/k6 style: the schedule is fixed up front; each arrival is dispatched as its own task at
t0 + offset, so a stalled shop cannot slow the generator down (no coordinated omission).
Latency is measured from the intended time. When the generator itself falls behind, the lag is
recorded on every invoke; when `max_in_flight` requests are open, an arrival is recorded as
`dropped` instead of sent. Outcomes are classified by `harness.history.classify` only.

Retries (off by default): a customer whose attempt ends in `info` (a timeout, a reset, a 5xx:
the shop may have taken the order) tries again after `retry_after_s`, up to `retries` times, with
the same order. With `idempotency_key` every attempt of an order carries the same
`Idempotency-Key` header, so a shop that honours it answers a retry with the first attempt's
order instead of taking a second one. Every attempt but the last is recorded as a `retry`
record; the order's one completion record is its last attempt's, and its latency still runs
from the first intended time.
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from harness.history import OTHER, REFUSED, RESET, TIMEOUT, classify
from harness.load.schedule import Arrival, ArrivalSchedule

Record = dict[str, Any]


def error_kind(exc: BaseException) -> str:
    """Map a client exception to a history error kind (see harness.history)."""
    if isinstance(exc, asyncio.TimeoutError):
        return TIMEOUT
    if isinstance(exc, aiohttp.ClientConnectorError):
        return REFUSED  # the connection was never established: the order never left
    if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, aiohttp.ClientPayloadError)):
        return RESET
    return OTHER


@dataclass
class DriverStats:
    """Live counters for progress display (written by the driver's event loop only)."""

    scheduled: int = 0
    sent: int = 0
    completed: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: {"ok": 0, "fail": 0, "info": 0})
    dropped: int = 0
    in_flight: int = 0


class OpenLoopDriver:
    """Sends `schedule` to `{entry_url}/orders` starting at wall-clock `t0`; records through `record`."""

    def __init__(self, entry_url: str, schedule: ArrivalSchedule, t0: float, *, accepted_status: int,
                 client_timeout_s: float, max_in_flight: int, record: Callable[[Record], None],
                 retries: int = 0, retry_after_s: float = 1.0, idempotency_key: bool = False) -> None:
        self.url = f"{entry_url}/orders"
        self.schedule, self.t0 = schedule, t0
        self.accepted_status = accepted_status
        self.timeout = aiohttp.ClientTimeout(total=client_timeout_s)
        self.max_in_flight = max_in_flight
        self.record = record
        self.retries, self.retry_after_s, self.idempotency_key = retries, retry_after_s, idempotency_key
        self.stats = DriverStats(scheduled=len(schedule))

    def run(self) -> DriverStats:
        """Blocks until every arrival was sent (or dropped) and every request completed or timed out."""
        asyncio.run(self._run())
        return self.stats

    async def _run(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=None)
        async with aiohttp.ClientSession(connector=connector, timeout=self.timeout) as session:
            tasks: set[asyncio.Task[None]] = set()
            # convert the wall-clock t0 to the monotonic clock once: sleeping uses monotonic time
            mono_t0 = time.monotonic() + (self.t0 - time.time())
            for arrival in self.schedule.arrivals:
                delay = mono_t0 + arrival.offset_s - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                if self.stats.in_flight >= self.max_in_flight:
                    self.stats.dropped += 1
                    self.record({"type": "dropped", "ref": str(arrival.index),
                                 "intended": self.t0 + arrival.offset_s, "reason": "max_in_flight"})
                    continue
                self.stats.in_flight += 1
                task = asyncio.create_task(self._send(session, arrival))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _send(self, session: aiohttp.ClientSession, arrival: Arrival) -> None:
        ref = str(arrival.index)
        order = {"product": arrival.product, "size": arrival.size, "ref": ref}
        if arrival.customer:
            order["customer"] = arrival.customer
        headers = {"Idempotency-Key": f"order-{ref}"} if self.idempotency_key else None
        sent = time.time()
        self.record({"type": "invoke", "ref": ref, "intended": self.t0 + arrival.offset_s, "sent": sent,
                     "order": {k: v for k, v in order.items() if k != "ref"}})
        self.stats.sent += 1
        attempt = 0
        while True:
            attempt += 1
            outcome, fields = await self._attempt(session, order, headers)
            if outcome != "info" or attempt > self.retries:
                break
            self.record({"type": "retry", "ref": ref, "time": time.time(), "attempt": attempt, **fields})
            await asyncio.sleep(self.retry_after_s)
        self.record({"type": outcome, "ref": ref, "time": time.time(), **fields,
                     **({"attempts": attempt} if attempt > 1 else {})})
        self.stats.in_flight -= 1
        self.stats.completed += 1
        self.stats.outcomes[outcome] += 1

    async def _attempt(self, session: aiohttp.ClientSession, order: dict[str, str],
                       headers: dict[str, str] | None) -> tuple[str, Record]:
        """One POST: its outcome and the fields of its record (status, order_id, error, error_kind)."""
        status: int | None = None
        body: Any = None
        kind: str | None = None
        error: str | None = None
        try:
            async with session.post(self.url, json=order, headers=headers) as resp:
                status = resp.status
                body = await resp.json(content_type=None)
        except Exception as exc:  # every failure becomes a recorded outcome, never a crash
            if status is None:
                kind = error_kind(exc)
            error = f"{exc.__class__.__name__}: {exc}"[:300]
        outcome = classify(status, kind, self.accepted_status)
        order_id = body.get("id") if isinstance(body, dict) else None
        if error is None and outcome != "ok" and isinstance(body, dict):
            error = str(body.get("error", ""))[:300] or None
        fields: Record = {"status": status, "order_id": order_id, "error": error, "error_kind": kind}
        if outcome == "ok" and isinstance(body, dict) and body.get("brew_id"):
            fields["brew_id"] = body["brew_id"]   # the coffee the customer received with the answer
        return outcome, fields
