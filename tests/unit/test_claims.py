"""cafe.claims: one live claimant per order id across replicas sharing a database; a claimant that
stops beating lets its claims go."""
from __future__ import annotations

import time
from pathlib import Path

from cafe import claims
from cafe.store import Database


def test_one_claimant_at_a_time_and_a_silent_one_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "barista.db"
    a = claims.Claims(Database(path, claims.SCHEMA), "barista-1", stale_s=0.3)
    b = claims.Claims(Database(path, claims.SCHEMA), "barista-2", stale_s=0.3)   # another process's view
    a.beat()
    b.beat()
    assert a.claim("o-1") is True                                    # claimed
    a.release("o-1")
    assert a.claim("o-1") is True                                    # and again by itself, after its brew
    assert b.claim("o-1") is False                                   # a live claimant holds it
    assert b.claim("o-2") is True and a.claim("o-2") is False
    time.sleep(0.4)
    b.beat()                                                         # a went silent (killed, frozen)
    assert b.claim("o-1") is True and b.taken_over == 1
    a.beat()                                                         # a is back: o-1 is b's now
    assert a.claim("o-1") is False


def test_a_claimant_that_never_beat_is_not_live(tmp_path: Path) -> None:
    path = tmp_path / "barista.db"
    a = claims.Claims(Database(path, claims.SCHEMA), "barista-1")
    b = claims.Claims(Database(path, claims.SCHEMA), "barista-2")
    assert a.claim("o-1") is True          # a never said it was alive
    assert b.claim("o-1") is True and b.taken_over == 1


def test_two_threads_of_one_replica_do_not_both_brew(tmp_path: Path) -> None:
    a = claims.Claims(Database(tmp_path / "barista.db", claims.SCHEMA), "barista-1")
    a.beat()
    assert a.claim("o-1") is True
    assert a.claim("o-1") is False            # another thread of the same replica: wait
    a.release("o-1")
    assert a.claim("o-1") is True             # the claim is still this replica's
