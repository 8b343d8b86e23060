"""Picks tables: the CZII submission convention (``experiment, particle_type, x, y, z`` in Å).

Reading validates everything a scorer relies on and raises :class:`cryobench.errors.InputError`
naming the file and the first problem found.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from cryobench.errors import InputError
from cryobench.io.atomic import atomic_path
from cryobench.io.numbers import numeric_column

__all__ = ["PICKS_COLUMNS", "read_csv_table", "read_picks_csv", "validate_picks",
           "write_picks_csv"]

PICKS_COLUMNS: tuple[str, ...] = ("experiment", "particle_type", "x", "y", "z")
_ID_COLUMNS: tuple[str, ...] = ("experiment", "particle_type", "tomo_id")

MAX_CSV_MB = 1024
"""Largest CSV read, in MiB (``CRYOBENCH_MAX_CSV_MB`` changes it). Parsing takes about five
times the file's size in memory; a 1M-pick submission is about 60 MiB."""


def label_text(value: object) -> str:
    """The one label rule: experiment, particle type and tomo_id values are text, compared
    exactly after dropping outer whitespace (``"001"`` stays ``"001"``; ``" TS_1 "`` is
    ``"TS_1"``; the number 1 and the text ``"1"`` are the same label)."""
    return str(value).strip()


def _max_csv_bytes() -> int:
    raw = os.environ.get("CRYOBENCH_MAX_CSV_MB")
    try:
        mb = float(raw) if raw else MAX_CSV_MB
    except ValueError:
        mb = MAX_CSV_MB
    return int(mb * 2**20)


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
    size = p.stat().st_size
    if size == 0:
        raise InputError("file is empty", p)
    if size > _max_csv_bytes():
        raise InputError(f"file is {size / 2**20:.0f} MiB, above the {_max_csv_bytes() / 2**20:.0f}"
                         " MiB a CSV may have (parsing needs about five times that in memory; "
                         "set CRYOBENCH_MAX_CSV_MB to allow more)", p)
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
        if any(_MANGLED.search(str(c)) for c in df.columns):
            _check_header(p)
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


_MANGLED = re.compile(r"\.\d+$")
"""pandas renames a repeated header name ``x`` to ``x.1``, ``x.2``..."""


def _check_header(path: Path) -> None:
    """A header naming one column twice is an error (pandas would rename the second copy)."""
    header = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False)
    names = [str(c).strip() for c in header.iloc[0].tolist()] if len(header) else []
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputError(f"the header names column {name!r} twice", path)
        seen.add(name)


def _check_numeric(df: pd.DataFrame, cols: Iterable[str], source: str | None) -> pd.DataFrame:
    out = df.copy()
    for col in cols:
        out[col] = numeric_column(out, col, source)
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
        out[col] = out[col].astype(str).str.strip()  # label_text, vectorised
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
