"""The load generator over N worker processes: shard k (arrivals `ref % N == k`) runs in its own
process with its own event loop and writes its own records file.

    driver = ShardedDriver(url, schedule, workers=2, shard_dir=dir, ...)
    try:
        driver.start()               # spawn the workers and hand each its shard (before t0 is chosen)
        t0 = time.time() + lead
        stats = driver.run(t0)       # live counters in driver.stats; the shards' histograms merged at the end
    finally:
        driver.close()               # every worker ended and joined
    history.absorb(driver.shard_files)

With one worker the shard runs in this process (no spawn), writing the same kind of file, so
N=1 is the single event loop the harness always had. Workers are `spawn`ed (no fork of a process
with threads; the program that uses this needs the `if __name__ == "__main__"` guard, as every
spawning program does), each in a session of its own with SIGINT ignored (a terminal Ctrl-C
reaches only the harness, which then stops them), SIGTERM turned into an exit that still closes
its file, and PR_SET_PDEATHSIG=SIGKILL (Linux) as the safety net if the harness itself is killed.
A worker that has finished waits until `close()` closes its pipe (so its CPU time can still be
read); `close()` lets finished workers go and terminates the others (SIGTERM, then SIGKILL), and
joins them all: call it in a `finally`. A worker that dies or reports an error fails `run()`.
"""
from __future__ import annotations

import math
import multiprocessing
import os
import signal
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from harness.load.driver import NO_RETRY, DriverStats, OpenLoopDriver
from harness.load.retry import RetryPolicy
from harness.load.schedule import Arrival, ArrivalSchedule
from harness.load.shards import ShardFile, check_workers, shard_arrivals, shard_path

REPORT_S = 0.25          # a worker's live counters reach the harness this often
READY_TIMEOUT_S = 30.0   # a worker that has not started by then is a failed run
REAP_TIMEOUT_S = 10.0   # how long a worker whose pipe closed may take to be reaped, for its exit code
STOP_TIMEOUT_S = 5.0     # after SIGTERM, then SIGKILL


@dataclass(frozen=True)
class WorkerConfig:
    """What one worker needs (pickled to it): its shard's arrivals and the driver's settings."""

    shard: int
    workers: int
    entry_url: str
    arrivals: tuple[Arrival, ...]
    accepted_status: int
    client_timeout_s: float
    max_in_flight: int
    retry: RetryPolicy
    idempotency_key: bool
    path: Path


class WorkerError(RuntimeError):
    """A generator worker failed to start, died, or raised."""


class ShardedDriver:
    """The open-loop driver over `workers` shards (see the module docstring)."""

    def __init__(self, entry_url: str, schedule: ArrivalSchedule, *, workers: int, shard_dir: Path,
                 accepted_status: int, client_timeout_s: float, max_in_flight: int,
                 retry: RetryPolicy = NO_RETRY, idempotency_key: bool = False) -> None:
        self.workers = check_workers(workers)
        self.shard_dir = Path(shard_dir)
        self.shard_files = [shard_path(self.shard_dir, k) for k in range(self.workers)]
        # the bound on open requests is the run's; each shard gets its share of it
        per_shard = max(1, math.ceil(max_in_flight / self.workers))
        self.configs = [WorkerConfig(k, self.workers, entry_url, shard_arrivals(schedule, k, self.workers),
                                     accepted_status, client_timeout_s, per_shard, retry,
                                     idempotency_key, self.shard_files[k]) for k in range(self.workers)]
        self.stats = DriverStats(scheduled=len(schedule))
        self._procs: list[BaseProcess] = []
        self._conns: list[Connection] = []
        self._latest: dict[int, dict[str, Any]] = {}   # each shard's last counters
        self._done: set[int] = set()                     # shards that reported "done"

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Spawn the workers and wait until each has loaded its shard (a no-op for one worker)."""
        if self._procs or self.workers == 1:
            return
        self.shard_dir.mkdir(parents=True, exist_ok=True)
        ctx = multiprocessing.get_context("spawn")
        try:
            for config in self.configs:
                parent, child = ctx.Pipe(duplex=True)
                # the shard goes over the pipe, not in the spawn arguments: a child that dies while
                # reading those leaves the parent blocked in its write once they exceed a pipe buffer
                proc = ctx.Process(target=_work, args=(child,), name=f"generator-{config.shard}", daemon=True)
                proc.start()
                child.close()
                self._procs.append(proc)
                self._conns.append(parent)
            for conn, config in zip(self._conns, self.configs, strict=True):
                conn.send(config)
            deadline = time.monotonic() + READY_TIMEOUT_S
            waiting = set(range(self.workers))
            while waiting:
                self._receive(waiting, deadline, expect="ready")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """End and join every worker: a finished one is let go (its pipe closed), any other is
        terminated (SIGTERM, then SIGKILL after STOP_TIMEOUT_S); idempotent."""
        for k, proc in enumerate(self._procs):
            if k not in self._done and proc.is_alive():
                proc.terminate()
        for conn in self._conns:
            conn.close()
        for proc in self._procs:
            proc.join(STOP_TIMEOUT_S)
            if proc.is_alive():
                proc.terminate()
                proc.join(STOP_TIMEOUT_S)
            if proc.is_alive():
                proc.kill()
                proc.join(STOP_TIMEOUT_S)

    def __enter__(self) -> ShardedDriver:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def pids(self) -> list[int]:
        return [p.pid for p in self._procs if p.pid is not None]

    # -- running ---------------------------------------------------------------------------------
    def run(self, t0: float) -> DriverStats:
        """Send every shard from wall-clock `t0`; blocks until every arrival was sent (or dropped) and
        every request ended; returns the merged stats. Workers are not ended here: `close()`."""
        if self.workers == 1:
            return self._run_here(t0)
        try:
            self.start()
            for conn in self._conns:
                conn.send(("go", t0))
            waiting = set(range(self.workers))
            while waiting:
                self._receive(waiting, math.inf, expect="done")
            return self.stats
        except BaseException:
            self.close()
            raise

    def _run_here(self, t0: float) -> DriverStats:
        config = self.configs[0]
        sink = ShardFile(config.path)
        try:
            driver = _driver(config, t0, sink)
            driver.stats = self.stats   # the one live object everyone reads
            driver.run()
        finally:
            sink.close()
        return self.stats

    def _receive(self, waiting: set[int], deadline: float, *, expect: str) -> None:
        """Handle the next messages (or deaths) of the workers in `waiting`; drop each that sent `expect`."""
        conns = {self._conns[k]: k for k in waiting}
        sentinels = {self._procs[k].sentinel: k for k in waiting}
        timeout = None if deadline == math.inf else max(0.0, deadline - time.monotonic())
        ready = wait([*conns, *sentinels], timeout)
        if not ready:
            raise WorkerError(f"generator workers {sorted(waiting)} not {expect} within {READY_TIMEOUT_S:g} s")
        for item in ready:
            if item in conns:
                k = conns[item]
                try:
                    kind, payload = item.recv()   # type: ignore[union-attr]
                except EOFError:   # it closed its end without the message we wait for
                    self._procs[k].join(REAP_TIMEOUT_S)   # a busy machine may reap it late
                    raise WorkerError(f"generator worker {k} exited with code {self._procs[k].exitcode} "
                                      f"before it was {expect}") from None
                if kind == "error":
                    raise WorkerError(f"generator worker {k} failed: {payload}")
                if kind == "counters":
                    self._counters(k, payload)
                elif kind == "done":
                    self._done.add(k)
                    self._counters(k, payload["counters"])
                    for name in ("lag", "latency"):
                        getattr(self.stats, name).add(HdrHistogram.decode(payload[name]))
                if kind == expect:
                    waiting.discard(k)
        for item in ready:
            if item in sentinels:
                k = sentinels[item]
                if k in waiting and not self._conns[k].poll():
                    self._procs[k].join(REAP_TIMEOUT_S)   # its sentinel closes a moment before it can be reaped
                    raise WorkerError(f"generator worker {k} exited with code {self._procs[k].exitcode} "
                                      f"before it was {expect}")

    def _counters(self, shard: int, counters: dict[str, Any]) -> None:
        latest = self._latest
        latest[shard] = counters
        s = self.stats
        s.sent = sum(c["sent"] for c in latest.values())
        s.completed = sum(c["completed"] for c in latest.values())
        s.dropped = sum(c["dropped"] for c in latest.values())
        s.in_flight = sum(c["in_flight"] for c in latest.values())
        s.outcomes = {o: sum(c["outcomes"][o] for c in latest.values()) for o in s.outcomes}


def _driver(config: WorkerConfig, t0: float, sink: ShardFile) -> OpenLoopDriver:
    return OpenLoopDriver(config.entry_url, config.arrivals, t0, accepted_status=config.accepted_status,
                          client_timeout_s=config.client_timeout_s, max_in_flight=config.max_in_flight,
                          record=sink.write, retry=config.retry, idempotency_key=config.idempotency_key)


def _die_with_parent() -> None:
    """PR_SET_PDEATHSIG=SIGKILL: the kernel kills this worker if the harness dies (Linux only)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - not Linux: close() and daemon=True still stop it
        pass


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def detach_worker() -> None:
    """For a worker process the harness spawned, first thing: a session of its own, SIGINT ignored
    (a terminal Ctrl-C reaches only the harness, which stops its workers), SIGTERM raising
    SystemExit (so `finally` blocks run), and killed by the kernel if the harness dies."""
    try:
        os.setsid()
    except OSError:  # pragma: no cover - already a session leader
        pass
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)


def _work(conn: Connection) -> None:
    """A worker process: receive its shard, say ready, wait for ("go", t0), run it (counters every
    REPORT_S, the histograms at the end), then wait until the harness closes the pipe."""
    detach_worker()
    lock = threading.Lock()   # one sender at a time on the pipe
    halt = threading.Event()
    sink: ShardFile | None = None
    try:
        config: WorkerConfig = conn.recv()
        conn.send(("ready", None))
        kind, t0 = conn.recv()
        if kind != "go":
            raise RuntimeError(f"expected go, got {kind!r}")
        sink = ShardFile(config.path)
        driver = _driver(config, t0, sink)

        def report() -> None:
            while not halt.wait(REPORT_S):
                with lock:
                    conn.send(("counters", driver.stats.counters()))

        reporter = threading.Thread(target=report, name="generator-counters", daemon=True)
        reporter.start()
        driver.run()
        halt.set()
        reporter.join()
        sink.close()
        with lock:
            conn.send(("done", {"counters": driver.stats.counters(), "lag": driver.stats.lag.encode(),
                                "latency": driver.stats.latency.encode(), "records": sink.count}))
        try:
            conn.recv()   # linger until the harness lets go (EOF)
        except EOFError:
            pass
    except EOFError:
        pass   # the harness closed the pipe before the go: nothing to do
    except BaseException as exc:
        halt.set()
        try:
            with lock:
                conn.send(("error", f"{exc.__class__.__name__}: {exc}"[:500]))
        except (OSError, ValueError):
            pass
        if not isinstance(exc, SystemExit):
            raise SystemExit(1) from exc
        raise
    finally:
        halt.set()
        if sink is not None:
            sink.close()
        conn.close()
