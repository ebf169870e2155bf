"""The verdict of a shop run, read from its results.json (or a summary row): one of five statuses.

- "pass": every check passed;
- "fail": an invariant or an expectation was violated;
- "inconclusive": the run could not test the claim (generator behind or dropping arrivals, a
  checker raised, no steady state before the first fault, a fault not applied) and no invariant failed;
- "error": the shop run raised (results["error"] holds the message);
- "not-applicable": every fault of the experiment is meaningless for this shop (the sync shop has
  no broker to partition) and nothing else in it concerns the shop, so the load was not run: the
  results say why (`not_applicable`). It neither passes nor fails, and does not change the exit code.

Each check carries a `kind`: "expectation" (from the experiment file), "invariant" (holds in
every run) or "validity" (the run's own validity). Files written before statuses and kinds
existed have neither: their status is derived from passed/complete/error and a check without a
kind is an expectation. Every reader goes through `status_of` and `kind_of`, never its own rule.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

STATUSES = ("pass", "fail", "inconclusive", "error", "not-applicable")
KINDS = ("expectation", "invariant", "validity")
WORDS = {"pass": "pass", "fail": "FAIL", "inconclusive": "INCONCLUSIVE", "error": "ERROR",
         "not-applicable": "not applicable"}   # as shown to people
EXIT_INCONCLUSIVE = 3


def status_of(results: Mapping[str, Any]) -> str:
    """results["status"] when it is one of STATUSES; otherwise derived as older files mean it:
    passed -> "pass"; not complete -> "error" when results has an error, else "fail"; else "fail"."""
    given = results.get("status")
    if given in STATUSES:
        return str(given)
    if results.get("passed"):
        return "pass"
    if not results.get("complete", True):
        return "error" if results.get("error") else "fail"
    return "fail"


def kind_of(check: Mapping[str, Any]) -> str:
    """A check's kind; a check without one (an older file) is an "expectation"."""
    kind = check.get("kind")
    return str(kind) if kind in KINDS else "expectation"


def failed_validity(results: Mapping[str, Any]) -> list[str]:
    """Names of the failed checks of kind "validity": why a run is inconclusive."""
    return [str(c.get("name")) for c in results.get("checks") or []
            if not c.get("passed") and kind_of(c) == "validity"]


def exit_code(statuses: Iterable[str]) -> int:
    """1 if any status is "fail" or "error", else 3 (EXIT_INCONCLUSIVE) if any is "inconclusive",
    else 0 ("pass" and "not-applicable"). Raises ValueError on a string that is not one of STATUSES."""
    seen = set(statuses)
    unknown = seen - set(STATUSES)
    if unknown:
        raise ValueError(f"not a status: {', '.join(sorted(map(repr, unknown)))} (one of {', '.join(STATUSES)})")
    if seen & {"fail", "error"}:
        return 1
    return EXIT_INCONCLUSIVE if "inconclusive" in seen else 0
