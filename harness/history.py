"""The history of one run: every operation and observation as JSON lines (Jepsen-style).

Records are plain dicts with a "type". Times are wall-clock epoch seconds (see docs/architecture.md,
"One clock"); `ref` is the order's index in the arrival schedule, carried by both shops into their
brew and serving records, so the harness matches what it sent with what the shops did.

    {"type": "run", "experiment", "system", "seed", "profile", "t0", "config"}   first line
    {"type": "invoke", "ref", "intended", "sent", "order": {...}}                 an order sent
    {"type": "ok"|"fail"|"info", "ref", "time", "status", "order_id", "error"}   its completion
    {"type": "dropped", "ref", "intended", "reason"}                              never sent (generator)
    {"type": "brewed", "ref", "order_id", "time", "started", "barista"}           observed in the shop
    {"type": "served", "ref", "order_id", "time"}
    {"type": "backlog", "time", "total", ...}                                     sampled at an interval
    {"type": "fault", "phase": "start"|"end", "name", "kind", "target", "time"}
    {"type": "replicas", "service", "count", "time"}
    {"type": "end", "time", "complete": bool}                                     last line

Outcomes: `ok` the shop accepted the order, `fail` it definitely did not, `info` nobody knows.
`classify` is the only place that decides which.
"""
from __future__ import annotations

import heapq
import json
import math
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import orjson

from harness.errors import HistoryError

Record = dict[str, Any]

OK, FAIL, INFO = "ok", "fail", "info"

# transport error kinds, as the load driver reports them
REFUSED = "refused"      # connection refused / not established: the request never left
TIMEOUT = "timeout"      # the customer gave up waiting: the shop may have taken the order
RESET = "reset"          # connection dropped after sending: unknown
OTHER = "other"


def classify(status: int | None, error_kind: str | None, accepted_status: int) -> str:
    """ok / fail / info for one completed request.

    The accepted status (201 sync, 202 async) is ok; any other 2xx is info (unexpected answer);
    4xx is fail (refused, nothing stored); 5xx is info (the shop may have done part of it);
    a refused connection is fail; a timeout, a reset or anything else is info.
    """
    if status is not None:
        if status == accepted_status:
            return OK
        if 400 <= status < 500:
            return FAIL
        return INFO
    if error_kind == REFUSED:
        return FAIL
    return INFO


class HistoryWriter:
    """Appends records to `history.jsonl`, flushing each batch; thread-safe.

    Use as a context manager: on exit the last line says whether the run completed
    (`complete` is False after an exception or Ctrl-C), and the file is flushed and closed.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = self.path.open("w", encoding="utf-8")
        self._lock = threading.Lock()
        self.records: list[Record] = []
        self._shared: dict[str, str] = {}   # one string object per recurring value (see load)

    def write(self, record: Record) -> None:
        with self._lock:
            self.records.append(_share(record, self._shared))
            self._file.write(json.dumps(record, separators=(",", ":")) + "\n")

    def write_all(self, records: Iterable[Record]) -> None:
        with self._lock:
            for record in records:
                self.records.append(_share(record, self._shared))
                self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
            self._file.flush()

    def flush(self) -> None:
        with self._lock:
            self._file.flush()

    def absorb(self, paths: Sequence[Path]) -> int:
        """Merge the records of `paths` (JSON-lines files written beside this history, each in the
        order its records happened: the load driver's shards) into this history in time order
        (`merge_lines`), then delete them; returns how many lines were added.

        Lines are copied as they are (the format does not change). Afterwards `records` holds the
        whole history (this writer's records and the absorbed ones, as in the file) and writing
        goes on at its end. A path that does not exist is skipped, so absorbing twice is harmless.
        """
        sources = [Path(p) for p in paths if Path(p).is_file()]
        if not sources:
            return 0
        with self._lock:
            self._file.flush()
            self._file.close()
            merged = self.path.with_name(self.path.name + ".merging")
            with merged.open("wb") as out:
                count = 0
                for line in merge_lines([self.path, *sources]):
                    out.write(line)
                    count += 1
            merged.replace(self.path)
            self._file = self.path.open("a", encoding="utf-8")
            added = count - len(self.records)
            self.records[:] = load(self.path, self._shared)   # in place: others hold this list (the scaler)
            for source in sources:
                source.unlink()
        return added

    def close(self, *, complete: bool, time: float) -> None:
        with self._lock:
            if self._file.closed:
                return
        self.write({"type": "end", "time": time, "complete": complete})
        with self._lock:
            self._file.flush()
            self._file.close()

    def __enter__(self) -> "HistoryWriter":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        import time as _time

        self.close(complete=exc_type is None, time=_time.time())


def record_time(record: Record) -> float | None:
    """When a record happened, for ordering: its "time", else "sent" (invoke), else "intended"
    (dropped); None for a record without one (the run record)."""
    for key in ("time", "sent", "intended"):
        value = record.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    return None


def merge_lines(paths: Sequence[Path]) -> Iterator[bytes]:
    """The lines of JSON-lines files merged by `record_time`, each file's lines kept in their order.

    Each file is taken to be in the order its records happened; a record without a time takes
    the time of the one before it in its file (the run record, first, sorts before everything).
    At equal times the earlier file comes first. Every line is yielded exactly once, unchanged
    (a missing final newline is added); a truncated last line (no newline: its writer died
    mid-line) is dropped, as `load` does.
    """
    def keyed(index: int, path: Path) -> Iterator[tuple[float, int, int, bytes]]:
        last = -math.inf
        with Path(path).open("rb") as f:
            for seq, line in enumerate(f):
                if not line.endswith(b"\n"):
                    try:
                        orjson.loads(line)
                    except orjson.JSONDecodeError:
                        return   # the writer died mid-line
                    line += b"\n"
                if not line.strip():
                    continue
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise HistoryError(f"{path}: line {seq + 1} is not JSON ({exc}): {line[:80]!r}") from None
                if not isinstance(record, dict):
                    raise HistoryError(f"{path}: line {seq + 1} is not a JSON object: {line[:80]!r}")
                when = record_time(record)
                last = when if when is not None else last
                yield last, index, seq, line

    for _when, _index, _seq, line in heapq.merge(*(keyed(i, p) for i, p in enumerate(paths))):
        yield line


# values that recur across a history's records (an order's ref and id are in its invoke, its
# outcome, its brew, its serving and its order record): load() keeps one string object for each
_SHARED_VALUES = ("type", "ref", "order_id", "brew_id", "barista", "status", "error_kind", "service", "target",
                  "kind", "name", "phase", "customer", "product", "size")


def _share(record: Record, shared: dict[str, str]) -> Record:
    """`record` with each recurring string value (`_SHARED_VALUES`, and an invoke's order) replaced
    by the equal string already in `shared` (the record itself, changed in place)."""
    for key in _SHARED_VALUES:
        value = record.get(key)
        if type(value) is str:
            record[key] = shared.setdefault(value, value)
    order = record.get("order")
    if type(order) is dict:
        for key, value in order.items():
            if type(value) is str:
                order[key] = shared.setdefault(value, value)
    return record


def load(path: Path, shared: dict[str, str] | None = None) -> list[Record]:
    """Every record of a history file. Only a truncated last line (a crash mid-write: no newline
    at its end) is skipped; any other line that does not decode to a JSON object raises
    HistoryError, because a lost `ok` line would turn an accepted order into an unknown one and
    hide a loss.

    Read line by line with orjson (the json module only for what orjson refuses, such as NaN),
    keeping one string object per recurring value (`_SHARED_VALUES`, also inside an invoke's
    order): a 50,000-order history (250,000 records) takes about 100 MB in memory instead of 250.
    """
    records: list[Record] = []
    shared = {} if shared is None else shared
    with Path(path).open("rb") as f:
        for number, line in enumerate(f, start=1):
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                try:
                    record = json.loads(line)
                except ValueError:
                    if not line.endswith(b"\n"):
                        break   # the writer died mid-line (only the last line can lack its newline)
                    text = line[:80].decode("utf-8", "replace")
                    raise HistoryError(f"{path}: line {number} is not JSON ({exc}): {text!r}") from None
            if not isinstance(record, dict):
                text = line[:80].decode("utf-8", "replace")
                raise HistoryError(f"{path}: line {number} is not a JSON object: {text!r}")
            records.append(_share(record, shared))
    return records


def run_record(history: list[Record]) -> Record:
    """The first "run" record (t0, system, ...); raises ValueError if the history has none."""
    for record in history:
        if record.get("type") == "run":
            return record
    raise ValueError("history has no run record")
