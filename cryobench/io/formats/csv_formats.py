"""The two CSV pick formats: the Kaggle CZII submission and copick's CSV.

* Kaggle CZII: ``id, experiment, particle_type, x, y, z`` (Å; ``id`` optional on reading), an
  optional ``score``; no orientation.
* copick CSV (``copick.util.formats.write_picks_csv``): ``run_name, x, y, z`` (Å) and the 4x4
  transform ``transform_00 .. transform_33``; the particle sits at ``(x, y, z)`` plus the
  transform's translation and its rotation block is the orientation
  (:func:`cryobench.coords.transform_to_rotation`); optional ``score`` and ``instance_id``.
  copick's CSV has one object per file; cryobench adds an ``object_name`` column, which copick
  ignores, so that a file can hold several particle types.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cryobench import coords
from cryobench.errors import InputError
from cryobench.io.atomic import atomic_path
from cryobench.io.formats._base import (
    Context,
    check_names,
    finish_picks,
    numeric_column,
    prepare_for_write,
    rotations_or_identity,
)
from cryobench.io.picks import PICKS_COLUMNS, read_csv_table, validate_picks, write_picks_csv

__all__ = ["read_kaggle", "write_kaggle", "read_copick_csv", "write_copick_csv",
           "TRANSFORM_COLUMNS", "csv_flavour"]

TRANSFORM_COLUMNS = tuple(f"transform_{i}{j}" for i in range(4) for j in range(4))


def csv_flavour(columns) -> str | None:
    """``kaggle``, ``copick-csv`` or ``None`` from a CSV's header."""
    cols = {str(c).strip() for c in columns}
    if {"run_name", "x", "y", "z"} <= cols:
        return "copick-csv"
    if set(PICKS_COLUMNS) <= cols:
        return "kaggle"
    return None


def read_kaggle(path: Path, ctx: Context) -> pd.DataFrame:
    """A Kaggle CZII CSV; ``experiment`` / ``particle_type`` options rename a file of one."""
    src = ctx.source
    df = read_csv_table(path)
    missing = [c for c in PICKS_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}; expected "
                         f"{', '.join(PICKS_COLUMNS)}", src)
    out = validate_picks(df, src)
    n = len(out)
    experiments = ctx.experiments(out["experiment"].to_numpy(), n, "experiment")
    types = ctx.particle_types(out["particle_type"].to_numpy(), n)
    score = out["score"].to_numpy() if "score" in out.columns else None
    return finish_picks(experiments, types, out[["x", "y", "z"]].to_numpy(), src, score=score)


def write_kaggle(df: pd.DataFrame, path: Path, ctx: Context) -> list[Path]:
    """The CZII submission CSV (``id`` first, then ``score`` when the picks have one)."""
    picks = prepare_for_write(df, ctx)
    write_picks_csv(picks, path)
    return [path]


def read_copick_csv(path: Path, ctx: Context) -> pd.DataFrame:
    """A copick CSV (Å, 4x4 transforms)."""
    src = ctx.source
    df = read_csv_table(path)
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in ("run_name", "x", "y", "z") if c not in df.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}; a copick CSV has run_name, "
                         "x, y, z and transform_00 .. transform_33", src)
    n = len(df)
    if df["run_name"].isna().any():
        row = int(np.flatnonzero(df["run_name"].isna().to_numpy())[0])
        raise InputError(f"column 'run_name' is empty in data row {row + 1}", src)
    names = df["run_name"].astype(str).str.strip().to_numpy()
    experiments = ctx.experiments(names, n, "run_name")
    types = ctx.particle_types(
        df["object_name"].astype(str).str.strip().to_numpy() if "object_name" in df.columns
        else None, n)
    xyz = np.column_stack([numeric_column(df, c, src) for c in ("x", "y", "z")])
    transforms = np.tile(np.eye(4), (n, 1, 1))
    present = [c for c in TRANSFORM_COLUMNS if c in df.columns]
    for c in present:
        i, j = int(c[-2]), int(c[-1])
        transforms[:, i, j] = numeric_column(df, c, src)
    if present and not np.allclose(transforms[:, 3], [0, 0, 0, 1], atol=1e-9):
        row = int(np.flatnonzero(~np.isclose(transforms[:, 3], [0, 0, 0, 1]).all(axis=1))[0])
        raise InputError(f"the transform of data row {row + 1} has a bottom row other than "
                         "0 0 0 1", src)
    rotations = coords.transform_to_rotation(transforms) if present else None
    xyz = xyz + transforms[:, :3, 3]
    score = numeric_column(df, "score", src) if "score" in df.columns else None
    return finish_picks(experiments, types, xyz, src, score=score, rotations=rotations)


def write_copick_csv(df: pd.DataFrame, path: Path, ctx: Context) -> list[Path]:
    """A copick CSV: positions in Å, the orientation as the transform's rotation block (zero
    translation), ``score`` when the picks have one, and ``object_name``."""
    picks = prepare_for_write(df, ctx)
    check_names(picks["experiment"], "experiment", ctx.source)
    transforms = coords.rotation_to_transform(rotations_or_identity(picks))
    out = pd.DataFrame({"run_name": picks["experiment"].astype(object),
                        "x": picks["x"].to_numpy(np.float64),
                        "y": picks["y"].to_numpy(np.float64),
                        "z": picks["z"].to_numpy(np.float64)})
    for c in TRANSFORM_COLUMNS:
        out[c] = transforms[:, int(c[-2]), int(c[-1])]
    if "score" in picks.columns:
        out["score"] = picks["score"].to_numpy(np.float64)
    out["object_name"] = picks["particle_type"].astype(object)
    with atomic_path(path, suffix=".csv") as tmp:
        out.to_csv(tmp, index=False)
    return [path]
