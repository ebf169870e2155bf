"""Writing a report for one run directory.

Layout (OUT defaults to reports/):

    OUT/index.html                    the newest reported run: matrix experiment x shop, claims
    OUT/assets/report.css, report.js  shared by every page, written once per report
    OUT/<run-id>/index.html           the same matrix for that run (kept when newer runs are reported)
    OUT/<run-id>/<experiment>.html    one page per experiment, both shops side by side

and, next to each results.json in the run directory, `orders.csv` and `timeline.csv` (analysis.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.report.analysis import export_csv, load_run
from harness.report.assets import write_assets
from harness.report.html import render_experiment, render_index


@dataclass(frozen=True)
class Report:
    """What `write_report` wrote."""

    index: Path
    pages: list[Path]
    assets: list[Path]
    csv: list[Path]


def latest_run_dir(runs: Path) -> Path:
    """The most recently modified directory under `runs` (e.g. reports/runs); FileNotFoundError if none."""
    candidates = [p for p in Path(runs).iterdir() if p.is_dir()] if Path(runs).is_dir() else []
    if not candidates:
        raise FileNotFoundError(f"no run directory under {runs}")
    return max(candidates, key=lambda p: (p.stat().st_mtime, p.name))


def write_report(run_dir: Path, out: Path) -> Report:
    """Render the report of `run_dir` into `out` (layout above) and export its CSV files."""
    run = load_run(run_dir)
    out = Path(out)
    pages_dir = out / run.run_id
    pages_dir.mkdir(parents=True, exist_ok=True)
    assets = write_assets(out)
    pages = []
    for experiment in run.experiments():
        path = pages_dir / f"{experiment}.html"
        path.write_text(render_experiment(run, experiment, assets="../assets", index_href="index.html"),
                        encoding="utf-8")
        pages.append(path)
    (pages_dir / "index.html").write_text(render_index(run, assets="../assets"), encoding="utf-8")
    others = sorted((p.name for p in out.iterdir() if p.is_dir() and p.name != run.run_id
                     and (p / "index.html").is_file()), reverse=True)
    index = out / "index.html"
    index.write_text(render_index(run, link_prefix=f"{run.run_id}/", assets="assets",
                                  other_runs=[(name, f"{name}/index.html") for name in others]), encoding="utf-8")
    return Report(index, [pages_dir / "index.html", *pages], assets, export_csv(run))
