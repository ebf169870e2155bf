"""Elasticity as data and as checkers: [[scale]], [autoscaler] and [matrix] in experiment files,
and the scaling and theory checkers on hand-built histories."""
from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from harness.checkers import CheckOptions, Queueing, Scaling
from harness.elasticity.theory import mmc
from harness.experiment import ExperimentError, expand, from_dict
from harness.history import Record

T0 = 1_700_000_000.0
BASE: dict[str, Any] = {
    "title": "t", "claim": "c", "time_scale": "1:1",
    "run": {"duration_s": 20, "drain_s": 10},
    "load": {"shape": "constant", "rate": 8},
    "shop": {"baristas": 1, "brew": {"distribution": "exponential", "mean_ms": 100}},
}


def exp(**sections: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    for key, value in sections.items():
        data[key] = value
    return data


# ---------------------------------------------------------------- the experiment file


def test_matrix_expands_into_named_zipped_variants() -> None:
    experiment = from_dict(exp(matrix={"shop.baristas": [1, 2, 4], "load.rate": [8, 16, 32]}))
    variants = expand("scale-out", experiment)
    assert [name for name, _ in variants] == ["scale-out@baristas=1", "scale-out@baristas=2", "scale-out@baristas=4"]
    assert [(v.shop.baristas, v.load.rate) for _, v in variants] == [(1, 8), (2, 16), (4, 32)]
    assert all(not v.matrix for _, v in variants)
    assert expand("plain", from_dict(exp())) == [("plain", from_dict(exp()))]


@pytest.mark.parametrize(("matrix", "words"), [
    ({"shop.baristas": [1, 2], "load.rate": [8]}, "same length"),
    ({"shop.wizards": [1]}, "unknown matrix key 'shop.wizards'"),
    ({"shop.baristas": []}, "no values"),
    ({"shop.baristas": [1, 99]}, "matrix['shop.baristas'] = 99: Input should be less than or equal to 16"),
])
def test_bad_matrices_give_one_line(matrix: dict[str, Any], words: str) -> None:
    with pytest.raises(ExperimentError) as info:
        from_dict(exp(matrix=matrix), "x.toml")
    assert words in str(info.value) and str(info.value).startswith("x.toml: matrix") and "\n" not in str(info.value)


def test_scale_and_autoscaler_are_validated_and_profiled() -> None:
    e = from_dict(exp(scale=[{"start_s": 8, "replicas": 3}], profiles={"smoke": {"time_factor": 0.5}}))
    assert e.for_profile("smoke").scale[0].start_s == 4
    a = from_dict(exp(autoscaler={"max_replicas": 4, "target_per_replica": 5, "cooldown_s": 2}))
    assert a.autoscaler is not None and a.autoscaler.policy_of().target_per_replica == 5
    assert a.for_profile("smoke").autoscaler.cooldown_s == 0.5  # type: ignore[union-attr]
    bad = [
        (exp(scale=[{"start_s": 40, "replicas": 2}]), "scale[0] at 40"),
        (exp(scale=[{"start_s": 1, "replicas": 0}]), "scale[0].replicas = 0"),
        (exp(autoscaler={"policy": "target"}), "autoscaler: policy 'target' needs target_per_replica"),
        (exp(autoscaler={"min_replicas": 2, "target_per_replica": 1}), "outside the autoscaler's [2, 8]"),
        (exp(autoscaler={"target_per_replica": 1}, scale=[{"start_s": 1, "replicas": 2}]), "not both"),
        (exp(shop={"baristas": 2, "slow_replica": 3}), "slow_replica = 3"),
    ]
    for data, words in bad:
        with pytest.raises(ExperimentError, match=None) as info:
            from_dict(data, "x.toml")
        assert words in str(info.value), str(info.value)


# ---------------------------------------------------------------- the scaling checker


def history_with_pool() -> list[Record]:
    h: list[Record] = [{"type": "run", "t0": T0, "system": "async", "queueing": {"slow_replica": 2, "slow_factor": 5}},
                       {"type": "replicas", "service": "barista", "count": 1, "time": T0}]
    for i in range(10):
        barista = "barista-2" if i % 5 == 0 else "barista-1"
        h.append({"type": "invoke", "ref": str(i), "intended": T0 + i, "sent": T0 + i})
        h.append({"type": "brewed", "ref": str(i), "order_id": f"o{i}", "barista": barista,
                  "started": T0 + i + 0.5, "time": T0 + i + 0.6})
    h.append({"type": "scale", "time": T0 + 4, "from": 1, "to": 3, "reason": "mean backlog 12", "trigger": "autoscaler",
              "took_s": 0.8})
    h.append({"type": "scale", "time": T0 + 8, "from": 3, "to": 2, "reason": "max backlog 0", "trigger": "autoscaler",
              "took_s": 0.2})
    h.append({"type": "backlog", "time": T0 + 5, "total": 6, "baristas": 3, "held": {"barista-1": 1, "barista-2": 4}})
    h.append({"type": "backlog", "time": T0 + 6, "total": 2, "baristas": 2, "held": {"barista-1": 0, "barista-2": 2}})
    h.append({"type": "end", "time": T0 + 10, "complete": True})
    return h


def test_scaling_checker_reports_the_pool_and_the_spread() -> None:
    r = Scaling().check(history_with_pool(), CheckOptions())
    d = r.data
    assert r.valid is True
    assert d["series"] == [{"t": 0.0, "replicas": 1}, {"t": 4.0, "replicas": 3}, {"t": 8.0, "replicas": 2}]
    assert (d["scale_ups"], d["scale_downs"], d["max_replicas"], d["final_replicas"]) == (1, 1, 3, 2)
    assert d["replica_seconds"] == 1 * 4 + 3 * 4 + 2 * 2
    assert d["per_replica"]["barista-2"]["brewed"] == 2 and d["per_replica"]["barista-1"]["share"] == 0.8
    assert d["per_replica"]["barista-1"]["wait_ms"]["mean"] == pytest.approx(500, rel=0.01)
    assert d["held"]["barista-2"] == {"max": 4.0, "mean": 3.0}
    assert (d["slow_replica"], d["slow_share"], d["slow_held_max"]) == ("barista-2", 0.2, 4.0)
    assert d["backlog_per_replica"] == pytest.approx((2 + 1) / 2)
    assert d["events"][0]["reason"] == "mean backlog 12"


def test_a_failed_scale_change_makes_the_scaling_checker_invalid() -> None:
    h = history_with_pool()
    h.append({"type": "scale", "time": T0 + 9, "from": None, "to": 4, "error": "ProcessError: boom"})
    r = Scaling().check(h, CheckOptions())
    assert r.valid is False and r.data["errors"] == 1 and r.data["final_replicas"] == 2


# ---------------------------------------------------------------- the theory checker


def mmc_history(rate: float, mean_s: float, servers: int, duration: float, seed: int = 3) -> list[Record]:
    """A simulated M/M/c shop (one shared line, FIFO) written as a history, sampled every 0.1 s."""
    rng = random.Random(seed)
    free = [0.0] * servers
    h: list[Record] = [{"type": "run", "t0": T0, "system": "async", "queueing": {
        "shape": "constant", "process": "poisson", "arrival_rate": rate, "duration_s": duration,
        "brew": {"distribution": "exponential", "mean_ms": mean_s * 1000, "max_ms": None},
        "brewers": 1, "baristas": servers, "prefetch": 1}}]
    t, stays = 0.0, []
    for ref in range(100_000):
        t += rng.expovariate(rate)
        if t >= duration:
            break
        k = min(range(servers), key=lambda i: free[i])
        start = max(t, free[k])
        end = start + rng.expovariate(1 / mean_s)
        free[k] = end
        stays.append((t, end))
        h += [{"type": "invoke", "ref": str(ref), "intended": T0 + t, "sent": T0 + t},
              {"type": "ok", "ref": str(ref), "time": T0 + t},
              {"type": "brewed", "ref": str(ref), "order_id": str(ref), "barista": f"barista-{k + 1}",
               "started": T0 + start, "time": T0 + end},
              {"type": "served", "ref": str(ref), "order_id": str(ref), "time": T0 + end}]
    for i in range(int(duration * 10)):
        at = i / 10
        h.append({"type": "backlog", "time": T0 + at, "total": sum(1 for a, b in stays if a <= at < b)})
    return h


def test_theory_checker_agrees_with_a_simulated_mmc_queue() -> None:
    r = Queueing().check(mmc_history(rate=16, mean_s=0.1, servers=2, duration=600), CheckOptions())
    little, m = r.data["little"], r.data["mmc"]
    assert r.valid is True and little["ratio"] == pytest.approx(1, abs=0.05)
    assert m["applies"] and m["model"] == mmc(16, 10, 2).as_dict()
    assert m["ratios"]["throughput"] == pytest.approx(1, abs=0.05)
    assert m["ratios"]["mean_wait"] == pytest.approx(1, abs=0.2)
    assert m["ratios"]["mean_backlog"] == pytest.approx(1, abs=0.2)


def test_theory_checker_flags_and_explains_a_disagreement() -> None:
    h = mmc_history(rate=16, mean_s=0.1, servers=2, duration=120)
    for record in h:   # a shop twice as slow as declared: the model is wrong about it
        if record["type"] == "run":
            record["queueing"]["brew"]["mean_ms"] = 50
    m = Queueing().check(h, CheckOptions()).data["mmc"]
    assert m["agrees"]["mean_wait"] is False and m["ratios"]["mean_wait"] > 1.2
    assert any("average" in note for note in m["notes"])


def test_theory_checker_says_why_the_model_does_not_apply() -> None:
    h = mmc_history(rate=5, mean_s=0.1, servers=1, duration=20)
    h.append({"type": "scale", "time": T0 + 5, "from": 1, "to": 2})
    m = Queueing().check(h, CheckOptions()).data["mmc"]
    assert m == {"applies": False, "why_not": "the barista pool changed during the run"}


def test_scaling_curve_rows_and_efficiency() -> None:
    from harness.elasticity.curve import curve, markdown

    def result(system: str, c: int, served: float) -> dict[str, Any]:
        return {"experiment": f"scale-out@baristas={c}", "system": system, "orders": {"lost": 0},
                "theory": {"little": {"ratio": 1.01}, "mmc": {
                    "applies": True, "model": mmc(8.0 * c, 10, c).as_dict(),
                    "ratios": {"throughput": 1.0, "mean_wait": 1.1, "mean_backlog": 0.9},
                    "agrees": {"throughput": True},
                    "measured": {"throughput_per_s": served, "mean_wait_s": 0.3, "mean_in_system": 3.0}}}}

    rows = curve([result("async", 2, 15.0), result("async", 1, 8.0), result("sync", 1, 7.5),
                  {"experiment": "x", "system": "sync", "theory": {"mmc": {"applies": False}}}])
    assert [(r["system"], r["replicas"], r["efficiency"]) for r in rows] == [
        ("async", 1, 1.0), ("async", 2, 0.9375), ("sync", 1, 1.0)]
    table = markdown(rows)
    assert table.count("\n") == 4 and "| async | 2 | 16 | 15.00 | 0.9375 |" in table
