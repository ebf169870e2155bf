"""results.json of one experiment on one shop: checker results, expectations checked, provenance."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.checkers.base import CheckerResult
from harness.experiment.model import Bound
from harness.metrics import lookup


def evaluate(expectations: dict[str, Bound], results: dict[str, Any]) -> list[dict[str, Any]]:
    """One check per expectation: {name, expected, observed, passed}. A missing value fails."""
    checks = []
    for metric, bound in expectations.items():
        observed = lookup(results, metric)
        checks.append({"name": metric, "expected": bound.text(), "min": bound.min, "max": bound.max,
                       "observed": observed, "passed": bound.holds(observed)})
    return checks


def assemble(header: dict[str, Any], checked: dict[str, CheckerResult], expectations: dict[str, Bound],
             provenance: dict[str, Any]) -> dict[str, Any]:
    """The results document: header (experiment, system, seed, profile, config, faults, ...) plus the
    checkers' data under their section names, the checks and the overall verdict."""
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
        "checkers": {name: {"valid": r.valid, "error": r.error} for name, r in checked.items()},
        "provenance": provenance,
    }
    results["checks"] = evaluate(expectations, results)
    if "fault_errors" in header:  # a fault that could not be applied makes the run meaningless
        errors = header["fault_errors"]
        results["checks"].append({"name": "faults applied", "expected": "no fault failed to start or stop",
                                  "min": None, "max": None, "observed": [e.get("error") for e in errors],
                                  "passed": not errors})
    if header.get("scale_errors"):  # a pool change that failed: the run did not test what it claims
        results["checks"].append({"name": "scaled", "expected": "every scale change applied", "min": None,
                                  "max": None, "observed": [e.get("error") for e in header["scale_errors"]],
                                  "passed": False})
    if results["newcomer"]:  # a consumer joined: it must handle every later coffee exactly once
        n = results["newcomer"]
        results["checks"].append({"name": "newcomer exactly once", "expected": "every coffee brewed after the "
                                  "join handled once, none repeated", "min": None, "max": None,
                                  "observed": {k: n.get(k) for k in ("brewed_after_join", "missing", "repeated",
                                                                     "unknown")},
                                  "passed": bool(checked["newcomer"].valid)})
    if header.get("latecomer"):  # late-comers ran: their totals must be exact
        late = header["latecomer"]
        results["checks"].append({"name": "late-comers exact", "expected": "every applicable source caught up "
                                  "with exactly the right points per customer, live orders included",
                                  "min": None, "max": None,
                                  "observed": {src: (d.get("points") or {}).get("correct", d.get("not_applicable"))
                                               for src, d in late.get("sources", {}).items()},
                                  "passed": bool(late.get("correct"))})
    if "healed" in header:  # every run must end with every fault healed, whatever it expects
        healed = header["healed"]
        results["checks"].append({"name": "healed", "expected": "no toxic left, proxies enabled, all running",
                                  "min": None, "max": None, "observed": healed, "passed": bool(healed.get("healed"))})
    if header.get("error"):   # the shop run raised: it did not finish, whatever was measured
        results["checks"].append({"name": "run completed", "expected": "the shop run finishes without an error",
                                  "min": None, "max": None, "observed": header["error"], "passed": False})
    results["passed"] = bool(header.get("complete", True)) and all(c["passed"] for c in results["checks"])
    results["status"] = status(results)
    return results


def status(results: dict[str, Any]) -> str:
    """"error" when the shop run raised (results["error"]), else "pass" or "fail"."""
    if results.get("error"):
        return "error"
    return "pass" if results.get("passed") else "fail"


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
