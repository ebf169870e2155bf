"""What CI understands, from a run's summary rows and a compare result: JUnit XML (test reports),
GitHub-flavoured Markdown (the job summary), and a compare result as Markdown or JSON.

A summary row is one experiment on one shop (`runs.summarise`): experiment, system, passed,
complete, the ledger and latency numbers, failed_checks, repeats, intervals; newer rows also carry
status ("pass" | "fail" | "inconclusive" | "error" | "not-applicable"), error (why the shop run
errored), not_applicable (why it was not run), wall_s and
failures ([{name, expected, observed, kind}]). Older rows without `status` get one from
`harness.experiment.verdicts.status_of` (passed is "pass", an incomplete run with an error is "error",
anything else is "fail"); a failure without `kind` is an expectation.

An inconclusive run (the run could not test its claim) is neither a failure nor an error: in
JUnit it is a skipped test case whose message names the failed validity checks. A not-applicable
run (nothing of the experiment applies to the shop) is a skipped test case whose message says why.

Pure: every function returns text, except `write_junit` and `append_github_summary`, which write
exactly the file they are given (or named by GITHUB_STEP_SUMMARY).
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

from harness.experiment import verdicts
from harness.regression.compare import NEAR_MISS, Change, near_misses, regressions

Row = Mapping[str, Any]
RunStatus = Literal["pass", "fail", "inconclusive", "error", "not-applicable"]

_VERDICT = {"pass": "pass", "fail": "**FAIL**", "inconclusive": "**INCONCLUSIVE**", "error": "**ERROR**",
            "not-applicable": "not applicable"}
_SHOP_COLUMNS = ("verdict", "accepted", "lost", "dup", "accept p99 ms")
# terminal colour codes (an error message captured from a console), then what XML 1.0 cannot carry
_ANSI = re.compile("\x1b\\[[0-9;]*[A-Za-z]")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def status(row: Row) -> RunStatus:
    """The row's status: `harness.experiment.verdicts.status_of` (given, or derived for older rows)."""
    return verdicts.status_of(row)  # type: ignore[return-value]


def failure_lines(row: Row, *, kind: str | None = None) -> list[str]:
    """One line per failed check, "name: expected X, observed Y" where the row has the details
    (`failures`), just "name: failed" where it has only the name (`failed_checks`). With `kind`,
    only the failed checks of that kind (a check without details or kind is an expectation)."""
    details = {f.get("name"): f for f in row.get("failures") or []}
    names = list(row.get("failed_checks") or [])
    names += [name for name in details if name not in names]
    if kind is not None:
        names = [name for name in names if verdicts.kind_of(details.get(name) or {}) == kind]
    lines = []
    for name in names:
        detail = details.get(name)
        if detail is None:
            lines.append(f"{name}: failed")
        else:
            lines.append(f"{name}: expected {detail.get('expected')}, observed {_value(detail.get('observed'))}")
    return lines


# --- JUnit ---------------------------------------------------------------------------------------

def junit_xml(rows: Iterable[Row], *, suite: str = "chaoscafe", report_dir: str | None = None,
              run_id: str | None = None, interrupted: bool = False) -> str:
    """One <testsuite> (inside <testsuites>) with one <testcase> per row: classname = experiment,
    name = system, time = wall_s. A failed row has one <failure> per failed check (message
    "name: expected X, observed Y"; text: every failed check and, given report_dir and run_id, the
    link `{report_dir}/{run_id}/{experiment}.html`); an errored row has one <error> carrying its
    error; an inconclusive row has one <skipped> whose message names the failed validity checks
    (text: those and any other failed check, not to be trusted from an invalid run); a
    not-applicable row one <skipped> whose message says why; a passing row
    has none of these. The key numbers go to <system-out>. The suite's `failures`, `errors` and
    `skipped` count test cases (the JUnit meaning), not <failure> elements. An `interrupted` set
    (Ctrl-C) adds one test case `interrupted` (classname chaoscafe) with an <error>, so a CI that
    reads only this file does not show a set that never finished as green."""
    rows = list(rows)
    junit_suite = TestSuite(_xml(suite))
    if run_id is not None:
        junit_suite.add_property("run_id", _xml(run_id))
    if report_dir is not None:
        junit_suite.add_property("report_dir", _xml(report_dir))
    for row in rows:
        junit_suite.add_testcase(_testcase(row, report_dir=report_dir, run_id=run_id))
    if interrupted:
        junit_suite.add_property("interrupted", "true")
        case = TestCase("interrupted", "chaoscafe")
        case.result = [Error(f"the set was interrupted (Ctrl-C) after {len(rows)} finished shop run(s); "
                             "the others did not run", "interrupted")]
        junit_suite.add_testcase(case)
    document = JUnitXml()
    document.add_testsuite(junit_suite)
    document.update_statistics()   # tests and time; junitparser counts <failure> elements, so:
    states = [status(row) for row in rows]
    for counted in (junit_suite, document):
        counted.failures = states.count("fail")
        counted.errors = states.count("error") + int(interrupted)
        counted.skipped = states.count("inconclusive") + states.count("not-applicable")
    return '<?xml version="1.0" encoding="utf-8"?>\n' + document.tostring().decode("utf-8") + "\n"


def write_junit(rows: Iterable[Row], path: Path | str, **kw: Any) -> Path:
    """Write `junit_xml(rows, **kw)` to `path` (parents created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(junit_xml(rows, **kw), encoding="utf-8")
    return path


def _testcase(row: Row, *, report_dir: str | None, run_id: str | None) -> TestCase:
    case = TestCase(_xml(str(row["system"])), _xml(str(row["experiment"])))
    if row.get("wall_s") is not None:
        case.time = round(float(row["wall_s"]), 3)
    state = status(row)
    lines = failure_lines(row)
    link = f"{report_dir}/{run_id}/{row['experiment']}.html" if report_dir and run_id else None
    if state == "fail":
        body = _body(["failed checks:", *(f"- {line}" for line in lines or ["(none recorded)"])], link)
        case.result = [_failure(line, body) for line in lines or [f"{row['experiment']} / {row['system']}: failed"]]
    elif state == "error":
        message = row.get("error") or "the run did not complete"
        error = Error(_xml(str(message)), "error")
        error.text = _body([str(message), *(["failed checks:"] if lines else []), *(f"- {line}" for line in lines)],
                           link)
        case.result = [error]
    elif state == "inconclusive":
        case.result = [_skipped(row, link)]
    elif state == "not-applicable":
        case.result = [Skipped(_xml(f"not applicable: {row.get('not_applicable') or 'nothing of it applies'}"),
                               "not-applicable")]
    case.system_out = _xml(_key_numbers(row))
    return case


def _failure(message: str, text: str) -> Failure:
    failure = Failure(_xml(message), "check")
    failure.text = text
    return failure


def _skipped(row: Row, link: str | None) -> Skipped:
    """The <skipped> of an inconclusive row: the message names the failed validity checks (every
    failed check when the row does not say which are validity checks)."""
    invalid = failure_lines(row, kind="validity")
    others = [line for line in failure_lines(row) if line not in invalid]
    if not invalid and not any(f.get("kind") for f in row.get("failures") or []):
        invalid, others = others, []   # an older row: which checks are validity checks is unknown
    names = [line.split(": ", 1)[0] for line in invalid]
    message = ("inconclusive: the run could not test the claim"
               + (f" (failed validity checks: {', '.join(names)})" if names else ""))
    skipped = Skipped(_xml(message), "inconclusive")
    skipped.text = _body(["failed validity checks:", *(f"- {line}" for line in invalid or ["(none recorded)"]),
                          *(["other failed checks (not trusted: the run was not valid):"] if others else []),
                          *(f"- {line}" for line in others)], link)
    return skipped


def _body(lines: list[str], link: str | None) -> str:
    return _xml("\n".join([*lines, *([f"report: {link}"] if link else [])]))


def _key_numbers(row: Row) -> str:
    numbers = [f"status: {status(row)}",
               f"attempted: {_value(row.get('attempted'))}", f"accepted: {_value(row.get('accepted'))}",
               f"lost: {_value(row.get('lost'))}", f"duplicated: {_value(row.get('duplicated'))}",
               f"acceptance p99 ms: {_p99(row, 'acceptance_p99_ms')}",
               f"fulfilment p99 ms: {_p99(row, 'fulfilment_p99_ms')}",
               f"availability: {_value(row.get('availability'))}"]
    if (row.get("repeats") or 1) > 1:
        numbers.append(f"repeats: {row['repeats']} (p99s: mean ± 95% CI half-width)")
    return "\n".join(numbers)


def _xml(text: str) -> str:
    """`text` without terminal colour codes and characters XML 1.0 cannot hold."""
    return _NOT_XML.sub("", _ANSI.sub("", text))


# --- Markdown summary ----------------------------------------------------------------------------

def summary_markdown(rows: Iterable[Row], *, title: str, report_index: str | None = None) -> str:
    """A GitHub-flavoured Markdown summary: heading, counts line ("N shop runs: p pass, f fail,
    i inconclusive, e error"), a table with one row per experiment and, per shop (in order of first appearance),
    verdict, accepted/attempted, lost, dup and acceptance p99; then every failed check and error,
    and the report link when `report_index` is given. `|` in cells is escaped."""
    rows = list(rows)
    states = [status(row) for row in rows]
    shops = list(dict.fromkeys(str(row["system"]) for row in rows))
    experiments = list(dict.fromkeys(str(row["experiment"]) for row in rows))
    by_key = {(str(row["experiment"]), str(row["system"])): row for row in rows}
    out = [f"## {title}", "",
           f"{len(rows)} shop runs: {states.count('pass')} pass, {states.count('fail')} fail, "
           f"{states.count('inconclusive')} inconclusive, {states.count('error')} error"
           + (f", {states.count('not-applicable')} not applicable" if "not-applicable" in states else ""), ""]
    if rows:
        header = ["experiment", *(f"{shop} {column}" for shop in shops for column in _SHOP_COLUMNS)]
        out.append(_table_row(header))
        out.append(_table_row(["---"] + ["---:" if c != "verdict" else "---" for _ in shops for c in _SHOP_COLUMNS]))
        for experiment in experiments:
            cells = [experiment]
            for shop in shops:
                row = by_key.get((experiment, shop))
                cells += _shop_cells(row) if row is not None else ["-"] * len(_SHOP_COLUMNS)
            out.append(_table_row(cells))
        out.append("")
    problems = [(row, state) for row, state in zip(rows, states, strict=True)
                if state not in ("pass", "not-applicable")]
    if problems:
        out += ["### Failures", ""]
        for row, state in problems:
            where = f"{row['experiment']} / {row['system']}"
            if state == "error":
                out.append(f"- {where}: **ERROR** {_xml(str(row.get('error') or 'the run did not complete'))}")
            elif state == "inconclusive":
                out.append(f"- {where}: **INCONCLUSIVE** the run could not test the claim")
            for line in failure_lines(row) or ([] if state != "fail" else ["failed (no failed check recorded)"]):
                out.append(f"- {where}: {line}")
        out.append("")
    if report_index:
        out += [f"Report: [{report_index}]({report_index})", ""]
    return "\n".join(out)


def append_github_summary(markdown: str, environ: Mapping[str, str] = os.environ) -> Path | None:
    """Append `markdown` and a newline to the file named by GITHUB_STEP_SUMMARY and return its
    path; None (and nothing written) when the variable is unset or empty."""
    name = environ.get("GITHUB_STEP_SUMMARY")
    if not name:
        return None
    path = Path(name)
    with path.open("a", encoding="utf-8") as summary:
        summary.write(markdown + "\n")
    return path


def _shop_cells(row: Row) -> list[str]:
    return [_VERDICT[status(row)], f"{_value(row.get('accepted'))}/{_value(row.get('attempted'))}",
            _value(row.get("lost")), _value(row.get("duplicated")), _p99(row, "acceptance_p99_ms")]


def _table_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _p99(row: Row, key: str) -> str:
    """The p99, or mean ± 95% CI half-width when the run was repeated (as the CLI's table shows it)."""
    interval = (row.get("intervals") or {}).get(key)
    if interval:
        return f"{interval['mean']:.1f} ± {(interval['ci_high'] - interval['ci_low']) / 2:.1f}"
    value = row.get(key)
    return "-" if value is None else f"{float(value):.1f}"


def _value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=str, separators=(", ", ": "))
    return str(value)


# --- compare -------------------------------------------------------------------------------------

def compare_markdown(changes: Iterable[Change], *, baseline: str, current: str, show_all: bool = False) -> str:
    """A heading, the verdict ("no regression in N shop runs" / "K regression(s) in N shop runs",
    a regression being what `compare.regressions` counts, missing results included; then how many
    timing metrics were "noisy", not judged), and a table of the changes other than "same" (every
    change with `show_all`), regressions first."""
    changes = list(changes)
    bad = regressions(changes)
    runs = _shop_runs(changes)
    verdict = (f"no regression in {runs} shop runs" if not bad
               else f"{len(bad)} regression(s) in {runs} shop runs")
    if noisy := sum(c.status == "noisy" for c in changes):
        verdict += f"; {noisy} timing metric(s) not judged (their runs' host stole too much CPU)"
    shown = [c for c in changes if show_all or c.status != "same"]
    shown = [c for c in shown if c in bad] + [c for c in shown if c not in bad]
    out = [f"## Compare: {current} against {baseline}", "", verdict, ""]
    if close := near_misses(changes):
        out.append(f"Near misses ({len(close)} metric(s) used over {NEAR_MISS:.0%} of their rule's room; "
                   "the closest):")
        out += [f"- {line}" for line in near_miss_lines(close)] + [""]
    if shown:
        out.append(_table_row(["experiment", "shop", "metric", "baseline", "current", "status", "rule"]))
        out.append(_table_row(["---"] * 7))
        for c in shown:
            flagged = f"**{c.status}**" if c in bad else c.status
            out.append(_table_row([c.experiment, c.system, c.metric, _value(c.baseline), _value(c.current),
                                   flagged, c.rule]))
    else:
        out.append("Nothing changed beyond the tolerances.")
    out.append("")
    return "\n".join(out)


def near_miss_lines(close: Sequence[Change], limit: int = 5) -> list[str]:
    """One line per near miss (`compare.near_misses`), at most `limit`: where, the values, the share
    of the room used and the rule."""
    return [f"{c.experiment} / {c.system} {c.metric}: {_value(c.current)} against {_value(c.baseline)}, "
            f"{c.room_used or 0:.0%} of the room ({c.rule})" for c in close[:limit]]


def compare_json(changes: Iterable[Change], *, baseline: str, current: str) -> str:
    """A JSON object: baseline, current, regressions (count), shop_runs (distinct experiment/shop
    pairs), near_misses (count: `compare.near_misses`) and changes (every change,
    `Change.to_dict()` with its `room_used`, in the given order)."""
    changes = list(changes)
    return json.dumps({"baseline": baseline, "current": current, "regressions": len(regressions(changes)),
                       "shop_runs": _shop_runs(changes), "near_misses": len(near_misses(changes)),
                       "changes": [c.to_dict() for c in changes]},
                      indent=2, default=str)


def _shop_runs(changes: Sequence[Change]) -> int:
    return len({(c.experiment, c.system) for c in changes})
