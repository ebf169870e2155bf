#!/usr/bin/env bash
# The RabbitMQ nodes' scheduler busy-wait (+sbwt none +sbwtdcpu none +sbwtdio none) on and off,
# alternating, three rounds each: the async shop's acceptance ceiling (benchmarks/shop_ceiling.py)
# on a private node. Run from the repository's root; writes sbwt-{default,none}-K.json here.
set -euo pipefail
cd "$(dirname "$0")/../../.."
out="$PWD/benchmarks/recorded/2026-12-02"
for k in 1 2 3; do
  for variant in default none; do
    python3 - "$variant" "$out/sbwt-$variant-$k.json" <<'PY'
import runpy, sys
import harness.infra.broker as broker
flags = " +sbwt none +sbwtdcpu none +sbwtdio none"
base = broker.NODE_ERL_ARGS.replace(flags, "")
broker.NODE_ERL_ARGS = base + (flags if sys.argv[1] == "none" else "")
print(f"{sys.argv[1]}: RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS={broker.NODE_ERL_ARGS!r}", flush=True)
sys.argv = ["shop_ceiling", "--shop", "async", "--rates", "300,400,500,600,700,800", "--step-s", "4",
            "--brew-limited-ms", "0", "--raw-broker-s", "0", "--json", sys.argv[2]]
runpy.run_module("benchmarks.shop_ceiling", run_name="__main__")
PY
  done
done
