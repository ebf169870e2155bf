"""Exploration's pure parts: every generated schedule is a valid experiment, fits the run, round-trips
through TOML, and uses only fault kinds and targets that exist."""
from __future__ import annotations

import tomllib

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.experiment.model import Experiment
from harness.experiment.results import failed_checks
from harness.explore.search import to_toml
from harness.explore.strategies import CONFIGS, MENUS, RUN_S, experiments
from harness.nemesis import FAULT_KINDS


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["sync", "async"]).flatmap(
    lambda system: st.tuples(st.just(system), experiments(system, "strong"))))
def test_generated_experiments_are_valid_and_round_trip(pair: tuple[str, Experiment]) -> None:
    system, exp = pair
    assert 1 <= len(exp.faults) <= 3
    assert all(0 <= f.start_s < RUN_S and 1 <= f.duration_s <= 3 for f in exp.faults)
    assert all((f.kind, f.target) in {(m.kind, m.target) for m in MENUS[system]} for f in exp.faults)
    assert Experiment.model_validate(tomllib.loads(to_toml(exp))) == exp
    assert exp.shop.idempotency and exp.load.idempotency_key
    assert exp.load.shape == "constant" or exp.load.steps == [(0.0, exp.load.rate), (RUN_S / 3, 2 * exp.load.rate),
                                                              (2 * RUN_S / 3, exp.load.rate)]
    assert "orders.lost" in exp.expectations(system) and "orders.duplicated" in exp.expectations(system)


def test_menus_name_registered_kinds_with_valid_targets_and_params() -> None:
    for menus in MENUS.values():
        for menu in menus:
            kind = FAULT_KINDS[menu.kind]
            assert menu.target in kind.targets
            for params in menu.params:
                kind.check_params(dict(params))
    assert set(CONFIGS) == {"strong", "weak"}


@settings(max_examples=20, deadline=None)
@given(experiments("async", "weak"))
def test_the_weak_shop_has_no_idempotency(exp: Experiment) -> None:
    assert not exp.shop.idempotency and not exp.load.idempotency_key


def test_failed_checks() -> None:
    assert failed_checks({"checks": [{"name": "a", "passed": True}, {"name": "b", "passed": False}]}) == ["b"]
    assert failed_checks({"checks": [], "complete": False}, incomplete=True) == ["incomplete"]
    assert failed_checks({"checks": [], "complete": False}) == []
    assert failed_checks({"checks": [{"name": "a", "passed": True}]}) == []
