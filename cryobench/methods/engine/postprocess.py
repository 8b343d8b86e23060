"""From probability maps to picks: peaks, component centroids, 3D NMS, threshold tuning.

Everything here works in voxels of the array it is given, except the threshold tuners, which
compare picks DataFrames in Å (the metric's units). Thresholds are tuned on validation runs only:
the tuners take the candidates and the ground truth of the runs they are handed and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.spatial import cKDTree

__all__ = [
    "find_peaks",
    "component_centroids",
    "nms",
    "extract_candidates",
    "TunedThresholds",
    "tune_thresholds",
    "apply_thresholds",
    "MotorTuning",
    "tune_motor_threshold",
]


# --------------------------------------------------------------------------------------------
# peak and component extraction (voxels)
# --------------------------------------------------------------------------------------------
def find_peaks(heatmap: np.ndarray, threshold: float, min_distance: int = 1, *,
               refine: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Local maxima of a 3D map.

    A voxel is a peak when it equals the maximum of the ``(2 min_distance + 1)^3`` cube around
    it and is ``>= threshold``. A plateau of equal maxima gives one peak at its centroid.
    ``refine`` moves each peak to the intensity-weighted centroid of its 3x3x3 neighbourhood
    (sub-voxel precision).

    Returns:
        ``(N, 3)`` float ``z, y, x`` voxel positions and ``(N,)`` scores (the map at the peak),
        sorted by decreasing score.
    """
    hm = np.asarray(heatmap, dtype=np.float32)
    if hm.ndim != 3:
        raise ValueError(f"find_peaks expects a 3D map, got shape {hm.shape}")
    size = 2 * max(int(min_distance), 0) + 1
    maxf = ndimage.maximum_filter(hm, size=size, mode="nearest")
    mask = (hm == maxf) & (hm >= threshold)
    if not mask.any():
        return np.zeros((0, 3)), np.zeros(0)
    # Statistics over the (few) peak voxels only, never over the whole volume.
    labels, n = ndimage.label(mask, structure=np.ones((3, 3, 3), dtype=bool))
    nz = np.nonzero(mask)
    lab = labels[nz] - 1
    counts = np.bincount(lab, minlength=n).astype(np.float64)
    pos = np.stack([np.bincount(lab, weights=c.astype(np.float64), minlength=n) / counts
                    for c in nz], axis=1)
    scores = np.full(n, -np.inf)
    np.maximum.at(scores, lab, hm[nz].astype(np.float64))
    if refine:
        pos = _refine(hm, pos)
    order = np.argsort(-scores, kind="stable")
    return pos[order], scores[order]


def _refine(hm: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Intensity-weighted centroid of the 3x3x3 neighbourhood of each (rounded) position."""
    centre = np.rint(pos).astype(np.int64)
    offsets = np.stack(np.meshgrid(*[np.arange(-1, 2)] * 3, indexing="ij"), -1).reshape(-1, 3)
    nb = centre[:, None, :] + offsets[None, :, :]  # (N, 27, 3)
    shape = np.asarray(hm.shape)
    valid = np.all((nb >= 0) & (nb < shape), axis=-1)
    nbc = np.clip(nb, 0, shape - 1)
    w = hm[nbc[..., 0], nbc[..., 1], nbc[..., 2]].astype(np.float64)
    w = np.where(valid, w, 0.0)
    w = w - np.where(valid, w, np.inf).min(axis=1, keepdims=True)  # relative to the local floor
    w = np.where(valid, np.clip(w, 0, None), 0.0)
    tot = w.sum(axis=1, keepdims=True)
    refined = (w[..., None] * nb).sum(axis=1) / np.where(tot > 0, tot, 1.0)
    return np.where(tot > 0, refined, pos)


def component_centroids(prob: np.ndarray, threshold: float, min_size: int = 1
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centroids of the connected components (26-connected) of ``prob >= threshold``.

    Returns ``(N, 3)`` probability-weighted ``z, y, x`` centroids, ``(N,)`` scores (the
    component's maximum probability) and ``(N,)`` sizes in voxels, sorted by decreasing score.
    """
    p = np.asarray(prob, dtype=np.float32)
    mask = p >= threshold
    labels, n = ndimage.label(mask, structure=np.ones((3, 3, 3), dtype=bool))
    if n == 0:
        return np.zeros((0, 3)), np.zeros(0), np.zeros(0, dtype=np.int64)
    idx = np.arange(1, n + 1)
    sizes = np.asarray(ndimage.sum_labels(mask, labels, idx), dtype=np.int64)
    pos = np.asarray(ndimage.center_of_mass(p, labels, idx), dtype=np.float64).reshape(-1, 3)
    scores = np.asarray(ndimage.maximum(p, labels, idx), dtype=np.float64)
    keep = sizes >= min_size
    pos, scores, sizes = pos[keep], scores[keep], sizes[keep]
    order = np.argsort(-scores, kind="stable")
    return pos[order], scores[order], sizes[order]


def nms(points: np.ndarray, scores: np.ndarray, labels: np.ndarray | None = None,
        radius: float | Mapping[int, float] = 1.0) -> np.ndarray:
    """Class-aware greedy 3D non-maximum suppression.

    Points are visited by decreasing score; a point is dropped when a kept point of the same
    label lies within ``radius`` (a scalar, or a mapping label -> radius). Points of different
    labels never suppress each other.

    Returns:
        Indices of the kept points, by decreasing score.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    sc = np.asarray(scores, dtype=np.float64)
    lab = np.zeros(len(pts), dtype=np.int64) if labels is None else np.asarray(labels)
    keep_all: list[np.ndarray] = []
    for c in np.unique(lab):
        sel = np.flatnonzero(lab == c)
        r = float(radius[int(c)] if isinstance(radius, Mapping) else radius)
        order = sel[np.argsort(-sc[sel], kind="stable")]
        tree = cKDTree(pts[order])
        suppressed = np.zeros(len(order), dtype=bool)
        for i in range(len(order)):
            if suppressed[i]:
                continue
            for j in tree.query_ball_point(pts[order[i]], r):
                if j > i:
                    suppressed[j] = True
        keep_all.append(order[~suppressed])
    if not keep_all:
        return np.zeros(0, dtype=np.int64)
    keep = np.concatenate(keep_all)
    return keep[np.argsort(-sc[keep], kind="stable")]


def extract_candidates(probs: np.ndarray, radii_voxels: Sequence[float], *, floor: float = 0.05,
                       sigma_fraction: float = 0.25, peak_fraction: float = 0.5,
                       nms_fraction: float = 1.0, mode: str = "peaks"
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Candidate particles from per-class probability maps ``(C, z, y, x)`` (no background).

    ``mode="peaks"``: each map is Gaussian-smoothed (sigma = ``sigma_fraction`` x radius) and its
    local maxima (cube half-width ``peak_fraction`` x radius) above ``floor`` are kept.
    ``mode="components"``: centroids of connected components of ``prob >= floor``.
    Then per-class NMS with radius ``nms_fraction`` x radius.

    Returns ``(N, 3)`` voxel ``z, y, x``, ``(N,)`` scores and ``(N,)`` class indices into
    ``probs`` (0-based).
    """
    pts, scs, cls = [], [], []
    for c, r in enumerate(radii_voxels):
        p = probs[c]
        if mode == "peaks":
            sigma = sigma_fraction * r
            sm = ndimage.gaussian_filter(p, sigma) if sigma > 0.3 else p
            pos, score = find_peaks(sm, floor, max(1, int(round(peak_fraction * r))))
        elif mode == "components":
            pos, score, _ = component_centroids(p, floor)
        else:
            raise ValueError(f"unknown candidate mode {mode!r}")
        keep = nms(pos, score, None, nms_fraction * r)
        pts.append(pos[keep])
        scs.append(score[keep])
        cls.append(np.full(len(keep), c, dtype=np.int64))
    if not pts:
        return np.zeros((0, 3)), np.zeros(0), np.zeros(0, dtype=np.int64)
    return np.concatenate(pts), np.concatenate(scs), np.concatenate(cls)


# --------------------------------------------------------------------------------------------
# Threshold tuning (Å); the counting rules are the metrics' own (cryobench.metrics.counts)
# --------------------------------------------------------------------------------------------
@dataclass
class TunedThresholds:
    """Per-class score thresholds and the validation F-beta each reached."""

    thresholds: dict[str, float]
    fbeta: dict[str, float] = field(default_factory=dict)
    n_reference: dict[str, int] = field(default_factory=dict)


def tune_thresholds(candidates: pd.DataFrame, truth: pd.DataFrame, radii: Mapping[str, float],
                    *, beta: float = 4.0, distance_fraction: float = 0.5,
                    default: float = 0.5) -> TunedThresholds:
    """Per-class score thresholds that maximise the CZII F-beta on the given (validation) runs.

    Args:
        candidates: picks of the validation runs (Å, with ``score``), below any threshold.
        truth: the ground-truth picks of the same validation runs.
        radii: class name -> radius in Å; a match is within ``distance_fraction`` x radius.
        beta: the F-beta (4 for CZII).
        default: threshold for a class the runs cannot tune (no references, no candidates,
            or no candidate near any reference).

    The weighted CZII score is a weighted sum of independent per-class F-betas, so maximising
    each class maximises the score. Counting is the metric's own Kaggle rule
    (:func:`cryobench.metrics.counts.czii_threshold_curve`). The threshold is placed midway
    between the lowest kept score and the next lower candidate score.
    """
    from cryobench.metrics.counts import czii_threshold_curve, fbeta

    result = TunedThresholds({})
    for name, radius in radii.items():
        cand = candidates[candidates["particle_type"] == name].reset_index(drop=True)
        ref = truth[truth["particle_type"] == name].reset_index(drop=True)
        result.n_reference[name] = len(ref)
        if len(ref) == 0 or len(cand) == 0:
            result.thresholds[name] = float(default)
            result.fbeta[name] = 0.0
            continue
        levels, tp, kept = czii_threshold_curve(cand, ref, distance_fraction * float(radius))
        fs = fbeta(tp, kept - tp, len(ref) - tp, beta)[2]
        k = int(np.argmax(fs))
        result.fbeta[name] = float(fs[k])
        if fs[k] <= 0:  # no candidate matches any reference: nothing to tune
            result.thresholds[name] = float(default)
            continue
        lower = levels[k + 1] if k + 1 < len(levels) else levels[k] - 1e-6
        result.thresholds[name] = float((levels[k] + lower) / 2)
    return result


def apply_thresholds(picks: pd.DataFrame, thresholds: Mapping[str, float]) -> pd.DataFrame:
    """Keep the picks whose ``score`` reaches their class's threshold (classes without one stay)."""
    thr = picks["particle_type"].map(dict(thresholds)).astype(np.float64).fillna(-np.inf)
    return picks[picks["score"].to_numpy(np.float64) >= thr.to_numpy()].reset_index(drop=True)


@dataclass
class MotorTuning:
    """The "no motor" confidence threshold and the validation F-beta it reached."""

    threshold: float
    fbeta: float


def tune_motor_threshold(best: Mapping[str, tuple[float, np.ndarray] | None],
                         truth: Mapping[str, np.ndarray | None], *, distance: float = 1000.0,
                         beta: float = 2.0, default: float = 0.5) -> MotorTuning:
    """Confidence threshold that maximises the BYU F-beta on the given (validation) runs.

    Args:
        best: run name -> ``(confidence, xyz Å)`` of the best candidate, or None.
        truth: run name -> motor position ``xyz`` (Å) or None when the run has no motor.
        distance: match distance in Å (1000 in BYU).

    BYU rules: motor + close prediction = TP; motor + no or distant prediction = FN; no motor +
    a prediction = FP.
    """
    from cryobench.metrics.counts import fbeta, motor_outcomes

    names = sorted(truth)
    confs = sorted({float(best[n][0]) for n in names if best.get(n) is not None}, reverse=True)
    if not confs:
        return MotorTuning(float(default), 0.0)
    levels = np.array([np.inf] + confs)  # from "never predict" down to the lowest confidence
    has_motor = np.array([truth[n] is not None for n in names])
    conf = np.array([-np.inf if best.get(n) is None else float(best[n][0]) for n in names])
    within = np.array([best.get(n) is not None and truth[n] is not None
                       and bool(np.linalg.norm(np.asarray(best[n][1], np.float64)
                                               - np.asarray(truth[n], np.float64)) <= distance)
                       for n in names])
    counts = np.array([[np.sum(o == k) for k in ("tp", "fp", "fn")]
                       for o in (motor_outcomes(has_motor, conf >= t, within) for t in levels)])
    scores = fbeta(counts[:, 0], counts[:, 1], counts[:, 2], beta)[2]
    k = int(np.argmax(scores))  # ties: the highest threshold (fewest false motors)
    if k == 0:
        return MotorTuning(float(confs[0]) + 1e-6, float(scores[0]))
    lower = levels[k + 1] if k + 1 < len(levels) else levels[k] - 1e-6
    return MotorTuning(float((levels[k] + lower) / 2), float(scores[k]))
