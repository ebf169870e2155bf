"""Real network faults between loopback addresses with iptables (harness/infra/netfilter.py).

Each test has its own tag (a random suffix) and heals it afterwards, so no rule outlives it.
Skipped, with the reason, where iptables cannot be used (not root, not installed)."""
from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Iterator

import pytest

from harness.infra.netfilter import Netfilter, available, leftovers

UNAVAILABLE = available()
pytestmark = [pytest.mark.integration, pytest.mark.skipif(UNAVAILABLE is not None, reason=f"needs iptables: {UNAVAILABLE}")]

A, B, C = "127.0.1.1", "127.0.1.2", "127.0.1.3"


@pytest.fixture
def nf() -> Iterator[Netfilter]:
    netfilter = Netfilter(f"chaoscafe-test-{secrets.token_hex(6)}")
    try:
        yield netfilter
    finally:
        netfilter.heal()
        assert netfilter.rules() == []


@pytest.fixture
def server() -> Iterator[socket.socket]:
    """A listening socket on B, free port."""
    srv = socket.socket()
    srv.bind((B, 0))
    srv.listen(16)
    try:
        yield srv
    finally:
        srv.close()


def connects(src: str, dst: tuple[str, int], timeout: float) -> bool:
    """Whether a client bound to `src` connects to `dst` within `timeout` seconds."""
    with socket.socket() as cli:
        cli.bind((src, 0))
        cli.settimeout(timeout)
        try:
            cli.connect(dst)
        except OSError:
            return False
        return True


def test_a_drop_stops_new_connections_from_one_address_only(nf: Netfilter, server: socket.socket) -> None:
    port = server.getsockname()[1]
    assert connects(A, (B, port), 2.0)
    nf.drop(src=A, dst=B, dport=port)
    start = time.monotonic()
    assert not connects(A, (B, port), 0.5)
    assert time.monotonic() - start < 1.5
    assert connects(C, (B, port), 2.0)            # the rule is specific to the source address
    assert nf.heal() == 1
    assert connects(A, (B, port), 2.0)
    assert nf.rules() == []


def test_both_directions_dropped_stop_an_established_connection_and_heal_resumes_it(
        nf: Netfilter, server: socket.socket) -> None:
    port = server.getsockname()[1]
    with socket.socket() as cli:
        cli.bind((A, 0))
        cli.connect((B, port))
        peer, _ = server.accept()
        with peer:
            cli.settimeout(0.5)
            peer.settimeout(0.5)
            cli.sendall(b"hello")
            assert peer.recv(16) == b"hello"
            # client -> server packets: A:any -> B:port; server -> client packets: B:port -> A:any
            there = nf.drop(src=A, dst=B, dport=port)
            back = nf.drop(src=B, dst=A, sport=port)
            lines = nf.rules()
            assert len(lines) == 2
            assert "-s 127.0.1.1/32 -d 127.0.1.2/32" in lines[0] and f"--dport {port}" in lines[0]
            assert "-s 127.0.1.2/32 -d 127.0.1.1/32" in lines[1] and f"--sport {port}" in lines[1]
            assert all(f"--comment {nf.tag}" in ln and ln.endswith("-j DROP") for ln in lines)
            cli.sendall(b"ping")
            peer.sendall(b"pong")
            with pytest.raises(TimeoutError):
                peer.recv(16)
            with pytest.raises(TimeoutError):
                cli.recv(16)
            nf.remove(there)
            nf.remove(there)                      # already gone: not an error
            assert len(nf.rules()) == 1
            nf.remove(back)
            assert nf.rules() == []
            peer.settimeout(5)
            cli.settimeout(5)
            assert peer.recv(16) == b"ping"       # TCP retransmits once the path is back
            assert cli.recv(16) == b"pong"


def test_probability_one_drops_everything_and_bad_probabilities_are_refused(
        nf: Netfilter, server: socket.socket) -> None:
    port = server.getsockname()[1]
    nf.drop(dst=B, dport=port, probability=1.0)
    (line,) = nf.rules()
    assert "-m statistic --mode random --probability 1" in line
    assert not connects(A, (B, port), 0.5)
    assert not connects(C, (B, port), 0.5)
    for bad in (0, 0.0, 1.5, -0.1, float("nan")):
        with pytest.raises(ValueError, match="probability"):
            nf.drop(dst=B, dport=port, probability=bad)
    with pytest.raises(ValueError):
        nf.drop(probability=0.5)                  # no address or port: would drop all tcp
    with pytest.raises(ValueError):
        nf.drop(src="localhost")
    with pytest.raises(ValueError):
        nf.drop(dport=70000)
    assert len(nf.rules()) == 1                   # nothing was added by the refused calls
    for tag in ("", "has space", "x" * 201, "semi;colon"):
        with pytest.raises(ValueError, match="tag"):
            Netfilter(tag)


def test_leftovers_see_the_rules_of_a_tag_until_a_new_object_heals_them(nf: Netfilter) -> None:
    nf.drop(src=A, dst=B, dport=1)
    nf.drop(src=B, dst=A, sport=1, probability=0.25)
    mine = [ln for ln in leftovers() if f"--comment {nf.tag} " in ln]
    assert mine == nf.rules() and len(mine) == 2
    assert leftovers(nf.tag) == mine
    assert Netfilter(nf.tag).heal() == 2          # a later object with the tag of a crashed run
    assert nf.rules() == []
    assert not [ln for ln in leftovers() if nf.tag in ln]
    assert nf.heal() == 0
