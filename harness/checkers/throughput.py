"""Rates over time: orders sent, accepted, brewed and served per second, in buckets since t0.

Each series counts events by their own time (invoke `sent`, ok completion `time`, every brewed
and served record's `time`); rates are count / bucket_s, so a partial last bucket reads low.
served_in_faults_per_s: servings inside fault windows per second of fault time (None without faults).
Always valid: throughput is judged by expectations.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.checkers.base import CheckerResult, CheckOptions
from harness.checkers.timeline import FaultSpan, bucket_count, bucket_index, fault_windows, in_any, run_end, t0, union
from harness.history import OK, Record

SERIES = ("sent", "accepted", "brewed", "served")


def event_times(history: Sequence[Record]) -> dict[str, list[float]]:
    """The times of every event of each series."""
    times: dict[str, list[float]] = {name: [] for name in SERIES}
    for record in history:
        kind = record.get("type")
        if kind == "invoke" and record.get("sent") is not None:
            times["sent"].append(float(record["sent"]))
        elif kind == OK:
            times["accepted"].append(float(record["time"]))
        elif kind in ("brewed", "served"):
            times[kind].append(float(record["time"]))
    return times


def overall_rate(times: list[float], origin: float) -> float | None:
    """count / (last event - t0); None with no events or no elapsed time."""
    if not times or max(times) <= origin:
        return None
    return round(len(times) / (max(times) - origin), 6)


def rate_in_faults(times: list[float], windows: Sequence[FaultSpan]) -> float | None:
    """Events inside any fault window per second of their union; None without fault time."""
    seconds = sum(end - start for start, end in union((w.start, w.end) for w in windows))
    if seconds <= 0:
        return None
    return round(sum(1 for t in times if in_any(windows, t)) / seconds, 6)


@dataclass(frozen=True)
class Throughput:
    name: str = "throughput"

    def check(self, history: Sequence[Record], opts: CheckOptions) -> CheckerResult:
        origin, width = t0(history), opts.bucket_s
        times = event_times(history)
        count = bucket_count(origin, run_end(history), width, [t for ts in times.values() for t in ts])
        counts = {name: Counter(bucket_index(origin, t, width) for t in ts) for name, ts in times.items()}
        series = [
            {"t": round(i * width, 6), **{name: round(counts[name][i] / width, 6) for name in SERIES}}
            for i in range(count)
        ]
        data: dict[str, Any] = {
            "bucket_s": width,
            "series": series,
            "accepted_per_s": overall_rate(times["accepted"], origin),
            "served_per_s": overall_rate(times["served"], origin),
            "peak_served_per_s": max(b["served"] for b in series),
            "served_in_faults_per_s": rate_in_faults(times["served"], fault_windows(history)),
        }
        return CheckerResult(self.name, True, data)
