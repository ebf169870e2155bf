#!/bin/bash
# BEFORE: a tree of 0254cd3^ (mkdir B && git archive 0254cd3^ | tar -x -C B); AFTER: this checkout; both absolute
set -euo pipefail
: "${BEFORE:?set BEFORE to the absolute path of a 0254cd3^ tree}" "${AFTER:?set AFTER to this checkout (absolute)}"
OUT=${OUT:-/tmp/ba4}
mkdir -p "$OUT"
SRATES=200,300,400,500,600,700,800,900,1000,1200,1500,2000
for round in 1 2; do
echo "$(date +%T) shops before $round"; (cd $BEFORE && PYTHONPATH=$BEFORE python -m benchmarks.shop_ceiling --shop both --rates $SRATES --step-s 4 --brew-ms 0 --brew-limited-ms 0 --paused-baristas-run --json $OUT/before-shops-$round.json --run-dir $OUT/runs/bs$round) > $OUT/before-shops-$round.log 2>&1
echo "$(date +%T) shops after $round"; (cd $AFTER && python -m benchmarks.shop_ceiling --shop both --rates $SRATES --step-s 4 --brew-ms 0 --brew-limited-ms 0 --paused-baristas-run --json $OUT/after-shops-$round.json --run-dir $OUT/runs/as$round) > $OUT/after-shops-$round.log 2>&1
done
echo "$(date +%T) gen before"; (cd $BEFORE && PYTHONPATH=$BEFORE python -m benchmarks.generator_ceiling --rates 1200,1600,2000,2400,2800,3200,4000,5000,6000,8000,10000,12000,16000 --json $OUT/before-generator.json --run-dir $OUT/runs/bg) > $OUT/before-generator.log 2>&1
echo "$(date +%T) gen after"; (cd $AFTER && python -m benchmarks.generator_ceiling --rates 1200,1600,2000,2400,2800,3200,4000,5000,6000,8000,10000,12000,16000 --generator-workers 1 --json $OUT/after-generator.json --run-dir $OUT/runs/ag) > $OUT/after-generator.log 2>&1
echo "$(date +%T) reference 5 ms"; (cd $AFTER && python -m benchmarks.generator_reference --rate 500 --step-s 10 --rounds 3 --delay-ms 5 --json $OUT/reference-5ms.json --run-dir $OUT/runs/r5) > $OUT/reference-5ms.log 2>&1
echo "$(date +%T) reference 0 ms"; (cd $AFTER && python -m benchmarks.generator_reference --rate 500 --step-s 10 --rounds 3 --json $OUT/reference-0ms.json --run-dir $OUT/runs/r0) > $OUT/reference-0ms.log 2>&1
echo "$(date +%T) done"
