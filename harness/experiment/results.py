"""results.json of one experiment on one shop: checker results, checks (expectations from the file,
invariants and validity checks of every run), the verdict (`status`), provenance."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.checkers.base import CheckerResult
from harness.experiment.metrics import is_fault_metric, lookup
from harness.experiment.model import Bound

EXPECTATION, INVARIANT, VALIDITY = "expectation", "invariant", "validity"


def evaluate(expectations: dict[str, Bound], results: dict[str, Any]) -> list[dict[str, Any]]:
    """One check per expectation: {name, kind, expected, observed, passed}. A missing value fails.
    Bounds on `faults.<name>.<key>` (what a fault hit or did) are of kind "validity": a fault that
    hit nothing proves nothing."""
    checks = []
    for metric, bound in expectations.items():
        observed = lookup(results, metric)
        kind = VALIDITY if is_fault_metric(metric) else EXPECTATION   # a fault that hit nothing proves nothing
        checks.append({"name": metric, "kind": kind, "expected": bound.text(), "min": bound.min,
                       "max": bound.max, "observed": observed, "passed": bound.holds(observed)})
    return checks


def _check(name: str, kind: str, expected: str, observed: Any, passed: bool) -> dict[str, Any]:
    return {"name": name, "kind": kind, "expected": expected, "min": None, "max": None, "observed": observed,
            "passed": passed}


def built_in_checks(header: dict[str, Any], checked: dict[str, CheckerResult]) -> list[dict[str, Any]]:
    """The checks every run gets, whatever its file expects.

    Invariants (a violation fails the run): the ledger's (nothing accepted lost, nothing
    unexpected), every fault healed, a newcomer's and the late-comers' exactness where they ran.
    Validity (a violation makes the run inconclusive): every checker ran, the generator kept up,
    the steady state held before the first fault, every fault and pool change was applied, every
    fault began within the load (one that a slow heal before it pushed past the last arrival hit
    no order), every restarted late-comer was killed mid-way.
    """
    checks: list[dict[str, Any]] = []
    ledger = checked.get("ledger")
    if ledger is not None and ledger.valid is not None:
        checks.append(_check("invariant: nothing lost or unexpected", INVARIANT,
                             "every accepted order served, nothing brewed or served that was not ordered, "
                             "nothing served that was not brewed",
                             {k: ledger.data.get(k) for k in ("lost", "unexpected", "served_not_brewed")},
                             bool(ledger.valid)))
    if "healed" in header:
        healed = header["healed"]
        checks.append(_check("healed", INVARIANT, "no toxic left, proxies enabled, all running (and subscribed)", healed,
                             bool(healed.get("healed"))))
    if checked.get("newcomer") is not None and checked["newcomer"].data:
        n = checked["newcomer"].data
        checks.append(_check("newcomer exactly once", INVARIANT,
                             "every coffee brewed after the join handled once, none repeated",
                             {k: n.get(k) for k in ("brewed_after_join", "missing", "repeated", "unknown")},
                             bool(checked["newcomer"].valid)))
    if header.get("latecomer"):
        late = header["latecomer"]
        checks.append(_check("late-comers exact", INVARIANT, "every applicable source caught up with exactly the "
                             "right points per customer, live orders included",
                             {src: (d.get("points") or {}).get("correct", d.get("not_applicable"))
                              for src, d in late.get("sources", {}).items()}, bool(late.get("correct"))))
        killed = {src: d for src, d in late.get("sources", {}).items() if d.get("killed_at_awarded") is not None}
        if late.get("restart") and killed:   # a kill before the first award or after the last tests no restart
            checks.append(_check("late-comers killed mid-way", VALIDITY, "each late-comer killed with some but "
                                 "not all of the history awarded", {src: f"{d['killed_at_awarded']} of {d.get('target')}"
                                                                    for src, d in killed.items()},
                                 all(d.get("killed_mid_way") for d in killed.values())))
    raised = {name: r.error for name, r in checked.items() if r.error is not None}
    checks.append(_check("checkers ran", VALIDITY, "no checker raised", raised or None, not raised))
    generator = checked.get("generator")
    if generator is not None and generator.valid is not None:
        checks.append(_check("generator kept up", VALIDITY, "no arrival dropped, lag p99 within run.max_lag_ms",
                             {k: generator.data.get(k) for k in ("dropped", "lag_p99_ms")}, bool(generator.valid)))
    steady = checked.get("steady_state")
    if steady is not None and steady.valid is not None:
        checks.append(_check("steady state before the first fault", VALIDITY,
                             "the shop was serving before the first fault ([steady_state])",
                             {k: steady.data.get(k) for k in ("attempted_before", "availability_before",
                                                              "backlog_max_before", "reasons")},
                             bool(steady.valid)))
    declared = ((header.get("config") or {}).get("experiment") or {}).get("faults")
    if declared is not None and "faults" in header and "not_applicable" in header:
        applied = {f["name"] for f in header["faults"]} | {f["name"] for f in header["not_applicable"]}
        checks.append(_check("faults accounted", VALIDITY, "every declared fault applied or reported not applicable",
                             {"declared": len(declared), "applied or not applicable": len(applied)},
                             len(applied) == len(declared)))
    window = (header.get("schedule") or {}).get("duration_s")
    if window is not None and header.get("faults"):
        late = {f["name"]: f["start_s"] for f in header["faults"]
                if f.get("start_s") is not None and f["start_s"] >= window}
        checks.append(_check("faults under load", VALIDITY,
                             f"every fault began while orders were arriving (the load's {window:g} s)",
                             late or None, not late))
    if "fault_errors" in header:
        errors = header["fault_errors"]
        checks.append(_check("faults applied", VALIDITY, "no fault failed to start or stop",
                             [e.get("error") for e in errors], not errors))
    if header.get("scale_errors"):
        checks.append(_check("scaled", VALIDITY, "every scale change applied",
                             [e.get("error") for e in header["scale_errors"]], False))
    if header.get("error"):
        checks.append(_check("run completed", VALIDITY, "the shop run finishes without an error",
                             header["error"], False))
    return checks


def assemble(header: dict[str, Any], checked: dict[str, CheckerResult], expectations: dict[str, Bound],
             provenance: dict[str, Any]) -> dict[str, Any]:
    """The results document: header (experiment, system, seed, profile, config, faults, ...) plus the
    checkers' data under their section names, the checks (expectations, then the built-in
    invariants and validity checks) and the verdict: `status` (see `status`) and `passed`."""
    data = {name: result.data for name, result in checked.items()}
    results: dict[str, Any] = {
        **header,
        "orders": data.get("ledger", {}),
        "latency_ms": data.get("latency", {}),
        "throughput": data.get("throughput", {}),
        "availability": data.get("availability", {}),
        "probe": data.get("probe", {}),
        "generator": data.get("generator", {}),
        "backlog": data.get("backlog", {}),
        "scaling": data.get("scaling", {}),
        "theory": data.get("theory", {}),
        "newcomer": data.get("newcomer", {}),
        "steady_state": data.get("steady_state", {}),
        "clocks": data.get("clocks", {}),
        "retries": data.get("retries", {}),
        "checkers": {name: {"valid": r.valid, "error": r.error} for name, r in checked.items()},
        "provenance": provenance,
    }
    results["checks"] = evaluate(expectations, results) + built_in_checks(header, checked)
    results["status"] = status(results)
    results["passed"] = results["status"] == "pass"
    return results


def status(results: dict[str, Any]) -> str:
    """The verdict, Jepsen-style but five-valued: "error" when the shop run raised; "not-applicable"
    when the run was not made because nothing in the experiment applies to the shop (`applicable`
    false, harness.experiment.run.applies); "fail" when an
    invariant failed; else "inconclusive" when a validity check failed (the run could not test
    the claim) or the run did not complete; else "fail" when an expectation failed; else "pass".
    Checks without a kind (older files) count as expectations."""
    if results.get("error"):
        return "error"
    if results.get("applicable") is False:
        return "not-applicable"
    failed = {c.get("kind", EXPECTATION) for c in results.get("checks", []) if not c.get("passed")}
    if INVARIANT in failed:
        return "fail"
    if VALIDITY in failed or not results.get("complete", True):
        return "inconclusive"
    return "fail" if EXPECTATION in failed else "pass"


def failed_checks(results: dict[str, Any], *, incomplete: bool = False) -> list[str]:
    """Names of the checks a results dict failed; with `incomplete`, an unfinished run with no
    failed check reports ["incomplete"] (it did not pass either)."""
    failed = [c["name"] for c in results.get("checks", []) if not c.get("passed")]
    if not failed and incomplete and not results.get("complete", True):
        return ["incomplete"]
    return failed


def write(results: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str))
    return path
