"""The five-valued verdict: given statuses, statuses derived from older files, kinds, exit codes."""
from __future__ import annotations

import pytest

from harness.experiment.verdicts import STATUSES, exit_code, failed_validity, kind_of, status_of


def test_statuses_are_the_five_in_order() -> None:
    assert STATUSES == ("pass", "fail", "inconclusive", "error", "not-applicable")


def test_a_run_not_made_is_not_applicable_and_changes_no_exit_code() -> None:
    from harness.experiment.results import status
    assert status({"applicable": False, "checks": [], "complete": True}) == "not-applicable"
    assert status({"applicable": False, "error": "boom"}) == "error"     # an error still wins
    assert status({"applicable": True, "checks": []}) == "pass"
    assert exit_code(["pass", "not-applicable"]) == 0
    assert exit_code(["not-applicable"]) == 0
    assert exit_code(["not-applicable", "inconclusive"]) == 3
    assert exit_code(["not-applicable", "fail"]) == 1


@pytest.mark.parametrize("given", STATUSES)
def test_a_given_status_wins_over_passed_and_complete(given: str) -> None:
    assert status_of({"status": given, "passed": given != "pass", "complete": False, "error": "x"}) == given


@pytest.mark.parametrize(("results", "expected"), [
    ({"passed": True, "complete": True}, "pass"),
    ({"passed": True}, "pass"),
    ({"passed": False, "complete": True}, "fail"),
    ({"passed": False}, "fail"),
    ({}, "fail"),
    ({"passed": False, "complete": False, "error": "RuntimeError: broker did not start"}, "error"),
    ({"passed": False, "complete": False}, "fail"),
    ({"passed": False, "complete": False, "error": None}, "fail"),
    ({"passed": False, "complete": False, "error": ""}, "fail"),
    ({"passed": False, "complete": True, "error": "late"}, "fail"),
])
def test_an_older_file_without_status_is_derived(results: dict[str, object], expected: str) -> None:
    assert status_of(results) == expected


@pytest.mark.parametrize("odd", [None, "", "PASS", "ok", "skipped", 1])
def test_an_unknown_status_is_ignored_and_derived(odd: object) -> None:
    assert status_of({"status": odd, "passed": True}) == "pass"
    assert status_of({"status": odd, "passed": False, "complete": False, "error": "boom"}) == "error"


def test_a_check_without_kind_is_an_expectation() -> None:
    assert kind_of({"name": "orders.lost"}) == "expectation"
    assert kind_of({"name": "x", "kind": None}) == "expectation"
    assert kind_of({"name": "x", "kind": "something else"}) == "expectation"
    for kind in ("expectation", "invariant", "validity"):
        assert kind_of({"name": "x", "kind": kind}) == kind


def test_failed_validity_names_only_failed_validity_checks() -> None:
    checks = [{"name": "generator", "kind": "validity", "passed": False},
              {"name": "faults applied", "kind": "validity", "passed": True},
              {"name": "orders.lost", "kind": "invariant", "passed": False},
              {"name": "availability.overall", "passed": False}]
    assert failed_validity({"checks": checks}) == ["generator"]
    assert failed_validity({}) == []


@pytest.mark.parametrize(("statuses", "code"), [
    ([], 0),
    (["pass"], 0),
    (["pass", "pass"], 0),
    (["pass", "inconclusive"], 3),
    (["inconclusive", "inconclusive"], 3),
    (["pass", "fail"], 1),
    (["pass", "error"], 1),
    (["inconclusive", "fail"], 1),
    (["error", "inconclusive", "pass"], 1),
])
def test_exit_code(statuses: list[str], code: int) -> None:
    assert exit_code(statuses) == code
    assert exit_code(iter(statuses)) == code       # any iterable, read once


def test_exit_code_refuses_what_is_not_a_status() -> None:
    with pytest.raises(ValueError, match="not a status"):
        exit_code(["pass", "FAIL"])
