"""Experiments as data: the typed model of an experiment file (TOML), validated on load.

Every table refuses unknown keys. See experiments/README.md for the file format and
`Experiment.for_profile` for the profile rule.
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from cafe.brewing import BrewTime
from cafe.menu import load_menu
from harness.load.shapes import Constant, MorningRush, Ramp, Shape, Step
from harness.metrics import METRICS
from harness.nemesis import FAULT_KINDS, FaultWindow
from harness.shops.base import ShopSettings

SYSTEMS = ("sync", "async")
PROFILES = ("smoke", "full")
DEFAULT_PROFILES = {"smoke": {"time_factor": 0.25, "rate_factor": 1.0}, "full": {"time_factor": 1.0, "rate_factor": 1.0}}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunSpec(Strict):
    duration_s: float = Field(gt=0, le=3600, description="arrivals are scheduled in [0, duration_s)")
    drain_s: float = Field(30.0, ge=0, le=3600, description="after the last arrival, wait this long at most for service")
    seed: int = Field(1, ge=0)
    slo_s: float = Field(30.0, gt=0, description="business probe: accepted orders must be served within this")
    backlog_interval_s: float = Field(0.5, gt=0, le=60)
    late_ms: float = Field(10.0, gt=0, description="generator lag above this counts an arrival as late")


class LoadSpec(Strict):
    shape: Literal["constant", "step", "ramp", "morning-rush"]
    process: Literal["poisson", "uniform"] = "poisson"
    rate: float = Field(gt=0, le=5000, description="orders/s: the constant rate, the rush's base, the ramp's start")
    to_rate: float | None = Field(None, ge=0, le=5000)
    ramp_s: float | None = Field(None, gt=0)
    peak_factor: float | None = Field(None, ge=1, le=100)
    peak_start_s: float | None = Field(None, ge=0)
    peak_duration_s: float | None = Field(None, gt=0)
    steps: list[tuple[float, float]] | None = None
    client_timeout_s: float = Field(10.0, gt=0, le=600, description="a customer gives up after this")
    max_in_flight: int = Field(10_000, ge=1, le=15_000, description="beyond this many open requests, arrivals are dropped")

    @model_validator(mode="after")
    def _shape_fields(self) -> "LoadSpec":
        needs = {"constant": (), "step": ("steps",), "ramp": ("to_rate", "ramp_s"),
                 "morning-rush": ("peak_factor", "peak_start_s", "peak_duration_s")}
        optional = {"to_rate", "ramp_s", "peak_factor", "peak_start_s", "peak_duration_s", "steps"}
        for name in needs[self.shape]:
            if getattr(self, name) is None:
                raise ValueError(f"shape {self.shape!r} needs {name}")
        for name in optional - set(needs[self.shape]):
            if getattr(self, name) is not None:
                raise ValueError(f"{name} does not apply to shape {self.shape!r}")
        self.build_shape()  # the shape's own checks (e.g. steps increasing)
        return self

    def build_shape(self) -> Shape:
        if self.shape == "constant":
            return Constant(self.rate)
        if self.shape == "step":
            return Step(tuple((float(a), float(r)) for a, r in self.steps or ()))
        if self.shape == "ramp":
            return Ramp(self.rate, float(self.to_rate or 0), float(self.ramp_s or 0))
        return MorningRush(self.rate, float(self.peak_factor or 1), float(self.peak_start_s or 0),
                           float(self.peak_duration_s or 0))


class BrewSpec(Strict):
    distribution: Literal["fixed", "uniform", "exponential"] = "fixed"
    mean_ms: float = Field(100.0, ge=0, le=600_000)
    min_ms: float = Field(0.0, ge=0)
    max_ms: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> "BrewSpec":
        if self.distribution == "uniform" and (self.max_ms is None or self.max_ms < self.min_ms):
            raise ValueError("uniform brew needs max_ms >= min_ms")
        return self


class ShopSpec(Strict):
    """The configuration both shops share (capacity, brew times, timeouts) and the async-only knobs."""

    baristas: int = Field(1, ge=1, le=16)
    brewers: int = Field(1, ge=1, le=64)
    brew: BrewSpec = BrewSpec()
    capacity: int = Field(8, ge=1, le=2000, description="sync cashier: orders handled at once")
    barista_timeout_s: float = Field(10.0, gt=0, le=600)
    prefetch: int = Field(1, ge=1, le=1000)
    idempotency: bool = True
    publish_mode: Literal["outbox", "direct"] = "outbox"
    queue_type: Literal["quorum", "classic"] = "quorum"
    delivery_limit: int = Field(5, ge=1, le=100)
    menu_mix: dict[str, float] = Field(default_factory=lambda: {"Flat White": 3.0, "Latte": 2.0, "Cappuccino": 2.0,
                                                                "Espresso": 1.0, "Americano": 1.0, "Mocha": 1.0})

    @field_validator("menu_mix")
    @classmethod
    def _on_the_menu(cls, mix: dict[str, float]) -> dict[str, float]:
        menu = load_menu()
        if not mix:
            raise ValueError("menu_mix is empty")
        for product, weight in mix.items():
            if menu.canonical_product(product) != product:
                raise ValueError(f"{product!r} is not on the menu ({', '.join(menu.products)})")
            if weight <= 0:
                raise ValueError(f"weight of {product!r} must be > 0, got {weight}")
        return mix

    def settings(self, seed: int) -> ShopSettings:
        b = self.brew
        return ShopSettings(baristas=self.baristas, brewers=self.brewers,
                            brew=BrewTime(b.distribution, b.mean_ms, b.min_ms, b.max_ms, seed),
                            capacity=self.capacity, barista_timeout_s=self.barista_timeout_s,
                            prefetch=self.prefetch, idempotency=self.idempotency,
                            publish_mode=self.publish_mode, queue_type=self.queue_type,
                            delivery_limit=self.delivery_limit)


class FaultSpec(Strict):
    kind: str
    target: str
    start_s: float = Field(ge=0)
    duration_s: float = Field(gt=0)
    replica: int | None = Field(None, ge=1)
    name: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r} (known: {', '.join(sorted(FAULT_KINDS))})")
        return kind

    @field_validator("target")
    @classmethod
    def _target_fits_the_kind(cls, target: str, info: ValidationInfo) -> str:
        kind = info.data.get("kind")
        if kind is not None and target not in FAULT_KINDS[kind].targets:
            raise ValueError(f"unknown target {target!r} for {kind!r} (targets: {', '.join(FAULT_KINDS[kind].targets)})")
        return target

    @field_validator("params")
    @classmethod
    def _params_fit_the_kind(cls, params: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        kind = info.data.get("kind")
        if kind is not None:
            FAULT_KINDS[kind].check_params(params)
        return params


class Bound(Strict):
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _some_bound(self) -> "Bound":
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} > max {self.max}")
        return self

    def holds(self, value: float | None) -> bool:
        if value is None:
            return False
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    def text(self) -> str:
        if self.min is not None and self.max is not None:
            return f"{self.min} <= x <= {self.max}"
        return f">= {self.min}" if self.min is not None else f"<= {self.max}"


class Profile(Strict):
    time_factor: float = Field(1.0, gt=0, le=10)
    rate_factor: float = Field(1.0, gt=0, le=10)


class Experiment(Strict):
    title: str = Field(min_length=1)
    claim: str = Field(min_length=1, description="the claim tested, in plain words")
    description: str = ""
    scenarios: list[int] = Field(default_factory=list, description="items of SCENARIOS.md covered")
    time_scale: str = Field(min_length=1, description="what the compressed times stand for")
    run: RunSpec
    load: LoadSpec
    shop: ShopSpec = ShopSpec()
    faults: list[FaultSpec] = Field(default_factory=list)
    profiles: dict[Literal["smoke", "full"], Profile] = Field(default_factory=dict)
    expect: dict[Literal["sync", "async", "both"], dict[str, Bound]] = Field(default_factory=dict)

    @field_validator("expect")
    @classmethod
    def _known_metrics(cls, expect: dict[str, dict[str, Bound]]) -> dict[str, dict[str, Bound]]:
        for system, checks in expect.items():
            for metric in checks:
                if metric not in METRICS:
                    close = sorted(m for m in METRICS if m.split(".")[0] == metric.split(".")[0])
                    raise ValueError(f"{system}: unknown metric {metric!r}"
                                     + (f" (e.g. {', '.join(close[:6])})" if close else ""))
        return expect

    @model_validator(mode="after")
    def _faults_fit_the_run(self) -> "Experiment":
        """Windows must end before the run does; windows may overlap, except two of the same kind
        on the same target and replica (the first heal would end the second early)."""
        end = self.run.duration_s + self.run.drain_s
        for i, fault in enumerate(self.faults):
            if fault.start_s + fault.duration_s > end:
                raise ValueError(f"faults[{i}] ends at {fault.start_s + fault.duration_s}s, after the run "
                                 f"(duration_s + drain_s = {end}s)")
            for j, other in enumerate(self.faults[:i]):
                same = (other.kind, other.target, other.replica) == (fault.kind, fault.target, fault.replica)
                if same and fault.start_s < other.start_s + other.duration_s and other.start_s < fault.start_s + fault.duration_s:
                    raise ValueError(f"faults[{i}] overlaps faults[{j}]: both {fault.kind} on {fault.target}")
        names = [w.name for w in self.windows()]
        if len(set(names)) != len(names):
            raise ValueError(f"fault names must be unique: {names}")
        return self

    def profile(self, name: str) -> Profile:
        return self.profiles.get(name) or Profile(**DEFAULT_PROFILES[name])  # type: ignore[call-overload]

    def for_profile(self, name: str) -> "Experiment":
        """The experiment as run under a profile: every duration and time offset (run, drain, SLO,
        shape windows, fault windows) multiplied by time_factor, every arrival rate by rate_factor.
        Brew times, timeouts and capacities are left alone: they define the shops, not the run."""
        p = self.profile(name)
        t, r = p.time_factor, p.rate_factor
        run = self.run.model_copy(update={"duration_s": self.run.duration_s * t, "drain_s": self.run.drain_s * t,
                                          "slo_s": self.run.slo_s * t})
        load_update: dict[str, Any] = {"rate": self.load.rate * r}
        if self.load.to_rate is not None:
            load_update["to_rate"] = self.load.to_rate * r
        for key in ("ramp_s", "peak_start_s", "peak_duration_s"):
            if getattr(self.load, key) is not None:
                load_update[key] = getattr(self.load, key) * t
        if self.load.steps is not None:
            load_update["steps"] = [(at * t, rate * r) for at, rate in self.load.steps]
        faults = [f.model_copy(update={"start_s": f.start_s * t, "duration_s": f.duration_s * t}) for f in self.faults]
        return self.model_copy(update={"run": run, "load": self.load.model_copy(update=load_update),
                                       "faults": faults})

    def windows(self) -> list[FaultWindow]:
        return [FaultWindow(f.name or f"{f.kind}-{f.target}-{i + 1}", f.kind, f.target, f.start_s, f.duration_s,
                            f.replica, dict(f.params)) for i, f in enumerate(self.faults)]

    def expectations(self, system: str) -> dict[str, Bound]:
        """Checks for `system`: the "both" table, overridden by the system's own."""
        return {**self.expect.get("both", {}), **self.expect.get(system, {})}  # type: ignore[call-overload]
