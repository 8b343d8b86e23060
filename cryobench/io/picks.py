"""Picks tables: the CZII submission convention (``experiment, particle_type, x, y, z`` in Å).

Reading validates everything a scorer relies on and raises :class:`cryobench.errors.InputError`
naming the file and the first problem found.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from cryobench.errors import InputError
from cryobench.io.atomic import atomic_path

__all__ = ["PICKS_COLUMNS", "read_csv_table", "read_picks_csv", "validate_picks",
           "write_picks_csv"]

PICKS_COLUMNS: tuple[str, ...] = ("experiment", "particle_type", "x", "y", "z")
_ID_COLUMNS: tuple[str, ...] = ("experiment", "particle_type", "tomo_id")


def read_csv_table(
    path: str | os.PathLike[str], usecols: Iterable[str] | None = None
) -> pd.DataFrame:
    """Read a CSV with pandas, turning every I/O or parse failure into one :class:`InputError`.

    ``usecols``: read only these columns (names compared after stripping spaces); columns
    that are absent are simply not read, so validation can name them. This saves memory on
    wide files but is not faster: pandas 3 parses a whole file on two threads and a
    ``usecols`` read on one.
    """
    p = Path(path)
    if not p.exists():
        raise InputError("file not found", p)
    if p.is_dir():
        raise InputError("is a directory, expected a CSV file", p)
    if p.stat().st_size == 0:
        raise InputError("file is empty", p)
    try:
        wanted = None if usecols is None else {str(c).strip() for c in usecols}
        cols = None if wanted is None else (lambda c: str(c).strip() in wanted)
        df = pd.read_csv(p, usecols=cols)
        if not df.index.equals(pd.RangeIndex(len(df))):
            # pandas turns the leading fields into a row index when every data row has more
            # fields than the header: the columns would be shifted silently. (A leading
            # field counting 0, 1, 2, ... gives the default index and leaves the columns
            # where the header puts them.)
            raise InputError(
                f"malformed CSV (the data rows have {df.index.nlevels} more field(s) than "
                f"the header's {len(df.columns)} column(s))", p)
        # identifier columns are text even when they look like numbers ("001" stays "001");
        # reading them as text only when inference made them something else is much faster
        # than forcing dtype=str on every read (same result).
        ids = [c for c in _ID_COLUMNS if c in df.columns
               and not pd.api.types.is_string_dtype(df[c])]
        if ids:
            text = pd.read_csv(p, usecols=ids, dtype=dict.fromkeys(ids, str))
            for c in ids:
                df[c] = text[c]
    except pd.errors.EmptyDataError:
        raise InputError("file is empty", p) from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"malformed CSV ({first})", p) from None
    df.columns = [str(c).strip() for c in df.columns]
    return df


def _check_numeric(df: pd.DataFrame, cols: Iterable[str], source: str | None) -> pd.DataFrame:
    out = df.copy()
    for col in cols:
        values = pd.to_numeric(out[col], errors="coerce")
        bad = values.isna() & out[col].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(
                f"column {col!r} has a non-numeric value {out[col].iloc[row]!r} "
                f"(data row {row + 1})",
                source,
            )
        arr = values.to_numpy(dtype=np.float64)
        nonfinite = ~np.isfinite(arr)
        if nonfinite.any():
            row = int(np.flatnonzero(nonfinite)[0])
            raise InputError(f"column {col!r} has a NaN or infinite value (data row {row + 1})",
                             source)
        out[col] = arr
    return out


def validate_picks(
    df: pd.DataFrame,
    source: str | os.PathLike[str] | None = None,
    known_types: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Check a picks table and return a clean copy (string ids, float64 coordinates).

    Args:
        df: table with at least ``experiment, particle_type, x, y, z``; optional ``score``, ``id``.
        source: file name used in error messages.
        known_types: if given, any other ``particle_type`` is an error.
    """
    src = None if source is None else str(source)
    missing = [c for c in PICKS_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(
            f"missing column(s) {', '.join(missing)}; expected {', '.join(PICKS_COLUMNS)}", src
        )
    numeric = ["x", "y", "z"] + (["score"] if "score" in df.columns else [])
    out = _check_numeric(df, numeric, src)
    for col in ("experiment", "particle_type"):
        if out[col].isna().any():
            row = int(np.flatnonzero(out[col].isna().to_numpy())[0])
            raise InputError(f"column {col!r} is empty in data row {row + 1}", src)
        out[col] = out[col].astype(str).str.strip()
    if known_types is not None:
        known = set(known_types)
        unknown = sorted(set(out["particle_type"].unique()) - known)
        if unknown:
            raise InputError(
                f"unknown particle type(s) {', '.join(map(repr, unknown))}; "
                f"known: {', '.join(sorted(known))}",
                src,
            )
    return out


def read_picks_csv(
    path: str | os.PathLike[str], known_types: Iterable[str] | None = None
) -> pd.DataFrame:
    """Read and validate a CZII-style picks CSV."""
    return validate_picks(read_csv_table(path), path, known_types)


def write_picks_csv(df: pd.DataFrame, path: str | os.PathLike[str], with_id: bool = True) -> None:
    """Write picks as a CZII submission CSV (``id`` column first), atomically; ``score`` and
    the orientation columns (:data:`cryobench.coords.ROTATION_COLUMNS`) are kept when present."""
    from cryobench.coords import ROTATION_COLUMNS, has_rotations

    cols = list(PICKS_COLUMNS) + (["score"] if "score" in df.columns else [])
    if has_rotations(df):
        cols += list(ROTATION_COLUMNS)
    out = df[cols].reset_index(drop=True)
    if with_id:
        out.insert(0, "id", np.arange(len(out)))
    with atomic_path(path) as tmp:
        out.to_csv(tmp, index=False)
