"""The config contract of a method: typed values, one unknown-key / type / range check.

A method's config is a dataclass whose fields carry the types (``int``, ``float``, ``bool``,
``str``, ``X | None``, ``Literal[...]``, tuples and lists) and, optionally, ranges as
``Annotated[int, Range(1, 512)]``. :func:`check_values` is the one check every config value goes
through (budget defaults, ``--set`` overrides, a saved ``method.json``), with one error wording;
:func:`parse_assignments` turns ``--set key=value`` strings into typed values first.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from cryobench.errors import ConfigError

__all__ = ["Range", "field_types", "field_ranges", "field_docs", "coerce", "check_values",
           "parse_assignments", "validate_overrides"]

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_NONE = {"none", "null"}


@dataclasses.dataclass(frozen=True)
class Range:
    """Bounds of a numeric config field, used as ``Annotated[int, Range(1, 512)]``.

    ``low``/``high`` are inclusive (None: unbounded); for a tuple or list field they bound every
    item.
    """

    low: float | None = None
    high: float | None = None

    def check(self, value: Any) -> str | None:
        """Why ``value`` is out of range, or None."""
        items = value if isinstance(value, (list, tuple)) else [value]
        for v in items:
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                continue
            if (self.low is not None and v < self.low) or (self.high is not None
                                                              and v > self.high):
                lo = "-inf" if self.low is None else f"{self.low:g}"
                hi = "inf" if self.high is None else f"{self.high:g}"
                return f"must be in [{lo}, {hi}], got {value!r}"
        return None


def _hints(config_cls: type, extras: bool) -> dict[str, Any]:
    try:
        return typing.get_type_hints(config_cls, include_extras=extras)
    except Exception:  # unresolvable annotations: fall back to the raw ones
        return {}


def field_types(config_cls: type) -> dict[str, Any]:
    """``field name -> resolved type`` of a config dataclass (``Annotated`` stripped)."""
    hints = _hints(config_cls, False)
    return {f.name: hints.get(f.name, f.type) for f in dataclasses.fields(config_cls)}


def field_ranges(config_cls: type) -> dict[str, Range]:
    """``field name -> Range`` for the fields annotated with one."""
    out: dict[str, Range] = {}
    for name, tp in _hints(config_cls, True).items():
        if typing.get_origin(tp) is typing.Annotated:
            for meta in typing.get_args(tp)[1:]:
                if isinstance(meta, Range):
                    out[name] = meta
    return out


def _type_label(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _split_sequence(text: str) -> list[str]:
    s = text.strip()
    if s.startswith(("[", "(")) and s.endswith(("]", ")")):
        s = s[1:-1]
    return [p.strip() for p in s.split(",") if p.strip()] if s.strip() else []


def coerce(tp: Any, value: Any, key: str = "value") -> Any:
    """Convert ``value`` (a string from the command line, or a Python value) to type ``tp``.

    Supports ``int``, ``float``, ``bool``, ``str``, ``X | None``, ``Literal[...]``,
    ``tuple[X, ...]``, ``tuple[X, Y]`` and ``list[X]`` (strings as ``a,b,c`` or ``[a, b]``).
    Raises :class:`ValueError` with a short reason when the value does not fit.
    """
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any or tp is object:
        return value
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and (value is None or
                                   (isinstance(value, str) and value.strip().lower() in _NONE)):
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(arg, value, key)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError(f"expected {_type_label(tp)}, got {value!r}")
    if origin is typing.Literal:
        for choice in args:
            if value == choice or (isinstance(value, str) and str(choice) == value.strip()):
                return choice
        raise ValueError(f"expected one of {', '.join(map(repr, args))}, got {value!r}")
    if origin in (tuple, list):
        items = _split_sequence(value) if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise ValueError(f"expected a sequence, got {value!r}")
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(items) != len(args):
                raise ValueError(f"expected {len(args)} values, got {len(items)}")
            return tuple(coerce(a, v, key) for a, v in zip(args, items, strict=True))
        item_tp = args[0] if args else Any
        out = [coerce(item_tp, v, key) for v in items]
        return tuple(out) if origin is tuple else out
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError(f"expected a boolean (true/false), got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ValueError(f"expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise ValueError(f"expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        if isinstance(value, (int, float)):
            out = float(value)
        elif isinstance(value, str):
            try:
                out = float(value.strip())
            except ValueError:
                raise ValueError(f"expected a number, got {value!r}") from None
        else:
            raise ValueError(f"expected a number, got {value!r}")
        if not math.isfinite(out):
            raise ValueError(f"expected a finite number, got {value!r}")
        return out
    if tp is str:
        if isinstance(value, str):
            return value
        raise ValueError(f"expected a string, got {value!r}")
    if origin is dict or tp is dict:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise ValueError(f"expected a JSON object, got {value!r}") from None
        if isinstance(value, Mapping):
            return dict(value)
        raise ValueError(f"expected a mapping, got {value!r}")
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise ValueError(f"cannot set a field of type {_type_label(tp)} from {value!r}")


def field_docs(config_cls: type) -> dict[str, str]:
    """``field name -> docstring`` (the string literal under a field, PEP 257 attribute
    docstrings), read from the source of the config class and its dataclass bases; fields
    without one are absent."""
    import ast
    import inspect
    import textwrap

    docs: dict[str, str] = {}
    for klass in reversed(config_cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for stmt, nxt in zip(body, body[1:], strict=False):
            if (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
                    and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                    and isinstance(nxt.value.value, str)):
                docs[stmt.target.id] = " ".join(nxt.value.value.split())
    return docs


def _known(config_cls: type) -> str:
    return ", ".join(sorted(f.name for f in dataclasses.fields(config_cls)))


def _unknown_key(config_cls: type, key: str, method: str) -> ConfigError:
    names = [f.name for f in dataclasses.fields(config_cls)]
    close = difflib.get_close_matches(key, names, n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}?" if close else f"known: {_known(config_cls)}"
    return ConfigError(f"method {method!r} has no config key {key!r}; {hint}")


def _bad_value(method: str, key: str, why: str, tp: Any) -> ConfigError:
    return ConfigError(f"method {method!r}, config key {key!r}: {why} ({_type_label(tp)})")


def check_values(config_cls: type, values: Mapping[str, Any], method: str = "method", *,
                 convert: bool = False) -> dict[str, Any]:
    """The one check of config values: known keys, the field's type (``Literal`` choices
    included) and its :class:`Range`.

    With ``convert`` the values are converted to the field types (strings from the command
    line); otherwise they are only checked and returned as given, so that a config's hash does
    not depend on whether ``1`` or ``1.0`` was written.

    Raises:
        ConfigError: an unknown key (with close matches), a value of the wrong type or out of
            range, worded the same way for every source of values.
    """
    types_ = field_types(config_cls)
    ranges = field_ranges(config_cls)
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key not in types_:
            raise _unknown_key(config_cls, key, method)
        try:
            typed = coerce(types_[key], value, key)
        except ValueError as exc:
            raise _bad_value(method, key, str(exc), types_[key]) from None
        rng = ranges.get(key)
        problem = rng.check(typed) if rng is not None else None
        if problem:
            raise _bad_value(method, key, problem, types_[key])
        out[key] = typed if convert or isinstance(value, str) else value
    return out


def validate_overrides(config_cls: type, values: Mapping[str, Any],
                       method: str = "method") -> dict[str, Any]:
    """Check keys against the config dataclass and convert each value to its field's type
    (:func:`check_values` with ``convert``).

    Raises:
        ConfigError: an unknown key or a value of the wrong type or range.
    """
    return check_values(config_cls, values, method, convert=True)


def parse_assignments(config_cls: type, assignments: Iterable[str],
                      method: str = "method") -> dict[str, Any]:
    """Parse ``["key=value", ...]`` into typed overrides (the last of repeated keys wins)."""
    raw: dict[str, str] = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {item!r}")
        raw[key.strip()] = value
    return validate_overrides(config_cls, raw, method)
