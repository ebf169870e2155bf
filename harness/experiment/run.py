"""Running experiments: one experiment on one shop, with the same schedule and faults for both shops.

    schedule (from the seed) -> infrastructure + shop -> nemesis + backlog sampler + open-loop driver
    -> drain -> observations (brewed, served) -> history.jsonl -> checkers -> results.json

Everything started is stopped in `finally` blocks; a Ctrl-C still flushes the history, marks it
incomplete, heals the faults and stops every process.
"""
from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cafe.menu import load_menu
from harness.checkers import default_checkers, fault_windows, run_checkers
from harness.elasticity.scaling import Scaler
from harness.errors import HistoryError
from harness.experiment import Experiment
from harness.experiment import results as results_mod
from harness.experiment.provenance import provenance
from harness.history import HistoryWriter, Record
from harness.history import load as load_history
from harness.infra.cluster import RabbitCluster
from harness.infra.host import cpu_times, cpu_window
from harness.infra.stack import ClusterSpec, Infrastructure, SharedBroker
from harness.load.schedule import ArrivalSchedule, build_schedule
from harness.load.shards import configured_workers
from harness.load.workers import ShardedDriver
from harness.nemesis import Nemesis
from harness.newcomers import latecomer
from harness.newcomers import services as newcomers
from harness.shops import SHOPS, Shop
from harness.shops.base import http_json as get_json
from harness.shops.base import read_all

log = logging.getLogger("harness.experiment.run")
LEAD_S = 0.5          # t0 is this far in the future when the driver starts, so the first arrival is on time
DRAIN_POLL_S = 0.5


@dataclass(frozen=True)
class Progress:
    """A snapshot for live display."""

    experiment: str
    system: str
    phase: str            # starting | load | drain | checking | done
    scheduled: int
    sent: int
    accepted: int
    failed: int
    unknown: int
    dropped: int
    served: int | None
    backlog: int | None
    faults: tuple[str, ...]


ProgressFn = Callable[[Progress], None]


def schedule_for(experiment: Experiment, seed: int) -> ArrivalSchedule:
    """The arrival schedule of an (already profiled) experiment: identical for both shops."""
    menu = load_menu()
    return build_schedule(experiment.load.build_shape(), experiment.run.duration_s,
                          process=experiment.load.process, seed=seed, menu_mix=experiment.shop.menu_mix,
                          sizes={p: menu.sizes_of(p) for p in experiment.shop.menu_mix})


def effective(experiment: Experiment, profile: str, seed: int | None) -> Experiment:
    """The experiment as it will run: profile applied, seed overridden when given."""
    profiled = experiment.for_profile(profile)
    if seed is not None:
        profiled = profiled.model_copy(update={"run": profiled.run.model_copy(update={"seed": seed})})
    return profiled


class BacklogSampler(threading.Thread):
    """Samples the shop's backlog every interval into the history; also feeds live progress."""

    def __init__(self, shop: Shop, record: Callable[[Record], None], interval_s: float,
                 tick: Callable[[], None]) -> None:
        super().__init__(name="backlog-sampler", daemon=True)
        self.shop, self.record, self.interval_s, self.tick = shop, record, interval_s, tick
        self.halt = threading.Event()
        self.last: int | None = None

    def run(self) -> None:
        while not self.halt.wait(self.interval_s):
            self.sample()

    def sample(self) -> None:
        try:
            sample = self.shop.backlog()
            self.last = int(sample["total"])
            self.record({"type": "backlog", "time": time.time(), **sample})
        except Exception as exc:  # a stopped or paused service: note it, keep sampling
            self.last = None
            self.record({"type": "backlog", "time": time.time(), "total": None,
                         "error": f"{exc.__class__.__name__}: {exc}"[:200]})
        self.tick()

    def stop(self) -> None:
        """Stop sampling, after one last sample (the backlog once the run is over)."""
        if self.is_alive():
            self.halt.set()
            self.join(timeout=10)
            self.sample()


def observations(shop: Shop, history: list[Record] | None = None) -> list[Record]:
    """What the shop says it brewed, served and redelivered, its own record of the orders it took
    (to settle unknown outcomes), how many messages its broker dead-lettered, and what a newcomer
    that joined (the brewed bell) did, as history records."""
    records: list[Record] = []
    for row in shop.brewed():
        records.append({"type": "brewed", "ref": row.get("ref"), "order_id": row["order_id"],
                        "time": row["brewed_at"], "started": row.get("started_at"), "barista": row.get("barista"),
                        "brew_id": row.get("brew_id")})
    for row in shop.servings(list(history or [])):
        records.append({"type": "served", "ref": row.get("ref"), "order_id": row["order_id"], "time": row["served_at"]})
    taken = shop.order_records()
    records.append({"type": "order_records", "count": len(taken), "time": time.time()})
    for row in taken:
        records.append({"type": "order_record", "ref": row.get("ref"), "order_id": row["order_id"],
                        "status": row["status"], "taken": bool(row["taken"])})
    with contextlib.suppress(Exception):   # a broker that cannot say: no record (the ledger says 0)
        records.append({"type": "dead_letters", "count": shop.dead_letters(), "time": time.time()})
    for row in shop.redeliveries():
        records.append({"type": "redelivered", "ref": row.get("ref"), "order_id": row["order_id"],
                        "time": row["seen_at"], "barista": row["barista"], "count": row["delivery_count"]})
    if "bell" in shop.supervisor.services():
        bell = shop.url("bell-1")
        records.append({"type": "joined", "service": "bell", "time": get_json(f"{bell}/health")["joined_at"]})
        for row in read_all(bell, "/rings"):
            records.append({"type": "rang", "brew_id": row["brew_id"], "order_id": row["order_id"],
                            "ref": row.get("ref"), "time": row["rung_at"]})
    return records


def queueing_model(exp: Experiment) -> dict[str, Any]:
    """What queueing theory needs to know about a run (harness.checkers.queueing decides whether
    the M/M/c model applies): arrivals, brew times, servers per replica, the initial pool."""
    b = exp.shop.brew
    return {"shape": exp.load.shape, "process": exp.load.process,
            "arrival_rate": exp.load.rate if exp.load.shape == "constant" else None,
            "brew": {"distribution": b.distribution, "mean_ms": b.mean_ms, "max_ms": b.max_ms},
            "brewers": exp.shop.brewers, "baristas": exp.shop.baristas, "prefetch": exp.shop.prefetch,
            "slow_replica": exp.shop.slow_replica, "slow_factor": exp.shop.slow_factor,
            "duration_s": exp.run.duration_s}


def scaler_for(exp: Experiment, shop: Shop, history: HistoryWriter, t0: float) -> Scaler:
    """The experiment's scheduled pool changes or its autoscaler (or neither) for this shop."""
    a = exp.autoscaler
    return Scaler(shop, history.write, t0, schedule=[(c.start_s, c.target, c.replicas) for c in exp.scale],
                  policy=a.policy_of() if a is not None else None,
                  interval_s=a.interval_s if a is not None else 0.5, history=history.records)


def actual_faults(history: list[Record]) -> list[dict[str, Any]]:
    """The fault windows as applied, with what each hit when it started (`hit`), how much later
    than declared it began because a heal before it overran (`slip_s`), and what it reported it
    did (`details`, e.g. crashes)."""
    details = {r["name"]: r["details"] for r in history
               if r.get("type") == "fault" and r.get("phase") == "end" and r.get("details")}
    hits: dict[str, Any] = {}
    slips: dict[str, float] = {}   # how late the schedule ran after a heal that overran
    for r in history:
        if r.get("type") == "fault" and r.get("phase") == "start" and "hit" in r:
            hits.setdefault(r["name"], r["hit"])
        if r.get("type") == "fault" and r.get("phase") == "start" and r.get("slip_s"):
            slips.setdefault(r["name"], r["slip_s"])
    return [{"name": w.name, "kind": w.kind, "target": w.target, "start_s": round(w.start_s, 3),
             "end_s": round(w.end_s, 3), **({"hit": hits[w.name]} if w.name in hits else {}),
             **({"slip_s": slips[w.name]} if w.name in slips else {}),
             **({"details": details[w.name]} if w.name in details else {})}
            for w in fault_windows(history)]


def latecomers(exp: Experiment, shop: Shop, history: list[Record]) -> dict[str, Any] | None:
    """The late-comer phase (harness.newcomers.latecomer), when the experiment has one; an error in it is
    reported in the section (and fails its check), not raised."""
    spec = exp.latecomer
    if spec is None:
        return None
    try:
        return latecomer.run_phase(shop, history, sources=spec.sources, restart=spec.restart,
                                   more_orders=spec.more_orders, timeout_s=spec.timeout_s)
    except Exception as exc:
        log.exception("late-comer phase failed")
        return {"correct": False, "error": f"{exc.__class__.__name__}: {exc}"[:500], "sources": {}}


def run_one(name: str, experiment: Experiment, system: str, *, profile: str, seed: int | None,
            out_dir: Path, run_id: str, progress: ProgressFn | None = None,
            broker: SharedBroker | None = None, generator_workers: int | None = None,
            jobs: int = 1) -> dict[str, Any]:
    """Run `experiment` (as declared; the profile is applied here) against one shop; write
    history.jsonl, schedule.jsonl and results.json into out_dir and return the results.

    With `broker`, an async shop run takes a vhost of its own on that shared node (started on
    first use) unless a fault of the experiment stops the broker (`needs_private_broker`); without
    it, or for such a run, it starts a private node.

    An exception inside the shop run (a broker not ready in time, observations unreadable after
    the heal, ...) does not propagate: the results are still written, with `complete: false`,
    `status: "error"`, the error, and what the history had recorded until then (`errored`).
    KeyboardInterrupt and SystemExit do propagate, after everything started was stopped.

    `generator_workers`: the load generator's worker processes (harness.load.workers); None takes
    $CHAOSCAFE_GENERATOR_WORKERS, else the machine's default (harness.load.shards.default_workers).
    `jobs`: how many shop runs of the set share the machine (harness.experiment.pool); recorded
    as config.jobs, nothing else.
    """
    out_dir = Path(out_dir).resolve()
    started = time.time()
    try:
        return _run_shop(name, experiment, system, profile=profile, seed=seed, out_dir=out_dir, run_id=run_id,
                         progress=progress, broker=broker, generator_workers=generator_workers, jobs=jobs)
    except Exception as exc:
        log.exception("%s / %s: the shop run failed", name, system)
        return errored(name, experiment, system, profile=profile, seed=seed, out_dir=out_dir, run_id=run_id,
                       started=started, error=exc)


def errored(name: str, experiment: Experiment, system: str, *, profile: str, seed: int | None, out_dir: Path,
            run_id: str, started: float, error: BaseException) -> dict[str, Any]:
    """The results of a shop run that raised `error`: the checkers over whatever history.jsonl
    holds (possibly nothing), no expectations checked, one failed check "run completed" naming
    the error; written to out_dir/results.json and returned."""
    exp = effective(experiment, profile, seed)
    path = out_dir / "history.jsonl"
    try:
        records = load_history(path) if path.is_file() else []
    except HistoryError as exc:   # evidence that cannot be trusted: judge nothing from it
        records, error = [], RuntimeError(f"{error.__class__.__name__}: {error}; and {exc}")
    if not any(r.get("type") == "run" for r in records):
        # it failed before the run began (t0 is set once the shop is up), so the history holds at
        # most its "end" line: say so in a run record of its own, which the report needs to draw it
        records = [{"type": "run", "experiment": name, "system": system, "seed": exp.run.seed, "profile": profile,
                    "t0": started, "run_id": run_id, "never_started": True}, *records]
        out_dir.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records))
    message = f"{error.__class__.__name__}: {error}"[:2000]
    checked = run_checkers(default_checkers(), records,
                           exp.check_options())
    header = {
        "experiment": name, "title": exp.title, "claim": exp.claim, "system": system, "seed": exp.run.seed,
        "profile": profile, "run_id": run_id, "complete": False, "error": message, "started_at": started,
        "wall_s": round(time.time() - started, 3),
        "config": {"experiment": exp.model_dump(mode="json")},
        "faults": _faults_or_none(records),
    }
    results = results_mod.assemble(header, checked, {}, provenance())
    results_mod.write(results, out_dir / "results.json")
    return results


def _faults_or_none(records: list[Record]) -> list[dict[str, Any]]:
    """actual_faults, or [] for a history that never got its run record (failed before t0)."""
    try:
        return actual_faults(records)
    except ValueError:
        return []


def _run_shop(name: str, experiment: Experiment, system: str, *, profile: str, seed: int | None,
              out_dir: Path, run_id: str, progress: ProgressFn | None = None,
              broker: SharedBroker | None = None, generator_workers: int | None = None,
              jobs: int = 1) -> dict[str, Any]:
    exp = effective(experiment, profile, seed)
    workers, workers_chosen_by = configured_workers(generator_workers)
    needs_broker = SHOPS[system].traits.needs_broker
    shared = broker.node() if broker is not None and needs_broker and not exp.needs_private_broker() else None
    seed = exp.run.seed
    schedule = schedule_for(exp, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "schedule.jsonl").write_text(schedule.to_jsonl())
    report = progress or (lambda p: None)
    state: dict[str, Any] = {"phase": "starting", "served": None}
    started = time.time()
    complete = False
    healed: dict[str, Any] = {}
    counters: dict[str, float] = {}
    host: dict[str, Any] | None = None   # the machine's CPU over the load and drain (harness.infra.host)
    with HistoryWriter(out_dir / "history.jsonl") as history, \
            Infrastructure(out_dir / "infra", broker=needs_broker, shared_broker=shared,
                           cluster=ClusterSpec(**exp.broker.model_dump())) as infra, \
            SHOPS[system](infra, replace(exp.shop.settings(seed), patience_s=exp.load.client_timeout_s)) as shop:
        def tick() -> None:  # called by the sampler thread and the drain loop, after all three exist
            stats = driver.stats
            report(Progress(name, system, state["phase"], len(schedule), stats.sent, stats.outcomes["ok"],
                            stats.outcomes["fail"], stats.outcomes["info"], stats.dropped, state["served"],
                            sampler.last, tuple(nemesis.active)))

        # the faults are set up on the running shop before the load: one that has no meaning for it
        # is recorded as not applicable; if nothing of the experiment applies, the run stops here
        early: list[Record] = []
        nemesis = Nemesis(exp.windows(), shop, early.append, 0.0)
        reason = inapplicable(exp, system, nemesis.not_applicable)
        if reason is not None:
            history.write({"type": "run", "experiment": name, "system": system, "seed": seed, "profile": profile,
                           "t0": time.time(), "run_id": run_id, "schedule_digest": schedule.digest(),
                           "not_applicable": reason})
            history.write_all(early)
            history.close(complete=True, time=time.time())
            return _not_applicable(name, exp, system, profile=profile, run_id=run_id, started=started,
                                   reason=reason, na=nemesis.not_applicable, describe=shop.describe(),
                                   schedule=schedule, out_dir=out_dir)
        # the driver's records go to its shard files (out_dir/generator-K.jsonl), not through `history`,
        # and join the history, in time order, once it is done (`absorb`); its workers are spawned and
        # handed their shards before t0 is chosen, so their start-up is not lag
        driver = ShardedDriver(shop.entry_url, schedule, workers=workers, shard_dir=out_dir,
                               accepted_status=shop.accepted_status, client_timeout_s=exp.load.client_timeout_s,
                               max_in_flight=exp.load.max_in_flight, retry=exp.load.retry_policy(),
                               idempotency_key=exp.load.idempotency_key)
        try:
            driver.start()
            t0 = time.time() + LEAD_S
            history.write({"type": "run", "experiment": name, "system": system, "seed": seed, "profile": profile,
                           "t0": t0, "run_id": run_id, "schedule_digest": schedule.digest(),
                           "queueing": queueing_model(exp)})
            history.write_all(early)
            nemesis.begin(t0, history.write)
            sampler = BacklogSampler(shop, history.write, exp.run.backlog_interval_s, tick)
            scaler = scaler_for(exp, shop, history, t0)
        except BaseException:
            driver.close()
            raise
        late: dict[str, Any] | None = None
        try:
            if exp.latecomer is not None and "replay" in exp.latecomer.sources and shop.traits.has_event_log:
                newcomers.declare_event_log(shop)   # before the first order: the log holds everything
            cpu_before = cpu_times()
            nemesis.start()
            sampler.start()
            scaler.start()
            state["phase"] = "load"
            driver.run(t0)
            driver.close()
            history.absorb(driver.shard_files)
            state["phase"] = "drain"
            _drain(shop, history.records, deadline=t0 + exp.run.duration_s + exp.run.drain_s, state=state, tick=tick,
                   faults_done=nemesis.done)
            host = cpu_window(cpu_before, cpu_times())
            scaler.stop()
            nemesis.heal()  # heal before reading: a killed service answers again once restarted
            healed = shop.heal_report()
            counters = _counters(shop)
            history.write_all(observations(shop, history.records))
            state["phase"] = "late-comers" if exp.latecomer else state["phase"]
            late = latecomers(exp, shop, history.records)
            complete = True
        finally:
            driver.close()
            scaler.stop()
            nemesis.heal(abandon=not complete)   # interrupted or failed: the infrastructure goes next
            sampler.stop()
            try:   # an interrupted run keeps what its generator recorded
                history.absorb(driver.shard_files)
            except Exception:
                log.exception("the generator's records could not be merged into the history")
            history.close(complete=complete, time=time.time())
        describe = shop.describe()
        broker_used = ({"node": infra.broker.nodename, "vhost": infra.broker.vhost, "shared": infra.broker.shared}
                       if infra.broker is not None else None)
        if broker_used is not None and isinstance(infra.broker, RabbitCluster):
            broker_used["cluster"] = infra.broker.describe()
        versions = {"rabbitmq": infra.broker.version() if infra.broker else None,
                    "toxiproxy": infra.toxiproxy_server.version(), "runtime": infra.runtime}
    state["phase"] = "checking"
    checked = run_checkers(default_checkers(), history.records,
                           exp.check_options())
    header = {
        "experiment": name, "title": exp.title, "claim": exp.claim, "system": system, "seed": seed,
        "profile": profile, "run_id": run_id, "complete": complete, "started_at": started,
        "wall_s": round(time.time() - started, 3),
        "config": {"shop": describe, "broker": broker_used,
                   "generator": {"workers": workers, "chosen_by": workers_chosen_by}, "jobs": jobs,
                   "experiment": exp.model_dump(mode="json")},
        "schedule": _schedule_summary(schedule),
        "faults": actual_faults(history.records), "not_applicable": nemesis.not_applicable,
        "healed": healed, "observed_from": dict(shop.observed_from), "shop": counters, "host": host,
        "fault_errors": [r for r in history.records if r.get("type") == "fault" and r.get("phase") == "error"],
        "scale_errors": [r for r in history.records if r.get("type") == "scale" and r.get("error")],
        **({"latecomer": late} if late is not None else {}),
    }
    results = results_mod.assemble(header, checked, exp.expectations(system), provenance(**versions))
    results_mod.write(results, out_dir / "results.json")
    # judged: let the records go now (a 50k-order run holds 250,000), not when the garbage collector
    # breaks the cycles the run's threads and closures made
    history.records.clear()
    return results


def _counters(shop: Shop) -> dict[str, float]:
    """The shop's own counters after the heal ({} when it has none or they cannot be read: logged)."""
    try:
        return shop.counters()
    except Exception:
        log.exception("the shop's counters could not be read")
        return {}


def _schedule_summary(schedule: ArrivalSchedule) -> dict[str, Any]:
    """What results.json says of the arrival schedule: its size, length (s) and digest."""
    return {"arrivals": len(schedule), "duration_s": schedule.duration_s, "digest": schedule.digest()}


def inapplicable(exp: Experiment, system: str, not_applicable: list[dict[str, str]]) -> str | None:
    """Why nothing of `exp` applies to shop `system`, or None when something does: it declares
    faults and every one is not applicable to the shop (`not_applicable`, from the nemesis's
    setup on the running shop), and it has no scale changes, autoscaler, late-comer phase or
    expectations of its own for that shop (`[expect.<system>]`). Such a run would be a steady state
    under no fault, which steady-state.toml already measures; it is reported "not-applicable"."""
    if not exp.faults or len(not_applicable) < len(exp.faults):
        return None
    if exp.scale or exp.autoscaler is not None or exp.latecomer is not None or exp.expect.get(system):
        return None
    reasons = sorted({na["reason"] for na in not_applicable})
    return "; ".join(reasons)


def _not_applicable(name: str, exp: Experiment, system: str, *, profile: str, run_id: str, started: float,
                    reason: str, na: list[dict[str, str]], describe: dict[str, Any], schedule: ArrivalSchedule,
                    out_dir: Path) -> dict[str, Any]:
    """The results of a shop run not made (`inapplicable`): no checks, status "not-applicable"."""
    results = {
        "experiment": name, "title": exp.title, "claim": exp.claim, "system": system, "seed": exp.run.seed,
        "profile": profile, "run_id": run_id, "complete": True, "started_at": started,
        "wall_s": round(time.time() - started, 3), "applicable": False, "not_applicable_because": reason,
        "config": {"shop": describe, "broker": None, "experiment": exp.model_dump(mode="json")},
        "schedule": _schedule_summary(schedule),
        "faults": [], "not_applicable": na, "checks": [], "provenance": provenance(),
    }
    results["status"] = results_mod.status(results)
    results["passed"] = False
    results_mod.write(results, out_dir / "results.json")
    return results


def _drain(shop: Shop, records: list[Record], *, deadline: float, state: dict[str, Any],
           tick: Callable[[], None], faults_done: Callable[[], bool] = lambda: True) -> None:
    """Wait until every accepted order has been served and every fault window has run
    (`faults_done`: a window delayed by an earlier one's long heal still gets its turn), or the
    deadline passes."""
    accepted = {r["ref"] for r in list(records) if r.get("type") == "ok"}
    while True:
        try:
            served = {row.get("ref") for row in shop.served()}
        except Exception:  # the reading service may be down in a fault window: try again
            served = set()
        state["served"] = len(served & accepted)
        tick()
        if (accepted <= served and faults_done()) or time.time() >= deadline:
            return
        time.sleep(DRAIN_POLL_S)
