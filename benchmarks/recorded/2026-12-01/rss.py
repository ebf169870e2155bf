"""Run a command and sample its process's resident memory (VmRSS) every 0.25 s.

Prints the peak (MiB and MB) and writes the samples (seconds since start, KiB) to
$RSS_TSV (default: rss.tsv in the system's temporary directory). Used for docs/performance.md's "Memory of a 50,000-order run".
Run: python rss.py COMMAND [ARGS...]
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    proc = subprocess.Popen(argv)
    started, peak, samples = time.monotonic(), 0, []
    while proc.poll() is None:
        try:
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    kib = int(line.split()[1])
                    samples.append((time.monotonic() - started, kib))
                    peak = max(peak, kib)
        except OSError:
            pass
        time.sleep(0.25)
    out = Path(os.environ.get("RSS_TSV") or Path(tempfile.gettempdir()) / "rss.tsv")
    out.write_text("".join(f"{t:.2f}\t{kib}\n" for t, kib in samples))
    print(f"rc={proc.returncode} peak VmRSS {peak / 1024:.1f} MiB = {peak * 1024 / 1e6:.1f} MB "
          f"over {time.monotonic() - started:.0f} s; samples: {out}", flush=True)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
