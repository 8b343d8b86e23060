"""Symmetry-aware angular error of picked orientations.

An orientation is a 3x3 rotation ``R`` that maps the particle (template) frame into the
tomogram (see :mod:`cryobench.coords`). A particle with point group ``G`` looks the same in the
orientations ``R`` and ``R S`` for every ``S`` in ``G`` (``S`` acts in the particle frame), so the
error of a predicted orientation ``P`` against a reference ``R`` is

    err(R, P) = min over S in G of angle(R^T P S),

where ``angle(M) = arccos((trace(M) - 1) / 2)`` is the geodesic distance on SO(3) in degrees
(0 to 180). For ``C1`` it is the plain geodesic distance.

Groups are given in the particle frame in scipy's convention (see :mod:`cryobench.symmetry`):
``Cn`` is the n-fold rotation about z; ``Dn`` adds 2-folds perpendicular to z, one of them along
x; ``T`` and ``O`` have their 2-fold (``T``) or 4-fold (``O``) axes along x, y and z; ``I`` has
2-folds along x, y and z and 5-folds along (0, ±1, ±φ), (±1, ±φ, 0) and (±φ, 0, ±1) (φ the
golden ratio). A map whose symmetry axes lie elsewhere needs its group passed as explicit
matrices (:func:`symmetry_group` accepts an ``(K, 3, 3)`` array).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from cryobench.errors import ConfigError, InputError
from cryobench.symmetry import point_group

__all__ = [
    "symmetry_group",
    "check_rotations",
    "geodesic_angle",
    "symmetric_angular_error",
    "AngularErrorSummary",
    "summarize_angular_errors",
    "WITHIN_DEGREES",
]

WITHIN_DEGREES: tuple[float, ...] = (10.0, 20.0, 30.0)
"""The angular tolerances (degrees, inclusive) of the ``within_*`` shares."""

_ORTHONORMAL_TOL = 1e-3  # max |R^T R - I| entry accepted as a rotation (CSV rounding)


def symmetry_group(symmetry: str | np.ndarray) -> np.ndarray:
    """The ``(K, 3, 3)`` rotation matrices of a point group, identity first.

    Args:
        symmetry: ``"C1"``, ``"Cn"`` (n >= 1), ``"Dn"`` (n >= 2), ``"T"``, ``"O"`` or ``"I"``
            (case-insensitive; axes as in the module docstring), or an explicit ``(K, 3, 3)``
            array of rotations that must contain the identity and be closed under products.

    Raises:
        ConfigError: an unknown name, or matrices that are not a rotation group.
    """
    if isinstance(symmetry, str):
        try:
            return point_group(symmetry)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    mats = np.asarray(symmetry, dtype=np.float64)
    if mats.ndim == 2:
        mats = mats[None]
    if mats.ndim != 3 or mats.shape[1:] != (3, 3) or len(mats) == 0:
        raise ConfigError(f"a symmetry group must be (K, 3, 3) matrices, got shape {mats.shape}")
    try:
        check_rotations(mats, "symmetry group")
    except InputError as exc:
        raise ConfigError(exc.message) from None
    mats = _identity_first(mats)
    if not np.allclose(mats[0], np.eye(3), atol=1e-6):
        raise ConfigError("a symmetry group must contain the identity")
    # closure: every product is (close to) a member
    prod = np.einsum("aij,bjk->abik", mats, mats).reshape(-1, 9)
    dist = np.abs(prod[:, None, :] - mats.reshape(1, -1, 9)).max(axis=2).min(axis=1)
    if dist.max() > 1e-6:
        raise ConfigError("the symmetry matrices are not closed under products (not a group)")
    return mats


def _identity_first(mats: np.ndarray) -> np.ndarray:
    tr = np.trace(mats, axis1=1, axis2=2)
    order = np.argsort(-tr, kind="stable")  # trace 3 (identity) first
    return np.ascontiguousarray(mats[order])


def check_rotations(rotations: np.ndarray, source: str | None = None) -> np.ndarray:
    """``(N, 3, 3)`` float64 rotations, or :class:`InputError` naming the first bad one.

    Accepts matrices orthonormal to within 1e-3 per entry (e.g. rounded in a CSV) with
    determinant +1; rows that are all NaN are allowed (no orientation) and returned as NaN.
    """
    rot = np.asarray(rotations, dtype=np.float64).reshape(-1, 3, 3)
    flat = rot.reshape(len(rot), 9)
    missing = np.isnan(flat).all(axis=1)
    partial = ~missing & ~np.isfinite(flat).all(axis=1)
    if partial.any():
        raise InputError(f"rotation of data row {int(np.flatnonzero(partial)[0]) + 1} has a "
                         "NaN or infinite entry (all nine or none)", source)
    ok = rot[~missing]
    bad = np.zeros(len(ok), dtype=bool)
    if len(ok):
        gram = np.einsum("nji,njk->nik", ok, ok) - np.eye(3)
        bad = (np.abs(gram).reshape(len(ok), 9).max(axis=1) > _ORTHONORMAL_TOL) \
            | (np.linalg.det(ok) <= 0)
    if bad.any():
        row = int(np.flatnonzero(~missing)[np.flatnonzero(bad)[0]]) + 1
        raise InputError(f"rot_* of data row {row} is not a rotation matrix (orthonormal, "
                         "determinant +1)", source)
    return rot


def _angle_from_trace(trace: np.ndarray) -> np.ndarray:
    return np.degrees(np.arccos(np.clip((trace - 1.0) / 2.0, -1.0, 1.0)))


def geodesic_angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Geodesic distance in degrees between matching rotations of ``(N, 3, 3)`` stacks.

    ``angle(a^T b)``, computed from the rotation vector of ``a^T b`` (accurate near 0).
    """
    from scipy.spatial.transform import Rotation

    a = np.asarray(a, dtype=np.float64).reshape(-1, 3, 3)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 3, 3)
    if len(a) != len(b):
        raise ValueError(f"{len(a)} rotations against {len(b)}")
    if len(a) == 0:
        return np.zeros(0)
    rel = np.einsum("nji,njk->nik", a, b)
    return np.degrees(Rotation.from_matrix(rel).magnitude())


def symmetric_angular_error(reference: np.ndarray, predicted: np.ndarray,
                            group: np.ndarray | str = "C1") -> np.ndarray:
    """Per pair ``min over S in G of angle(reference^T predicted S)`` in degrees.

    Args:
        reference, predicted: ``(N, 3, 3)`` rotations (particle frame -> tomogram).
        group: a symmetry name or ``(K, 3, 3)`` matrices (see :func:`symmetry_group`).

    Returns:
        ``(N,)`` errors in ``[0, 180]``; NaN where either rotation is NaN.
    """
    g = symmetry_group(group) if isinstance(group, str) else np.asarray(group, np.float64)
    ref = np.asarray(reference, dtype=np.float64).reshape(-1, 3, 3)
    pred = np.asarray(predicted, dtype=np.float64).reshape(-1, 3, 3)
    if len(ref) != len(pred):
        raise ValueError(f"{len(ref)} reference rotations against {len(pred)} predicted")
    out = np.full(len(ref), np.nan)
    ok = np.isfinite(ref).all(axis=(1, 2)) & np.isfinite(pred).all(axis=(1, 2))
    if not ok.any():
        return out
    r, p = ref[ok], pred[ok]
    # trace(r^T p S) = sum_ij r_ij (p S)_ij: the best S maximises it
    ps = np.einsum("nij,kjl->nkil", p, g)
    trace = np.einsum("nij,nkij->nk", r, ps)
    best = np.argmax(trace, axis=1)
    out[ok] = geodesic_angle(r, ps[np.arange(len(r)), best])
    return out


@dataclass(frozen=True)
class AngularErrorSummary:
    """Summary of one class's angular errors (degrees); NaN figures when ``n == 0``."""

    n: int
    median: float
    p90: float
    within_10: float
    """Share of errors <= 10 degrees."""
    within_20: float
    within_30: float

    def to_dict(self) -> dict[str, Any]:
        from cryobench.metrics.results import to_jsonable

        return {k: to_jsonable(getattr(self, k)) for k in
                ("n", "median", "p90", "within_10", "within_20", "within_30")}


def summarize_angular_errors(errors: np.ndarray) -> AngularErrorSummary:
    """Median, 90th percentile (linear interpolation) and within-10/20/30-degree shares.

    NaN entries (pairs without an orientation) are left out of every figure and of ``n``.
    """
    e = np.asarray(errors, dtype=np.float64).ravel()
    e = e[np.isfinite(e)]
    if len(e) == 0:
        nan = float("nan")
        return AngularErrorSummary(0, nan, nan, nan, nan, nan)
    shares = [float(np.mean(e <= t)) for t in WITHIN_DEGREES]
    return AngularErrorSummary(int(len(e)), float(np.median(e)), float(np.percentile(e, 90)),
                               *shares)
