"""A private RabbitMQ cluster of N nodes (issue 17), each a `RabbitNode` on its own loopback address.

Every member listens for AMQP and management on its own address 127.a.b.K (a, b drawn per cluster),
and its Erlang distribution leaves from that address (`inet_dist_connect_options`) to the other
members' distribution ports on 127.0.0.1 (short node names `...@localhost` resolve there). So a
rule on the member's source address and the peer's distribution port (harness/infra/netfilter.py)
cuts exactly one direction between two members of this cluster, and nothing else. The members share
one epmd (started by the first), one Erlang cookie and one administrator; they find each other at
boot (`classic_config` peer discovery) and use `cluster_partition_handling` as configured.

The cluster offers what the shops and the harness read from a single node (URLs, `queue_stats`,
`bindings`, alarms...), asked of the first member that answers, plus what only a cluster has:
`leader(queue)`, `members_of(queue)`, `partitions()`, `running()`, and per-member `crash`, `stop`,
`pause`, `resume`, `restart`.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import threading
import time
import urllib.parse
from pathlib import Path
from types import TracebackType
from typing import Any

from harness.errors import BrokerError
from harness.infra import netfilter
from harness.infra.broker import NODE_ERL_ARGS, RabbitNode, amqp_url_of
from harness.infra.netfilter import Netfilter
from harness.infra.ports import free_port
from harness.infra.processes import proc_stat

PARTITION_HANDLING = ("pause_minority", "autoheal", "ignore")
DISCOVERY_RETRIES = 1   # peer discovery at a member's first boot: tries to join a member with tables
DISCOVERY_RETRY_INTERVAL_MS = 200   # ... this far apart, before it starts the cluster itself
_DIST_HOST = "127.0.0.1"   # where every member's distribution listener is (short names resolve here)


class ClusterNode(RabbitNode):
    """One member: a fixed node name, the cluster's cookie and administrator, its own address."""

    def __init__(self, cluster: RabbitCluster, index: int) -> None:
        super().__init__(cluster.base_dir / f"node{index}", address=f"{cluster.prefix}.{index}")
        self.cluster, self.index = cluster, index
        self.nodename = cluster.nodename_of(index)
        self.username, self.password = cluster.username, cluster.password
        self.epmd_port = cluster.epmd_port

    def _prepare(self) -> None:
        if self._prepared:
            return
        super()._prepare()
        cookie = self.base_dir / "home" / ".erlang.cookie"
        cookie.chmod(0o600)
        cookie.write_text(self.cluster.cookie)
        cookie.chmod(0o400)

    def _extra_conf(self) -> list[str]:
        # The member that takes the peer-discovery lock first finds nobody with tables yet (they
        # all boot at once) and, by default, retries 10 times 500 ms before it starts the cluster
        # alone, holding the lock, while the others back off on it (global:set_lock sleeps up to
        # 0.25, 0.5, 1, 2, 4, then 8 s a try): 14-25 s to form. One retry 200 ms later holds the
        # lock ~0.4 s: 4-6 s less in one session (benchmarks/cluster_boot.py, docs/performance.md),
        # every time with one member starting the cluster and the others joining it.
        return [f"cluster_partition_handling = {self.cluster.partition_handling}",
                "cluster_formation.peer_discovery_backend = classic_config",
                f"cluster_formation.discovery_retry_limit = {self.cluster.discovery_retries}",
                f"cluster_formation.discovery_retry_interval = {self.cluster.discovery_interval_ms}",
                *(f"cluster_formation.classic_config.nodes.{k} = {self.cluster.nodename_of(k)}"
                  for k in range(1, self.cluster.size + 1))]

    def _erl_args(self) -> str:
        ip = self.address.replace(".", ",")
        return (f"{NODE_ERL_ARGS} -kernel inet_dist_connect_options [{{ip,{{{ip}}}}}]"
                f" -kernel net_ticktime {self.cluster.net_ticktime_s}")

    def _start_epmd(self) -> None:
        if self.index == 1:   # one epmd for the cluster, owned (and stopped) by the first member
            super()._start_epmd()

    def pause(self) -> None:
        """SIGSTOP this member's VM (a frozen node: sockets open, nothing answers)."""
        beam = self.beam_pid()
        if beam is None:
            raise BrokerError(f"{self.nodename} is not running")
        os.kill(beam, signal.SIGSTOP)

    def frozen(self) -> bool:
        """Whether this member's VM is stopped (SIGSTOP: state T in /proc); False when it is gone."""
        beam = self.beam_pid()
        stat = proc_stat(beam) if beam is not None else None
        return stat is not None and stat[1] in ("T", "t")

    def resume(self) -> None:
        """SIGCONT this member's VM (no-op when it is not running)."""
        beam = self.beam_pid()
        if beam is not None:
            os.kill(beam, signal.SIGCONT)


def _running_in(views: list[tuple[ClusterNode, Any]]) -> list[str]:
    """Members every answering member lists as running, from their /api/nodes answers."""
    listed = [{n["name"] for n in nodes if n.get("running")} for _, nodes in views]
    return sorted(set.intersection(*listed)) if listed else []


def _partitions_of(nodename: str, nodes: list[dict[str, Any]]) -> list[str]:
    """The members `nodename` reports partitioned from, in its own /api/nodes answer."""
    mine: dict[str, Any] = next((n for n in nodes if n.get("name") == nodename), {})
    return sorted(mine.get("partitions") or [])


class RabbitCluster:
    """`size` private RabbitMQ nodes under `base_dir`, clustered at boot; `start()` returns once every
    member runs and sees all the others (BrokerError otherwise), `cleanup()` stops them all.

    Clients use the default vhost "/" with the cluster's administrator; `endpoints()` lists the
    members' (address, AMQP port), in member order, for a client that fails over between them."""

    vhost = "/"
    shared = False

    def __init__(self, base_dir: Path, *, size: int = 3, partition_handling: str = "pause_minority",
                 net_ticktime_s: int = 60, discovery_retries: int = DISCOVERY_RETRIES,
                 discovery_interval_ms: int = DISCOVERY_RETRY_INTERVAL_MS) -> None:
        if size < 2:
            raise ValueError(f"a cluster has at least 2 nodes, got {size}")
        if partition_handling not in PARTITION_HANDLING:
            raise ValueError(f"partition_handling {partition_handling!r}: one of {PARTITION_HANDLING}")
        self.base_dir = Path(base_dir).resolve()
        self.size, self.partition_handling, self.net_ticktime_s = size, partition_handling, net_ticktime_s
        self.discovery_retries, self.discovery_interval_ms = discovery_retries, discovery_interval_ms
        self.prefix = f"127.{100 + secrets.randbelow(100)}.{1 + secrets.randbelow(250)}"
        self.token = secrets.token_hex(3)
        self.tag = f"chaoscafe-{self.token}"   # the comment on every iptables rule a fault adds to this cluster
        self.cookie = secrets.token_hex(20).upper()
        self.username, self.password = f"cafe-{secrets.token_hex(4)}", secrets.token_hex(16)
        self.epmd_port = free_port(_DIST_HOST)
        self.members = [ClusterNode(self, k) for k in range(1, size + 1)]
        self.started_after_s: float | None = None
        self._answered: ClusterNode | None = None   # the member whose API answered last (_live)

    def nodename_of(self, index: int) -> str:
        return f"cafe-{self.token}-n{index}@localhost"

    # -- what a single node offers too ---------------------------------------------------------
    @property
    def nodename(self) -> str:
        return self.members[0].nodename

    @property
    def amqp_port(self) -> int:
        return self.members[0].amqp_port

    @property
    def amqp_url(self) -> str:
        """AMQP URL of the first member whose management API answers (its own address and port)."""
        node = self._live()
        return amqp_url_of(self.username, self.password, node.amqp_port, self.vhost, node.address)

    def amqp_url_at(self, port: int) -> str:
        return amqp_url_of(self.username, self.password, port, self.vhost)

    @property
    def management_url(self) -> str:
        return self._live().management_url

    def endpoints(self) -> list[tuple[str, int]]:
        return [(m.address, m.amqp_port) for m in self.members]

    def member(self, nodename: str) -> ClusterNode:
        for m in self.members:
            if m.nodename == nodename:
                return m
        raise BrokerError(f"{nodename} is not a member of this cluster ({', '.join(self.names())})")

    def names(self) -> list[str]:
        return [m.nodename for m in self.members]

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, timeout: float = 120) -> None:
        """Boot every member at once (peer discovery joins them) and wait until each runs and the
        cluster lists all of them as running; BrokerError with the reason otherwise."""
        began = time.monotonic()
        self.members[0]._prepare()
        self.members[0]._start_epmd()
        errors = self.boot(self.members, timeout)
        if errors:
            raise BrokerError(f"cluster of {self.size}: a member did not start: {errors[0]}") from errors[0]
        self.wait_formed(max(1.0, timeout - (time.monotonic() - began)))
        self.started_after_s = round(time.monotonic() - began, 2)

    @staticmethod
    def boot(members: list[ClusterNode], timeout: float = 90, *, restart: bool = False) -> list[BaseException]:
        """Start (or, with `restart`, stop and start) `members` at once, each in a thread, and return
        the errors of those that did not come up (each such member is killed again). At once, not
        one after another: a member started again waits for Mnesia tables from the members that
        went down after it, so two members killed together and started in turn can wait on each
        other until the first one's timeout (seen in a test: the survivor could not rejoin either)."""
        errors: list[BaseException] = []

        def up(member: ClusterNode) -> None:
            try:
                member.restart(timeout) if restart else member.start(timeout)
            except BaseException as exc:   # returned, after every thread ended
                errors.append(exc)

        threads = [threading.Thread(target=up, args=(m,), name=f"boot-{m.index}") for m in members]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return errors

    def wait_formed(self, timeout: float) -> None:
        """Block until every member runs, answers, and the cluster reports no partition."""
        deadline = time.monotonic() + timeout
        state: dict[str, Any] = {}
        while time.monotonic() < deadline:
            state = self.health()
            if state["healed"]:
                return
            time.sleep(0.3)
        raise BrokerError(f"cluster not formed within {timeout:g}s: {state}")

    def members_out(self, health: dict[str, Any] | None = None) -> int:
        """Members out of the running cluster: as the members that answer list it (`health`, read
        now when not given); when none answers (a frozen peer can hold every member's management
        API past its timeout), the members whose VM is gone or stopped, which is known without one."""
        health = self.health() if health is None else health
        if health["partitions"]:   # one entry per member that answered
            return self.size - len(health["running"])
        return sum(1 for m in self.members if not m.is_running() or m.frozen())

    def health(self) -> dict[str, Any]:
        """{"running": members the cluster lists as running, "partitions": {node: [nodes it reports
        partitioned from]} for every member that answers, "healed": every member running and
        answering (a member still starting its app does not), and no partition}."""
        views = self._each()
        running = _running_in(views)
        partitions = {m.nodename: _partitions_of(m.nodename, nodes) for m, nodes in views}
        return {"running": running, "partitions": partitions,
                "healed": len(views) == self.size and running == sorted(self.names())
                and not any(partitions.values())}

    def is_running(self) -> bool:
        return all(m.is_running() for m in self.members)

    def beam_pid(self) -> int | None:
        return self.members[0].beam_pid()

    def pids(self) -> list[int]:
        return sorted(pid for m in self.members for pid in m.pids())

    def rules_left(self) -> list[str]:
        """iptables rules still carrying this cluster's tag (none once every partition healed)."""
        return Netfilter(self.tag).rules() if netfilter.available() is None else []

    def cleanup(self, *, graceful: bool = False) -> None:
        """Remove this cluster's iptables rules, stop every member for good (the first last: it owns
        the epmd). Idempotent."""
        if netfilter.available() is None:
            with contextlib.suppress(Exception):
                Netfilter(self.tag).heal()
        for m in self.members:
            with contextlib.suppress(Exception):
                m.resume()
        for m in reversed(self.members):
            with contextlib.suppress(Exception):
                m.cleanup(graceful=graceful)

    def crash(self) -> None:
        raise BrokerError("a cluster is not crashed as one node: use a broker-node fault on a member")

    stop = restart = crash

    # -- cluster state ---------------------------------------------------------------------------
    def _live(self, *, api: bool = True) -> ClusterNode:
        """The first member that runs (and, with `api`, whose management API answers), asking the
        one that answered last time first: a frozen member costs its 2 s timeout once, not per read."""
        last = self._answered
        for m in ([last] if last is not None else []) + [m for m in self.members if m is not last]:
            if not m.is_running():
                continue
            if not api:
                return m
            try:
                m._api("overview", timeout=2)
                self._answered = m
                return m
            except BrokerError:
                continue
        raise BrokerError(f"no member of the cluster answers ({', '.join(self.names())})")

    def _majority(self) -> ClusterNode:
        """A member that sees a majority of the cluster running (during a partition, one on the side
        that goes on: the minority's view of its queues is stale); else any member that answers."""
        for m, nodes in self._each():
            if sum(1 for n in nodes if n.get("running")) * 2 > self.size:
                return m
        return self._live()

    def _each(self) -> list[tuple[ClusterNode, Any]]:
        """(member, its /api/nodes answer) for every member whose API answers now."""
        out = []
        for m in self.members:
            if not m.is_running():
                continue
            with contextlib.suppress(BrokerError):
                out.append((m, m._api("nodes", timeout=2)))
        return out

    def answering(self) -> list[str]:
        """Members whose management API answers now (a paused or hung member does not)."""
        return [m.nodename for m, _ in self._each()]

    def running(self) -> list[str]:
        """Members running as the members that answer see them: a member counts when every answering
        member lists it as running (a paused minority node lists nobody, and nobody lists it)."""
        return _running_in(self._each())

    def partitions(self) -> dict[str, list[str]]:
        """{member: the members it reports partitioned from} for every member that answers."""
        return {m.nodename: _partitions_of(m.nodename, nodes) for m, nodes in self._each()}

    def queue(self, queue: str, vhost: str = "/") -> dict[str, Any]:
        """The management API's record of `queue` (leader, members, online), from a live member."""
        path = f"queues/{urllib.parse.quote(vhost, safe='')}/{urllib.parse.quote(queue, safe='')}"
        return dict(self._live()._api(path))

    def leader(self, queue: str, vhost: str = "/") -> str | None:
        """The member leading quorum queue `queue` now, from its Raft members' own state
        (`rabbitmq-queues quorum_status`, asked of a member on the majority's side: the management
        API's record lags an election by seconds); a classic queue: the node it lives on. None when no member leads."""
        states = self.raft_states(queue, vhost)
        if not states:   # not a quorum queue (or no answer): where the management API places it
            return self.queue(queue, vhost).get("node")
        return next((node for node, state in states.items() if state == "leader"), None)

    def quorum_status(self, queue: str, vhost: str = "/") -> dict[str, dict[str, Any]]:
        """{member: its row of `rabbitmq-queues quorum_status`} for quorum queue `queue` (keys as the
        tool names them: "Raft State", "Term", "Commit Index", ...), asked of a member on the
        majority's side; {} when no member can say. BrokerError when no member answers."""
        res = self._majority().ctl("quorum_status", queue, "--vhost", vhost, "--formatter", "json",
                                   tool="rabbitmq-queues", timeout=30)
        try:
            return {str(r["Node Name"]): dict(r) for r in json.loads(res.stdout)}
        except (ValueError, KeyError, TypeError):
            return {}

    def raft_states(self, queue: str, vhost: str = "/") -> dict[str, str]:
        """{member: its Raft state} for quorum queue `queue` ("leader", "follower", or what a member
        that is down or still recovering reports), from `quorum_status`; {} when no member can say."""
        return {node: str(row.get("Raft State")) for node, row in self.quorum_status(queue, vhost).items()}

    def raft_term(self, queue: str, vhost: str = "/") -> int | None:
        """The highest Raft term the members of quorum queue `queue` report (it grows by one or more
        with every election, also one the old leader wins again); None when no member says."""
        terms = [row.get("Term") for row in self.quorum_status(queue, vhost).values()]
        numbers = [int(t) for t in terms if isinstance(t, int) or (isinstance(t, str) and t.isdigit())]
        return max(numbers) if numbers else None

    # -- delegated to a live member --------------------------------------------------------------
    def queue_stats(self, queue: str, vhost: str = "/") -> dict[str, Any]:
        return self._live().queue_stats(queue, vhost)

    def bindings(self, exchange: str, queue: str, vhost: str = "/") -> list[str]:
        return self._live().bindings(exchange, queue, vhost)

    def unbind(self, exchange: str, queue: str, routing_key: str, vhost: str = "/") -> None:
        self._live().unbind(exchange, queue, routing_key, vhost)

    def bind(self, exchange: str, queue: str, routing_key: str, vhost: str = "/") -> None:
        self._live().bind(exchange, queue, routing_key, vhost)

    def delete_queue(self, queue: str, vhost: str = "/") -> None:
        self._live().delete_queue(queue, vhost)

    def alarms(self) -> list[str]:
        return self._live().alarms()

    def set_alarm(self, resource: str, wait_s: float = 20.0) -> None:
        for m in self.members:
            m.set_alarm(resource, wait_s)

    def clear_alarm(self, resource: str, wait_s: float = 20.0) -> None:
        for m in self.members:
            m.clear_alarm(resource, wait_s)

    def blocked_connections(self, vhost: str = "/") -> int:
        return sum(m.blocked_connections(vhost) for m in self.members if m.is_running())

    def version(self) -> str:
        return self._live().version()

    def describe(self) -> dict[str, Any]:
        return {"nodes": self.size, "members": [{"node": m.nodename, "address": m.address,
                                                 "amqp_port": m.amqp_port, "dist_port": m.dist_port}
                                                for m in self.members],
                "partition_handling": self.partition_handling, "net_ticktime_s": self.net_ticktime_s,
                "started_after_s": self.started_after_s}

    def __enter__(self) -> RabbitCluster:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.cleanup()
