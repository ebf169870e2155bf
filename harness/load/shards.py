"""Sharding the schedule across generator workers, and each shard's records file.

Arrival `ref` goes to shard `ref % N` (`shard_of`), so shard k sends `schedule.arrivals[k::N]`:
every arrival in exactly one shard, each shard in time order, all of them spread evenly over the
run (a shard is the whole schedule at 1/N of the rate). Each shard writes its records to its own
JSON-lines file (`ShardFile`); after the run `HistoryWriter.absorb` merges them into the history.

How many workers by default (`default_workers`): one on a machine of two cores or fewer, where
the shop under test, Toxiproxy and the broker need the CPU a second generator process would take
and one event loop already keeps its schedule far above any shop's ceiling (docs/performance.md);
otherwise half the cores, at most four.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import IO

import orjson

from harness.load.schedule import Arrival, ArrivalSchedule

MAX_WORKERS = 16
WORKERS_ENV = "CHAOSCAFE_GENERATOR_WORKERS"   # set by `chaoscafe run --generator-workers N`


def shard_of(index: int, workers: int) -> int:
    """The shard that sends arrival `index` (its ref) when there are `workers` shards."""
    return index % workers


def shard_arrivals(schedule: ArrivalSchedule, shard: int, workers: int) -> tuple[Arrival, ...]:
    """Shard `shard`'s arrivals: those with index % workers == shard, in time order."""
    if not 0 <= shard < workers:
        raise ValueError(f"shard: must be in [0, {workers}), got {shard!r}")
    return schedule.arrivals[shard::workers]


def default_workers(cpus: int | None = None) -> int:
    """1 on <= 2 cores (the shop needs the other), else half the cores, at most 4."""
    cpus = cpus if cpus is not None else (os.cpu_count() or 1)
    return 1 if cpus <= 2 else min(4, cpus // 2)


def check_workers(value: object, what: str = "generator workers") -> int:
    """`value` as a worker count in [1, MAX_WORKERS]; ValueError naming `what` otherwise."""
    try:
        n = int(str(value))
    except ValueError:
        raise ValueError(f"{what}: must be a whole number in [1, {MAX_WORKERS}], got {value!r}") from None
    if not 1 <= n <= MAX_WORKERS:
        raise ValueError(f"{what}: must be in [1, {MAX_WORKERS}], got {value!r}")
    return n


def configured_workers(explicit: int | None = None) -> tuple[int, str]:
    """(workers, where the number came from): `explicit`, else $CHAOSCAFE_GENERATOR_WORKERS, else the
    machine's default."""
    if explicit is not None:
        return check_workers(explicit), "option"
    value = os.environ.get(WORKERS_ENV)
    if value:
        return check_workers(value, f"${WORKERS_ENV}"), "environment"
    return default_workers(), f"default ({os.cpu_count() or 1} cores)"


def shard_path(directory: Path, shard: int) -> Path:
    return Path(directory) / f"generator-{shard}.jsonl"


class ShardFile:
    """A shard's records as JSON lines (orjson: about 5x faster than json here; the same JSON),
    buffered; `close()` flushes. For one event loop (no lock)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] = self.path.open("wb", buffering=1 << 16)
        self.count = 0

    def write(self, record: dict[str, object]) -> None:
        self._file.write(orjson.dumps(record) + b"\n")
        self.count += 1

    def flush(self) -> None:
        if not self._file.closed:
            self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
