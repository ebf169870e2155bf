"""The sync cashier's barista set (cafe/cashier.py): least-busy choice with round-robin ties,
replacement at runtime (`PUT /baristas`), and the body it accepts."""
from __future__ import annotations

import json

import pytest

from cafe import cashier

A, B, C = ("barista-1", "http://a"), ("barista-2", "http://b"), ("barista-3", "http://c")


def test_idle_baristas_are_taken_round_robin_and_busy_ones_avoided() -> None:
    baristas = cashier.Baristas([A, B])
    assert [baristas.acquire()[0] for _ in range(2)] == ["barista-1", "barista-2"]
    baristas.release("barista-1")                                 # barista-2 still busy
    assert baristas.acquire()[0] == "barista-1"
    assert baristas.calls() == {"barista-1": 1, "barista-2": 1}
    for name in ("barista-1", "barista-2"):
        baristas.release(name)
    firsts = [baristas.acquire()[0] for _ in range(4)]
    assert sorted(firsts) == ["barista-1", "barista-1", "barista-2", "barista-2"]


def test_replacing_the_set_keeps_calls_in_flight_and_counts_them() -> None:
    baristas = cashier.Baristas([A, B])
    assert baristas.acquire()[0] == "barista-1"
    baristas.replace([C, A])                                      # barista-1 stays, still busy
    assert baristas.calls() == {"barista-1": 1, "barista-3": 0}
    assert baristas.acquire()[0] == "barista-3"                   # the idle newcomer, not the busy one
    baristas.release("barista-1")
    assert baristas.calls() == {"barista-1": 0, "barista-3": 1}


def test_a_departed_barista_is_forgotten_once_its_calls_end() -> None:
    baristas = cashier.Baristas([A, B])
    assert baristas.acquire()[0] == "barista-1"
    baristas.replace([B])
    assert baristas.members() == [{"name": "barista-2", "url": "http://b"}]
    assert baristas.calls() == {"barista-1": 1, "barista-2": 0}
    assert baristas.acquire()[0] == "barista-2"                   # never the departed one
    baristas.release("barista-1")
    assert "barista-1" not in baristas.calls()


@pytest.mark.parametrize(("body", "words"), [
    (b"{", "malformed JSON"),
    (b'{"baristas": []}', "non-empty list"),
    (b'{"baristas": [{"name": "x"}]}', "name and an http:// url"),
    (b'{"baristas": [{"name": "x", "url": "ftp://y"}]}', "name and an http:// url"),
])
def test_bad_barista_sets_are_refused(body: bytes, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        cashier.parse_baristas(body)


def test_a_good_barista_set_parses() -> None:
    body = json.dumps({"baristas": [{"name": "barista-1", "url": "http://127.0.0.1:1"}]}).encode()
    assert cashier.parse_baristas(body) == [("barista-1", "http://127.0.0.1:1")]
