"""Training targets from picks: label spheres, Gaussian heatmaps and 2-D slice boxes.

Every painter works locally: each particle touches only the sub-block of the output around it
(never a whole-volume pass per class). Positions go through :mod:`cryobench.coords` (picks in Å,
arrays ``(z, y, x)``, voxel ``i`` centred at ``i * spacing``). ``origin`` shifts the frame for
crops: the output's voxel ``(0, 0, 0)`` is voxel ``origin`` of the full tomogram.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from cryobench.coords import picks_to_voxels
from cryobench.particles import ParticleType

__all__ = ["sphere_labels", "gaussian_heatmaps", "slice_boxes", "BOX_COLUMNS"]

BOX_COLUMNS: tuple[str, ...] = ("label", "particle_type", "x0", "y0", "x1", "y1")


def _centres(picks: pd.DataFrame, spacing: float, particles: Sequence[ParticleType],
             origin: Sequence[float]) -> list[tuple[ParticleType, np.ndarray]]:
    """Per known class (in ``particles`` order) the ``(N, 3)`` z, y, x voxel centres."""
    out = []
    if len(picks) == 0:
        return out
    types = picks["particle_type"].astype(str).to_numpy()
    zyx = picks_to_voxels(picks, spacing) - np.asarray(origin, dtype=np.float64)[None, :]
    for p in particles:
        sel = types == p.name
        if sel.any():
            out.append((p, zyx[sel]))
    return out


def _block(centre: np.ndarray, reach: float, shape: Sequence[int]
           ) -> tuple[tuple[slice, ...], list[np.ndarray]] | None:
    """The index block within ``reach`` voxels of ``centre`` (clipped), and its coordinates
    relative to the centre; None when the block is empty."""
    lo = np.maximum(np.ceil(centre - reach).astype(np.int64), 0)
    hi = np.minimum(np.floor(centre + reach).astype(np.int64) + 1, np.asarray(shape[:3]))
    if np.any(hi <= lo):
        return None
    sl = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    rel = [np.arange(a, b, dtype=np.float64) - c for a, b, c in zip(lo, hi, centre, strict=True)]
    return sl, rel


def sphere_labels(picks: pd.DataFrame, shape: Sequence[int], spacing: float,
                  particles: Sequence[ParticleType], radius_fraction: float = 0.5,
                  origin: Sequence[float] = (0, 0, 0)) -> np.ndarray:
    """A ``uint8`` label volume: 0 background, ``particle.label`` inside a sphere of
    ``radius_fraction * radius`` around each pick (voxels with centre distance <= that radius).

    Larger classes are painted first, so where spheres overlap the smaller particle wins.
    Picks of types not in ``particles`` are ignored.
    """
    if radius_fraction <= 0:
        raise ValueError(f"radius_fraction must be positive, got {radius_fraction}")
    shape = tuple(int(s) for s in shape[:3])
    out = np.zeros(shape, dtype=np.uint8)
    groups = sorted(_centres(picks, spacing, particles, origin), key=lambda g: -g[0].radius)
    for p, centres in groups:
        r = radius_fraction * p.radius / spacing
        for c in centres:
            blk = _block(c, r, shape)
            if blk is None:
                continue
            sl, (dz, dy, dx) = blk
            d2 = dz[:, None, None] ** 2 + dy[None, :, None] ** 2 + dx[None, None, :] ** 2
            out[sl][d2 <= r * r] = p.label
    return out


def gaussian_heatmaps(picks: pd.DataFrame, shape: Sequence[int], spacing: float,
                      particles: Sequence[ParticleType], sigma_fraction: float = 0.25,
                      origin: Sequence[float] = (0, 0, 0), truncate: float = 3.0
                      ) -> np.ndarray:
    """Per-class heatmaps ``float32 (C, z, y, x)`` (channel ``i`` = ``particles[i]``): a Gaussian
    of peak 1 and ``sigma = sigma_fraction * radius`` at each pick, combined by maximum and cut
    off at ``truncate`` sigmas."""
    if sigma_fraction <= 0:
        raise ValueError(f"sigma_fraction must be positive, got {sigma_fraction}")
    shape = tuple(int(s) for s in shape[:3])
    out = np.zeros((len(particles), *shape), dtype=np.float32)
    index = {p.name: i for i, p in enumerate(particles)}
    for p, centres in _centres(picks, spacing, particles, origin):
        ch = out[index[p.name]]
        sigma = sigma_fraction * p.radius / spacing
        for c in centres:
            blk = _block(c, truncate * sigma, shape)
            if blk is None:
                continue
            sl, (dz, dy, dx) = blk
            g = (np.exp(-0.5 * (dz / sigma) ** 2)[:, None, None]
                 * np.exp(-0.5 * (dy / sigma) ** 2)[None, :, None]
                 * np.exp(-0.5 * (dx / sigma) ** 2)[None, None, :]).astype(np.float32)
            np.maximum(ch[sl], g, out=ch[sl])
    return out


def slice_boxes(picks: pd.DataFrame, z_index: float, spacing: float,
                particles: Sequence[ParticleType], min_fraction: float = 0.3,
                shape: Sequence[int] | None = None, origin: Sequence[float] = (0, 0, 0),
                sides: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Boxes of the particles cut by slice ``z_index``, in pixels of that slice.

    A particle of radius ``r`` whose centre is ``dz`` Å from the slice shows a disc of radius
    ``sqrt(r² - dz²)``; its box is that disc's square (centre at the pick, pixel centres at
    integer coordinates, the frame of array indices). Discs smaller than ``min_fraction * r`` are
    left out. ``sides`` (particle name -> pixels) gives a class a fixed square box of that side
    around the pick instead, in the same slices. ``shape`` ``(y, x)`` (or ``(z, y, x)``) clips
    boxes to the image and drops those outside it. Returns columns
    ``label, particle_type, x0, y0, x1, y1``.
    """
    rows = []
    sides = dict(sides or {})
    for p, centres in _centres(picks, spacing, particles, origin):
        r = p.radius
        dz = (centres[:, 0] - float(z_index)) * spacing
        keep = np.abs(dz) < r
        half = np.sqrt(np.clip(r * r - dz * dz, 0.0, None)) / spacing
        keep &= half * spacing >= min_fraction * r
        if p.name in sides:
            half = np.full(len(half), float(sides[p.name]) / 2.0)
        for c, h in zip(centres[keep], half[keep], strict=True):
            rows.append((p.label, p.name, c[2] - h, c[1] - h, c[2] + h, c[1] + h))
    df = pd.DataFrame(rows, columns=list(BOX_COLUMNS))
    df["label"] = df["label"].astype(np.int64)
    df["particle_type"] = df["particle_type"].astype(object)
    if shape is not None and len(df):
        ny, nx = (int(s) for s in tuple(shape)[-2:])
        df[["x0", "x1"]] = df[["x0", "x1"]].clip(-0.5, nx - 0.5)
        df[["y0", "y1"]] = df[["y0", "y1"]].clip(-0.5, ny - 0.5)
        df = df[(df["x1"] > df["x0"]) & (df["y1"] > df["y0"])].reset_index(drop=True)
    return df
