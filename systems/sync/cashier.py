"""Sync shop, cashier service: `POST /orders` asks a barista to brew over HTTP and waits for the coffee.

The cashier handles `capacity` orders at once; further customers wait in line (429 beyond
`queue_limit`: refused and not stored, so the customer knows it was not taken). Each order is stored in this service's own SQLite database with its outcome:
201 served; 504 the barista did not answer within `barista_timeout_s`; 503 no barista reachable;
502 the barista answered with an error.

Baristas are chosen least-busy: the one with the fewest calls from this cashier in flight, ties
broken round robin. Calls go over one pool of kept-alive connections (at most `capacity` in use, as
many as the tills), not a connection per call. The set of baristas starts as `barista_urls` (named barista-1..N) and can be
replaced at runtime with `PUT /baristas` {"baristas": [{"name", "url"}, ...]} (the harness does so
when it scales); calls already made to a barista that left the set finish normally.
`GET /baristas` and `/health` show the set and the calls in flight per barista.

Idempotency (on unless the shop turns it off): a customer's retry carries the same
`Idempotency-Key` header. An attempt still in progress is joined (the retry gets its answer); a
served order is answered again as it was; a failed one is tried again under the same order id,
which the barista (idempotent by order id) recognises, so a coffee that was brewed although the
call timed out is not brewed twice. The order's row is then replaced (a new `seq`, so readers
paging by seq see the new outcome). Without the key or with idempotency off, every request is a
new order: the hidden duplicate of the synchronous world.
SQLite runs on the database's own thread (cafe.store: `fetch`, `atomic`), never on the event loop;
an order's answer is sent once the COMMIT holding its row is done (orders finishing together share
one COMMIT).
The parts (line, tills, barista set, the HTTP call) are cafe/cashier.py, shared with the resilient
sync shop (systems/sync_resilient/cashier.py).
Run: python systems/sync/cashier.py --config FILE.json
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from cafe.cashier import SCHEMA, BaristaClient, Baristas, Cashier, cashier_routes
from cafe.config import ServiceConfig
from cafe.menu import load_menu
from cafe.store import Database
from cafe.web import MAX_BODY, application, serve


def build_app(config: ServiceConfig) -> web.Application:
    if not config.barista_urls:
        raise SystemExit(f"{config.name}: barista_urls is empty: the cashier needs a barista")
    db = Database(config.db, SCHEMA)
    baristas = Baristas([(f"barista-{i}", url) for i, url in enumerate(config.barista_urls, start=1)])
    client = BaristaClient(baristas, config.barista_timeout_s, connections=config.capacity)
    cashier = Cashier(db, client.brew, capacity=config.capacity, queue_limit=config.queue_limit)

    def counts() -> dict[str, Any]:
        return {"capacity": config.capacity, **cashier.state, "baristas": baristas.calls()}

    return application(cashier_routes(config, load_menu(config.menu), db, cashier, baristas, counts),
                       start=[client.open], stop=[client.close, db.close], max_body=MAX_BODY)


if __name__ == "__main__":
    serve(__doc__, build_app)
