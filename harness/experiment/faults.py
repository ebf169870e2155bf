"""Faults as data: what a fault kind is called, what it may target, which parameters it takes.

The experiment schema validates `[[faults]]` against `KINDS` and compresses their parameters with a
profile's speed; the nemesis (harness/nemesis/) implements each kind under the same name and takes
its targets and description from here (`register` refuses a class without an entry). Pure: this
module imports nothing that starts or talks to a process.

    FaultWindow  one scheduled fault (a `[[faults]]` entry, as the nemesis runs it)
    FaultKind    a kind's metadata: targets, parameters and their defaults, time/rate dimensions
    KINDS        kind name -> FaultKind
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cafe.topology import BINDINGS
from harness.shops.settings import EDGES

PROCESS_TARGETS = ("barista", "orders", "cashier", "waiter")
QUEUE_TARGETS = tuple(BINDINGS)   # the async shop's work queues: "barista.orders", "waiter.brewed"
NEWCOMER_TARGETS = ("bell",)      # the programs a `join` may start (harness/nemesis/join.py PROGRAMS)


@dataclass(frozen=True)
class FaultWindow:
    """One scheduled fault: `kind` on `target` from start_s for duration_s (seconds after t0)."""

    name: str
    kind: str
    target: str
    start_s: float
    duration_s: float
    replica: int | None = None           # one replica (1-based) or None for all
    params: dict[str, Any] = field(default_factory=dict)
    wait_for_work_s: float = 0.0         # start at the first moment within this after start_s that the target holds work

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


def no_params(kind: str, params: Mapping[str, Any]) -> None:
    """ValueError naming the first parameter: `kind` takes none."""
    if params:
        raise ValueError(f"{next(iter(params))}: {kind!r} takes no parameters")


# Toxiproxy toxic -> its attributes (all numbers) and the defaults used when a param is not given
TOXICS: dict[str, dict[str, float]] = {
    "latency": {"latency": 100, "jitter": 0},
    "bandwidth": {"rate": 100},
    "timeout": {"timeout": 0},
    "reset_peer": {"timeout": 0},
    "slow_close": {"delay": 1000},
    "slicer": {"average_size": 64, "size_variation": 32, "delay": 1000},
    "limit_data": {"bytes": 1024},
}
STREAMS = ("upstream", "downstream")
# toxics whose removal does more than undo them (Toxiproxy: a timeout toxic's connections are closed)
HEAL_EFFECTS = {"timeout": "closes every connection through the proxy"}
TIME_PARAMS = ("latency", "jitter", "timeout", "delay")   # ms: divided by a profile's speed
RATE_PARAMS = ("rate",)                                   # KB/s: multiplied by it


def check_network_params(kind: str, params: Mapping[str, Any]) -> None:
    """ValueError naming a bad network-fault parameter (a toxic's attribute, `stream`, `toxicity`)."""
    allowed = set(TOXICS.get(kind, {})) | {"stream", "toxicity"} if kind != "down" else set()
    for key, value in params.items():
        if key not in allowed:
            raise ValueError(f"{key}: not a parameter of {kind!r} (allowed: {', '.join(sorted(allowed)) or 'none'})")
        if key == "stream":
            if value not in STREAMS:
                raise ValueError(f"stream: {value!r} is not one of {STREAMS}")
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"{key}: must be a number >= 0, got {value!r}")
        elif key == "toxicity" and value > 1:
            raise ValueError(f"toxicity: must be <= 1, got {value}")


def check_rate_params(kind: str, params: Mapping[str, Any]) -> None:
    """ValueError naming a bad hook-fault parameter (`rate` in (0, 1], integer `seed`)."""
    for key, value in params.items():
        if key == "rate":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
                raise ValueError(f"rate: must be a number in (0, 1], got {value!r}")
        elif key == "seed":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"seed: must be an integer, got {value!r}")
        else:
            raise ValueError(f"{key}: not a parameter of {kind!r} (allowed: rate, seed)")


ALARM_RESOURCES = ("memory", "disk")   # what a `broker-alarm` exhausts (RabbitMQ's two resource alarms)


def check_alarm_params(kind: str, params: Mapping[str, Any]) -> None:
    """ValueError naming a bad `broker-alarm` parameter (`resource`: "memory" or "disk")."""
    for key, value in params.items():
        if key != "resource":
            raise ValueError(f"{key}: not a parameter of {kind!r} (allowed: resource)")
        if value not in ALARM_RESOURCES:
            raise ValueError(f"resource: {value!r} is not one of {ALARM_RESOURCES}")


def check_clock_params(kind: str, params: Mapping[str, Any]) -> None:
    """ValueError naming a bad `clock-skew` parameter (`offset_s` within a day, `drift` in [0.5, 2])."""
    for key, value in params.items():
        if key not in ("offset_s", "drift"):
            raise ValueError(f"{key}: not a parameter of {kind!r} (allowed: drift, offset_s)")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{key}: must be a number, got {value!r}")
        if key == "offset_s" and abs(value) > 86_400:
            raise ValueError(f"offset_s: must be within a day (+/- 86400 s), got {value}")
        if key == "drift" and not 0.5 <= value <= 2:
            raise ValueError(f"drift: must be in [0.5, 2] (1 = a clock at the right pace), got {value}")


NODE_CHOICES = ("leader", "follower", "minority", "majority")   # or "node-K": which cluster members
PARTITION_MODES = ("isolate-leader", "isolate-follower", "halves", "bridge", "one-way")


def check_node_params(kind: str, params: Mapping[str, Any]) -> None:
    """ValueError naming a bad `broker-node-*` parameter (`node`: leader, follower, minority,
    majority or node-K)."""
    for key, value in params.items():
        if key != "node":
            raise ValueError(f"{key}: not a parameter of {kind!r} (allowed: node)")
        if value not in NODE_CHOICES and not (isinstance(value, str) and value.startswith("node-")
                                              and value[5:].isdigit() and 1 <= int(value[5:]) <= 5):
            raise ValueError(f"node: {value!r} is not one of {NODE_CHOICES} or node-K (K = 1..5)")


def check_partition_params(kind: str, params: Mapping[str, Any]) -> None:
    """ValueError naming a bad `broker-partition` parameter (`mode`, see PARTITION_MODES; `loss`:
    the share of packets dropped on the cut links, (0, 1], default 1 = a clean cut)."""
    for key, value in params.items():
        if key == "mode":
            if value not in PARTITION_MODES:
                raise ValueError(f"mode: {value!r} is not one of {PARTITION_MODES}")
        elif key == "loss":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
                raise ValueError(f"loss: must be a number in (0, 1], got {value!r}")
        else:
            raise ValueError(f"{key}: not a parameter of {kind!r} (allowed: loss, mode)")


@dataclass(frozen=True)
class FaultKind:
    """A fault kind's metadata. `check(kind, params)` raises ValueError naming a bad parameter;
    `defaults` are the values of omitted parameters; `time_params` (ms or s) divide and `rate_params`
    multiply by a profile's speed; `private_broker` kinds stop the broker node itself, so a run with
    one gets a RabbitMQ node of its own instead of a vhost on the shared one. `heal_effect` says
    what the heal itself does to the shop (removing a `timeout` toxic closes every connection
    through the proxy): the nemesis records when the shop has settled after such a heal, and the
    failures in between are the heal's, not the next window's. A `slow_apply` kind takes seconds to
    apply and to undo, each confirmed by asking the target (rabbitmqctl): its window holds its
    declared length from when it took effect (the rest of the schedule slides by the time applying
    took) and ends, in the history, when undoing it began, the last moment it certainly held."""

    name: str
    description: str
    targets: tuple[str, ...]
    check: Callable[[str, Mapping[str, Any]], None] = no_params
    defaults: Mapping[str, float] = field(default_factory=dict)
    time_params: tuple[str, ...] = ()
    rate_params: tuple[str, ...] = ()
    private_broker: bool = False
    heal_effect: str = ""   # what healing it does beyond undoing it (the nemesis then records when the shop settled)
    from_start: bool = False  # a condition set before the load (start_s 0): no steady state is checked before it
    cluster: bool = False     # acts on members of a RabbitMQ cluster ([broker] nodes >= 3)
    slow_apply: bool = False  # applying and undoing it take seconds: its window counts from its effect

    def check_params(self, params: Mapping[str, Any]) -> None:
        self.check(self.name, params)


def _kinds() -> dict[str, FaultKind]:
    process = {
        "kill": "SIGKILL the target's replicas; start them again when the window ends",
        "pause": "freeze the target's replicas (SIGSTOP): connections stay open, nothing answers",
        "stop": "stop the target's replicas gracefully (SIGTERM); start them when the window ends",
    }
    network = {
        "latency": "adds `latency` ms (+/- `jitter`) to data on the edge",
        "bandwidth": "limits the edge to `rate` KB/s",
        "timeout": "a blackhole: data is dropped; the connection closes after `timeout` ms (0: never). Removing "
                   "it closes every connection through the proxy: the reconnects and redeliveries that follow "
                   "are the heal's (recorded as the window's aftermath)",
        "reset_peer": "resets connections (TCP RST) after `timeout` ms",
        "slow_close": "delays the close of connections by `delay` ms",
        "slicer": "slices data into small packets of `average_size` bytes, `delay` us apart",
        "limit_data": "closes connections after `bytes` bytes",
    }
    kinds = [FaultKind(name, text, PROCESS_TARGETS) for name, text in process.items()]
    kinds += [FaultKind(name, text, EDGES, check_network_params, TOXICS[name], TIME_PARAMS, RATE_PARAMS,
                        heal_effect=HEAL_EFFECTS.get(name, ""))
              for name, text in network.items()]
    kinds += [
        FaultKind("down", "the edge is cut: its proxies are disabled (listeners closed, open connections dropped)",
                  EDGES, check_network_params),
        FaultKind("broker-crash", "SIGKILL the RabbitMQ node; restart it with the same data when the window ends",
                  ("broker",), private_broker=True),
        FaultKind("broker-stop", "stop the RabbitMQ node gracefully; start it again when the window ends",
                  ("broker",), private_broker=True),
        FaultKind("broker-node-kill", "SIGKILL the cluster member(s) `node` names (default the leader of "
                  "barista.orders, resolved when the window starts); restart them with their data at its end",
                  ("broker",), check_node_params, private_broker=True, cluster=True),
        FaultKind("broker-node-pause", "freeze the cluster member(s) `node` names (SIGSTOP of the Erlang VM: sockets "
                  "stay open, nothing answers); resume them at the window's end", ("broker",), check_node_params,
                  private_broker=True, cluster=True),
        FaultKind("broker-node-stop", "stop the cluster member(s) `node` names gracefully; start them at the "
                  "window's end", ("broker",), check_node_params, private_broker=True, cluster=True),
        FaultKind("broker-partition", "split the cluster's network (iptables on the members' Erlang distribution "
                  "links, tagged with the run): `mode` isolate-leader (default), isolate-follower, halves (the "
                  "leader in the minority), bridge (two sides that both see one member) or one-way (the leader's "
                  "packets to the others are lost); `loss` < 1 drops only that share of packets; the window's end "
                  "removes every rule and waits for the cluster to heal", ("broker",), check_partition_params,
                  private_broker=True, cluster=True),
        FaultKind("broker-alarm", "RabbitMQ's memory or disk alarm (`resource`, default memory) is raised by putting "
                  "the limit out of reach: the broker blocks every connection that publishes; the window's end "
                  "restores the limit", ("broker",), check_alarm_params, slow_apply=True),
        FaultKind("unbind", "a topology accident: the binding that routes the target queue's events to it (on "
                  "cafe.events) is deleted; the window's end binds it again (an operator's repair)",
                  QUEUE_TARGETS),
        FaultKind("queue-delete", "a topology accident: the target work queue is deleted with the messages in it "
                  "(its consumers are cancelled); the window's end declares the topology again",
                  QUEUE_TARGETS),
        FaultKind("clock-skew", "the target's clock is off by `offset_s` (+/- s) and runs at `drift` x the right pace "
                  "(libfaketime in its processes, restarted with it before the load starts; start_s must be 0): "
                  "the stamps it writes are skewed", PROCESS_TARGETS, check_clock_params,
                  {"offset_s": 0.0, "drift": 1.0}, ("offset_s",), from_start=True),
        FaultKind("crash-before-ack",
                  "async barista: SIGKILL after recording a first delivery's brew, before its ack, for a share "
                  "`rate` of orders (seeded by `seed`); crashed replicas restart at once",
                  ("barista",), check_rate_params),
        FaultKind("duplicate-publish",
                  "async order service: publish a share `rate` of events twice (a lost confirm's republish)",
                  ("orders",), check_rate_params),
        FaultKind("silent", "barista: takes work and never finishes it (async: holds deliveries unacked; sync: "
                  "never answers); healed by a restart (async) or by disarming (sync)", ("barista",)),
        FaultKind("join", "a new consumer (the brewed bell) joins the running async shop and stays",
                  NEWCOMER_TARGETS),
    ]
    return {kind.name: kind for kind in kinds}


KINDS: dict[str, FaultKind] = _kinds()
TARGETS: tuple[str, ...] = tuple(dict.fromkeys(t for kind in KINDS.values() for t in kind.targets))
