"""Dynamo tables (``.tbl``, read and written with ``dynamotable``).

Columns used (1-based, Dynamo's numbering): 4-6 ``dx, dy, dz`` shifts and 24-26 ``x, y, z``
in pixels, counted from 1 as in MATLAB (the particle sits at ``x + dx``); 7-9
``tdrot, tilt, narot`` (Dynamo's ZXZ, :func:`cryobench.coords.euler_to_rotation`); 10 ``cc``
(the score); 20 ``tomo`` (tomogram index; names come from a tomogram index map); 36 ``apix``
(Å per pixel, when the table has it). A table holds one particle type.
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
    empty_picks,
    finish_picks,
    numeric_column,
    one_value,
    prepare_for_write,
    rotations_or_identity,
    star_safe,
    tomo_map_path,
    write_tomo_map,
)

__all__ = ["read_dynamo", "write_dynamo", "FIRST_PIXEL"]

FIRST_PIXEL = 1
"""Dynamo counts pixels from 1 (MATLAB); the first voxel's centre is at coordinate 1."""


def read_dynamo(path: Path, ctx: Context) -> pd.DataFrame:
    """Read a Dynamo table into a picks table (Å)."""
    import dynamotable

    src = ctx.source
    if not path.is_file():
        raise InputError("file not found" if not path.exists() else "not a file", path)
    if path.stat().st_size == 0:  # a table without particles
        return empty_picks(with_score=True, with_rotations=True)
    try:
        df = dynamotable.read(str(path))
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"malformed Dynamo table ({first})", path) from None
    if df.shape[1] < 26:
        raise InputError(f"a Dynamo table needs at least 26 columns (x, y, z are 24-26); "
                         f"this one has {df.shape[1]}", src)
    short = df.isna().to_numpy().any(axis=1)
    if short.any():  # a NaN, or a row with fewer fields (dynamotable writes NaN as nothing)
        row = int(np.flatnonzero(short)[0])
        raise InputError(f"a NaN or infinite value or a missing field (data row {row + 1})", src)
    n = len(df)
    xyz = np.column_stack([numeric_column(df, c, src) for c in ("x", "y", "z")])
    shifts = np.column_stack([numeric_column(df, c, src) for c in ("dx", "dy", "dz")])
    angles = np.column_stack([numeric_column(df, c, src) for c in ("tdrot", "tilt", "narot")])
    score = numeric_column(df, "cc", src)
    tomo = numeric_column(df, "tomo", src)
    if not np.all(tomo == np.round(tomo)):
        raise InputError("column 20 (tomo) must hold whole tomogram numbers", src)
    tomo = tomo.astype(np.int64)
    names = ctx.tomo_names(tomo)
    where = (f"tomogram numbers {', '.join(map(str, sorted(set(tomo.tolist()))[:6]))} and no "
             f"tomogram index map ({tomo_map_path(path).name} or --tomo-map FILE)")
    if names is None and len(set(tomo.tolist())) > 1:
        raise InputError(f"the table holds {len(set(tomo.tolist()))} tomograms ({where}): "
                         "pass --tomo-map FILE (index name per line)", src)
    experiments = ctx.experiments(names, n, where)
    types = ctx.particle_types(None, n)
    if "apix" in df.columns and n and np.all(numeric_column(df, "apix", src) > 0):
        sizes = numeric_column(df, "apix", src)
        if ctx.voxel_spacing is not None and not np.allclose(sizes, ctx.voxel_spacing,
                                                             rtol=1e-3, atol=0):
            raise InputError(f"the table states {np.unique(sizes)[:4].tolist()} Å per pixel "
                             f"(apix) but --voxel-spacing is {ctx.voxel_spacing:g}; drop "
                             "--voxel-spacing to use the table's", src)
    else:
        sizes = ctx.per_row(experiments, lambda e: ctx.spacing(
            e, "a Dynamo table (pixel coordinates, no apix column)"))
    if n:
        centre = coords.pixels_to_angstrom(xyz, sizes, first=FIRST_PIXEL)
        xyz_a = centre + coords.pixels_to_angstrom(shifts, sizes)
        rotations = coords.euler_to_rotation(angles, "dynamo")
    else:
        xyz_a, rotations = np.zeros((0, 3)), np.zeros((0, 3, 3))
    return finish_picks(experiments, types, xyz_a, src, score=score, rotations=rotations)


def write_dynamo(df: pd.DataFrame, path: Path, ctx: Context) -> list[Path]:
    """Write a Dynamo table and its tomogram numbers ``<stem>.doc`` (from ``tomo_map``, else
    1, 2, ... in sorted order). Needs the pixel size (``voxel_spacing`` or the project)."""
    import dynamotable

    picks = prepare_for_write(df, ctx)
    one_value(picks, "particle_type", "particle type", "Dynamo", ctx.source)
    star_safe(picks["experiment"], "experiment", ctx.source)
    exps = picks["experiment"].astype(str).to_numpy()
    index, written_map = _tomo_indices(exps, ctx)
    sizes = ctx.per_row(exps, lambda e: ctx.spacing(e, "writing a Dynamo table"))
    n = len(picks)
    xyz = picks[["x", "y", "z"]].to_numpy(np.float64)
    pixels = coords.angstrom_to_pixels(xyz, sizes, first=FIRST_PIXEL) if n else np.zeros((0, 3))
    angles = coords.rotation_to_euler(rotations_or_identity(picks), "dynamo")
    table = pd.DataFrame({
        "tag": np.arange(1, n + 1), "aligned_value": np.ones(n, dtype=np.int64),
        "averaged_value": np.ones(n, dtype=np.int64),
        "dx": np.zeros(n), "dy": np.zeros(n), "dz": np.zeros(n),
        "tdrot": angles[:, 0], "tilt": angles[:, 1], "narot": angles[:, 2],
        "cc": picks["score"].to_numpy(np.float64) if "score" in picks.columns else np.zeros(n),
        "tomo": index, "x": pixels[:, 0], "y": pixels[:, 1], "z": pixels[:, 2], "apix": sizes,
    })
    with atomic_path(path, suffix=".tbl") as tmp:
        dynamotable.write(table, str(tmp))
    return [path, *write_tomo_list(written_map, path, ctx)]


def _tomo_indices(experiments: np.ndarray,
                  ctx: Context) -> tuple[np.ndarray, dict[int, str]]:
    """Tomogram numbers for the experiments: from ``tomo_map`` (the smallest number of a name
    listed twice), else 1, 2, ... in sorted order; and the map of the numbers used."""
    names = sorted(set(experiments.tolist()))
    if ctx.tomo_map is not None:
        inverse: dict[str, int] = {}
        for k, v in sorted(ctx.tomo_map.items()):
            inverse.setdefault(v, k)
        missing = [e for e in names if e not in inverse]
        if missing:
            raise InputError(f"experiment(s) {', '.join(missing[:6])} are not in the tomogram "
                             "index map", ctx.source)
    else:
        inverse = {e: k for k, e in enumerate(names, 1)}
    used = {inverse[e]: e for e in names}
    return np.asarray([inverse[e] for e in experiments], dtype=np.int64), used


def write_tomo_list(mapping: dict[int, str], path: Path, ctx: Context) -> list[Path]:
    """Write the tomogram numbers beside ``path`` (``<stem>.doc``), unless that file is the
    ``tomo_map`` the numbers came from; returns what was written."""
    target = tomo_map_path(path)
    if not mapping:
        return []
    if ctx.tomo_map_file is not None and ctx.tomo_map_file.resolve() == target.resolve():
        return []
    return [write_tomo_map(mapping, target)]
