"""The ONLY place with unit and axis conversions.

Conventions (shared with copick and the CZII submission format):

* picks are in Å, columns ``x, y, z``;
* arrays are indexed ``(z, y, x)`` in voxels;
* voxel index ``i`` has its centre at ``i * spacing`` Å (origin at the centre of voxel 0), so
  ``angstrom = index * spacing`` and ``index = angstrom / spacing`` with no half-voxel shift.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "angstrom_to_voxel",
    "voxel_to_angstrom",
    "angstrom_to_index",
    "picks_to_voxels",
    "voxels_to_picks",
    "in_bounds",
]


def _as_points(a: np.ndarray | list) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 1 and arr.shape[0] == 3:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"expected an (N, 3) array of points, got shape {arr.shape}")
    return arr


def angstrom_to_voxel(xyz_angstrom: np.ndarray, spacing: float) -> np.ndarray:
    """``(N, 3)`` x, y, z in Å -> ``(N, 3)`` z, y, x in (fractional) voxels."""
    if spacing <= 0:
        raise ValueError(f"voxel spacing must be positive, got {spacing}")
    return _as_points(xyz_angstrom)[:, ::-1] / float(spacing)


def voxel_to_angstrom(zyx_voxel: np.ndarray, spacing: float) -> np.ndarray:
    """``(N, 3)`` z, y, x in voxels -> ``(N, 3)`` x, y, z in Å."""
    if spacing <= 0:
        raise ValueError(f"voxel spacing must be positive, got {spacing}")
    return np.ascontiguousarray(_as_points(zyx_voxel)[:, ::-1] * float(spacing))


def angstrom_to_index(xyz_angstrom: np.ndarray, spacing: float) -> np.ndarray:
    """``(N, 3)`` x, y, z in Å -> nearest integer voxel index ``(N, 3)`` z, y, x."""
    return np.rint(angstrom_to_voxel(xyz_angstrom, spacing)).astype(np.int64)


def in_bounds(zyx_index: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Boolean mask of integer ``(z, y, x)`` indices that fall inside an array of ``shape``."""
    idx = np.asarray(zyx_index)
    return np.all((idx >= 0) & (idx < np.asarray(shape[:3])), axis=1)


def picks_to_voxels(picks: pd.DataFrame, spacing: float) -> np.ndarray:
    """A picks DataFrame (Å, ``x, y, z``) -> ``(N, 3)`` z, y, x in voxels."""
    if len(picks) == 0:
        return np.zeros((0, 3), dtype=np.float64)
    return angstrom_to_voxel(picks[["x", "y", "z"]].to_numpy(dtype=np.float64), spacing)


def voxels_to_picks(
    zyx_voxel: np.ndarray,
    spacing: float,
    experiment: str,
    particle_type: str | np.ndarray | list[str],
    score: np.ndarray | None = None,
) -> pd.DataFrame:
    """``(N, 3)`` z, y, x voxel positions -> a picks DataFrame in Å."""
    pts = np.zeros((0, 3)) if len(zyx_voxel) == 0 else voxel_to_angstrom(zyx_voxel, spacing)
    n = len(pts)
    df = pd.DataFrame(
        {
            "experiment": pd.Series([experiment] * n, dtype=object),
            "particle_type": pd.Series(
                [particle_type] * n if isinstance(particle_type, str) else list(particle_type),
                dtype=object,
            ),
            "x": pts[:, 0],
            "y": pts[:, 1],
            "z": pts[:, 2],
        }
    )
    if score is not None:
        df["score"] = np.asarray(score, dtype=np.float64)
    return df
