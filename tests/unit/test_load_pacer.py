"""harness.load.pacer: a loop woken at each deadline, never before it, by a thread of its own."""
from __future__ import annotations

import asyncio
import threading
import time

from harness.load.pacer import Pacer


def _run(offsets: list[float]) -> tuple[list[float], int, list[float]]:
    """Wake times (monotonic) of a pacer over now + offsets, its wakes, and the deadlines."""
    async def main() -> tuple[list[float], int, list[float]]:
        loop = asyncio.get_running_loop()
        woken: list[float] = []
        start = time.monotonic()
        deadlines = [start + o for o in offsets]
        pacer = Pacer(loop, deadlines, lambda: woken.append(time.monotonic()))
        try:
            # until a wake covers the last deadline (a busy machine may delay it: at most 5 s),
            # then a little longer, so that a wake too many would be seen
            last, give_up = max(deadlines, default=start), start + 5
            while not (woken and woken[-1] >= last) and time.monotonic() < give_up:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
        finally:
            pacer.close()
        return woken, pacer.wakes, deadlines
    return asyncio.run(main())


def test_every_deadline_wakes_the_loop_once_and_never_before_it() -> None:
    offsets = [0.001, 0.0035, 0.010, 0.0102, 0.030]
    woken, wakes, deadlines = _run(offsets)
    assert wakes == len(woken) and 1 <= len(woken) <= len(offsets)
    # each deadline is covered by a wake at or after it, and that wake is not long after (generous)
    for d in deadlines:
        after = [w for w in woken if w >= d]
        assert after and after[0] - d < 0.5


def test_deadlines_already_past_are_one_wake() -> None:
    woken, wakes, _ = _run([-0.5, -0.4, -0.3, 0.0])
    assert len(woken) == wakes == 1


def test_close_stops_the_thread_before_its_deadlines() -> None:
    async def main() -> int:
        loop = asyncio.get_running_loop()
        calls: list[int] = []
        pacer = Pacer(loop, [time.monotonic() + 30], lambda: calls.append(1))
        await asyncio.sleep(0.01)
        started = time.monotonic()
        pacer.close()
        pacer.close()                        # idempotent
        assert time.monotonic() - started < 1.0
        await asyncio.sleep(0.01)
        return len(calls)

    assert asyncio.run(main()) == 0
    assert "chaoscafe-pacer" not in {t.name for t in threading.enumerate()}


def test_a_failing_pacer_wakes_the_loop_with_its_error() -> None:
    async def main() -> BaseException | None:
        due = asyncio.Event()
        pacer = Pacer(asyncio.get_running_loop(), ["not a time"], due.set)  # type: ignore[list-item]
        try:
            await asyncio.wait_for(due.wait(), 5)      # woken, not left hanging
        finally:
            pacer.close()
        return pacer.error

    assert isinstance(asyncio.run(main()), TypeError)


def test_a_deadline_far_away_is_waited_for_in_bounded_steps() -> None:
    async def main() -> None:
        pacer = Pacer(asyncio.get_running_loop(), [time.monotonic() + 1e10], lambda: None)
        await asyncio.sleep(0.05)
        pacer.close()
        assert pacer.error is None                   # no OverflowError from a timeout too large

    asyncio.run(main())
