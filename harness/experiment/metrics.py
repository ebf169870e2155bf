"""The metric names an experiment's expectations may use: dotted paths into results.json."""
from __future__ import annotations

from typing import Any

LEDGER = ("attempted", "accepted", "rejected", "unknown", "dropped", "brewed", "served", "lost", "duplicated",
          "duplicate_brews", "duplicate_servings", "unexpected", "recovered", "rejected_but_brewed",
          "unknown_brewed", "unknown_unresolved", "redelivered", "unknown_taken", "unknown_not_taken",
          "unknown_unsettled", "served_not_brewed", "dead_lettered")
PERCENTILES = ("count", "mean", "p50", "p90", "p99", "p999", "max")

METRICS: frozenset[str] = frozenset(
    [f"orders.{k}" for k in LEDGER]
    + [f"latency_ms.{kind}.{p}" for kind in ("acceptance", "fulfilment", "response") for p in PERCENTILES]
    + [f"throughput.{k}" for k in ("accepted_per_s", "served_per_s", "peak_served_per_s", "served_in_faults_per_s")]
    + [f"availability.{k}" for k in ("overall", "in_faults", "outside_faults")]
    + [f"probe.{k}" for k in ("share_within_slo", "longest_overdue_s", "first_overdue_s", "detection_s",
                              "placed_within_slo", "first_error_s")]
    + [f"generator.{k}" for k in ("lag_p50_ms", "lag_p99_ms", "lag_max_ms", "late", "dropped")]
    + [f"backlog.{k}" for k in ("max", "mean", "time_to_drain_s")]
    + [f"retries.{k}" for k in ("attempts", "retries", "orders_retried", "max_attempts", "budget_denied",
                                "amplification", "peak_attempts_per_s", "amplification_peak")]
    + [f"availability.{k}" for k in ("recovery_s",)]
    + [f"clocks.{k}" for k in ("brewed_before_sent", "served_before_sent", "served_before_brewed", "worst_s",
                               "implausible")]
    + [f"scaling.{k}" for k in ("scale_ups", "scale_downs", "errors", "initial_replicas", "max_replicas",
                                "min_replicas", "final_replicas", "replica_seconds", "max_share",
                                "backlog_per_replica", "slow_share", "slow_held_max")]
    + [f"theory.little.{k}" for k in ("ratio", "mean_backlog", "predicted_backlog")]
    + [f"theory.mmc.ratios.{k}" for k in ("throughput", "mean_wait", "mean_backlog")]
    + [f"theory.mmc.measured.{k}" for k in ("throughput_per_s", "mean_wait_s", "mean_in_system")]
    + [f"newcomer.{k}" for k in ("brewed_after_join", "rang", "missing", "repeated", "early", "unknown",
                                 "acceptance_p99_before_ms", "acceptance_p99_after_ms", "acceptance_p99_ratio")]
    + [f"latecomer.sources.{src}.{k}" for src in ("replay", "feed", "pages")
       for k in ("catch_up_s", "awards_per_s", "awarded")]
)


UNCOMPRESSED = ("generator.",)   # the generator's lag is its own precision, whatever the speed


def time_dimension(metric: str) -> int:
    """How `metric` scales when time is compressed k times (a profile's `speed`): -1 for a time
    (ms or s: divided by k), +1 for a rate (per second: multiplied by k), 0 for a count, share or
    ratio and for the generator's lag (unchanged)."""
    if metric.startswith(UNCOMPRESSED) or metric.endswith(".count"):
        return 0
    last = metric.rsplit(".", 1)[-1]
    if last.endswith("per_s"):
        return 1
    if metric.startswith("latency_ms.") or last.endswith(("_ms", "_s", "_seconds")):
        return -1
    return 0


def is_fault_metric(metric: str) -> bool:
    """`faults.<name>.<key>`: what the fault named <name> hit when it started (`hit`: orders its
    target held) or reported at its end (`<key>` of its details, e.g. `blocked_connections`)."""
    parts = metric.split(".")
    return len(parts) == 3 and parts[0] == "faults" and bool(parts[1]) and bool(parts[2])


def is_shop_metric(metric: str) -> bool:
    """`shop.<name>`: one of the shop's own counters (harness.shops.base.Shop.counters)."""
    parts = metric.split(".")
    return len(parts) == 2 and parts[0] == "shop" and bool(parts[1])


def lookup(results: dict[str, Any], metric: str) -> Any:
    """The value at a dotted path of a results dict, or None when absent; `faults.<name>.hit` is
    the `held` of that fault's `hit` in the results' fault list, `faults.<name>.<key>` the `key` of
    what the fault reported at its end (its `details`, e.g. a broker alarm's `blocked_connections`)."""
    parts = metric.split(".")
    if is_fault_metric(metric):
        fault = next((f for f in results.get("faults") or [] if f.get("name") == parts[1]), None)
        if fault is None:
            return None
        if parts[2] == "hit":
            return (fault.get("hit") or {}).get("held")
        return (fault.get("details") or {}).get(parts[2])
    value: Any = results
    for part in metric.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value
