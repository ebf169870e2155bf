"""CI formats from hand-built summary rows and changes: the JUnit XML parsed back with junitparser,
the Markdown job summary, the GitHub step-summary file, and compare results as Markdown and JSON."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

from harness.regression.compare import Change
from harness.report.ci_output import (
    append_github_summary,
    compare_json,
    compare_markdown,
    junit_xml,
    status,
    summary_markdown,
    write_junit,
)


def row(experiment: str, system: str, **over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "experiment": experiment, "system": system, "status": "pass", "passed": True, "complete": True,
        "error": None, "wall_s": 12.5, "attempted": 100, "accepted": 98, "lost": 0, "duplicated": 0,
        "acceptance_p99_ms": 41.25, "fulfilment_p99_ms": 3900.0, "availability": 0.98,
        "failed_checks": [], "failures": [], "repeats": 1, "intervals": {},
    }
    return {**base, **over}


PASS = row("steady", "sync")
FAIL = row("barista-outage", "async", status="fail", passed=False, lost=3, duplicated=2,
           failed_checks=["orders.lost", "orders.duplicated"],
           failures=[{"name": "orders.lost", "expected": "== 0", "observed": 3},
                     {"name": "orders.duplicated", "expected": "<= 1", "observed": 2}])
ERROR = row("broker-restart", "async", status="error", passed=False, complete=False, wall_s=None,
            error="RuntimeError: broker \x1b[31mdid not start\x1b[0m\x07", attempted=None, accepted=None, lost=None,
            duplicated=None, acceptance_p99_ms=None)
OLD = {  # a row written before status/error/wall_s/failures existed: incomplete without an error, so a failure
    "experiment": "steady", "system": "async", "passed": False, "complete": False, "attempted": 50,
    "accepted": 50, "lost": 0, "duplicated": 0, "acceptance_p99_ms": 12.0, "fulfilment_p99_ms": 800.0,
    "availability": 1.0, "failed_checks": ["healed"], "repeats": 1, "intervals": {},
}
ROWS = [PASS, FAIL, ERROR, OLD]
INCONCLUSIVE = row("barista-outage", "sync", status="inconclusive", passed=False, lost=1,
                   failed_checks=["orders.lost", "generator kept up", "steady state before the first fault"],
                   failures=[{"name": "orders.lost", "kind": "expectation", "expected": "<= 0", "observed": 1},
                             {"name": "generator kept up", "kind": "validity",
                              "expected": "no arrival dropped", "observed": {"dropped": 4}},
                             {"name": "steady state before the first fault", "kind": "validity",
                              "expected": "the shop was serving", "observed": None}])


def parsed(xml: str) -> TestSuite:
    document = JUnitXml.fromstring(xml)
    assert isinstance(document, JUnitXml)
    suites = list(document)
    assert len(suites) == 1
    return suites[0]


def cases(suite: TestSuite) -> dict[tuple[str, str], TestCase]:
    return {(case.classname, case.name): case for case in suite}


# --- status ---------------------------------------------------------------------------------------

def test_status_is_given_or_derived_from_passed_and_complete() -> None:
    assert status(FAIL) == "fail"
    assert status({"passed": True, "complete": True}) == "pass"
    assert status({"passed": False, "complete": False}) == "fail"      # incomplete, but no error recorded
    assert status({"passed": False, "complete": False, "error": "RuntimeError: boom"}) == "error"
    assert status({"passed": False, "complete": True}) == "fail"
    assert status(OLD) == "fail"
    assert status(INCONCLUSIVE) == "inconclusive"
    assert status({"status": "inconclusive", "passed": False, "complete": True}) == "inconclusive"
    assert status(ERROR) == "error"


# --- JUnit ----------------------------------------------------------------------------------------

def test_junit_has_one_case_per_row_with_the_right_results() -> None:
    suite = parsed(junit_xml(ROWS, report_dir="reports", run_id="20240101-120000"))
    assert suite.name == "chaoscafe"
    assert suite.tests == 4
    assert suite.failures == 2   # test cases that failed, not <failure> elements (there are three)
    assert suite.errors == 1
    by_key = cases(suite)
    assert sorted(by_key) == [("barista-outage", "async"), ("broker-restart", "async"),
                              ("steady", "async"), ("steady", "sync")]

    passing = by_key[("steady", "sync")]
    assert passing.result == []
    assert passing.time == 12.5

    failing = by_key[("barista-outage", "async")]
    assert [type(r) for r in failing.result] == [Failure, Failure]
    assert [r.message for r in failing.result] == ["orders.lost: expected == 0, observed 3",
                                                   "orders.duplicated: expected <= 1, observed 2"]
    text = failing.result[0].text
    assert "orders.lost: expected == 0, observed 3" in text
    assert "orders.duplicated: expected <= 1, observed 2" in text
    assert "report: reports/20240101-120000/barista-outage.html" in text

    errored = by_key[("broker-restart", "async")]
    assert [type(r) for r in errored.result] == [Error]
    assert errored.result[0].message == "RuntimeError: broker did not start"   # colours, BEL dropped

    old = by_key[("steady", "async")]
    assert [type(r) for r in old.result] == [Failure]
    assert old.result[0].message == "healed: failed"
    assert "healed: failed" in old.result[0].text


def test_junit_inconclusive_is_skipped_naming_the_failed_validity_checks() -> None:
    suite = parsed(junit_xml([PASS, FAIL, ERROR, INCONCLUSIVE], report_dir="reports", run_id="r1"))
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (4, 1, 1, 1)
    case = cases(suite)[("barista-outage", "sync")]
    assert case.is_skipped and not case.is_passed
    assert [type(r) for r in case.result] == [Skipped]
    skipped = case.result[0]
    assert skipped.type == "inconclusive"
    assert skipped.message == ("inconclusive: the run could not test the claim (failed validity checks: "
                               "generator kept up, steady state before the first fault)")
    assert "orders.lost" not in skipped.message                       # an expectation, not why it is invalid
    text = skipped.text
    assert "- generator kept up: expected no arrival dropped, observed {\"dropped\": 4}" in text
    assert "other failed checks (not trusted: the run was not valid):\n- orders.lost: expected <= 0, observed 1" in text
    assert "report: reports/r1/barista-outage.html" in text
    assert "status: inconclusive" in case.system_out
    document = JUnitXml.fromstring(junit_xml([INCONCLUSIVE, INCONCLUSIVE | {"system": "async"}]))
    assert isinstance(document, JUnitXml)
    assert (document.tests, document.failures, document.errors, document.skipped) == (2, 0, 0, 2)


def test_junit_inconclusive_row_without_kinds_lists_its_failed_checks() -> None:
    older = row("steady", "async", status="inconclusive", passed=False, failed_checks=["generator kept up"],
                failures=[])
    case = cases(parsed(junit_xml([older])))[("steady", "async")]
    assert [type(r) for r in case.result] == [Skipped]
    assert case.result[0].message.endswith("(failed validity checks: generator kept up)")
    bare = row("steady", "async", status="inconclusive", passed=False)
    case = cases(parsed(junit_xml([bare])))[("steady", "async")]
    assert case.result[0].message == "inconclusive: the run could not test the claim"
    assert "(none recorded)" in case.result[0].text


def test_junit_suite_totals_and_time() -> None:
    document = JUnitXml.fromstring(junit_xml([PASS, FAIL, row("x", "sync", wall_s=7.25)], suite="smoke"))
    assert isinstance(document, JUnitXml)
    assert (document.tests, document.failures, document.errors) == (3, 1, 0)
    suite = parsed(junit_xml([PASS, FAIL, row("x", "sync", wall_s=7.25)], suite="smoke"))
    assert suite.name == "smoke"
    assert suite.time == 32.25


def test_junit_puts_key_numbers_in_system_out() -> None:
    out = cases(parsed(junit_xml([FAIL])))[("barista-outage", "async")].system_out
    assert "attempted: 100" in out
    assert "accepted: 98" in out
    assert "lost: 3" in out
    assert "duplicated: 2" in out
    assert "acceptance p99 ms: 41.2" in out


def test_junit_without_report_dir_has_no_link() -> None:
    failing = cases(parsed(junit_xml([FAIL], run_id="r1")))[("barista-outage", "async")]
    assert "report:" not in failing.result[0].text


def test_old_style_failed_row_lists_check_names() -> None:
    old_fail = {k: v for k, v in OLD.items()} | {"complete": True, "failed_checks": ["orders.lost", "healed"]}
    failing = cases(parsed(junit_xml([old_fail])))[("steady", "async")]
    assert [r.message for r in failing.result] == ["orders.lost: failed", "healed: failed"]


def test_write_junit_writes_parseable_file(tmp_path: Path) -> None:
    path = write_junit(ROWS, tmp_path / "ci" / "junit.xml", suite="nightly")
    assert path == tmp_path / "ci" / "junit.xml"
    document = JUnitXml.fromfile(str(path))
    assert [s.name for s in document] == ["nightly"]
    assert document.tests == 4


# --- Markdown summary -----------------------------------------------------------------------------

def test_summary_markdown_table_and_counts() -> None:
    text = summary_markdown(ROWS, title="smoke run", report_index="reports/index.html")
    lines = text.splitlines()
    assert lines[0] == "## smoke run"
    assert "4 shop runs: 1 pass, 2 fail, 0 inconclusive, 1 error" in lines
    assert ("| experiment | sync verdict | sync accepted | sync lost | sync dup | sync accept p99 ms "
            "| async verdict | async accepted | async lost | async dup | async accept p99 ms |") in lines
    table = [line for line in lines if line.startswith("| ") and "---" not in line][1:]
    assert [line.split(" | ")[0] for line in table] == ["| steady", "| barista-outage", "| broker-restart"]
    assert "| steady | pass | 98/100 | 0 | 0 | 41.2 | **FAIL** | 50/50 | 0 | 0 | 12.0 |" in lines
    assert "| barista-outage | - | - | - | - | - | **FAIL** | 98/100 | 3 | 2 | 41.2 |" in lines
    assert "- barista-outage / async: orders.lost: expected == 0, observed 3" in lines
    assert "- broker-restart / async: **ERROR** RuntimeError: broker did not start" in lines
    assert "- steady / async: healed: failed" in lines
    assert "Report: [reports/index.html](reports/index.html)" in lines


def test_summary_markdown_shows_inconclusive() -> None:
    lines = summary_markdown([PASS, FAIL, ERROR, INCONCLUSIVE], title="t").splitlines()
    assert "4 shop runs: 1 pass, 1 fail, 1 inconclusive, 1 error" in lines
    assert "| barista-outage | **INCONCLUSIVE** | 98/100 | 1 | 0 | 41.2 | **FAIL** | 98/100 | 3 | 2 | 41.2 |" in lines
    assert "- barista-outage / sync: **INCONCLUSIVE** the run could not test the claim" in lines
    assert "- barista-outage / sync: generator kept up: expected no arrival dropped, observed {\"dropped\": 4}" in lines
    bare = summary_markdown([row("x", "sync", status="inconclusive", passed=False)], title="t").splitlines()
    assert "- x / sync: **INCONCLUSIVE** the run could not test the claim" in bare
    assert not any("no failed check recorded" in line for line in bare)


def test_summary_markdown_escapes_pipes_and_shows_intervals() -> None:
    piped = row("a|b", "sync", intervals={"acceptance_p99_ms": {"mean": 40.0, "ci_low": 35.0, "ci_high": 45.0}},
                repeats=3)
    lines = summary_markdown([piped], title="t").splitlines()
    assert "| a\\|b | pass | 98/100 | 0 | 0 | 40.0 ± 5.0 |" in lines
    assert "### Failures" not in lines
    assert not any(line.startswith("Report:") for line in lines)


def test_append_github_summary(tmp_path: Path) -> None:
    target = tmp_path / "step_summary.md"
    target.write_text("earlier\n")
    assert append_github_summary("## one", {"GITHUB_STEP_SUMMARY": str(target)}) == target
    assert append_github_summary("## two", {"GITHUB_STEP_SUMMARY": str(target)}) == target
    assert target.read_text() == "earlier\n## one\n## two\n"
    assert append_github_summary("## three", {}) is None
    assert append_github_summary("## three", {"GITHUB_STEP_SUMMARY": ""}) is None
    assert target.read_text() == "earlier\n## one\n## two\n"


# --- compare --------------------------------------------------------------------------------------

CHANGES = [
    Change("steady", "sync", "latency_ms.acceptance.p99", 40.0, 41.0, "same", "x10, floor 1000"),
    Change("steady", "sync", "throughput.accepted_per_s", 10.0, 30.0, "improved", "/3, floor 2"),
    Change("steady", "async", "orders.lost", 0, 2, "regression", "exact where expected 0"),
    Change("outage", "async", "results", "present", "missing", "missing", "not run this time"),
    Change("outage", "sync", "availability.overall", 0.9, 0.95, "same", "-0.2"),
]


def test_compare_markdown_lists_regressions_first() -> None:
    lines = compare_markdown(CHANGES, baseline="baselines/smoke", current="reports/runs/r1").splitlines()
    assert lines[0] == "## Compare: reports/runs/r1 against baselines/smoke"
    assert "2 regression(s) in 4 shop runs" in lines
    rows = [line for line in lines if line.startswith("| ") and "---" not in line]
    assert rows[0] == "| experiment | shop | metric | baseline | current | status | rule |"
    assert [r.split(" | ")[2] for r in rows[1:]] == ["orders.lost", "results", "throughput.accepted_per_s"]
    assert "| steady | async | orders.lost | 0 | 2 | **regression** | exact where expected 0 |" in rows


def test_compare_markdown_show_all_and_no_regression() -> None:
    calm = [c for c in CHANGES if c.status in ("same", "improved")]
    lines = compare_markdown(calm, baseline="b", current="c", show_all=True).splitlines()
    assert "no regression in 2 shop runs" in lines
    assert len([line for line in lines if line.startswith("| steady") or line.startswith("| outage")]) == 3
    quiet = compare_markdown([CHANGES[0]], baseline="b", current="c").splitlines()
    assert "no regression in 1 shop runs" in quiet
    assert not any(line.startswith("| steady") for line in quiet)


def test_compare_json_counts() -> None:
    data = json.loads(compare_json(CHANGES, baseline="b", current="c"))
    assert (data["baseline"], data["current"]) == ("b", "c")
    assert data["regressions"] == 2
    assert data["shop_runs"] == 4
    assert len(data["changes"]) == 5
    assert data["changes"][2] == {"experiment": "steady", "system": "async", "metric": "orders.lost",
                                  "baseline": 0, "current": 2, "status": "regression",
                                  "rule": "exact where expected 0", "room_used": None}
    assert data["near_misses"] == 0


def test_compare_markdown_lists_the_near_misses_closest_first() -> None:
    close = [Change("late-comer", "sync-resilient", "latency_ms.acceptance.p50", 8.4, 204.0, "same",
                    "x5, floor 200", 0.98),
             Change("steady", "async", "availability.overall", 1.0, 0.88, "same", "-0.2", 0.6),
             Change("steady", "sync", "availability.overall", 1.0, 0.95, "same", "-0.2", 0.25)]
    lines = compare_markdown(close, baseline="b", current="c").splitlines()
    assert "Near misses (2 metric(s) used over 50% of their rule's room; the closest):" in lines
    listed = [line for line in lines if line.startswith("- ")]
    assert listed == ["- late-comer / sync-resilient latency_ms.acceptance.p50: 204 against 8.4, 98% of the room "
                      "(x5, floor 200)",
                      "- steady / async availability.overall: 0.88 against 1, 60% of the room (-0.2)"]
    assert json.loads(compare_json(close, baseline="b", current="c"))["near_misses"] == 2


def test_module_imports_no_infrastructure() -> None:
    code = ("import sys, harness.report.ci_output; "
            "print([m for m in sys.modules if m.startswith(('harness.infra', 'harness.nemesis', 'harness.shops.base', 'harness.shops.sync_shop', 'harness.shops.async_shop'))])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_junit_of_an_interrupted_set_has_an_error_case_so_ci_is_not_green() -> None:
    document = JUnitXml.fromstring(junit_xml([PASS], interrupted=True))
    suite = parsed(junit_xml([PASS], interrupted=True))
    assert document.errors == suite.errors == 1 and document.tests == 2
    (case,) = [c for c in suite if c.name == "interrupted"]
    assert case.classname == "chaoscafe" and "interrupted (Ctrl-C) after 1 finished" in case.result[0].message
    assert parsed(junit_xml([PASS])).errors == 0      # a set that finished has no such case


NOT_APPLICABLE = row("broker-partition", "sync", status="not-applicable", passed=False, attempted=None,
                     accepted=None, lost=None, duplicated=None, acceptance_p99_ms=None,
                     not_applicable="the sync shop has no broker")


def test_a_not_applicable_row_is_skipped_saying_why_and_is_no_failure() -> None:
    suite = parsed(junit_xml([PASS, NOT_APPLICABLE]))
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (2, 0, 0, 1)
    case = cases(suite)[("broker-partition", "sync")]
    assert [type(r) for r in case.result] == [Skipped]
    assert case.result[0].type == "not-applicable"
    assert case.result[0].message == "not applicable: the sync shop has no broker"
    markdown = summary_markdown([PASS, NOT_APPLICABLE], title="t")
    assert "2 shop runs: 1 pass, 0 fail, 0 inconclusive, 0 error, 1 not applicable" in markdown
    assert "| not applicable |" in markdown
    assert "### Failures" not in markdown
