"""Experiments as data: the typed model of an experiment file (TOML), validated on load.

Every table refuses unknown keys. See experiments/README.md for the file format and
`Experiment.for_profile` for the profile rule.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from cafe.brewing import BrewTime
from cafe.menu import load_menu
from harness.checkers.base import CheckOptions
from harness.elasticity.autoscaler import Policy
from harness.experiment.faults import KINDS, FaultWindow
from harness.experiment.metrics import METRICS, is_fault_metric, is_shop_metric, time_dimension
from harness.load.retry import RetryPolicy
from harness.load.shapes import Constant, MorningRush, Ramp, Shape, Step
from harness.shops import SHOP_NAMES, TRAITS
from harness.shops.settings import ShopSettings

SYSTEMS = SHOP_NAMES   # the registered shops (harness.shops.REGISTRY)
if TYPE_CHECKING:
    ExpectKey = str
else:   # a Literal of the registered shops and "both": pydantic names a wrong key with the known ones
    ExpectKey = Literal[(*SYSTEMS, "both")]
PROFILES = ("fast", "smoke", "full", "realtime")
# an experiment without its own [profiles.fast] runs `fast` as its smoke profile (not compressed)
DEFAULT_PROFILES = {"smoke": {"time_factor": 0.25}, "full": {"time_factor": 1.0}}
MIN_BACKLOG_INTERVAL_S = 0.2   # compression stops here: each sample is a few HTTP calls and a management read


class Strict(BaseModel):
    """Numbers are numbers: whole ones written whole (`baristas = 2.0` and `seed = true` are errors,
    not 2 and 1), no `true` for a rate, no nan or inf."""
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class RunSpec(Strict):
    duration_s: StrictFloat = Field(gt=0, le=3600, description="arrivals are scheduled in [0, duration_s)")
    drain_s: StrictFloat = Field(30.0, ge=0, le=3600, description="after the last arrival, wait this long at most for service")
    seed: StrictInt = Field(1, ge=0)
    slo_s: StrictFloat = Field(30.0, gt=0, description="business probe: accepted orders must be served within this")
    backlog_interval_s: StrictFloat = Field(0.5, gt=0, le=60)
    late_ms: StrictFloat = Field(10.0, gt=0, description="generator lag above this counts an arrival as late")
    max_lag_ms: StrictFloat = Field(1000.0, gt=0, description="a generator lag p99 above this makes the run inconclusive")


class LoadSpec(Strict):
    shape: Literal["constant", "step", "ramp", "morning-rush"]
    process: Literal["poisson", "uniform"] = "poisson"
    rate: StrictFloat = Field(gt=0, le=5000, description="orders/s: the constant rate, the rush's base, the ramp's start")
    to_rate: StrictFloat | None = Field(None, ge=0, le=5000)
    ramp_s: StrictFloat | None = Field(None, gt=0)
    peak_factor: StrictFloat | None = Field(None, ge=1, le=100)
    peak_start_s: StrictFloat | None = Field(None, ge=0)
    peak_duration_s: StrictFloat | None = Field(None, gt=0)
    steps: list[tuple[float, float]] | None = None
    client_timeout_s: StrictFloat = Field(10.0, gt=0, le=600, description="a customer gives up after this")
    max_in_flight: StrictInt = Field(10_000, ge=1, le=15_000, description="beyond this many open requests, arrivals are dropped")
    retries: StrictInt = Field(0, ge=0, le=10, description="a customer whose attempt ends unknown tries again this often")
    retry_after_s: StrictFloat = Field(1.0, ge=0, le=600, description="pause before a retry (exponential: the first)")
    retry_backoff: Literal["fixed", "exponential"] = Field(
        "fixed", description="fixed: retry_after_s every time; exponential: doubling from it up to retry_max_s")
    retry_max_s: StrictFloat = Field(30.0, gt=0, le=3600, description="exponential backoff: the longest pause")
    retry_jitter: Literal["none", "full"] = Field("none", description="full: each pause drawn in [0, pause]")
    retry_budget: StrictFloat | None = Field(None, ge=0, le=10,
                                       description="retries allowed per first attempt (a token bucket); none: no cap")
    idempotency_key: bool = Field(False, description="every attempt of an order carries the same Idempotency-Key")

    def retry_policy(self) -> RetryPolicy:
        """The customers' retry policy (harness.load.retry)."""
        return RetryPolicy(self.retries, self.retry_after_s, self.retry_backoff, self.retry_max_s,
                           self.retry_jitter, self.retry_budget)

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

    def scaled(self, time_factor: float, rate_factor: float) -> "LoadSpec":
        """This load with its shape scaled by `Shape.scaled` (every time by time_factor, every rate by
        rate_factor): the one profile-scaling rule of the arrival process. A step shape's unused
        `rate` is scaled too, so the file's fields stay consistent."""
        shape = self.build_shape().scaled(time_factor, rate_factor)
        update: dict[str, Any] = {"rate": self.rate * rate_factor}
        if isinstance(shape, Constant):
            update["rate"] = shape.rate_per_s
        elif isinstance(shape, Step):
            update["steps"] = [tuple(step) for step in shape.steps]
        elif isinstance(shape, Ramp):
            update.update(rate=shape.from_rate, to_rate=shape.to_rate, ramp_s=shape.duration_s)
        elif isinstance(shape, MorningRush):
            update.update(rate=shape.base_rate, peak_start_s=shape.peak_start_s,
                          peak_duration_s=shape.peak_duration_s)
        return self.model_copy(update=update)


class BrewSpec(Strict):
    distribution: Literal["fixed", "uniform", "exponential"] = "fixed"
    mean_ms: StrictFloat = Field(100.0, ge=0, le=600_000)
    min_ms: StrictFloat = Field(0.0, ge=0)
    max_ms: StrictFloat | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _bounds(self) -> "BrewSpec":
        if self.distribution == "uniform" and (self.max_ms is None or self.max_ms < self.min_ms):
            raise ValueError("uniform brew needs max_ms >= min_ms")
        return self


class ShopSpec(Strict):
    """The configuration both shops share (capacity, brew times, timeouts) and the async-only knobs."""

    baristas: StrictInt = Field(1, ge=1, le=16)
    brewers: StrictInt = Field(1, ge=1, le=64)
    brew: BrewSpec = BrewSpec()
    capacity: StrictInt = Field(8, ge=1, le=2000, description="sync cashier: orders handled at once")
    barista_timeout_s: StrictFloat = Field(10.0, gt=0, le=600)
    prefetch: StrictInt = Field(1, ge=1, le=1000)
    idempotency: bool = True
    publish_mode: Literal["outbox", "direct"] = "outbox"
    queue_type: Literal["quorum", "classic"] = "quorum"
    delivery_limit: StrictInt = Field(5, ge=1, le=100)
    max_length: StrictInt | None = Field(None, ge=1, le=10_000_000,
                                   description="async work queues: messages held at most (x-max-length)")
    overflow: Literal["drop-head", "reject-publish"] = Field(
        "drop-head", description="what a full work queue does: dead-letter its oldest message, or nack the publish")
    heartbeat_s: StrictInt = Field(10, ge=0, le=3600, description="async services' AMQP heartbeat (s, whole; 0 = off)")
    slow_replica: StrictInt | None = Field(None, ge=1, le=16, description="this barista replica brews slow_factor x slower")
    slow_factor: StrictFloat = Field(1.0, ge=1, le=100)
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
                            delivery_limit=self.delivery_limit, max_length=self.max_length,
                            overflow=self.overflow, heartbeat_s=self.heartbeat_s, slow_replica=self.slow_replica,
                            slow_factor=self.slow_factor)


class BrokerSpec(Strict):
    """The async shop's RabbitMQ: one node (a vhost on the set's shared node) or a private cluster."""

    nodes: Literal[1, 3, 5] = Field(1, description="RabbitMQ nodes; > 1 starts a private cluster for the run")
    partition_handling: Literal["pause_minority", "autoheal", "ignore"] = Field(
        "pause_minority", description="RabbitMQ's cluster_partition_handling")
    net_ticktime_s: StrictInt = Field(60, ge=2, le=120, description=(
        "Erlang's net_ticktime: a silent peer is declared down after 1-1.25 x it (whole seconds, not compressed)"))


class FaultSpec(Strict):
    kind: str
    target: str
    start_s: StrictFloat = Field(ge=0)
    duration_s: StrictFloat = Field(gt=0)
    replica: StrictInt | None = Field(None, ge=1)
    name: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    wait_for_work_s: StrictFloat = Field(0.0, ge=0, le=60, description=(
        "start at the first moment within this after start_s that the target holds work (an order in "
        "flight), so that the fault hits something; scaled by profiles"))

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r} (known: {', '.join(sorted(KINDS))})")
        return kind

    @field_validator("target")
    @classmethod
    def _target_fits_the_kind(cls, target: str, info: ValidationInfo) -> str:
        kind = info.data.get("kind")
        if kind is not None and target not in KINDS[kind].targets:
            raise ValueError(f"unknown target {target!r} for {kind!r} (targets: {', '.join(KINDS[kind].targets)})")
        return target

    @field_validator("params")
    @classmethod
    def _params_fit_the_kind(cls, params: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        kind = info.data.get("kind")
        if kind is not None:
            KINDS[kind].check_params(params)
        return params


class ScaleSpec(Strict):
    """A scheduled change of the barista pool: at start_s (after t0), make it `replicas` strong."""

    start_s: StrictFloat = Field(ge=0)
    target: Literal["barista"] = "barista"
    replicas: StrictInt = Field(ge=1, le=16)


class AutoscalerSpec(Strict):
    """The autoscaler (harness.elasticity.autoscaler.Policy) watching the backlog every interval_s."""

    min_replicas: StrictInt = Field(1, ge=1, le=16)
    max_replicas: StrictInt = Field(8, ge=1, le=16)
    cooldown_s: StrictFloat = Field(2.0, ge=0, le=600, description="no change within this of the previous one")
    window_s: StrictFloat = Field(1.0, gt=0, le=600, description="backlog samples judged at each decision")
    down_window_s: StrictFloat | None = Field(None, gt=0, le=600, description="samples judged to scale down (default window_s)")
    interval_s: StrictFloat = Field(0.5, gt=0, le=60, description="time between decisions")
    policy: Literal["target", "thresholds"] = "target"
    target_per_replica: StrictFloat | None = Field(None, gt=0)
    scale_up_above: StrictFloat | None = Field(None, ge=0)
    scale_down_below: StrictFloat | None = Field(None, ge=0)
    step: StrictInt = Field(1, ge=1, le=16)

    @model_validator(mode="after")
    def _a_policy(self) -> "AutoscalerSpec":
        self.policy_of()  # the policy's own checks, as one line
        return self

    def policy_of(self) -> Policy:
        return Policy(self.min_replicas, self.max_replicas, self.cooldown_s, self.window_s, self.policy,
                      self.target_per_replica, self.scale_up_above, self.scale_down_below, self.step,
                      self.down_window_s)


MATRIX_SECTIONS = ("run", "load", "shop", "autoscaler")


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


class SteadyStateSpec(Strict):
    """The steady-state hypothesis checked before the first fault (Chaos Toolkit's hypothesis
    before the method): if it does not hold, the run is inconclusive, not passed or failed."""

    min_orders: StrictInt = Field(5, ge=1, description="orders completed before the first fault, at least")
    min_availability: StrictFloat = Field(0.95, ge=0, le=1, description="share of those accepted, at least")
    max_backlog: StrictFloat | None = Field(None, ge=0, description="backlog sampled before the first fault, at most")


class Profile(Strict):
    """How a profile changes an experiment (`Experiment.for_profile`): `time_factor` and
    `rate_factor` shorten the run (fewer orders, same shop); `speed` compresses time (the same
    orders and the same shop, k times faster)."""

    time_factor: StrictFloat = Field(1.0, gt=0, le=10)
    rate_factor: StrictFloat = Field(1.0, gt=0, le=10)
    speed: StrictFloat = Field(1.0, ge=1, le=20, description=(
        "time compression k: every time (run windows, brews, timeouts, retries, SLOs, fault windows "
        "and their time parameters, the autoscaler's clock, sampling) divided by k, every rate multiplied by k"))


SOURCES: tuple[Literal["replay", "feed", "pages"], ...] = ("replay", "feed", "pages")


class LatecomerSpec(Strict):
    """After the drain, loyalty services join one per source and must catch up exactly."""

    sources: list[Literal["replay", "feed", "pages"]] = Field(
        default_factory=lambda: list(SOURCES), min_length=1)
    restart: bool = Field(True, description="kill each once a third caught up, and start it again")
    more_orders: StrictInt = Field(20, ge=0, le=10_000, description="orders placed after they caught up")
    timeout_s: StrictFloat = Field(300.0, gt=0, le=7200, description="per source, to catch up")

    @field_validator("sources")
    @classmethod
    def _distinct(cls, sources: list[str]) -> list[str]:
        if len(set(sources)) != len(sources):
            raise ValueError(f"sources repeat: {sources}")
        return sources


class Experiment(Strict):
    title: str = Field(min_length=1)
    claim: str = Field(min_length=1, description="the claim tested, in plain words")
    description: str = ""
    scenarios: list[int] = Field(default_factory=list, description="items of SCENARIOS.md covered")
    time_scale: str = Field(min_length=1, description="what the compressed times stand for")
    run: RunSpec
    load: LoadSpec
    shop: ShopSpec = ShopSpec()
    broker: BrokerSpec = BrokerSpec()
    faults: list[FaultSpec] = Field(default_factory=list)
    scale: list[ScaleSpec] = Field(default_factory=list, description="scheduled barista pool changes")
    autoscaler: AutoscalerSpec | None = None
    latecomer: LatecomerSpec | None = None
    steady_state: SteadyStateSpec = SteadyStateSpec()
    matrix: dict[str, list[int | float | str | bool]] = Field(
        default_factory=dict, description='variants: {"shop.baristas" = [1, 2]}; several keys are zipped')
    profiles: dict[Literal["fast", "smoke", "full"], Profile] = Field(default_factory=dict)
    expect: dict[ExpectKey, dict[str, Bound]] = Field(default_factory=dict, description='{shop name or "both": {metric: bound}}')

    @field_validator("expect")
    @classmethod
    def _known_metrics(cls, expect: dict[str, dict[str, Bound]]) -> dict[str, dict[str, Bound]]:
        for system, checks in expect.items():
            for metric in checks:
                if is_shop_metric(metric):
                    counters = TRAITS[system].counters if system in TRAITS else {}
                    if metric.split(".")[1] not in counters:
                        has = f"it counts {', '.join(counters)}" if counters else "it has no counters"
                        raise ValueError(f"{system}: unknown metric {metric!r}: a shop's own counter is named "
                                         f"under [expect.<that shop>] ({has})")
                    continue
                if metric not in METRICS and not is_fault_metric(metric):
                    close = sorted(m for m in METRICS if m.split(".")[0] == metric.split(".")[0])
                    raise ValueError(f"{system}: unknown metric {metric!r}"
                                     + (f" (e.g. {', '.join(close[:6])})" if close else ""))
        return expect

    @model_validator(mode="after")
    def _cluster_faults_have_a_cluster(self) -> "Experiment":
        for i, fault in enumerate(self.faults):
            if KINDS[fault.kind].cluster and self.broker.nodes < 3:
                raise ValueError(f"faults[{i}].kind = {fault.kind!r} acts on a member of a RabbitMQ cluster: "
                                 f"set [broker] nodes = 3 or 5 (it is {self.broker.nodes})")
        return self

    @model_validator(mode="after")
    def _faults_fit_the_run(self) -> "Experiment":
        """Windows must end before the run does; windows may overlap, except two of the same kind
        on the same target and replica (the first heal would end the second early)."""
        end = self.run.duration_s + self.run.drain_s
        for i, fault in enumerate(self.faults):
            if KINDS[fault.kind].from_start and fault.start_s != 0:
                raise ValueError(f"faults[{i}].start_s = {fault.start_s}: a {fault.kind} is set when the shop starts "
                                 "(its processes run under it from the first order): start_s must be 0")
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
        for system, checks in self.expect.items():
            for metric in checks:
                if is_fault_metric(metric) and metric.split(".")[1] not in names:
                    raise ValueError(f"{system}: {metric!r} names no fault of this experiment "
                                     f"(faults: {', '.join(names) or 'none'})")
        return self

    @model_validator(mode="after")
    def _scaling_fits(self) -> "Experiment":
        end = self.run.duration_s + self.run.drain_s
        for i, change in enumerate(self.scale):
            if change.start_s >= end:
                raise ValueError(f"scale[{i}] at {change.start_s}s is after the run (duration_s + drain_s = {end}s)")
        if self.scale and self.autoscaler is not None:
            raise ValueError("give either [[scale]] or [autoscaler], not both")
        a = self.autoscaler
        if a is not None and not a.min_replicas <= self.shop.baristas <= a.max_replicas:
            raise ValueError(f"shop.baristas = {self.shop.baristas} is outside the autoscaler's "
                             f"[{a.min_replicas}, {a.max_replicas}]")
        if self.shop.slow_replica is not None and self.shop.slow_replica > self.shop.baristas:
            raise ValueError(f"shop.slow_replica = {self.shop.slow_replica} but shop.baristas = {self.shop.baristas}")
        return self

    @model_validator(mode="after")
    def _variants_valid(self) -> "Experiment":
        self.variants()   # each column must make a valid experiment
        return self

    @field_validator("matrix")
    @classmethod
    def _matrix_keys(cls, matrix: dict[str, list[Any]]) -> dict[str, list[Any]]:
        lengths = {len(values) for values in matrix.values()}
        if 0 in lengths:
            raise ValueError("a matrix key has no values")
        if len(lengths) > 1:
            raise ValueError(f"matrix lists must have the same length (they are zipped), got {sorted(lengths)}")
        fields = {"run": RunSpec.model_fields, "load": LoadSpec.model_fields, "shop": ShopSpec.model_fields,
                  "autoscaler": AutoscalerSpec.model_fields}
        first = next(iter(matrix.values()), [])
        if len(set(map(str, first))) != len(first):
            raise ValueError(f"the first matrix key names the variants: its values must differ, got {first}")
        for key in matrix:
            section, _, name = key.partition(".")
            if section not in MATRIX_SECTIONS or name not in fields[section]:
                raise ValueError(f"unknown matrix key {key!r} (use section.field with section in "
                                 f"{', '.join(MATRIX_SECTIONS)}, e.g. 'shop.baristas')")
        return matrix

    def variants(self) -> list[tuple[str, "Experiment"]]:
        """The matrix expanded: (suffix, experiment) per column, suffix "@field=value" named by the
        first matrix key (e.g. "@baristas=2"); [("", self)] without a matrix. ValueError if a
        variant is invalid (naming the key and value)."""
        if not self.matrix:
            return [("", self)]
        keys = list(self.matrix)
        out = []
        for column in zip(*self.matrix.values(), strict=True):
            data = self.model_dump(mode="python", exclude={"matrix"})
            for key, value in zip(keys, column, strict=True):
                section, _, name = key.partition(".")
                if data.get(section) is None:
                    raise ValueError(f"matrix[{key!r}]: the experiment has no [{section}] table to vary")
                data[section][name] = value
            try:
                variant = Experiment.model_validate(data)
            except ValidationError as exc:
                error = exc.errors(include_url=False)[0]
                where = ".".join(str(p) for p in error["loc"])
                values = dict(zip(keys, column, strict=True))
                culprit = f"matrix[{where!r}] = {values[where]!r}" if where in values else f"matrix variant {values}"
                raise ValueError(f"{culprit}: {where + ': ' if where not in values and where else ''}"
                                 f"{str(error['msg']).removeprefix('Value error, ')}") from None
            out.append((f"@{keys[0].partition('.')[2]}={column[0]}", variant))
        return out

    def profile(self, name: str) -> Profile:
        """The named profile: the file's own, else (for `fast`) the file's smoke profile, else the
        default; `realtime` is always the full profile at speed 1 (every order of the full run, in
        real time), which no file declares."""
        if name == "realtime":
            return self.profile("full").model_copy(update={"speed": 1.0})
        if name == "fast" and "fast" not in self.profiles:
            name = "smoke"
        return self.profiles.get(name) or Profile(**DEFAULT_PROFILES[name])  # type: ignore[call-overload]

    def for_profile(self, name: str) -> "Experiment":
        """The experiment as run under a profile (`Profile`). Every duration and time offset (run,
        SLO, shape windows, fault windows, scale times, the autoscaler's cooldown and down_window_s)
        is multiplied by time_factor / speed, every arrival rate by rate_factor x speed; the drain
        (an upper bound, ended early once everything accepted is served) by time_factor only.
        time_factor and rate_factor leave the shop alone (brew times, timeouts and capacities define
        it); `speed` k > 1 also divides the shop's and the customers' own times by k: brew times,
        the cashier's barista timeout, the client timeout and retry pause, the late-comers'
        timeout, fault parameters that are times (a latency, a toxic's timeout; a bandwidth is
        multiplied), the autoscaler's interval and windows, and the backlog sampling interval
        (not below MIN_BACKLOG_INTERVAL_S). Not compressed: the RabbitMQ heartbeat (whole seconds),
        the services' claim lease (cafe.claims) and process start-up times; an experiment whose
        claim depends on those says so in its file and keeps speed 1."""
        p = self.profile(name)
        k = p.speed
        t, r = p.time_factor / k, p.rate_factor * k
        # the drain is a bound, not a window (a run drains until everything accepted is served), and
        # restarting a process is not compressed: so it shortens with time_factor, not with speed
        run_update: dict[str, Any] = {"duration_s": self.run.duration_s * t, "slo_s": self.run.slo_s * t,
                                      "drain_s": self.run.drain_s * p.time_factor}
        load = self.load.scaled(t, r)
        load_update: dict[str, Any] = {}
        faults = [f.model_copy(update={"start_s": f.start_s * t, "duration_s": f.duration_s * t,
                                       "wait_for_work_s": f.wait_for_work_s * t,
                                       "params": _compressed_params(f.kind, f.params, k)}) for f in self.faults]
        scale = [c.model_copy(update={"start_s": c.start_s * t}) for c in self.scale]
        a = self.autoscaler
        autoscaler = (a.model_copy(update={"cooldown_s": a.cooldown_s * t,
                                           "down_window_s": None if a.down_window_s is None else a.down_window_s * t,
                                           "window_s": a.window_s / k, "interval_s": a.interval_s / k})
                      if a is not None else None)
        update: dict[str, Any] = {"faults": faults, "scale": scale, "autoscaler": autoscaler}
        if k != 1:
            run_update["backlog_interval_s"] = max(min(MIN_BACKLOG_INTERVAL_S, self.run.backlog_interval_s),
                                                   self.run.backlog_interval_s / k)
            load_update.update(client_timeout_s=self.load.client_timeout_s / k,
                               retry_after_s=self.load.retry_after_s / k, retry_max_s=self.load.retry_max_s / k)
            b = self.shop.brew
            brew = b.model_copy(update={"mean_ms": b.mean_ms / k, "min_ms": b.min_ms / k,
                                        "max_ms": None if b.max_ms is None else b.max_ms / k})
            update["shop"] = self.shop.model_copy(update={"brew": brew,
                                                          "barista_timeout_s": self.shop.barista_timeout_s / k})
            if self.latecomer is not None:
                update["latecomer"] = self.latecomer.model_copy(update={"timeout_s": self.latecomer.timeout_s / k})
            update["expect"] = {system: {metric: _compressed_bound(metric, bound, k) for metric, bound in checks.items()}
                                for system, checks in self.expect.items()}
        update.update(run=self.run.model_copy(update=run_update), load=load.model_copy(update=load_update))
        return self.model_copy(update=update)

    def needs_private_broker(self) -> bool:
        """True when a fault of this experiment stops or crashes the broker itself (its kind says
        `private_broker`): such a run gets a RabbitMQ node of its own, every other async run a vhost
        on the node its set shares (harness.infra.stack.SharedBroker)."""
        return self.broker.nodes > 1 or any(KINDS[f.kind].private_broker for f in self.faults)

    def windows(self) -> list[FaultWindow]:
        return [FaultWindow(f.name or f"{f.kind}-{f.target}-{i + 1}", f.kind, f.target, f.start_s, f.duration_s,
                            f.replica, dict(f.params), f.wait_for_work_s) for i, f in enumerate(self.faults)]

    def check_options(self) -> CheckOptions:
        """The checkers' thresholds for this (profiled) experiment."""
        return CheckOptions(slo_s=self.run.slo_s, bucket_s=1.0, late_ms=self.run.late_ms,
                            max_lag_ms=self.run.max_lag_ms, steady_min_orders=self.steady_state.min_orders,
                            steady_min_availability=self.steady_state.min_availability,
                            steady_max_backlog=self.steady_state.max_backlog)

    def expectations(self, system: str) -> dict[str, Bound]:
        """Checks for `system`: the "both" table, overridden by the system's own."""
        return {**self.expect.get("both", {}), **self.expect.get(system, {})}


def _compressed_bound(metric: str, bound: Bound, k: float) -> Bound:
    """An expectation's bound under time compression k: a time divided by k, a rate multiplied
    (harness.experiment.metrics.time_dimension); counts, shares and ratios unchanged."""
    factor = k ** time_dimension(metric)
    if factor == 1:
        return bound
    return Bound(min=None if bound.min is None else bound.min * factor,
                 max=None if bound.max is None else bound.max * factor)


def _compressed_params(kind: str, params: dict[str, Any], k: float) -> dict[str, Any]:
    """A fault's params under time compression k: its kind says which are times (divided by k) and
    which are rates (multiplied), in `time_params` and `rate_params`, and what an omitted one is
    (`defaults`: those are compressed and written out too); the rest are unchanged
    (harness.experiment.faults.FaultKind)."""
    if k == 1:
        return dict(params)
    spec = KINDS[kind]
    times, rates, defaults = spec.time_params, spec.rate_params, spec.defaults
    # a time or rate left at its default is compressed too, and written out so the results show it
    params = {**{key: value for key, value in defaults.items() if key in times or key in rates}, **params}

    def scaled(value: Any, factor: float) -> Any:   # an integer stays an integer (Toxiproxy wants int64)
        if isinstance(value, int) and not isinstance(value, bool):
            return max(1, round(value * factor)) if value > 0 else min(-1, round(value * factor)) if value < 0 else 0
        return value * factor

    return {key: scaled(value, 1 / k) if key in times else scaled(value, k) if key in rates else value
            for key, value in params.items()}
