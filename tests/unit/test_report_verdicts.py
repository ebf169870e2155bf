"""The report's four verdicts: pass, FAIL, INCONCLUSIVE, ERROR on the index and the experiment page,
each check's kind, and the error of a shop run that raised. The hand-built run's results.json files
are rewritten with the status and checks under test."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_report_support import EXPERIMENT, RUN_ID, build_run

from harness.report import write_report
from harness.report.analysis import ShopRun
from harness.report.assets import REPORT_CSS
from harness.report.html import verdict

VALIDITY_FAILED = [
    {"name": "orders.lost", "kind": "expectation", "expected": "<= 0", "observed": 1, "passed": False},
    {"name": "healed", "kind": "invariant", "expected": "no toxic left", "observed": {"healed": True}, "passed": True},
    {"name": "generator kept up", "kind": "validity", "expected": "no arrival dropped", "observed": {"dropped": 3},
     "passed": False},
]
RAISED = [{"name": "run completed", "kind": "validity", "expected": "finishes", "observed": "RuntimeError: x",
           "passed": False}]


def shop(**results: Any) -> ShopRun:
    return ShopRun("e", "sync", Path("."), results, [])


@pytest.mark.parametrize(("results", "expected"), [
    ({"status": "pass", "passed": True}, ("pass", "pass")),
    ({"status": "fail", "passed": False}, ("fail", "FAIL")),
    ({"status": "inconclusive", "passed": False}, ("inconclusive", "INCONCLUSIVE")),
    ({"status": "error", "passed": False, "complete": False, "error": "boom"}, ("error", "ERROR")),
    ({"passed": True, "complete": True}, ("pass", "pass")),                               # older files
    ({"passed": False, "complete": True}, ("fail", "FAIL")),
    ({"passed": False, "complete": False, "error": "boom"}, ("error", "ERROR")),
    ({"passed": False, "complete": False}, ("fail", "FAIL")),
])
def test_verdict_class_and_word(results: dict[str, Any], expected: tuple[str, str]) -> None:
    assert verdict(shop(**results)) == expected
    assert verdict(None) == ("unknown", "not run")


def test_stylesheet_has_a_class_per_status() -> None:
    for css in (".pass", ".fail", ".inconclusive", ".error", ".run-error"):
        assert css + " {" in REPORT_CSS, css


def rewrite(run_dir: Path, system: str, **over: Any) -> None:
    path = run_dir / EXPERIMENT / system / "results.json"
    results = json.loads(path.read_text())
    results.update(over)
    path.write_text(json.dumps(results))


@pytest.fixture
def pages(tmp_path: Path) -> tuple[str, str]:
    run_dir = build_run(tmp_path / "reports")
    rewrite(run_dir, "sync", status="inconclusive", passed=False, checks=VALIDITY_FAILED)
    rewrite(run_dir, "async", status="error", passed=False, complete=False,
            error="RuntimeError: broker <did not> start", checks=RAISED)
    out = tmp_path / "out"
    write_report(run_dir, out)
    return (out / "index.html").read_text(), (out / RUN_ID / f"{EXPERIMENT}.html").read_text()


def test_index_counts_and_badges_every_status(pages: tuple[str, str]) -> None:
    index, _ = pages
    assert ("of 2 experiment runs, 0 passed every check, 0 failed, 1 were inconclusive (the run could not "
            "test the claim), 1 errored.") in index
    assert index.count('class="badge inconclusive">INCONCLUSIVE<') == 1
    assert index.count('class="badge error">ERROR<') == 1
    assert "on <b>sync</b> it could not be tested (inconclusive: generator kept up)" in index
    assert "on <b>async</b> it could not be judged (ERROR: the shop run raised)" in index
    assert "did not hold" not in index


def test_experiment_page_shows_kinds_validity_badge_and_the_error(pages: tuple[str, str]) -> None:
    _, page = pages
    assert "<th>result</th><th>kind</th>" in page
    assert ('<td>orders.lost</td><td>&lt;= 0</td><td>1</td><td><span class="badge fail">FAIL</span></td>'
            "<td>expectation</td>") in page
    assert '<span class="badge pass">pass</span></td><td>invariant</td>' in page
    assert ('<td>generator kept up</td><td>no arrival dropped</td><td>{&quot;dropped&quot;: 3}</td>'
            '<td><span class="badge inconclusive">INCONCLUSIVE</span></td><td>validity</td>') in page
    verdict_line = page[page.index("<p>Verdict:"):page.index('<p class="desc">')]
    assert 'sync <span class="badge inconclusive">INCONCLUSIVE</span>' in verdict_line
    assert 'async <span class="badge error">ERROR</span>' in verdict_line
    assert ('<p class="run-error"><b>async: the shop run raised</b> RuntimeError: broker &lt;did not&gt; start</p>'
            in verdict_line)


def test_a_check_without_kind_is_shown_as_an_expectation(tmp_path: Path) -> None:
    run_dir = build_run(tmp_path / "reports")
    old = [{"name": "orders.lost", "expected": "<= 0", "observed": 1, "passed": False}]
    rewrite(run_dir, "sync", checks=old, passed=False)
    for system in ("sync", "async"):   # an older file: no status, no kinds
        path = run_dir / EXPERIMENT / system / "results.json"
        results = json.loads(path.read_text())
        results.pop("status", None)
        path.write_text(json.dumps(results))
    write_report(run_dir, tmp_path / "out")
    page = (tmp_path / "out" / RUN_ID / f"{EXPERIMENT}.html").read_text()
    assert '<span class="badge fail">FAIL</span></td><td>expectation</td>' in page
    assert '"run-error"' not in page
