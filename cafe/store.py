"""SQLite access for the services: one database file per service, WAL mode, short transactions.

Two ways in, on the same connection and the same lock:

    from a thread (blocking)        db.transaction(), db.query(), db.page()
    from the event loop (awaited)   await db.call(fn, *args), db.atomic(fn, *args), db.fetch(sql), db.fetch_page();
                                    db.submit(fn, *args) queues without waiting (a future)

The awaited calls never run SQLite on the event loop: they queue `fn` for the database's own
thread (one per Database, started on the first awaited call, so a service that never awaits one
has none). The calls an event loop makes during one of its iterations are handed over together at
the start of its next one (one wake-up of the thread for all of them, not one each). That thread
is the only one to touch the connection while it works, so SQLite's one writer and WAL are kept as
they were. It takes every call handed over by then as one **group**:
runs them one after the other, the `transaction()`s opened by them all parts of one BEGIN
IMMEDIATE ... COMMIT around the group (opened by the first that writes, none if nobody writes;
each after the first a SAVEPOINT, so that it can be rolled back alone), then commits once, and only then hands every result back to its event loop (one wake-up
per group). So an awaited write returns after the COMMIT that holds it, never before ("201 only
once the order is stored"), and a burst of N orders costs one commit, not N.
A call that raises is rolled back to its savepoint alone; the others of its group stand. A COMMIT
that fails fails every call of the group (none of them is stored).

The group holds the database's lock while it runs: a function given to `call` must not wait for a
lock that another thread holds while that thread waits for this database (cafe.claims.Claims is
used either from threads or through `call` on one Database, not both at once).
"""
from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
MAX_GROUP = 256   # calls committed together at most, about (a group is what was handed over when the thread looked)


def now() -> float:
    """The one clock of chaoscafe: wall-clock seconds since the epoch (CLOCK_REALTIME), shared by all processes."""
    return time.time()


@dataclass
class _Call:
    """One awaited call: `fn(*args)` for the future of `loop`."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]


@dataclass
class _Group:
    """The calls the database's thread runs under one COMMIT."""

    begun: bool = False          # BEGIN IMMEDIATE issued (some call opened a transaction)
    savepoints: int = 0
    outcomes: list[tuple[_Call, bool, Any]] = field(default_factory=list)   # (call, ok, result or exception)


def _settle(outcomes: list[tuple[_Call, bool, Any]]) -> None:
    """On the event loop: each call's future gets its result (a cancelled waiter is skipped)."""
    for call, ok, value in outcomes:
        if call.future.done():
            continue
        if ok:
            call.future.set_result(value)
        else:
            call.future.set_exception(value)


class Database:
    """A service's own SQLite database. Safe to use from several threads (one connection, one lock),
    and from an event loop through the awaited calls (the database's own thread, group commits)."""

    def __init__(self, path: str | Path, schema: str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        self._group: _Group | None = None        # set by the database's thread while it runs a group
        self._calls: queue.SimpleQueue[list[_Call] | None] = queue.SimpleQueue()
        self._pending: dict[asyncio.AbstractEventLoop, list[_Call]] = {}   # made this loop iteration
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()      # not self._lock: another thread may hold that for a while
        self._closed = False
        self.groups = 0      # groups run by the database's thread so far
        self.commits = 0     # ... of which wrote (one COMMIT each)
        self.grouped = 0     # awaited calls run so far
        with self._lock:
            self._setup(schema)

    def _setup(self, schema: str, attempts: int = 50) -> None:
        """WAL mode and the schema. Opening a database shared with a replica that was just
        SIGKILLed can meet SQLITE_BUSY without the busy handler being asked (WAL recovery needs
        an exclusive lock for a moment), so a locked database is tried again for a few seconds."""
        for attempt in range(attempts):
            try:
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")
                self._conn.executescript(schema)
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == attempts - 1:
                    raise
                time.sleep(0.1 + 0.01 * attempt)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic transaction (BEGIN IMMEDIATE ... COMMIT, ROLLBACK on error). Inside a group of
        the database's thread (a function run by `call`): a SAVEPOINT of the group's transaction,
        committed with the group (rolled back alone on error)."""
        with self._lock:
            group = self._group   # only the database's thread sees one: it holds the lock while it runs a group
            if group is None:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
                return
            if not group.begun:   # the group's first: nothing before it to keep, so no savepoint needed
                self._conn.execute("BEGIN IMMEDIATE")
                group.begun = True
                try:
                    yield self._conn
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    group.begun = False
                    raise
                return
            group.savepoints += 1
            name = f"call{group.savepoints}"
            self._conn.execute(f"SAVEPOINT {name}")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute(f"ROLLBACK TO {name}")
                self._conn.execute(f"RELEASE {name}")
                raise
            self._conn.execute(f"RELEASE {name}")

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(row) for row in self._conn.execute(sql, params).fetchall()]

    def page(self, table: str, after: int, limit: int) -> dict[str, Any]:
        """Rows of `table` with seq > after, oldest first: {"items": [...], "next": seq or None}."""
        rows = self.query(f"SELECT * FROM {table} WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit))
        return {"items": rows, "next": rows[-1]["seq"] if len(rows) == limit else None}

    # -- awaited: off the event loop, on the database's thread, group-committed ----------------------

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on the database's thread; its result (or exception) once the group it ran in
        is committed. `fn` uses this database's blocking API (`transaction`, `query`) as a thread would."""
        return await self.submit(fn, *args)

    def submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """`call` without waiting for it (from the event loop): `fn(*args)` is queued for the
        database's thread, in order with the other calls; the future is its outcome."""
        if self._closed:
            raise sqlite3.ProgrammingError(f"{self.path}: the database is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        if self._thread is None:
            with self._starting:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._serve, name=f"db:{self.path.name}", daemon=True)
                    self._thread.start()
        pending = self._pending.get(loop)
        if pending is None:   # the first call of this loop iteration: hand them all over in the next one
            pending = self._pending[loop] = []
            loop.call_soon(self._hand_over, loop)
        pending.append(_Call(fn, args, loop, future))
        return future

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        calls = self._pending.pop(loop, None)
        if calls:
            self._calls.put(calls)

    async def atomic(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(tx, *args)` in one transaction (a savepoint of a group), off the event loop; returns after the COMMIT."""

        def run() -> T:
            with self.transaction() as tx:
                return fn(tx, *args)

        return await self.call(run)

    async def fetch(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """`query` off the event loop."""
        return await self.call(self.query, sql, params)

    async def fetch_page(self, table: str, after: int, limit: int) -> dict[str, Any]:
        """`page` off the event loop."""
        return await self.call(self.page, table, after, limit)

    def _serve(self) -> None:
        """The database's thread: a group per wake-up, until close() queues None."""
        while True:
            first = self._calls.get()
            if first is None:
                return
            calls = list(first)
            stop = False
            while len(calls) < MAX_GROUP:
                try:
                    more = self._calls.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                calls.extend(more)
            self._run_group(calls)
            if stop:
                return

    def _run_group(self, calls: list[_Call]) -> None:
        with self._lock:
            group = self._group = _Group()
            try:
                for call in calls:
                    try:
                        group.outcomes.append((call, True, call.fn(*call.args)))
                    except BaseException as exc:   # the call's own failure: its savepoint is rolled back
                        group.outcomes.append((call, False, exc))
            finally:
                self._group = None
            if group.begun:
                try:
                    self._conn.execute("COMMIT")
                    self.commits += 1
                except BaseException as exc:   # nothing of the group is stored: every call says so
                    try:
                        self._conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass
                    group.outcomes = [(call, False, exc) for call in calls]
            self.groups += 1
            self.grouped += len(calls)
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Call, bool, Any]]] = {}
        for outcome in group.outcomes:
            by_loop.setdefault(outcome[0].loop, []).append(outcome)
        for loop, outcomes in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, outcomes)
            except RuntimeError:   # that loop is closed: nobody waits any more
                pass

    def close(self) -> None:
        """Finish the calls already queued (their group commits), stop the thread, close the connection."""
        self._closed = True
        for loop in list(self._pending):   # made in this loop iteration, not handed over yet
            self._hand_over(loop)
        if self._thread is not None:
            self._calls.put(None)
            self._thread.join()
        with self._lock:
            self._conn.close()
