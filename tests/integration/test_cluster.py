"""The async shop on a three-node RabbitMQ cluster (issue 17): the cluster forms on its own loopback
addresses, a partition made with iptables really separates a member (the cluster stops listing it)
and healing rejoins it with no rule left, a killed leader is replaced, the services fail over and
lose nothing, a killed majority stops the brewing but not the taking, and cleaning up leaves no
process and no rule. One cluster for the module (a boot costs about 20 s), healed by each test."""
from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from shopping import orders, served_refs

from cafe import topology
from cafe.brewing import BrewTime
from harness.infra import netfilter
from harness.infra.cluster import RabbitCluster
from harness.infra.stack import ClusterSpec, Infrastructure
from harness.load.batch import place_orders, wait_until
from harness.nemesis import FAULT_KINDS, FaultWindow
from harness.shops import AsyncShop, ShopSettings

pytestmark = [pytest.mark.integration, pytest.mark.slow,
              pytest.mark.skipif(netfilter.available() is not None,
                                 reason=f"needs iptables: {netfilter.available()}")]

SETTINGS = ShopSettings(baristas=2, brewers=2, prefetch=2, brew=BrewTime("fixed", mean_ms=10))
TICK_S = 5   # net_ticktime, as in the experiments: a cut member is noticed after 5-6.25 s
HOLD_S = 12  # a partition held as long as the experiments' fast windows: noticed, then the minority paused


@pytest.fixture(scope="module")
def cluster_infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infrastructure]:
    with Infrastructure(tmp_path_factory.mktemp("cluster") / "run", broker=True,
                        cluster=ClusterSpec(3, "pause_minority", TICK_S)) as infra:
        yield infra


@pytest.fixture(scope="module")
def module_shop(cluster_infra: Infrastructure) -> Iterator[AsyncShop]:
    with AsyncShop(cluster_infra, SETTINGS) as running:
        yield running


@pytest.fixture
def shop(module_shop: AsyncShop, cluster_infra: Infrastructure) -> AsyncShop:
    """The module's shop, on a whole cluster: a test that left it unhealed fails alone, not the next."""
    c = cluster(cluster_infra)
    assert wait_until(lambda: c.health()["healed"], 180), c.health()
    return module_shop


def cluster(infra: Infrastructure) -> RabbitCluster:
    assert isinstance(infra.broker, RabbitCluster)
    return infra.broker


def fault(kind: str, **params: Any) -> Any:
    return FAULT_KINDS[kind](FaultWindow(kind, kind, "broker", 0, 60, params=params))


def listens(address: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((address, port)) == 0


def test_three_nodes_form_one_cluster_each_on_its_own_address(cluster_infra: Infrastructure) -> None:
    c = cluster(cluster_infra)
    assert c.started_after_s is not None and c.started_after_s < 90   # ~20-25 s here, generous for CI
    assert c.health()["healed"] and c.running() == sorted(c.names())
    addresses = [m.address for m in c.members]
    assert len(set(addresses)) == 3 and all(a.startswith("127.") and a != "127.0.0.1" for a in addresses)
    for m in c.members:   # AMQP on the member's own loopback address only
        assert listens(m.address, m.amqp_port) and not listens("127.0.0.1", m.amqp_port)
    assert cluster_infra.describe()["broker_nodes"] == ", ".join(c.names())


def test_the_shop_on_the_cluster_serves_200_orders_each_once(shop: AsyncShop) -> None:
    refs = {str(i) for i in range(1000, 1200)}
    assert [s for s, _ in place_orders(shop.entry_url, orders(200, start=1000), concurrency=8)] == [202] * 200
    assert wait_until(lambda: refs <= served_refs(shop), 60), shop.backlog()
    assert sorted(str(r["ref"]) for r in shop.served() if str(r["ref"]) in refs) == sorted(refs)


def test_a_partition_separates_a_member_and_healing_rejoins_it(shop: AsyncShop, cluster_infra: Infrastructure) -> None:
    c = cluster(cluster_infra)
    partition = fault("broker-partition", mode="isolate-follower")
    partition.setup(shop)
    began = time.monotonic()
    partition.start(shop)
    try:
        cut = partition.report()["cut"]
        alone = cut[0][0]
        assert {pair[0] for pair in cut} == {alone} and len(cut) == 2 and partition.report()["rules"] == 8
        assert len(partition.net.rules()) == 8
        # the cluster itself says so: the majority stops listing the cut member (pause_minority)
        assert wait_until(lambda: alone not in c.running(), TICK_S * 5), c.health()
        assert [s for s, _ in place_orders(shop.entry_url, orders(10, start=100), concurrency=4)] == [202] * 10
        time.sleep(max(0.0, HOLD_S - (time.monotonic() - began)))   # let the minority finish pausing
    finally:
        partition.stop(shop)
    details = partition.report()
    assert details["members_down"] == 1 and details["rules_left"] == 0
    assert details["healed_after_s"] is not None, details
    assert c.health()["healed"] and c.rules_left() == [] and netfilter.leftovers(c.tag) == []
    assert wait_until(lambda: {str(i) for i in range(100, 110)} <= served_refs(shop), 60)


def test_a_killed_leader_is_replaced_and_the_shop_serves_on(shop: AsyncShop, cluster_infra: Infrastructure) -> None:
    c = cluster(cluster_infra)
    before = c.leader(topology.ORDERS_QUEUE)
    kill = fault("broker-node-kill", node="leader")
    kill.setup(shop)
    kill.start(shop)
    try:
        assert kill.report()["members"] == [before]
        assert not c.member(before).is_running()
        # accepted at once (the outbox) and served during the outage: the links fail over
        assert [s for s, _ in place_orders(shop.entry_url, orders(10, start=200), concurrency=4)] == [202] * 10
        assert wait_until(lambda: {str(i) for i in range(200, 210)} <= served_refs(shop), 45), shop.backlog()
    finally:
        kill.stop(shop)
    details = kill.report()
    assert details["leader_changed"] == 1 and details["leader_before_heal"] != before
    assert details["healed_after_s"] is not None and c.member(before).is_running()
    assert shop.heal_report()["healed"]


def test_a_frozen_follower_is_noticed_and_thawed(shop: AsyncShop, cluster_infra: Infrastructure) -> None:
    c = cluster(cluster_infra)
    pause = fault("broker-node-pause", node="follower")
    pause.setup(shop)
    pause.start(shop)
    try:
        frozen = pause.report()["members"]
        assert len(frozen) == 1 and frozen[0] != c.leader(topology.ORDERS_QUEUE)
        assert wait_until(lambda: frozen[0] not in c.running(), TICK_S * 5), c.health()
    finally:
        pause.stop(shop)
    details = pause.report()
    assert details["members_down"] == 1 and details["members_down_max"] == 1 and details["noticed"] == 1
    assert details["healed_after_s"] is not None, details
    assert shop.heal_report()["healed"]


def test_a_killed_majority_stops_the_brewing_not_the_taking_and_loses_nothing(
        shop: AsyncShop, cluster_infra: Infrastructure) -> None:
    """Two of three members killed (`node = "majority"`: the leader and a follower): no queue has a
    majority, and the survivor pauses itself (pause_minority). The order service still takes every
    order (the outbox), nothing is brewed while the cluster cannot confirm, and after the heal every
    order is served."""
    c = cluster(cluster_infra)
    leader = c.leader(topology.ORDERS_QUEUE)
    kill = fault("broker-node-kill", node="majority")
    kill.setup(shop)
    kill.start(shop)
    refs = {str(i) for i in range(300, 310)}
    try:
        hit = kill.report()["members"]
        assert len(hit) == 2 and leader in hit and all(not c.member(m).is_running() for m in hit)
        assert [s for s, _ in place_orders(shop.entry_url, orders(10, start=300), concurrency=4)] == [202] * 10
        time.sleep(TICK_S)   # long enough for a relay that could publish to have the orders brewed
        assert not refs & served_refs(shop), "served while no queue had a majority: the kill missed"
    finally:
        kill.stop(shop)
    details = kill.report()
    assert details["members_down"] >= 2 and details["healed_after_s"] is not None, details
    assert c.health()["healed"] and all(c.member(m).is_running() for m in hit)
    assert wait_until(lambda: refs <= served_refs(shop), 90), shop.backlog()


def test_cleanup_leaves_no_process_and_no_rule(tmp_path: Path, cluster_infra: Infrastructure) -> None:
    c = cluster(cluster_infra)
    pids = c.pids()
    assert len(pids) >= 4   # three VMs and the epmd at least
    leftover = netfilter.Netfilter(c.tag)
    leftover.drop(src=c.members[0].address, dport=c.members[1].dist_port)   # as a crashed run would leave it
    c.cleanup()
    assert wait_until(lambda: not c.pids(), 10)
    assert leftover.rules() == []
    started = time.monotonic()
    c.cleanup()   # idempotent
    assert time.monotonic() - started < 5
