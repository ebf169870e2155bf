"""The `chaoscafe` command (also `python -m harness`).

Exit codes (EXIT_CODES, also in `chaoscafe --help` and README.md): 0 success, 1 a check failed or a
shop run errored, 2 bad input (usage, bad file), 3 inconclusive, 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from cafe.brewing import BrewTime
from harness.shops import ENTRIES, PROBLEMS, SHOP_NAMES, traits_of  # the registry only: no adapter, no infrastructure

# harness.experiment.model.PROFILES, repeated so that parsing the command line does not load the
# experiment schema (tests/unit/test_experiment.py checks they agree)
PROFILES = ("fast", "smoke", "full", "realtime")

console = Console() if sys.stdout.isatty() else Console(width=160)
STATE_DIR = Path(os.environ.get("CHAOSCAFE_HOME", ".chaoscafe")).resolve()
INFRA_STATE = STATE_DIR / "infra.json"
SHOP_CHOICES = [*SHOP_NAMES, "all", "both"]   # "all" (and "both", its older name): every registered shop


def _shops(choice: str) -> list[str]:
    """The shops a --system/--shop choice names: one, or every registered shop for "all" or "both"."""
    return list(SHOP_NAMES) if choice in ("all", "both") else [choice]


def error_line(text: str) -> None:
    """Print `text` in red as it is: no rich markup read from it (a value may contain "[/]") and
    no wrapping when the output is not a terminal (one message, one line)."""
    console.print(text, style="red", markup=False, highlight=False, soft_wrap=True)


def _settings(args: argparse.Namespace) -> Any:
    from harness.shops import ShopSettings

    return ShopSettings(baristas=args.baristas, brewers=args.brewers,
                        brew=BrewTime(distribution="fixed", mean_ms=args.brew_ms),
                        capacity=args.capacity, prefetch=args.prefetch,
                        publish_mode=args.publish_mode, idempotency=not args.no_idempotency)


def _run_dir(args: argparse.Namespace, what: str) -> Path:
    base = Path(args.run_dir) if getattr(args, "run_dir", None) else STATE_DIR / "runs"
    return base / f"{what}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"


def _wait_forever() -> None:
    while True:
        time.sleep(3600)


def cmd_provision(args: argparse.Namespace) -> int:
    from harness.errors import ProvisionError
    from harness.infra.provision import ensure

    try:
        found = ensure(install=not args.check)
    except ProvisionError as exc:
        error_line(f"{exc}")
        return 1
    for key, value in found.items():
        console.print(f"{key}: {value}")
    return 0


def cmd_infra(args: argparse.Namespace) -> int:
    if args.action == "status":
        if not INFRA_STATE.exists():
            console.print(f"infra: down (no state file {INFRA_STATE.resolve()}: `infra up` keeps its state under "
                          "the directory it was started from)")
            return 1
        state = json.loads(INFRA_STATE.read_text())
        alive = _pid_alive(state["pid"])
        console.print_json(data={**state, "up": alive})
        return 0 if alive else 1
    if args.action == "down":
        if not INFRA_STATE.exists():
            console.print("infra: already down")
            return 0
        state = json.loads(INFRA_STATE.read_text())
        if _pid_alive(state["pid"]):
            os.kill(state["pid"], signal.SIGTERM)
            deadline = time.monotonic() + 60
            while _pid_alive(state["pid"]) and time.monotonic() < deadline:
                time.sleep(0.2)
        INFRA_STATE.unlink(missing_ok=True)
        console.print("infra: down")
        return 0
    from harness.infra.stack import Infrastructure

    with Infrastructure(_run_dir(args, "infra"), broker=True) as infra:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        INFRA_STATE.write_text(json.dumps({"pid": os.getpid(), **infra.describe()}, indent=2))
        try:
            for key, value in infra.describe().items():
                console.print(f"[bold]{key}[/bold]: {value}")
            console.print("infra up; `chaoscafe infra down` or Ctrl-C stops it")
            _wait_forever()
        finally:
            INFRA_STATE.unlink(missing_ok=True)
    return 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cmd_shop(args: argparse.Namespace) -> int:
    from harness.infra.stack import Infrastructure
    from harness.shops import SHOPS

    traits = traits_of(args.kind)
    with Infrastructure(_run_dir(args, f"shop-{args.kind}"), broker=traits.needs_broker) as infra:
        with SHOPS[args.kind](infra, _settings(args)) as shop:
            console.print(f"[bold green]{args.kind} shop up[/bold green] (run dir {infra.run_dir})")
            console.print(f"  place an order: curl -X POST {shop.entry_url}/orders "
                          "-H 'content-type: application/json' -d '{\"product\":\"flat white\",\"size\":\"large\"}'")
            for service in shop.supervisor.services():
                for replica in shop.supervisor.replicas(service):
                    console.print(f"  {replica.name}: {shop.url(replica.name)}  (log {replica.log_path})")
            reads = ", ".join(f"{path} on {replica}" for path, replica in traits.reads)
            console.print(f"  read what happened: GET {reads}")
            if infra.broker is not None:
                console.print(f"  broker management: {infra.broker.management_url} "
                              f"(user {infra.broker.username} / {infra.broker.password})")
            # other chaos tools (the Toxiproxy CLI, Chaos Toolkit's Toxiproxy extension) can drive these
            console.print(f"  toxiproxy api: {infra.toxiproxy_server.api_url}  "
                          f"(e.g. toxiproxy-cli -h {infra.toxiproxy_server.api_url.removeprefix('http://')} list)",
                          highlight=False)
            for edge, names in sorted(shop.edges.items()):
                for name in names:
                    proxy = next(p for p in shop.proxies.values() if p.name == name)
                    console.print(f"  proxy {proxy.name} (edge {edge}): listen {proxy.listen} -> upstream "
                                  f"{proxy.upstream}", highlight=False)
            console.print("Ctrl-C stops the shop and everything it started.")
            sys.stdout.flush()   # a reader of a pipe sees the addresses now
            _wait_forever()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from harness.infra.stack import Infrastructure
    from harness.load.batch import run_batch
    from harness.shops import SHOPS

    kinds = _shops(args.system)
    settings = _settings(args)
    results = []
    with Infrastructure(_run_dir(args, "demo"), broker=any(traits_of(k).needs_broker for k in kinds)) as infra:
        for kind in kinds:
            with console.status(f"{kind} shop: starting, then {args.orders} orders ..."):
                with SHOPS[kind](infra, settings) as shop:
                    results.append(run_batch(shop, args.orders, seed=args.seed))
    table = Table(title=f"{args.orders} orders through each shop "
                        f"({settings.baristas} barista x {settings.brewers} brewers, brew {args.brew_ms} ms)")
    for column in ("shop", "accepted", "answers", "brewed", "served", "duplicates", "seconds", "served/s"):
        table.add_column(column)
    ok = True
    for r in results:
        table.add_row(r.shop, str(r.accepted), json.dumps(r.statuses), str(r.brewed), str(r.served_orders),
                      str(r.duplicate_servings), f"{r.seconds:.2f}", f"{r.throughput:.1f}")
        ok &= r.served_orders == r.accepted == r.placed and r.duplicate_servings == 0
    console.print(table)
    console.print("[green]every order served exactly once[/green]" if ok
                  else "[red]some orders were not served exactly once[/red]")
    if args.json:
        Path(args.json).write_text(json.dumps([r.to_dict() for r in results], indent=2))
    return 0 if ok else 1


def _selected(names: list[str]) -> Any:
    from harness.experiment.runs import select

    return select(names)


def cmd_shops(args: argparse.Namespace) -> int:
    """The registered shops (built-in and plugins, harness.shops): name, adapter, what it is."""
    from importlib.metadata import entry_points

    from harness.shops import BUILT_IN, ENTRY_POINTS

    dists = {point.name: point.dist.name if point.dist else "?" for point in entry_points(group=ENTRY_POINTS)}
    table = Table(title=f"shops (entry points of {ENTRY_POINTS})")
    for column in ("name", "from", "adapter", "broker", "event log", "new consumers"):
        table.add_column(column, overflow="fold")
    for name, entry in ENTRIES.items():
        source = "built-in" if entry in BUILT_IN else f"plugin ({dists.get(name, '?')})"
        t = entry.traits
        table.add_row(name, source, entry.adapter, *("yes" if v else "no" for v in
                                                     (t.needs_broker, t.has_event_log, t.accepts_subscribers)))
    console.print(table)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    table = Table(title="experiments")
    for column in ("name", "scenarios", "claim"):
        table.add_column(column, overflow="fold")
    for item in _selected([]):
        table.add_row(item.name, ", ".join(map(str, item.experiment.scenarios)) or "- (the reference)",
                      item.experiment.claim)
    console.print(table)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from harness.errors import ExperimentError
    from harness.experiment import load_experiment
    from harness.experiment.runs import select

    bad = 0
    for path in args.files:
        try:
            if path.endswith(".toml") or Path(path).is_file():
                load_experiment(path)
            else:   # a name, as `run` takes it (experiments/NAME.toml; an unknown one lists the known)
                select([path])
            console.print(f"{path}: ok")
        except ExperimentError as exc:
            bad += 1
            error_line(f"{exc}")
    return 2 if bad else 0


def cmd_run(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from harness.experiment.runs import new_run_id, planned_seconds, run_all
    from harness.experiment.verdicts import exit_code
    from harness.report.runlog import PlainLines

    selected = _selected(args.experiments)   # ExperimentError -> exit 2 before anything starts
    if args.profile is None:
        args.profile = _default_profile()
        if args.profile is None:
            return 2
    if args.runtime:   # every Infrastructure of this run reads it (harness/infra/runtime.py)
        os.environ["CHAOSCAFE_RUNTIME"] = args.runtime
    from harness.infra.runtime import ENV_VAR as RUNTIME_ENV
    from harness.infra.runtime import requested_runtime

    try:   # a bad $CHAOSCAFE_RUNTIME is bad input, found before anything starts
        requested_runtime()
    except ValueError as exc:
        error_line(f"{RUNTIME_ENV}={os.environ.get(RUNTIME_ENV)!r}: {exc}")
        return 2
    for option, value in (("--junit", args.junit), ("--summary-md", args.summary_md)):
        if value and Path(value).is_dir():   # found now, not after the whole run
            error_line(f"{option} {value}: is a directory, not a file")
            return 2
    if args.generator_workers is not None:   # every shop run of this set reads it (harness/load/shards.py)
        from harness.load.shards import WORKERS_ENV

        os.environ[WORKERS_ENV] = str(args.generator_workers)
    from harness.load.shards import configured_workers

    try:   # a bad $CHAOSCAFE_GENERATOR_WORKERS is bad input, found before anything starts
        configured_workers()
    except ValueError as exc:
        error_line(str(exc))
        return 2
    from harness.experiment.pool import configured_jobs

    try:   # a bad $CHAOSCAFE_JOBS is bad input, found before anything starts
        jobs = configured_jobs(args.jobs)
    except ValueError as exc:
        error_line(str(exc))
        return 2
    systems = _shops(args.system)
    out = Path(args.out)
    if not _out_dir_ok(args.out):
        return 2
    run_id = new_run_id()
    run_dir = out / "runs" / run_id
    live = console.is_terminal and not args.quiet
    listener = None
    if not live and not args.quiet:   # a log (CI, tox, a pipe): one plain line per shop run start and end
        windows = [planned_seconds([item], [s], profile=args.profile) for item in selected
                   for _ in range(args.repeat) for s in systems]
        listener = PlainLines(windows, emit=lambda line: print(line, flush=True))
        print(f"chaoscafe run {run_id}: {len(selected)} experiment(s) x {', '.join(systems)}, profile "
              f"{args.profile}, {len(windows)} shop runs{f' ({jobs} at a time)' if jobs > 1 else ''}, about {planned_seconds(selected, systems, profile=args.profile, repeat=args.repeat):.0f} s "
              f"of arrivals; results in {run_dir}", flush=True)
    tasks: dict[tuple[str, str], Any] = {}
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[counters]}"), TimeElapsedColumn(), console=console,
                      disable=not live) as bar:
            def progress(p: Any) -> None:
                key = (p.experiment, p.system)
                if key not in tasks:
                    tasks[key] = bar.add_task(f"{p.experiment} / {p.system}", total=p.scheduled, counters="")
                faults = f" faults: {', '.join(p.faults)}" if p.faults else ""
                served = "" if p.served is None else f" served {p.served}"
                backlog = "" if p.backlog is None else f" backlog {p.backlog}"
                bar.update(tasks[key], completed=p.sent, description=f"{p.experiment} / {p.system} [{p.phase}]",
                           counters=f"ok {p.accepted} fail {p.failed} info {p.unknown} dropped {p.dropped}"
                                    f"{served}{backlog}{faults}")

            run_dir, summary = run_all(selected, systems, profile=args.profile, seed=args.seed, out=out,
                                       progress=progress if live else None, repeat=args.repeat, run_id=run_id,
                                       listener=listener, jobs=jobs)
    except KeyboardInterrupt:   # report what finished, then let main() say "interrupted" (exit 130)
        if (run_dir / "summary.json").is_file():
            console.print(f"interrupted: writing the report of the shop runs that finished in {run_dir}")
            from harness.report.html import INTERRUPTED

            (run_dir / INTERRUPTED).write_text(json.dumps({"interrupted_at": time.time()}))
            try:
                _write_report(run_dir, out)
                _ci_outputs(args, json.loads((run_dir / "summary.json").read_text()), run_dir, out,
                            interrupted=True)
            except Exception as exc:
                error_line(f"report not written: {exc.__class__.__name__}: {exc}")
        raise
    repeated = f", {args.repeat} repetitions each (p99s: mean ± 95% CI half-width; the rest: repetition 1)" \
        if args.repeat > 1 else ""
    table = Table(title=f"results in {run_dir}{repeated}")
    for column in ("experiment", "shop", "verdict", "accepted", "lost", "dup", "accept p99 ms",
                   "fulfil p99 ms", "failed checks"):
        table.add_column(column, overflow="fold")
    verdicts = {"pass": "[green]pass[/green]", "fail": "[red]FAIL[/red]", "error": "[red]ERROR[/red]",
                "inconclusive": "[yellow]INCONCLUSIVE[/yellow]", "not-applicable": "[dim]not applicable[/dim]"}
    for row in summary:
        if row["status"] == "not-applicable":   # not run: nothing of the experiment applies to this shop
            table.add_row(row["experiment"], row["system"], verdicts["not-applicable"], "-", "-", "-", "-", "-",
                          row.get("not_applicable") or "")
            continue
        table.add_row(row["experiment"], row["system"], verdicts.get(row["status"], row["status"]),
                      f"{row['accepted']}/{row['attempted']}",
                      str(row["lost"]), str(row["duplicated"]), _ci(row, "acceptance_p99_ms"),
                      _ci(row, "fulfilment_p99_ms"), ", ".join(row["failed_checks"]))
    console.print(table)
    try:
        _write_report(run_dir, out)
    except Exception as exc:  # the run's files are written; a broken report must not hide its verdict
        error_line(f"report not written: {exc.__class__.__name__}: {exc}")
    _ci_outputs(args, summary, run_dir, out)
    return exit_code(row["status"] for row in summary)   # 0 pass, 1 fail or error, 3 inconclusive


def _ci_outputs(args: argparse.Namespace, summary: list[dict[str, Any]], run_dir: Path, out: Path, *,
                interrupted: bool = False) -> None:
    """--junit FILE, --summary-md FILE and $GITHUB_STEP_SUMMARY, from the run's summary rows (an
    interrupted set: the shop runs that finished, and the title says it was interrupted)."""
    from harness.report.ci_output import append_github_summary, summary_markdown, write_junit

    if args.junit:
        write_junit(summary, Path(args.junit), report_dir=str(out), run_id=run_dir.name, interrupted=interrupted)
        console.print(f"junit: {args.junit}", highlight=False)
    title = f"chaoscafe run {run_dir.name} ({args.profile} profile{', INTERRUPTED' if interrupted else ''})"
    markdown = summary_markdown(summary, title=title, report_index=str(out / "index.html"))
    if args.summary_md:
        Path(args.summary_md).parent.mkdir(parents=True, exist_ok=True)
        Path(args.summary_md).write_text(markdown, encoding="utf-8")
        console.print(f"summary: {args.summary_md}", highlight=False)
    written = append_github_summary(markdown)
    if written is not None:
        console.print(f"summary appended to $GITHUB_STEP_SUMMARY ({written})", highlight=False)


def _write_report(run_dir: Path, out: Path) -> Path:
    """Write the HTML report of run_dir into out and print where its index is."""
    from harness.report import write_report

    report = write_report(run_dir, out)
    console.print(f"report: {report.index}", highlight=False)
    return report.index


def _out_dir_ok(value: str, *, create: bool = True) -> bool:
    """False (after one error line) when --out `value`, or a parent of it, is a file, or (with
    `create`) when the directory cannot be made: found before anything starts, not when the
    first file is written."""
    out = Path(value)
    for where in (out, *out.parents):
        if where.exists():
            if not where.is_dir():
                error_line(f"--out {value}: {where} is a file, not a directory")
                return False
            break
    if create:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            error_line(f"--out {value}: cannot create it ({exc.strerror or exc})")
            return False
    return True


def cmd_report(args: argparse.Namespace) -> int:
    from harness.report import latest_run_dir

    if not _out_dir_ok(args.out):
        return 2
    try:
        run_dir = Path(args.run_dir) if args.run_dir else latest_run_dir(Path("reports").resolve() / "runs")
        if not run_dir.is_dir():
            raise FileNotFoundError(f"no such run directory: {run_dir}")
        if (run_dir / "runs").is_dir() and not (run_dir / "summary.json").is_file():
            run_dir = latest_run_dir(run_dir / "runs")   # an --out directory: its newest run, as compare reads it
        _write_report(run_dir, Path(args.out))
    except FileNotFoundError as exc:
        error_line(f"chaoscafe report: {exc}")
        return 2
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from harness.regression.compare import (
        NEAR_MISS,
        STEAL_LIMIT,
        TOLERANCES,
        CompareError,
        compare_sets,
        load_envelopes,
        load_set,
        load_tolerances,
        near_misses,
        regressions,
    )

    try:
        tolerances = load_tolerances(Path(args.tolerances)) if args.tolerances else TOLERANCES
        baseline, current = load_set(Path(args.baseline)), load_set(Path(args.current))
        envelopes = load_envelopes(Path(args.baseline))
    except CompareError as exc:
        error_line(f"chaoscafe compare: {exc}")
        return 2
    limit = STEAL_LIMIT if args.steal_limit is None else args.steal_limit
    if not 0.0 <= limit <= 1.0:
        error_line(f"chaoscafe compare: --steal-limit {limit:g}: expected a share between 0 and 1")
        return 2
    changes = compare_sets(baseline, current, tolerances, envelopes, ran_only=args.ran_only, steal_limit=limit)
    bad = regressions(changes)
    if args.json:
        Path(args.json).write_text(json.dumps([c.to_dict() for c in changes], indent=2))
    if args.format != "text":   # for CI: the document alone on stdout, the exit code as below
        from harness.report.ci_output import compare_json, compare_markdown

        doc = compare_markdown(changes, baseline=args.baseline, current=args.current, show_all=args.all) \
            if args.format == "markdown" else compare_json(changes, baseline=args.baseline, current=args.current)
        sys.stdout.write(doc if doc.endswith("\n") else doc + "\n")
        return 1 if bad else 0
    shown = [c for c in changes if args.all or c.status != "same"]
    table = Table(title=f"{args.current} against baseline {args.baseline}")
    for column in ("experiment", "shop", "what", "baseline", "current", "status", "rule"):
        table.add_column(column, overflow="fold")
    styles = {"regression": "red", "missing": "red", "improved": "green", "new": "cyan", "note": "yellow",
              "noisy": "magenta"}
    for c in shown:
        style = styles.get(c.status)
        status = f"[{style}]{c.status}[/{style}]" if style else c.status
        table.add_row(c.experiment, c.system, c.metric, _cell(c.baseline), _cell(c.current), status, c.rule)
    console.print(table)
    compared = len({(c.experiment, c.system) for c in changes})
    if close := near_misses(changes):
        from harness.report.ci_output import near_miss_lines

        console.print(f"[yellow]{len(close)} near miss(es)[/yellow]: metrics judged the same that used over "
                      f"{NEAR_MISS:.0%} of their rule's room (the closest first)")
        for line in near_miss_lines(close):
            console.print(f"  {line}", markup=False, highlight=False)
    if noisy := sum(c.status == "noisy" for c in changes):
        console.print(f"[magenta]{noisy} timing metric(s) not judged[/magenta]: their runs' host stole over "
                      f"{limit:.0%} of the CPU (--steal-limit)")
    if bad:
        error_line(f"{len(bad)} regression(s) in {compared} shop runs")
        return 1
    console.print(f"[green]no regression in {compared} shop runs[/green] "
                  f"({sum(c.status == 'improved' for c in changes)} improved, "
                  f"{sum(c.status == 'changed' for c in changes)} changed without a rule)")
    return 0


def cmd_explore(args: argparse.Namespace) -> int:
    from harness.explore.search import explore
    from harness.report import write_report

    systems = _shops(args.shop)
    found_any = False
    for system in systems:
        seeded = "an open search" if args.seed is None else f"seed {args.seed}"
        console.print(f"exploring the {system} shop ({args.config} configuration): up to {args.examples} "
                      f"examples, {args.budget:g} s budget for new ones, {seeded}", highlight=False)

        def show(example: dict[str, Any]) -> None:
            status = example.get("status", "pass" if example["passed"] else "fail")
            verdict = "[green]holds[/green]" if status == "pass" else \
                f"[yellow]inconclusive: {', '.join(example['failed_checks'])}[/yellow]" if status == "inconclusive" \
                else f"[red]violated: {', '.join(example['failed_checks'])}[/red]"
            console.print(f"  {example['name']}: {'; '.join(example['faults'])} -> {verdict}", highlight=False)

        finding = explore(system, args.config, examples=args.examples, budget_s=args.budget, out=Path(args.out),
                          max_faults=args.max_faults, seed=args.seed, on_example=show)
        try:
            write_report(finding.run_dir, Path(args.out) / "explore")
        except Exception as exc:  # the findings are written; a report failure must not hide them
            error_line(f"report not written: {exc.__class__.__name__}: {exc}")
        if finding.found:
            found_any = True
            assert finding.minimal is not None
            stopped = " (the budget stopped the shrinking: maybe not the smallest)" if finding.budget_spent else ""
            console.print(f"[red]{system}: a violation ({', '.join(finding.minimal_failed)}), shrunk to "
                          f"{len(finding.minimal.faults)} fault(s){stopped} in {finding.seconds:.0f} s[/red]; "
                          f"replayed from {finding.file}: {'reproduced' if finding.reproduced else 'NOT reproduced'}",
                          highlight=False)
            console.print(f"  replay: chaoscafe run {finding.file} --system {system}", highlight=False)
        else:
            console.print(f"[green]{system}: no violation in {len(finding.examples)} examples "
                          f"({finding.seconds:.0f} s{', budget spent' if finding.budget_spent else ''})[/green]",
                          highlight=False)
    return 1 if found_any else 0


def cmd_baseline(args: argparse.Namespace) -> int:
    from harness.errors import CompareError
    from harness.regression.baseline import save_baseline

    if not _out_dir_ok(args.out, create=False):
        return 2
    try:
        written = save_baseline(Path(args.run_dir), Path(args.out), [Path(p) for p in args.more],
                                replace=args.replace, only=args.only)
    except CompareError as exc:
        error_line(f"chaoscafe baseline: {exc}")
        return 2
    except OSError as exc:
        error_line(f"chaoscafe baseline: --out {args.out}: cannot write the baseline there "
                   f"({exc.strerror or exc}: {exc.filename})")
        return 2
    size = sum(p.stat().st_size for p in written)
    results = sum(1 for p in written if p.name == "results.json")
    console.print(f"baseline: {results} results, {len(written) - results} envelopes ({size / 1024:.0f} KiB) "
                  f"in {args.out}; review and commit it")
    return 0


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".")
    return "-" if value is None else str(value)


def _ci(row: dict[str, Any], key: str) -> str:
    """A summary value, or mean ± CI half-width when the run was repeated."""
    iv = (row.get("intervals") or {}).get(key)
    if not iv:
        return _num(row[key])
    return f"{iv['mean']:.1f} ± {(iv['ci_high'] - iv['ci_low']) / 2:.1f}"


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.1f}"


EXIT_CODES = """exit codes (every command):
  0    success: every shop run passed every check (run), no regression (compare), no
       violation (explore), the command did what was asked (the others)
  1    failure: an invariant or expectation failed or a shop run ended in an error (run), a
       regression (compare), a violation found (explore), or the environment failed (one line)
  2    bad input: usage, an invalid experiment file or CHAOSCAFE_PROFILE, a missing
       directory or result set
  3    inconclusive (run): nothing failed, but some shop run could not test its claim (the
       generator fell behind, a checker raised, no steady state before the first fault, a fault
       not applied)
  130  interrupted (Ctrl-C): everything started was stopped; finished shop runs are reported"""


def _shop_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--baristas", type=_positive, default=1, help="barista replicas (default 1)")
    p.add_argument("--brewers", type=_positive, default=4, help="brews in parallel per barista (default 4)")
    p.add_argument("--brew-ms", type=_non_negative_ms, default=50.0, help="fixed brew time in ms (default 50)")
    p.add_argument("--capacity", type=_positive, default=32, help="sync cashier: orders at once (default 32)")
    p.add_argument("--prefetch", type=_positive, default=4, help="async barista prefetch (default 4)")
    p.add_argument("--publish-mode", choices=["outbox", "direct"], default="outbox")
    p.add_argument("--no-idempotency", action="store_true")
    p.add_argument("--run-dir", help="where logs and databases go (default .chaoscafe/runs/)")


def _default_profile() -> str | None:
    """$CHAOSCAFE_PROFILE (fast, smoke, full or realtime; CI sets one to run the README's main command as written),
    else full; None (after one error line) when it names no profile."""
    value = os.environ.get("CHAOSCAFE_PROFILE") or "full"
    if value not in PROFILES:
        error_line(f"CHAOSCAFE_PROFILE={value!r}: must be one of {', '.join(PROFILES)} (or --profile)")
        return None
    return value


def _generator_workers(text: str) -> int:
    from harness.load.shards import check_workers

    try:
        return check_workers(text, "--generator-workers")
    except ValueError as exc:   # argparse names the option itself
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--generator-workers: ")) from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative_ms(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0:   # also NaN
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="chaoscafe", description=__doc__.splitlines()[0] if __doc__ else None,
                                epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    prov = sub.add_parser("provision", help="find RabbitMQ and Toxiproxy, installing them if missing")
    prov.add_argument("--check", action="store_true", help="only look, never install")
    prov.set_defaults(func=cmd_provision)
    infra = sub.add_parser("infra", help="a private broker and Toxiproxy: up (foreground), down, status")
    infra.add_argument("action", choices=["up", "down", "status"])
    infra.add_argument("--run-dir")
    infra.set_defaults(func=cmd_infra)
    shop = sub.add_parser("shop", help="run one shop with its infrastructure until Ctrl-C")
    shop.add_argument("action", choices=["up"])
    shop.add_argument("kind", choices=list(SHOP_NAMES))
    _shop_options(shop)
    shop.set_defaults(func=cmd_shop)
    demo = sub.add_parser("demo", help="start every shop (or --system one) and serve a batch of orders through each")
    demo.add_argument("--orders", type=_positive, default=50)
    demo.add_argument("--system", choices=SHOP_CHOICES, default="all")
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--json", help="also write the results as JSON to this file")
    _shop_options(demo)
    demo.set_defaults(func=cmd_demo)
    run = sub.add_parser("run", help="run experiments against every shop (or --system one) with the same schedule and faults")
    run.add_argument("experiments", nargs="*", help="experiment names or TOML files (default: all in experiments/)")
    run.add_argument("--system", choices=SHOP_CHOICES, default="all")
    run.add_argument("--profile", choices=list(PROFILES),
                     help="full: every order of each file, compressed in time where its [profiles.full] says "
                          "(speed); realtime: the same at speed 1; smoke: shorter (fewer orders), in real time; "
                          "fast: smoke compressed (each file's [profiles.fast] speed) "
                          "(default $CHAOSCAFE_PROFILE, else full)")
    run.add_argument("--seed", type=int, help="override every experiment's seed")
    run.add_argument("--out", default="reports", help="output directory (default reports/)")
    run.add_argument("--quiet", action="store_true", help="no live progress and no plain progress lines")
    run.add_argument("--junit", metavar="FILE", help="also write JUnit XML: one test case per experiment x shop")
    run.add_argument("--summary-md", metavar="FILE",
                     help="also write a Markdown summary (appended to $GITHUB_STEP_SUMMARY too when it is set)")
    run.add_argument("--repeat", type=_positive, default=1, metavar="N",
                     help="run each experiment N times with seeds seed..seed+N-1; mean and 95%% CI per metric")
    run.add_argument("--runtime", choices=["local", "docker", "auto"],
                     help="processes (local), containers (docker) or docker when available (auto); "
                          "default $CHAOSCAFE_RUNTIME, else local")
    run.add_argument("--generator-workers", type=_generator_workers, metavar="N",
                     help="load generator processes, each sending the orders with ref %% N == k; default "
                          "$CHAOSCAFE_GENERATOR_WORKERS, else 1 on a machine of <= 2 cores, else half the cores (at most 4)")
    run.add_argument("--jobs", type=_positive, metavar="N",
                     help="shop runs at once, in N worker processes (runs that boot their own broker run alone; "
                          "heavy runs, 50 orders in a second or more, at most one per core); default "
                          "$CHAOSCAFE_JOBS, else 1. Concurrent runs share the machine: 1 for measurements")
    run.set_defaults(func=cmd_run)
    rep = sub.add_parser("report", help="write the HTML report of a run (index, one page per experiment)")
    rep.add_argument("run_dir", nargs="?", metavar="RUN_DIR",
                     help="a run directory, or an --out directory (its newest run); default: the newest "
                          "under reports/runs")
    rep.add_argument("--out", default="reports", help="where the report goes (default reports/)")
    rep.set_defaults(func=cmd_report)
    cmp = sub.add_parser("compare", help="compare a run with a baseline; exit 1 on a regression")
    cmp.add_argument("baseline", metavar="BASELINE_DIR", help="e.g. reports/baseline/fast")
    cmp.add_argument("current", metavar="CURRENT_DIR", help="a run directory, or an --out directory (newest run)")
    cmp.add_argument("--tolerances", help="TOML file overriding per-metric tolerances")
    cmp.add_argument("--all", action="store_true", help="also list metrics that did not change")
    cmp.add_argument("--ran-only", action="store_true",
                     help="judge only the shop runs CURRENT has (a few experiments, not the whole set): the "
                          "baseline's others are not reported missing")
    cmp.add_argument("--steal-limit", type=float, metavar="SHARE",
                     help="a timing metric that worsened in a run whose host stole more than this share of "
                          "the CPU (its results.json host.steal_share) is 'noisy', not a regression; "
                          "default 0.1, 1 judges every run")
    cmp.add_argument("--json", help="also write every change as JSON to this file")
    cmp.add_argument("--format", choices=["text", "markdown", "json"], default="text",
                     help="text: a table for people (default); markdown or json: one document on stdout, for CI")
    cmp.set_defaults(func=cmd_compare)
    exp = sub.add_parser("explore", help="search fault schedules for a broken invariant; shrink it to a replayable file")
    exp.add_argument("--shop", choices=SHOP_CHOICES, default="all")
    exp.add_argument("--config", choices=["strong", "weak"], default="strong",
                     help="strong: idempotency and keyed retries (the default); weak: none of it")
    exp.add_argument("--examples", type=_positive, default=20, help="generated schedules at most (default 20)")
    exp.add_argument("--budget", type=float, default=600.0, help="seconds for new examples (default 600)")
    exp.add_argument("--max-faults", type=_positive, default=3, help="faults per schedule at most (default 3)")
    exp.add_argument("--seed", type=int,
                     help="fix Hypothesis's generation: the same seed tries the same schedules in the same order "
                          "(default: none, an open search that differs each time)")
    exp.add_argument("--out", default="reports", help="runs go to OUT/runs/explore-*, the report to OUT/explore")
    exp.set_defaults(func=cmd_explore)
    base = sub.add_parser("baseline", help="save a run's results (no histories) as the regression baseline")
    base.add_argument("run_dir", metavar="RUN_DIR")
    base.add_argument("more", nargs="*", metavar="MORE_RUN_DIR",
                      help="more runs of the same set: each metric's worst value over all the runs becomes the "
                           "baseline (envelope.json), for outcomes that vary from run to run")
    base.add_argument("--out", default="reports/baseline/fast", help="default reports/baseline/fast")
    base.add_argument("--replace", action="store_true",
                      help="replace a baseline even when RUN_DIR lacks some of its shop runs (they are dropped)")
    base.add_argument("--only", action="append", metavar="EXPERIMENT",
                      help="update only this experiment's shop runs (its matrix variants too) in the baseline "
                           "at --out, from RUN_DIR and MORE_RUN_DIRs; the others stay as they are (repeatable)")
    base.set_defaults(func=cmd_baseline)
    shp = sub.add_parser("shops", help="list the registered shops: built-in and plugins (docs/shops.md)")
    shp.set_defaults(func=cmd_shops)
    lst = sub.add_parser("list", help="list experiments with the claim each tests")
    lst.set_defaults(func=cmd_list)
    val = sub.add_parser("validate", help="check experiment files; exit 2 if any is invalid")
    val.add_argument("files", nargs="+")
    val.set_defaults(func=cmd_validate)
    return p


# Every option or argument that names a file or directory. They are made absolute here, where they
# enter the program, because service processes and containers run with another working directory.
PATH_ARGS = ("out", "run_dir", "baseline", "current", "tolerances", "json", "junit", "summary_md")


def absolute_paths(args: argparse.Namespace) -> argparse.Namespace:
    """`args` with every path option (PATH_ARGS) made absolute against the current directory, and
    experiment arguments that name an existing .toml file too (names stay names)."""
    for key in PATH_ARGS:
        value = getattr(args, key, None)
        if isinstance(value, str) and value:
            setattr(args, key, str(Path(value).resolve()))
    for key in ("experiments",):
        values = getattr(args, key, None)
        if values:
            setattr(args, key, [str(Path(v).resolve()) if v.endswith(".toml") else v for v in values])
    if getattr(args, "more", None):   # baseline's further run directories
        args.more = [str(Path(v).resolve()) for v in args.more]
    return args


def main(argv: list[str] | None = None) -> int:
    from harness.errors import ExperimentError
    from harness.infra.processes import install_signal_handlers

    args = absolute_paths(parser().parse_args(argv))
    for problem in PROBLEMS:   # a shop plugin left out: say so, then go on with the others
        error_line(f"chaoscafe: {problem}")
    install_signal_handlers()
    try:
        return int(args.func(args))
    except ExperimentError as exc:
        error_line(f"{exc}")
        return 2
    except KeyboardInterrupt:
        console.print("interrupted: everything started was stopped")
        return 130
    except Exception as exc:  # a clear line, not a traceback, for failures of the environment
        if os.environ.get("CHAOSCAFE_DEBUG"):
            raise
        error_line(f"chaoscafe {args.command}: {exc.__class__.__name__}: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
