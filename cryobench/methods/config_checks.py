"""Range checks and a memory bound for method configs, run when a config is made.

A ``--set`` value that is out of range (``sw_batch_size=0``, ``weight_decay=-1``,
``schedule=bogus``) or that would ask for absurd memory (``patch_size=100000``,
``channels=100000,100000``) is a :class:`~cryobench.errors.ConfigError` when the config is
built: before the runner writes anything, not minutes later inside training. Every config
dataclass lists its rules; :func:`check_config` reports every field that breaks one, with the
expected range, in one line.

The memory bound is a deliberately rough *upper* estimate (float32, activations kept for the
backward pass, Adam's two moments), compared with :data:`MAX_CONFIG_GIB`: it is a guard
against values off by orders of magnitude, not a prediction of a run's peak memory. The full
budgets of the built-in methods estimate at most about 20 GiB.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cryobench.errors import ConfigError

__all__ = [
    "MAX_CONFIG_GIB",
    "Rule",
    "check_config",
    "check_memory",
    "number",
    "integer",
    "one_of",
    "power_of_two",
    "int_tuple",
    "int_sequence",
    "float_tuple",
    "conv3d_bytes",
    "SCHEDULES",
    "PRECISIONS",
]

MAX_CONFIG_GIB = 64.0
"""Largest memory estimate (GiB) a config may ask for."""
SCHEDULES: tuple[str, ...] = ("cosine", "onecycle", "constant")
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16", "fp16")

Rule = tuple[Callable[[Any], bool], str]
"""A predicate on the field's value and the expected range in words."""

_BIG = 10**6


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _interval(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    left = "(" if lo_open or lo is None else "["
    right = ")" if hi_open or hi is None else "]"
    low = "-inf" if lo is None else f"{lo:g}"
    high = "inf" if hi is None else f"{hi:g}"
    return f"{left}{low}, {high}{right}"


def _in(v: float, lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> bool:
    if lo is not None and (v < lo or (lo_open and v == lo)):
        return False
    return not (hi is not None and (v > hi or (hi_open and v == hi)))


def number(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
           hi_open: bool = False) -> Rule:
    """A finite real number in the interval."""
    return (lambda v: _is_real(v) and _in(v, lo, hi, lo_open, hi_open),
            f"a number in {_interval(lo, hi, lo_open, hi_open)}")


def integer(lo: int | None = None, hi: int | None = None) -> Rule:
    """An integer in ``[lo, hi]``."""
    low = "-inf" if lo is None else str(lo)
    high = "inf" if hi is None else str(hi)
    return (lambda v: _is_int(v) and _in(v, lo, hi, False, False),
            f"an integer in [{low}, {high}]")


def one_of(*choices: Any) -> Rule:
    return (lambda v: v in choices, "one of " + ", ".join(map(str, choices)))


def power_of_two(hi: int = 64) -> Rule:
    return (lambda v: _is_int(v) and 1 <= v <= hi and not v & (v - 1),
            f"a power of two in [1, {hi}]")


def int_tuple(min_len: int, max_len: int, lo: int, hi: int) -> Rule:
    """A sequence of ``min_len..max_len`` integers, each in ``[lo, hi]``."""
    return (lambda v: isinstance(v, Sequence) and min_len <= len(v) <= max_len
            and all(_is_int(x) and lo <= x <= hi for x in v),
            f"{min_len}-{max_len} integers in [{lo}, {hi}]")


def float_tuple(min_len: int, max_len: int, lo: float, hi: float) -> Rule:
    """A sequence of ``min_len..max_len`` numbers, each in ``[lo, hi]``."""
    return (lambda v: isinstance(v, Sequence) and min_len <= len(v) <= max_len
            and all(_is_real(x) and lo <= x <= hi for x in v),
            f"{min_len}-{max_len} numbers in [{lo:g}, {hi:g}]")


def int_sequence(value: Any, key: str) -> tuple[int, ...]:
    """``value`` as a tuple of ints (``channels=16,32``); a ConfigError when it is not one."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ConfigError(f"invalid value for {key}={value!r} (expected a list of integers)")
    try:
        out = tuple(int(v) for v in value)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError(f"invalid value for {key}={value!r} (expected a list of integers)"
                          ) from None
    if any(isinstance(v, bool) or int(v) != v for v in value):
        raise ConfigError(f"invalid value for {key}={value!r} (expected a list of integers)")
    return out


def check_config(cfg: Any, rules: Mapping[str, Rule]) -> None:
    """Raise one :class:`~cryobench.errors.ConfigError` listing every field of ``cfg`` that
    breaks its rule."""
    bad = []
    for key, (ok, want) in rules.items():
        value = getattr(cfg, key)
        try:
            good = bool(ok(value))
        except (TypeError, ValueError, OverflowError):
            good = False
        if not good:
            shown = repr(value)
            bad.append(f"{key}={shown if len(shown) <= 40 else shown[:40] + '...'} "
                       f"(expected {want})")
    if bad:
        raise ConfigError("invalid value for " + "; ".join(bad))


def conv3d_bytes(channels: Sequence[int], edge: int, batch: int, *, training: bool) -> float:
    """Rough upper estimate of the memory (bytes) of a 3D encoder-decoder with ``channels``
    per level (each level halves the edge) on ``batch`` cubes of ``edge`` voxels: about 16
    float32 activations per voxel and channel while training (encoder, decoder, their
    gradients), 4 at inference, plus the weights (3^3 kernels, two convolutions per level in
    each path) with their gradient and Adam moments while training."""
    acts = sum(float(c) * (edge / 2**i) ** 3 for i, c in enumerate(channels)) * batch
    chans = [1, *channels]
    weights = sum(4 * 27.0 * chans[i] * chans[i + 1] for i in range(len(channels)))
    per_act = 16 if training else 4
    return 4.0 * (acts * per_act + weights * (4 if training else 1))


def check_memory(what: str, estimates: Mapping[str, float]) -> None:
    """Raise :class:`~cryobench.errors.ConfigError` if any estimate exceeds the bound."""
    for part, nbytes in estimates.items():
        gib = nbytes / 2**30
        if not math.isfinite(gib) or gib > MAX_CONFIG_GIB:
            raise ConfigError(f"{what} asks for about {_gib(gib)} GiB in {part} (rough upper "
                              f"estimate; the limit is {MAX_CONFIG_GIB:g} GiB): lower the sizes "
                              "that set it")


def _gib(x: float) -> str:
    return f"{x:.3g}" if x < _BIG else f"{x:.1e}"
