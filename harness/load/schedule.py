"""The arrival schedule: every order's intended send time and content, decided up front from a seed.

This is the open-loop half of avoiding coordinated omission: the driver sends order i at
t0 + offset_s whatever the shop is doing, and latency is measured from that intended time.

Processes (`PROCESSES`):
    "uniform"  deterministic: order k (k = 1, 2, ...) is due when the integral of λ from 0 reaches k,
               so a constant 10/s over 2 s gives exactly 20 orders at 0.1, 0.2, ..., 2.0. The integral
               is exact (shapes are affine between their breakpoints). The seed only sets the content.
    "poisson"  a non-homogeneous Poisson process by thinning (Lewis-Shedler) with
               λmax = shape.max_rate(duration_s), drawn from random.Random(seed).

Every offset is in [0, duration_s - 1 µs]: an arrival that would fall on or within a microsecond of
the end (the last uniform one does, exactly) is pulled back to duration_s - 1 µs, so offsets stay
strictly inside [0, duration_s) even once rounded to the microsecond.

Content: order i's product and size depend only on (seed, menu_mix, sizes, i), not on the shape,
the process or the duration, so two runs with the same seed send the same first orders. They come
from random.Random(f"{seed}:menu"): one draw picks the product (weights over the products sorted by
name, so the mapping's order does not matter), the next picks the size uniformly from
sizes[product] (in the order given). The customer comes from its own stream,
random.Random(f"{seed}:customers"), one draw per order over `customers` regulars (0: none), so it
leaves products and sizes as they were. Only Random.random() is used, whose sequence Python keeps
stable across versions, so a digest is reproducible on any Python 3.
"""
from __future__ import annotations

import bisect
import hashlib
import json
import math
import random
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate, pairwise

from harness.load.shapes import Shape

PROCESSES = ("poisson", "uniform")
CUSTOMERS = 100  # regulars: each order's customer is drawn uniformly from customer-001..customer-100
HAIR_S = 1e-6  # the resolution of the canonical form; the latest offset allowed is duration - HAIR_S


@dataclass(frozen=True)
class Arrival:
    """One order to send: index 0..n-1 in time order (the order's ref is str(index))."""

    index: int
    offset_s: float  # intended send time, seconds after the run's t0
    product: str
    size: str
    customer: str = ""  # who orders (loyalty points are theirs); "" for none

    @property
    def ref(self) -> str:
        return str(self.index)

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no spaces, ASCII, offset with exactly 6 decimals."""
        customer = f'"customer":{json.dumps(self.customer)},' if self.customer else ""
        return (
            f'{{{customer}"index":{self.index},"offset_s":{self.offset_s:.6f},'
            f'"product":{json.dumps(self.product)},"size":{json.dumps(self.size)}}}'
        )


@dataclass(frozen=True)
class ArrivalSchedule:
    """Arrivals sorted by offset, indexes 0..n-1, every offset in [0, duration_s) (checked on creation)."""

    arrivals: tuple[Arrival, ...]
    duration_s: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.duration_s) and self.duration_s > 0):
            raise ValueError(f"duration_s: must be > 0, got {self.duration_s!r}")
        previous = 0.0
        for i, arrival in enumerate(self.arrivals):
            if arrival.index != i:
                raise ValueError(f"arrivals[{i}].index: must be {i}, got {arrival.index!r}")
            if not previous <= arrival.offset_s < self.duration_s:
                raise ValueError(
                    f"arrivals[{i}].offset_s: must be in [{previous:g}, {self.duration_s:g}), got {arrival.offset_s!r}"
                )
            previous = arrival.offset_s

    def __len__(self) -> int:
        return len(self.arrivals)

    def __iter__(self) -> Iterator[Arrival]:
        return iter(self.arrivals)

    def to_jsonl(self) -> str:
        """One canonical JSON object per arrival, each line ending in a newline ("" when empty)."""
        return "".join(arrival.to_json() + "\n" for arrival in self.arrivals)

    def digest(self) -> str:
        """sha256 hex of a header line {"duration_s":...} followed by to_jsonl(); equal schedules, equal digests."""
        header = f'{{"duration_s":{self.duration_s:.6f}}}\n'
        return hashlib.sha256((header + self.to_jsonl()).encode("ascii")).hexdigest()

    def expected_rate(self) -> float:
        """Orders per second over the whole run: len / duration_s."""
        return len(self.arrivals) / self.duration_s

    def busiest_second(self) -> int:
        """The most arrivals in one whole second of the schedule ([k, k+1) s after t0); 0 when empty."""
        per_second = Counter(int(arrival.offset_s) for arrival in self.arrivals)
        return max(per_second.values(), default=0)


def build_schedule(
    shape: Shape,
    duration_s: float,
    *,
    process: str,
    seed: int,
    menu_mix: Mapping[str, float],
    sizes: Mapping[str, Sequence[str]],
    customers: int = CUSTOMERS,
) -> ArrivalSchedule:
    """The schedule of `shape` over [0, duration_s); identical inputs give an identical schedule.

    Raises ValueError naming the field for a bad duration, unknown process, non-int seed, an empty
    mix or a weight that is not > 0, and a product in the mix with no sizes.
    """
    if isinstance(duration_s, bool) or not isinstance(duration_s, (int, float)) or not (
        math.isfinite(duration_s) and duration_s > 0
    ):
        raise ValueError(f"duration_s: must be a finite number > 0, got {duration_s!r}")
    if process not in PROCESSES:
        raise ValueError(f"process: must be one of {', '.join(PROCESSES)}, got {process!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed: must be an int, got {seed!r}")
    menu = _menu(menu_mix, sizes)
    duration = float(duration_s)
    if process == "uniform":
        offsets = _uniform_offsets(shape, duration)
    else:
        offsets = _poisson_offsets(shape, duration, random.Random(seed))
    latest = max(0.0, duration - HAIR_S)
    content = _content(menu, random.Random(f"{seed}:menu"))
    who = random.Random(f"{seed}:customers")
    arrivals = tuple(
        Arrival(i, min(offset, latest), *next(content), customer=_customer(who, customers))
        for i, offset in enumerate(offsets)
    )
    return ArrivalSchedule(arrivals, duration)


_Menu = tuple[tuple[str, ...], list[float], dict[str, tuple[str, ...]]]


def _menu(menu_mix: Mapping[str, float], sizes: Mapping[str, Sequence[str]]) -> _Menu:
    """Products sorted by name, their cumulative weights, and their sizes; validated."""
    if not menu_mix:
        raise ValueError(f"menu_mix: must name at least one product, got {dict(menu_mix)!r}")
    products = tuple(sorted(menu_mix))
    for product in products:
        weight = menu_mix[product]
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not (
            math.isfinite(weight) and weight > 0
        ):
            raise ValueError(f"menu_mix[{product!r}]: weight must be a finite number > 0, got {weight!r}")
        choices = sizes.get(product)
        if choices is None or isinstance(choices, str) or len(choices) == 0:
            raise ValueError(f"sizes[{product!r}]: must list at least one size, got {choices!r}")
    cumulative = list(accumulate(float(menu_mix[p]) for p in products))
    return products, cumulative, {p: tuple(sizes[p]) for p in products}


def _customer(rng: random.Random, customers: int) -> str:
    """One draw: a customer id, or "" when the schedule has no customers (customers == 0)."""
    return f"customer-{min(int(rng.random() * customers), customers - 1) + 1:03d}" if customers > 0 else ""


def _content(menu: _Menu, rng: random.Random) -> Iterator[tuple[str, str]]:
    """An endless stream of (product, size): one rng draw for the product, one for its size."""
    products, cumulative, sizes = menu
    total = cumulative[-1]
    while True:
        i = min(bisect.bisect_right(cumulative, rng.random() * total), len(products) - 1)
        choices = sizes[products[i]]
        yield products[i], choices[min(int(rng.random() * len(choices)), len(choices) - 1)]


def _uniform_offsets(shape: Shape, duration: float) -> list[float]:
    """The times where the integral of λ crosses 1, 2, ..., exact on each affine piece."""
    bounds = [0.0, *shape.breakpoints(duration), duration]
    pieces = []  # (start, end, rate at start, slope, integral over the piece)
    for a, b in pairwise(bounds):
        r_a, r_mid = shape.rate(a), shape.rate((a + b) / 2)
        pieces.append((a, b, r_a, 2 * (r_mid - r_a) / (b - a), r_mid * (b - a)))
    total = sum(piece[4] for piece in pieces)
    count = math.floor(total + 1e-9)  # 29.999999999 of accumulated float error is still 30 orders
    offsets: list[float] = []
    done = 0.0  # the integral up to the start of the current piece
    for n, (a, b, r_a, slope, area) in enumerate(pieces):
        last = n == len(pieces) - 1
        while len(offsets) < count and (last or len(offsets) + 1 <= done + area):
            need = len(offsets) + 1 - done
            offsets.append(min(a + _solve(r_a, slope, need), b))
        done += area
    return offsets


def _solve(r_a: float, slope: float, need: float) -> float:
    """The s >= 0 where r_a*s + slope*s²/2 reaches `need` (the stable root of the quadratic)."""
    if need <= 0:
        return 0.0
    root = math.sqrt(max(r_a * r_a + 2 * slope * need, 0.0))
    denominator = r_a + root
    return 2 * need / denominator if denominator > 0 else 0.0


def _poisson_offsets(shape: Shape, duration: float, rng: random.Random) -> list[float]:
    """Lewis-Shedler thinning: candidates at rate λmax, each kept with probability λ(t)/λmax."""
    lam_max = shape.max_rate(duration)
    if not (math.isfinite(lam_max) and lam_max >= 0):
        raise ValueError(f"shape: max_rate({duration:g}) must be finite and >= 0, got {lam_max!r}")
    offsets: list[float] = []
    t = 0.0
    while lam_max > 0:
        t += -math.log(1.0 - rng.random()) / lam_max
        if t >= duration:
            break
        rate = shape.rate(t)
        if rate > lam_max * (1 + 1e-9):
            raise ValueError(f"shape: rate({t:g}) = {rate:g} exceeds max_rate({duration:g}) = {lam_max:g}")
        if rng.random() * lam_max < rate:
            offsets.append(t)
    return offsets
