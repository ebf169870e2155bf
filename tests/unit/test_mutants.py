"""The mutants file: valid, one mutant per guarantee, and every edit still applies to systems/ or cafe/."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.experiment.runs import select
from harness.regression.mutants import MutantError, apply, load_mutants

SYSTEMS = Path(__file__).resolve().parents[2] / "systems"
CAFE = SYSTEMS.parent / "cafe"


def test_every_mutant_applies_to_the_current_code_and_names_real_experiments(tmp_path: Path) -> None:
    mutants = load_mutants()
    assert {m.shop for m in mutants} == {"sync", "async", "sync-resilient"}
    for mutant in mutants:
        copy = tmp_path / mutant.name / "systems"
        shutil.copytree(SYSTEMS, copy)
        shutil.copytree(CAFE, copy.parent / "lib" / "cafe")
        apply(mutant, copy)
        for file in {e.file for e in mutant.edit}:   # the copy differs, the original does not
            mutated, original = ((copy.parent / "lib" / file, CAFE.parent / file) if file.startswith("cafe/")
                                 else (copy / file, SYSTEMS / file))
            assert mutated.read_text() != original.read_text(), (mutant.name, file)
            compile(mutated.read_text(), str(mutated), "exec")   # still a program
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
