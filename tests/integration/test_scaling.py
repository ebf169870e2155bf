"""Scaling the barista pool of a live shop: replicas appear and disappear as processes, as consumers
on the queue (async) and in the cashier's barista set (sync), each new one behind its own proxy;
orders keep being served across the changes."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from cafe.brewing import BrewTime
from harness.infra.stack import Infrastructure
from harness.load.batch import run_batch, wait_until
from harness.shops import SHOPS, ShopSettings
from harness.shops.base import http_json

pytestmark = pytest.mark.integration

SETTINGS = ShopSettings(baristas=1, brewers=1, brew=BrewTime("fixed", mean_ms=30), capacity=16, prefetch=1)


def running_pids(shop, service: str) -> list[int]:
    return [r.pid for r in shop.supervisor.replicas(service) if r.state == "running" and r.pid is not None]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_scale_up_and_down_on_a_live_shop(kind: str, request: pytest.FixtureRequest) -> None:
    infra: Infrastructure = request.getfixturevalue("infra" if kind == "async" else "proxy_only_infra")
    with SHOPS[kind](infra, SETTINGS) as shop:
        assert shop.scale("barista", 3) == 1
        pids = running_pids(shop, "barista")
        assert len(pids) == 3 and all(alive(p) for p in pids)
        # each new replica has its own proxy on the baristas' edge, so network faults reach it
        assert len(shop.proxies_for("barista-link", replica=3)) == 1
        if kind == "sync":
            members = http_json(shop.url("cashier-1") + "/baristas")["baristas"]
            assert [m["name"] for m in members] == ["barista-1", "barista-2", "barista-3"]
        else:
            assert wait_until(lambda: shop.backlog()["consumers"] == 3, timeout_s=20)
        result = run_batch(shop, 60, concurrency=12, drain_s=60)
        assert result.statuses == {shop.accepted_status: 60}
        assert {b["barista"] for b in shop.brewed()} == {"barista-1", "barista-2", "barista-3"}

        assert shop.scale("barista", 1) == 3
        assert running_pids(shop, "barista") == pids[:1]
        assert not any(alive(p) for p in pids[1:])
        if kind == "sync":
            members = http_json(shop.url("cashier-1") + "/baristas")["baristas"]
            assert [m["name"] for m in members] == ["barista-1"]
        else:
            assert wait_until(lambda: shop.backlog()["consumers"] == 1, timeout_s=20)
        before = len(shop.brewed())
        result = run_batch(shop, 20, seed=2, concurrency=8, drain_s=60)
        assert result.statuses == {shop.accepted_status: 20}
        assert {b["barista"] for b in shop.brewed()[before:]} == {"barista-1"}
        assert shop.backlog()["baristas"] == 1


SCHEDULED = """
title = "scheduled scaling"
claim = "the pool follows the schedule"
time_scale = "1:1"
[run]
duration_s = 6
drain_s = 10
seed = 2
[load]
shape = "constant"
process = "uniform"
rate = 10
[shop]
baristas = 1
capacity = 4
brew = { distribution = "fixed", mean_ms = 50 }
[[scale]]
start_s = 1.5
replicas = 3
[[scale]]
start_s = 4
replicas = 1
[profiles.full]
time_factor = 1
"""


def test_scheduled_scale_changes_run_and_are_recorded(tmp_path: Path) -> None:
    from harness.experiment import load_experiment
    from harness.experiment.run import run_one
    from harness.history import load

    path = tmp_path / "scheduled.toml"
    path.write_text(SCHEDULED)
    results = run_one("scheduled", load_experiment(path), "sync", profile="full", seed=None,
                      out_dir=tmp_path / "out", run_id="test")
    assert results["complete"] and results["passed"], results["checks"]
    scaling = results["scaling"]
    assert [(e["from"], e["to"], e["trigger"], e["reason"]) for e in scaling["events"]] == [
        (1, 3, "schedule", "scheduled"), (3, 1, "schedule", "scheduled")]
    assert [s["replicas"] for s in scaling["series"]] == [1, 3, 1]
    # each change is recorded when the new pool is in place: not before its scheduled time
    assert 1.5 <= scaling["series"][1]["t"] <= scaling["series"][2]["t"] and scaling["series"][2]["t"] >= 4
    assert {"barista-2", "barista-3"} <= set(scaling["per_replica"])     # the newcomers brewed
    assert results["orders"]["lost"] == 0 and results["orders"]["served"] == results["orders"]["attempted"]
    history = load(tmp_path / "out" / "history.jsonl")
    assert [r["count"] for r in history if r["type"] == "replicas"] == [1]
