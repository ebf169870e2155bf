"""Repeated runs in the report: intervals shown, and significance marked only for disjoint intervals."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from test_report_support import EXPERIMENT, build_run

from harness.experiment import repeats
from harness.report import write_report


def add_repeats(run_dir: Path, p99s: dict[str, list[float]]) -> None:
    """Fold fake repetitions (the shop's results with other acceptance p99s) into each results.json."""
    for system, values in p99s.items():
        path = run_dir / EXPERIMENT / system / "results.json"
        primary = json.loads(path.read_text())
        runs = []
        for i, p99 in enumerate(values):
            run = json.loads(json.dumps(primary))
            run["seed"] = primary["seed"] + i
            run["latency_ms"]["acceptance"]["p99"] = p99
            runs.append(run)
        path.write_text(json.dumps(repeats.fold(primary, runs)))


def marked(index: str, label: str) -> int:
    """How many index cells mark `label` significant."""
    return len(re.findall(rf"<dt>{label}</dt><dd>[^<]*<span class=\"badge sig\"", index))


def test_disjoint_intervals_are_marked_significant(tmp_path: Path) -> None:
    run_dir = build_run(tmp_path / "reports")
    add_repeats(run_dir, {"sync": [900.0, 1000.0, 1100.0], "async": [20.0, 22.0, 24.0]})
    out = tmp_path / "out"
    write_report(run_dir, out)
    index = (out / "index.html").read_text()
    assert index.count("mean ± 95% CI over 3 runs") == 2
    # acceptance p99 differs (disjoint) in both cells. The hand-built shops lost 0 and 1 order in
    # every repetition: zero-width intervals that differ, so that is significant too, on both sides
    assert marked(index, "acceptance p99 ms") == 2
    assert marked(index, "lost") == 2
    assert "1,000 ± 248" in index      # 1000 ± 4.303 * 100 / sqrt(3)
    page = next(p for p in (out / run_dir.name).glob("*.html") if p.name != "index.html").read_text()
    assert "Repetitions: mean and 95% confidence interval" in page
    assert '<tr class="sig"><td>latency_ms.acceptance.p99</td>' in page
    assert '<tr class="sig"><td>orders.attempted</td>' not in page   # equal in both shops


def test_with_three_shops_each_pair_is_marked_on_its_own(tmp_path: Path) -> None:
    run_dir = build_run(tmp_path / "reports")
    shutil.copytree(run_dir / EXPERIMENT / "sync", run_dir / EXPERIMENT / "sync-resilient")
    copied = run_dir / EXPERIMENT / "sync-resilient" / "results.json"
    copied.write_text(json.dumps({**json.loads(copied.read_text()), "system": "sync-resilient"}))
    summary = json.loads((run_dir / "summary.json").read_text())
    (run_dir / "summary.json").write_text(json.dumps([*summary, {**summary[0], "system": "sync-resilient"}]))
    # sync and sync-resilient overlap; each differs from async
    add_repeats(run_dir, {"sync": [900.0, 1000.0, 1100.0], "sync-resilient": [950.0, 1050.0, 1150.0],
                          "async": [20.0, 22.0, 24.0]})
    out = tmp_path / "out"
    write_report(run_dir, out)
    page = next(p for p in (out / run_dir.name).glob("*.html") if p.name != "index.html").read_text()
    row = re.search(r'<tr class="sig"><td>latency_ms\.acceptance\.p99</td>.*?</tr>', page)
    assert row is not None
    assert row.group(0).endswith("<td>sync ≠ async, async ≠ sync-resilient</td></tr>")   # not sync ≠ sync-resilient
    assert marked((out / "index.html").read_text(), "acceptance p99 ms") == 3   # each shop differs from another


def test_overlapping_intervals_are_not_significant(tmp_path: Path) -> None:
    run_dir = build_run(tmp_path / "reports")
    add_repeats(run_dir, {"sync": [10.0, 30.0, 50.0], "async": [20.0, 40.0, 60.0]})
    out = tmp_path / "out"
    write_report(run_dir, out)
    index = (out / "index.html").read_text()
    assert marked(index, "acceptance p99 ms") == 0
    assert marked(index, "lost") == 2


def test_single_runs_show_no_interval(tmp_path: Path) -> None:
    run_dir = build_run(tmp_path / "reports")
    out = tmp_path / "out"
    write_report(run_dir, out)
    index = (out / "index.html").read_text()
    assert "95% CI" not in index
