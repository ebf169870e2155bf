"""Loading experiment files: TOML -> Experiment, or one ExperimentError naming file, field and value."""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.errors import ExperimentError
from harness.experiment.model import Experiment


def _field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _message(error: Any) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "missing"
    text = str(error["msg"])
    return text.removeprefix("Value error, ")


def from_dict(data: dict[str, Any], path: Path | str = "<experiment>") -> Experiment:
    try:
        return Experiment.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        # an unknown key first: a misspelt `rat` also makes `rate` missing, and the cause is the key
        error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
        value = error.get("input")
        has_value = error["type"] != "missing" and not isinstance(value, dict)
        loc, message = tuple(error["loc"]), _message(error)
        if "[key]" in loc:  # a dict key that is not allowed (e.g. a system name under [expect])
            loc = tuple(p for p in loc if p != "[key]")
            message, has_value = f"unknown key ({message.replace('Input should be', 'expected')})", False
        raise ExperimentError(path, _field_path(loc), message, value, has_value) from None


def load_experiment(path: Path | str) -> Experiment:
    """Read and validate one experiment file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ExperimentError(path, "", f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ExperimentError(path, "", "not UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ExperimentError(path, "", f"not valid TOML: {exc}") from None
    return from_dict(data, path)


def expand(name: str, experiment: Experiment, path: Path | str = "<experiment>") -> list[tuple[str, Experiment]]:
    """The runs an experiment file stands for: itself, or one variant per column of its [matrix],
    named `NAME@field=value` (e.g. `scale-out@baristas=2`). ExperimentError for a bad variant."""
    try:
        return [(name + suffix, variant) for suffix, variant in experiment.variants()]
    except ValueError as exc:
        raise ExperimentError(path, "matrix", str(exc)) from None


def experiment_name(path: Path | str) -> str:
    return Path(path).stem


def discover(directory: Path | str) -> list[Path]:
    """Experiment files in a directory, sorted by name."""
    return sorted(Path(directory).glob("*.toml"))
