"""The autoscaler policy as a pure function of backlog samples."""
from __future__ import annotations

import pytest

from harness.elasticity.autoscaler import Policy, decide

TARGET = Policy(min_replicas=1, max_replicas=8, cooldown_s=2.0, window_s=1.0, policy="target", target_per_replica=5)
THRESH = Policy(min_replicas=1, max_replicas=4, cooldown_s=0.0, window_s=1.0, policy="thresholds",
                scale_up_above=10, scale_down_below=2)


def flat(value: float, now: float = 10.0) -> list[tuple[float, float]]:
    return [(now - 0.8, value), (now - 0.4, value), (now, value)]


def test_target_policy_scales_to_backlog_over_target() -> None:
    d = decide(TARGET, flat(23), replicas=1, now=10.0, last_change=None)
    assert d is not None and (d.replicas, d.to) == (1, 5) and d.backlog == 23
    assert "target 5/replica" in d.reason and "mean backlog 23.0" in d.reason


def test_target_policy_clamps_and_holds() -> None:
    assert decide(TARGET, flat(500), replicas=2, now=10.0, last_change=None).to == 8   # type: ignore[union-attr]
    assert decide(TARGET, flat(9), replicas=2, now=10.0, last_change=None) is None      # ceil(9/5) = 2
    assert decide(TARGET, flat(0), replicas=1, now=10.0, last_change=None) is None      # already at min


def test_scale_down_needs_the_whole_window_quiet() -> None:
    spiky = [(9.2, 0.0), (9.6, 0.0), (10.0, 14.0)]      # mean 4.7 but max 14: keep 3
    assert decide(TARGET, spiky, replicas=3, now=10.0, last_change=None) is None
    d = decide(TARGET, flat(4), replicas=3, now=10.0, last_change=None)
    assert d is not None and d.to == 1 and d.reason.startswith("max backlog")


def test_cooldown_and_window() -> None:
    assert decide(TARGET, flat(50), replicas=1, now=10.0, last_change=9.0) is None       # 1 s < 2 s cooldown
    assert decide(TARGET, flat(50), replicas=1, now=10.0, last_change=7.5) is not None
    old = [(5.0, 100.0)]                                                                 # outside the window
    assert decide(TARGET, old, replicas=1, now=10.0, last_change=None) is None


def test_thresholds_policy_steps() -> None:
    assert decide(THRESH, flat(25), replicas=2, now=10.0, last_change=None).to == 3      # type: ignore[union-attr]
    assert decide(THRESH, flat(3), replicas=2, now=10.0, last_change=None).to == 1       # type: ignore[union-attr]
    assert decide(THRESH, flat(10), replicas=2, now=10.0, last_change=None) is None      # 5 per replica: hold
    assert decide(THRESH, flat(100), replicas=4, now=10.0, last_change=None) is None     # at max


@pytest.mark.parametrize("kwargs", [
    {"min_replicas": 3, "max_replicas": 2, "target_per_replica": 1},
    {"policy": "target"},
    {"policy": "thresholds", "scale_up_above": 1, "scale_down_below": 2},
    {"policy": "magic", "target_per_replica": 1},
])
def test_bad_policies_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        Policy(**kwargs)


def test_scale_down_waits_for_a_longer_quiet_stretch_when_asked() -> None:
    stabilised = Policy(max_replicas=8, cooldown_s=0, window_s=1.0, down_window_s=5.0, target_per_replica=5)
    samples = [(5.5, 40.0), (7.0, 3.0), (9.5, 3.0), (10.0, 3.0)]     # busy 4.5 s ago, quiet for the last 1 s
    assert decide(stabilised, samples, replicas=4, now=10.0, last_change=None) is None
    later = decide(stabilised, samples, replicas=4, now=11.0, last_change=None)
    assert later is not None and later.to == 1 and "over 5 s" in later.reason
    assert decide(TARGET, samples, replicas=4, now=10.0, last_change=None).to == 1   # type: ignore[union-attr]
