"""SQLite access for the services: one database file per service, WAL mode, short transactions."""
from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def now() -> float:
    """The one clock of chaoscafe: wall-clock seconds since the epoch (CLOCK_REALTIME), shared by all processes."""
    return time.time()


class Database:
    """A service's own SQLite database. Safe to use from several threads (one connection, one lock)."""

    def __init__(self, path: str | Path, schema: str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
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
        """One atomic transaction (BEGIN IMMEDIATE ... COMMIT, ROLLBACK on error)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(row) for row in self._conn.execute(sql, params).fetchall()]

    def page(self, table: str, after: int, limit: int) -> dict[str, Any]:
        """Rows of `table` with seq > after, oldest first: {"items": [...], "next": seq or None}."""
        rows = self.query(f"SELECT * FROM {table} WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit))
        return {"items": rows, "next": rows[-1]["seq"] if len(rows) == limit else None}

    def close(self) -> None:
        with self._lock:
            self._conn.close()
