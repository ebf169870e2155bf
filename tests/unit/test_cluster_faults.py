"""The cluster faults' pure parts (issue 17): which links a partition mode cuts, and the iptables rules
that cut one link (both directions of both possible connections, or one direction for one-way)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from harness.experiment.faults import PARTITION_MODES
from harness.nemesis.cluster import cut, links_to_cut

THREE = ["L", "F1", "F2"]            # the leader first, as Partition.start orders them
FIVE = ["L", "F1", "F2", "F3", "F4"]


@pytest.mark.parametrize(("mode", "members", "links"), [
    ("isolate-leader", THREE, {("L", "F1"), ("L", "F2")}),
    ("isolate-follower", THREE, {("F1", "L"), ("F1", "F2")}),
    ("one-way", THREE, {("L", "F1"), ("L", "F2")}),
    ("halves", THREE, {("L", "F1"), ("L", "F2")}),
    ("halves", FIVE, {(a, b) for a in ("L", "F1") for b in ("F2", "F3", "F4")}),
    ("bridge", THREE, {("L", "F2")}),                                   # F1 sees both
    ("bridge", FIVE, {(a, b) for a in ("L", "F2") for b in ("F3", "F4")}),
])
def test_each_mode_cuts_the_links_it_names(mode: str, members: list[str], links: set[tuple[str, str]]) -> None:
    assert set(links_to_cut(mode, members)) == links


def test_every_declared_mode_has_a_cut() -> None:
    assert all(links_to_cut(mode, THREE) for mode in PARTITION_MODES)


@dataclass
class Member:
    nodename: str
    address: str
    dist_port: int


class FakeNet:
    def __init__(self) -> None:
        self.rules: list[dict[str, Any]] = []

    def drop(self, **rule: Any) -> None:
        self.rules.append(rule)


A, B = Member("a", "127.150.1.1", 30001), Member("b", "127.150.1.2", 30002)


def test_a_cut_drops_both_directions_of_both_connections() -> None:
    net = FakeNet()
    assert cut(net, A, B, loss=None) == 4   # type: ignore[arg-type]
    assert [{k: v for k, v in r.items() if k != "probability"} for r in net.rules] == [
        {"src": A.address, "dport": B.dist_port},   # a -> b on the connection a opened
        {"dst": B.address, "sport": A.dist_port},   # a -> b on the connection b opened
        {"src": B.address, "dport": A.dist_port},   # b -> a on the connection b opened
        {"dst": A.address, "sport": B.dist_port}]   # b -> a on the connection a opened


def test_one_way_drops_only_what_a_sends_and_loss_is_passed_on() -> None:
    net = FakeNet()
    assert cut(net, A, B, loss=0.3, one_way=True) == 2   # type: ignore[arg-type]
    assert all(r["probability"] == 0.3 for r in net.rules)
    assert {(r.get("src"), r.get("dst")) for r in net.rules} == {(A.address, None), (None, B.address)}


class FakeCluster:
    """What not_whole reads: health and the Raft states of each work queue."""

    size = 3

    def __init__(self, health: dict[str, Any], raft: dict[str, dict[str, str]]) -> None:
        self._health, self._raft = health, raft

    def health(self) -> dict[str, Any]:
        return self._health

    def raft_states(self, queue: str) -> dict[str, str]:
        return self._raft.get(queue, {})


def test_a_heal_that_times_out_says_what_is_not_whole() -> None:
    from harness.nemesis.cluster import WORK_QUEUES, not_whole
    whole = {"n1": "leader", "n2": "follower", "n3": "follower"}
    healthy = {"healed": True, "running": ["n1", "n2", "n3"], "partitions": {"n1": [], "n2": [], "n3": []}}
    assert not_whole(FakeCluster(healthy, {q: whole for q in WORK_QUEUES})) == {}  # type: ignore[arg-type]
    recovering = {**whole, "n3": "recovering"}
    split = {"healed": False, "running": ["n1", "n2"], "partitions": {"n1": ["n3"], "n2": [], "n3": ["n1"]}}
    why = not_whole(FakeCluster(split, {WORK_QUEUES[0]: recovering, WORK_QUEUES[1]: whole}))  # type: ignore[arg-type]
    assert why == {"running": ["n1", "n2"], "partitions": {"n1": ["n3"], "n3": ["n1"]},
                   "raft": {WORK_QUEUES[0]: recovering}}


class StatusCluster:
    """What leader_and_term reads: one quorum_status."""

    def __init__(self, rows: dict[str, dict[str, Any]]) -> None:
        self.rows = rows

    def quorum_status(self, queue: str) -> dict[str, dict[str, Any]]:
        return self.rows


def test_one_read_gives_the_leader_and_the_highest_term() -> None:
    from harness.nemesis.cluster import leader_and_term
    rows: dict[str, dict[str, Any]] = {"n1": {"Raft State": "follower", "Term": 4},
                                       "n2": {"Raft State": "leader", "Term": 5},
                                       "n3": {"Raft State": "noproc", "Term": "undefined"}}
    assert leader_and_term(StatusCluster(rows)) == ("n2", 5)  # type: ignore[arg-type]
    electing = {node: {**row, "Raft State": "candidate"} for node, row in rows.items()}
    assert leader_and_term(StatusCluster(electing)) == (None, 5)  # type: ignore[arg-type]


class ElectingCluster:
    """A quorum_status that names no leader for the first `reads` reads, then n3; a classic queue
    (no status) whose holder `leader` names."""

    def __init__(self, reads: int, classic: bool = False) -> None:
        self.reads, self.classic, self.calls = reads, classic, 0

    def quorum_status(self, queue: str) -> dict[str, dict[str, Any]]:
        if self.classic:
            return {}
        self.calls += 1
        state = "leader" if self.calls > self.reads else "candidate"
        return {"n3": {"Raft State": state, "Term": 7}, "n1": {"Raft State": "follower", "Term": 7}}

    def leader(self, queue: str) -> str | None:
        return "n1"


def test_the_leader_is_asked_again_while_an_election_runs_and_the_last_read_is_kept() -> None:
    from harness.nemesis.cluster import leader_and_term
    assert leader_and_term(ElectingCluster(reads=1), wait_s=5) == ("n3", 7)  # type: ignore[arg-type]  # asked twice, a second apart
    assert leader_and_term(ElectingCluster(reads=10), wait_s=0) == (None, 7)  # type: ignore[arg-type]  # no wait: one read
    assert leader_and_term(ElectingCluster(reads=0, classic=True)) == ("n1", None)  # type: ignore[arg-type]


def test_a_leader_elected_by_the_end_of_the_heal_counts_as_noticed() -> None:
    from harness.nemesis.cluster import seen_after_heal

    bridge = {"leader_at_start": "n2", "leader_before_heal": "n2", "noticed": 0, "leader_changed": 0}
    assert seen_after_heal({**bridge, "leader_after_heal": "n3"}) == {"noticed": 1, "noticed_seen": "after the heal"}
    assert seen_after_heal({**bridge, "leader_after_heal": "n2"}) == {}          # the same leader: nothing seen
    assert seen_after_heal({**bridge, "leader_after_heal": None}) == {}          # nobody could say
    assert seen_after_heal({**bridge, "noticed": 1, "leader_after_heal": "n3"}) == {}   # already noticed
    unnamed = {"leader_at_start": "n1", "leader_before_heal": None, "noticed": 0, "leader_after_heal": "n2"}
    assert seen_after_heal(unnamed) == {"noticed": 1, "noticed_seen": "after the heal", "leader_changed": 1,
                                        "leader_changed_seen": "after the heal"}


def test_members_out_counts_what_answers_and_without_an_answer_only_what_is_known(tmp_path: Any) -> None:
    """A frozen follower can hold every member's management API past its timeout: no member
    answers, and that is not three members out (a CI run once read `members_down_max` 3 for one
    frozen follower); without an answer only gone or stopped VMs count."""
    from harness.infra.cluster import RabbitCluster
    c = RabbitCluster(tmp_path, size=3)
    n1, n2, n3 = c.members
    state = {n1.nodename: "up", n2.nodename: "up", n3.nodename: "frozen"}
    for m in c.members:
        m.is_running = lambda m=m: state[m.nodename] != "gone"  # type: ignore[method-assign,misc]
        m.frozen = lambda m=m: state[m.nodename] == "frozen"    # type: ignore[method-assign,misc]
    seen = {"running": [n1.nodename, n2.nodename], "partitions": {n1.nodename: [], n2.nodename: []}}
    assert c.members_out(seen) == 1                               # as the answering members list it
    nobody: dict[str, Any] = {"running": [], "partitions": {}}
    assert c.members_out(nobody) == 1                             # only the frozen one is known to be out
    state[n1.nodename] = "gone"                                   # a killed majority: two gone, one paused
    state[n3.nodename] = "gone"
    assert c.members_out(nobody) == 2


def test_frozen_reads_a_stopped_vm_from_proc(tmp_path: Any) -> None:
    """ClusterNode.frozen: a process stopped by SIGSTOP is frozen, a running or gone one is not."""
    import os
    import signal
    import subprocess
    import time

    from harness.infra.cluster import RabbitCluster
    member = RabbitCluster(tmp_path, size=2).members[0]
    proc = subprocess.Popen(["sleep", "30"])
    try:
        member.beam_pid = lambda: proc.pid  # type: ignore[method-assign]
        assert not member.frozen()
        os.kill(proc.pid, signal.SIGSTOP)
        deadline = time.monotonic() + 5
        while not member.frozen() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert member.frozen()
    finally:
        proc.kill()
        proc.wait()
    member.beam_pid = lambda: None  # type: ignore[method-assign]
    assert not member.frozen()


class Booting:
    """A member whose start needs every other member starting at the same time (as two killed
    Mnesia members do, each waiting for the other's tables): a barrier of all of them."""

    def __init__(self, index: int, barrier: Any, fails: bool = False) -> None:
        self.index, self.barrier, self.fails = index, barrier, fails
        self.calls: list[str] = []

    def start(self, timeout: float = 90) -> None:
        self.calls.append("start")
        self.barrier.wait()
        if self.fails:
            raise RuntimeError(f"member {self.index} did not come up")

    def restart(self, timeout: float = 90) -> None:
        self.calls.append("restart")
        self.barrier.wait()


def test_members_boot_at_once_and_their_errors_are_returned() -> None:
    import threading

    from harness.infra.cluster import RabbitCluster
    barrier = threading.Barrier(3, timeout=5)   # started in turn, the first would wait 5 s and fail
    members: Any = [Booting(1, barrier), Booting(2, barrier, fails=True), Booting(3, barrier)]
    errors = RabbitCluster.boot(members)
    assert [str(e) for e in errors] == ["member 2 did not come up"]
    assert [m.calls for m in members] == [["start"]] * 3
    again = threading.Barrier(2, timeout=5)
    pair: Any = [Booting(1, again), Booting(2, again)]
    assert RabbitCluster.boot(pair, restart=True) == [] and [m.calls for m in pair] == [["restart"]] * 2
