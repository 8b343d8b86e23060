"""BYU motor tables (Kaggle "BYU - Locating Bacterial Flagellar Motors 2025").

Submission: ``tomo_id, Motor axis 0, Motor axis 1, Motor axis 2`` (voxels, z/y/x; -1 = no
motor). Solution: the same plus ``Voxel spacing`` (Å) and usually ``Has motor``. The raw
training labels (``train_labels.csv``: one row per motor, ``Number of motors``) become a
solution with :func:`byu_solution_from_labels`.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from cryobench.errors import InputError
from cryobench.io.numbers import check_voxel_spacing, numeric_column
from cryobench.io.picks import read_csv_table

__all__ = ["BYU_AXES", "BYU_SUBMISSION_COLUMNS", "BYU_SOLUTION_COLUMNS", "validate_byu",
           "read_byu_csv", "picks_to_byu", "is_byu_table", "is_byu_labels",
           "byu_solution_from_labels", "read_byu_solution", "motor_absent"]

BYU_AXES: tuple[str, ...] = ("Motor axis 0", "Motor axis 1", "Motor axis 2")
BYU_SUBMISSION_COLUMNS: tuple[str, ...] = ("tomo_id", *BYU_AXES)
BYU_SOLUTION_COLUMNS: tuple[str, ...] = (*BYU_SUBMISSION_COLUMNS, "Voxel spacing", "Has motor")


def is_byu_table(columns) -> bool:
    """True when the columns look like a BYU table (``tomo_id`` and the three motor axes)."""
    cols = {str(c).strip() for c in columns}
    return "tomo_id" in cols and all(a in cols for a in BYU_AXES)


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


def is_byu_labels(df: pd.DataFrame) -> bool:
    """True for raw training labels rather than a one-row-per-tomogram solution: a
    ``Number of motors`` column or a ``tomo_id`` listed more than once."""
    if not is_byu_table(df.columns):
        return False
    ids = df["tomo_id"].astype(str).str.strip()
    return "Number of motors" in df.columns or bool(ids.duplicated().any())


def byu_solution_from_labels(
    labels: pd.DataFrame,
    source: str | os.PathLike[str] | None = None,
    *,
    submission: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One solution row per tomogram from BYU labels as Kaggle ships them.

    ``labels`` is ``train_labels.csv`` as it is (or any table with the BYU columns): one row
    per motor, so a tomogram with several motors has several rows, and ``-1`` coordinates for
    a tomogram without one. ``Number of motors`` and / or ``Has motor`` may be present: each
    must agree with the coordinates (0 / no motor exactly when the axes are -1) and be the same
    on all rows of a tomogram, as must ``Voxel spacing``.

    The official metric scores one point per tomogram (a motor is found or not; the test sets
    have at most one motor per tomogram). A tomogram with several motors therefore counts as
    one positive: its solution row is the motor nearest to the submission's prediction for
    that tomogram, so a prediction within the threshold of *any* of its motors is a TP, and
    one far from all of them an FN (as the official script's distance, the minimum over the
    label's points, would score it). When the submission predicts no motor there (an FN
    whichever motor is chosen), or without a ``submission``, the first listed motor is used.

    Returns:
        ``tomo_id, Motor axis 0, Motor axis 1, Motor axis 2, Voxel spacing, Has motor``, one row
        per tomogram in first-seen order, ready for :func:`cryobench.metrics.byu_score`.

    Raises:
        InputError: missing columns, NaN or non-numeric values, inconsistent
            ``Number of motors`` / ``Has motor`` / ``Voxel spacing``, or a tomogram listing both
            a motor and a -1 row.
    """
    src = None if source is None else str(source)
    required = [*BYU_SUBMISSION_COLUMNS, "Voxel spacing"]
    missing = [c for c in required if c not in labels.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}; expected "
                         f"{', '.join(required)} (and Number of motors or Has motor)", src)
    ids = labels["tomo_id"]
    if ids.isna().any():
        row = int(np.flatnonzero(ids.isna().to_numpy())[0])
        raise InputError(f"column 'tomo_id' is empty in data row {row + 1}", src)
    ids = ids.astype(str).str.strip().to_numpy()
    xyz = np.column_stack([_numeric(labels, c, src) for c in BYU_AXES])
    spacing = _numeric(labels, "Voxel spacing", src)
    if (spacing <= 0).any():
        row = int(np.flatnonzero(spacing <= 0)[0])
        raise InputError(f"'Voxel spacing' must be positive (data row {row + 1})", src)
    motor_row = ~(xyz == -1).any(axis=1)
    counts = None
    for col in ("Number of motors", "Has motor"):
        if col not in labels.columns:
            continue
        values = _numeric(labels, col, src)
        ok = (values >= 0) & (values == np.round(values))
        if col == "Has motor":
            ok &= np.isin(values, (0, 1))
        else:
            counts = values
        if not ok.all():
            row = int(np.flatnonzero(~ok)[0])
            want = "0 or 1" if col == "Has motor" else "a whole number >= 0"
            raise InputError(f"{col!r} must be {want} (data row {row + 1})", src)
        disagree = (values > 0) != motor_row
        if disagree.any():
            row = int(np.flatnonzero(disagree)[0])
            axes = "are not" if motor_row[row] else "are"
            raise InputError(f"data row {row + 1}: {col!r} is {values[row]:g} but the motor "
                             f"axes {axes} -1", src)
    pred = None
    if submission is not None:
        sub = validate_byu(submission, "submission", solution=False)
        pred = dict(zip(sub["tomo_id"], sub[list(BYU_AXES)].to_numpy(np.float64), strict=True))
    groups: dict[str, list[int]] = {}
    for i, tomo in enumerate(ids):
        groups.setdefault(tomo, []).append(i)
    rows = []
    for tomo, members in groups.items():
        idx = np.asarray(members)
        where = f"data rows {', '.join(str(i + 1) for i in idx[:4])}"
        for col, values in (("Voxel spacing", spacing), ("Number of motors", counts)):
            if values is not None and len(set(values[idx].tolist())) > 1:
                raise InputError(f"tomo_id {tomo!r} has different {col!r} values ({where})",
                                 src)
        motors = idx[motor_row[idx]]
        if len(motors) and len(motors) != len(idx):
            raise InputError(f"tomo_id {tomo!r} lists a motor and a no-motor (-1) row "
                             f"({where})", src)
        if counts is not None and len(motors) > counts[idx[0]]:
            raise InputError(f"tomo_id {tomo!r} lists {len(motors)} motors but "
                             f"'Number of motors' is {counts[idx[0]]:g}", src)
        if not len(motors):
            rows.append((tomo, -1.0, -1.0, -1.0, spacing[idx[0]], 0))
            continue
        pick = motors[0]
        guess = None if pred is None else pred.get(tomo)
        if guess is not None and not (guess == -1).any() and len(motors) > 1:
            d = np.linalg.norm(xyz[motors] - guess, axis=1)
            pick = motors[int(np.argmin(d))]  # the first of equally near motors
        rows.append((tomo, *xyz[pick], spacing[idx[0]], 1))
    out = pd.DataFrame(rows, columns=list(BYU_SOLUTION_COLUMNS))
    out["tomo_id"] = out["tomo_id"].astype(object)
    out["Has motor"] = out["Has motor"].astype(np.int64)
    return out


def read_byu_solution(path: str | os.PathLike[str], *,
                      submission: pd.DataFrame | None = None) -> pd.DataFrame:
    """A BYU solution CSV: a one-row-per-tomogram solution as it is, or raw training labels
    (:func:`is_byu_labels`) through :func:`byu_solution_from_labels`."""
    df = read_csv_table(path)
    if is_byu_labels(df):
        return byu_solution_from_labels(df, path, submission=submission)
    return validate_byu(df, path, solution=True)
