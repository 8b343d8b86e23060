"""Point groups as rotation matrices (numpy and scipy only; no pandas, no torch).

``C1``, ``Cn`` (n >= 1), ``Dn`` (n >= 2), ``T``, ``O`` and ``I``, in scipy's axis convention
(:meth:`scipy.spatial.transform.Rotation.create_group` with ``axis="Z"``): ``Cn`` is the n-fold
rotation about z; ``Dn`` adds n 2-folds perpendicular to z, one along x; ``T`` has its 2-folds
and ``O`` its 4-folds along x, y and z; ``I`` has 2-folds along x, y and z and 5-folds along
(0, ±1, ±φ), (±1, ±φ, 0) and (±φ, 0, ±1), φ the golden ratio. A group acts in the particle frame:
a particle with group ``G`` looks the same in the orientations ``R`` and ``R S``, ``S`` in ``G``.
"""

from __future__ import annotations

import re

import numpy as np

from cryobench.particles import SYMMETRY_PATTERN

__all__ = ["point_group", "is_symmetry_name"]


def is_symmetry_name(name: str) -> bool:
    """Whether ``name`` (case and surrounding spaces ignored) names a point group."""
    return bool(re.fullmatch(SYMMETRY_PATTERN, str(name).strip().upper()))


def point_group(name: str) -> np.ndarray:
    """The ``(K, 3, 3)`` rotation matrices of a named point group, the identity first.

    Raises:
        ValueError: an unknown name.
    """
    key = str(name).strip().upper()
    if not is_symmetry_name(key):
        raise ValueError(f"unknown symmetry {name!r}; use C1, Cn, Dn (n >= 2), T, O or I")
    if key == "C1":
        return np.eye(3)[None].copy()
    from scipy.spatial.transform import Rotation

    mats = Rotation.create_group(key, axis="Z").as_matrix()
    order = np.argsort(-np.trace(mats, axis1=1, axis2=2), kind="stable")  # identity first
    return np.ascontiguousarray(mats[order])
