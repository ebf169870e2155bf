"""Provisioning lookups and one-line errors, without installing anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.infra import provision
from harness.infra.provision import ProvisionError, ensure, find_toxiproxy


def _exe(path: Path) -> Path:
    path.write_text("#!/bin/sh\necho toxiproxy-server version 9.9.9\n")
    path.chmod(0o755)
    return path


def test_find_toxiproxy_honours_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = _exe(tmp_path / "my-toxiproxy")
    monkeypatch.setenv(provision.TOXIPROXY_ENV, str(binary))
    assert find_toxiproxy() == binary
    assert provision.toxiproxy_version(binary) == "9.9.9"


def test_env_override_that_is_not_executable_finds_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "plain").write_text("")
    monkeypatch.setenv(provision.TOXIPROXY_ENV, str(tmp_path / "plain"))
    assert find_toxiproxy() is None
    monkeypatch.setattr(provision, "find_rabbitmq", lambda: tmp_path)
    with pytest.raises(ProvisionError, match=provision.TOXIPROXY_ENV):
        ensure(install=True, log=lambda _: None)


def test_find_toxiproxy_searches_path_then_home_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(provision.TOXIPROXY_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("HOME", str(tmp_path))
    local = tmp_path / ".local" / "bin"
    local.mkdir(parents=True)
    binary = _exe(local / "toxiproxy-server")
    found = find_toxiproxy()
    assert found == binary or found == Path("/usr/local/bin/toxiproxy-server")


def test_missing_toxiproxy_without_install_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(provision.TOXIPROXY_ENV, raising=False)
    monkeypatch.setattr(provision, "find_rabbitmq", lambda: tmp_path)
    monkeypatch.setattr(provision, "find_toxiproxy", lambda: None)
    with pytest.raises(ProvisionError) as err:
        ensure(install=False, log=lambda _: None)
    msg = str(err.value)
    assert "\n" not in msg and "toxiproxy-server" in msg and "go install" in msg


def test_missing_rabbitmq_without_install_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(provision, "find_rabbitmq", lambda: None)
    with pytest.raises(ProvisionError) as err:
        ensure(install=False, log=lambda _: None)
    msg = str(err.value)
    assert "\n" not in msg and "apt-get install -y rabbitmq-server" in msg


def test_no_go_means_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(provision.TOXIPROXY_ENV, raising=False)
    monkeypatch.setattr(provision, "find_rabbitmq", lambda: tmp_path)
    monkeypatch.setattr(provision, "find_toxiproxy", lambda: None)
    monkeypatch.setattr("harness.infra.provision.shutil.which", lambda _name: None)
    monkeypatch.setattr(provision, "_executable", lambda _p: False)
    with pytest.raises(ProvisionError) as err:
        ensure(install=True, log=lambda _: None)
    assert "\n" not in str(err.value) and "Go" in str(err.value)


def test_main_reports_failure_with_exit_code_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(provision, "find_rabbitmq", lambda: None)
    assert provision.main(["--check"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("provision: error:")
