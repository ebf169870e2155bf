"""Choosing experiments on the command line: names, files, and one variant of a matrix."""
from __future__ import annotations

import pytest

from harness.experiment import ExperimentError
from harness.experiment.runs import EXPERIMENTS_DIR, select


def test_a_name_a_file_and_a_variant() -> None:
    assert [s.name for s in select(["steady-state"])] == ["steady-state"]
    assert [s.name for s in select([str(EXPERIMENTS_DIR / "scale-out.toml")])] == [
        "scale-out@baristas=1", "scale-out@baristas=2", "scale-out@baristas=4", "scale-out@baristas=8"]
    (only,) = select(["scale-out@baristas=4"])
    assert only.name == "scale-out@baristas=4" and only.experiment.shop.baristas == 4


def test_unknown_names_and_variants_say_what_exists() -> None:
    with pytest.raises(ExperimentError, match="no such experiment file .*steady-state"):
        select(["no-such-thing"])
    with pytest.raises(ExperimentError, match=r"matrix: no variant 'scale-out@baristas=3' \(variants: scale-out@baristas=1"):
        select(["scale-out@baristas=3"])
