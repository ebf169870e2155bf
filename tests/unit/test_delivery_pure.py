"""Delivery semantics, the pure parts: fault hooks, the Atom-style feed, the newcomer checker,
loyalty totals and the ledger's per-hop duplicate accounting, on hand-built inputs."""
from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from cafe import feed
from cafe.hooks import Hooks, chosen
from harness.checkers import CheckOptions, Ledger, Newcomer
from harness.newcomers.latecomer import ANONYMOUS, compare_points, expected_points

T0 = 1_000.0


# --- hooks ---------------------------------------------------------------------------------------


def test_chosen_is_deterministic_and_close_to_the_rate() -> None:
    picks = [chosen(str(i), 0.1, 7) for i in range(10_000)]
    assert picks == [chosen(str(i), 0.1, 7) for i in range(10_000)]
    assert 900 < sum(picks) < 1100
    assert picks != [chosen(str(i), 0.1, 8) for i in range(10_000)]     # another seed, other orders
    assert not any(chosen(str(i), 0.0, 7) for i in range(100))
    assert all(chosen(str(i), 1.0, 7) for i in range(100))


def test_hooks_arm_count_and_disarm() -> None:
    hooks = Hooks()
    hooks.arm({"crash_before_ack": {"rate": 1, "seed": 2}, "silent": True}, ("crash_before_ack", "silent"))
    assert hooks.silent and hooks.hits("crash_before_ack", "5") and hooks.fired == {"crash_before_ack": 1}
    hooks.arm({}, ("crash_before_ack", "silent"))
    assert not hooks.silent and not hooks.hits("crash_before_ack", "5")
    assert hooks.state()["fired"] == {"crash_before_ack": 1}


@pytest.mark.parametrize(("body", "words"), [
    ({"duplicate_publish": {"rate": 1}}, "duplicate_publish: not a hook of this service"),
    ({"crash_before_ack": {"rate": 2}}, "crash_before_ack.rate: must be a number in [0, 1]"),
    ({"crash_before_ack": {"rate": 0.5, "seed": "x"}}, "crash_before_ack.seed: must be an integer"),
    ({"crash_before_ack": {"every": 1}}, "crash_before_ack: must be"),
    ({"silent": "yes"}, "silent: must be true or false"),
])
def test_bad_hook_bodies_name_the_field(body: dict[str, Any], words: str) -> None:
    hooks = Hooks()
    with pytest.raises(ValueError) as info:
        hooks.arm(body, ("crash_before_ack", "silent"))
    assert words in str(info.value)
    assert hooks.rates == {} and not hooks.silent


# --- the feed ------------------------------------------------------------------------------------


def rows(seqs: range) -> list[dict[str, Any]]:
    return [{"seq": s} for s in seqs]


def doc(page: int, last: int, size: int = 10) -> dict[str, Any]:
    after, until = feed.bounds(page, size)
    return feed.document(page, rows(range(after + 1, min(until, last) + 1)), size=size, last_seq=last,
                         base="/feed", feed_id="urn:x", entry=lambda r: {"seq": r["seq"]})


def test_feed_pages_links_and_archiving() -> None:
    assert feed.page_count(0, 10) == 1 and feed.page_count(9, 10) == 1
    assert feed.page_count(10, 10) == 2 and feed.page_count(25, 10) == 3
    current = doc(3, 25)
    assert not current["archived"] and current["links"] == {"self": "/feed", "via": "/feed/3", "current": "/feed",
                                                            "prev-archive": "/feed/2"}
    assert [e["seq"] for e in current["entries"]] == [25, 24, 23, 22, 21]        # newest first
    first = doc(1, 25)
    assert first["archived"] and "prev-archive" not in first["links"]
    assert first["links"]["next-archive"] == "/feed/2" and first["links"]["self"] == "/feed/1"
    assert len(first["entries"]) == 10
    second = doc(2, 25)
    assert second["archived"] and "next-archive" not in second["links"]           # next is the current page
    assert doc(1, 0)["entries"] == [] and not doc(1, 0)["archived"]


def test_a_page_is_archived_once_full_and_the_current_page_may_be_empty() -> None:
    assert not doc(1, 9)["archived"]
    assert doc(1, 10)["archived"] and doc(1, 10)["links"]["current"] == "/feed"
    empty = doc(2, 10)
    assert not empty["archived"] and empty["entries"] == [] and empty["links"]["prev-archive"] == "/feed/1"


def test_reading_the_feed_back_then_forward_sees_every_entry_once() -> None:
    last, seen, pages = 47, [], 0
    page = doc(feed.page_count(last, 10), last)
    while "prev-archive" in page["links"]:                                        # back to the start
        page = doc(int(page["links"]["prev-archive"].rsplit("/", 1)[1]), last)
        pages += 1
    while True:                                                                   # then forward
        seen += sorted(e["seq"] for e in page["entries"])
        if not page["archived"]:
            break
        nxt = page["links"].get("next-archive", "/feed/" + str(page["page"] + 1))
        page = doc(int(nxt.rsplit("/", 1)[1]), last)
    assert seen == list(range(1, last + 1)) and pages == 4


# --- the ledger's duplicates per hop -------------------------------------------------------------


def run(*records: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"type": "run", "t0": T0}, *records, {"type": "end", "time": T0 + 100, "complete": True}]


def order(ref: str, at: float, outcome: str = "ok", customer: str | None = None) -> list[dict[str, Any]]:
    invoke = {"type": "invoke", "ref": ref, "intended": T0 + at, "sent": T0 + at,
              "order": {"product": "Latte", "size": "small", **({"customer": customer} if customer else {})}}
    return [invoke, {"type": outcome, "ref": ref, "time": T0 + at + 0.01, "order_id": f"o{ref}"}]


def test_ledger_counts_duplicates_per_hop_and_redeliveries() -> None:
    history = run(*order("0", 1), *order("1", 2), *order("2", 3),
                  {"type": "brewed", "ref": "0", "order_id": "o0", "time": T0 + 2},
                  {"type": "brewed", "ref": "0", "order_id": "o0", "time": T0 + 3},      # brewed twice
                  {"type": "brewed", "ref": "1", "order_id": "o1", "time": T0 + 3},
                  {"type": "brewed", "ref": "2", "order_id": "o2", "time": T0 + 4},
                  {"type": "served", "ref": "0", "order_id": "o0", "time": T0 + 4},
                  {"type": "served", "ref": "1", "order_id": "o1", "time": T0 + 4},
                  {"type": "served", "ref": "1", "order_id": "o1", "time": T0 + 5},      # served twice
                  {"type": "served", "ref": "2", "order_id": "o2", "time": T0 + 5},
                  {"type": "redelivered", "ref": "0", "order_id": "o0", "time": T0 + 2.5},
                  {"type": "redelivered", "ref": "0", "order_id": "o0", "time": T0 + 2.6})
    data = Ledger().check(history, CheckOptions()).data
    assert (data["duplicate_brews"], data["duplicate_servings"], data["duplicated"]) == (1, 1, 2)
    assert data["redelivered"] == 1 and data["lost"] == 0
    assert data["samples"]["duplicated"] == ["0", "1"]


# --- loyalty totals ------------------------------------------------------------------------------


def test_expected_points_one_per_served_order_to_its_customer() -> None:
    history = run(*order("0", 1, customer="ann"), *order("1", 2, customer="ann"), *order("2", 3, customer="bob"),
                  *order("3", 4), *order("4", 5, "fail", customer="bob"),
                  {"type": "served", "ref": "0", "order_id": "o0", "time": T0 + 4},
                  {"type": "served", "ref": "0", "order_id": "o0", "time": T0 + 5},      # a duplicate cup
                  {"type": "served", "ref": "2", "order_id": "o2", "time": T0 + 5},
                  {"type": "served", "ref": "3", "order_id": "o3", "time": T0 + 6},
                  {"type": "served", "ref": None, "order_id": "stray", "time": T0 + 6})  # never ordered
    assert expected_points(history) == Counter({"ann": 1, "bob": 1, ANONYMOUS: 1})


def test_compare_points_names_every_wrong_customer() -> None:
    assert compare_points(Counter({"ann": 2, "bob": 1}), {"ann": 2, "bob": 1}) == {
        "correct": True, "expected_total": 3, "actual_total": 3, "wrong": {}, "customers_wrong": 0}
    result = compare_points(Counter({"ann": 2, "bob": 1}), {"ann": 4, "cat": 1})
    assert not result["correct"]
    assert result["wrong"] == {"ann": [2, 4], "bob": [1, 0], "cat": [0, 1]}
    assert (result["expected_total"], result["actual_total"]) == (3, 5)


# --- the newcomer --------------------------------------------------------------------------------


def brewed(ref: str, brew: str, at: float) -> dict[str, Any]:
    return {"type": "brewed", "ref": ref, "order_id": f"o{ref}", "brew_id": brew, "time": T0 + at}


def rang(brew: str, at: float) -> dict[str, Any]:
    return {"type": "rang", "brew_id": brew, "order_id": "x", "time": T0 + at}


def test_newcomer_every_later_brew_rings_once() -> None:
    history = run(*order("0", 1), *order("1", 6), *order("2", 7),
                  brewed("0", "b0", 4.9), brewed("1", "b1", 6.5), brewed("2", "b2", 7.5),
                  {"type": "joined", "service": "bell", "time": T0 + 5},
                  rang("b0", 5.1), rang("b1", 6.6), rang("b2", 7.6))
    result = Newcomer().check(history, CheckOptions())
    assert result.valid is True
    d = result.data
    assert (d["joined_s"], d["brewed_after_join"], d["rang"], d["missing"], d["early"]) == (5.0, 2, 3, 0, 1)
    assert d["acceptance_p99_before_ms"] == pytest.approx(10.0, abs=0.1)
    assert d["acceptance_p99_ratio"] == pytest.approx(1.0, abs=0.02)


def test_newcomer_missing_and_repeated_rings_fail() -> None:
    base = [*order("1", 6), brewed("1", "b1", 6.5), brewed("2", "b2", 7.5),
            {"type": "joined", "service": "bell", "time": T0 + 5}]
    missing = Newcomer().check(run(*base, rang("b1", 6.6)), CheckOptions())
    assert missing.valid is False and missing.data["missing"] == 1 and missing.data["samples"]["missing"] == ["2"]
    repeated = Newcomer().check(run(*base, rang("b1", 6.6), rang("b2", 7.6), rang("b2", 7.7)), CheckOptions())
    assert repeated.valid is False and repeated.data["repeated"] == 1
    assert Newcomer().check(run(*order("0", 1)), CheckOptions()).valid is None      # nobody joined
    never = Newcomer().check(run(*order("0", 1), {"type": "joined", "service": "bell", "time": None}), CheckOptions())
    assert never.valid is False and never.data["joined_s"] is None
