"""Fixtures of the integration tests: `main_run`, the fast-profile results of the shipped experiments a
test names with `@pytest.mark.main_run(...)`, read from the run CHAOSCAFE_MAIN_RUN names or run
once per session (mainrun.py says how)."""
from __future__ import annotations

import pytest
from mainrun import MainRun, given_run


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "main_run(*experiments): the shipped experiments (or NAME@field=value "
                                       "variants) whose results (fast profile) the test reads through the main_run fixture")


@pytest.fixture(scope="session")
def main_runs(tmp_path_factory: pytest.TempPathFactory) -> MainRun:
    return MainRun(given_run(), tmp_path_factory.mktemp("main-run"))


@pytest.fixture
def main_run(main_runs: MainRun, request: pytest.FixtureRequest) -> MainRun:
    """The main run, holding the experiments this test's `main_run` marker names (run now, together,
    when no CHAOSCAFE_MAIN_RUN is given and no earlier test of the session ran them)."""
    main_runs.need(name for marker in request.node.iter_markers("main_run") for name in marker.args)
    return main_runs
