"""Fuse YOLO proposals with a 3D U-Net's class probabilities by weighted voting.

For each YOLO proposal of class ``c`` the U-Net probability of ``c`` in the ball of
``region_fraction`` x radius around it gives a vote ``p`` (its mean); the fused score is
``weight * yolo_score + (1 - weight) * p`` and the position moves to
``weight * yolo_position + (1 - weight) * centroid``, where ``centroid`` is the
probability-weighted centre of that ball. U-Net peaks scoring at least ``unet_threshold`` with no
same-class proposal within one radius are added with the U-Net vote alone,
``(1 - weight) * p_peak``. ``weight`` and ``unet_threshold`` are tuned on validation runs by the
method (never on test runs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from cryobench.coords import picks_to_voxels, voxel_to_angstrom

__all__ = ["ball_offsets", "unet_votes", "fuse"]


def ball_offsets(radius: float) -> np.ndarray:
    """Integer ``(z, y, x)`` offsets within ``radius`` voxels (at least the centre)."""
    k = int(np.ceil(radius))
    g = np.mgrid[-k:k + 1, -k:k + 1, -k:k + 1].reshape(3, -1).T
    g = g[(g**2).sum(1) <= max(radius, 0.0) ** 2 + 1e-9]
    return g if len(g) else np.zeros((1, 3), dtype=np.int64)


def unet_votes(zyx: np.ndarray, prob: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean probability and probability-weighted centroid (voxels) in a ball around each point.

    Voxels outside the volume are ignored; a point whose ball misses the volume votes 0 and
    keeps its position.
    """
    zyx = np.asarray(zyx, dtype=np.float64).reshape(-1, 3)
    votes = np.zeros(len(zyx))
    centroids = zyx.copy()
    offsets = ball_offsets(radius)
    shape = np.asarray(prob.shape)
    for i, c in enumerate(zyx):
        pts = offsets + np.rint(c).astype(np.int64)
        pts = pts[np.all((pts >= 0) & (pts < shape), axis=1)]
        if len(pts) == 0:
            continue
        w = prob[pts[:, 0], pts[:, 1], pts[:, 2]].astype(np.float64)
        votes[i] = w.mean()
        if w.sum() > 1e-12:
            centroids[i] = (w[:, None] * pts).sum(0) / w.sum()
    return votes, centroids


def fuse(
    proposals: pd.DataFrame,
    probs: np.ndarray,
    spacing: float,
    class_names: Sequence[str],
    radii: Mapping[str, float],
    *,
    weight: float = 0.5,
    region_fraction: float = 0.5,
    unet_peaks: pd.DataFrame | None = None,
    unet_threshold: float = 0.8,
) -> pd.DataFrame:
    """Weighted-vote fusion of the picks of one tomogram (see the module docstring).

    Args:
        proposals: YOLO picks (Å, ``score``) of one experiment.
        probs: ``(C, z, y, x)`` U-Net class probabilities (background excluded), channel ``i``
            for ``class_names[i]``, at voxel ``spacing`` Å.
        radii: class name -> radius in Å.
        weight: weight of the YOLO score (1: YOLO only, 0: U-Net only).
        region_fraction: radius of the voting ball, as a fraction of the particle radius.
        unet_peaks: U-Net candidates (Å, ``score`` = peak probability) to add where YOLO has none.
        unet_threshold: smallest peak probability added.
    """
    index = {n: i for i, n in enumerate(class_names)}
    parts = []
    cols = ["experiment", "particle_type", "x", "y", "z", "score"]
    for name, g in proposals.groupby("particle_type", sort=False):
        g = g.copy()
        r = radii[name] / spacing
        votes, centroids = unet_votes(picks_to_voxels(g, spacing), probs[index[name]],
                                      region_fraction * r)
        pos = weight * picks_to_voxels(g, spacing) + (1 - weight) * centroids
        g[["x", "y", "z"]] = voxel_to_angstrom(pos, spacing)
        g["score"] = weight * g["score"].to_numpy(np.float64) + (1 - weight) * votes
        parts.append(g[cols])
    if unet_peaks is not None and len(unet_peaks):
        for name, g in unet_peaks[unet_peaks["score"] >= unet_threshold].groupby(
                "particle_type", sort=False):
            own = proposals[proposals["particle_type"] == name]
            if len(own):
                d, _ = cKDTree(own[["x", "y", "z"]].to_numpy(np.float64)).query(
                    g[["x", "y", "z"]].to_numpy(np.float64))
                g = g[d > radii[name]]
            if len(g):
                g = g.copy()
                g["score"] = (1 - weight) * g["score"].to_numpy(np.float64)
                parts.append(g[cols])
    if not parts:
        return proposals[cols].iloc[0:0].reset_index(drop=True)
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["particle_type", "score"], ascending=[True, False],
                           kind="stable").reset_index(drop=True)
