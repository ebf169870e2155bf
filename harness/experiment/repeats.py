"""Repeated runs of one experiment on one shop: seeds, and mean ± 95% CI per metric.

`chaoscafe run --repeat N` runs repetition k (1..N) with seed `base + k - 1`, so both shops see
the same N arrival schedules. Repetition 1 keeps the usual place (`<experiment>/<shop>/`) with
its history, which the report draws; repetitions 2..N go to `<experiment>/<shop>/repeat-<k>/`.
`summarise` folds all N results into a `repeats` section of repetition 1's results.json and a
"repeats" check: the experiment passes only when every repetition passed.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.experiment.metrics import METRICS, lookup
from harness.experiment.verdicts import status_of
from harness.regression.stats import mean_ci


def seeds(base: int, n: int) -> list[int]:
    """The seeds of n repetitions starting from `base`."""
    if n < 1:
        raise ValueError(f"repeat must be >= 1, got {n}")
    return [base + k for k in range(n)]


def out_dir(shop_dir: Path, k: int) -> Path:
    """Where repetition k (1-based) of a shop run writes its files."""
    return shop_dir if k == 1 else shop_dir / f"repeat-{k}"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def summarise(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The `repeats` section: n, seeds, verdicts, and {metric: Interval.to_dict()} for every metric
    of METRICS that has a number in every repetition."""
    metrics: dict[str, Any] = {}
    for metric in sorted(METRICS):
        values = [_number(lookup(r, metric)) for r in runs]
        if values and all(v is not None for v in values):
            metrics[metric] = {**mean_ci([v for v in values if v is not None]).to_dict(), "values": values}
    return {"n": len(runs), "seeds": [r.get("seed") for r in runs],
            "passed": [bool(r.get("passed")) for r in runs], "metrics": metrics}


def fold(primary: dict[str, Any], runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Repetition 1's results with the `repeats` section and check added; `passed` then means
    every repetition passed, and `status` is the worst of the repetitions' (fail, error,
    inconclusive, pass: in that order). A shop run not applicable stays so, with no check added."""
    section = summarise(runs)
    if {status_of(r) for r in [primary, *runs]} == {"not-applicable"}:   # not run, N times: nothing to fold
        return {**primary, "repeats": section}
    passed = sum(section["passed"])
    check = {"name": "repeats", "expected": f"all {len(runs)} repetitions pass", "min": None, "max": None,
             "observed": f"{passed}/{len(runs)} passed", "passed": passed == len(runs)}
    checks = [c for c in primary.get("checks", []) if c.get("name") != "repeats"] + [check]
    statuses = {status_of(r) for r in runs} | {status_of(primary)}
    worst = next((s for s in ("fail", "error", "inconclusive") if s in statuses), "pass")
    return {**primary, "repeats": section, "checks": checks, "passed": worst == "pass", "status": worst}
