"""Shop runs of a set in N worker processes at once (`chaoscafe run --jobs N`).

    results = run_in_pool(runs, jobs=2, run_dir=..., run_id=..., profile="fast",
                          progress=..., on_start=..., on_done=...)

Each worker is a `spawn`ed process in a session of its own (a terminal Ctrl-C reaches only the
harness, which then stops the workers: SIGTERM, which a worker turns into SystemExit so that
`run_one` stops everything it started before it exits), with PR_SET_PDEATHSIG=SIGKILL as the
safety net if the harness itself is killed. A worker keeps its own shared RabbitMQ node for the
async runs it takes (RUN_DIR/shared-broker-K, a vhost per run, as in the serial set), stopped when
the worker ends.

Which run goes where: a run is *exclusive* when its experiment boots its own broker or cluster for
a shop that needs one (`Experiment.needs_private_broker`: broker faults, clusters, partitions; the
iptables rules of a partition carry the set's run id, and several RabbitMQ nodes booting at once
would crowd two cores): it starts only when no other run is going and nothing starts beside it,
not even a sync shop's run (tried: one that ran beside a cluster's boot saw its acceptance p50 go
from 62 to 550 ms). The exclusive runs go first, then the others in the order given, at most N
at a time, and at most one *heavy* run per core (`HEAVY_RATE`: 50 arrivals or more in the
schedule's busiest second): with `--jobs 3` on two cores a third run starts only if it is light
and two heavy runs are not already going. Three late-comer histories of 200 orders/s at once
saturated the machine (busy 0.96) and one shop's acceptance p50 went from 11 to 1,293 ms; the
light runs (fault experiments at 10-40 orders/s) leave half of it idle at two at a time.

Concurrent runs share the machine, so their latencies are those of a busier machine: every
results.json records the `jobs` it ran under (config.jobs), and `--jobs 1` (the default) is the
measurement run. The verdicts' margins hold at 2, which CI uses (.ci/run); at 3 a verdict failed
now and then on the crowded machine (docs/performance.md).
"""
from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from harness.experiment.model import Experiment

JOBS_ENV = "CHAOSCAFE_JOBS"
STOP_GRACE_S = 120.0    # how long a stopped worker may take to stop its shop (a cluster's nodes, ...)
# a run is *heavy* when its schedule's busiest second holds this many arrivals or more: at 50
# orders/s a shop and the generator keep about half a core busy (3-11 ms of CPU per order, the
# async shop the dearest; docs/performance.md), so heavy runs go at most one per core
HEAVY_RATE = 50


@dataclass(frozen=True)
class ShopRun:
    """One shop run of a set: experiment `name` (as declared) on `system`, repetition k with `seed`."""

    index: int
    name: str
    experiment: Experiment
    system: str
    repetition: int
    seed: int | None
    out_dir: Path
    exclusive: bool
    heavy: bool = False


def configured_jobs(value: int | None = None) -> int:
    """`value`, else $CHAOSCAFE_JOBS, else 1. ValueError (naming the variable and the value) for
    anything but an integer >= 1."""
    if value is None:
        text = os.environ.get(JOBS_ENV, "").strip()
        if not text:
            return 1
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"{JOBS_ENV}={text!r}: expected a whole number >= 1") from None
        if value < 1:
            raise ValueError(f"{JOBS_ENV}={text!r}: expected a whole number >= 1")
    if value < 1:
        raise ValueError(f"--jobs {value}: expected a whole number >= 1")
    return value


def order(runs: Sequence[ShopRun]) -> list[ShopRun]:
    """The order runs are started in: exclusive ones first, each group in the order given."""
    return [r for r in runs if r.exclusive] + [r for r in runs if not r.exclusive]


def heavy_jobs(jobs: int, cores: int | None = None) -> int:
    """How many heavy runs may go at once: one per core (os.cpu_count()), at most `jobs`."""
    return max(1, min(jobs, cores if cores is not None else (os.cpu_count() or 1)))


def may_start(run: ShopRun, running: Collection[ShopRun], jobs: int, cores: int | None = None) -> bool:
    """Whether `run` may start beside `running`: a free slot, no exclusive run going, an
    exclusive run only on an idle machine, and a heavy run only while fewer than `heavy_jobs`
    heavy runs go (so `--jobs 3` on two cores adds a third run only where it is light)."""
    if len(running) >= jobs or any(r.exclusive for r in running):
        return False
    if run.heavy and sum(r.heavy for r in running) >= heavy_jobs(jobs, cores):
        return False
    return not (run.exclusive and running)


def next_startable(pending: Sequence[ShopRun], running: Collection[ShopRun], jobs: int,
                   cores: int | None = None) -> int | None:
    """The position in `pending` of the first run that may start now, or None."""
    return next((i for i, run in enumerate(pending) if may_start(run, running, jobs, cores)), None)


def _work(k: int, tasks: Any, events: Any, broker_dir: Path, run_id: str, profile: str, jobs: int,
          live: bool) -> None:
    """Worker k: take ShopRuns from `tasks` until None, put ("progress", i, Progress) (when
    `live`), ("done", i, results) or ("stopped", i, reason) on `events`."""
    from harness.load.workers import detach_worker

    detach_worker()
    from harness.experiment.run import run_one
    from harness.infra.stack import SharedBroker

    current: int | None = None
    try:
        with SharedBroker(broker_dir) as broker:
            while True:
                task: ShopRun | None = tasks.get()
                if task is None:
                    return
                current = task.index

                def progress(p: Any, i: int = task.index) -> None:
                    events.put(("progress", i, p))

                results = run_one(task.name, task.experiment, task.system, profile=profile, seed=task.seed,
                                  out_dir=task.out_dir, run_id=run_id, progress=progress if live else None,
                                  broker=broker, jobs=jobs)
                events.put(("done", task.index, results))
                current = None
    except BaseException as exc:   # SystemExit from SIGTERM: what was started is stopped by now
        events.put(("stopped", current, f"{exc.__class__.__name__}: {exc}"))
        raise


Started = Callable[[ShopRun], None]
Done = Callable[[ShopRun, dict[str, Any]], None]


def run_in_pool(runs: Sequence[ShopRun], *, jobs: int, run_dir: Path, run_id: str, profile: str,
                progress: Callable[[Any], None] | None, on_start: Started, on_done: Done) -> None:
    """Run every ShopRun in `jobs` worker processes (see the module docstring); `on_start` and
    `on_done(run, results)` are called in this process as runs start and end, `progress` with
    every worker's live snapshots. A worker that dies without a result gives its run an error
    result (RuntimeError naming the exit code) written like any errored run, and is replaced.
    KeyboardInterrupt or SystemExit here stops every worker (SIGTERM, each stops its shop) and
    waits up to STOP_GRACE_S for them before it propagates."""
    from harness.experiment.run import errored

    ctx = multiprocessing.get_context("spawn")
    events: Any = ctx.Queue()
    pending = order(runs)
    slots: dict[int, tuple[BaseProcess, Any]] = {}
    running: dict[int, ShopRun] = {}     # worker k -> its run
    started_at: dict[int, float] = {}
    next_worker = 0

    def spawn() -> int:
        nonlocal next_worker
        k, next_worker = next_worker, next_worker + 1
        tasks: Any = ctx.Queue()
        proc = ctx.Process(target=_work, name=f"chaoscafe-run-{k}",
                           args=(k, tasks, events, run_dir / f"shared-broker-{k}", run_id, profile, jobs,
                                 progress is not None))
        proc.start()
        slots[k] = (proc, tasks)
        return k

    def dispatch() -> None:
        while (at := next_startable(pending, running.values(), jobs)) is not None:
            idle = [k for k in slots if k not in running]
            k = idle[0] if idle else spawn()
            run = pending.pop(at)
            running[k] = run
            started_at[k] = time.time()
            on_start(run)
            slots[k][1].put(run)

    def worker_of(index: int) -> int | None:
        return next((k for k, r in running.items() if r.index == index), None)

    def finish(k: int, results: dict[str, Any]) -> None:
        run = running.pop(k)
        on_done(run, results)

    def handle(kind: str, index: int | None, payload: Any) -> None:
        worker = worker_of(index) if index is not None else None
        if kind == "progress" and progress is not None:
            progress(payload)
        elif kind == "done" and worker is not None:
            finish(worker, payload)

    def bury_dead() -> None:
        """A worker that exited while running a run: everything it put is in the pipe by now
        (a queue is flushed when its process exits), so read that first; a run still without a
        result gets an error result."""
        dead = [k for k in slots if not slots[k][0].is_alive()]
        if not dead:
            return
        while True:
            try:
                handle(*events.get_nowait())
            except queue.Empty:
                break
        for k in dead:   # never handed another run: dispatch spawns a new worker instead
            proc = slots.pop(k)[0]
            if k not in running:
                continue
            run = running[k]
            error = RuntimeError(f"the worker process running this shop run ended with exit code "
                                 f"{proc.exitcode} before it reported")
            finish(k, errored(run.name, run.experiment, run.system, profile=profile, seed=run.seed,
                              out_dir=run.out_dir, run_id=run_id, started=started_at[k], error=error))

    try:
        dispatch()
        checked = time.monotonic()
        while running:
            try:
                handle(*events.get(timeout=0.5))
            except queue.Empty:
                pass
            if time.monotonic() - checked >= 1.0:   # not only when the queue is quiet: another worker may stream progress
                bury_dead()
                checked = time.monotonic()
            dispatch()
    except BaseException:
        _stop(slots)
        raise
    for _, tasks in slots.values():
        tasks.put(None)
    for proc, _ in slots.values():
        proc.join(STOP_GRACE_S)
    _stop(slots)


def _stop(slots: dict[int, tuple[BaseProcess, Any]]) -> None:
    """SIGTERM every live worker (each stops its shop and exits), wait, then SIGKILL the rest."""
    for proc, _ in slots.values():
        if proc.is_alive() and proc.pid is not None:
            os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for proc, _ in slots.values():
        proc.join(max(0.0, deadline - time.monotonic()))
        if proc.is_alive():
            proc.kill()
            proc.join(5)
