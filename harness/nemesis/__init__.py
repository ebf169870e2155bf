"""Faults (the nemesis): kinds registered in FAULT_KINDS, run on schedule by `Nemesis`.

    base.py     the Fault protocol, Kind (metadata from harness.experiment.faults.KINDS), the registry
    process.py  kill, pause, stop (targets: barista, orders, cashier, waiter)
    network.py  Toxiproxy toxics and `down` on named edges (targets: harness.shops.base.EDGES)
    broker.py   broker-crash, broker-stop, broker-alarm (target: broker), unbind, queue-delete
    cluster.py  broker-node-kill / -pause / -stop, broker-partition: members of a RabbitMQ cluster
    delivery.py crash-before-ack, duplicate-publish, silent: hooks inside the services
    clock.py    clock-skew: a service's clock off and drifting (libfaketime), set before the load
    join.py     join: a new consumer (target: bell) joins the running shop (an action, not a fault)
    runner.py   Nemesis: applies windows at their times, heals everything at the end
"""
from harness.errors import NotApplicable
from harness.experiment.faults import TARGETS
from harness.nemesis import broker, clock, cluster, delivery, join, network, process  # noqa: F401  (register the fault kinds)
from harness.nemesis.base import FAULT_KINDS, Fault, FaultWindow, register
from harness.nemesis.runner import Nemesis

__all__ = ["FAULT_KINDS", "TARGETS", "Fault", "FaultWindow", "Nemesis", "NotApplicable", "register"]
