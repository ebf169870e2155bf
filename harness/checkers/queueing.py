"""Measured against queueing theory (harness.elasticity.theory): Little's law on every run with backlog
samples, and the M/M/c prediction where the run fits the model.

Little's law: the time average of the sampled backlog (`total`: orders in the shop) against the
arrival rate x mean time in the shop, where an order is in the shop from its send to its serving
(or to the end of the samples, when it was not refused and never served).
M/M/c applies to a run with Poisson arrivals at a constant rate, exponential brews, no scale change
and no slow replica; servers c = baristas x brewers, μ = 1 / the model's mean brew (capped mean).
Measured over the steady part of the load window (the first WARMUP share is skipped): throughput
= brews finished per second, mean wait = brew start - send, mean backlog = time-averaged `total`,
compared with throughput, Wq and L = Lq + λ/μ. A ratio outside 1 ± TOLERANCE is flagged and the
notes say which known effects apply. `effective` repeats the prediction with the measured handover
time (a barista's idle gap between brews while an order waits) added to the mean brew. Valid is Little's verdict (None without samples).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.checkers.backlog import backlog_samples
from harness.checkers.base import CheckerResult, CheckOptions
from harness.checkers.orders import first_time_by_key, invoked_orders
from harness.checkers.timeline import t0
from harness.elasticity.theory import TOLERANCE, capped_exponential_mean, littles_law, mmc, ratio, time_average, within
from harness.history import FAIL, Record, run_record
from harness.shops import TRAITS  # the registry: data only, no adapter
from harness.shops.traits import SHARED_QUEUE

WARMUP = 0.1   # share of the load window skipped before measuring against M/M/c


def stays(history: Sequence[Record]) -> list[tuple[float, float]]:
    """(sent, first served) of every served order; an order not refused (ok or unknown outcome)
    but never served is still in the shop at the end: (sent, inf)."""
    served = first_time_by_key(history, "served")
    return [(o.sent, served.get(o.ref, math.inf)) for o in invoked_orders(history).values()
            if o.sent is not None and (o.ref in served or o.outcome != FAIL)]


def first_brews(history: Sequence[Record]) -> dict[str, Record]:
    """The first brewed record of each ref."""
    first: dict[str, Record] = {}
    for r in sorted((r for r in history if r.get("type") == "brewed"), key=lambda r: float(r["time"])):
        first.setdefault(str(r.get("ref")), r)
    return first


def handover_ms(brews: Sequence[Record], sent: dict[str, float]) -> float | None:
    """Mean time a barista with one brewer stands idle between two brews while the next order was
    already waiting (it had been sent before the previous brew ended): the per-order cost of
    handing work over (ack, confirm and the next delivery; or the HTTP call and the brew record)."""
    by_barista: dict[str, list[Record]] = {}
    for b in brews:
        if b.get("started") is not None:
            by_barista.setdefault(str(b.get("barista")), []).append(b)
    gaps = []
    for mine in by_barista.values():
        mine.sort(key=lambda b: float(b["started"]))
        for a, b in zip(mine, mine[1:], strict=False):
            waiting_since = sent.get(str(b.get("ref")))
            if waiting_since is not None and waiting_since <= float(a["time"]) <= float(b["started"]):
                gaps.append(float(b["started"]) - float(a["time"]))
    return round(sum(gaps) / len(gaps) * 1000, 3) if gaps else None


def why_not_mmc(model: dict[str, Any], history: Sequence[Record]) -> str | None:
    """Why the M/M/c model does not apply to this run, or None when it does."""
    if model.get("shape") != "constant" or model.get("process") != "poisson":
        return "arrivals are not Poisson at a constant rate"
    if (model.get("brew") or {}).get("distribution") != "exponential":
        return "brew times are not exponential"
    if any(r.get("type") == "scale" for r in history):
        return "the barista pool changed during the run"
    if model.get("slow_replica") and model.get("slow_factor", 1) != 1:
        return "one replica is slower than the others"
    return None


def notes_for(model: dict[str, Any], system: str, agrees: dict[str, bool | None],
              measured: dict[str, Any], predicted_service_ms: float) -> list[str]:
    """Known effects that explain a disagreement, for each metric outside the tolerance; the shop's
    own effects (its queueing discipline, its handover) as its traits declare them (harness/shops/traits.py)."""
    notes = []
    shop = TRAITS.get(system)
    queueing = shop.queueing if shop is not None else None
    service_ms, handover = measured.get("service_ms"), measured.get("handover_ms")
    if handover and (agrees.get("mean_wait") is False or agrees.get("mean_backlog") is False):
        what = f" (handover: {queueing.handover})" if queueing is not None else ""
        notes.append(f"each order also costs {handover:.1f} ms between two brews of a barista{what}"
                     ", so a barista is busy longer than the brew: `effective` is the M/M/c prediction "
                     "with that time added to the service time")
    if service_ms and not within(service_ms / predicted_service_ms, 0.05):
        notes.append(f"the brews sampled in this run average {service_ms:.1f} ms against the model's "
                     f"{predicted_service_ms:.1f} ms: a finite sample of an exponential distribution")
    if agrees.get("mean_wait") is False or agrees.get("mean_backlog") is False:
        if queueing is not None and queueing.discipline == SHARED_QUEUE and model.get("prefetch", 1) > 1:
            notes.append(f"prefetch {model['prefetch']}: each replica takes orders it cannot start yet, so an "
                         "order may wait behind a busy replica while another is idle (M/M/c assumes one "
                         "shared line); unacked orders count in the backlog")
        if queueing is not None:
            notes.append(queueing.note)
        notes.append(f"the first {WARMUP:.0%} of the load window is skipped, but a run this short still "
                     "samples few busy periods: near capacity the mean wait varies a lot between seeds")
    if agrees.get("throughput") is False:
        notes.append("throughput below the arrival rate: orders were still in the shop when the load "
                     "window closed, or the machine (2 cores shared by every process) was the limit")
    return notes


@dataclass(frozen=True)
class Queueing:
    name: str = "theory"

    def check(self, history: Sequence[Record], opts: CheckOptions) -> CheckerResult:
        run = run_record(list(history))
        origin, model = t0(history), run.get("queueing") or {}
        samples = backlog_samples(history)
        little = littles_law(samples, stays(history)) if len(samples) >= 2 else None
        data: dict[str, Any] = {"tolerance": TOLERANCE, "little": little.as_dict() if little else None,
                                "mmc": self._mmc(history, run, model, origin, samples)}
        return CheckerResult(self.name, little.holds if little else None, data)

    def _mmc(self, history: Sequence[Record], run: Record, model: dict[str, Any], origin: float,
             samples: list[tuple[float, float]]) -> dict[str, Any] | None:
        if not model:
            return None
        why = why_not_mmc(model, history)
        if why is not None:
            return {"applies": False, "why_not": why}
        brew = model["brew"]
        service_ms = capped_exponential_mean(float(brew["mean_ms"]), brew.get("max_ms"))
        servers = int(model["baristas"]) * int(model["brewers"])
        predicted = mmc(float(model["arrival_rate"]), 1000.0 / service_ms, servers)
        duration = float(model["duration_s"])
        start, end = origin + WARMUP * duration, origin + duration
        sent = {o.ref: o.sent for o in invoked_orders(history).values() if o.sent is not None}
        brews = [b for ref, b in first_brews(history).items() if ref in sent and start <= sent[ref] < end]
        waits = [float(b["started"]) - sent[str(b["ref"])] for b in brews if b.get("started") is not None]
        done = sum(1 for r in first_brews(history).values() if start <= float(r["time"]) < end)
        window = [(t, v) for t, v in samples if start <= t <= end]
        measured = {
            "throughput_per_s": round(done / (end - start), 4),
            "mean_wait_s": round(sum(waits) / len(waits), 6) if waits else None,
            "wait_probability": round(sum(1 for w in waits if w > 0.005) / len(waits), 4) if waits else None,
            "mean_in_system": round(time_average(window), 4) if window else None,
            "service_ms": round(sum((float(b["time"]) - float(b["started"])) * 1000 for b in brews
                                    if b.get("started") is not None) / len(waits), 3) if waits else None,
            "orders": len(brews),
            "handover_ms": handover_ms(brews, sent) if int(model["brewers"]) == 1 else None,
        }
        ratios = {"throughput": ratio(measured["throughput_per_s"], predicted.throughput_per_s),
                  "mean_wait": ratio(measured["mean_wait_s"], predicted.mean_wait_s),
                  "mean_backlog": ratio(measured["mean_in_system"], predicted.mean_in_system)}
        agrees = {k: (None if v is None else within(v)) for k, v in ratios.items()}
        effective = None
        if measured["handover_ms"]:
            eff = mmc(predicted.arrival_rate, 1000.0 / (service_ms + measured["handover_ms"]), servers)
            effective = {"model": eff.as_dict(),
                         "ratios": {"mean_wait": ratio(measured["mean_wait_s"], eff.mean_wait_s),
                                    "mean_backlog": ratio(measured["mean_in_system"], eff.mean_in_system)}}
        return {"applies": True, "why_not": None, "window_s": [round(start - origin, 3), round(end - origin, 3)],
                "model": predicted.as_dict(), "measured": measured, "ratios": ratios, "agrees": agrees,
                "effective": effective,
                "notes": notes_for(model, str(run.get("system")), agrees, measured, service_ms)}
