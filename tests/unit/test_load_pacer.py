"""harness.load.pacer: a loop woken at a deadline, not before it, by a thread of its own."""
from __future__ import annotations

import asyncio
import threading
import time

import pytest

from harness.load.pacer import Pacer


def test_a_wait_ends_at_its_deadline_never_before() -> None:
    async def main() -> list[float]:
        pacer = Pacer(asyncio.get_running_loop())
        late = []
        try:
            for wait in (0.0003, 0.002, 0.0, -1.0, 0.01):
                asked = time.monotonic()
                deadline = asked + wait
                await pacer.until(deadline)
                late.append(time.monotonic() - max(deadline, asked))   # a past deadline: at once
        finally:
            pacer.close()
        return late

    late = asyncio.run(main())
    assert all(x >= 0 for x in late)            # never early
    assert max(late) < 0.5                      # and not lost (generous: a shared machine)


def test_a_new_wait_replaces_the_one_before_and_close_stops_the_thread() -> None:
    async def main() -> tuple[bool, bool]:
        pacer = Pacer(asyncio.get_running_loop())
        first = pacer.until(time.monotonic() + 30)
        second = pacer.until(time.monotonic() + 0.001)
        await asyncio.wait_for(second, 5)
        await asyncio.sleep(0.01)
        pacer.close()
        pacer.close()                            # idempotent
        with pytest.raises(RuntimeError, match="pacer closed"):
            pacer.until(time.monotonic())
        return first.done(), second.done()

    before = {t.name for t in threading.enumerate()}
    assert asyncio.run(main()) == (False, True)
    assert "chaoscafe-pacer" not in {t.name for t in threading.enumerate()} - before


def test_a_cancelled_wait_is_left_alone() -> None:
    async def main() -> None:
        pacer = Pacer(asyncio.get_running_loop())
        try:
            waiting = asyncio.ensure_future(pacer.until(time.monotonic() + 0.005))
            await asyncio.sleep(0)
            waiting.cancel()
            await asyncio.sleep(0.02)              # the pacer fires into a cancelled future: no error
            assert waiting.cancelled()
            await asyncio.wait_for(pacer.until(time.monotonic() + 0.001), 5)
        finally:
            pacer.close()

    asyncio.run(main())
