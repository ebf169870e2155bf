"""The harness end to end: experiments through the CLI on both shops, and the open-loop proof."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.history import load

pytestmark = pytest.mark.integration

RESULT_KEYS = {"experiment", "system", "seed", "profile", "config", "faults", "orders", "latency_ms", "throughput",
               "availability", "generator", "checks", "provenance", "complete", "passed", "schedule"}


def chaoscafe(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


def results_of(out: Path, experiment: str, system: str) -> dict:
    (run_dir,) = (out / "runs").iterdir()
    return json.loads((run_dir / experiment / system / "results.json").read_text())


def test_steady_state_and_morning_rush_smoke_on_both_shops(tmp_path: Path) -> None:
    out = tmp_path / "reports"
    proc = chaoscafe("run", "steady-state", "morning-rush", "--profile", "smoke", "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    by = {(e, s): results_of(out, e, s) for e in ("steady-state", "morning-rush") for s in ("sync", "async")}
    for (experiment, system), r in by.items():
        assert RESULT_KEYS <= set(r), (experiment, system)
        assert r["complete"] and r["passed"], (experiment, system, r["checks"])
        assert r["profile"] == "smoke" and r["provenance"]["rabbitmq" if system == "async" else "toxiproxy"]
        history = load(out / "runs" / r["run_id"] / experiment / system / "history.jsonl")
        invokes = sum(1 for rec in history if rec["type"] == "invoke")
        assert invokes == r["schedule"]["arrivals"] == r["orders"]["attempted"]
    for experiment in ("steady-state", "morning-rush"):
        sync, async_ = by[(experiment, "sync")], by[(experiment, "async")]
        # fairness: same arrivals, same seed, same shop configuration
        assert sync["schedule"]["digest"] == async_["schedule"]["digest"]
        assert sync["seed"] == async_["seed"]
        assert sync["config"]["shop"]["settings"] == async_["config"]["shop"]["settings"]
    steady = by[("steady-state", "sync")]["orders"], by[("steady-state", "async")]["orders"]
    for orders in steady:
        assert orders["accepted"] == orders["attempted"] == orders["served"] == orders["brewed"]
        assert orders["lost"] == orders["duplicated"] == orders["unexpected"] == 0
    rush_sync, rush_async = by[("morning-rush", "sync")], by[("morning-rush", "async")]
    assert rush_async["orders"]["accepted"] == rush_async["orders"]["attempted"]
    assert rush_async["orders"]["lost"] == 0 and rush_async["orders"]["served"] == rush_async["orders"]["accepted"]
    assert rush_sync["orders"]["unknown"] > 0          # customers timed out during the rush
    assert rush_sync["availability"]["overall"] < rush_async["availability"]["overall"]
    assert rush_async["backlog"]["max"] > 0


PAUSE_EXPERIMENT = """
title = "barista frozen"
claim = "the generator keeps sending while the shop stalls"
time_scale = "1:1"
[run]
duration_s = 8
drain_s = 10
seed = 3
[load]
shape = "constant"
process = "uniform"
rate = 20
client_timeout_s = 15
[shop]
brewers = 2
brew = { distribution = "fixed", mean_ms = 20 }
[[faults]]
kind = "pause"
target = "barista"
start_s = 2
duration_s = 3
[profiles.full]
time_factor = 1
"""


def test_the_generator_is_open_loop_while_the_barista_is_paused(tmp_path: Path) -> None:
    path = tmp_path / "pause.toml"
    path.write_text(PAUSE_EXPERIMENT)
    out = tmp_path / "reports"
    proc = chaoscafe("run", str(path), "--system", "sync", "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    r = results_of(out, "pause", "sync")
    (fault,) = r["faults"]
    assert fault["kind"] == "pause" and 1.5 <= fault["start_s"] <= 3.0 and fault["end_s"] - fault["start_s"] >= 2.5
    history = load(out / "runs" / r["run_id"] / "pause" / "sync" / "history.jsonl")
    t0 = history[0]["t0"]
    invokes = [rec for rec in history if rec["type"] == "invoke"]
    # every scheduled order was sent, on time, also while the barista was frozen
    assert len(invokes) == r["schedule"]["arrivals"] == 160
    in_pause = [i for i in invokes if fault["start_s"] + 0.2 <= i["intended"] - t0 <= fault["end_s"] - 0.5]
    assert len(in_pause) >= 40
    assert max(i["sent"] - i["intended"] for i in in_pause) < 0.5
    assert r["generator"]["dropped"] == 0
    # latency is measured from the intended time, so it covers the pause
    assert r["latency_ms"]["acceptance"]["max"] >= 2000
    assert r["orders"]["accepted"] == 160 and r["orders"]["lost"] == 0
