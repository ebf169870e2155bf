"""One failing shop run does not end the set: it is recorded as an error, the other runs finish,
the exit code says failure, and the JUnit and Markdown outputs of the real run say which."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from junitparser import Error, Failure, JUnitXml

from harness import cli
from harness.experiment import run as run_mod

pytestmark = pytest.mark.integration

TINY = """
title = "tiny {name}"
claim = "a short constant load is accepted and served"
time_scale = "1:1"
[run]
duration_s = 2
drain_s = 8
seed = 5
[load]
shape = "constant"
process = "uniform"
rate = 10
[shop]
brew = {{ distribution = "fixed", mean_ms = 10 }}
[expect.both]
"orders.lost" = {{ max = 0 }}
"""


def test_a_failing_shop_run_is_an_error_and_the_set_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("first", "broken", "last"):
        (tmp_path / "exps").mkdir(exist_ok=True)
        (tmp_path / "exps" / f"{name}.toml").write_text(TINY.format(name=name))
    real = run_mod.observations

    def observations(shop: Any, history: Any = None) -> Any:   # the failure: unreadable after the heal
        if "broken" in str(shop.infra.run_dir):
            raise ConnectionError("observations unreadable after the heal (injected by the test)")
        return real(shop, history)

    monkeypatch.setattr(run_mod, "observations", observations)
    monkeypatch.setattr("harness.infra.processes.install_signal_handlers", lambda: None)
    monkeypatch.chdir(tmp_path)   # every path below is relative, as a user types them
    code = cli.main(["run", "exps/first.toml", "exps/broken.toml", "exps/last.toml", "--system", "sync",
                     "--out", "out", "--junit", "junit.xml", "--summary-md", "summary.md"])
    assert code == 1
    (run_dir,) = (tmp_path / "out" / "runs").iterdir()
    summary = {row["experiment"]: row for row in json.loads((run_dir / "summary.json").read_text())}
    assert [summary[n]["status"] for n in ("first", "broken", "last")] == ["pass", "error", "pass"]
    broken = json.loads((run_dir / "broken" / "sync" / "results.json").read_text())
    assert broken["complete"] is False and broken["passed"] is False and broken["status"] == "error"
    assert "observations unreadable" in broken["error"]
    assert broken["orders"]["attempted"] == 20      # what was measured before the error is kept
    assert any(c["name"] == "run completed" and not c["passed"] for c in broken["checks"])
    assert (tmp_path / "out" / "index.html").is_file()   # the report covers the set, the error included
    assert "observations unreadable" in (tmp_path / "out" / run_dir.name / "broken.html").read_text()

    suite = next(iter(JUnitXml.fromfile(str(tmp_path / "junit.xml"))))
    assert (suite.tests, suite.failures, suite.errors) == (3, 0, 1)
    results = {case.classname: case.result for case in suite}
    assert results["first"] == [] and results["last"] == []
    (error,) = results["broken"]
    assert isinstance(error, Error) and not isinstance(error, Failure)
    assert "observations unreadable" in (error.message or "")
    markdown = (tmp_path / "summary.md").read_text()
    assert "| first |" in markdown and "**ERROR**" in markdown and "3 shop runs" in markdown
