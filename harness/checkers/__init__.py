"""Checkers: pure functions from a history to a verdict (see base.py for the contract).

    ledger        lost / duplicated / unexpected / recovered orders, per hop
    latency       acceptance, response and fulfilment latency from the intended time
    throughput    sent / accepted / brewed / served per second over time
    availability  share of attempts accepted, inside and outside fault windows
    probe         the business probe: every accepted order served within the SLO
    generator     load generator lag and drops
    backlog       orders waiting in the shop, and how fast they drain
    scaling       the barista pool over time, scale changes and reasons, work and orders held per replica
    queueing      measured against theory: Little's law, the M/M/c (Erlang C) prediction (section "theory")
    newcomer      a consumer added at runtime: every coffee brewed after it joined handled exactly once
    steady_state  the hypothesis before the method: the shop was serving before the first fault
    retries       the customers' attempts and how much retries amplified the load
    clocks        intervals between different processes' stamps that cannot be negative, and are (skew)
"""
from harness.checkers.availability import Availability
from harness.checkers.backlog import Backlog
from harness.checkers.base import (
    Checker,
    CheckerResult,
    CheckOptions,
    compose,
    run_checkers,
)
from harness.checkers.clocks import Clocks
from harness.checkers.generator import GeneratorHealth
from harness.checkers.latency import Latency
from harness.checkers.ledger import Ledger
from harness.checkers.newcomer import Newcomer
from harness.checkers.probe import BusinessProbe
from harness.checkers.queueing import Queueing
from harness.checkers.retries import Retries
from harness.checkers.scaling import Scaling
from harness.checkers.steady import SteadyState
from harness.checkers.throughput import Throughput
from harness.checkers.timeline import FaultSpan, fault_windows, run_end, t0


def default_checkers() -> list[Checker]:
    """The registry: one of each checker in this package, ledger first (the order of results.json)."""
    return [Ledger(), Latency(), Throughput(), Availability(), BusinessProbe(), GeneratorHealth(), Backlog(),
            Scaling(), Queueing(), Newcomer(), SteadyState(), Clocks(), Retries()]


__all__ = [
    "Availability",
    "Backlog",
    "BusinessProbe",
    "CheckOptions",
    "Clocks",
    "Checker",
    "CheckerResult",
    "FaultSpan",
    "GeneratorHealth",
    "Latency",
    "Ledger",
    "Newcomer",
    "Queueing",
    "Retries",
    "Scaling",
    "SteadyState",
    "Throughput",
    "compose",
    "default_checkers",
    "fault_windows",
    "run_checkers",
    "run_end",
    "t0",
]
