"""HTML pages of a report: the run index (experiment x shop matrix) and one page per experiment.

Pure rendering: a `RunData` in, HTML text out (no I/O). Every number comes from the shop runs'
results.json and history.jsonl; nothing is typed in. Shops appear side by side, sync first.
"""
from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path
from typing import Any

from harness.experiment.results import failed_checks
from harness.experiment.verdicts import STATUSES, WORDS, failed_validity, kind_of, status_of
from harness.report import figures, gap, sections, spread
from harness.report.analysis import RunData, ShopRun
from harness.report.flow import sample_orders, swimlane
from harness.report.templates import PAGE, ZOOM_BAR

ARCHITECTURE_KEYS = ("kind", "entry_url", "services", "edges")  # differ between shops by design
CONFIG_SKIP = ("experiment.title", "experiment.claim", "experiment.description", "experiment.expect",
               "experiment.profiles", "experiment.faults", "experiment.scenarios", "experiment.time_scale")
INTERRUPTED = "interrupted.json"   # in a run directory: the set was stopped before it finished
LEDGER_WORDS = (
    ("attempted", "orders the customers tried to place"), ("accepted", "accepted by the shop"),
    ("rejected", "refused (definitely not taken)"), ("unknown", "outcome unknown to the customer"),
    ("dropped", "never sent by the load generator"), ("brewed", "different orders brewed"),
    ("served", "different orders served"), ("lost", "accepted but never served"),
    ("duplicated", "brewed or served more than once"), ("duplicate_brews", "extra brews"),
    ("duplicate_servings", "extra servings"), ("unexpected", "brewed or served but never ordered"),
    ("recovered", "unknown outcome, but served"), ("rejected_but_brewed", "refused, yet brewed"),
    ("unknown_brewed", "unknown outcome, brewed"),
    ("unknown_taken", "unknown to the customer; settled: the shop took it (its order record, or brewed)"),
    ("unknown_not_taken", "unknown to the customer; settled: the shop did not take it"),
    ("unknown_unsettled", "unknown, and the shop's order record could not be read"),
    ("served_not_brewed", "served, yet no barista recorded brewing it"),
)
METRIC_SECTIONS = ("orders", "latency_ms", "throughput", "availability", "probe", "generator", "backlog",
                   "scaling", "theory", "newcomer", "clocks", "retries")


def h(value: object) -> str:
    return escape(str(value), quote=True)


def fmt(value: Any, unit: str = "") -> str:
    """A number for a table: "–" for missing, thousands separators, at most 3 decimals."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}{unit}"
    if isinstance(value, float):
        text = f"{value:,.3f}".rstrip("0").rstrip(".")
        return f"{text}{unit}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return f"{value}{unit}"


def share(value: Any) -> str:
    return "–" if value is None else f"{float(value) * 100:.1f}%"


def verdict(shop: ShopRun | None) -> tuple[str, str]:
    """(css class, word) of a shop run's verdict: the status is the css class ("pass", "fail",
    "inconclusive", "error", "not-applicable"; "unknown" for a shop with no results), the word is
    what people read."""
    if shop is None:
        return "unknown", "not run"
    status = status_of(shop.results)
    return status, WORDS[status]


def badge(shop: ShopRun | None) -> str:
    css, word = verdict(shop)
    return f'<span class="badge {css}">{h(word)}</span>'


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, row_classes: Sequence[str] = ()) -> str:
    """An HTML table; cells are HTML already escaped."""
    head = "".join(f"<th>{h(c)}</th>" for c in headers)
    body = []
    for i, row in enumerate(rows):
        css = f' class="{row_classes[i]}"' if i < len(row_classes) and row_classes[i] else ""
        body.append(f"<tr{css}>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as {"a.b.c": leaf}; lists stay leaves."""
    if not isinstance(value, dict):
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, item in value.items():
        flat.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def held_sentence(run: RunData, experiment: str) -> str:
    shops = run.of(experiment)
    first = shops[0].results
    parts = []
    for shop in shops:
        css, word = verdict(shop)
        failed = failed_checks(shop.results)
        if css == "inconclusive":
            invalid = failed_validity(shop.results)
            held = "could not be tested" + (f" (inconclusive: {', '.join(invalid)})" if invalid else f" ({word})")
        elif css == "error":
            held = f"could not be judged ({word}: the shop run raised)"
        elif css == "not-applicable":
            held = f"does not apply, and was not run ({shop.results.get('not_applicable_because')})"
        else:
            held = "held" if css == "pass" else ("did not hold" + (f" (failed: {', '.join(failed)})" if failed else
                                                                   f" ({word})"))
        parts.append(f"on <b>{h(shop.system)}</b> it {h(held)}")
    return f"<p><b>{h(first.get('title', experiment))}</b>: “{h(first.get('claim', ''))}” — {'; '.join(parts)}.</p>"


def key_numbers(shop: ShopRun) -> str:
    r = shop.results
    availability = r.get("availability") or {}
    latency = r.get("latency_ms") or {}
    in_faults = availability.get("in_faults")
    rows = [
        ("availability in faults" if in_faults is not None else "availability (no fault window)",
         share(in_faults if in_faults is not None else availability.get("overall"))),
        ("accepted", f"{fmt((r.get('orders') or {}).get('accepted'))} / {fmt((r.get('orders') or {}).get('attempted'))}"),
        ("lost", fmt((r.get("orders") or {}).get("lost"))),
        ("duplicated", fmt((r.get("orders") or {}).get("duplicated"))),
        ("acceptance p99", fmt((latency.get("acceptance") or {}).get("p99"), " ms")),
        ("fulfilment p99", fmt((latency.get("fulfilment") or {}).get("p99"), " ms")),
    ]
    failed = failed_checks(shop.results)
    if failed:
        rows.append(("failed checks", ", ".join(failed)))
    return "<dl>" + "".join(f"<dt>{h(k)}</dt><dd>{h(v)}</dd>" for k, v in rows) + "</dl>"


def systems(run: RunData) -> list[str]:
    return list(dict.fromkeys(s.system for s in run.shops))


def page(title: str, heading: str, body: str, *, assets: str, source: str, nav: str = "") -> str:
    return PAGE.substitute(title=h(title), heading=heading, body=body, assets=assets, source=h(source), nav=nav)


# --- the index -------------------------------------------------------------------------------------------


def render_index(run: RunData, *, link_prefix: str = "", assets: str = "assets",
                 other_runs: Sequence[tuple[str, str]] = ()) -> str:
    """The matrix experiment x shop (verdict and key numbers) and a sentence per experiment.

    Links to experiment pages are `<link_prefix><experiment>.html`; other_runs are (label, href).
    """
    shops = systems(run)
    rows = []
    for experiment in run.experiments():
        first = run.of(experiment)[0].results
        link = f'<a href="{h(link_prefix + experiment)}.html">{h(first.get("title", experiment))}</a>'
        cells = [f'{link}<br><span class="note">{h(experiment)}</span>']
        for system in shops:
            shop = run.shop(experiment, system)
            others = [run.shop(experiment, other) for other in shops if other != system]
            if shop is not None and verdict(shop)[0] == "not-applicable":
                cells.append(f'{badge(shop)}<div class="note">{h(shop.results.get("not_applicable_because"))}</div>')
                continue
            cells.append(f'{badge(shop)}{key_numbers(shop) if shop else ""}{spread.index_block(shop, others)}')
        rows.append(cells)
    matrix = table(["experiment", *shops], rows).replace("<td>", '<td class="cell">')
    sentences = "".join(held_sentence(run, e) for e in run.experiments())
    counts = {status: sum(1 for s in run.shops if verdict(s)[0] == status) for status in STATUSES}
    body = [f'<p class="note">Run <b>{h(run.run_id)}</b> ({h(run.path)}): of {len(run.shops)} experiment runs, '
            f"{counts['pass']} passed every check, {counts['fail']} failed, {counts['inconclusive']} were "
            f"inconclusive (the run could not test the claim), {counts['error']} errored"
            + (f", {counts['not-applicable']} were not applicable (nothing of the experiment applies to that "
               "shop: not run)" if counts["not-applicable"] else "") + ". "
            "Each experiment ran against each shop with the same seed, "
            "arrival schedule, fault schedule and capacity.</p>",
            "<h2>Verdicts</h2>", matrix, _gap_section(run), "<h2>Claims</h2>", sentences]
    if (Path(run.path) / INTERRUPTED).is_file():   # written by `chaoscafe run` on Ctrl-C
        body.insert(0, '<p class="run-error">This set was interrupted: only the shop runs that finished are '
                       'reported.</p>')
    if other_runs:
        body.append("<h2>Other reports in this folder</h2><ul>"
                    + "".join(f'<li><a href="{h(href)}">{h(label)}</a></li>' for label, href in other_runs) + "</ul>")
    return page(f"chaoscafe run {run.run_id}", f"chaoscafe — run {h(run.run_id)}", "\n".join(body),
                assets=assets, source=str(run.path))


def _gap_section(run: RunData) -> str:
    """Where the resilient sync shop closes the gap between the sync and the async shop (gap.py);
    empty unless the run has all three."""
    found = gap.gaps({e: {s.system: s.results for s in run.of(e)} for e in run.experiments()})
    if not found:
        return ""
    rows = [[h(g.experiment), h(g.label), *(h(fmt(round(v, 3))) for v in g.values),
             h("-" if g.closed is None else f"{g.closed:.0%}"), h(gap.words(g.closed))] for g in found]
    return (f"<h2>Where {h(gap.CONTENDER)} stands between {h(gap.BASELINE)} and {h(gap.TARGET)}</h2>"
            f'<p class="note">The share of the {h(gap.BASELINE)} -> {h(gap.TARGET)} difference the '
            f"{h(gap.CONTENDER)} shop covers, per experiment run on all three: 100% does as well as "
            f"{h(gap.TARGET)}, 0% no better than {h(gap.BASELINE)}; a difference under the metric's tolerance "
            "is no gap.</p>"
            + table(["experiment", "metric", gap.BASELINE, gap.CONTENDER, gap.TARGET, "gap closed", ""], rows))


# --- an experiment page ----------------------------------------------------------------------------------


def _config_rows(shops: Sequence[ShopRun]) -> tuple[str, str]:
    """(shared settings table, architecture table): differences in shared settings highlighted."""
    flat = []
    for shop in shops:
        r, config = shop.results, shop.results.get("config") or {}
        shop_config = config.get("shop") or {}
        values = {"seed": r.get("seed"), "profile": r.get("profile"), **flatten(r.get("schedule") or {}, "schedule"),
                  **flatten(config.get("experiment") or {}, "experiment"),
                  **flatten(shop_config.get("settings") or {}, "shop settings")}
        flat.append({k: v for k, v in values.items() if not k.startswith(CONFIG_SKIP)})
    keys = list(dict.fromkeys(k for f in flat for k in f))
    rows, classes = [], []
    for key in keys:
        cells = [f.get(key) for f in flat]
        differs = any(json.dumps(v, sort_keys=True) != json.dumps(cells[0], sort_keys=True) for v in cells)
        rows.append([h(key), *(h(fmt(v)) for v in cells)])
        classes.append("diff" if differs else "")
    differing = [row for row, css in zip(rows, classes, strict=True) if css]
    headers = ["setting", *(s.system for s in shops)]
    verdict_text = (f"All {len(rows)} shared settings are equal on both shops."
                    if not differing else f"{len(differing)} of {len(rows)} shared settings differ between the shops:")
    shared = (f"<p><b>{h(verdict_text)}</b></p>"
              + (table(headers, differing, row_classes=["diff"] * len(differing)) if differing else "")
              + f"<details><summary>every shared setting</summary>{table(headers, rows, row_classes=classes)}</details>")
    arch_rows = []
    for key in ARCHITECTURE_KEYS:
        arch_rows.append([h(key), *(h(fmt(((s.results.get("config") or {}).get("shop") or {}).get(key)))
                                    for s in shops)])
    return shared, table(["architecture (differs by design)", *(s.system for s in shops)], arch_rows)


def _declared_faults(shop: ShopRun) -> list[dict[str, Any]]:
    """The faults as the experiment declared them (profile applied), named as the nemesis names them."""
    faults = ((shop.results.get("config") or {}).get("experiment") or {}).get("faults") or []
    return [{**f, "name": f.get("name") or f"{f.get('kind')}-{f.get('target')}-{i + 1}"} for i, f in enumerate(faults)]


def _fault_table(shops: Sequence[ShopRun]) -> str:
    declared = _declared_faults(shops[0])
    if not declared and not any(s.results.get("faults") for s in shops):
        return "<p>No faults: this experiment runs both shops undisturbed.</p>"
    names = list(dict.fromkeys([f["name"] for f in declared]
                               + [f["name"] for s in shops for f in s.results.get("faults") or []]))
    by_name = {f["name"]: f for f in declared}
    rows = []
    for name in names:
        d = by_name.get(name, {})
        start, duration = d.get("start_s"), d.get("duration_s")
        what = f"{d.get('kind', '?')} on {d.get('target', '?')}" + (f" replica {d['replica']}" if d.get("replica") else "")
        params = d.get("params") or {}
        declared_text = ("–" if start is None else f"{fmt(float(start))}–{fmt(float(start) + float(duration or 0))} s")
        cells = [h(name), h(what + (f" {fmt(params)}" if params else "")), h(declared_text)]
        for shop in shops:
            actual = next((f for f in shop.results.get("faults") or [] if f["name"] == name), None)
            na = next((f for f in shop.results.get("not_applicable") or [] if f["name"] == name), None)
            errors = [e for e in shop.results.get("fault_errors") or [] if e.get("name") == name]
            if na is not None:
                text = f"not applicable: {na.get('reason', '')}"
            elif actual is not None:
                text = f"{fmt(actual['start_s'])}–{fmt(actual['end_s'])} s"
                hit = actual.get("hit") or {}
                if "held" in hit:   # what the fault hit when it started (a fault that hit nothing proves nothing)
                    text += (f"; hit {hit['held']} {hit.get('of', 'orders')}" if hit["held"] is not None
                             else f"; hit unknown ({hit.get('error', 'no reading')})")
            else:
                text = "not applied"
            if errors:
                text += "; errors: " + "; ".join(str(e.get("error")) for e in errors)
            cells.append(h(text))
        rows.append(cells)
    return table(["fault", "what", "declared (s since start)", *(f"{s.system}: actual" for s in shops)], rows)


def _metrics_table(shops: Sequence[ShopRun]) -> str:
    flat = []
    for shop in shops:
        values: dict[str, Any] = {}
        for section in METRIC_SECTIONS:
            values.update({k: v for k, v in flatten(shop.results.get(section) or {}, section).items()
                           if not isinstance(v, (list, dict))})
        flat.append(values)
    keys = list(dict.fromkeys(k for f in flat for k in f))
    rows = [[h(k), *(f'<span class="num">{h(fmt(f.get(k)))}</span>' for f in flat)] for k in keys]
    return table(["metric (results.json)", *(s.system for s in shops)], rows)


def _ledger_table(shops: Sequence[ShopRun]) -> str:
    rows = []
    for key, words in LEDGER_WORDS:
        rows.append([h(words), h(key), *(h(fmt((s.results.get("orders") or {}).get(key))) for s in shops)])
    samples = []
    for shop in shops:
        for kind, refs in ((shop.results.get("orders") or {}).get("samples") or {}).items():
            if refs:
                samples.append(f"<li>{h(shop.system)} {h(kind)}: orders {h(', '.join(map(str, refs)))}</li>")
    note = f'<ul class="samples">{"".join(samples)}</ul>' if samples else ""
    sources = [f"<li>{h(s.system)}: {h('; '.join(f'{k} from {v}' for k, v in s.results['observed_from'].items()))}</li>"
               for s in shops if s.results.get("observed_from")]
    origin = f'<p class="note">Where each number comes from:</p><ul class="note">{"".join(sources)}</ul>' \
        if sources else ""
    return table(["", "ledger", *(s.system for s in shops)], rows) + note + origin + _clock_warnings(shops)


def _clock_warnings(shops: Sequence[ShopRun]) -> str:
    """A warning per shop whose records put stamps of different processes in an impossible order
    (harness.checkers.clocks): the numbers that compare the harness's clock with a service's are
    off there by the skew."""
    out = []
    for shop in shops:
        c = shop.results.get("clocks") or {}
        if c.get("implausible"):
            out.append(f'<p class="note warn">{h(shop.system)}: {h(fmt(c["implausible"]))} orders carry stamps '
                       f"of different clocks in an impossible order (served before sent "
                       f"{h(fmt(c.get('served_before_sent')))}, brewed before sent "
                       f"{h(fmt(c.get('brewed_before_sent')))}, served before brewed "
                       f"{h(fmt(c.get('served_before_brewed')))}; worst {h(fmt(c.get('worst_s'), ' s'))}): "
                       "a skewed clock. Fulfilment latencies and the business probe compare the harness's clock "
                       "with the services' and are off by the skew; acceptance and response use the harness's "
                       "clock only.</p>")
    return "".join(out)


def _check_badge(check: dict[str, Any]) -> str:
    """pass / FAIL; a failed validity check makes the run inconclusive, not failed."""
    status = "pass" if check.get("passed") else ("inconclusive" if kind_of(check) == "validity" else "fail")
    return f'<span class="badge {status}">{WORDS[status]}</span>'


def _checks_tables(shops: Sequence[ShopRun]) -> str:
    out = ['<div class="pair">']
    for shop in shops:
        rows = [[h(c.get("name")), h(c.get("expected")), h(fmt(c.get("observed"))), _check_badge(c), h(kind_of(c))]
                for c in shop.results.get("checks") or []]
        out.append(f'<div><div class="shop-name">{h(shop.system)} {badge(shop)}</div>'
                   + table(["check", "expected", "observed", "result", "kind"], rows) + "</div>")
    out.append("</div>")
    return "".join(out)


def _provenance_table(shops: Sequence[ShopRun]) -> str:
    def row(shop: ShopRun) -> dict[str, Any]:
        r = shop.results
        started = r.get("started_at")
        return {"run id": r.get("run_id"), "seed": r.get("seed"), "profile": r.get("profile"),
                "started (UTC)": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(started)) if started else None,
                "wall time (s)": r.get("wall_s"), "schedule duration (s)": (r.get("schedule") or {}).get("duration_s"),
                "arrivals": (r.get("schedule") or {}).get("arrivals"),
                "schedule digest": (r.get("schedule") or {}).get("digest"), "complete": r.get("complete"),
                "jobs (shop runs at once)": (r.get("config") or {}).get("jobs"),
                **{f"host CPU {k.removesuffix('_share')} (share, load and drain)": v
                   for k, v in (r.get("host") or {}).items() if k.endswith("_share")},
                **(r.get("provenance") or {})}
    flat = [row(s) for s in shops]
    keys = list(dict.fromkeys(k for f in flat for k in f))
    return table(["", *(s.system for s in shops)], [[h(k), *(h(fmt(f.get(k))) for f in flat)] for k in keys])


def _pair(items: Iterable[tuple[str, str]]) -> str:
    return '<div class="pair">' + "".join(f'<div class="plot">{svg}</div>' for _, svg in items) + "</div>"


def _flows(shops: Sequence[ShopRun]) -> str:
    out = []
    for shop in shops:
        samples = sample_orders(shop.orders())
        out.append(f"<h3>{h(shop.system)} shop</h3>")
        if not samples:
            out.append("<p>No order to show.</p>")
        out.extend(f'<div class="plot">{swimlane(shop.history, s, shop.system)}</div>' for s in samples)
    return "".join(out)


def render_experiment(run: RunData, experiment: str, *, assets: str = "../assets", index_href: str = "index.html") -> str:
    """The page of one experiment: claim, configuration, faults, metrics, timelines, distributions,
    ledger, checks, event flow, generator lag and provenance, shops side by side."""
    shops = run.of(experiment)
    first = shops[0].results
    verdicts = " ".join(f"{h(s.system)} {badge(s)}" for s in shops)
    errors = "".join(f'<p class="run-error"><b>{h(s.system)}: the shop run raised</b> {h(s.results["error"])}</p>'
                     for s in shops if s.results.get("error"))
    shared, architecture = _config_rows(shops)
    generator_rows = [[h(k), *(h(fmt((s.results.get("generator") or {}).get(k))) for s in shops)]
                      for k in dict.fromkeys(k for s in shops for k in (s.results.get("generator") or {}))]
    body = [
        f'<p class="claim">Claim: {h(first.get("claim", ""))}</p><p>Verdict: {verdicts}</p>{errors}',
        f'<p class="desc">{h(first.get("config", {}).get("experiment", {}).get("description", ""))}</p>',
        "<h2>Configuration</h2><p class=\"note\">The settings both shops ran with (seed, schedule, load, shop "
        "settings); a highlighted row differs between the shops, which it should not.</p>", shared,
        f"<details><summary>how each shop is built (differs by design)</summary>{architecture}</details>",
        "<h2>Fault schedule</h2>", _fault_table(shops),
        "<h2>Over time</h2>", ZOOM_BAR,
    ]
    for row in figures.timeline_rows(shops):
        body.append(f"<h3>{h(row.title)}</h3><p class=\"note\">{h(row.note)}</p>{_pair(row.charts)}")
    body += [
        "<h2>Latency distribution</h2><p class=\"note\">Each line shows, for every share of orders, the time "
        "within which that share was handled (log scales; the dots mark 50%, 90%, 99%, 99.9%).</p>",
        _pair(("", svg) for svg in figures.distribution_charts(shops)),
        "<h2>The ledger: every order accounted for</h2>", _ledger_table(shops),
        "<h2>Checks: expected vs observed</h2>", _checks_tables(shops),
        sections.latecomers(shops), sections.pool(shops), sections.theory(shops), sections.cluster(shops),
        "<h2>Event flow of sampled orders</h2><p class=\"note\">What happened to a few orders, service by "
        "service. Hover a dot for its exact time.</p>", _flows(shops),
        "<h2>All metrics side by side</h2>", _metrics_table(shops),
        *(["<h2>Repetitions: mean and 95% confidence interval</h2>", spread.metrics_table(shops)]
          if spread.repeated(shops) > 1 else []),
        "<h2>Load generator lag</h2>", table(["", *(s.system for s in shops)], generator_rows),
    ]
    lag = figures.lag_row(shops)
    body.append(f"<p class=\"note\">{h(lag.note)}</p>{_pair(lag.charts)}")
    body += ["<h2>Provenance</h2>", _provenance_table(shops)]
    nav = f'<p><a href="{h(index_href)}">← all experiments of run {h(run.run_id)}</a></p>'
    return page(f"{first.get('title', experiment)} — chaoscafe {run.run_id}",
                f"{h(first.get('title', experiment))} <span class=\"note\">({h(experiment)})</span>",
                "\n".join(body), assets=assets, source=str(run.path / experiment), nav=nav)
