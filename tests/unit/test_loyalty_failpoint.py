"""The loyalty service's failpoint (systems/newcomers/loyalty.py, `hold_at_awarded`): a batch is cut
where the hold begins, the hold is spent for a process that starts past it, and a restart
resumes from the stored position without awarding twice."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def loyalty() -> ModuleType:
    spec = importlib.util.spec_from_file_location("loyalty_under_test", ROOT / "systems/newcomers/loyalty.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_cut_keeps_at_most_room_awards_and_what_lies_between(loyalty: ModuleType) -> None:
    rows = [{"seq": 1}, {"seq": 2, "status": "brewing"}, {"seq": 3}, {"seq": 4}]
    awards = loyalty.served
    assert loyalty.cut(rows, awards, None) == rows
    assert loyalty.cut(rows, awards, 0) == []
    assert [r["seq"] for r in loyalty.cut(rows, awards, 1)] == [1, 2]   # the next award is cut off
    assert [r["seq"] for r in loyalty.cut(rows, awards, 2)] == [1, 2, 3]
    assert loyalty.cut(rows, awards, 5) == rows


def test_ledger_holds_at_its_count_and_a_restart_past_it_reads_on(loyalty: ModuleType, tmp_path: Path) -> None:
    from cafe.store import Database

    db = Database(str(tmp_path / "loyalty.db"), loyalty.SCHEMA)
    ledger = loyalty.Ledger(db, hold_at=2)
    assert ledger.room() == 2 and not ledger.hold_reached()
    ledger.apply([("o1", "c1"), ("o2", "c2")], ("after", 2))
    assert ledger.room() == 0 and ledger.hold_reached() and ledger.held.is_set()
    again = loyalty.Ledger(db, hold_at=2)          # started again from its database
    assert again.room() is None and not again.hold_reached()
    assert again.position("after") == 2
    assert again.apply([("o1", "c1"), ("o3", "c1")], ("after", 3)) == 1   # o1 is not awarded twice
    points = {r["customer"]: r["points"] for r in db.query("SELECT customer, points FROM points")}
    assert points == {"c1": 2, "c2": 1}
    db.close()
