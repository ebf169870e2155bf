"""Faults on the members of a RabbitMQ cluster (issue 17): node kill / pause / stop, and network
partitions between members the way Jepsen makes them (iptables, harness/infra/netfilter.py).

Which members a fault acts on is resolved when its window starts, from the cluster as it is then
(the leader of `barista.orders`, read from the management API), and recorded in the fault's report
with the leader at the start and just before the heal. A partition's rules carry the cluster's tag
(`chaoscafe-<token>`); the heal removes every rule with that tag and waits until every member runs
and none reports a partition. None applies to the sync shop (no broker) or to a single node.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

from cafe import topology
from harness.errors import BrokerError, NotApplicable
from harness.infra.cluster import ClusterNode, RabbitCluster
from harness.infra.netfilter import Netfilter
from harness.nemesis.base import FaultWindow, Kind, register
from harness.shops.base import Shop

# How long a heal waits for the cluster to run whole again: a restarted member boots (~10 s here), and
# a member that paused itself (pause_minority) can hang in Erlang's `global` sync when it starts
# again after the heal: 20 s to 2.5 min seen here (RabbitMQ 3.10.8 on Erlang 25.2.3, its log saying
# "Global hang workaround"). A heal waits that out rather than call a cluster broken that recovers.
HEAL_S = 180.0
R = TypeVar("R")
LEADER_WAIT_S = 10.0   # how long the reads around a heal wait for a member to name the queue's leader


def cluster_of(shop: Shop, kind: str) -> RabbitCluster:
    """The shop's broker cluster; NotApplicable for a shop without a broker, RuntimeError for one
    node (the experiment model refuses that already: [broker] nodes >= 3)."""
    broker = shop.infra.broker
    if broker is None:
        raise NotApplicable(f"the {shop.kind} shop has no broker")
    if not isinstance(broker, RabbitCluster):
        raise RuntimeError(f"{kind} needs a RabbitMQ cluster: set [broker] nodes = 3 or 5")
    return broker


def _asked_until(read: Callable[[], R], done: Callable[[R], bool], wait_s: float, every_s: float = 1.0) -> R:
    """read() once, then again every `every_s` seconds while not done(value) and fewer than
    `wait_s` seconds have passed; the last value read (tenacity's Retrying over a result)."""
    retrying: Retrying = Retrying(stop=stop_after_delay(wait_s), wait=wait_fixed(every_s),
                                  retry=retry_if_result(lambda value: not done(value)),
                                  retry_error_callback=lambda state: state.outcome.result() if state.outcome else None)
    return cast(R, retrying(read))


def _leader_now(cluster: RabbitCluster) -> str | None:
    try:
        return cluster.leader(topology.ORDERS_QUEUE)
    except BrokerError:
        return None


def _leader_and_term_now(cluster: RabbitCluster) -> tuple[str | None, int | None]:
    try:
        status = cluster.quorum_status(topology.ORDERS_QUEUE)
    except BrokerError:
        status = {}
    if not status:   # not a quorum queue (classic), or no member answered: no term
        return _leader_now(cluster), None
    leader = next((node for node, row in status.items() if row.get("Raft State") == "leader"), None)
    terms = [row["Term"] for row in status.values() if isinstance(row.get("Term"), int)]
    return leader, max(terms) if terms else None


def leader_of(cluster: RabbitCluster, wait_s: float = 0.0) -> str | None:
    """The member leading the barista queue now, or None when no member can say; with `wait_s`,
    ask again (every second) until a member leads or that many seconds have passed (an election
    under way, or a `quorum_status` that timed out on a loaded machine)."""
    return _asked_until(lambda: _leader_now(cluster), lambda leader: leader is not None, wait_s)


def leader_and_term(cluster: RabbitCluster, wait_s: float = 0.0) -> tuple[str | None, int | None]:
    """(leader, Raft term) of the barista queue from one `quorum_status` read, asked again every
    second for up to `wait_s` while no member leads; a queue that is not a quorum queue (classic)
    has no term: (the node holding it, None), as `leader_of` says."""
    return _asked_until(lambda: _leader_and_term_now(cluster), lambda read: read[0] is not None, wait_s)


def resolve(cluster: RabbitCluster, choice: str, leader: str | None) -> list[ClusterNode]:
    """The members `choice` names: the queue's leader, one follower, a minority of followers, a
    majority (the leader and followers), or node-K; `leader` is the queue's leader as just read
    (None: nobody could say, and the first member stands in for it)."""
    if choice.startswith("node-"):
        index = int(choice[5:])
        if index > cluster.size:
            raise BrokerError(f"node {choice!r}: the cluster has {cluster.size} members")
        return [cluster.members[index - 1]]
    lead = [m for m in cluster.members if m.nodename == leader] or cluster.members[:1]
    followers = [m for m in cluster.members if m not in lead]
    n = cluster.size
    return {"leader": lead, "follower": followers[:1], "minority": followers[:(n - 1) // 2],
            "majority": lead + followers[:n // 2]}[choice]


M = TypeVar("M")
WORK_QUEUES = tuple(topology.BINDINGS)   # the quorum queues whose members must all be back


def wait_healed(cluster: RabbitCluster, timeout: float = HEAL_S) -> float | None:
    """Seconds until every member runs, none reports a partition and every member of each work
    queue is a Raft leader or follower again (a restarted node's queue members recover after its
    boot: until they do, one more failure would leave a queue without a majority); None if not
    within `timeout`."""
    began = time.monotonic()
    whole = _asked_until(lambda: cluster.health()["healed"] and all(_whole(cluster, q) for q in WORK_QUEUES),
                         bool, timeout, every_s=0.3)
    return round(time.monotonic() - began, 2) if whole else None


def not_whole(cluster: RabbitCluster) -> dict[str, Any]:
    """What keeps the cluster from being whole now (empty when nothing does): members not running
    or not answering, partitions reported, and per work queue the Raft states of its members when
    one is not a leader or follower. Recorded with a heal that timed out."""
    why: dict[str, Any] = {}
    try:
        health = cluster.health()
    except Exception as exc:   # what it is, not a reason to fail the heal
        return {"health": f"{exc.__class__.__name__}: {exc}"[:200]}
    if not health["healed"]:
        why["running"] = health["running"]
        why["partitions"] = {node: cut for node, cut in health["partitions"].items() if cut}
    for queue in WORK_QUEUES:
        if not _whole(cluster, queue):
            try:
                why.setdefault("raft", {})[queue] = cluster.raft_states(queue)
            except BrokerError as exc:
                why.setdefault("raft", {})[queue] = f"{exc}"[:200]
    return why


def _whole(cluster: RabbitCluster, queue: str) -> bool:
    try:
        states = cluster.raft_states(queue)
    except BrokerError:
        return False
    return not states or (len(states) == cluster.size and set(states.values()) <= {"leader", "follower"})


class ClusterFault(Kind):
    """Base: resolves its members at `start`, heals at `stop` (idempotent), reports both. While the
    window is open a thread watches the cluster every `watch_s` (members the majority lists as
    running, partitions the members report): a cluster that reacts and recovers within the window
    (pause_minority flapping under a bridge) is seen, not only the state at the heal."""

    watch_s = 0.25   # a bridge under pause_minority paused two members for ~1.2 s: a watch every 1 s missed it twice in CI
    stuck_s = 10.0   # a heal longer than this restarts the members that still do not answer (a whole
                     # cluster heals in 2.5-5 s here; one stuck in Erlang's global sync took 20 s to 3.5 min)

    def __init__(self, window: FaultWindow) -> None:
        self.window = window
        self.cluster: RabbitCluster | None = None
        self.details: dict[str, Any] = {}
        self.active = False
        self._watching = threading.Event()
        self._watcher: threading.Thread | None = None
        self._down_max = 0
        self._partitions_seen: set[str] = set()

    def _watch(self) -> None:
        assert self.cluster is not None
        while not self._watching.wait(self.watch_s):
            try:
                health = self.cluster.health()
            except Exception:   # a member going away mid-read: next time
                continue
            self._down_max = max(self._down_max, self.cluster.members_out(health))
            self._partitions_seen.update(node for node, cut in health["partitions"].items() if cut)

    def _begin_watch(self) -> None:
        self._watching.clear()
        self._watcher = threading.Thread(target=self._watch, name=f"watch-{self.window.name}", daemon=True)
        self._watcher.start()

    def setup(self, shop: Shop) -> None:
        self.cluster = cluster_of(shop, self.kind)

    def start(self, shop: Shop) -> None: ...

    def stop(self, shop: Shop) -> None: ...

    def teardown(self, shop: Shop) -> None:
        self.stop(shop)

    def report(self) -> dict[str, Any]:
        return dict(self.details)

    def abandon(self, shop: Shop) -> None:
        """The run is over (interrupted or failed) and the cluster is removed next: stop watching,
        undo what must not outlive the run (`_undo_now`), wait for nothing."""
        self._watching.set()
        self.active = False
        self._undo_now()

    def _undo_now(self) -> None:
        """Nothing for a node fault: the cluster's cleanup kills its members, stopped or not."""

    def _before_heal(self) -> None:
        assert self.cluster is not None
        self._watching.set()
        if self._watcher is not None:
            self._watcher.join(10)
        leader, term = leader_and_term(self.cluster, wait_s=LEADER_WAIT_S)
        self.details["leader_before_heal"], self.details["term_before_heal"] = leader, term
        at_start = self.details.get("term_at_start")
        # elections of the barista queue's Raft group in the window (also one the old leader won again)
        elections = self.details["elections"] = term - at_start if term is not None and at_start is not None else None
        health = self.cluster.health()
        self.details["running_before_heal"] = health["running"] if health["partitions"] else None   # None: nobody answered
        # numbers an experiment can expect (`faults.<name>.<key>`): the fault's effect, seen by the cluster
        down = self.details["members_down"] = self.cluster.members_out(health)
        changed = self.details["leader_changed"] = int(leader is not None and leader != self.details.get("leader_at_start"))
        self.details["members_down_max"] = max(self._down_max, down)
        self.details["partitions_reported_by"] = sorted(self._partitions_seen)
        # the cluster noticed the fault at some point of the window: a member out, a partition, a new
        # leader, or an election (a member out for less than the watch's second still makes one)
        self.details["noticed"] = int(bool(self.details["members_down_max"] or self._partitions_seen or changed
                                           or elections))

    def _note_errors(self, errors: list[BaseException]) -> None:
        if errors:
            self.details.setdefault("start_errors", []).extend(str(e).splitlines()[0] for e in errors)

    def _after_heal(self) -> None:
        """Wait for the cluster to be whole; a member still not answering after `stuck_s` gets its
        VM restarted, as an operator would (`restarted`): a member that paused itself (pause_minority)
        can hang in Erlang's `global` sync when it starts again, for minutes (seen here: 20 s to
        3.5 min, "Global hang workaround" in its log), while a fresh VM joins as after a kill."""
        assert self.cluster is not None
        began = time.monotonic()
        healed = wait_healed(self.cluster, self.stuck_s)
        if healed is None:
            answering = set(self.cluster.answering())
            stuck = [m for m in self.cluster.members if m.nodename not in answering]
            self.details.setdefault("restarted", []).extend(m.nodename for m in stuck)
            self._note_errors(RabbitCluster.boot(stuck, restart=True))
            if wait_healed(self.cluster) is not None:
                healed = round(time.monotonic() - began, 2)
            else:
                self.details["not_whole"] = not_whole(self.cluster)
        self.details["healed_after_s"] = healed
        self.details["leader_after_heal"] = leader_of(self.cluster, wait_s=LEADER_WAIT_S)
        self.details.update(seen_after_heal(self.details))


def seen_after_heal(details: dict[str, Any]) -> dict[str, Any]:
    """What the leader read after the heal adds to a cluster fault's `details`: when barista.orders
    has another leader than at the window's start, the cluster reacted to the fault (`noticed`: an
    election the cut began and the reconnection finished, e.g. a bridge's, counts as one); when
    nobody could name the leader before the heal, the leadership moved (`leader_changed`) all the
    same. Each is marked `..._seen: "after the heal"` when only this read shows it."""
    after, start = details.get("leader_after_heal"), details.get("leader_at_start")
    if after is None or after == start:
        return {}
    seen: dict[str, Any] = {}
    if not details.get("noticed"):
        seen.update(noticed=1, noticed_seen="after the heal")
    if details.get("leader_before_heal") is None:
        seen.update(leader_changed=1, leader_changed_seen="after the heal")
    return seen


class NodeFault(ClusterFault):
    """Kill, pause or stop the members `node` names (default: the leader)."""

    def __init__(self, window: FaultWindow) -> None:
        super().__init__(window)
        self.choice = str(window.params.get("node", "leader"))
        self.targets_hit: list[ClusterNode] = []

    def start(self, shop: Shop) -> None:
        assert self.cluster is not None
        leader, term = leader_and_term(self.cluster, wait_s=LEADER_WAIT_S)
        self.targets_hit = resolve(self.cluster, self.choice, leader)
        self.details.update(node=self.choice, leader_at_start=leader, term_at_start=term,
                            members=[m.nodename for m in self.targets_hit])
        self.active = True
        self._begin_watch()
        for member in self.targets_hit:
            self.act(member)

    def stop(self, shop: Shop) -> None:
        if not self.active or self.cluster is None:
            return
        self._before_heal()
        self.active = False
        self.undo_all()
        self._after_heal()

    def act(self, member: ClusterNode) -> None: ...

    def undo_all(self) -> None:
        """Start the members that are down, all at once (RabbitCluster.boot); one that does not come
        up is left to the heal's restart (`_after_heal`), its error kept in `start_errors`."""
        self._note_errors(RabbitCluster.boot([m for m in self.targets_hit if not m.is_running()]))


@register
class NodeKill(NodeFault):
    kind = "broker-node-kill"

    def act(self, member: ClusterNode) -> None:
        member.crash()


@register
class NodeStop(NodeFault):
    kind = "broker-node-stop"

    def act(self, member: ClusterNode) -> None:
        member.stop()


@register
class NodePause(NodeFault):
    """A frozen member the others declared down comes back with its own view of the cluster: Mnesia
    reports a partition (`running_partitioned_network`), and pause_minority does not resolve it (the
    thawed member is in the majority). The heal then does what RabbitMQ's docs tell an operator to
    do: restart the member (`restarted` in the report lists it)."""

    kind = "broker-node-pause"
    thaw_s = 10.0   # how long a thawed member may take to rejoin without a restart

    def act(self, member: ClusterNode) -> None:
        member.pause()

    def undo_all(self) -> None:
        assert self.cluster is not None
        for member in self.targets_hit:
            member.resume()
        cluster = self.cluster
        restarted = []
        if not _asked_until(lambda: bool(cluster.health()["healed"]), bool, self.thaw_s, every_s=0.3):
            restarted = [m.nodename for m in self.targets_hit]
            self._note_errors(RabbitCluster.boot(self.targets_hit, restart=True))
        self.details["restarted"] = restarted


def cut(net: Netfilter, a: ClusterNode, b: ClusterNode, *, loss: float | None, one_way: bool = False) -> int:
    """Drop what `a` sends to `b` over Erlang distribution (and, unless `one_way`, what `b` sends to
    `a`): both the connection `a` opened to b's distribution port and the one `b` opened to a's.
    Member addresses are their own, distribution ports unique to the run. Returns the rules added."""
    rules = [dict(src=a.address, dport=b.dist_port),      # a -> b on the connection a opened
             dict(dst=b.address, sport=a.dist_port)]      # a -> b on the connection b opened
    if not one_way:
        rules += [dict(src=b.address, dport=a.dist_port), dict(dst=a.address, sport=b.dist_port)]
    for rule in rules:
        net.drop(**rule, probability=loss)   # type: ignore[arg-type]
    return len(rules)


def links_to_cut(mode: str, order: Sequence[M]) -> list[tuple[M, M]]:
    """The (a, b) links a partition `mode` cuts among members `order`, the leader first: a member
    (or the minority, with the leader, for "halves") against every other; for "bridge", the members
    but one follower split in two sides, the follower left seeing both. Pure."""
    n = len(order)
    if mode == "bridge":
        rest = [m for m in order if m is not order[1]]
        return [(a, b) for a in rest[:len(rest) // 2] for b in rest[len(rest) // 2:]]
    alone = {"isolate-leader": order[:1], "one-way": order[:1], "isolate-follower": order[1:2],
             "halves": order[:(n - 1) // 2]}[mode]
    return [(a, b) for a in alone for b in order if b not in alone]


@register
class Partition(ClusterFault):
    """Cut the cluster's distribution links as `mode` says (see harness.experiment.faults)."""

    kind = "broker-partition"

    def __init__(self, window: FaultWindow) -> None:
        super().__init__(window)
        self.mode = str(window.params.get("mode", "isolate-leader"))
        loss = float(window.params.get("loss", 1.0))
        self.loss = None if loss >= 1 else loss
        self.net: Netfilter | None = None

    def setup(self, shop: Shop) -> None:
        super().setup(shop)
        assert self.cluster is not None
        self.net = Netfilter(self.cluster.tag)

    def start(self, shop: Shop) -> None:
        assert self.cluster is not None and self.net is not None
        leader, term = leader_and_term(self.cluster, wait_s=LEADER_WAIT_S)
        lead = next((m for m in self.cluster.members if m.nodename == leader), self.cluster.members[0])
        order = [lead] + [m for m in self.cluster.members if m is not lead]
        pairs = links_to_cut(self.mode, order)
        one_way = self.mode == "one-way"
        self.details.update(mode=self.mode, loss=self.loss or 1.0, leader_at_start=leader, term_at_start=term,
                            cut=[[a.nodename, b.nodename] for a, b in pairs], one_way=one_way)
        self.active = True
        self._begin_watch()
        self.details["rules"] = sum(cut(self.net, a, b, loss=self.loss, one_way=one_way) for a, b in pairs)

    def stop(self, shop: Shop) -> None:
        if not self.active or self.net is None:
            return
        self._before_heal()
        self.active = False
        self.net.heal()
        self.details["rules_left"] = len(self.net.rules())
        self._after_heal()

    def _undo_now(self) -> None:
        if self.net is not None:   # the rules are the kernel's: they outlive every process of the run
            self.net.heal()
            self.details["rules_left"] = len(self.net.rules())

    def teardown(self, shop: Shop) -> None:
        self.stop(shop)
        if self.net is not None:
            self.net.heal()   # also what a crash half-way through `start` left
