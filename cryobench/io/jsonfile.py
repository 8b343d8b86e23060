"""Reading JSON a user hands us: every way it can be bad is one cryobench error naming the file.

Besides malformed JSON this refuses what Python's parser accepts but breaks later: ``NaN`` /
``Infinity`` and numbers that overflow a float (``1e400`` would become ``inf``), integers of
more than 4300 digits (Python refuses to convert them), and nesting deeper than
:data:`MAX_DEPTH` levels (the parser and pydantic recurse; ``[[[[...]]]]`` 1000 deep raises a
``RecursionError``).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from cryobench.errors import CryobenchError, InputError

__all__ = ["MAX_DEPTH", "read_json", "parse_json"]

MAX_DEPTH = 64
"""Deepest nesting of arrays and objects accepted (cryobench's own files need less than 8)."""


class _Refused(ValueError):
    pass


def _constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"number {text[:40]} is out of range")
    return value


def _depth_problem(value: Any) -> str | None:
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, (dict, list)):
            if depth > MAX_DEPTH:
                return f"nested deeper than {MAX_DEPTH} levels"
            children = v.values() if isinstance(v, dict) else v
            stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return None


def parse_json(text: str, source: str | os.PathLike[str] | None = None, what: str = "JSON", *,
               error: type[CryobenchError] = InputError) -> Any:
    """Parse ``text``; :class:`~cryobench.errors.CryobenchError` ``error`` on any problem."""
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_float)
    except json.JSONDecodeError as exc:
        raise error(f"invalid JSON in {what} (line {exc.lineno}: {exc.msg})", source) from None
    except RecursionError:
        raise error(f"invalid JSON in {what}: nested too deeply", source) from None
    except ValueError as exc:  # _Refused, or an integer of more than 4300 digits
        first = str(exc).split(";")[0].strip()
        raise error(f"invalid JSON in {what}: {first}", source) from None
    problem = _depth_problem(value)
    if problem:
        raise error(f"invalid JSON in {what}: {problem}", source)
    return value


def read_json(path: str | os.PathLike[str], what: str = "JSON", *,
              error: type[CryobenchError] = InputError) -> Any:
    """Read and parse a JSON file (see :func:`parse_json`); a missing, unreadable or
    non-UTF-8 file is an ``error`` too."""
    p = Path(path)
    if not p.exists():
        raise error(f"{what} not found", p)
    if p.is_dir():
        raise error(f"is a directory, expected a {what} file", p)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise error(f"cannot read {what}: not UTF-8 text", p) from None
    except OSError as exc:
        raise error(f"cannot read {what} ({exc.strerror or exc})", p) from None
    return parse_json(text, p, what, error=error)
