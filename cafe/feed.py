"""An Atom-style paged feed (RFC 5005 "archived feeds", in JSON) over a table with a gapless `seq`.

Page k (k >= 1) holds the rows with seq in ((k-1)·size, k·size]. Rows are only appended and `seq`
has no gaps, so a full page never changes again: it is *archived*, and readers and caches may keep
it. The *current* page is the one after the last full page (possibly empty).

    GET /feed      the current page, with links to the previous (older) archive
    GET /feed/{k}  page k, with `prev-archive`, and `next-archive` or `current`

Entries in a page are newest first (as in Atom). A reader that starts from nothing follows
`prev-archive` from /feed back to page 1 (or to the page it remembers), then reads forward; a
reader that remembers its last page reads `/feed/{k}` and follows `next-archive`. Each entry's
`seq` lets it skip what it already processed, so a restart never handles an entry twice.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def page_count(last_seq: int, size: int) -> int:
    """The number of the current page: the one that will hold last_seq + 1 (1 when empty)."""
    return last_seq // size + 1


def bounds(page: int, size: int) -> tuple[int, int]:
    """(after, until): page `page` holds seq in (after, until]."""
    return (page - 1) * size, page * size


def document(page: int, rows: Sequence[dict[str, Any]], *, size: int, last_seq: int, base: str,
             feed_id: str, entry: Any) -> dict[str, Any]:
    """The JSON document of page `page` given its rows (any order) and the table's last seq.
    `entry(row)` maps a row to its entry; `base` is the feed's path (e.g. "/feed")."""
    current = page_count(last_seq, size)
    archived = page < current
    links: dict[str, str] = {"self": f"{base}/{page}" if archived else base, "via": f"{base}/{page}",
                             "current": base}
    if page > 1:
        links["prev-archive"] = f"{base}/{page - 1}"
    if archived and page + 1 < current:
        links["next-archive"] = f"{base}/{page + 1}"
    ordered = sorted(rows, key=lambda r: r["seq"], reverse=True)
    return {"id": feed_id, "page": page, "archived": archived, "pageSize": size, "links": links,
            "entries": [entry(r) for r in ordered]}
