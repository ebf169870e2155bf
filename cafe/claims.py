"""Durable claims on order ids, shared by the barista replicas of a shop through their database.

Both shops' baristas follow the same rule when idempotency is on: before brewing an order, a
replica claims its order id in the shared database (one row per order id, in a BEGIN IMMEDIATE
transaction, so two processes cannot both win). A replica that finds the order claimed by another
live replica does not brew: it waits for that brew and answers with it. A claim is live while its
claimant's heartbeat (`beat`, every `BEAT_S` by each replica) is fresher than `stale_s`; a killed
or frozen replica stops beating, and its claims can then be taken over, so no order is stuck
behind a dead claimant. When a frozen claimant comes back and finishes its brew too, two coffees
were made: both brews are recorded and the harness counts the duplicate, the same way in both
shops.
"""
from __future__ import annotations

import threading
import uuid

from cafe.store import Database, now

SCHEMA = """
CREATE TABLE IF NOT EXISTS claims (        -- who may brew an order id (idempotency on)
    order_id TEXT PRIMARY KEY,
    claimant TEXT NOT NULL,
    claimed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS claimants (     -- each replica's heartbeat
    claimant TEXT PRIMARY KEY,
    seen_at REAL NOT NULL
);
"""
BEAT_S = 0.25       # how often a replica says it is alive (s)
STALE_S = 2.0       # a claimant not heard from for this long has let its claims go (s)
WAIT_POLL_S = 0.02  # how often a replica waiting for another's brew looks again (s)


class Claims:
    """The claims of one replica (`name`, made unique per process start) on a shared database."""

    def __init__(self, db: Database, name: str, stale_s: float = STALE_S) -> None:
        """`db` must have been opened with SCHEMA in its schema."""
        self.db, self.stale_s = db, stale_s
        self.me = f"{name}:{uuid.uuid4().hex[:8]}"
        self.taken_over = 0
        self._lock = threading.Lock()
        self._brewing: set[str] = set()   # order ids a thread or task of this replica is brewing now

    def beat(self) -> None:
        """Say this replica is alive (call every BEAT_S)."""
        with self.db.transaction() as tx:
            tx.execute("INSERT INTO claimants (claimant, seen_at) VALUES (?, ?) ON CONFLICT (claimant)"
                       " DO UPDATE SET seen_at = excluded.seen_at", (self.me, now()))

    def claim(self, order_id: str) -> bool:
        """True if this replica may brew `order_id` now: unclaimed, claimed by itself (and no other
        thread of it is brewing it), or claimed by a replica whose heartbeat is older than `stale_s`
        (taken over); False while another live replica, or another thread of this one, holds it.
        After True the caller brews and then calls `release`."""
        with self._lock:
            if order_id in self._brewing:
                return False
            if not self._claim(order_id):
                return False
            self._brewing.add(order_id)
            return True

    def release(self, order_id: str) -> None:
        """This replica's brew of `order_id` is over (recorded, or failed): its other threads may look
        again. The claim itself stays: the order is this replica's."""
        with self._lock:
            self._brewing.discard(order_id)

    def _claim(self, order_id: str) -> bool:
        with self.db.transaction() as tx:
            row = tx.execute("SELECT c.claimant, m.seen_at FROM claims c LEFT JOIN claimants m"
                             " ON m.claimant = c.claimant WHERE c.order_id = ?", (order_id,)).fetchone()
            if row is None:
                tx.execute("INSERT INTO claims (order_id, claimant, claimed_at) VALUES (?, ?, ?)",
                           (order_id, self.me, now()))
                return True
            claimant, seen_at = row[0], row[1]
            if claimant == self.me:
                return True
            if seen_at is None or now() - float(seen_at) > self.stale_s:
                tx.execute("UPDATE claims SET claimant = ?, claimed_at = ? WHERE order_id = ?",
                           (self.me, now(), order_id))
                self.taken_over += 1
                return True
            return False
