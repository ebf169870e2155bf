"""Where a result came from: project version and commit, Python and library versions, host."""
from __future__ import annotations

import os
import platform
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from harness import __version__

ROOT = Path(__file__).resolve().parents[2]


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=False)
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def provenance(**components: str | None) -> dict[str, Any]:
    """Versions and host facts; `components` adds e.g. rabbitmq=..., toxiproxy=... measured by the run."""
    return {
        "chaoscafe": __version__,
        "commit": git_commit(),
        "python": platform.python_version(),
        "pika": _version("pika"),
        "aiohttp": _version("aiohttp"),
        **components,
        "host": platform.node(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
