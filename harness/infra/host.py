"""The host's CPU over a window: how much of it the machine had to give a shop run.

    before = cpu_times()
    ... load and drain ...
    host = cpu_window(before, cpu_times())
    # {"window_s": 12.4, "cores": 2, "steal_share": 0.26, "busy_share": 0.51, "idle_share": 0.23}

Shares of the machine's CPU time over the window, all cores together (Linux /proc/stat, read with
psutil), adding up to 1:

  * `steal_share`: time the hypervisor gave to other guests while this one wanted to run
    ("steal"); no process of the machine could use it;
  * `busy_share`: time spent running anything here (user, nice, system, irq, softirq): this shop
    run, a run beside it (`--jobs 2`), the rest of the machine;
  * `idle_share`: idle plus iowait.

A run with a high steal share ran on a machine that had less CPU than it seems, so its latencies
and rates are not like for like with a quieter run: `chaoscafe compare` reports a timing metric of
such a run that moved beyond its tolerance as "noisy", not as a regression
(harness.regression.compare.STEAL_LIMIT). On a system without steal accounting the share is 0.
"""
from __future__ import annotations

import os
import time
from typing import Any, NamedTuple

import psutil


class CpuSample(NamedTuple):
    """A reading of the machine's CPU counters: seconds of CPU time since boot, all cores."""

    at: float       # time.monotonic() of the reading
    busy: float
    idle: float
    steal: float


def cpu_times() -> CpuSample:
    """The machine's CPU counters now (guest time is inside user time, so it is not added again)."""
    t = psutil.cpu_times()
    busy = t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)
    idle = t.idle + getattr(t, "iowait", 0.0)
    return CpuSample(time.monotonic(), busy, idle, getattr(t, "steal", 0.0))


def cpu_window(before: CpuSample, after: CpuSample) -> dict[str, Any]:
    """The shares of CPU time between two readings (see the module docstring); every share None
    when the counters did not move (a window too short for the kernel's ticks)."""
    busy, idle, steal = after.busy - before.busy, after.idle - before.idle, after.steal - before.steal
    total = busy + idle + steal
    window = round(after.at - before.at, 3)
    if total <= 0:
        return {"window_s": window, "cores": os.cpu_count(), "steal_share": None, "busy_share": None,
                "idle_share": None}
    return {"window_s": window, "cores": os.cpu_count(), "steal_share": round(steal / total, 4),
            "busy_share": round(busy / total, 4), "idle_share": round(idle / total, 4)}
