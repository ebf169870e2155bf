"""cafe.store's awaited calls: off the event loop on the database's own thread, grouped under one
COMMIT and answered only after it, a failing call rolled back alone, a failing COMMIT failing the
whole group, reads that take no write lock, cafe.claims through `call`, and the blocking API from
other threads still beside it."""
from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from cafe import claims
from cafe.store import Database

SCHEMA = "CREATE TABLE IF NOT EXISTS cups (seq INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE);"


def pour(tx: sqlite3.Connection, name: str) -> int:
    return int(tx.execute("INSERT INTO cups (name) VALUES (?)", (name,)).lastrowid or 0)


def names(db: Database) -> list[str]:
    return [r["name"] for r in db.query("SELECT name FROM cups ORDER BY seq")]


async def together(db: Database, *calls: Any) -> list[Any]:
    """Run the awaitables `calls` (db calls) as one group: the database's thread is kept busy by a
    first call until they are all queued. Their outcomes, exceptions included."""
    gate = threading.Event()
    busy = asyncio.ensure_future(db.call(gate.wait))
    await asyncio.sleep(0.05)                          # the thread is inside gate.wait
    jobs = [asyncio.ensure_future(c) for c in calls]
    await asyncio.sleep(0)                             # every job has queued its call
    gate.set()
    await busy
    return list(await asyncio.gather(*jobs, return_exceptions=True))


def test_an_awaited_call_runs_on_the_databases_thread_not_the_loop(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.db", SCHEMA)

    async def run() -> tuple[str, int, list[dict[str, Any]]]:
        where = await db.call(lambda: threading.current_thread().name)
        seq = await db.atomic(pour, "a")
        return where, seq, await db.fetch("SELECT name FROM cups")

    where, seq, rows = asyncio.run(run())
    db.close()
    assert where == "db:x.db" and seq == 1 and rows == [{"name": "a"}]


def test_calls_queued_together_share_one_commit_and_answer_only_after_it(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.db", SCHEMA)
    seen_by_another_connection: list[bool] = []

    async def one(i: int) -> None:
        await db.atomic(pour, f"cup-{i}")
        other = sqlite3.connect(db.path)                   # what any other reader (process) sees now
        stored = other.execute("SELECT 1 FROM cups WHERE name = ?", (f"cup-{i}",)).fetchone() is not None
        other.close()
        seen_by_another_connection.append(stored)

    asyncio.run(together(db, *(one(i) for i in range(50))))
    assert all(seen_by_another_connection) and len(seen_by_another_connection) == 50   # committed before answered
    assert sorted(names(db)) == sorted(f"cup-{i}" for i in range(50))
    assert db.grouped == 51 and db.groups == 2 and db.commits == 1                     # the gate, then one group
    db.close()


def test_a_call_that_raises_is_rolled_back_alone_and_the_others_of_its_group_stand(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.db", SCHEMA)

    def pour_then_fail(tx: sqlite3.Connection) -> None:
        pour(tx, "spilled")
        raise RuntimeError("dropped the cup")

    opening, first, failed, duplicate, last = asyncio.run(together(
        db, db.atomic(pour_then_fail), db.atomic(pour, "a"), db.atomic(pour_then_fail), db.atomic(pour, "a"),
        db.atomic(pour, "b")))
    assert isinstance(opening, RuntimeError) and first == 1 and isinstance(failed, RuntimeError)
    assert isinstance(duplicate, sqlite3.IntegrityError)
    assert names(db) == ["a", "b"] and last == 2 and db.commits == 1
    db.close()


def test_a_commit_that_fails_fails_every_call_of_its_group_and_stores_none(tmp_path: Path) -> None:
    schema = SCHEMA + """CREATE TABLE IF NOT EXISTS lids (cup TEXT REFERENCES cups (name) DEFERRABLE INITIALLY
                         DEFERRED);"""
    db = Database(tmp_path / "x.db", schema)
    db.query("PRAGMA foreign_keys = ON")

    def lid_without_cup(tx: sqlite3.Connection) -> None:
        tx.execute("INSERT INTO lids (cup) VALUES ('nowhere')")   # checked at COMMIT only (deferred)

    outcomes = asyncio.run(together(db, db.atomic(pour, "a"), db.atomic(lid_without_cup)))
    assert all(isinstance(o, sqlite3.IntegrityError) for o in outcomes) and names(db) == []
    assert db.query("SELECT * FROM lids") == [] and db.commits == 0
    assert asyncio.run(db.atomic(pour, "b")) == 1 and names(db) == ["b"]       # the next group is fine
    db.close()


def test_a_group_that_only_reads_takes_no_write_lock(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.db", SCHEMA)
    other = sqlite3.connect(db.path, isolation_level=None, timeout=0)
    other.execute("BEGIN IMMEDIATE")                 # another process holds the write lock meanwhile

    async def read() -> list[Any]:
        return list(await asyncio.gather(db.fetch("SELECT * FROM cups"), db.fetch_page("cups", 0, 10)))

    rows, page = asyncio.run(read())
    other.execute("ROLLBACK")
    other.close()
    assert rows == [] and page == {"items": [], "next": None} and db.commits == 0
    db.close()


def test_claims_through_call_are_savepoints_of_the_group_and_still_exclusive(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.db", claims.SCHEMA)
    mine, theirs = claims.Claims(db, "barista-1"), claims.Claims(db, "barista-2")

    async def race() -> list[bool]:
        await together(db, db.call(mine.beat), db.call(theirs.beat))
        return await together(db, db.call(mine.claim, "o-1"), db.call(theirs.claim, "o-1"),
                              db.call(theirs.claim, "o-2"))

    assert asyncio.run(race()) == [True, False, True] and db.commits == 2
    assert {r["order_id"]: r["claimant"] for r in db.query("SELECT * FROM claims")} == {
        "o-1": mine.me, "o-2": theirs.me}
    db.close()


def test_the_blocking_api_from_another_thread_goes_on_beside_the_awaited_calls(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.db", SCHEMA)

    def by_hand() -> None:
        for i in range(100):
            with db.transaction() as tx:
                pour(tx, f"thread-{i}")

    async def both() -> None:
        worker = threading.Thread(target=by_hand)
        worker.start()
        await asyncio.gather(*(db.atomic(pour, f"loop-{i}") for i in range(100)))
        await asyncio.get_running_loop().run_in_executor(None, worker.join)

    asyncio.run(both())
    assert len(names(db)) == 200
    db.close()


def test_close_finishes_what_was_queued_and_refuses_what_comes_after(tmp_path: Path) -> None:
    db = Database(tmp_path / "x.db", SCHEMA)

    async def run() -> None:
        queued = [asyncio.ensure_future(db.atomic(pour, f"cup-{i}")) for i in range(10)]
        await asyncio.sleep(0)                          # the calls are queued
        await asyncio.get_running_loop().run_in_executor(None, db.close)
        assert [await q for q in queued] == list(range(1, 11))
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            await db.fetch("SELECT * FROM cups")

    asyncio.run(run())
    reopened = Database(db.path, SCHEMA)
    assert len(names(reopened)) == 10
    reopened.close()
