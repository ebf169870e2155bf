"""Wake an event loop at each of a list of monotonic deadlines, to within a few tens of microseconds.

The event loops' own timers have whole milliseconds (libuv's clock under uvloop; asyncio's epoll
timeout is rounded up to a millisecond), so a driver that sleeps on them sends each order up to a
millisecond or two after its intended time: measured against Vegeta at 500 orders/s (benchmarks/
generator_reference.py) that lag was 0.6 ms at the median, added to every latency from the
intended time. A `Pacer` knows the schedule's times up front and waits for each in a thread of its
own (`threading.Event.wait` with a timeout: a futex on the kernel's high-resolution timer), then
calls `wake` in the loop (`call_soon_threadsafe`). Deadlines already past when it wakes are
passed over with it (one call for a batch), so the loop is woken at most once per deadline and
never before one.

    due = asyncio.Event()
    pacer = Pacer(loop, deadlines, due.set)     # deadlines: ascending time.monotonic() values
    try:
        ...  await due.wait(); due.clear(); send what is due ...
    finally:
        pacer.close()

The thread holds the GIL only to hand a call over; while it waits it holds nothing.
"""
from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence


class Pacer:
    """A thread that calls `wake()` in `loop` once `time.monotonic()` reaches each of `deadlines`
    (seconds, ascending), starting at once; `close()` stops it. If the thread fails, `error` holds
    why and `wake()` is called once more, so a waiter looks and can raise it."""

    MAX_WAIT_S = 60.0   # one wait at most this long (then it looks again): no timeout too large for the platform

    def __init__(self, loop: asyncio.AbstractEventLoop, deadlines: Sequence[float], wake: Callable[[], None]) -> None:
        self._loop, self._deadlines, self._wake = loop, deadlines, wake
        self._stop = threading.Event()
        self.wakes = 0   # calls handed to the loop (<= len(deadlines))
        self.error: BaseException | None = None   # what ended the thread early; `wake` was called once more
        self._thread = threading.Thread(target=self._serve, name="chaoscafe-pacer", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread and join it; idempotent."""
        self._stop.set()
        self._thread.join(timeout=2.0)

    def _serve(self) -> None:
        try:
            self._pace()
        except BaseException as exc:   # noqa: BLE001 - handed to the loop, whose waiter would hang otherwise
            self.error = exc
            try:
                self._loop.call_soon_threadsafe(self._wake)
            except RuntimeError:
                pass

    def _pace(self) -> None:
        deadlines, i, n = self._deadlines, 0, len(self._deadlines)
        while i < n:
            left = deadlines[i] - time.monotonic()
            if left > 0:
                if self._stop.wait(min(left, self.MAX_WAIT_S)):
                    return
                continue
            now = time.monotonic()
            while i < n and deadlines[i] <= now:   # everything due by now: one call
                i += 1
            if self._stop.is_set():
                return
            try:
                self._loop.call_soon_threadsafe(self._wake)
            except RuntimeError:                    # the loop was closed under us
                return
            self.wakes += 1
