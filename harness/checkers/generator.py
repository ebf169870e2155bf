"""Health of the load generator: how late it sent orders (sent - intended) and what it dropped.

Lag percentiles come from an HdrHistogram (negative lag is recorded as 1 µs); `late` counts lags
above late_ms exactly. Valid iff nothing was dropped and the lag p99 is at most `opts.max_lag_ms`:
a generator that fell behind did not apply the load the experiment claims (the run is then
inconclusive, harness.experiment.results); smaller lateness is judged by expectations.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.checkers.base import CheckerResult, CheckOptions
from harness.checkers.distribution import summary
from harness.history import Record


@dataclass(frozen=True)
class GeneratorHealth:
    name: str = "generator"

    def check(self, history: Sequence[Record], opts: CheckOptions) -> CheckerResult:
        invokes = [r for r in history if r.get("type") == "invoke"]
        lags = [(float(r["sent"]) - float(r["intended"])) * 1000 for r in invokes if r.get("sent") is not None]
        dropped = sum(1 for r in history if r.get("type") == "dropped")
        lag = summary(lags)
        data: dict[str, Any] = {
            "lag_p50_ms": lag["p50"],
            "lag_p99_ms": lag["p99"],
            "lag_max_ms": lag["max"],
            "late": sum(1 for ms in lags if ms > opts.late_ms),
            "dropped": dropped,
            "invoked": len(invokes),
            "scheduled": len(invokes) + dropped,
        }
        behind = lag["p99"] is not None and lag["p99"] > opts.max_lag_ms
        return CheckerResult(self.name, dropped == 0 and not behind, data)
