"""Shared pieces of the benchmarks: one constant-rate open-loop step with the real driver, its summary,
plain-text tables, machine facts and JSON output.

Every latency is measured from the order's *intended* send time (open loop, no coordinated
omission): `lag` = sent - intended is the generator's own delay, `latency` = completion - intended
is what a customer arriving on schedule saw. Percentiles and max are the harness's, over all values
(`harness.checkers.distribution`: HDR's rank rule and 3-significant-digit precision), so a benchmark's
p99 and a run's p99 of the same latencies are the same number.
"""
from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from cafe.menu import load_menu
from harness.checkers.distribution import percentile
from harness.checkers.distribution import summary as latency_summary
from harness.history import Record, merge_lines
from harness.load.schedule import ArrivalSchedule, build_schedule
from harness.load.shapes import Constant
from harness.load.workers import ShardedDriver

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
LEAD_S = 1.0             # t0 is this far ahead when a step starts, so the first arrival is on time
LAG_LIMIT_MS = 5.0       # the generator keeps up when its lag p99 is below this


def parse_rates(text: str) -> list[float]:
    """'100,200,400' -> [100.0, 200.0, 400.0]; each > 0, strictly increasing."""
    try:
        rates = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"--rates: must be comma-separated numbers, got {text!r}") from None
    if not rates or any(not (math.isfinite(r) and r > 0) for r in rates):
        raise ValueError(f"--rates: every rate must be a finite number > 0, got {text!r}")
    if any(b <= a for a, b in zip(rates, rates[1:], strict=False)):
        raise ValueError(f"--rates: must be strictly increasing, got {text!r}")
    return rates


def constant_schedule(rate: float, duration_s: float, seed: int) -> ArrivalSchedule:
    """A uniform (evenly spaced) constant-rate schedule over the whole menu, equal weights."""
    menu = load_menu()
    products = sorted(menu.products)
    return build_schedule(Constant(rate), duration_s, process="uniform", seed=seed,
                          menu_mix={p: 1.0 for p in products}, sizes={p: menu.sizes_of(p) for p in products})


def _dist(values: Sequence[float]) -> dict[str, float | None]:
    """p50/p99/max in ms (values already in ms), as the harness's latency summary gives them."""
    summary = latency_summary(values)
    return {key: summary[key] for key in ("p50", "p99", "max")}


@dataclass
class StepResult:
    """What one constant-rate step did, computed from the driver's records only."""

    rate: float                       # intended orders per second
    duration_s: float
    scheduled: int
    sent: int
    dropped: int                      # never sent: max_in_flight reached (generator side)
    ok: int                           # accepted (the accepted status)
    fail: int
    info: int
    send_rate: float | None           # achieved: (sent - 1) / (last sent - first sent)
    accepted_per_s: float | None      # ok / (last ok completion - t0)
    lag_ms: dict[str, float | None]   # sent - intended
    lag_p99_per_s: list[float | None]  # lag p99 for each second of the schedule (does it grow?)
    latency_ms: dict[str, float | None]  # ok completion - intended
    errors: dict[str, int]            # not-ok outcomes by what happened
    wall_s: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def share_ok(self) -> float:
        return self.ok / self.scheduled if self.scheduled else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["share_ok"] = round(self.share_ok, 5)
        return data


def _error_key(record: Record) -> str:
    if record.get("status") is not None:
        return f"{record['type']} HTTP {record['status']}"
    name = str(record.get("error") or "").split(":", 1)[0] or "?"
    return f"{record['type']} {record.get('error_kind') or 'error'} ({name})"


def summarise(rate: float, schedule: ArrivalSchedule, t0: float, records: list[Record],
              wall_s: float) -> StepResult:
    """The StepResult of one step from its records (invoke / ok / fail / info / dropped)."""
    invokes = {r["ref"]: r for r in records if r["type"] == "invoke"}
    done = [r for r in records if r["type"] in ("ok", "fail", "info")]
    dropped = sum(1 for r in records if r["type"] == "dropped")
    lags = [(r["sent"] - r["intended"]) * 1000.0 for r in invokes.values()]
    sent_times = sorted(r["sent"] for r in invokes.values())
    send_rate = ((len(sent_times) - 1) / (sent_times[-1] - sent_times[0])
                 if len(sent_times) > 1 and sent_times[-1] > sent_times[0] else None)
    oks = [r for r in done if r["type"] == "ok"]
    latencies = [(r["time"] - invokes[r["ref"]]["intended"]) * 1000.0 for r in oks]
    from_sent = [(r["time"] - invokes[r["ref"]]["sent"]) * 1000.0 for r in oks]
    last_ok = max((r["time"] for r in oks), default=None)
    accepted_per_s = len(oks) / (last_ok - t0) if last_ok is not None and last_ok > t0 else None
    per_second: dict[int, list[float]] = {}
    for r in invokes.values():
        second = int(r["intended"] - t0)
        per_second.setdefault(second, []).append((r["sent"] - r["intended"]) * 1000.0)
    seconds = math.ceil(schedule.duration_s)
    counts = Counter(r["type"] for r in done)
    errors = Counter(_error_key(r) for r in done if r["type"] != "ok")
    return StepResult(
        rate=rate, duration_s=schedule.duration_s, scheduled=len(schedule), sent=len(invokes), dropped=dropped,
        ok=counts["ok"], fail=counts["fail"], info=counts["info"],
        send_rate=None if send_rate is None else round(send_rate, 2),
        accepted_per_s=None if accepted_per_s is None else round(accepted_per_s, 2),
        lag_ms=_dist(lags), lag_p99_per_s=[percentile(per_second.get(s, []), 99) for s in range(seconds)],
        latency_ms=_dist(latencies), errors=dict(errors.most_common(6)), wall_s=round(wall_s, 3),
        extra={"latency_from_sent_ms": _dist(from_sent)})


_TICK = os.sysconf("SC_CLK_TCK")


def _machine_jiffies() -> tuple[int, int, int]:
    """(busy, total, steal) jiffies of all CPUs from /proc/stat; busy excludes idle and iowait."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest is inside user)
    return total - fields[3] - fields[4], total, fields[7]


def _process_cpu_s(pid: int) -> float:
    """utime + stime of one live process in seconds (0 when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


class CpuMeter(threading.Thread):
    """CPU used during [t0, t0 + duration): by the generator (this process and its worker processes,
    `generator_pids`), by `pids` ({pid: name}), by the whole machine.

    Values are in cores (1.0 = one core busy for the whole window); `other_cores` is what the rest
    of the machine used (on a shared machine: other people's work, plus anything not in `pids`).
    """

    def __init__(self, t0: float, duration_s: float, pids: Callable[[], dict[int, str]] | None = None,
                 generator_pids: Callable[[], list[int]] | None = None) -> None:
        super().__init__(name="cpu-meter", daemon=True)
        self.t0, self.duration_s, self.pids = t0, duration_s, pids or (lambda: {})
        self.generator_pids = generator_pids or (lambda: [])
        self.result: dict[str, Any] = {}
        self._halt = threading.Event()

    def _snapshot(self, pids: dict[int, str], workers: list[int]) -> tuple[float, float, dict[int, float],
                                                                             tuple[int, int, int]]:
        generator = time.process_time() + sum(_process_cpu_s(p) for p in workers)
        return time.monotonic(), generator, {p: _process_cpu_s(p) for p in pids}, _machine_jiffies()

    def run(self) -> None:
        if self._halt.wait(max(0.0, self.t0 - time.time())):
            return
        pids, workers = self.pids(), self.generator_pids()
        w0, g0, p0, (b0, t0, s0) = self._snapshot(pids, workers)
        if self._halt.wait(self.duration_s):
            return
        w1, g1, p1, (b1, t1, s1) = self._snapshot(pids, workers)
        wall, ncpu = w1 - w0, os.cpu_count() or 1
        machine_cores = (b1 - b0) / (t1 - t0) * ncpu if t1 > t0 else 0.0
        by_process = {name: round((p1[p] - p0[p]) / wall, 3) for p, name in pids.items()}
        generator, others = (g1 - g0) / wall, sum(p1[p] - p0[p] for p in pids) / wall
        self.result = {"generator_cores": round(generator, 3), "measured_pids_cores": round(others, 3),
                       "machine_busy_cores": round(machine_cores, 3),
                       "other_cores": round(max(0.0, machine_cores - generator - others), 3),
                       "steal_cores": round((s1 - s0) / (t1 - t0) * ncpu if t1 > t0 else 0.0, 3),
                       "cores": ncpu, "by_process": by_process}

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=2)


def run_step(entry_url: str, rate: float, duration_s: float, *, accepted_status: int, client_timeout_s: float,
             max_in_flight: int, seed: int, cpu_pids: Callable[[], dict[int, str]] | None = None,
             workers: int = 1) -> StepResult:
    """Drive `rate` orders/s for `duration_s` at `{entry_url}/orders` with the real driver, the harness's
    `ShardedDriver` with `workers` worker processes (1: in this process), as `chaoscafe run` does.

    Bounded: the schedule has rate*duration orders and every request has a total timeout, so the
    step takes at most LEAD_S + duration_s + client_timeout_s (plus scheduling noise). CPU use
    during the schedule (generator with its workers, `cpu_pids`, the rest of the machine) goes into
    `extra["cpu"]`; the records are the shards' files merged as a run's history is.
    """
    schedule = constant_schedule(rate, duration_s, seed)
    with tempfile.TemporaryDirectory(prefix="chaoscafe-generator-") as tmp:
        driver = ShardedDriver(entry_url, schedule, workers=workers, shard_dir=Path(tmp),
                               accepted_status=accepted_status, client_timeout_s=client_timeout_s,
                               max_in_flight=max_in_flight)
        try:
            driver.start()   # workers spawned and handed their shards before t0 is chosen
            t0 = time.time() + LEAD_S
            meter = CpuMeter(t0, duration_s, cpu_pids, driver.pids)
            meter.start()
            started = time.monotonic()
            try:
                stats = driver.run(t0)
            except BaseException:
                meter.stop()
                raise
            # the window's end snapshot, while finished workers still wait to be let go
            meter.join(timeout=max(0.0, t0 + duration_s - time.time()) + 2.0)
            meter.stop()
        finally:
            driver.close()
        wall = time.monotonic() - started
        records: list[Record] = [orjson.loads(line) for line in merge_lines(driver.shard_files)]
    step = summarise(rate, schedule, t0, records, wall)
    step.extra["cpu"] = meter.result
    step.extra["workers"] = workers
    step.extra["driver"] = stats.summary()   # its live HdrHistograms (the table's numbers come from the records)
    return step


def machine() -> dict[str, Any]:
    """Facts about the machine the numbers come from."""
    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        nproc = int(subprocess.run(["nproc"], capture_output=True, text=True, timeout=5).stdout.strip())
    except (OSError, ValueError, subprocess.SubprocessError):
        nproc = os.cpu_count() or 0
    return {"nproc": nproc, "cpu_model": model, "loadavg": [round(x, 2) for x in os.getloadavg()],
            "python": sys.version.split()[0], "platform": platform.platform(),
            "note": "shared machine: other work may run at the same time"}


def git_revision() -> str | None:
    """The checkout's HEAD (the working tree may have uncommitted changes)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=BENCH_DIR, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _numeric(cell: str) -> bool:
    """Numbers (and "-") are right-aligned in tables, text left-aligned."""
    try:
        float(cell.rstrip("%"))
        return True
    except ValueError:
        return cell == "-"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, align_numbers: bool = True) -> str:
    """A Markdown table (also readable as plain text); numbers right-aligned unless `align_numbers` is False."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(c.rjust(w) if align_numbers and _numeric(c) else c.ljust(w) for c, w in zip(r, widths, strict=True))
            + " |" for r in rows]
    return "\n".join([line, rule, *body])


def stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")
