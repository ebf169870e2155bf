"""Plain progress lines (harness.report.runlog) and where CLI paths become absolute (cli.absolute_paths)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness import cli
from harness.report.runlog import OVERHEAD_S, PlainLines, duration


def test_duration_text() -> None:
    assert [duration(s) for s in (0, 42.4, 185, 3720)] == ["0s", "42s", "3m05s", "1h02m"]


def test_lines_for_each_start_and_end_with_the_time_left_from_the_pace() -> None:
    now = [0.0]
    lines: list[str] = []
    log = PlainLines([20.0, 20.0, 40.0], emit=lines.append, clock=lambda: now[0])
    log.shop_started("rush", "sync", 1, 20.0)
    now[0] = 60.0   # 60 s for a run weighing 20 + OVERHEAD_S: the rest weighs 2 + 1 ... of it
    log.shop_finished({"experiment": "rush", "system": "sync", "status": "pass", "attempted": 10, "accepted": 9,
                       "lost": 0, "duplicated": 0, "acceptance_p99_ms": 12.34, "wall_s": 60.0,
                       "failed_checks": []}, 1)
    left = 60.0 / (20 + OVERHEAD_S) * (20 + OVERHEAD_S + 40 + OVERHEAD_S)
    assert lines[0] == "[1/3] rush / sync: started (arrivals 20 s)"
    assert lines[1].startswith("[1/3] rush / sync: pass  attempted 10 accepted 9 lost 0 dup 0  accept p99 12.3 ms")
    assert lines[1].endswith(f"~{duration(left)} left")
    log.shop_started("rush", "async", 1, 20.0)
    log.shop_finished({"experiment": "rush", "system": "async", "status": "error", "error": "boom",
                       "failed_checks": ["run completed"]}, 1)
    assert lines[2].startswith("[2/3] rush / async: started")
    assert "ERROR" in lines[3] and lines[3].endswith("error: boom") and "accepted -" in lines[3]


def test_overlapping_runs_keep_their_number_from_start_to_end() -> None:
    lines: list[str] = []
    log = PlainLines([10.0, 10.0, 10.0], emit=lines.append, clock=lambda: 0.0)
    log.shop_started("a", "sync", 1, 10.0)
    log.shop_started("a", "async", 1, 10.0)
    row = {"status": "pass", "failed_checks": []}
    log.shop_finished({**row, "experiment": "a", "system": "sync"}, 1)
    log.shop_started("b", "sync", 1, 10.0)
    log.shop_finished({**row, "experiment": "a", "system": "async"}, 1)
    log.shop_finished({**row, "experiment": "b", "system": "sync"}, 1)
    assert [line[:17] for line in lines] == ["[1/3] a / sync: s", "[2/3] a / async: ", "[1/3] a / sync: p",
                                              "[3/3] b / sync: s", "[2/3] a / async: ", "[3/3] b / sync: p"]
    assert lines[-1].endswith("(last)")


def test_every_path_option_becomes_absolute_and_names_stay_names(tmp_path: Path) -> None:
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        args = cli.absolute_paths(cli.parser().parse_args(
            ["run", "steady-state", "mine/x.toml", "--out", "rel", "--junit", "j.xml", "--summary-md", "s.md"]))
    finally:
        os.chdir(cwd)
    assert args.out == str(tmp_path / "rel") and args.junit == str(tmp_path / "j.xml")
    assert args.summary_md == str(tmp_path / "s.md")
    assert args.experiments == ["steady-state", str(tmp_path / "mine" / "x.toml")]
    shop = cli.absolute_paths(cli.parser().parse_args(["shop", "up", "sync", "--run-dir", "r"]))
    assert Path(shop.run_dir).is_absolute()


def test_a_value_that_looks_like_markup_is_an_error_line_not_a_crash(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.toml"
    bad.write_text('title = "x"\nclaim = "y"\ntime_scale = "1:1"\n[run]\nduration_s = 2\n'
                   '[load]\nshape = "[/]"\nrate = 1\n')
    assert cli.main(["validate", str(bad)]) == 2
    out = capsys.readouterr().out
    assert "load.shape = '[/]'" in out and len(out.strip().splitlines()) == 1


def test_a_bad_chaoscafe_profile_stops_run_only_and_the_option_wins(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CHAOSCAFE_PROFILE", "bogus")
    assert cli._default_profile() is None
    assert cli.parser().parse_args(["run", "--profile", "smoke"]).profile == "smoke"
    assert cli.main(["list"]) == 0
    monkeypatch.setenv("CHAOSCAFE_PROFILE", "smoke")
    assert cli._default_profile() == "smoke"


def test_run_with_out_naming_a_file_is_bad_input_before_anything_starts(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    assert cli.main(["run", "steady-state", "--profile", "fast", "--out", str(afile / "sub")]) == 2
    err = capsys.readouterr()
    assert "is a file, not a directory" in err.out + err.err and "Traceback" not in err.out + err.err
    assert afile.read_text() == ""


@pytest.mark.parametrize(("args", "env", "words"), [
    (["run", "steady-state", "--profile", "fast", "--junit", "{tmp}"], {}, "is a directory, not a file"),
    (["run", "steady-state", "--profile", "fast", "--summary-md", "{tmp}"], {}, "is a directory, not a file"),
    (["run", "steady-state", "--profile", "fast"], {"CHAOSCAFE_RUNTIME": "podman"}, "unknown runtime 'podman'"),
    (["report", "--out", "{tmp}/afile"], {}, "is a file, not a directory"),
])
def test_bad_input_found_by_the_new_user_is_one_line_and_exit_2_before_anything_starts(
        args: list[str], env: dict[str, str], words: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "afile").write_text("")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert cli.main([a.replace("{tmp}", str(tmp_path)) for a in args]) == 2
    err = capsys.readouterr()
    assert words in err.out + err.err and "Traceback" not in err.out + err.err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("option", ["--orders=0", "--baristas=0", "--brewers=0", "--capacity=0", "--prefetch=0",
                                    "--brew-ms=-10", "--brew-ms=nan"])
def test_demo_numbers_are_checked_by_the_parser(option: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.parser().parse_args(["demo", option])
    assert exit_.value.code == 2 and option.split("=")[0] in capsys.readouterr().err


def test_validate_takes_names_as_run_does_and_an_unknown_one_lists_the_known(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["validate", "steady-state", "scale-out@baristas=2"]) == 0
    assert cli.main(["validate", "nope"]) == 2
    err = capsys.readouterr()
    assert "no such experiment file (known: " in err.out + err.err and "steady-state" in err.out + err.err
