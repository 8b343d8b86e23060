"""The ONLY place with unit and axis conversions.

Conventions (shared with copick and the CZII submission format):

* picks are in Å, columns ``x, y, z``;
* arrays are indexed ``(z, y, x)`` in voxels;
* voxel index ``i`` has its centre at ``i * spacing`` Å (origin at the centre of voxel 0), so
  ``angstrom = index * spacing`` and ``index = angstrom / spacing`` with no half-voxel shift;
* an orientation is a 3x3 rotation matrix ``R`` acting on ``(x, y, z)`` column vectors that maps
  the particle's (template's) frame into the tomogram: a template point ``p`` (Å, relative to the
  particle centre ``c``) sits at ``c + R @ p``. It is the upper-left block of copick's 4x4 point
  transform. In a picks DataFrame it is the nine optional columns :data:`ROTATION_COLUMNS`
  (``rot_xx, rot_xy, ... rot_zz``, row-major: ``rot_xy`` is row x, column y). Code that works on
  arrays (the phantom generator) holds the same rotation acting on ``(z, y, x)`` vectors;
  :func:`rotation_zyx_to_xyz` and :func:`rotation_xyz_to_zyx` convert between the two.
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
    "ROTATION_COLUMNS",
    "has_rotations",
    "picks_rotations",
    "with_rotations",
    "rotation_to_transform",
    "transform_to_rotation",
    "rotation_zyx_to_xyz",
    "rotation_xyz_to_zyx",
]

ROTATION_COLUMNS: tuple[str, ...] = tuple(f"rot_{r}{c}" for r in "xyz" for c in "xyz")
"""The optional orientation columns of a picks table (row-major 3x3 rotation, see above)."""


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


# ----- orientations ------------------------------------------------------------------------------
def has_rotations(picks: pd.DataFrame) -> bool:
    """Whether a picks table carries all nine :data:`ROTATION_COLUMNS`."""
    return all(c in picks.columns for c in ROTATION_COLUMNS)


def picks_rotations(picks: pd.DataFrame) -> np.ndarray:
    """The ``(N, 3, 3)`` rotation matrices of a picks table that :func:`has_rotations`."""
    if not has_rotations(picks):
        missing = [c for c in ROTATION_COLUMNS if c not in picks.columns]
        raise ValueError(f"picks carry no orientation (missing {', '.join(missing)})")
    return picks[list(ROTATION_COLUMNS)].to_numpy(dtype=np.float64).reshape(-1, 3, 3)


def with_rotations(picks: pd.DataFrame, rotations: np.ndarray) -> pd.DataFrame:
    """A copy of ``picks`` with the ``(N, 3, 3)`` ``rotations`` in :data:`ROTATION_COLUMNS`."""
    rot = np.asarray(rotations, dtype=np.float64).reshape(-1, 9)
    if len(rot) != len(picks):
        raise ValueError(f"{len(rot)} rotations for {len(picks)} picks")
    out = picks.copy()
    for k, col in enumerate(ROTATION_COLUMNS):
        out[col] = rot[:, k]
    return out


def rotation_to_transform(rotations: np.ndarray) -> np.ndarray:
    """``(N, 3, 3)`` rotations -> ``(N, 4, 4)`` copick transforms (no extra translation)."""
    rot = np.asarray(rotations, dtype=np.float64).reshape(-1, 3, 3)
    out = np.zeros((len(rot), 4, 4), dtype=np.float64)
    out[:, :3, :3] = rot
    out[:, 3, 3] = 1.0
    return out


def transform_to_rotation(transforms: np.ndarray) -> np.ndarray:
    """``(N, 4, 4)`` copick transforms -> their ``(N, 3, 3)`` rotation blocks."""
    tr = np.asarray(transforms, dtype=np.float64).reshape(-1, 4, 4)
    return np.ascontiguousarray(tr[:, :3, :3])


def rotation_zyx_to_xyz(rotations: np.ndarray) -> np.ndarray:
    """Rotations acting on ``(z, y, x)`` vectors -> the same rotations acting on ``(x, y, z)``.

    With ``J`` the axis reversal, ``R_xyz = J R_zyx J``: if ``q = R_zyx p`` for zyx vectors, then
    ``reversed(q) = R_xyz reversed(p)``. Accepts ``(3, 3)`` or ``(N, 3, 3)``; returns the same
    shape (float64).
    """
    rot = np.asarray(rotations, dtype=np.float64)
    if rot.shape[-2:] != (3, 3):
        raise ValueError(f"expected (N, 3, 3) rotations, got shape {rot.shape}")
    return np.ascontiguousarray(rot[..., ::-1, ::-1])


def rotation_xyz_to_zyx(rotations: np.ndarray) -> np.ndarray:
    """The inverse of :func:`rotation_zyx_to_xyz` (the same axis reversal)."""
    return rotation_zyx_to_xyz(rotations)
