"""Lift 2D slice detections to 3D picks.

Per class, box centres in neighbouring slices that lie within ``link_fraction`` of the particle
radius of each other are linked (single linkage, at most ``max_gap`` inspected slices missing); a
linked group longer than one particle's slice span is cut into span-long pieces. Each piece is one
3D pick: ``x, y`` the score-weighted mean of its box centres, ``z`` the middle of its slice range,
and a score that is the sum over slices of the best box score divided by the number of inspected
slices the particle should appear in (capped at 1), so a particle seen in every slice scores its
mean box score and a single-slice false positive scores little.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from cryobench.coords import voxels_to_picks
from cryobench.methods.slices.dataset import PIXEL_OFFSET
from cryobench.particles import ParticleType

__all__ = ["DETECTION_COLUMNS", "empty_detections", "lift_detections", "top_per_run"]

DETECTION_COLUMNS = ["z", "label", "x0", "y0", "x1", "y1", "score"]
"""Slice detections: slice index, 0-based class index, box (image coords), score."""


def empty_detections() -> pd.DataFrame:
    """An empty detections table with :data:`DETECTION_COLUMNS`."""
    return pd.DataFrame({c: pd.Series(dtype=np.int64 if c in ("z", "label") else np.float64)
                         for c in DETECTION_COLUMNS})


def _components(points: np.ndarray, z: np.ndarray, link_xy: float, link_z: float) -> np.ndarray:
    """Connected-component labels of detections linked in xy (Euclidean) and z (slices)."""
    n = len(points)
    if n == 1:
        return np.zeros(1, dtype=np.int64)
    scaled = np.column_stack([points, z * (link_xy / max(link_z, 1e-9))])
    pairs = cKDTree(scaled).query_pairs(r=np.sqrt(2.0) * link_xy + 1e-9, output_type="ndarray")
    if len(pairs):
        dxy = np.linalg.norm(points[pairs[:, 0]] - points[pairs[:, 1]], axis=1)
        dz = np.abs(z[pairs[:, 0]] - z[pairs[:, 1]])
        pairs = pairs[(dxy <= link_xy + 1e-9) & (dz <= link_z + 1e-9)]
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _split_by_span(z: np.ndarray, span: float) -> np.ndarray:
    """Cut a group (sorted by ``z``) into consecutive pieces no longer than ``span`` slices."""
    piece = np.zeros(len(z), dtype=np.int64)
    start, k = z[0], 0
    for i in range(1, len(z)):
        if z[i] - start > span:
            k, start = k + 1, z[i]
        piece[i] = k
    return piece


def lift_detections(
    detections: pd.DataFrame,
    classes: Sequence[ParticleType],
    spacing: float,
    experiment: str,
    stride: int = 1,
    depth: int | None = None,
    link_fraction: float = 0.5,
    max_gap: int = 1,
    min_fraction: float = 0.5,
) -> pd.DataFrame:
    """Cluster per-slice detections of one tomogram into 3D picks (Å) with scores.

    Args:
        detections: :data:`DETECTION_COLUMNS` for the inspected slices of one volume.
        classes: the detector's classes (``label`` indexes them).
        spacing: voxel spacing (Å) of the volume the detections were made on.
        experiment: run name written into the picks.
        stride: the detector looked at every ``stride``-th slice.
        depth: number of slices of the volume (to count the expected slices near its faces).
        link_fraction: largest xy distance between linked box centres, as a fraction of radius.
        max_gap: how many inspected slices may be missing inside one particle.
        min_fraction: the smallest cross-section (fraction of radius) a detector is trained on;
            sets a particle's slice span ``2 r sqrt(1 - min_fraction^2)``.
    """
    out: list[pd.DataFrame] = []
    stride = max(1, int(stride))
    for label, group in detections.groupby("label", sort=True):
        particle = classes[int(label)]
        r = particle.radius / spacing
        half = r * np.sqrt(max(0.0, 1.0 - min_fraction**2))
        z = group["z"].to_numpy(np.float64)
        cx = (group["x0"].to_numpy() + group["x1"].to_numpy()) / 2 - PIXEL_OFFSET
        cy = (group["y0"].to_numpy() + group["y1"].to_numpy()) / 2 - PIXEL_OFFSET
        score = group["score"].to_numpy(np.float64)
        comp = _components(np.column_stack([cx, cy]), z, max(1.0, link_fraction * r),
                           stride * (1 + max_gap))
        centres, scores = [], []
        for c in np.unique(comp):
            idx = np.flatnonzero(comp == c)
            idx = idx[np.argsort(z[idx], kind="stable")]
            for p in np.unique(piece := _split_by_span(z[idx], 2 * half + stride)):
                sel = idx[piece == p]
                w = score[sel]
                wsum = max(w.sum(), 1e-12)
                zc = (z[sel].min() + z[sel].max()) / 2
                lo, hi = zc - half, zc + half
                if depth is not None:
                    lo, hi = max(lo, 0.0), min(hi, depth - 1.0)
                expected = max(1, int(np.floor(hi / stride) - np.ceil(lo / stride)) + 1)
                best = pd.Series(w).groupby(z[sel]).max().sum()
                centres.append((zc, (w * cy[sel]).sum() / wsum, (w * cx[sel]).sum() / wsum))
                scores.append(min(1.0, best / expected))
        out.append(voxels_to_picks(np.asarray(centres), spacing, experiment, particle.name,
                                   np.asarray(scores)))
    if not out:
        return voxels_to_picks(np.zeros((0, 3)), spacing, experiment, "", np.zeros(0))
    picks = pd.concat(out, ignore_index=True)
    return picks.sort_values(["particle_type", "score"], ascending=[True, False],
                             kind="stable").reset_index(drop=True)


def top_per_run(picks: pd.DataFrame) -> pd.DataFrame:
    """Keep the top-scoring pick of each experiment (the motor task: at most one motor)."""
    if len(picks) == 0:
        return picks
    order = picks.sort_values("score", ascending=False, kind="stable")
    return order.drop_duplicates("experiment", keep="first").reset_index(drop=True)
