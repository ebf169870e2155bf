"""The report in a real browser: headless Debian Chromium opens the index and an experiment page
of a hand-built run, runs report.js (no script error, every chart bound, zoom from the URL works)
and takes screenshots (kept in the test's tmp dir, one copied to /tmp/report-shots/)."""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from harness.report import write_report

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]
SHOTS = Path("/tmp/report-shots")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed (apt-get install chromium)"),
]


def _support() -> object:
    path = Path(__file__).resolve().parents[1] / "unit" / "test_report_support.py"
    spec = importlib.util.spec_from_file_location("test_report_support", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def chromium(tmp_path: Path, *args: str, timeout: float = 90) -> str:
    """Run headless Chromium in its own session; kill the whole group if it hangs; its stdout."""
    profile = tmp_path / "chromium-profile"
    process = subprocess.Popen([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)  # helpers (zygote, renderers) that outlived the browser
        except ProcessLookupError:
            pass
    assert process.returncode == 0, f"chromium exited {process.returncode}"
    return out


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("report")
    support = _support()
    run_dir = support.build_run(root / "reports")  # type: ignore[attr-defined]
    out = root / "site"
    write_report(run_dir, out)
    return out, out / support.RUN_ID / f"{support.EXPERIMENT}.html"  # type: ignore[attr-defined]


def body_attributes(dom: str) -> dict[str, str]:
    body = re.search(r"<body([^>]*)>", dom)
    assert body, "no <body> in the dumped DOM"
    return dict(re.findall(r'([\w-]+)="([^"]*)"', body.group(1)))


def test_pages_run_without_script_errors_and_plots_hold_svg(site: tuple[Path, Path], tmp_path: Path) -> None:
    out, page = site
    for html, charts in ((out / "index.html", 0), (page, 10)):
        dom = chromium(tmp_path, "--dump-dom", html.as_uri())
        body = body_attributes(dom)
        assert body.get("data-errors") == "", body.get("data-errors")
        assert body.get("data-ready") == "1", "report.js did not run"
        assert int(body.get("data-charts", "0")) >= charts
    plots = re.findall(r'<div class="plot">(.*?)</div>', dom, re.S)
    assert len(plots) >= 14 and all(p.lstrip().startswith("<svg") for p in plots)


def test_zoom_from_the_url_narrows_every_time_chart(site: tuple[Path, Path], tmp_path: Path) -> None:
    _, page = site
    dom = chromium(tmp_path, "--dump-dom", page.as_uri() + "#zoom=2,4")
    assert body_attributes(dom).get("data-errors") == ""
    boxes = re.findall(r'<svg class="plot-area"[^>]*viewBox="([^"]+)"', dom)
    assert boxes and all(not box.startswith("0 ") for box in boxes), boxes[:3]
    assert "showing 2–4 s" in dom


def test_screenshots(site: tuple[Path, Path], tmp_path: Path) -> None:
    out, page = site
    shots = []
    for name, html in (("index", out / "index.html"), ("experiment", page)):
        shot = tmp_path / f"{name}.png"
        chromium(tmp_path, f"--screenshot={shot}", "--window-size=1400,2000", html.as_uri())
        assert shot.stat().st_size > 20_000, f"{name}: screenshot looks empty"
        shots.append(shot)
    SHOTS.mkdir(parents=True, exist_ok=True)
    for shot in shots:
        shutil.copy(shot, SHOTS / shot.name)
