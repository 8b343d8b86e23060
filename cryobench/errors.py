"""One exception type per failure family; the CLI catches :class:`CryobenchError` once.

Every error carries an optional ``path`` (the file, directory or object at fault) so the CLI can
print a single line ``error: <path>: <what is wrong>`` and exit with code 2.
"""

from __future__ import annotations

import os

__all__ = [
    "CryobenchError",
    "InputError",
    "DataError",
    "DataUnavailableError",
    "ConfigError",
    "MethodError",
    "ResultsError",
]


class CryobenchError(Exception):
    """Base class for errors caused by user input rather than by a bug."""

    def __init__(self, message: str, path: str | os.PathLike[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = None if path is None else str(path)

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class InputError(CryobenchError):
    """A malformed input file: CSV, JSON, TOML (bad columns, NaN coordinates, unknown types...)."""


class DataError(CryobenchError):
    """A problem in a copick project: bad config, unknown run, missing tomogram, corrupt zarr."""


class DataUnavailableError(DataError):
    """A data set that must be obtained by the user first (e.g. the real CZII training data)."""


class ConfigError(CryobenchError):
    """A bad option: unknown split, unknown ``--set`` key, value of the wrong type."""


class MethodError(CryobenchError):
    """An unknown method, a method whose extra is not installed, or an unsupported task."""


class ResultsError(CryobenchError):
    """A missing, corrupt or inconsistent run record or results directory."""
