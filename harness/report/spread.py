"""Repeated runs in the report: mean ± 95% CI per metric, and which shop differences are significant.

Reads the `repeats` section that `chaoscafe run --repeat N` folds into results.json (see
harness.experiment.repeats). Pure rendering helpers; html.py places their output.
"""
from __future__ import annotations

from collections.abc import Sequence
from html import escape
from itertools import combinations

from harness.regression.stats import Interval, significant
from harness.report.analysis import ShopRun

# the index's key numbers that get an interval and a significance mark when runs were repeated
KEY_METRICS = (("availability in faults", "availability.in_faults"), ("lost", "orders.lost"),
               ("duplicated", "orders.duplicated"), ("acceptance p99 ms", "latency_ms.acceptance.p99"),
               ("fulfilment p99 ms", "latency_ms.fulfilment.p99"))


def interval(shop: ShopRun | None, metric: str) -> Interval | None:
    """The metric's interval over the shop's repetitions, or None without repetitions."""
    if shop is None:
        return None
    data = ((shop.results.get("repeats") or {}).get("metrics") or {}).get(metric)
    return Interval.from_dict(data) if data else None


def repeated(shops: Sequence[ShopRun | None]) -> int:
    """How many repetitions the shops ran (the smallest; 1 when any ran once)."""
    counts = [int((s.results.get("repeats") or {}).get("n", 1)) if s else 1 for s in shops]
    return min(counts) if counts else 1


def ci_text(iv: Interval | None) -> str:
    if iv is None:
        return "–"
    half = (iv.high - iv.low) / 2
    return f"{_num(iv.mean)} ± {_num(half)}"


def _num(value: float) -> str:
    """3 decimals below 10 (shares, counts near zero), 1 below 100, none above."""
    digits = 3 if abs(value) < 10 else 1 if abs(value) < 100 else 0
    text = f"{value:,.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def index_block(shop: ShopRun | None, others: Sequence[ShopRun | None]) -> str:
    """Under a shop's key numbers in the index: mean ± CI of KEY_METRICS, marked "significant"
    where this shop's interval does not overlap another shop's."""
    if shop is None or repeated([shop]) < 2:
        return ""
    rows = []
    for label, metric in KEY_METRICS:
        mine = interval(shop, metric)
        if mine is None:
            continue
        mark = any(significant(mine, interval(o, metric)) for o in others if o is not None and o is not shop)
        flag = ' <span class="badge sig" title="95% intervals do not overlap">significant</span>' if mark else ""
        rows.append(f"<dt>{escape(label)}</dt><dd>{escape(ci_text(mine))}{flag}</dd>")
    n = repeated([shop])
    return (f'<p class="note">mean ± 95% CI over {n} runs:</p><dl class="ci">' + "".join(rows) + "</dl>"
            if rows else "")


def metrics_table(shops: Sequence[ShopRun]) -> str:
    """Every metric with intervals for all shops, one column per shop and a significance column
    naming every pair of shops whose intervals do not overlap ("sync ≠ async")."""
    if repeated(shops) < 2:
        return ""
    metrics = list(dict.fromkeys(m for s in shops for m in (s.results.get("repeats") or {}).get("metrics", {})))
    head = "".join(f"<th>{escape(s.system)}</th>" for s in shops)
    body = []
    for metric in metrics:
        ivs = [interval(s, metric) for s in shops]
        pairs = [f"{a.system} ≠ {b.system}" for (a, ia), (b, ib) in combinations(zip(shops, ivs, strict=True), 2)
                 if significant(ia, ib)]
        cells = "".join(f'<td><span class="num">{escape(ci_text(iv))}</span></td>' for iv in ivs)
        css = ' class="sig"' if pairs else ""
        body.append(f"<tr{css}><td>{escape(metric)}</td>{cells}"
                    f"<td>{escape(', '.join(pairs))}</td></tr>")
    seeds = "; ".join(f"{escape(s.system)}: {escape(str((s.results.get('repeats') or {}).get('seeds')))}"
                      for s in shops)
    return (f'<p class="note">{repeated(shops)} repetitions per shop (seeds {seeds}); each interval is the mean ± '
            "the half-width of its 95% confidence interval (Student's t). Each pair of shops is compared on its "
            "own: a difference is marked significant (a ≠ b) only when the two intervals do not overlap.</p>"
            f"<table><thead><tr><th>metric</th>{head}<th>significant (pairs)</th></tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")
