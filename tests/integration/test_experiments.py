"""The harness end to end: a user's experiment through the CLI on both shops from another directory,
the shipped steady state and morning rush judged over the main run (tests/integration/mainrun.py),
and the open-loop proof."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from junitparser import JUnitXml
from mainrun import MainRun

from harness.experiment.runs import select
from harness.history import load
from harness.shops import SHOP_NAMES

pytestmark = pytest.mark.integration

RESULT_KEYS = {"experiment", "system", "seed", "profile", "config", "faults", "orders", "latency_ms", "throughput",
               "availability", "generator", "checks", "provenance", "complete", "passed", "schedule"}


def chaoscafe(*args: str, timeout: float = 600, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness", *args], capture_output=True, text=True,
                          timeout=timeout, check=False, cwd=cwd)


def results_of(out: Path, experiment: str, system: str) -> dict:
    (run_dir,) = (out / "runs").iterdir()
    return json.loads((run_dir / experiment / system / "results.json").read_text())


MINE = """
title = "my own"
claim = "a short constant load is accepted and served, once"
time_scale = "1:1"
[run]
duration_s = 3
drain_s = 8
seed = 11
[load]
shape = "constant"
process = "uniform"
rate = 10
[shop]
brew = { distribution = "fixed", mean_ms = 10 }
[profiles.smoke]
time_factor = 1
[expect.both]
"orders.lost" = { max = 0 }
"orders.duplicated" = { max = 0 }
"""


def test_a_users_experiment_from_another_directory_with_relative_paths(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The fresh-clone case: run from another directory with a relative --out and a relative
    experiment file of the user's own (service processes run elsewhere), the plain lines a CI log
    shows, the JUnit and Markdown outputs, and report/baseline/compare with relative paths."""
    out = tmp_path / "reports"
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "tiny.toml").write_text(MINE)
    proc = chaoscafe("run", "mine/tiny.toml", "--profile", "smoke", "--out", "reports",
                     "--junit", "out/junit.xml", "--summary-md", "out/summary.md", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("[")]
    n = len(SHOP_NAMES)   # every registered shop, sync first
    assert len(lines) == 2 * n, proc.stdout   # stdout is a pipe: a start and an end line per shop run
    assert lines[0].startswith(f"[1/{n}] tiny / sync: started")
    assert lines[1].startswith(f"[1/{n}] tiny / sync: pass  attempted ") and " left" in lines[1]
    assert lines[-1].startswith(f"[{n}/{n}] tiny / {SHOP_NAMES[-1]}: pass") and "accept p99 " in lines[-1]
    suite = next(iter(JUnitXml.fromfile(str(tmp_path / "out" / "junit.xml"))))
    assert (suite.tests, suite.failures, suite.errors) == (n, 0, 0)
    assert {(c.classname, c.name) for c in suite} == {("tiny", s) for s in SHOP_NAMES}
    assert "| tiny |" in (tmp_path / "out" / "summary.md").read_text()
    # the other commands with relative paths, from the same directory
    (run_dir,) = (out / "runs").iterdir()
    assert chaoscafe("report", f"reports/runs/{run_dir.name}", "--out", "rel-report", cwd=tmp_path).returncode == 0
    assert (tmp_path / "rel-report" / run_dir.name / "tiny.html").is_file()
    saved = chaoscafe("baseline", f"reports/runs/{run_dir.name}", "--out", "rel-baseline", cwd=tmp_path)
    assert saved.returncode == 0, saved.stdout + saved.stderr
    compared = chaoscafe("compare", "rel-baseline", "reports", "--format", "json", cwd=tmp_path)
    assert compared.returncode == 0, compared.stdout + compared.stderr
    assert json.loads(compared.stdout)["regressions"] == 0
    for system in ("sync", "async"):
        r = results_of(out, "tiny", system)
        assert RESULT_KEYS <= set(r), system
        assert r["complete"] and r["passed"], (system, r["checks"])
        assert r["profile"] == "smoke" and r["provenance"]["rabbitmq" if system == "async" else "toxiproxy"]
        history = load(out / "runs" / r["run_id"] / "tiny" / system / "history.jsonl")
        invokes = sum(1 for rec in history if rec["type"] == "invoke")
        assert invokes == r["schedule"]["arrivals"] == r["orders"]["attempted"] == 30
    # a shipped experiment by name from there too (the main run names them from the clone's root)
    monkeypatch.chdir(tmp_path)
    assert [item.name for item in select(["morning-rush", "mine/tiny.toml"])] == ["morning-rush", "tiny"]


@pytest.mark.main_run("steady-state", "morning-rush")
@pytest.mark.timeout(600)
def test_steady_state_and_morning_rush_smoke_on_both_shops(main_run: MainRun) -> None:
    """Over the main run (CHAOSCAFE_MAIN_RUN, or the session's own fast run of these two)."""
    by = {(e, s): main_run.results(e, s) for e in ("steady-state", "morning-rush") for s in ("sync", "async")}
    for (experiment, system), r in by.items():
        assert RESULT_KEYS <= set(r), (experiment, system)
        assert r["complete"] and r["passed"], (experiment, system, r["checks"])
        assert r["profile"] in ("fast", "smoke") and r["provenance"]["rabbitmq" if system == "async" else "toxiproxy"]
        history = load(main_run.shop_dir(experiment, system) / "history.jsonl")
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


@pytest.mark.main_run("morning-rush")
def test_the_resilient_shop_records_its_policies_from_the_shared_settings(main_run: MainRun) -> None:
    """Fairness: the resilient cashier's effective policies are in results.json (config.shop.policies),
    derived from the settings every shop shares, scaled by the profile like them."""
    r = main_run.results("morning-rush", "sync-resilient")
    settings, policies = r["config"]["shop"]["settings"], r["config"]["shop"]["policies"]
    assert settings == main_run.results("morning-rush", "async")["config"]["shop"]["settings"]
    assert policies["deadline_s"] == pytest.approx(0.9 * settings["patience_s"])
    assert policies["attempt_timeout_s"] == pytest.approx(min(settings["barista_timeout_s"], policies["deadline_s"]))
    assert policies["bulkhead"] == 2 * settings["brewers"]
    assert policies["backoff_s"] == pytest.approx(settings["barista_timeout_s"] / 20)
    assert policies["shed"] is True and policies["breaker_threshold"] >= 1
    assert r["config"]["jobs"] >= 1


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
