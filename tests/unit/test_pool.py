"""The scheduling rules of shop runs in worker processes (harness.experiment.pool); the processes
themselves are exercised by the main run in CI (CHAOSCAFE_JOBS) and tests/integration/test_cleanup.py."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.experiment import load_experiment
from harness.experiment.pool import (
    JOBS_ENV,
    ShopRun,
    configured_jobs,
    heavy_jobs,
    may_start,
    next_startable,
    order,
)
from harness.experiment.runs import EXPERIMENTS_DIR, select, shop_runs


def run(index: int, exclusive: bool = False, heavy: bool = False) -> ShopRun:
    exp = load_experiment(EXPERIMENTS_DIR / "steady-state.toml")
    return ShopRun(index, f"e{index}", exp, "async", 1, 1, Path(f"/tmp/r{index}"), exclusive, heavy)


def test_jobs_default_to_one_and_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(JOBS_ENV, raising=False)
    assert configured_jobs() == 1
    assert configured_jobs(3) == 3
    monkeypatch.setenv(JOBS_ENV, "2")
    assert configured_jobs() == 2
    assert configured_jobs(1) == 1   # the flag wins


@pytest.mark.parametrize("text", ["0", "-1", "two", "1.5"])
def test_a_bad_jobs_value_names_the_variable_and_the_value(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(JOBS_ENV, text)
    with pytest.raises(ValueError, match=f"{JOBS_ENV}='{text}'"):
        configured_jobs()


def test_exclusive_runs_go_first_and_the_rest_keep_their_order() -> None:
    runs = [run(0), run(1, True), run(2), run(3, True), run(4)]
    assert [r.index for r in order(runs)] == [1, 3, 0, 2, 4]


def test_an_exclusive_run_starts_only_on_an_idle_machine_and_nothing_starts_beside_it() -> None:
    a, b, x, y = run(0), run(1), run(2, True), run(3, True)
    assert may_start(x, [], jobs=2)
    assert not may_start(x, [a], jobs=2)
    assert not may_start(a, [x], jobs=2)
    assert not may_start(y, [x], jobs=2)
    assert may_start(b, [a], jobs=2) and not may_start(b, [a], jobs=1)


def test_heavy_runs_go_at_most_one_per_core_and_a_light_run_takes_the_slot_left() -> None:
    h1, h2, h3, light = run(0, heavy=True), run(1, heavy=True), run(2, heavy=True), run(3)
    assert heavy_jobs(3, cores=2) == 2 and heavy_jobs(1, cores=2) == 1 and heavy_jobs(4, cores=0) == 1
    assert may_start(h2, [h1], jobs=3, cores=2)
    assert not may_start(h3, [h1, h2], jobs=3, cores=2)         # a third heavy run waits
    assert may_start(light, [h1, h2], jobs=3, cores=2)           # a light one takes the third slot
    assert not may_start(light, [h1, h2, run(4)], jobs=3, cores=2)
    assert next_startable([h3, light], [h1, h2], jobs=3, cores=2) == 1
    assert may_start(h2, [h1], jobs=2, cores=2)                 # --jobs 2 on two cores: as before
    assert not may_start(h2, [h1], jobs=2, cores=1)


def test_a_run_is_heavy_when_its_busiest_second_holds_fifty_arrivals() -> None:
    selected = select(["late-comer", "barista-outage", "scale-out"])
    runs = shop_runs(selected, ["sync"], profile="fast", seed=None, run_dir=Path("/tmp/set"))
    assert {r.name: r.heavy for r in runs} == {
        "late-comer@duration_s=20": False, "late-comer@duration_s=200": True, "late-comer@duration_s=1000": True,
        "barista-outage": False, "scale-out@baristas=1": False, "scale-out@baristas=2": False,
        "scale-out@baristas=4": False, "scale-out@baristas=8": True}


def test_the_first_run_that_may_start_is_taken() -> None:
    x, y, a = run(0, True), run(1, True), run(2)
    pending = order([a, y])
    assert [r.index for r in pending] == [1, 2]
    assert next_startable(pending, [x], jobs=2) is None       # nothing beside an exclusive run
    assert next_startable(pending, [], jobs=2) == 0
    assert next_startable([a], [run(3)], jobs=2) == 0
    assert next_startable([y, a], [run(3)], jobs=2) == 1      # y waits for an idle machine; a goes
    assert next_startable([], [], jobs=2) is None


def test_runs_that_boot_their_own_broker_are_exclusive_for_the_shops_that_need_one() -> None:
    selected = select(["broker-partition", "steady-state"])
    runs = shop_runs(selected, ["sync", "async"], profile="fast", seed=None, run_dir=Path("/tmp/set"))
    assert {(r.name, r.system): r.exclusive for r in runs} == {
        ("broker-partition", "sync"): False, ("broker-partition", "async"): True,
        ("steady-state", "sync"): False, ("steady-state", "async"): False}
    assert [r.index for r in runs] == list(range(4))
    assert runs[1].out_dir == Path("/tmp/set/broker-partition/async")


def test_a_repeated_experiment_is_folded_once_and_summarised_as_its_repeats(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from harness.experiment import runs as runs_mod

    results = _baseline_results("steady-state", "sync")
    runs = shop_runs(select(["steady-state"]), ["sync"], profile="fast", seed=None, run_dir=tmp_path, repeat=2)
    folds = []
    real_fold = runs_mod.repeats.fold
    monkeypatch.setattr(runs_mod.repeats, "fold", lambda first, reps: folds.append(1) or real_fold(first, reps))
    folded: dict = {}
    assert runs_mod._summary(runs, {0: results}, tmp_path, folded) == []   # one repeat still running
    for _ in range(3):   # every later finished run of the set rewrites the summary
        summary = runs_mod._summary(runs, {0: results, 1: results}, tmp_path, folded)
    assert len(folds) == 1 and [row["repeats"] for row in summary] == [2]
    assert json.loads((tmp_path / "steady-state" / "sync" / "results.json").read_text())["repeats"]["n"] == 2
    assert json.loads((tmp_path / "summary.json").read_text()) == summary


def test_an_interrupted_set_summarises_every_shop_run_that_finished(tmp_path: Path) -> None:
    """The summary (and so an interrupted set's JUnit and Markdown) holds a finished shop run even
    while its experiment's other shop still runs."""
    import json

    from harness.experiment import runs as runs_mod

    results = _baseline_results("steady-state", "sync")
    runs = shop_runs(select(["steady-state"]), ["sync", "async"], profile="fast", seed=None, run_dir=tmp_path)
    summary = runs_mod._summary(runs, {0: results}, tmp_path, {})
    assert [(row["experiment"], row["system"]) for row in summary] == [("steady-state", "sync")]
    assert json.loads((tmp_path / "summary.json").read_text()) == summary


def _baseline_results(experiment: str, system: str) -> dict:
    """A real results.json: the committed baseline's, for `experiment` on `system`."""
    import json

    path = Path(__file__).resolve().parents[2] / "reports" / "baseline" / "fast" / experiment / system / "results.json"
    return json.loads(path.read_text())
