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

The pick-file formats of other tools differ in origin, unit and Euler convention; their
conversions are here too (pixel coordinates, RELION 5 centred coordinates, RELION / Dynamo / TOM
Euler angles). docs/data.md, "Pick formats", explains each convention and its sources.
"""

from __future__ import annotations

from collections.abc import Sequence

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
    "pixels_to_angstrom",
    "angstrom_to_pixels",
    "tomogram_centre_angstrom",
    "centred_to_angstrom",
    "angstrom_to_centred",
    "EULER_CONVENTIONS",
    "euler_to_rotation",
    "rotation_to_euler",
    "is_rotation",
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


# ----- pixel coordinates of other tools ----------------------------------------------------------
def _pixel_sizes(spacing: float | np.ndarray, n: int) -> np.ndarray:
    sizes = np.asarray(spacing, dtype=np.float64)
    if sizes.ndim == 0:
        sizes = np.full(n, float(sizes))
    if sizes.shape != (n,):
        raise ValueError(f"expected one pixel size or {n}, got shape {sizes.shape}")
    if not np.all(sizes > 0):
        raise ValueError("pixel sizes must be positive")
    return sizes[:, None]


def pixels_to_angstrom(xyz_pixels: np.ndarray, spacing: float | np.ndarray, *,
                       first: int = 0) -> np.ndarray:
    """``(N, 3)`` x, y, z pixel coordinates -> ``(N, 3)`` x, y, z in Å.

    ``spacing``: Å per pixel, one value or one per row. ``first`` is the coordinate of the
    centre of the first voxel: 0 for RELION and pytom-match-pick (C/numpy indices), 1 for
    Dynamo and TOM (MATLAB indices). So ``angstrom = (pixel - first) * spacing``. With
    ``first=0`` this also converts a shift in pixels to Å.
    """
    pts = _as_points(xyz_pixels)
    return (pts - float(first)) * _pixel_sizes(spacing, len(pts))


def angstrom_to_pixels(xyz_angstrom: np.ndarray, spacing: float | np.ndarray, *,
                       first: int = 0) -> np.ndarray:
    """Inverse of :func:`pixels_to_angstrom`: ``pixel = angstrom / spacing + first``."""
    pts = _as_points(xyz_angstrom)
    return pts / _pixel_sizes(spacing, len(pts)) + float(first)


def tomogram_centre_angstrom(shape_zyx: Sequence[int], spacing: float) -> np.ndarray:
    """The centre RELION 5 measures ``rlnCenteredCoordinate*Angst`` from, as ``(3,)`` x, y, z Å.

    RELION 5 puts the centre of a tomogram of ``N`` voxels along an axis at ``N / 2`` voxels
    (``rlnTomoSize / 2`` tilt-series pixels, ``tomogram_set.cpp``); pytom-match-pick's RELION 5
    mode uses the same ``N / 2``. With voxel ``i`` centred at ``i * spacing`` Å, the centre is
    ``(N_x / 2, N_y / 2, N_z / 2) * spacing``.
    """
    shape = np.asarray(shape_zyx, dtype=np.float64)
    if shape.shape != (3,) or not np.all(shape > 0):
        raise ValueError(f"tomogram shape must be three positive sizes (z, y, x), got {shape_zyx}")
    if not spacing > 0:
        raise ValueError(f"voxel spacing must be positive, got {spacing}")
    return shape[::-1] / 2.0 * float(spacing)


def centred_to_angstrom(xyz_centred: np.ndarray, shape_zyx: Sequence[int],
                        spacing: float) -> np.ndarray:
    """RELION 5 centred Å (``rlnCenteredCoordinate*Angst``) -> corner-origin Å ``x, y, z``."""
    return _as_points(xyz_centred) + tomogram_centre_angstrom(shape_zyx, spacing)


def angstrom_to_centred(xyz_angstrom: np.ndarray, shape_zyx: Sequence[int],
                        spacing: float) -> np.ndarray:
    """Corner-origin Å -> RELION 5 centred Å (inverse of :func:`centred_to_angstrom`)."""
    return _as_points(xyz_angstrom) - tomogram_centre_angstrom(shape_zyx, spacing)


# ----- Euler angles ------------------------------------------------------------------------------
EULER_CONVENTIONS: tuple[str, ...] = ("relion", "dynamo", "tom")
"""Euler conventions :func:`euler_to_rotation` knows; the angle order of each:

* ``"relion"``: ``(rlnAngleRot, rlnAngleTilt, rlnAnglePsi)`` (also pytom-match-pick, Warp);
* ``"dynamo"``: ``(tdrot, tilt, narot)``;
* ``"tom"``: ``(phi, theta, psi)``, the order of the rotations (a TOM motive list stores them
  in rows 17, 18, 19 as phi, psi, theta).
"""


def _rz(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1),
                     np.stack([z, z, o], -1)], -2)


def _ry(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1),
                     np.stack([-s, z, c], -1)], -2)


def _rx(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1),
                     np.stack([z, s, c], -1)], -2)


def _zyz(m: np.ndarray) -> np.ndarray:
    """Angles ``(a, b, c)`` (radians) with ``m = Rz(a) @ Ry(b) @ Rz(c)``, ``b`` in [0, pi]."""
    b = np.arctan2(np.hypot(m[:, 0, 2], m[:, 1, 2]), m[:, 2, 2])
    a = np.arctan2(m[:, 1, 2], m[:, 0, 2])
    c = np.arctan2(m[:, 2, 1], -m[:, 2, 0])
    # gimbal lock (b = 0 or pi): only a + c (a - c) is defined; put it all in a, c = 0
    lock = np.hypot(m[:, 0, 2], m[:, 1, 2]) < 1e-12
    up = lock & (m[:, 2, 2] > 0)
    down = lock & (m[:, 2, 2] < 0)
    a = np.where(up, np.arctan2(m[:, 1, 0], m[:, 0, 0]), a)
    a = np.where(down, np.arctan2(-m[:, 1, 0], -m[:, 0, 0]), a)
    c = np.where(lock, 0.0, c)
    return np.stack([a, b, c], -1)


def _zxz(m: np.ndarray) -> np.ndarray:
    """Angles ``(a, b, c)`` (radians) with ``m = Rz(a) @ Rx(b) @ Rz(c)``, ``b`` in [0, pi]."""
    b = np.arctan2(np.hypot(m[:, 0, 2], m[:, 1, 2]), m[:, 2, 2])
    a = np.arctan2(m[:, 0, 2], -m[:, 1, 2])
    c = np.arctan2(m[:, 2, 0], m[:, 2, 1])
    lock = np.hypot(m[:, 0, 2], m[:, 1, 2]) < 1e-12
    a = np.where(lock, np.arctan2(m[:, 1, 0], m[:, 0, 0]), a)
    c = np.where(lock, 0.0, c)
    return np.stack([a, b, c], -1)


def _check_convention(convention: str) -> None:
    if convention not in EULER_CONVENTIONS:
        raise ValueError(f"unknown Euler convention {convention!r}; "
                         f"known: {', '.join(EULER_CONVENTIONS)}")


def euler_to_rotation(angles_deg: np.ndarray, convention: str) -> np.ndarray:
    """``(N, 3)`` Euler angles in degrees -> ``(N, 3, 3)`` rotations in this module's convention.

    The result ``R`` maps the template (reference) frame into the tomogram: a template point
    ``p`` sits at ``c + R p`` (an *active* rotation of the template). Each tool's angles
    describe the same rotation as follows (``Rz``, ``Ry``, ``Rx``: active right-handed
    rotations of a point, counter-clockwise seen from the axis tip):

    * RELION ``(rot, tilt, psi)``: ``R = Rz(-psi) Ry(-tilt) Rz(-rot)``, the transpose of
      ``Rz(rot) Ry(tilt) Rz(psi)``. It is RELION's ``Euler_angles2matrix`` matrix ``A``
      itself: RELION's matrix is written as a *passive* (coordinate-frame) rotation, and its
      projector samples the reference at ``A^T x``, i.e. the reference is turned by ``A``.
      scipy: ``Rotation.from_euler("ZYZ", (rot, tilt, psi), degrees=True).inv()``.
    * Dynamo ``(tdrot, tilt, narot)``: "the rotation we operate on the template to align it
      with the particle", each turn clockwise about the particle's z, new x, new z:
      ``R = Rz(-tdrot) Rx(-tilt) Rz(-narot)``, the transpose of Dynamo's
      ``dynamo_euler2matrix`` ``Rz(narot) Rx(tilt) Rz(tdrot)``.
      scipy: ``Rotation.from_euler("zxz", (tdrot, tilt, narot), degrees=True).inv()``.
    * TOM ``(phi, theta, psi)``: ``R = Rz(psi) Rx(theta) Rz(phi)`` (TOM's own rotation
      matrix; ``tom_eulerconvert_xmipp`` maps it to RELION's ``A``).
      scipy: ``Rotation.from_euler("zxz", (phi, theta, psi), degrees=True)``.

    So RELION ``(rot, tilt, psi)`` is TOM ``(90 - rot, tilt, -90 - psi)``, and TOM
    ``(phi, theta, psi)`` is Dynamo ``(-psi, -theta, -phi)`` (Dynamo's ``dynamo__table2motl``
    mapping); the tests check these and a published Dynamo/RELION pair.
    """
    _check_convention(convention)
    ang = np.deg2rad(_as_points(angles_deg))
    a, b, c = ang[:, 0], ang[:, 1], ang[:, 2]
    if convention == "relion":
        return _rz(-c) @ _ry(-b) @ _rz(-a)
    if convention == "dynamo":
        return _rz(-a) @ _rx(-b) @ _rz(-c)
    return _rz(c) @ _rx(b) @ _rz(a)


def rotation_to_euler(rotations: np.ndarray, convention: str) -> np.ndarray:
    """``(N, 3, 3)`` rotations -> ``(N, 3)`` Euler angles in degrees (inverse of
    :func:`euler_to_rotation`).

    The second angle is in [0, 180], the others in (-180, 180]. At gimbal lock (second angle
    0 or 180) only a sum or difference of the other two is defined; one of them is set to 0:
    RELION ``psi``, Dynamo ``tdrot``, TOM ``phi``.
    """
    _check_convention(convention)
    rot = np.asarray(rotations, dtype=np.float64).reshape(-1, 3, 3)
    if convention == "relion":
        # R^T = Rz(rot) Ry(tilt) Rz(psi)
        out = _zyz(np.swapaxes(rot, 1, 2))
    elif convention == "dynamo":
        # R^T = Rz(narot) Rx(tilt) Rz(tdrot): _zxz gives (narot, tilt, tdrot)
        out = _zxz(np.swapaxes(rot, 1, 2))[:, ::-1]
    else:
        # R = Rz(psi) Rx(theta) Rz(phi): _zxz gives (psi, theta, phi)
        out = _zxz(rot)[:, ::-1]
    deg = np.rad2deg(out)
    # (-180, 180]: atan2 gives [-180, 180]; map -180 to 180, and tidy -0.0
    deg = np.where(deg <= -180.0, deg + 360.0, deg) + 0.0
    return np.ascontiguousarray(deg)


def is_rotation(rotations: np.ndarray, atol: float = 1e-6) -> np.ndarray:
    """Boolean mask of the ``(N, 3, 3)`` matrices that are proper rotations (orthonormal,
    determinant +1, within ``atol``)."""
    rot = np.asarray(rotations, dtype=np.float64).reshape(-1, 3, 3)
    finite = np.isfinite(rot).all(axis=(1, 2))
    safe = np.where(finite[:, None, None], rot, np.eye(3))
    ortho = np.abs(safe @ np.swapaxes(safe, 1, 2) - np.eye(3)).max(axis=(1, 2)) <= atol
    det = np.abs(np.linalg.det(safe) - 1.0) <= atol
    return finite & ortho & det
