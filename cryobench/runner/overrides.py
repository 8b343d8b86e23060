"""Typed config overrides: ``--set key=value`` strings parsed with the config dataclass's types."""

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

__all__ = ["field_types", "coerce", "parse_assignments", "validate_overrides"]

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}
_NONE = {"none", "null"}


def field_types(config_cls: type) -> dict[str, Any]:
    """``field name -> resolved type`` of a config dataclass."""
    try:
        hints = typing.get_type_hints(config_cls)
    except Exception:  # unresolvable annotations: fall back to the raw ones
        hints = {}
    return {f.name: hints.get(f.name, f.type) for f in dataclasses.fields(config_cls)}


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


def _known(config_cls: type) -> str:
    return ", ".join(sorted(f.name for f in dataclasses.fields(config_cls)))


def validate_overrides(config_cls: type, values: Mapping[str, Any],
                       method: str = "method") -> dict[str, Any]:
    """Check keys against the config dataclass and coerce each value to its field's type.

    Raises:
        ConfigError: an unknown key or a value of the wrong type.
    """
    types_ = field_types(config_cls)
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key not in types_:
            close = difflib.get_close_matches(key, list(types_), n=3, cutoff=0.6)
            hint = (f"did you mean {', '.join(close)}?" if close
                    else f"known: {_known(config_cls)}")
            raise ConfigError(f"method {method!r} has no config key {key!r}; {hint}")
        try:
            out[key] = coerce(types_[key], value, key)
        except ValueError as exc:
            raise ConfigError(f"--set {key}: {exc} ({_type_label(types_[key])})") from None
    return out


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
