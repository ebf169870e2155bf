"""The layers of docs/architecture.md, checked by import-linter (the contracts in pyproject.toml)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"]


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([*LINT, "--no-cache", "--no-logo"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_contracts_hold() -> None:
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" not in result.stdout.lower().replace("0 broken", "")


def test_a_checker_that_imports_the_infrastructure_breaks_the_contract(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "harness", tmp_path / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    ledger = tmp_path / "harness" / "checkers" / "ledger.py"
    ledger.write_text(ledger.read_text() + "\nimport harness.infra.stack  # noqa: E402,F401  (the wrong import)\n")
    result = lint(tmp_path)
    assert result.returncode != 0
    assert "harness.checkers.ledger -> harness.infra.stack" in result.stdout


def test_the_shops_registry_loads_no_adapter() -> None:
    code = ("import sys, harness.shops, harness.experiment.loading, harness.checkers, harness.report; "
            "print(sorted(m for m in sys.modules if m.startswith(('harness.infra', 'harness.nemesis', "
            "'harness.shops.base', 'harness.shops.sync_shop', 'harness.shops.async_shop'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
