"""Where this checkout's files are: the repository root, the services' programs and their library."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def systems_dir() -> Path:
    """Where the services' programs live: $CHAOSCAFE_SYSTEMS or `systems/` of this checkout (a folder
    per shop, systems/<shop>/<program>.py)."""
    path = Path(os.environ.get("CHAOSCAFE_SYSTEMS", REPO_ROOT / "systems"))
    if not any(path.glob("*/*.py")):
        raise FileNotFoundError(
            f"service programs not found in {path}: install chaoscafe in editable mode (pip install -e .)"
            " from a checkout, or set CHAOSCAFE_SYSTEMS to its systems/ folder")
    return path


def services_pythonpath() -> str:
    """The PYTHONPATH of a service process: $CHAOSCAFE_LIBRARY first when set (a folder holding a
    `cafe` package imported instead of the checkout's: the mutants' patched copy), then this
    checkout's root, then the caller's own PYTHONPATH."""
    return os.pathsep.join(filter(None, [os.environ.get("CHAOSCAFE_LIBRARY"), str(REPO_ROOT),
                                         os.environ.get("PYTHONPATH")]))
