"""BYU motor tables (Kaggle "BYU - Locating Bacterial Flagellar Motors 2025").

Submission: ``tomo_id, Motor axis 0, Motor axis 1, Motor axis 2`` (voxels, z/y/x; -1 = no
motor). Solution: the same plus ``Voxel spacing`` (Å) and usually ``Has motor``.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from cryobench.errors import InputError
from cryobench.io.numbers import check_voxel_spacing, numeric_column
from cryobench.io.picks import read_csv_table

__all__ = ["BYU_AXES", "BYU_SUBMISSION_COLUMNS", "validate_byu", "read_byu_csv", "picks_to_byu",
           "motor_absent"]

BYU_AXES: tuple[str, ...] = ("Motor axis 0", "Motor axis 1", "Motor axis 2")
BYU_SUBMISSION_COLUMNS: tuple[str, ...] = ("tomo_id", *BYU_AXES)


def _numeric(df: pd.DataFrame, col: str, source: str | None) -> np.ndarray:
    return numeric_column(df, col, source)


def validate_byu(df: pd.DataFrame, source: str | os.PathLike[str] | None = None, *,
                 solution: bool) -> pd.DataFrame:
    """Check a BYU submission (``solution=False``) or solution table; return a clean copy.

    Solutions need ``Voxel spacing`` (> 0); ``Has motor`` is derived from the -1 rule when
    absent. ``tomo_id`` values must be unique (one row per tomogram).
    """
    src = None if source is None else str(source)
    required = list(BYU_SUBMISSION_COLUMNS) + (["Voxel spacing"] if solution else [])
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}; expected "
                         f"{', '.join(required)}", src)
    out = pd.DataFrame({"tomo_id": df["tomo_id"]})
    if out["tomo_id"].isna().any():
        row = int(np.flatnonzero(out["tomo_id"].isna().to_numpy())[0])
        raise InputError(f"column 'tomo_id' is empty in data row {row + 1}", src)
    out["tomo_id"] = out["tomo_id"].astype(str).str.strip()
    dup = out["tomo_id"].duplicated().to_numpy()
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        raise InputError(f"tomo_id {out['tomo_id'].iloc[row]!r} appears more than once "
                         f"(data row {row + 1}); expected one row per tomogram", src)
    for col in BYU_AXES:
        out[col] = _numeric(df, col, src)
    if solution:
        out["Voxel spacing"] = _numeric(df, "Voxel spacing", src)
        for row, vs in enumerate(out["Voxel spacing"]):
            check_voxel_spacing(vs, src, f" (data row {row + 1})")
        no_motor = motor_absent(out[list(BYU_AXES)].to_numpy(np.float64), src)
        if "Has motor" in df.columns:
            has = _numeric(df, "Has motor", src)
            if not np.isin(has, (0, 1)).all():
                row = int(np.flatnonzero(~np.isin(has, (0, 1)))[0])
                raise InputError(f"'Has motor' must be 0 or 1 (data row {row + 1})", src)
            clash = (has == 1) == no_motor
            if clash.any():
                row = int(np.flatnonzero(clash)[0])
                raise InputError(f"'Has motor' is {int(has[row])} but the motor axes are "
                                 f"{'-1 (no motor)' if no_motor[row] else 'a position'} "
                                 f"(data row {row + 1})", src)
            out["Has motor"] = has.astype(np.int64)
        else:
            out["Has motor"] = (~no_motor).astype(np.int64)
    return out


def motor_absent(axes: np.ndarray, source: str | os.PathLike[str] | None) -> np.ndarray:
    """Per row of ``(n, 3)`` motor axes (voxels): True for the "no motor" row ``-1, -1, -1``.

    A ground-truth row must be all three ``-1`` or a position with every axis ``>= 0``; a row
    mixing ``-1`` with a position, or another negative value, is an error.
    """
    absent = (axes == -1).all(axis=1)
    bad = ~absent & (axes < 0).any(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise InputError(f"motor axes {', '.join(f'{v:g}' for v in axes[row])} are neither a "
                         f"position (all >= 0) nor -1, -1, -1 for no motor (data row {row + 1})",
                         None if source is None else str(source))
    return absent


def read_byu_csv(path: str | os.PathLike[str], *, solution: bool = False) -> pd.DataFrame:
    """Read and validate a BYU submission or solution CSV."""
    return validate_byu(read_csv_table(path), path, solution=solution)


def picks_to_byu(picks: pd.DataFrame, runs) -> pd.DataFrame:
    """A BYU submission from picks (Å): per run, its highest-scoring pick as voxel
    ``Motor axis 0/1/2`` (z, y, x), or -1 on every axis when there is no pick.

    ``runs`` are the run handles (``name``, ``voxel_spacing``) in submission order.
    """
    from cryobench.coords import angstrom_to_voxel

    rows = []
    for run in runs:
        mine = picks[picks["experiment"] == run.name]
        if len(mine):
            best = (mine.sort_values("score", ascending=False, kind="stable")
                    if "score" in mine.columns else mine).iloc[0]
            zyx = angstrom_to_voxel(best[["x", "y", "z"]].to_numpy(np.float64),
                                    run.voxel_spacing)[0]
        else:
            zyx = np.array([-1.0, -1.0, -1.0])
        rows.append({"tomo_id": run.name, BYU_AXES[0]: zyx[0], BYU_AXES[1]: zyx[1],
                     BYU_AXES[2]: zyx[2]})
    return pd.DataFrame(rows, columns=list(BYU_SUBMISSION_COLUMNS))
