"""The autoscaler's policy: a pure function from backlog samples to a replica count, with its reason.

Two declared policies, both per replica and clamped to [min_replicas, max_replicas]:

    target      desired = ceil(backlog / target_per_replica)       (the Kubernetes HPA rule)
    thresholds  backlog per replica > scale_up_above  -> replicas + step
                backlog per replica < scale_down_below -> replicas - step

The backlog is judged over the last `window_s` seconds of samples for scaling up (their mean) and
over the last `down_window_s` seconds (default: window_s) for scaling down (their maximum: remove a
barista only when that whole stretch was quiet, like Kubernetes' scale-down stabilisation window).
No change within `cooldown_s` of the previous one. `decide` never reads the clock: `now` is given.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

POLICIES = ("target", "thresholds")


@dataclass(frozen=True)
class Policy:
    min_replicas: int = 1
    max_replicas: int = 8
    cooldown_s: float = 2.0
    window_s: float = 1.0
    policy: str = "target"
    target_per_replica: float | None = None
    scale_up_above: float | None = None
    scale_down_below: float | None = None
    step: int = 1
    down_window_s: float | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.min_replicas <= self.max_replicas:
            raise ValueError(f"need 1 <= min_replicas <= max_replicas, got {self.min_replicas}, {self.max_replicas}")
        if self.policy not in POLICIES:
            raise ValueError(f"policy {self.policy!r} is not one of {POLICIES}")
        if self.policy == "target" and not (self.target_per_replica and self.target_per_replica > 0):
            raise ValueError("policy 'target' needs target_per_replica > 0")
        if self.policy == "thresholds":
            up, down = self.scale_up_above, self.scale_down_below
            if up is None or down is None or not 0 <= down < up:
                raise ValueError("policy 'thresholds' needs 0 <= scale_down_below < scale_up_above")


@dataclass(frozen=True)
class Decision:
    """Scale from `replicas` to `to`, because of `reason` (backlog: the value judged)."""

    replicas: int
    to: int
    backlog: float
    reason: str


def decide(policy: Policy, samples: Sequence[tuple[float, float]], replicas: int, now: float,
           last_change: float | None) -> Decision | None:
    """The change the policy asks for now, or None (no samples in the window, in cooldown, or no
    change). `samples` are (time, backlog) pairs; only those in [now - window_s, now] count."""
    recent = [backlog for time, backlog in samples if now - policy.window_s <= time <= now]
    down_window = policy.window_s if policy.down_window_s is None else policy.down_window_s
    quiet = [backlog for time, backlog in samples if now - down_window <= time <= now]
    if not recent:
        return None
    if last_change is not None and now - last_change < policy.cooldown_s:
        return None
    mean, peak = sum(recent) / len(recent), max(quiet or recent)
    up, down = _wanted(policy, mean, replicas), _wanted(policy, peak, replicas)
    if up > replicas:
        to, judged, word = up, mean, "mean"
        window = policy.window_s
    elif down < replicas:
        to, judged, word = down, peak, "max"
        window = down_window
    else:
        return None
    to = max(policy.min_replicas, min(policy.max_replicas, to))
    if to == replicas:
        return None
    rule = (f"target {policy.target_per_replica:g}/replica" if policy.policy == "target"
            else f"thresholds up > {policy.scale_up_above:g}, down < {policy.scale_down_below:g} per replica")
    return Decision(replicas, to, round(judged, 3),
                    f"{word} backlog {judged:.1f} over {window:g} s with {replicas} replicas, {rule}")


def _wanted(policy: Policy, backlog: float, replicas: int) -> int:
    """Replicas wanted for `backlog`, before clamping."""
    if policy.policy == "target":
        assert policy.target_per_replica is not None
        return max(1, math.ceil(backlog / policy.target_per_replica))
    assert policy.scale_up_above is not None and policy.scale_down_below is not None
    per = backlog / replicas
    if per > policy.scale_up_above:
        return replicas + policy.step
    if per < policy.scale_down_below:
        return replicas - policy.step
    return replicas
