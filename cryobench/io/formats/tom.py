"""TOM / AV3 motive lists (``.em``, read and written with ``emfile``).

A motive list is a 20 x N float array (MATLAB order; ``emfile`` gives it as N x 20). Rows used
(1-based, the TOM/AV3 numbering): 1 the score (cross-correlation), 4 the particle number, 5 the
tomogram number, 8-10 ``x, y, z`` in pixels counted from 1 (MATLAB), 11-13 the shifts (the
particle sits at ``x + shift``), 17-19 ``phi, psi, theta`` (TOM's ZXZ, applied in the order
phi, theta, psi; :func:`cryobench.coords.euler_to_rotation`), 20 the class. A motive list holds
one particle type and states no pixel size.
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
    _finite,
    empty_picks,
    finish_picks,
    one_value,
    prepare_for_write,
    rotations_or_identity,
    star_safe,
    tomo_map_path,
)
from cryobench.io.formats.dynamo import _tomo_indices, write_tomo_list

__all__ = ["read_tom", "write_tom", "FIRST_PIXEL", "ROW"]

FIRST_PIXEL = 1
"""TOM counts pixels from 1 (MATLAB)."""

ROW = {"score": 0, "particle": 3, "tomo": 4, "x": 7, "y": 8, "z": 9, "dx": 10, "dy": 11,
       "dz": 12, "phi": 16, "psi": 17, "theta": 18, "class": 19}
"""0-based row of each field (the TOM/AV3 documentation counts from 1)."""


def _motl(path: Path) -> np.ndarray:
    import emfile

    if not path.is_file():
        raise InputError("file not found" if not path.exists() else "not a file", path)
    if path.stat().st_size == 0:
        raise InputError("file is empty", path)
    try:
        _header, data = emfile.read(str(path))
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"not a readable EM file ({first})", path) from None
    arr = np.asarray(data)
    if arr.ndim == 0 or not np.issubdtype(arr.dtype, np.number):
        raise InputError("an EM motive list must hold numbers", path)
    # emfile gives (z, y, x) = (1, N, 20) for TOM's 20 x N MATLAB array
    if arr.ndim >= 2 and arr.shape[-1] == 20:
        return arr.reshape(-1, 20).astype(np.float64)
    squeezed = np.squeeze(arr)
    if squeezed.ndim == 1 and squeezed.shape[0] >= 20:
        return squeezed.reshape(1, -1).astype(np.float64)
    if squeezed.ndim == 2 and squeezed.shape[0] == 20:  # written as N x 20 in MATLAB order
        return squeezed.T.astype(np.float64)
    if squeezed.ndim == 2 and squeezed.shape[1] > 20:  # extended motive lists (more fields)
        return squeezed.astype(np.float64)
    raise InputError(f"an EM motive list has 20 fields per particle; this file's array has "
                     f"shape {arr.shape}", path)


def read_tom(path: Path, ctx: Context) -> pd.DataFrame:
    """Read a TOM motive list into a picks table (Å)."""
    src = ctx.source
    m = _motl(path)
    _finite(m[:, [ROW[k] for k in ("score", "tomo", "x", "y", "z", "dx", "dy", "dz", "phi",
                                   "psi", "theta")]], "the motive list", src)
    n = len(m)
    if n == 0:
        return empty_picks(with_score=True, with_rotations=True)
    tomo = m[:, ROW["tomo"]]
    if not np.all(tomo == np.round(tomo)):
        raise InputError("row 5 (tomogram number) must hold whole numbers", src)
    tomo = tomo.astype(np.int64)
    names = ctx.tomo_names(tomo)
    where = (f"tomogram numbers {', '.join(map(str, sorted(set(tomo.tolist()))[:6]))} and no "
             f"tomogram index map ({tomo_map_path(path).name} or --tomo-map FILE)")
    if names is None and len(set(tomo.tolist())) > 1:
        raise InputError(f"the motive list holds {len(set(tomo.tolist()))} tomograms "
                         f"({where}): pass --tomo-map FILE (index name per line)", src)
    experiments = ctx.experiments(names, n, where)
    types = ctx.particle_types(None, n)
    sizes = ctx.per_row(experiments, lambda e: ctx.spacing(
        e, "a TOM motive list (pixel coordinates)"))
    if n:
        xyz = coords.pixels_to_angstrom(m[:, [ROW["x"], ROW["y"], ROW["z"]]], sizes,
                                        first=FIRST_PIXEL)
        xyz = xyz + coords.pixels_to_angstrom(m[:, [ROW["dx"], ROW["dy"], ROW["dz"]]], sizes)
        rotations = coords.euler_to_rotation(m[:, [ROW["phi"], ROW["theta"], ROW["psi"]]], "tom")
    else:
        xyz, rotations = np.zeros((0, 3)), np.zeros((0, 3, 3))
    return finish_picks(experiments, types, xyz, src, score=m[:, ROW["score"]],
                        rotations=rotations)


def write_tom(df: pd.DataFrame, path: Path, ctx: Context) -> list[Path]:
    """Write a TOM motive list and its tomogram numbers ``<stem>.doc`` (from ``tomo_map``, else
    1, 2, ... in sorted order).

    The array is float64 (EM data type 9, which TOM's ``tom_emread`` reads) so that positions
    and angles survive a round trip exactly; TOM itself writes float32, which reads as well.
    """
    import emfile

    picks = prepare_for_write(df, ctx)
    one_value(picks, "particle_type", "particle type", "TOM motive list", ctx.source)
    star_safe(picks["experiment"], "experiment", ctx.source)
    exps = picks["experiment"].astype(str).to_numpy()
    index, written_map = _tomo_indices(exps, ctx)
    sizes = ctx.per_row(exps, lambda e: ctx.spacing(e, "writing a TOM motive list"))
    n = len(picks)
    m = np.zeros((n, 20), dtype=np.float64)
    if "score" in picks.columns:
        m[:, ROW["score"]] = picks["score"].to_numpy(np.float64)
    m[:, ROW["particle"]] = np.arange(1, n + 1)
    m[:, ROW["tomo"]] = index
    if n:
        xyz = picks[["x", "y", "z"]].to_numpy(np.float64)
        m[:, [ROW["x"], ROW["y"], ROW["z"]]] = coords.angstrom_to_pixels(xyz, sizes,
                                                                         first=FIRST_PIXEL)
        angles = coords.rotation_to_euler(rotations_or_identity(picks), "tom")
        m[:, ROW["phi"]], m[:, ROW["theta"]], m[:, ROW["psi"]] = angles.T
    m[:, ROW["class"]] = 1
    data = m[None, :, :]
    with atomic_path(path, suffix=".em") as tmp:
        emfile.write(str(tmp), data, overwrite=True)
    return [path, *write_tomo_list(written_map, path, ctx)]
