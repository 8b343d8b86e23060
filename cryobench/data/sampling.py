"""Random training crops biased towards particles, with xy-only augmentation.

Flips along y / x and rotations by 90° in the xy plane keep z the beam axis, so the missing
wedge stays a wedge around z; z is never flipped or swapped with another axis.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cryobench.coords import picks_to_voxels
from cryobench.data.targets import gaussian_heatmaps, sphere_labels
from cryobench.particles import ParticleType

__all__ = ["Patch", "PatchSampler", "TARGETS", "augment_xy"]

TARGETS: tuple[str, ...] = ("labels", "heatmaps")


@dataclass
class Patch:
    """One training crop.

    Attributes:
        image: float32 ``(z, y, x)``.
        labels: uint8 ``(z, y, x)`` sphere labels (if asked for).
        heatmaps: float32 ``(C, z, y, x)`` (if asked for).
        run: run name.
        origin: ``(z, y, x)`` voxel of the tomogram at the crop's ``(0, 0, 0)`` (before
            augmentation; parts outside the tomogram are zero-padded).
        augment: ``(k, flip_y, flip_x)``: rot90 count in the xy plane then flips, as applied by
            :func:`augment_xy`.
    """

    image: np.ndarray
    run: str
    origin: tuple[int, int, int]
    augment: tuple[int, bool, bool] = (0, False, False)
    labels: np.ndarray | None = None
    heatmaps: np.ndarray | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def augment_xy(arr: np.ndarray, k: int, flip_y: bool, flip_x: bool) -> np.ndarray:
    """Rotate by ``k`` × 90° in the (y, x) plane, then flip y and/or x; the last three axes of
    ``arr`` are ``(z, y, x)`` (leading channel axes are left alone). Returns a contiguous copy."""
    out = np.rot90(arr, k=k, axes=(-2, -1)) if k % 4 else arr
    if flip_y:
        out = out[..., ::-1, :]
    if flip_x:
        out = out[..., :, ::-1]
    return np.ascontiguousarray(out)


class PatchSampler:
    """Draw random crops from runs, a ``pos_fraction`` of them centred near a particle.

    Args:
        runs: :class:`cryobench.methods.RunLike` handles (ground truth from ``run.picks()``).
        patch_size: ``(z, y, x)`` voxels (or one int for a cube).
        pos_fraction: chance that a crop is centred on a random particle (jittered by up to a
            quarter of the patch), else it is uniform over the tomogram.
        rng: a NumPy generator (the only source of randomness: same seed, same patches).
        targets: any of ``"labels"``, ``"heatmaps"``.
        radius_fraction / sigma_fraction: passed to the target painters.
        augment: apply a random xy rot90 (only when the patch is square in xy) and flips.
        in_memory: read each tomogram once and keep it (fast; memory = the tomograms), else read
            each crop from the zarr store.
        level: pyramid level to read (picks are scaled accordingly).
    """

    def __init__(self, runs: Sequence[Any], patch_size: int | Sequence[int], *,
                 pos_fraction: float = 0.5, rng: np.random.Generator | None = None,
                 targets: Sequence[str] = ("labels",), radius_fraction: float = 0.5,
                 sigma_fraction: float = 0.25, augment: bool = True, in_memory: bool = False,
                 level: int = 0) -> None:
        if not runs:
            raise ValueError("PatchSampler needs at least one run")
        size = (patch_size,) * 3 if isinstance(patch_size, (int, np.integer)) else patch_size
        self.patch_size: tuple[int, int, int] = tuple(int(s) for s in size)  # type: ignore
        if len(self.patch_size) != 3 or min(self.patch_size) < 1:
            raise ValueError(f"patch_size must be 3 positive sizes, got {patch_size}")
        if not 0.0 <= pos_fraction <= 1.0:
            raise ValueError(f"pos_fraction must be in [0, 1], got {pos_fraction}")
        unknown = sorted(set(targets) - set(TARGETS))
        if unknown:
            raise ValueError(f"unknown target(s) {unknown}; choose from {TARGETS}")
        self.runs = list(runs)
        self.pos_fraction = float(pos_fraction)
        self.rng = rng if rng is not None else np.random.default_rng(0)
        self.targets = tuple(targets)
        self.radius_fraction = radius_fraction
        self.sigma_fraction = sigma_fraction
        self.augment = augment
        self.in_memory = in_memory
        self.level = int(level)
        self.particles: tuple[ParticleType, ...] = tuple(self.runs[0].particles)
        self._volumes: dict[int, np.ndarray] = {}
        self._picks: list[pd.DataFrame] = []
        self._centres: list[np.ndarray] = []
        self._shapes: list[tuple[int, int, int]] = []
        self._spacings: list[float] = []
        for run in self.runs:
            factor = 2 ** self.level
            spacing = float(run.voxel_spacing) * factor
            shape = (tuple(run.level_shape(self.level)) if hasattr(run, "level_shape")
                     else tuple(int(np.ceil(s / factor)) for s in run.shape))
            picks = run.picks()
            self._picks.append(picks)
            self._centres.append(picks_to_voxels(picks, spacing))
            self._shapes.append(shape)  # type: ignore[arg-type]
            self._spacings.append(spacing)
        self._n_picks = np.array([len(c) for c in self._centres])

    def __iter__(self) -> Iterator[Patch]:
        while True:
            yield self.sample()

    def batch(self, n: int) -> list[Patch]:
        return [self.sample() for _ in range(n)]

    def _read(self, i: int, origin: np.ndarray) -> np.ndarray:
        shape = np.asarray(self._shapes[i])
        size = np.asarray(self.patch_size)
        lo = np.maximum(origin, 0)
        hi = np.minimum(origin + size, shape)
        out = np.zeros(self.patch_size, dtype=np.float32)
        if np.any(hi <= lo):
            return out
        src = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
        dst = tuple(slice(int(a - o), int(b - o)) for a, b, o in zip(lo, hi, origin, strict=True))
        if self.in_memory:
            if i not in self._volumes:
                self._volumes[i] = self.runs[i].tomogram(self.level)
            out[dst] = self._volumes[i][src]
        else:
            out[dst] = self.runs[i].tomogram(self.level, src)
        return out

    def sample(self) -> Patch:
        """One random patch (with targets and augmentation)."""
        rng = self.rng
        size = np.asarray(self.patch_size)
        positive = self._n_picks.sum() > 0 and rng.random() < self.pos_fraction
        if positive:
            weights = self._n_picks / self._n_picks.sum()
            i = int(rng.choice(len(self.runs), p=weights))
            centre = self._centres[i][int(rng.integers(self._n_picks[i]))]
            jitter = rng.uniform(-0.25, 0.25, size=3) * size
            origin = np.rint(centre + jitter - size / 2).astype(np.int64)
            shape = np.asarray(self._shapes[i])
            origin = np.clip(origin, np.minimum(0, shape - size), np.maximum(0, shape - size))
        else:
            i = int(rng.integers(len(self.runs)))
            shape = np.asarray(self._shapes[i])
            high = np.maximum(shape - size, 0) + 1
            origin = np.array([rng.integers(h) for h in high], dtype=np.int64)
        image = self._read(i, origin)
        labels = heatmaps = None
        if "labels" in self.targets:
            labels = sphere_labels(self._picks[i], self.patch_size, self._spacings[i],
                                   self.particles, self.radius_fraction, origin=origin)
        if "heatmaps" in self.targets:
            heatmaps = gaussian_heatmaps(self._picks[i], self.patch_size, self._spacings[i],
                                         self.particles, self.sigma_fraction, origin=origin)
        aug = (0, False, False)
        if self.augment:
            k = int(rng.integers(4)) if self.patch_size[1] == self.patch_size[2] else \
                2 * int(rng.integers(2))
            aug = (k, bool(rng.integers(2)), bool(rng.integers(2)))
            image = augment_xy(image, *aug)
            if labels is not None:
                labels = augment_xy(labels, *aug)
            if heatmaps is not None:
                heatmaps = augment_xy(heatmaps, *aug)
        return Patch(image=image, run=self.runs[i].name,
                     origin=tuple(int(o) for o in origin),  # type: ignore[arg-type]
                     augment=aug, labels=labels, heatmaps=heatmaps)
