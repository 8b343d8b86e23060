"""2D z-slice datasets for slice detectors: per-particle boxes and per-slice normalisation.

Image coordinates: pixel ``(row i, column j)`` of a slice covers ``[j, j+1) x [i, i+1)``, so a
voxel index ``j`` maps to the image coordinate ``u = j + 0.5`` (torchvision's and YOLO's
convention). :data:`PIXEL_OFFSET` is the only place this half pixel appears; conversions between
voxels and Å stay in :mod:`cryobench.coords`.

A particle of radius ``r`` centred at slice ``zc`` cuts slice ``z`` in a disc of radius
``rho = sqrt(r^2 - (z - zc)^2)``; it gets a square box of side ``2 rho`` when
``rho >= min_fraction * r`` (the cross-section is large enough to be seen).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cryobench.coords import picks_to_voxels
from cryobench.methods.base import RunLike
from cryobench.particles import ParticleType

__all__ = [
    "PIXEL_OFFSET",
    "BOX_COLUMNS",
    "SliceSample",
    "working_volume",
    "volume_boxes",
    "normalise_slice",
    "slice_indices",
    "build_slice_dataset",
]

PIXEL_OFFSET = 0.5
"""Image coordinate of the centre of voxel index 0 (pixel edges at integers)."""

BOX_COLUMNS = ["z", "label", "x0", "y0", "x1", "y1"]
"""Columns of a boxes table: slice index, 0-based class index, box corners (image coords)."""


@dataclass
class SliceSample:
    """One training slice: the normalised uint8 image and its boxes."""

    run: str
    z: int
    image: np.ndarray
    """``(H, W)`` uint8, percentile-normalised."""
    boxes: np.ndarray
    """``(N, 4)`` float32 ``x0, y0, x1, y1`` in image coordinates."""
    labels: np.ndarray
    """``(N,)`` int64 0-based class indices."""


def volume_boxes(
    picks: pd.DataFrame,
    spacing: float,
    shape: tuple[int, int, int],
    classes: Sequence[ParticleType],
    min_fraction: float = 0.5,
    sides: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Boxes of every particle in every slice of a ``(z, y, x)`` volume of ``shape``.

    A thin wrapper over :func:`cryobench.data.targets.slice_boxes` (one call per slice that
    some particle reaches), shifted to image coordinates and relabelled.

    Args:
        picks: particle centres (``particle_type, x, y, z`` in Å); unknown types are ignored.
        spacing: voxel spacing (Å) of the volume.
        shape: volume shape ``(z, y, x)``.
        classes: the detector's classes; ``label`` is the index into this sequence.
        min_fraction: smallest cross-section radius, as a fraction of the particle radius.
        sides: particle name -> fixed box side in pixels of this volume, for classes boxed by
            a fixed square around the centre rather than by their cross-section (same slices).

    Returns:
        A DataFrame with :data:`BOX_COLUMNS`, boxes clipped to the image.
    """
    from cryobench.data.targets import slice_boxes

    index = {p.name: i for i, p in enumerate(classes)}
    parts: list[pd.DataFrame] = []
    if len(picks):
        picks = picks[picks["particle_type"].isin(list(index))]
    if len(picks):
        zc = picks_to_voxels(picks, spacing)[:, 0]
        reach = max(p.radius for p in classes) / spacing
        lo, hi = max(0, int(np.floor(zc.min() - reach))), min(shape[0] - 1,
                                                               int(np.ceil(zc.max() + reach)))
        for z in range(lo, hi + 1):
            near = np.abs(zc - z) <= reach
            if not near.any():
                continue
            b = slice_boxes(picks[near], z, spacing, classes, min_fraction, shape,
                            sides=sides)
            if len(b):
                b = b.assign(z=z, label=b["particle_type"].map(index))
                parts.append(b)
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=np.int64 if c in ("z", "label") else np.float64)
                             for c in BOX_COLUMNS})
    df = pd.concat(parts, ignore_index=True)
    df[["x0", "y0", "x1", "y1"]] += PIXEL_OFFSET
    df = df[BOX_COLUMNS].astype({"z": np.int64, "label": np.int64})
    return df.sort_values(["z", "label", "x0", "y0"], kind="stable").reset_index(drop=True)


def normalise_slice(image: np.ndarray, low: float = 0.5, high: float = 99.5) -> np.ndarray:
    """Percentile-normalise a 2D slice to uint8 (``low``/``high`` percentiles -> 0/255)."""
    img = np.asarray(image, dtype=np.float32)
    lo, hi = np.percentile(img, [low, high])
    if not np.isfinite(lo) or not np.isfinite(hi) or hi <= lo:
        return np.zeros(img.shape, dtype=np.uint8)
    out = np.clip((img - lo) / (hi - lo), 0.0, 1.0)
    return np.rint(out * 255.0).astype(np.uint8)


def slice_indices(depth: int, stride: int = 1) -> np.ndarray:
    """Every ``stride``-th slice index of a volume of ``depth`` slices, centred in the volume."""
    stride = max(1, int(stride))
    start = ((depth - 1) % stride) // 2
    return np.arange(start, depth, stride)


def working_volume(run: RunLike, bin_factor: int = 1) -> tuple[np.ndarray, float]:
    """Level 0 of ``run`` binned by ``bin_factor`` (the engine's centre-preserving decimation).

    Returns the float32 ``(z, y, x)`` volume and its voxel spacing in Å.
    """
    from cryobench.methods.engine.data import downsample

    vol = downsample(np.asarray(run.tomogram(level=0), dtype=np.float32), int(bin_factor))
    return vol, float(run.voxel_spacing) * int(bin_factor)


def build_slice_dataset(
    volumes: Iterable[tuple[str, np.ndarray, float, pd.DataFrame]],
    classes: Sequence[ParticleType],
    min_fraction: float = 0.5,
    empty_ratio: float = 0.1,
    stride: int = 1,
    rng: np.random.Generator | None = None,
    sides: Mapping[str, float] | None = None,
) -> list[SliceSample]:
    """Training slices: every ``stride``-th slice holding a box, plus sampled empty slices.

    Args:
        volumes: ``(run name, (z, y, x) volume, spacing Å, ground-truth picks)`` per run.
        classes: the detector's classes (box labels index them).
        min_fraction: smallest cross-section radius given a box (fraction of the radius).
        empty_ratio: empty slices (no box) drawn per slice with boxes; at least one per run
            when ``empty_ratio > 0`` and the run has any.
        stride: use every ``stride``-th slice.
        rng: generator for the choice of empty slices.
        sides: fixed box sides per class (pixels), see :func:`volume_boxes`.
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    samples: list[SliceSample] = []
    for name, volume, spacing, picks in volumes:
        boxes = volume_boxes(picks, spacing, volume.shape, classes, min_fraction, sides)
        zs = slice_indices(volume.shape[0], stride)
        with_boxes = set(boxes["z"].tolist())
        full = [int(z) for z in zs if z in with_boxes]
        empty = np.array([z for z in zs if z not in with_boxes], dtype=np.int64)
        n_empty = min(len(empty), int(np.ceil(empty_ratio * len(full))))
        if empty_ratio > 0 and len(empty):
            n_empty = max(n_empty, 1)
        chosen = sorted(full + rng.choice(empty, n_empty, replace=False).tolist())
        grouped = {int(z): g for z, g in boxes.groupby("z")}
        for z in chosen:
            b = grouped.get(z)
            samples.append(SliceSample(
                run=name,
                z=int(z),
                image=normalise_slice(volume[z]),
                boxes=(np.zeros((0, 4), np.float32) if b is None
                       else b[["x0", "y0", "x1", "y1"]].to_numpy(np.float32)),
                labels=(np.zeros(0, np.int64) if b is None else b["label"].to_numpy(np.int64)),
            ))
    return samples
