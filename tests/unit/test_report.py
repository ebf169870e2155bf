"""The report: analysis frames on hand-built histories, and the HTML pages of a hand-built run."""
from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from test_report_support import EXPERIMENT, RUN_ID, T0, build_run, history

from harness.report import latest_run_dir, write_report
from harness.report.analysis import load_run, orders_frame, timeline_frame
from harness.report.svg import nice_ticks


def svgs(html: str) -> list[str]:
    """Every top-level <svg> element of a page (nested plot areas stay inside their chart)."""
    found, depth, start = [], 0, 0
    for match in re.finditer(r"<svg\b|</svg>", html):
        if match.group() == "</svg>":
            depth -= 1
            if depth == 0:
                found.append(html[start:match.end()])
        else:
            if depth == 0:
                start = match.start()
            depth += 1
    return found


@pytest.fixture
def report(tmp_path: Path) -> tuple[Path, Path]:
    run_dir = build_run(tmp_path / "reports")
    out = tmp_path / "out"
    write_report(run_dir, out)
    return run_dir, out


# --- analysis --------------------------------------------------------------------------------------------


def test_orders_frame_one_row_per_order_with_outcomes_and_times() -> None:
    frame = orders_frame(history("async")).set_index("ref")
    assert list(frame.index) == [str(i) for i in range(6)]
    assert set(frame.outcome) == {"ok"}
    assert frame.loc["1", "servings"] == 2 and frame.loc["0", "servings"] == 1
    assert frame.loc["5", "servings"] == 0 and frame.loc["5", "brews"] == 1
    assert math.isnan(frame.loc["5", "fulfilment_ms"])  # lost: never served
    assert frame.loc["0", "intended_s"] == pytest.approx(0.5)
    assert frame.loc["0", "acceptance_ms"] == pytest.approx(20.0)
    assert frame.loc["0", "fulfilment_ms"] == pytest.approx(400.0)
    assert frame.loc["2", "fulfilment_ms"] == pytest.approx(2900.0)
    assert frame.loc["0", "lag_ms"] == pytest.approx(1.0)
    assert frame.loc["0", "status"] == 202 and frame.loc["0", "barista"] == "barista-1"


def test_orders_frame_unknown_outcomes_and_unexpected_records() -> None:
    records = history("sync") + [{"type": "served", "ref": None, "order_id": "stray", "time": T0 + 1}]
    frame = orders_frame(records).set_index("ref")
    assert frame.loc["2", "outcome"] == "info" and frame.loc["2", "status"] == 503
    assert math.isnan(frame.loc["2", "acceptance_ms"]) and frame.loc["2", "response_ms"] == pytest.approx(50.0)
    assert frame.loc["order:stray", "outcome"] == "none" and frame.loc["order:stray", "servings"] == 1


def test_timeline_counts_per_second_and_latency_percentiles() -> None:
    frame = timeline_frame(history("sync"))
    assert list(frame.t) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert list(frame.sent) == [1, 1, 1, 1, 1, 1, 0]
    assert list(frame.accepted) == [1, 1, 0, 0, 1, 1, 0]
    assert list(frame.unknown) == [0, 0, 1, 1, 0, 0, 0]
    assert list(frame.served) == [1, 1, 0, 0, 1, 1, 0]
    assert list(frame.in_fault) == [False, False, True, True, False, False, False]
    assert frame.acceptance_p50[0] == pytest.approx(20.0, rel=1e-3)
    assert frame.fulfilment_p99[4] == pytest.approx(400.0, rel=1e-3)
    assert frame.acceptance_p50[2] is None or math.isnan(frame.acceptance_p50[2])
    assert frame.backlog[3] == 0 and math.isnan(frame.backlog[6])


def test_timeline_percentiles_equal_the_latency_checker(report: tuple[Path, Path]) -> None:
    run = load_run(report[0])
    for shop in run.shops:
        over_time = shop.results["latency_ms"]["over_time"]
        frame = shop.timeline()
        for bucket, row in zip(over_time, frame.itertuples(), strict=True):
            for key in ("acceptance_p99", "fulfilment_p50"):
                ours = getattr(row, key)
                assert (bucket[key] is None and (ours is None or math.isnan(ours))) or ours == bucket[key]


def test_load_run_orders_shops_and_exports_csv(report: tuple[Path, Path]) -> None:
    run_dir, _ = report
    run = load_run(run_dir)
    assert [(s.experiment, s.system) for s in run.shops] == [(EXPERIMENT, "sync"), (EXPERIMENT, "async")]
    for system in ("sync", "async"):
        orders = (run_dir / EXPERIMENT / system / "orders.csv").read_text().splitlines()
        assert orders[0].startswith("ref,outcome,") and len(orders) == 7
        assert (run_dir / EXPERIMENT / system / "timeline.csv").read_text().startswith("t,sent,accepted")


def test_load_run_refuses_an_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_run(tmp_path)


# --- pages -----------------------------------------------------------------------------------------------


def test_index_has_the_matrix_verdicts_numbers_and_claims(report: tuple[Path, Path]) -> None:
    _, out = report
    index = (out / "index.html").read_text()
    assert f'href="{RUN_ID}/{EXPERIMENT}.html"' in index
    assert index.index(">sync<") < index.index(">async<")           # side by side, sync first
    assert index.count('class="badge pass">pass<') == 1 and index.count('class="badge fail">FAIL<') == 1
    assert "0.0%" in index and "100.0%" in index                     # availability in faults
    assert "<dt>lost</dt><dd>1</dd>" in index and "<dt>duplicated</dt><dd>1</dd>" in index
    assert "The async shop keeps taking orders while the barista is out." in index
    assert "on <b>sync</b> it held" in index and "on <b>async</b> it did not hold (failed: orders.lost" in index
    assert (out / RUN_ID / "index.html").is_file()


def test_experiment_page_sections_numbers_and_fault_shading(report: tuple[Path, Path]) -> None:
    _, out = report
    page = (out / RUN_ID / f"{EXPERIMENT}.html").read_text()
    for heading in ("Configuration", "Fault schedule", "Over time", "Latency distribution", "The ledger",
                    "Checks: expected vs observed", "Event flow", "All metrics side by side", "Load generator lag",
                    "Provenance"):
        assert f"<h2>{heading}" in page, heading
    assert "1 of 13 shared settings differ" in page and '<tr class="diff"><td>shop settings.capacity' in page
    assert "not applicable: the sync shop has no waiter" in page and "2–4 s" in page
    assert page.count('<rect class="band" x=') >= 10                # every time chart shades the window
    assert "kill barista: 2–4 s" in page
    assert "deadbeef" in page and "testhost" in page                 # provenance from results.json
    assert "<td>host CPU steal (share, load and drain)</td><td>0.261<" in page   # the machine it had
    assert "a lost order (accepted, never served)" in page and "served the coffee again" not in page
    assert "Order service" in page and "Waiter" in page and "Cashier" in page
    assert '<td>orders.lost</td><td>&lt;= 0.0</td><td>1</td><td><span class="badge fail">FAIL' in page


def test_every_svg_is_valid_xml_with_tooltips(report: tuple[Path, Path]) -> None:
    _, out = report
    page = (out / RUN_ID / f"{EXPERIMENT}.html").read_text()
    charts = svgs(page)
    assert len(charts) >= 14
    kinds = set()
    for chart in charts:
        root = ET.fromstring(chart)
        kinds.add(root.get("class"))
        assert root.find("{http://www.w3.org/2000/svg}title") is not None
    assert kinds == {"chart time-chart", "chart percentile-chart", "chart flow"}
    assert "0–1 s: sent 1, accepted 1, served 1, refused 0, unknown 0" in page


def test_assets_written_once_and_referenced_by_every_page(report: tuple[Path, Path]) -> None:
    _, out = report
    assert sorted(p.name for p in (out / "assets").iterdir()) == ["report.css", "report.js"]
    assert [p.name for p in out.rglob("report.js")] == ["report.js"]
    pages = list(out.rglob("*.html"))
    assert len(pages) == 3
    for page in pages:
        text = page.read_text()
        prefix = "assets" if page.parent == out else "../assets"
        assert f'src="{prefix}/report.js"' in text and f'href="{prefix}/report.css"' in text
        assert "<script>" not in text and "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_page_size_stays_small(report: tuple[Path, Path]) -> None:
    _, out = report
    assert (out / RUN_ID / f"{EXPERIMENT}.html").stat().st_size < 300_000


def test_latest_run_dir_is_the_newest(tmp_path: Path) -> None:
    import os

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    os.utime(tmp_path / "a", (2_000_000_000, 2_000_000_000))
    assert latest_run_dir(tmp_path) == tmp_path / "a"
    with pytest.raises(FileNotFoundError):
        latest_run_dir(tmp_path / "missing")


def test_cli_report_writes_the_index(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    run_dir = build_run(tmp_path)
    assert main(["report", str(run_dir), "--out", str(tmp_path / "site")]) == 0
    assert (tmp_path / "site" / "index.html").is_file()
    assert "index.html" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "nope"), "--out", str(tmp_path / "site")]) == 2


def test_nice_ticks() -> None:
    assert nice_ticks(0, 16) == [0, 5, 10, 15]
    assert nice_ticks(0, 40, 8) == [0, 5, 10, 15, 20, 25, 30, 35, 40]
