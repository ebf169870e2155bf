"""Sharding the schedule across generator workers, and merging the shards' records into one history.

Every arrival is in exactly one shard, each shard in time order; the merge keeps every line once,
unchanged, each file's order, and the history's time order; `HistoryWriter.absorb` leaves the
history as one file with the run record first and `records` updated in place.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.errors import HistoryError
from harness.history import HistoryWriter, load, merge_lines, record_time
from harness.load.schedule import ArrivalSchedule, build_schedule
from harness.load.shapes import Constant, Ramp
from harness.load.shards import (
    MAX_WORKERS,
    WORKERS_ENV,
    ShardFile,
    check_workers,
    configured_workers,
    default_workers,
    shard_arrivals,
    shard_of,
    shard_path,
)

MIX = {"Latte": 3.0, "Espresso": 1.0}
SIZES = {"Latte": ("small", "large"), "Espresso": ("small",)}


def schedule(rate: float = 50.0, duration: float = 4.0, process: str = "poisson", seed: int = 3) -> ArrivalSchedule:
    return build_schedule(Ramp(rate / 4, rate, duration), duration, process=process, seed=seed, menu_mix=MIX,
                          sizes=SIZES)


@given(workers=st.integers(1, MAX_WORKERS), seed=st.integers(0, 1000))
def test_every_arrival_is_in_exactly_one_shard_in_time_order(workers: int, seed: int) -> None:
    whole = schedule(seed=seed)
    shards = [shard_arrivals(whole, k, workers) for k in range(workers)]
    refs = [a.index for shard in shards for a in shard]
    assert sorted(refs) == list(range(len(whole)))          # all of them, none twice
    for k, shard in enumerate(shards):
        assert all(shard_of(a.index, workers) == k for a in shard)
        assert [a.offset_s for a in shard] == sorted(a.offset_s for a in shard)
        assert all(a is whole.arrivals[a.index] for a in shard)   # the schedule's own arrivals, not copies


def test_one_shard_is_the_whole_schedule_and_shards_share_the_rate() -> None:
    whole = build_schedule(Constant(100), 10, process="uniform", seed=1, menu_mix=MIX, sizes=SIZES)
    assert shard_arrivals(whole, 0, 1) == whole.arrivals
    counts = [len(shard_arrivals(whole, k, 3)) for k in range(3)]
    assert sum(counts) == 1000 and max(counts) - min(counts) <= 1
    with pytest.raises(ValueError, match=r"shard: must be in \[0, 3\)"):
        shard_arrivals(whole, 3, 3)


@pytest.mark.parametrize(("cpus", "workers"), [(1, 1), (2, 1), (3, 1), (4, 2), (6, 3), (8, 4), (64, 4)])
def test_default_workers_leave_the_shop_its_cores(cpus: int, workers: int) -> None:
    assert default_workers(cpus) == workers


def test_configured_workers_option_environment_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(WORKERS_ENV, raising=False)
    assert configured_workers(3) == (3, "option")
    assert configured_workers()[0] == default_workers()
    monkeypatch.setenv(WORKERS_ENV, "2")
    assert configured_workers() == (2, "environment")
    assert configured_workers(1) == (1, "option")
    monkeypatch.setenv(WORKERS_ENV, "many")
    with pytest.raises(ValueError, match=r"\$CHAOSCAFE_GENERATOR_WORKERS: must be a whole number"):
        configured_workers()
    for bad in (0, -1, MAX_WORKERS + 1):
        with pytest.raises(ValueError, match="must be in"):
            check_workers(bad)


def _fake_shard_records(arrivals: list[int], t0: float, rng: random.Random) -> list[dict[str, object]]:
    """What a shard writes, in the order it would: invokes at their times, completions later."""
    events: list[tuple[float, int, dict[str, object]]] = []
    for seq, ref in enumerate(arrivals):
        intended = t0 + ref * 0.01
        sent = intended + rng.random() * 0.002
        events.append((sent, seq, {"type": "invoke", "ref": str(ref), "intended": intended, "sent": sent,
                                   "order": {"product": "Latte", "size": "small"}}))
        if ref % 7 == 0:
            events.append((intended, seq, {"type": "dropped", "ref": str(ref), "intended": intended,
                                           "reason": "max_in_flight"}))
            events.pop(-2)
            continue
        done = sent + rng.random() * 0.05
        events.append((done, seq, {"type": "ok", "ref": str(ref), "time": done,
                                                         "status": 202, "order_id": f"o-{ref}", "error": None,
                                                         "error_kind": None}))
    events.sort(key=lambda e: (e[0], e[1]))
    return [e[2] for e in events]


def _write(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records))
    return path


def test_merge_keeps_every_line_once_each_files_order_and_time_order(tmp_path: Path) -> None:
    rng = random.Random(5)
    t0 = 1_000.0
    main = [{"type": "run", "t0": t0, "system": "sync"},
            *({"type": "backlog", "time": t0 + s / 4, "total": s} for s in range(20))]
    shards = [_fake_shard_records(list(range(k, 400, 3)), t0, rng) for k in range(3)]
    paths = [_write(tmp_path / "main.jsonl", main),
             *(_write(tmp_path / f"generator-{k}.jsonl", shard) for k, shard in enumerate(shards))]
    merged = list(merge_lines(paths))
    originals = [line for p in paths for line in p.read_bytes().splitlines(keepends=True)]
    assert sorted(merged) == sorted(originals)                       # every line once, unchanged
    records = [json.loads(line) for line in merged]
    assert records[0]["type"] == "run"                               # the run record stays first
    times = [record_time(r) for r in records[1:]]
    assert times == sorted(times)                                    # in time order
    for source in paths:                                             # each file's own order kept
        own = source.read_bytes().splitlines(keepends=True)
        positions = [merged.index(line) for line in own]
        assert positions == sorted(positions)


def test_merge_carries_times_forward_and_drops_a_truncated_last_line(tmp_path: Path) -> None:
    a = tmp_path / "a.jsonl"
    a.write_text('{"type":"run","t0":5}\n{"type":"x","time":2}\n{"type":"y"}\n{"type":"z","time":4}\n')
    b = tmp_path / "b.jsonl"
    b.write_text('{"type":"invoke","sent":1}\n{"type":"ok","time":3}\n{"type":"ok","ti')
    c = tmp_path / "c.jsonl"
    c.write_text('{"type":"ok","time":2.5}')   # no newline, yet whole: kept, as load keeps it
    merged = [json.loads(line)["type"] for line in merge_lines([a, b, c])]
    assert merged == ["run", "invoke", "x", "y", "ok", "ok", "z"]   # "y" stays after "x" (time 2)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"type":"ok","time":1}\n[1, 2]\n')
    with pytest.raises(HistoryError, match="line 2 is not a JSON object"):
        list(merge_lines([bad]))


def test_absorb_merges_shards_into_the_history_in_place(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    shard_files = [shard_path(tmp_path, k) for k in range(2)]
    with HistoryWriter(path) as history:
        held = history.records   # the scaler holds this list
        history.write({"type": "run", "t0": 10.0})
        history.write({"type": "fault", "phase": "start", "time": 10.5})
        for k, file in enumerate(shard_files):
            sink = ShardFile(file)
            for ref in range(k, 6, 2):
                sink.write({"type": "invoke", "ref": str(ref), "intended": 10 + ref * 0.2, "sent": 10 + ref * 0.2})
            sink.close()
        assert history.absorb(shard_files) == 6
        assert not any(f.exists() for f in shard_files)
        assert history.absorb(shard_files) == 0        # twice is harmless
        history.write({"type": "served", "ref": "0", "time": 20.0})
        assert held is history.records
        assert [r.get("ref") for r in held] == [None, "0", "1", "2", None, "3", "4", "5", "0"]
    on_disk = load(path)
    assert on_disk == held and on_disk[-1]["type"] == "end"


def test_load_shares_recurring_values_and_reads_what_json_wrote(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    order_id = "0b8e3f4a-8f44-4d5b-9a36-1d2b1c4e5f60"
    path.write_text(
        '{"type":"invoke","ref":"7","intended":1.0,"sent":1.0,"order":{"product":"Latte","size":"small"}}\n'
        f'{{"type":"ok","ref":"7","time":2.0,"status":201,"order_id":"{order_id}"}}\n'
        f'{{"type":"served","ref":"7","order_id":"{order_id}","time":3.0}}\n'
        '{"type":"backlog","time":3.5,"total":NaN}\n')
    invoke, ok, served, backlog = load(path)
    assert invoke["ref"] is ok["ref"] is served["ref"] and ok["order_id"] is served["order_id"]
    assert ok == {"type": "ok", "ref": "7", "time": 2.0, "status": 201, "order_id": order_id}
    assert backlog["total"] != backlog["total"]   # NaN, as json.dumps writes it


def test_the_cli_refuses_a_bad_worker_count_before_anything_starts(monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from harness.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["run", "steady-state", "--generator-workers", "0"])
    assert exit_info.value.code == 2 and "--generator-workers: must be in [1, 16]" in capsys.readouterr().err
    monkeypatch.setenv(WORKERS_ENV, "lots")
    assert main(["run", "steady-state", "--profile", "fast"]) == 2
    assert "$CHAOSCAFE_GENERATOR_WORKERS: must be a whole number" in capsys.readouterr().out   # error_line prints there
