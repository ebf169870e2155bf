"""Wake an event loop at a monotonic deadline to within a few tens of microseconds.

The event loops' own timers have whole milliseconds (libuv's clock under uvloop; asyncio's epoll
timeout is rounded up to a millisecond), so a driver that sleeps on them sends each order up to a
millisecond or two after its intended time: measured against Vegeta at 500 orders/s (benchmarks/
generator_reference.py) that lag was 0.6 ms at the median, added to every latency from the
intended time. A `Pacer` waits in a thread of its own instead, on a condition variable with a
timeout (a futex with the kernel's high-resolution timer), and then hands the loop a finished
future (`call_soon_threadsafe`). One wait is outstanding at a time, as the driver has one next
arrival: a new `until` replaces the one before it (whose future is then never finished; the
driver awaits one at a time).

    pacer = Pacer(asyncio.get_running_loop())
    try:
        await pacer.until(time.monotonic() + 0.0042)
    finally:
        pacer.close()

The thread holds the GIL only to hand the future over; while it waits it holds nothing.
"""
from __future__ import annotations

import asyncio
import threading
import time


def _release(future: asyncio.Future[None]) -> None:
    if not future.done():   # cancelled while it waited: nothing to do
        future.set_result(None)


class Pacer:
    """A thread that finishes a future of `loop` at a `time.monotonic()` deadline (`until`)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._cond = threading.Condition()
        self._deadline: float | None = None
        self._future: asyncio.Future[None] | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name="chaoscafe-pacer", daemon=True)
        self._thread.start()

    def until(self, deadline: float) -> asyncio.Future[None]:
        """A future of the loop, finished once `time.monotonic() >= deadline` (seconds).

        Call it from the loop's thread. Raises RuntimeError after `close()`.
        """
        future: asyncio.Future[None] = self._loop.create_future()
        with self._cond:
            if self._closed:
                raise RuntimeError("pacer closed")
            self._deadline, self._future = deadline, future
            self._cond.notify()
        return future

    def close(self) -> None:
        """Stop the thread (a pending future is left unfinished) and join it; idempotent."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=2.0)

    def _serve(self) -> None:
        with self._cond:
            while True:
                if self._closed:
                    return
                if self._deadline is None:
                    self._cond.wait()
                    continue
                left = self._deadline - time.monotonic()
                if left > 0:
                    self._cond.wait(left)   # a new deadline or close() wakes it early: look again
                    continue
                future, self._deadline, self._future = self._future, None, None
                assert future is not None
                try:
                    self._loop.call_soon_threadsafe(_release, future)
                except RuntimeError:        # the loop was closed under us
                    return
