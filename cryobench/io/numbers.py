"""Numeric columns of user tables: finite, in range, and really numbers.

One rule for every coordinate column cryobench reads (picks in Å, BYU motors in voxels, label
files of the importers), also in docs/data.md: a value must parse as a number (``True`` /
``False`` do not), be finite (``nan``, ``inf``, ``1e400`` and a 400-digit integer, which
overflows to ``inf``, are refused) and have a magnitude of at most :data:`MAX_COORDINATE`
(distances between larger numbers overflow a KD-tree's squared distances near 1e155). A voxel
spacing must lie in ``(0, MAX_VOXEL_SPACING]`` Å. Every refusal names the column and the
1-based data row (the header is not counted).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from cryobench.errors import CryobenchError, InputError

__all__ = ["MAX_COORDINATE", "MAX_VOXEL_SPACING", "numeric_column", "check_voxel_spacing"]

MAX_COORDINATE = 1e9
"""Largest magnitude of a coordinate (Å or voxels): 10 cm in Å, far beyond any tomogram."""
MAX_VOXEL_SPACING = 1e4
"""Largest voxel spacing accepted, in Å (1 µm per voxel)."""


def numeric_column(df: pd.DataFrame, col: str, source: str | os.PathLike[str] | None, *,
                   bound: float = MAX_COORDINATE, allow_missing: bool = False,
                   error: type[CryobenchError] = InputError) -> np.ndarray:
    """Column ``col`` of ``df`` as float64, checked by the module's rule.

    ``allow_missing``: empty cells become NaN instead of an error.
    """
    src = None if source is None else str(source)
    raw = df[col]
    if pd.api.types.is_bool_dtype(raw.dtype):
        raise error(f"column {col!r} holds True/False values, not numbers (data row 1)", src)
    try:
        values = pd.to_numeric(raw, errors="coerce")
    except OverflowError:  # Python ints beyond the float range (a 400-digit integer)
        values = pd.Series([_to_float(v) for v in raw], index=raw.index, dtype=np.float64)
    present = raw.notna().to_numpy()
    bad = values.isna().to_numpy() & present
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise error(f"column {col!r} has a non-numeric value {_short(raw.iloc[row])} "
                    f"(data row {row + 1})", src)
    if not allow_missing and not present.all():
        row = int(np.flatnonzero(~present)[0])
        raise error(f"column {col!r} has an empty, NaN or infinite value (data row {row + 1})",
                    src)
    if raw.dtype == object:  # Python bools among numbers (a DataFrame built in code)
        is_bool = raw.map(lambda v: isinstance(v, (bool, np.bool_))).to_numpy(dtype=bool)
        if is_bool.any():
            row = int(np.flatnonzero(is_bool)[0])
            raise error(f"column {col!r} holds True/False values, not numbers (data row "
                        f"{row + 1})", src)
    arr = values.to_numpy(dtype=np.float64)
    check = arr[present]
    nonfinite = ~np.isfinite(arr) & present
    if nonfinite.any():
        row = int(np.flatnonzero(nonfinite)[0])
        text = str(raw.iloc[row]).strip().lower().lstrip("+-")
        beyond = "" if text in ("inf", "infinity", "nan") else " (beyond the float range)"
        raise error(f"column {col!r} has a NaN or infinite value {_short(raw.iloc[row])}"
                    f"{beyond} (data row {row + 1})", src)
    if check.size and np.abs(check).max() > bound:
        row = int(np.flatnonzero(present & (np.abs(np.nan_to_num(arr)) > bound))[0])
        raise error(f"column {col!r} has a value {_short(raw.iloc[row])} out of range "
                    f"(|value| <= {bound:g}; data row {row + 1})", src)
    return arr


def check_voxel_spacing(value: float, source: str | os.PathLike[str] | None, where: str = "",
                        error: type[CryobenchError] = InputError) -> float:
    """``value`` if it is a voxel spacing in ``(0, MAX_VOXEL_SPACING]`` Å, else ``error``."""
    ok = isinstance(value, (int, float, np.number)) and not isinstance(value, (bool, np.bool_))
    if not ok or not np.isfinite(value) or not 0 < value <= MAX_VOXEL_SPACING:
        raise error(f"voxel spacing {_short(value)} must be in (0, {MAX_VOXEL_SPACING:g}] Å"
                    f"{where}", None if source is None else str(source))
    return float(value)


def _to_float(v: object) -> float:
    try:
        return float(v)  # type: ignore[arg-type]
    except OverflowError:
        return float("inf")
    except (TypeError, ValueError):
        return float("nan")


def _short(v: object, n: int = 24) -> str:
    text = repr(v.item() if isinstance(v, np.generic) else v)
    return text if len(text) <= n else text[:n] + "...'"
