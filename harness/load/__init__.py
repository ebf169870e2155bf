"""Load: when each order is sent, decided up front (open loop), never in reaction to the shop.

    shapes    arrival-rate shapes λ(t): Constant, Step, Ramp, MorningRush (SHAPES by name)
    schedule  build_schedule(shape, duration, process, seed, menu) -> ArrivalSchedule of Arrivals
"""
from harness.load.schedule import PROCESSES, Arrival, ArrivalSchedule, build_schedule
from harness.load.shapes import SHAPES, Constant, MorningRush, Ramp, Shape, Step

__all__ = [
    "PROCESSES",
    "SHAPES",
    "Arrival",
    "ArrivalSchedule",
    "Constant",
    "MorningRush",
    "Ramp",
    "Shape",
    "Step",
    "build_schedule",
]
