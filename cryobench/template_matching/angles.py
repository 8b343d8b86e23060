"""Angular grids on SO(3) for template matching, and their reduction by a point group.

:func:`so3_grid` samples rotations ``R = Rz(phi) Ry(theta) Rz(psi)`` (ZYZ Euler angles, the
RELION convention): the template's z axis points along one of ``n_dir`` nearly uniform
directions of a Fibonacci sphere, ``n_dir = round(4 pi / step^2)``, and each direction gets
``ceil(360 / step)`` in-plane angles ``psi``, and the identity comes first. The grid has about
``8 pi^2 / step^3`` rotations (step in radians): 553 at 30 degrees, 1 855 at 20, 7 251 at 12.85
(pytom-match-pick's list of that step has 7 112).

A template with point group ``G`` looks the same at ``R`` and ``R S`` (``S`` in ``G``), so a
search needs only one rotation of each such set. :func:`reduce_by_symmetry` keeps the grid
rotations that lie in the Dirichlet cell of the identity (no ``R S`` is closer to the identity
than ``R``), widened by a slack so that no part of SO(3) loses its nearby grid points at the
cell's border; about ``|grid| / |G|`` rotations stay (with a slack of a quarter step, the
covering radius stays within 1.5 degrees of the full grid's, measured at 30 degrees).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "so3_grid",
    "reduce_by_symmetry",
    "covering_radius",
    "rotation_angles",
]


def _fibonacci_directions(n: int) -> np.ndarray:
    """``n`` nearly uniform unit vectors ``(x, y, z)``, deterministic."""
    i = np.arange(n, dtype=np.float64) + 0.5
    z = 1.0 - 2.0 * i / n
    r = np.sqrt(np.clip(1.0 - z * z, 0.0, None))
    azim = np.pi * (1.0 + 5.0**0.5) * i
    return np.stack([r * np.cos(azim), r * np.sin(azim), z], axis=1)


def _rz(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    out = np.zeros((len(a), 3, 3))
    out[:, 0, 0], out[:, 0, 1], out[:, 1, 0], out[:, 1, 1] = c, -s, s, c
    out[:, 2, 2] = 1.0
    return out


def _ry(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    out = np.zeros((len(a), 3, 3))
    out[:, 0, 0], out[:, 0, 2], out[:, 2, 0], out[:, 2, 2] = c, s, -s, c
    out[:, 1, 1] = 1.0
    return out


def so3_grid(step_deg: float) -> np.ndarray:
    """``(N, 3, 3)`` rotations covering SO(3) at about ``step_deg`` degrees (identity first).

    ``step_deg >= 360`` gives the identity alone.
    """
    step = float(step_deg)
    if not math.isfinite(step) or step <= 0:
        raise ValueError(f"angular step must be a positive number of degrees, got {step_deg}")
    if step >= 360.0:
        return np.eye(3)[None].copy()
    rad = math.radians(step)
    n_dir = max(1, round(4.0 * math.pi / rad**2))
    n_psi = max(1, math.ceil(360.0 / step - 1e-9))
    dirs = _fibonacci_directions(n_dir)
    theta = np.arccos(np.clip(dirs[:, 2], -1.0, 1.0))
    phi = np.arctan2(dirs[:, 1], dirs[:, 0])
    psi = np.arange(n_psi) * (2.0 * math.pi / n_psi)
    r_dir = np.einsum("nij,njk->nik", _rz(phi), _ry(theta))
    grid = np.einsum("nij,mjk->nmik", r_dir, _rz(psi)).reshape(-1, 3, 3)
    grid = np.concatenate([np.eye(3)[None], grid])
    # drop the grid's rotation nearest the identity if it duplicates it
    ang = rotation_angles(grid[1:])
    if ang.min() < 1e-6:
        grid = np.delete(grid, 1 + int(np.argmin(ang)), axis=0)
    return np.ascontiguousarray(grid)


def rotation_angles(rotations: np.ndarray) -> np.ndarray:
    """Rotation angle in degrees of each ``(N, 3, 3)`` rotation (its distance to the identity)."""
    tr = np.trace(np.asarray(rotations, dtype=np.float64), axis1=1, axis2=2)
    return np.degrees(np.arccos(np.clip((tr - 1.0) / 2.0, -1.0, 1.0)))


def reduce_by_symmetry(grid: np.ndarray, group: np.ndarray, slack_deg: float) -> np.ndarray:
    """The rotations of ``grid`` within ``slack_deg`` of the identity's Dirichlet cell.

    A rotation ``R`` is kept when ``angle(R) <= min over S of angle(R S) + slack_deg``. With
    ``group`` the identity alone, the grid is returned unchanged.
    """
    g = np.asarray(grid, dtype=np.float64)
    sym = np.asarray(group, dtype=np.float64)
    if len(sym) <= 1:
        return g.copy()
    # trace(R S) for every pair, the angle of each, and the closest to the identity
    tr = np.einsum("nij,kji->nk", g, sym)
    ang = np.degrees(np.arccos(np.clip((tr - 1.0) / 2.0, -1.0, 1.0)))
    own = rotation_angles(g)
    keep = own <= ang.min(axis=1) + float(slack_deg) + 1e-9
    return np.ascontiguousarray(g[keep])


def covering_radius(grid: np.ndarray, group: np.ndarray | None = None, n_samples: int = 4000,
                    seed: int = 0) -> float:
    """Largest distance (degrees) from a random rotation to the grid, up to ``group``.

    Estimated on ``n_samples`` uniform random rotations: ``max_Q min_{R, S} angle(R^T Q S)``.
    """
    from scipy.spatial.transform import Rotation

    q = Rotation.random(n_samples, random_state=np.random.default_rng(seed)).as_matrix()
    sym = np.eye(3)[None] if group is None else np.asarray(group, dtype=np.float64)
    g = np.asarray(grid, dtype=np.float64)
    best = np.full(n_samples, -np.inf)
    for s in sym:
        qs = q @ s
        # trace(R^T Q S) = sum_ij R_ij (Q S)_ij
        tr = np.einsum("nij,mij->mn", g, qs)
        best = np.maximum(best, tr.max(axis=1))
    return float(np.degrees(np.arccos(np.clip((best - 1.0) / 2.0, -1.0, 1.0))).max())
