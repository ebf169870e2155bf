"""Plain progress lines for a log: one line when each shop run starts and one when it ends.

`chaoscafe run` prints these instead of live progress bars when stdout is not a terminal (CI,
tox, a pipe), so a long main job shows what it is doing and how long is left:

    [ 3/34] barista-outage / sync: started (arrivals 20 s)
    [ 3/34] barista-outage / sync: pass  attempted 200 accepted 180 lost 0 dup 0  accept p99 12.1 ms  wall 31.0 s  ~14m05s left

The time left is the wall time so far, scaled by the shop runs still to come, each weighed by
its arrival window plus `OVERHEAD_S` (start-up, drain, checks).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

OVERHEAD_S = 10.0   # a shop run's cost beyond its arrival window, for weighing (s)


def duration(seconds: float) -> str:
    """`seconds` as 42s, 3m05s or 1h02m."""
    s = int(round(max(0.0, seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _num(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:.1f}{unit}" if isinstance(value, float) else f"{value}{unit}"


class PlainLines:
    """A `harness.experiment.runs.RunListener` writing one plain line per event through `emit` (print).

    `planned` is the list of arrival windows (s) of every shop run of the set. A shop run's start
    and end lines carry the same number `[k/N]`, k counting starts (with `--jobs`, runs start
    and end in another order than the set's, and overlap).
    """

    def __init__(self, planned: list[float], emit: Callable[[str], None] = print,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.weights = [w + OVERHEAD_S for w in planned]
        self.emit, self.clock = emit, clock
        self.started_at = clock()
        self.started = 0
        self.done = 0
        self.spent = 0.0    # the weights of the finished runs
        self.going: dict[tuple[str, str, int], tuple[int, float]] = {}   # run -> (k, weight)

    def _prefix(self, k: int) -> str:
        width = len(str(len(self.weights)))
        return f"[{k:>{width}}/{len(self.weights)}]"

    def time_left(self) -> float | None:
        """Seconds left for the set, from the pace so far; None before the first shop run ends."""
        if self.done == 0 or self.spent <= 0:
            return None
        return (self.clock() - self.started_at) / self.spent * max(0.0, sum(self.weights) - self.spent)

    def shop_started(self, experiment: str, system: str, repetition: int, planned_s: float) -> None:
        self.started += 1
        self.going[(experiment, system, repetition)] = (self.started, planned_s + OVERHEAD_S)
        rep = f" repetition {repetition}" if repetition > 1 else ""
        self.emit(f"{self._prefix(self.started)} {experiment} / {system}{rep}: started (arrivals {planned_s:g} s)")

    def shop_finished(self, row: dict[str, Any], repetition: int) -> None:
        k, weight = self.going.pop((row["experiment"], row["system"], repetition),
                                   (self.done + 1, self.weights[min(self.done, len(self.weights) - 1)]))
        prefix = self._prefix(k)
        self.done = min(self.done + 1, len(self.weights))
        self.spent += weight
        left = self.time_left()
        rep = f" repetition {repetition}" if repetition > 1 else ""
        verdict = row.get("status") or ("pass" if row.get("passed") else "fail")
        if verdict == "not-applicable":
            self.emit(f"{prefix} {row['experiment']} / {row['system']}{rep}: not applicable, not run"
                      f" ({row.get('not_applicable')})  wall {_num(row.get('wall_s'), ' s')}")
            return
        line = (f"{prefix} {row['experiment']} / {row['system']}{rep}: {verdict.upper() if verdict != 'pass' else verdict}"
                f"  attempted {_num(row.get('attempted'))} accepted {_num(row.get('accepted'))}"
                f" lost {_num(row.get('lost'))} dup {_num(row.get('duplicated'))}"
                f"  accept p99 {_num(row.get('acceptance_p99_ms'), ' ms')}  wall {_num(row.get('wall_s'), ' s')}")
        if left is not None:
            line += f"  ~{duration(left)} left" if self.done < len(self.weights) else "  (last)"
        if row.get("error"):
            line += f"  error: {row['error']}"
        elif row.get("failed_checks"):
            line += f"  failed: {', '.join(row['failed_checks'])}"
        self.emit(line)
