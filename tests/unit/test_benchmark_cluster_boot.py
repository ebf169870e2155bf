"""benchmarks/cluster_boot.py without a broker: its arguments and how it reads who started the cluster."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from benchmarks import cluster_boot


@pytest.mark.parametrize("argv", [["--rounds", "0"], ["--retries", "-1"], ["--interval-ms", "0"], ["--size", "4"]])
def test_bad_arguments_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cluster_boot.main(argv)
    assert exc.value.code == 2


def test_the_member_whose_log_joins_no_peer_started_the_cluster(tmp_path: Path) -> None:
    members = []
    for k, line in enumerate(["Node 'n2@localhost' selected for auto-clustering", "Peer nodes we can cluster with: n1",
                              "Node 'n1@localhost' selected for auto-clustering"], start=1):
        (tmp_path / f"node{k}" / "log").mkdir(parents=True)
        (tmp_path / f"node{k}" / "log" / f"n{k}@localhost.log").write_text(f"... {line}\n")
        members.append(SimpleNamespace(base_dir=tmp_path / f"node{k}"))
    fake: Any = SimpleNamespace(members=members)
    assert cluster_boot._fresh_members(fake) == 1
