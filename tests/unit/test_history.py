"""Outcome classification (one place) and the history file."""
from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest

from harness.history import FAIL, INFO, OK, OTHER, REFUSED, RESET, TIMEOUT, HistoryWriter, classify, load, run_record
from harness.load.driver import error_kind


@pytest.mark.parametrize(("status", "kind", "accepted", "outcome"), [
    (201, None, 201, OK),
    (202, None, 202, OK),
    (202, None, 201, INFO),       # a 2xx the shop should not give: unknown
    (400, None, 201, FAIL),
    (413, None, 202, FAIL),
    (404, None, 202, FAIL),
    (500, None, 201, INFO),
    (503, None, 202, INFO),
    (504, None, 201, INFO),
    (None, REFUSED, 201, FAIL),
    (None, TIMEOUT, 201, INFO),
    (None, RESET, 202, INFO),
    (None, OTHER, 202, INFO),
    (None, None, 202, INFO),
])
def test_classify(status: int | None, kind: str | None, accepted: int, outcome: str) -> None:
    assert classify(status, kind, accepted) == outcome


def test_error_kinds_of_client_exceptions() -> None:
    assert error_kind(TimeoutError()) == TIMEOUT
    refused = aiohttp.ClientConnectorError(connection_key=None, os_error=ConnectionRefusedError(111, "refused"))  # type: ignore[arg-type]
    assert error_kind(refused) == REFUSED
    assert error_kind(aiohttp.ServerDisconnectedError()) == RESET
    assert error_kind(aiohttp.ClientOSError(104, "reset by peer")) == RESET
    assert error_kind(ValueError("odd")) == OTHER


def test_writer_appends_json_lines_and_marks_completion(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    with HistoryWriter(path) as history:
        history.write({"type": "run", "t0": 1.0})
        history.write_all([{"type": "invoke", "ref": "0"}, {"type": "ok", "ref": "0"}])
    records = load(path)
    assert [r["type"] for r in records] == ["run", "invoke", "ok", "end"]
    assert records[-1]["complete"] is True
    assert run_record(records)["t0"] == 1.0


def test_interrupted_history_is_flushed_and_marked_incomplete(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    with pytest.raises(KeyboardInterrupt), HistoryWriter(path) as history:
        history.write({"type": "run", "t0": 1.0})
        raise KeyboardInterrupt
    assert load(path)[-1] == {"type": "end", "time": load(path)[-1]["time"], "complete": False}


def test_load_skips_a_truncated_last_line(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    path.write_text(json.dumps({"type": "run", "t0": 0}) + "\n" + '{"type": "inv')
    assert load(path) == [{"type": "run", "t0": 0}]


@pytest.mark.parametrize("content, line", [
    ('{"type": "run", "t0": 0}\n{"type": "ok", "ref": "1"\n{"type": "end"}\n', 2),   # a broken line inside
    ('{"type": "run", "t0": 0}\n{"type": "ok"\n', 2),                               # broken, yet not truncated
    ('{"type": "run", "t0": 0}\n[1, 2]\n', 2),                                       # JSON, not a record
])
def test_load_refuses_anything_but_a_truncated_last_line(tmp_path: Path, content: str, line: int) -> None:
    from harness.history import HistoryError

    path = tmp_path / "history.jsonl"
    path.write_text(content)
    with pytest.raises(HistoryError, match=f"history.jsonl: line {line} "):
        load(path)
