"""Reports of a run: pandas analysis of its files, and static HTML pages with SVG plots.

    analysis  run directory -> DataFrames (orders, timeline), CSV export
    svg       a small SVG plot generator (time charts with fault windows, percentile plots)
    figures   the charts of an experiment page, from the frames
    flow      event flow of sampled orders as swimlanes
    html      the index and experiment pages (templates in templates.py, shared assets in assets.py)
    writer    write_report(run_dir, out): the files, in the layout its docstring describes
"""
from harness.report.writer import Report, latest_run_dir, write_report

__all__ = ["Report", "latest_run_dir", "write_report"]
