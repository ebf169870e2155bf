"""Nothing a run started survives it: not after a normal run, not after Ctrl-C (SIGINT).

Every process the CLI starts inherits a tag in its environment; /proc tells which are still alive.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from polling import wait_for

pytestmark = pytest.mark.integration


def tagged(tag: str) -> list[int]:
    """PIDs of live (non-zombie) processes whose environment carries the tag."""
    needle = f"CHAOSCAFE_TEST_TAG={tag}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def run_cli(args: list[str], tmp_path: Path, tag: str) -> subprocess.Popen[str]:
    env = dict(os.environ, CHAOSCAFE_TEST_TAG=tag, CHAOSCAFE_HOME=str(tmp_path / "home"))
    return subprocess.Popen([sys.executable, "-m", "harness", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def wait_gone(tag: str, timeout: float = 20) -> list[int]:
    return wait_for(lambda: tagged(tag), lambda pids: not pids, timeout_s=timeout, interval_s=0.2)


def test_a_finished_demo_leaves_no_process(tmp_path: Path) -> None:
    tag = uuid.uuid4().hex
    proc = run_cli(["demo", "--orders", "10", "--run-dir", str(tmp_path / "runs")], tmp_path, tag)
    try:
        out, _ = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
    assert proc.returncode == 0, out
    assert "every order served exactly once" in out
    assert wait_gone(tag) == []


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_ctrl_c_on_a_running_shop_leaves_no_process(kind: str, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex
    proc = run_cli(["shop", "up", kind, "--run-dir", str(tmp_path / "runs")], tmp_path, tag)
    try:
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "Ctrl-C stops" in line or not line:
                break
        assert any("shop up" in text for text in lines), "".join(lines)
        started = tagged(tag)
        # sync: cli, toxiproxy, barista, cashier; async adds orders, waiter, epmd, the broker's processes
        assert len(started) >= (4 if kind == "sync" else 8), started
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=90)
        assert wait_gone(tag) == [], f"left behind: {tagged(tag)}"
    finally:
        if proc.poll() is None:  # a failed assertion above must not leave the shop running
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()


TINY = """
title = "tiny"
claim = "a short constant load is accepted and served"
time_scale = "1:1"
[run]
duration_s = 2
drain_s = 8
[load]
shape = "constant"
rate = 10
[shop]
brew = { distribution = "fixed", mean_ms = 10 }
"""


@pytest.mark.parametrize("jobs", [1, 2])
def test_ctrl_c_during_an_experiment_flushes_the_history_and_stops_everything(jobs: int, tmp_path: Path) -> None:
    """... and writes the report of the shop run that had finished before it; also with the shop
    runs in worker processes (--jobs 2: tiny and steady-state run at once, tiny ends first)."""
    tag = uuid.uuid4().hex
    out = tmp_path / "reports"
    (tmp_path / "tiny.toml").write_text(TINY)
    proc = run_cli(["run", str(tmp_path / "tiny.toml"), "steady-state", "--system", "async", "--out", str(out),
                    "--quiet", "--jobs", str(jobs), "--junit", str(tmp_path / "junit.xml")], tmp_path, tag)

    def sending(histories: list[Path]) -> bool:   # tiny done and 20 orders of steady-state sent (or the run is over)
        if proc.poll() is not None:
            return True
        if not list(out.glob("runs/*/tiny/async/results.json")):
            return False
        # the generator writes its records to its shard files; they join the history at the end
        return bool(histories) and sum(path.read_text().count('"type":"invoke"')
                                       for path in histories[0].parent.glob("generator-*.jsonl")) >= 20

    try:
        histories = wait_for(lambda: list(out.glob("runs/*/steady-state/async/history.jsonl")), sending,
                             timeout_s=120, interval_s=0.5)
        assert histories, "the run never started sending"
        assert tagged(tag)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
        assert proc.returncode == 130
        last = histories[0].read_text().splitlines()[-1]
        assert '"type":"end"' in last and '"complete":false' in last
        assert wait_gone(tag) == [], f"left behind: {tagged(tag)}"
        (run_dir,) = (out / "runs").iterdir()
        assert (out / run_dir.name / "tiny.html").is_file(), proc.stdout.read() if proc.stdout else ""
        assert "This set was interrupted" in (out / run_dir.name / "index.html").read_text()
        assert not (run_dir / "steady-state" / "async" / "results.json").exists()   # not finished: not reported
        junit = (tmp_path / "junit.xml").read_text()
        assert "after 1 finished shop run(s)" in junit and 'classname="tiny"' in junit, junit
    finally:
        if proc.poll() is None:
            proc.kill()


def spawned_workers(pid: int) -> list[int]:
    """The harness's multiprocessing workers (spawn_main in their command line), by PID."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return found


def test_a_worker_that_dies_gives_its_run_an_error_and_the_set_goes_on(tmp_path: Path) -> None:
    """--jobs 2: one worker killed (SIGKILL) mid-run; its run is recorded as an error naming the
    exit code, the other run finishes, the exit code is 1, and nothing is left running."""
    tag = uuid.uuid4().hex
    out = tmp_path / "reports"
    proc = run_cli(["run", "steady-state", "duplicate-delivery", "--system", "sync", "--profile", "fast",
                    "--jobs", "2", "--out", str(out), "--quiet"], tmp_path, tag)
    try:
        histories = wait_for(lambda: list(out.glob("runs/*/*/sync/generator-*.jsonl")),
                             lambda found: len(found) >= 2 or proc.poll() is not None, timeout_s=120, interval_s=0.2)
        workers = spawned_workers(proc.pid)
        assert len(histories) >= 2 and len(workers) == 2, (histories, workers)
        os.kill(workers[0], signal.SIGKILL)
        proc.wait(timeout=120)
        assert proc.returncode == 1, proc.stdout.read() if proc.stdout else ""
        (run_dir,) = (out / "runs").iterdir()
        rows = json.loads((run_dir / "summary.json").read_text())
        assert sorted(r["status"] for r in rows) == ["error", "pass"], rows
        (dead,) = [r for r in rows if r["status"] == "error"]
        assert "ended with exit code -9" in dead["error"]
        assert wait_gone(tag) == [], f"left behind: {tagged(tag)}"
    finally:
        if proc.poll() is None:
            proc.kill()


SPLIT = """
title = "split"
claim = "a cluster whose network splits is healed, even when the run is interrupted"
time_scale = "1:1"
[run]
duration_s = 60
drain_s = 10
[load]
shape = "constant"
rate = 5
[shop]
brew = { distribution = "fixed", mean_ms = 10 }
[broker]
nodes = 3
net_ticktime_s = 5
[[faults]]
name = "cut"
kind = "broker-partition"
target = "broker"
start_s = 2
duration_s = 50
params = { mode = "isolate-follower" }
"""


@pytest.mark.slow
def test_ctrl_c_during_a_partition_leaves_no_iptables_rule_and_no_broker_node(tmp_path: Path) -> None:
    """Issue 17: a run interrupted while its iptables rules split the cluster removes every rule it
    added (they carry the cluster's tag) and stops every node, its epmd and everything else."""
    from harness.infra import netfilter

    if netfilter.available() is not None:
        pytest.skip(f"needs iptables: {netfilter.available()}")
    tag = uuid.uuid4().hex
    out = tmp_path / "reports"
    (tmp_path / "split.toml").write_text(SPLIT)
    proc = run_cli(["run", str(tmp_path / "split.toml"), "--system", "async", "--out", str(out), "--quiet"],
                   tmp_path, tag)

    def cluster_tag() -> str | None:   # chaoscafe-<token>, from a member's log file name cafe-<token>-n1@...
        logs = list(out.glob("runs/*/split/async/infra/cluster/node1/log/cafe-*-n1@*.log"))
        return f"chaoscafe-{logs[0].name.split('-')[1]}" if logs else None

    try:
        rules_tag = wait_for(cluster_tag, lambda t: t is not None or proc.poll() is not None,
                             timeout_s=120, interval_s=0.5)
        assert rules_tag, "the cluster never started"
        cut = wait_for(lambda: netfilter.Netfilter(rules_tag).rules(), lambda r: bool(r) or proc.poll() is not None,
                       timeout_s=120, interval_s=0.5)
        assert cut, "the partition never began"
        interrupted = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=120)
        assert proc.returncode == 130
        # the cluster is removed next, so its heal is not waited for (it took 35 s before; ~1 s now)
        assert time.monotonic() - interrupted < 20
        assert netfilter.Netfilter(rules_tag).rules() == []
        assert wait_gone(tag) == [], f"left behind: {tagged(tag)}"
        (history,) = out.glob("runs/*/split/async/history.jsonl")
        ends = [json.loads(line) for line in history.read_text().splitlines() if '"phase":"end"' in line]
        assert [(e["name"], e.get("abandoned")) for e in ends] == [("cut", True)]
    finally:
        if proc.poll() is None:
            proc.kill()
        if 'rules_tag' in locals() and rules_tag:
            netfilter.Netfilter(rules_tag).heal()   # never leave a rule, even when the test fails
