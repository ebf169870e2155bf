"""Time in a history: t0, the run end, fault windows (as `FaultSpan`s) and fixed-width buckets.

All times in records are epoch seconds; "_s" values are seconds since t0 (the run record's t0).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from harness.history import Record, run_record

TIME_FIELDS = ("time", "intended", "sent", "started")


def t0(history: Sequence[Record]) -> float:
    """The run record's t0; raises ValueError if the history has no run record."""
    return float(run_record(list(history))["t0"])


def run_end(history: Sequence[Record]) -> float:
    """Time of the "end" record if there is one, else the latest time in any record (t0 at least)."""
    for record in history:
        if record.get("type") == "end" and record.get("time") is not None:
            return float(record["time"])
    latest = t0(history)
    for record in history:
        for field in TIME_FIELDS:
            value = record.get(field)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                latest = max(latest, float(value))
    return latest


@dataclass(frozen=True)
class FaultSpan:
    """One fault as the history recorded it: from its start record to its end record (absolute epoch
    seconds). Not `harness.experiment.faults.FaultWindow`, the fault as scheduled (start_s, duration_s)."""

    name: str
    kind: str | None
    target: str | None
    start: float
    end: float
    t0: float
    settled: float | None = None   # a heal with a side effect: when the shop had settled after it

    @property
    def aftermath_end(self) -> float:
        """The end of what the heal itself disturbed: `settled`, or `end` when it has no aftermath."""
        return self.end if self.settled is None else max(self.end, self.settled)

    def in_aftermath(self, time: float) -> bool:
        """True for `end <= time < settled`: after the fault, while its heal's side effect lasted."""
        return self.end <= time < self.aftermath_end

    @property
    def start_s(self) -> float:
        return self.start - self.t0

    @property
    def end_s(self) -> float:
        return self.end - self.t0

    def contains(self, time: float) -> bool:
        """True for `start <= time < end`."""
        return self.start <= time < self.end


def fault_windows(history: Sequence[Record]) -> list[FaultSpan]:
    """Fault windows sorted by start, pairing "fault" start/end records by `name` in time order.

    A window with no end closes at the run end; an end with no open start is ignored; a second
    start while the same name is open is ignored (the window keeps its first start). A "settled"
    record after the end gives the window's aftermath (`settled`).
    """
    origin, finish = t0(history), run_end(history)
    faults = sorted((r for r in history if r.get("type") == "fault"), key=lambda r: float(r["time"]))
    open_starts: dict[str, Record] = {}
    windows: list[FaultSpan] = []

    settled = {str(r["name"]): float(r["time"]) for r in faults if r.get("phase") == "settled"}

    def close(start: Record, end_time: float) -> None:
        name = str(start["name"])
        after = settled.get(name)
        windows.append(FaultSpan(name, start.get("kind"), start.get("target"), float(start["time"]), end_time,
                                 origin, after if after is not None and after >= end_time else None))

    for record in faults:
        name = str(record["name"])
        if record.get("phase") == "start":
            open_starts.setdefault(name, record)
        elif record.get("phase") == "end" and name in open_starts:
            close(open_starts.pop(name), float(record["time"]))
    for start in open_starts.values():
        close(start, max(finish, float(start["time"])))
    return sorted(windows, key=lambda w: (w.start, w.name))


def in_any(windows: Sequence[FaultSpan], time: float) -> bool:
    return any(w.contains(time) for w in windows)


def union(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """The non-empty intervals merged where they overlap or touch, sorted by start."""
    merged: list[tuple[float, float]] = []
    for start, end in sorted(i for i in intervals if i[1] > i[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def bucket_count(origin: float, end: float, bucket_s: float, times: Iterable[float] = ()) -> int:
    """How many buckets of `bucket_s` cover [origin, end) and every one of `times`; at least one."""
    needed = max((bucket_index(origin, t, bucket_s) + 1 for t in times), default=1)
    return max(1, math.ceil((end - origin) / bucket_s), needed)


def bucket_index(origin: float, time: float, bucket_s: float) -> int:
    """The bucket holding `time`; times before origin fall in bucket 0."""
    return max(0, math.floor((time - origin) / bucket_s))
