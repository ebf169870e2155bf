"""How long a private RabbitMQ cluster (three nodes, or five) takes to form, with the peer-discovery retries
harness/infra/cluster.py sets (or others given here), a few rounds in a row.

Each round boots a fresh `RabbitCluster` (three members at once, `classic_config` discovery) and
times `start()`: until every member runs, answers its management API and lists the others as
running. Then it counts how many members started the cluster themselves ("fresh": their log names
no peer selected for auto-clustering); more than one would be two clusters, which `start()` would
not accept anyway. Everything it starts is stopped at the end of its round, also on Ctrl-C.

Run: python -m benchmarks.cluster_boot [--rounds 3] [--retries R --interval-ms I] [--json FILE]
Exit codes: 0 every round formed; 1 a round failed; 2 bad arguments; 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from harness.errors import BrokerError
from harness.infra import cluster as cluster_mod
from harness.infra.cluster import RabbitCluster


def _fresh_members(cluster: RabbitCluster) -> int:
    """Members that started the cluster themselves: those whose log names no peer "selected for
    auto-clustering" (the ones that joined one do)."""
    joined = 0
    for member in cluster.members:
        logs = list((member.base_dir / "log").glob("*@localhost.log"))
        if any("selected for auto-clustering" in log.read_text(errors="replace") for log in logs):
            joined += 1
    return len(cluster.members) - joined


def boot_once(size: int, retries: int, interval_ms: int) -> dict[str, Any]:
    """Boot one cluster of `size` in a temporary directory: {"boot_s", "fresh", "running"}."""
    with tempfile.TemporaryDirectory(prefix="chaoscafe-cluster-boot-") as tmp:
        cluster = RabbitCluster(Path(tmp) / "cluster", size=size, discovery_retries=retries,
                                discovery_interval_ms=interval_ms)
        try:
            cluster.start()
            return {"boot_s": cluster.started_after_s, "fresh": _fresh_members(cluster),
                    "running": len(cluster.running())}
        finally:
            cluster.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cluster_boot", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=3, choices=(3, 5))
    parser.add_argument("--retries", type=int, default=cluster_mod.DISCOVERY_RETRIES,
                        help=f"cluster_formation.discovery_retry_limit (default {cluster_mod.DISCOVERY_RETRIES}; RabbitMQ's own: 10)")
    parser.add_argument("--interval-ms", type=int, default=cluster_mod.DISCOVERY_RETRY_INTERVAL_MS,
                        help=f"cluster_formation.discovery_retry_interval (default {cluster_mod.DISCOVERY_RETRY_INTERVAL_MS}; RabbitMQ's own: 500)")
    parser.add_argument("--json", type=Path, help="write the rounds here too")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.retries < 0 or args.interval_ms < 1:
        parser.error(f"--rounds {args.rounds}, --retries {args.retries}, --interval-ms {args.interval_ms}: "
                     "need rounds >= 1, retries >= 0, interval >= 1 ms")
    rounds: list[dict[str, Any]] = []
    failed = 0
    try:
        for k in range(1, args.rounds + 1):
            try:
                row = boot_once(args.size, args.retries, args.interval_ms)
            except BrokerError as exc:
                failed += 1
                row = {"error": str(exc).splitlines()[0]}
            rounds.append(row)
            print(f"round {k}: " + (f"formed in {row['boot_s']} s, {row['running']} running, {row['fresh']} started it"
                                    if "error" not in row else f"FAILED: {row['error']}"), flush=True)
    except KeyboardInterrupt:
        print("interrupted: every cluster started is stopped", file=sys.stderr)
        return 130
    times = [r["boot_s"] for r in rounds if "boot_s" in r]
    if times:
        print(f"{args.size} nodes, discovery retries {args.retries} x {args.interval_ms} ms: "
              f"{min(times):.1f}-{max(times):.1f} s (median {statistics.median(times):.1f}) over {len(times)} rounds")
    if args.json is not None:
        args.json.write_text(json.dumps({"size": args.size, "retries": args.retries,
                                         "interval_ms": args.interval_ms, "rounds": rounds}, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
