"""The resilient sync cashier's policies (cafe/resilience.py) against an in-process HTTP barista, and
the sync barista's deadline (it stops brewing for a caller who has given up). Each test breaks one
policy's premise and asserts what the policy must do about it."""
from __future__ import annotations

import asyncio
import runpy
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from cafe.brewing import BrewTime
from cafe.cashier import DEADLINE_HEADER, Baristas
from cafe.config import ServiceConfig
from cafe.orders import OrderRequest
from cafe.resilience import ResilientClient, Shedder, retryable
from cafe.store import Database

SYSTEMS = Path(__file__).resolve().parents[2] / "systems"
sync = SimpleNamespace(**runpy.run_path(str(SYSTEMS / "sync" / "barista.py"), run_name="cafe_test_resilient_barista"))
LATTE = OrderRequest("Latte", "small", ref="1")
SERVED = {"barista": "barista-1", "brew_id": "b-1"}
Handler = Callable[[web.Request], Awaitable[web.Response]]


def client(urls: list[str], **policy: Any) -> ResilientClient:
    options = {"attempt_timeout_s": 0.3, "deadline_s": 1.0, "bulkhead": 4, "breaker_threshold": 3,
               "breaker_reset_s": 5.0, "backoff_s": 0.01, **policy}
    return ResilientClient(Baristas([(f"barista-{i}", url) for i, url in enumerate(urls, 1)]), **options)


async def with_baristas(handlers: list[Handler], test: Callable[[list[str]], Awaitable[Any]]) -> Any:
    servers = []
    for handler in handlers:
        app = web.Application()
        app.add_routes([web.post("/brews", handler)])
        servers.append(TestServer(app))
    for server in servers:
        await server.start_server()
    try:
        return await test([str(s.make_url("")).rstrip("/") for s in servers])
    finally:
        for server in servers:
            await server.close()


def test_which_answers_are_tried_again() -> None:
    assert retryable((504, {})) and retryable((503, {})) and retryable((502, {"barista_status": 500}))
    assert not retryable((502, {"barista_status": 400})) and not retryable((201, {}))


def test_a_failed_call_is_retried_under_the_same_order_id_with_the_time_left() -> None:
    seen: list[tuple[str, int]] = []

    async def flaky(request: web.Request) -> web.Response:
        seen.append(((await request.json())["orderId"], int(request.headers[DEADLINE_HEADER])))
        if len(seen) < 3:
            return web.json_response({"error": "spilt"}, status=500)
        return web.json_response(SERVED, status=201)

    async def test(urls: list[str]) -> Any:
        c = client(urls)
        c.open()
        try:
            return await c.brew("o-1", {"ref": "1"}, time.time()), c.stats
        finally:
            await c.close()

    (status, outcome), stats = asyncio.run(with_baristas([flaky], test))
    assert status == 201 and outcome["brew_id"] == "b-1"
    assert [order for order, _ in seen] == ["o-1"] * 3 and stats["retries"] == 2
    budgets = [ms for _, ms in seen]
    assert budgets == sorted(budgets, reverse=True) and 0 < budgets[-1] <= budgets[0] <= 1000


def test_a_failing_replica_opens_its_circuit_and_is_no_longer_called() -> None:
    calls = {"bad": 0, "good": 0}

    async def bad(request: web.Request) -> web.Response:
        calls["bad"] += 1
        return web.json_response({"error": "broken"}, status=500)

    async def good(request: web.Request) -> web.Response:
        calls["good"] += 1
        return web.json_response(SERVED, status=201)

    async def test(urls: list[str]) -> Any:
        c = client(urls, breaker_threshold=2)
        c.open()
        try:
            answers = [await c.brew(f"o-{i}", {"ref": "1"}, time.time()) for i in range(12)]
            return answers, c.circuits(), c.stats
        finally:
            await c.close()

    answers, circuits, stats = asyncio.run(with_baristas([bad, good], test))
    assert all(status == 201 for status, _ in answers)      # the good replica served every order
    assert calls["bad"] == 2 and circuits["barista-1"] == "opened" and stats["circuit_opened"] == 1


def test_every_circuit_open_fails_fast_and_says_when_to_come_back() -> None:
    async def down(request: web.Request) -> web.Response:
        return web.json_response({"error": "down"}, status=503)

    async def test(urls: list[str]) -> Any:
        c = client(urls, breaker_threshold=1, breaker_reset_s=30.0, deadline_s=2.0)
        c.open()
        try:
            await c.brew("o-0", {"ref": "1"}, time.time())   # opens the only circuit
            started = time.monotonic()
            answer = await c.brew("o-1", {"ref": "1"}, time.time())
            return answer, time.monotonic() - started
        finally:
            await c.close()

    (status, outcome), took = asyncio.run(with_baristas([down], test))
    assert status == 503 and outcome["error"] == "every barista's circuit is open"
    assert 25 < outcome["retry_after_s"] <= 30 and took < 0.5   # not waited out: it cannot close in time


def test_a_half_open_circuit_lets_one_trial_through_and_its_success_lets_the_rest() -> None:
    calls, in_flight, most = [0], [0], [0]

    async def recovering(request: web.Request) -> web.Response:
        calls[0] += 1
        if calls[0] == 1:
            return web.json_response({"error": "down"}, status=503)
        in_flight[0] += 1
        most[0] = max(most[0], in_flight[0])
        await asyncio.sleep(0.1)
        in_flight[0] -= 1
        return web.json_response(SERVED, status=201)

    async def test(urls: list[str]) -> Any:
        c = client(urls, breaker_threshold=1, breaker_reset_s=0.2, attempt_timeout_s=0.5, deadline_s=2.0)
        c.open()
        try:
            await c.brew("o-0", {"ref": "1"}, time.time() - 1.9)   # opens the only circuit, no time to retry
            await asyncio.sleep(0.25)                             # past its reset: half-open
            answers = await asyncio.gather(*(c.brew(f"o-{i}", {"ref": "1"}, time.time()) for i in range(1, 6)))
            return answers, c.stats, c.circuits()
        finally:
            await c.close()

    answers, stats, circuits = asyncio.run(with_baristas([recovering], test))
    assert all(status == 201 for status, _ in answers) and circuits == {"barista-1": "closed"}
    assert stats["trials"] == 1 and stats["circuit_opened"] == 1
    assert most[0] <= 4   # after the trial, the bulkhead's bound; the herd never reached it before


def test_a_timeout_cut_short_by_the_callers_deadline_does_not_count_against_the_barista() -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.25)
        return web.json_response(SERVED, status=201)

    async def test(urls: list[str]) -> Any:
        c = client(urls, breaker_threshold=1, attempt_timeout_s=0.4, deadline_s=1.0)
        c.open()
        try:
            late = await c.brew("o-1", {"ref": "1"}, time.time() - 0.9)   # 0.1 s left: times out
            after_late = c.circuits()
            fresh = await c.brew("o-2", {"ref": "1"}, time.time())         # 0.4 s: served
            return late, after_late, fresh, c.stats
        finally:
            await c.close()

    (late, _), after_late, (fresh, _), stats = asyncio.run(with_baristas([slow], test))
    assert late == 504 and after_late == {"barista-1": "closed"} and stats["timeouts_not_reported"] >= 1
    assert fresh == 201 and stats["circuit_opened"] == 0


def test_a_timeout_with_time_to_answer_counts_against_the_barista() -> None:
    async def silent(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response(SERVED, status=201)

    async def test(urls: list[str]) -> Any:
        c = client(urls, breaker_threshold=1, attempt_timeout_s=0.2, deadline_s=0.3)
        c.open()
        try:
            answer = await c.brew("o-1", {"ref": "1"}, time.time())
            return answer, c.circuits(), c.stats
        finally:
            await c.close()

    (status, _), circuits, stats = asyncio.run(with_baristas([silent], test))
    assert status in (503, 504) and circuits == {"barista-1": "opened"} and stats["circuit_opened"] == 1


def test_a_barista_that_never_answers_costs_the_deadline_not_more() -> None:
    async def silent(request: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.json_response(SERVED, status=201)

    async def test(urls: list[str]) -> Any:
        c = client(urls, attempt_timeout_s=0.2, deadline_s=0.7, breaker_threshold=10)
        c.open()
        try:
            started = time.monotonic()
            answer = await c.brew("o-1", {"ref": "1"}, time.time() - 0.1)   # 0.1 s already spent in line
            return answer, time.monotonic() - started, c.stats
        finally:
            await c.close()

    (status, _), took, stats = asyncio.run(with_baristas([silent], test))
    assert status == 504 and stats["deadline_exceeded"] == 1 and stats["attempts"] >= 2
    assert 0.3 < took < 0.6 + 0.3   # the 0.6 s left, within a generous margin


def test_the_bulkhead_bounds_the_calls_in_flight_to_one_replica() -> None:
    in_flight, most = [0], [0]

    async def slow(request: web.Request) -> web.Response:
        in_flight[0] += 1
        most[0] = max(most[0], in_flight[0])
        await asyncio.sleep(0.05)
        in_flight[0] -= 1
        return web.json_response(SERVED, status=201)

    async def test(urls: list[str]) -> Any:
        c = client(urls, bulkhead=2, attempt_timeout_s=1.0, deadline_s=3.0)
        c.open()
        try:
            return await asyncio.gather(*(c.brew(f"o-{i}", {"ref": "1"}, time.time()) for i in range(8))), c.stats
        finally:
            await c.close()

    answers, stats = asyncio.run(with_baristas([slow], test))
    assert all(status == 201 for status, _ in answers) and most[0] == 2 and stats["bulkhead_waits"] >= 1


def test_the_cashier_sheds_a_customer_the_line_cannot_serve_in_time() -> None:
    shedder = Shedder(capacity=4, deadline_s=1.0)
    assert shedder.refuse(waiting=100, in_flight=4) is None      # nothing measured yet: no guess
    shedder.held(0.5)
    assert shedder.refuse(waiting=0, in_flight=3) is None        # a till is free
    assert shedder.refuse(waiting=6, in_flight=4) is None        # 7 x 0.5 / 4 = 0.875 s <= 1 s
    refusal = shedder.refuse(waiting=10, in_flight=4)            # 11 x 0.5 / 4 = 1.375 s
    assert refusal is not None and refusal[0] == 429 and refusal[1]["taken"] is False
    assert refusal[1]["expected_wait_s"] == pytest.approx(1.375) and refusal[1]["retry_after_s"] == pytest.approx(0.375)


def barista(tmp_path: Path, brew_ms: float, brewers: int = 1) -> Any:
    c = ServiceConfig(name="barista-1", port=1, db=str(tmp_path / "barista.db"), brewers=brewers,
                      brew=BrewTime(distribution="fixed", mean_ms=brew_ms))
    b = sync.Barista(c, Database(c.db, sync.SCHEMA))
    b.claims.beat()
    return b


def test_the_barista_stops_brewing_for_a_caller_who_has_given_up(tmp_path: Path) -> None:
    b = barista(tmp_path, brew_ms=400)

    async def brew() -> Any:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(sync.DeadlinePassed):
            await b.brew(LATTE, "o-1", loop.time() + 0.1)
        gave_up = loop.time() - started
        again = await b.brew(LATTE, "o-1", loop.time() + 2)     # the retry brews it: the claim was let go
        return gave_up, again

    gave_up, again = asyncio.run(brew())
    assert gave_up < 0.3 and b.state["abandoned"] == 1 and again["order_id"] == "o-1"
    assert len(b.db.query("SELECT * FROM brews")) == 1   # the given-up brew was not recorded


def test_a_retry_that_joins_a_brew_extends_its_deadline(tmp_path: Path) -> None:
    b = barista(tmp_path, brew_ms=300)

    async def both() -> list[Any]:
        loop = asyncio.get_running_loop()
        first = asyncio.ensure_future(b.brew(LATTE, "o-1", loop.time() + 0.1))
        await asyncio.sleep(0.05)
        retry = asyncio.ensure_future(b.brew(LATTE, "o-1", loop.time() + 2))
        return list(await asyncio.gather(first, retry))

    first, retry = asyncio.run(both())
    assert first == retry and b.state["abandoned"] == 0 and b.state["started"] == 1


def test_a_caller_who_gives_up_waiting_for_hands_is_not_brewed_for(tmp_path: Path) -> None:
    b = barista(tmp_path, brew_ms=300, brewers=1)

    async def crowd() -> list[Any]:
        loop = asyncio.get_running_loop()
        busy = asyncio.ensure_future(b.brew(LATTE, "o-1"))
        await asyncio.sleep(0.02)
        late = asyncio.ensure_future(b.brew(LATTE, "o-2", loop.time() + 0.1))
        return list(await asyncio.gather(busy, late, return_exceptions=True))

    done, gave_up = asyncio.run(crowd())
    assert done["order_id"] == "o-1" and isinstance(gave_up, sync.DeadlinePassed)
    assert b.state["abandoned"] == 1 and b.state["started"] == 1


def test_a_shops_own_counter_is_a_metric_only_under_that_shops_table() -> None:
    from harness.errors import ExperimentError
    from harness.experiment.loading import from_dict

    def experiment(table: str, metric: str) -> Any:
        return from_dict({"title": "t", "claim": "c", "time_scale": "1:1", "run": {"duration_s": 10},
                          "load": {"shape": "constant", "rate": 5}, "expect": {table: {metric: {"min": 1}}}})

    assert experiment("sync-resilient", "shop.shed").expectations("sync-resilient")["shop.shed"].min == 1
    for table, metric, says in (("sync", "shop.shed", "it has no counters"),
                                ("sync-resilient", "shop.sheds", "it counts attempts, retries")):
        with pytest.raises(ExperimentError, match=says):
            experiment(table, metric)


def test_the_index_says_where_the_contender_closes_the_gap() -> None:
    from harness.report.gap import gaps, words

    def results(overall: float, wait: float, applicable: bool = True) -> dict[str, Any]:
        return {"availability": {"overall": overall}, "latency_ms": {"response": {"p99": wait}},
                **({} if applicable else {"applicable": False})}

    found = gaps({"rush": {"sync": results(0.3, 3000), "sync-resilient": results(0.4, 1400),
                           "async": results(1.0, 10)},
                  "steady": {"sync": results(1.0, 100), "sync-resilient": results(1.0, 150), "async": results(1.0, 8)},
                  "broker": {"sync": results(1.0, 1, applicable=False), "sync-resilient": results(1.0, 1),
                             "async": results(1.0, 5)}})
    by = {(g.experiment, g.metric): g for g in found}
    assert by[("rush", "availability.overall")].closed == pytest.approx(0.14)
    assert words(by[("rush", "availability.overall")].closed) == "cannot close it"
    assert words(by[("rush", "latency_ms.response.p99")].closed) == "closes part of it"   # 1600 of 2990 ms
    assert by[("steady", "availability.overall")].closed is None and words(None) == "no gap"
    assert words(by[("steady", "latency_ms.response.p99")].closed) == "is worse than the baseline"
    assert not any(g.experiment == "broker" for g in found)   # not applicable on one of the three
