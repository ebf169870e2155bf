"""The mutants file: valid, one mutant per guarantee, and every edit still applies to systems/."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.experiment.runs import select
from harness.regression.mutants import MutantError, apply, load_mutants

SYSTEMS = Path(__file__).resolve().parents[2] / "systems"


def test_every_mutant_applies_to_the_current_code_and_names_real_experiments(tmp_path: Path) -> None:
    mutants = load_mutants()
    assert {m.shop for m in mutants} == {"sync", "async"}
    for mutant in mutants:
        copy = tmp_path / mutant.name
        shutil.copytree(SYSTEMS, copy)
        apply(mutant, copy)
        changed = {e.file for e in mutant.edit}
        for file in changed:   # the copy differs, the original does not
            assert (copy / file).read_text() != (SYSTEMS / file).read_text(), (mutant.name, file)
            compile((copy / file).read_text(), str(copy / file), "exec")   # still a program
        assert select(mutant.catch)


def test_an_edit_that_no_longer_applies_is_a_clear_error(tmp_path: Path) -> None:
    mutant = load_mutants()[0].model_copy(update={"edit": [load_mutants()[0].edit[0].model_copy(
        update={"find": "this text is not in the file"})]})
    shutil.copytree(SYSTEMS, tmp_path / "systems")
    with pytest.raises(MutantError, match="occurs 0 times"):
        apply(mutant, tmp_path / "systems")


def test_a_bad_mutants_file_names_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "m.toml"
    bad.write_text('[[mutant]]\nname = "x"\nshop = "kafka"\nguarantee = "g"\ncatch = ["steady-state"]\n'
                   '[[mutant.edit]]\nfile = "a"\nfind = "b"\nreplace = "c"\n')
    with pytest.raises(MutantError, match="m.toml: shop"):
        load_mutants(bad)
