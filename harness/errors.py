"""Every exception the harness raises on purpose, in one hierarchy (as httpx does).

    ChaoscafeError
    ├── InputError (ValueError)        input a user can fix; the CLI prints one line and exits 2
    │   ├── ExperimentError            a bad experiment file: `FILE: FIELD = VALUE: problem`
    │   ├── HistoryError               a history file that cannot be trusted (names file and line)
    │   ├── CompareError               result sets that cannot be compared
    │   └── MutantError                a bad mutants file (names file, mutant and problem)
    ├── InfraError (RuntimeError)      a real component failed; the run is an error, not a verdict
    │   ├── ProvisionError             a component is missing and cannot be installed
    │   ├── BrokerError                a RabbitMQ node could not be started, stopped or queried
    │   ├── ToxiproxyError             a Toxiproxy server or API call failed
    │   ├── ProcessError               a service replica could not be started or became unready
    │   ├── EngineError                the Docker engine cannot be reached or refused an operation
    │   └── ImageError                 an image could not be found or built
    └── NotApplicable                  a fault that has no meaning for a shop (reported, not skipped)

Pure: the modules that raise these import them from here; catching `ChaoscafeError` catches all.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any


class ChaoscafeError(Exception):
    """Base of every exception the harness raises on purpose."""


class InputError(ChaoscafeError, ValueError):
    """Input a user can fix: a file, a field, a value. str() is one line."""


class ExperimentError(InputError):
    """A bad experiment file. str() is one line: `FILE: FIELD = VALUE: problem`."""

    def __init__(self, path: Path | str, field: str, message: str, value: Any = None, has_value: bool = False) -> None:
        self.path, self.field, self.message, self.value = str(path), field, message, value
        where = f"{field} = {value!r}" if has_value else field
        super().__init__(f"{path}: {where}: {message}" if field else f"{path}: {message}")


class HistoryError(InputError):
    """A history file that cannot be trusted: a line that is not a JSON object, other than a
    truncated last line. Names the file and the line number."""


class CompareError(InputError):
    """A result set that cannot be compared (missing directory, no results, bad tolerance file)."""


class MutantError(InputError):
    """A mutants file that cannot be used: names the file, the mutant and what is wrong."""


class InfraError(ChaoscafeError, RuntimeError):
    """A real component (broker, proxy, process, engine) failed."""


class ProvisionError(InfraError):
    """A component is missing and cannot be installed; the message is one line."""


class BrokerError(InfraError):
    """The node could not be started, stopped or queried."""


class ToxiproxyError(InfraError):
    """A Toxiproxy server or API call failed."""


class ProcessError(InfraError):
    """A replica could not be started, became unready, or an operation was invalid."""


class EngineError(InfraError):
    """The Docker engine cannot be reached or refused an operation."""


class ImageError(InfraError):
    """An image could not be found or built."""


class NotApplicable(ChaoscafeError):
    """This fault has no meaning for this shop (e.g. the broker in the sync shop)."""
