"""Experiment files: the shipped ones are valid; every kind of mistake gives one clean error
naming the file, the field path and the bad value; profiles scale as documented."""
from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.experiment import ExperimentError, discover, from_dict, load_experiment
from harness.experiment.metrics import METRICS
from harness.experiment.results import evaluate

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENTS = discover(ROOT / "experiments")

MINIMAL: dict[str, Any] = {
    "title": "t", "claim": "c", "time_scale": "1:1",
    "run": {"duration_s": 10},
    "load": {"shape": "constant", "rate": 5},
}


def with_change(path: str, value: Any) -> dict[str, Any]:
    import copy

    data = copy.deepcopy(MINIMAL)
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return data


def test_shipped_experiments_are_valid() -> None:
    assert {p.stem for p in EXPERIMENTS} >= {"steady-state", "morning-rush"}
    for path in EXPERIMENTS:
        experiment = load_experiment(path)
        assert experiment.claim and experiment.time_scale
        for profile in ("smoke", "full"):
            experiment.for_profile(profile)


def test_minimal_experiment_has_defaults() -> None:
    exp = from_dict(MINIMAL)
    assert exp.shop.baristas == 1 and exp.load.process == "poisson" and exp.faults == []


@pytest.mark.parametrize(("path", "value", "field", "words"), [
    ("colour", "red", "colour", "unknown key"),
    ("run.durations", 3, "run.durations", "unknown key"),
    ("run.duration_s", -1, "run.duration_s", "greater than 0"),
    ("run.duration_s", "long", "run.duration_s", "valid number"),
    ("load.shape", "tsunami", "load.shape", "'constant'"),
    ("load.process", "bursty", "load.process", "'poisson'"),
    ("load.peak_factor", 3, "load", "peak_factor does not apply to shape 'constant'"),
    ("shop.brew", {"distribution": "normal"}, "shop.brew.distribution", "'fixed'"),
    ("shop.menu_mix", {"Tea": 1}, "shop.menu_mix", "not on the menu"),
    ("shop.baristas", 0, "shop.baristas", "greater than or equal to 1"),
    ("shop.heartbeat_s", -1, "shop.heartbeat_s", "greater than or equal to 0"),
    ("shop.max_length", 0, "shop.max_length", "greater than or equal to 1"),
    ("shop.overflow", "reject-publish-dlx", "shop.overflow", "'drop-head' or 'reject-publish'"),
    ("faults", [{"kind": "meteor", "target": "barista", "start_s": 1, "duration_s": 1}], "faults[0].kind",
     "unknown fault kind 'meteor'"),
    ("faults", [{"kind": "kill", "target": "janitor", "start_s": 1, "duration_s": 1}], "faults[0].target",
     "unknown target 'janitor'"),
    ("faults", [{"kind": "kill", "target": "barista", "start_s": 50, "duration_s": 1}], "",
     "after the run"),
    ("expect", {"async": {"orders.vanished": {"max": 0}}}, "expect", "unknown metric 'orders.vanished'"),
    ("expect", {"async": {"orders.lost": {}}}, "expect.async.orders.lost", "give min, max or both"),
    ("expect", {"martian": {"orders.lost": {"max": 0}}}, "expect.martian", "unknown key"),
    ("profiles", {"nightly": {"time_factor": 2}}, "profiles.nightly", "unknown key"),
    # numbers are numbers (the new-user pass of 2026-12-01 found these taken as 1, 2 and a bound error)
    ("run.seed", True, "run.seed", "= True: Input should be a valid integer"),
    ("shop.baristas", 2.0, "shop.baristas", "= 2.0: Input should be a valid integer"),
    ("load.rate", float("nan"), "load.rate", "finite number"),
    ("load.rate", True, "load.rate", "valid number"),
])
def test_bad_fields_are_named_with_their_value(path: str, value: Any, field: str, words: str) -> None:
    with pytest.raises(ExperimentError) as info:
        from_dict(with_change(path, value), "x.toml")
    error = info.value
    assert error.field.startswith(field), str(error)
    assert words in str(error), str(error)
    assert str(error).startswith("x.toml: ")
    assert "\n" not in str(error)


def test_a_misspelt_key_is_named_not_the_key_it_leaves_missing() -> None:
    load = {k: v for k, v in MINIMAL["load"].items() if k != "rate"} | {"rat": 5}
    with pytest.raises(ExperimentError, match="load.rat = 5: unknown key"):
        from_dict(with_change("load", load), "x.toml")


@pytest.mark.parametrize("missing", ["title", "claim", "run", "load", "time_scale"])
def test_missing_sections_are_named(missing: str) -> None:
    data = dict(MINIMAL)
    del data[missing]
    with pytest.raises(ExperimentError, match=f"{missing}: missing"):
        from_dict(data, "x.toml")


def test_the_brokers_knobs_reach_the_shop_settings() -> None:
    shop = {"heartbeat_s": 0, "max_length": 5, "overflow": "reject-publish"}
    settings = from_dict(with_change("shop", shop)).shop.settings(seed=1)
    assert (settings.heartbeat_s, settings.max_length, settings.overflow) == (0, 5, "reject-publish")
    assert settings.queues.arguments()["x-max-length"] == 5


def test_shape_needs_its_fields() -> None:
    with pytest.raises(ExperimentError, match="needs peak_factor"):
        from_dict(with_change("load", {"shape": "morning-rush", "rate": 5}))


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("title = \n")
    with pytest.raises(ExperimentError, match="bad.toml: not valid TOML"):
        load_experiment(bad)
    with pytest.raises(ExperimentError, match="cannot read"):
        load_experiment(tmp_path / "absent.toml")


def test_profile_scales_times_and_rates_not_the_shop() -> None:
    exp = load_experiment(ROOT / "experiments" / "morning-rush.toml")
    smoke = exp.for_profile("smoke")
    factor = exp.profile("smoke").time_factor
    assert smoke.run.duration_s == pytest.approx(exp.run.duration_s * factor)
    assert smoke.run.drain_s == pytest.approx(exp.run.drain_s * factor)
    assert smoke.load.peak_start_s == pytest.approx(exp.load.peak_start_s * factor)
    assert smoke.load.client_timeout_s == exp.load.client_timeout_s
    assert smoke.shop == exp.shop
    assert exp.for_profile("realtime") == exp   # every order, in real time


def test_full_is_every_order_compressed_and_realtime_the_same_at_speed_1() -> None:
    exp = load_experiment(ROOT / "experiments" / "morning-rush.toml")
    k = exp.profile("full").speed
    assert k == exp.profile("fast").speed == 2 and exp.profile("realtime").speed == 1
    full, realtime = exp.for_profile("full"), exp.for_profile("realtime")
    assert full.run.duration_s == pytest.approx(realtime.run.duration_s / k)
    assert full.load.rate == pytest.approx(realtime.load.rate * k)
    assert full.shop.brew.mean_ms == pytest.approx(realtime.shop.brew.mean_ms / k)
    assert full.run.drain_s == realtime.run.drain_s   # a bound, not a window
    scale = MINIMAL | {"profiles": {"full": {"time_factor": 0.5, "rate_factor": 2.0, "speed": 3.0}}}
    p = from_dict(scale).profile("realtime")
    assert (p.time_factor, p.rate_factor, p.speed) == (0.5, 2.0, 1.0)   # full's factors, not its speed
    with pytest.raises(ExperimentError, match="realtime"):
        from_dict(MINIMAL | {"profiles": {"realtime": {"speed": 1.0}}})   # derived, never declared


def test_profile_default_rule_applies_when_undeclared() -> None:
    exp = from_dict(MINIMAL)
    assert exp.for_profile("smoke").run.duration_s == pytest.approx(2.5)


def test_expectations_merge_both_and_system() -> None:
    exp = from_dict(with_change("expect", {"both": {"orders.lost": {"max": 0}},
                                           "sync": {"orders.lost": {"max": 5}, "availability.overall": {"min": 0.5}}}))
    merged = exp.expectations("sync")
    assert merged["orders.lost"].max == 5 and "availability.overall" in merged
    assert exp.expectations("async")["orders.lost"].max == 0


def test_evaluate_checks_pass_fail_and_missing() -> None:
    exp = from_dict(with_change("expect", {"both": {"orders.lost": {"max": 0}, "availability.overall": {"min": 0.9},
                                                    "probe.detection_s": {"max": 5}}}))
    checks = {c["name"]: c for c in evaluate(exp.expectations("async"),
                                             {"orders": {"lost": 2}, "availability": {"overall": 0.95}})}
    assert checks["orders.lost"]["passed"] is False and checks["orders.lost"]["observed"] == 2
    assert checks["availability.overall"]["passed"] is True
    assert checks["probe.detection_s"]["passed"] is False  # missing value fails


toml_values = st.recursive(
    st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=12,
)
keys = st.sampled_from(["title", "claim", "time_scale", "run", "load", "shop", "faults", "expect", "profiles",
                        "duration_s", "shape", "rate", "x"])


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=200)
@given(st.dictionaries(keys, toml_values, max_size=6))
def test_garbage_gives_a_clean_error_not_a_traceback(data: dict[str, Any]) -> None:
    try:
        from_dict(data, "garbage.toml")
    except ExperimentError as exc:
        assert str(exc).startswith("garbage.toml: ")


@settings(max_examples=50)
@given(st.sampled_from(EXPERIMENTS), st.integers(0, 200), st.binary(min_size=1, max_size=8))
def test_mangled_real_files_give_a_clean_error(path: Path, at: int, junk: bytes) -> None:
    text = path.read_bytes()
    mangled = text[:at] + junk + text[at:]
    try:
        data = tomllib.loads(mangled.decode("utf-8", errors="replace"))
    except tomllib.TOMLDecodeError:
        return
    try:
        from_dict(data, path.name)
    except ExperimentError:
        pass


def test_metric_names_cover_the_ledger() -> None:
    assert {"orders.lost", "orders.duplicated", "latency_ms.acceptance.p99", "generator.dropped"} <= METRICS


def test_cli_validate_exit_codes(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('title = "t"\nclaim = "c"\ntime_scale = "x"\n[run]\nduration_s = 10\n[load]\nshape = "wave"\nrate = 1\n')
    proc = subprocess.run([sys.executable, "-m", "harness", "validate", str(bad)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 2
    assert "load.shape = 'wave'" in proc.stdout and "Traceback" not in proc.stdout + proc.stderr
    ok = subprocess.run([sys.executable, "-m", "harness", "validate", *map(str, EXPERIMENTS)], capture_output=True,
                        text=True, timeout=60, check=False)
    assert ok.returncode == 0, ok.stdout
    run = subprocess.run([sys.executable, "-m", "harness", "run", str(bad)], capture_output=True, text=True,
                         timeout=60, check=False)
    assert run.returncode == 2 and "Traceback" not in run.stdout + run.stderr


def test_a_fault_hit_bound_must_name_a_fault_of_the_file_and_is_scaled_with_it() -> None:
    base = {"title": "t", "claim": "c", "time_scale": "1:1", "run": {"duration_s": 8},
            "load": {"shape": "constant", "rate": 1},
            "faults": [{"kind": "kill", "target": "barista", "start_s": 4, "duration_s": 2, "wait_for_work_s": 2}],
            "profiles": {"smoke": {"time_factor": 0.5}}}
    ok = from_dict({**base, "expect": {"both": {"faults.kill-barista-1.hit": {"min": 1}}}}, Path("x.toml"))
    assert ok.for_profile("smoke").faults[0].wait_for_work_s == 1.0     # a timer: scaled like the rest
    assert ok.windows()[0].wait_for_work_s == 2
    with pytest.raises(ExperimentError, match="names no fault of this experiment"):
        from_dict({**base, "expect": {"both": {"faults.nope.hit": {"min": 1}}}}, Path("x.toml"))
    checks = evaluate(ok.expectations("sync"), {"faults": [{"name": "kill-barista-1", "hit": {"held": 0}}]})
    assert checks[0]["kind"] == "validity" and checks[0]["passed"] is False


def test_only_experiments_that_stop_the_broker_or_run_a_cluster_need_a_private_broker() -> None:
    private = {name for name, exp in ((p.stem, load_experiment(p)) for p in EXPERIMENTS) if exp.needs_private_broker()}
    assert private == {"broker-outage", "broker-outage-direct", "broker-node-outage", "broker-node-outage-classic",
                       "broker-partition"}


@pytest.mark.parametrize(("broker", "kind", "params", "error"), [
    ("", "broker-node-kill", "", "set [broker] nodes = 3 or 5 (it is 1)"),
    ("nodes = 3", "broker-node-kill", 'node = "somebody"', "node: 'somebody' is not one of"),
    ("nodes = 3", "broker-partition", 'mode = "sideways"', "mode: 'sideways' is not one of"),
    ("nodes = 3", "broker-partition", "loss = 0", "loss: must be a number in (0, 1]"),
    ("nodes = 2", "broker-partition", "", "nodes"),
    ('nodes = 3\npartition_handling = "pause_all"', "broker-partition", "", "partition_handling"),
])
def test_cluster_faults_and_the_broker_table_are_validated(tmp_path: Path, broker: str, kind: str, params: str,
                                                           error: str) -> None:
    """A cluster fault on one node, an unknown member choice or partition mode, a node count
    RabbitMQ's quorum cannot use: each a one-line error naming the field."""
    path = tmp_path / "cluster.toml"
    path.write_text(f"""title = "t"
claim = "c"
time_scale = "s"
[run]
duration_s = 10
[load]
shape = "constant"
rate = 1
[broker]
{broker}
[[faults]]
kind = "{kind}"
target = "broker"
start_s = 1
duration_s = 2
params = {{ {params} }}
""")
    with pytest.raises(ExperimentError) as info:
        load_experiment(path)
    assert error in str(info.value) and "\n" not in str(info.value)


def test_the_cli_offers_the_schema_profiles() -> None:
    from harness import cli
    from harness.experiment import PROFILES

    assert cli.PROFILES == PROFILES


def test_speed_compresses_every_time_and_rate_but_not_the_orders() -> None:
    """`[profiles.fast] speed = k`: the smoke run k times faster — the same orders (same count,
    same contents, times divided by k), brews, timeouts, fault times and time bounds divided by k,
    rates multiplied; the drain (an upper bound) and counts unchanged."""
    from harness.experiment.run import schedule_for

    exp = load_experiment(ROOT / "experiments" / "slow-barista.toml")
    k = exp.profile("fast").speed
    assert k > 1
    smoke, fast = exp.for_profile("smoke"), exp.for_profile("fast")
    assert fast.run.duration_s == pytest.approx(smoke.run.duration_s / k)
    assert fast.run.slo_s == pytest.approx(smoke.run.slo_s / k)
    assert fast.run.drain_s == smoke.run.drain_s
    assert fast.load.rate == pytest.approx(smoke.load.rate * k)
    assert fast.load.client_timeout_s == pytest.approx(smoke.load.client_timeout_s / k)
    assert fast.shop.brew.mean_ms == pytest.approx(smoke.shop.brew.mean_ms / k)
    assert fast.shop.barista_timeout_s == pytest.approx(smoke.shop.barista_timeout_s / k)
    for f_fast, f_smoke in zip(fast.faults, smoke.faults, strict=True):
        assert f_fast.start_s == pytest.approx(f_smoke.start_s / k)
        assert f_fast.duration_s == pytest.approx(f_smoke.duration_s / k)
        assert f_fast.params["latency"] == round(f_smoke.params["latency"] / k)
        assert isinstance(f_fast.params["latency"], int)      # Toxiproxy takes integer milliseconds
    assert fast.expectations("sync")["latency_ms.acceptance.p50"].min == pytest.approx(
        smoke.expectations("sync")["latency_ms.acceptance.p50"].min / k)
    from harness.experiment.metrics import time_dimension

    for system in ("sync", "async"):
        unchanged = {m: b for m, b in smoke.expectations(system).items() if time_dimension(m) == 0}
        assert unchanged and all(fast.expectations(system)[m] == b for m, b in unchanged.items())
    a, b = schedule_for(smoke, 7), schedule_for(fast, 7)
    assert len(a) == len(b) > 0


def test_speed_keeps_zero_and_integer_fault_parameters_and_multiplies_rates() -> None:
    exp = load_experiment(ROOT / "experiments" / "duplicate-delivery.toml")
    fast = exp.for_profile("fast")
    params = {f.name or f.kind: f.params for f in fast.faults}
    assert params["barista-answers-lost"]["timeout"] == 0 and isinstance(params["barista-answers-lost"]["timeout"], int)
    assert all(p.get("rate") == q.get("rate") for p, q in zip(params.values(), (f.params for f in exp.faults),
                                                               strict=True))   # a share of orders, not a rate in time


def test_time_dimension_of_metrics() -> None:
    from harness.experiment.metrics import time_dimension

    assert time_dimension("latency_ms.acceptance.p99") == -1 and time_dimension("probe.detection_s") == -1
    assert time_dimension("throughput.served_per_s") == 1 and time_dimension("latecomer.sources.feed.awards_per_s") == 1
    assert time_dimension("latency_ms.acceptance.count") == 0 and time_dimension("orders.lost") == 0
    assert time_dimension("generator.lag_p99_ms") == 0           # the generator's own precision


def test_without_its_own_fast_profile_an_experiment_runs_fast_as_its_smoke_profile() -> None:
    exp = from_dict({"title": "t", "claim": "c", "time_scale": "s", "run": {"duration_s": 10},
                     "load": {"shape": "constant", "rate": 1}, "profiles": {"smoke": {"time_factor": 0.1}}})
    assert exp.for_profile("fast") == exp.for_profile("smoke")
    assert exp.for_profile("fast").run.duration_s == pytest.approx(1.0)


def test_speed_compresses_a_fault_parameter_left_at_its_default_and_writes_it_out() -> None:
    exp = from_dict({"title": "t", "claim": "c", "time_scale": "s", "run": {"duration_s": 10, "drain_s": 5},
                     "load": {"shape": "constant", "rate": 1},
                     "faults": [{"kind": "latency", "target": "orders->barista", "start_s": 1, "duration_s": 2},
                                {"kind": "bandwidth", "target": "orders->barista", "start_s": 4, "duration_s": 2}],
                     "profiles": {"fast": {"speed": 4}}})
    latency, bandwidth = exp.for_profile("fast").faults
    assert latency.params == {"latency": 25, "jitter": 0}          # the 100 ms default, compressed
    assert bandwidth.params == {"rate": 400}                         # 100 KB/s, k times the data rate
    assert exp.for_profile("full").faults[0].params == {}            # uncompressed: as written


def test_a_shop_run_is_not_applicable_only_when_every_fault_and_nothing_else_concerns_the_shop() -> None:
    from harness.experiment.run import inapplicable
    exp = load_experiment(ROOT / "experiments" / "broker-partition.toml")
    na = [{"name": w.name, "kind": w.kind, "target": w.target, "reason": "the sync shop has no broker"}
          for w in exp.windows()]
    assert inapplicable(exp, "sync", na) == "the sync shop has no broker"
    assert inapplicable(exp, "sync", na[:-1]) is None                      # one fault still applies
    own = exp.model_copy(update={"expect": {**exp.expect, "sync": {"orders.lost": exp.expect["async"]["orders.lost"]}}})
    assert inapplicable(own, "sync", na) is None                           # [expect.sync]: a claim about it
    assert inapplicable(load_experiment(ROOT / "experiments" / "steady-state.toml"), "sync", []) is None
    late = load_experiment(ROOT / "experiments" / "new-consumer-live.toml")
    na_late = [{"name": w.name, "kind": w.kind, "target": w.target, "reason": "no events"} for w in late.windows()]
    assert inapplicable(late, "sync", na_late) == "no events"
