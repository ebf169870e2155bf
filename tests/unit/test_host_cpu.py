"""The host's CPU shares over a window (harness.infra.host): steal, busy and idle add up to 1."""
from __future__ import annotations

import time

from harness.infra.host import CpuSample, cpu_times, cpu_window


def test_shares_of_a_window_add_up_and_name_the_stolen_part() -> None:
    before = CpuSample(at=100.0, busy=10.0, idle=30.0, steal=1.0)
    after = CpuSample(at=110.0, busy=20.0, idle=34.0, steal=6.0)   # 10 busy, 4 idle, 5 stolen of 19 s
    got = cpu_window(before, after)
    assert got["window_s"] == 10.0
    assert got["steal_share"] == round(5 / 19, 4)
    assert got["busy_share"] == round(10 / 19, 4)
    assert got["idle_share"] == round(4 / 19, 4)
    assert abs(got["steal_share"] + got["busy_share"] + got["idle_share"] - 1.0) < 1e-3


def test_a_window_the_counters_did_not_see_has_no_shares() -> None:
    sample = CpuSample(at=1.0, busy=5.0, idle=5.0, steal=0.0)
    got = cpu_window(sample, sample._replace(at=1.001))
    assert got["steal_share"] is None and got["busy_share"] is None and got["idle_share"] is None


def test_the_machines_counters_move_forward() -> None:
    before = cpu_times()
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:   # busy for 0.3 s: the kernel's ticks (10 ms) see it
        pass
    got = cpu_window(before, cpu_times())
    assert got["busy_share"] is not None and got["busy_share"] > 0
    assert 0.0 <= got["steal_share"] <= 1.0
