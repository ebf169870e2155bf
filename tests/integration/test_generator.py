"""The load generator with worker processes against the trivial server (benchmarks/trivial_server.py,
a separate process): nothing lost or duplicated in the merged history, and no worker left behind,
after a run, after a failure, and after a Ctrl-C of the program that started them."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from polling import wait_for

from harness.history import HistoryWriter, load
from harness.infra.ports import free_port
from harness.infra.processes import ServiceSpec, Supervisor
from harness.load.schedule import build_schedule
from harness.load.shapes import Constant
from harness.load.workers import ShardedDriver, WorkerError

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SERVER = REPO / "benchmarks" / "trivial_server.py"
MIX = {"Latte": 2.0, "Espresso": 1.0}
SIZES = {"Latte": ("small", "large"), "Espresso": ("small",)}


def gone(pid: int) -> bool:
    """No process `pid` (or only a zombie of it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


@pytest.fixture
def trivial(tmp_path: Path) -> Iterator[str]:
    with Supervisor(tmp_path / "server") as supervisor:
        port = free_port()
        supervisor.add(ServiceSpec("trivial-server",
                                   lambda i: [sys.executable, str(SERVER), "--port", str(port), "--lifetime-s", "120"],
                                   lambda i: f"http://127.0.0.1:{port}/health", ready_timeout=20.0))
        yield f"http://127.0.0.1:{port}"


def test_two_workers_lose_and_duplicate_nothing_and_leave_nothing(trivial: str, tmp_path: Path) -> None:
    schedule = build_schedule(Constant(400), 2.5, process="poisson", seed=11, menu_mix=MIX, sizes=SIZES)
    driver = ShardedDriver(trivial, schedule, workers=2, shard_dir=tmp_path, accepted_status=202,
                           client_timeout_s=5, max_in_flight=10_000)
    with HistoryWriter(tmp_path / "history.jsonl") as history:
        try:
            driver.start()
            pids = driver.pids()
            assert len(pids) == 2 and os.getpid() not in pids
            t0 = time.time() + 1.0
            history.write({"type": "run", "t0": t0})
            stats = driver.run(t0)
        finally:
            driver.close()
        assert history.absorb(driver.shard_files) == 2 * len(schedule)
    assert all(gone(pid) for pid in pids)
    assert not list(tmp_path.glob("generator-*.jsonl"))
    records = load(tmp_path / "history.jsonl")
    counts = Counter((r["type"], r["ref"]) for r in records if "ref" in r)
    refs = [str(a.index) for a in schedule]
    assert all(counts[("invoke", ref)] == 1 and counts[("ok", ref)] == 1 for ref in refs)   # none lost
    assert sum(counts.values()) == 2 * len(refs)                                          # none extra
    times = [r.get("time", r.get("sent")) for r in records[1:-1]]
    assert times == sorted(times)
    assert stats.sent == stats.outcomes["ok"] == len(schedule) and stats.lag.get_total_count() == len(schedule)


def test_a_worker_killed_mid_run_fails_it_and_the_rest_are_stopped(trivial: str, tmp_path: Path) -> None:
    schedule = build_schedule(Constant(100), 30, process="uniform", seed=2, menu_mix=MIX, sizes=SIZES)
    driver = ShardedDriver(trivial, schedule, workers=3, shard_dir=tmp_path, accepted_status=202,
                           client_timeout_s=5, max_in_flight=1000)
    try:
        driver.start()
        pids = driver.pids()
        t0 = time.time() + 0.5
        threading.Timer(1.5, os.kill, (pids[1], signal.SIGKILL)).start()
        started = time.monotonic()
        with pytest.raises(WorkerError, match=r"generator worker 1 exited with code -9"):
            driver.run(t0)
        assert time.monotonic() - started < 10
    finally:
        driver.close()
    assert all(gone(pid) for pid in pids)


PROGRAM = r'''
import sys, time
from pathlib import Path
from harness.load.schedule import build_schedule
from harness.load.shapes import Constant
from harness.load.workers import ShardedDriver

if __name__ == "__main__":
    url, out = sys.argv[1], Path(sys.argv[2])
    schedule = build_schedule(Constant(50), 60, process="uniform", seed=1, menu_mix={"Latte": 1.0},
                              sizes={"Latte": ("small",)})
    driver = ShardedDriver(url, schedule, workers=2, shard_dir=out, accepted_status=202, client_timeout_s=5,
                           max_in_flight=100)
    try:
        driver.start()
        print("workers", *driver.pids(), flush=True)
        driver.run(time.time() + 0.2)
    finally:
        driver.close()
'''


def test_ctrl_c_of_the_program_leaves_no_worker(trivial: str, tmp_path: Path) -> None:
    program = tmp_path / "program.py"
    program.write_text(PROGRAM)
    proc = subprocess.Popen([sys.executable, str(program), trivial, str(tmp_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO, start_new_session=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("workers "), proc.stderr.read() if proc.stderr else line
        pids = [int(p) for p in line.split()[1:]]
        time.sleep(1.5)   # sending by now
        assert all(not gone(pid) for pid in pids)
        os.killpg(proc.pid, signal.SIGINT)   # what a terminal's Ctrl-C sends to the foreground group
        assert proc.wait(timeout=20) != 0
        assert "KeyboardInterrupt" in (proc.stderr.read() if proc.stderr else "")
        assert wait_for(lambda: all(gone(pid) for pid in pids), timeout_s=5, interval_s=0.1)
        assert sum(1 for _ in tmp_path.glob("generator-*.jsonl")) == 2   # each flushed what it sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_trivial_server_answers_after_its_delay(tmp_path: Path) -> None:
    """`--delay-ms` (the reference benchmark's endpoint with a latency in it): every order is
    answered 202, none sooner than half the delay (it is drawn from [D/2, 3D/2)), on keep-alive
    connections, and the delays vary."""
    with Supervisor(tmp_path / "server") as supervisor:
        port = free_port()
        supervisor.add(ServiceSpec("trivial-server",
                                   lambda i: [sys.executable, str(SERVER), "--port", str(port), "--lifetime-s", "60",
                                              "--delay-ms", "40"],
                                   lambda i: f"http://127.0.0.1:{port}/health", ready_timeout=20.0))
        schedule = build_schedule(Constant(100), 1.0, process="uniform", seed=3, menu_mix=MIX, sizes=SIZES)
        driver = ShardedDriver(f"http://127.0.0.1:{port}", schedule, workers=1, shard_dir=tmp_path,
                               accepted_status=202, client_timeout_s=5, max_in_flight=1000)
        with HistoryWriter(tmp_path / "history.jsonl") as history:
            try:
                driver.start()
                t0 = time.time() + 0.3
                history.write({"type": "run", "t0": t0})
                driver.run(t0)
            finally:
                driver.close()
            history.absorb(driver.shard_files)
    records = load(tmp_path / "history.jsonl")
    sent = {r["ref"]: r["sent"] for r in records if r["type"] == "invoke"}
    oks = [r for r in records if r["type"] == "ok"]
    assert len(oks) == len(schedule) == len(sent)
    waits = [r["time"] - sent[r["ref"]] for r in oks]
    assert min(waits) >= 0.019 and max(waits) - min(waits) > 0.01
