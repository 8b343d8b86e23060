"""Volumes and patches for training: binning, normalisation and a patch Dataset.

The working resolution is level 0 downsampled by ``bin`` (a power of two): each step filters with
``[1, 2, 1] / 4`` and keeps every second voxel, so working voxel ``i`` is centred exactly on
level-0 voxel ``bin * i`` and the working spacing is ``bin * voxel_spacing`` (the convention of
:mod:`cryobench.coords` holds at every level). Training targets come from
:func:`cryobench.data.targets.sphere_labels` at the working spacing.

Training reads each run once and samples patches from the prepared in-memory volume
(:class:`PatchDataset`), rather than through :class:`cryobench.data.sampling.PatchSampler`,
because the engine trains at this centre-preserving binned resolution on normalised volumes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy import ndimage
from torch.utils.data import Dataset

from cryobench.coords import picks_to_voxels
from cryobench.errors import ConfigError, DataError

__all__ = [
    "downsample",
    "normalise",
    "PreparedRun",
    "prepare_run",
    "PatchDataset",
]


def downsample(volume: np.ndarray, factor: int) -> np.ndarray:
    """Anti-aliased decimation by a power-of-two ``factor`` (centre-preserving, see module)."""
    factor = int(factor)
    if factor < 1 or factor & (factor - 1):
        raise ConfigError(f"bin must be a power of two >= 1, got {factor}")
    out = np.asarray(volume, dtype=np.float32)
    kernel = np.array([0.25, 0.5, 0.25], dtype=np.float32)
    while factor > 1:
        for axis in range(3):
            out = ndimage.correlate1d(out, kernel, axis=axis, mode="nearest")
            out = np.ascontiguousarray(np.take(out, np.arange(0, out.shape[axis], 2), axis=axis))
        factor //= 2
    return out


def normalise(volume: np.ndarray, clip: float = 5.0) -> np.ndarray:
    """Zero mean, unit variance (statistics from a strided subsample), clipped to +-``clip``."""
    v = np.asarray(volume, dtype=np.float32)
    sample = v[::2, ::4, ::4] if v.size > 1_000_000 else v
    mean = float(sample.mean())
    std = float(sample.std()) or 1.0
    out = (v - mean) / std
    np.clip(out, -clip, clip, out=out)
    return out.astype(np.float32, copy=False)


@dataclass
class PreparedRun:
    """One run at the working resolution: volume, spacing and particle centres."""

    name: str
    volume: np.ndarray
    """``(z, y, x)`` float32, normalised."""
    spacing: float
    """Å per working voxel."""
    centres: np.ndarray
    """``(N, 3)`` float ``z, y, x`` working voxels of the known particles (empty at inference)."""
    labels: np.ndarray
    """``(N,)`` 1-based class index of each centre (into the method's class list)."""
    picks: pd.DataFrame | None = None
    """The ground-truth picks (Å) when read, else None."""


def prepare_run(run, bin_factor: int, class_names: Sequence[str] | None = None,
                with_picks: bool = True) -> PreparedRun:
    """Read, bin and normalise a run's tomogram; with ``with_picks`` also its particle centres."""
    vol = run.tomogram(level=0)
    if vol.ndim != 3:
        raise DataError(f"tomogram of run {run.name!r} is not 3D (shape {vol.shape})")
    vol = normalise(downsample(vol, bin_factor))
    spacing = float(run.voxel_spacing) * int(bin_factor)
    centres = np.zeros((0, 3))
    labels = np.zeros(0, dtype=np.int64)
    picks = None
    if with_picks:
        picks = run.picks()
        if class_names is not None and len(picks):
            index = {n: i + 1 for i, n in enumerate(class_names)}
            picks = picks[picks["particle_type"].isin(list(index))]
            labels = picks["particle_type"].map(index).to_numpy(np.int64)
        centres = picks_to_voxels(picks, spacing) if len(picks) else centres
    return PreparedRun(run.name, vol, spacing, centres, labels, picks)


def _crop(arr: np.ndarray, start: np.ndarray, size: int) -> np.ndarray:
    """A ``size^3`` crop starting at ``start``, edge-padded where it leaves the array."""
    lo = np.maximum(start, 0)
    hi = np.minimum(start + size, arr.shape)
    crop = arr[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    pad = [(int(a - s), int(s + size - b)) for s, a, b in zip(start, lo, hi, strict=True)]
    if any(p for pr in pad for p in pr):
        crop = np.pad(crop, pad, mode="edge")
    return crop


class PatchDataset(Dataset):
    """Random cubic patches of prepared runs, reproducible from ``(seed, epoch, index)``.

    Each item is drawn with its own generator, so the result does not depend on DataLoader
    workers or order. A fraction ``pos_fraction`` of patches is centred (with jitter) on a known
    particle; the rest are uniform. Augmentation: flips of each axis and a 90 degree rotation in
    the ``y, x`` plane.

    ``kind="labels"``: items are ``(x (1, P, P, P) float32, y (P, P, P) int64)`` crops of
    ``targets``. ``kind="points"``: ``y`` is ``[has_point, z, y, x]`` float32, the position of the
    particle nearest the patch centre as a fraction of the patch (zeros when none is inside the
    central region, margin ``point_margin`` voxels from the faces). ``positive_labels`` limits
    the particles that positive patches are centred on.
    """

    def __init__(self, runs: Sequence[PreparedRun], patch_size: int, length: int, *,
                 targets: Sequence[np.ndarray] | None = None, kind: str = "labels",
                 pos_fraction: float = 0.5, seed: int = 0, augment: bool = True,
                 rot90: bool = True, point_margin: int = 0,
                 positive_labels: Sequence[int] | None = None) -> None:
        if kind not in ("labels", "points"):
            raise ValueError(f"unknown patch kind {kind!r}")
        if kind == "labels" and (targets is None or len(targets) != len(runs)):
            raise ValueError("labels patches need one target map per run")
        if not runs:
            raise DataError("no training runs")
        self.runs = list(runs)
        self.targets = None if targets is None else list(targets)
        self.patch_size = int(patch_size)
        self.length = int(length)
        self.kind = kind
        self.pos_fraction = float(pos_fraction)
        self.seed = int(seed)
        self.augment = augment
        self.rot90 = rot90
        self.point_margin = int(point_margin)
        self.epoch = 0
        self._positives = [
            np.arange(len(r.centres)) if positive_labels is None
            else np.flatnonzero(np.isin(r.labels, list(positive_labels))) for r in self.runs]
        sizes = np.array([r.volume.size for r in self.runs], dtype=np.float64)
        self._run_p = sizes / sizes.sum()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        r = int(rng.choice(len(self.runs), p=self._run_p))
        run = self.runs[r]
        p = self.patch_size
        shape = np.asarray(run.volume.shape)
        positives = self._positives[r]
        if len(positives) and rng.random() < self.pos_fraction:
            c = run.centres[positives[rng.integers(len(positives))]]
            jitter = rng.uniform(-p / 4, p / 4, size=3)
            start = np.rint(c + jitter - p / 2).astype(int)
        else:
            start = np.array([rng.integers(0, max(s - p, 0) + 1) for s in shape])
        x = _crop(run.volume, start, p)
        if self.kind == "labels":
            y = _crop(self.targets[r], start, p)
            x, y = self._augment(rng, x, y)
            return (torch.from_numpy(np.ascontiguousarray(x)[None]),
                    torch.from_numpy(np.ascontiguousarray(y).astype(np.int64)))
        # points: a 3D map with one marker voxel per centre is transformed with the patch.
        local = run.centres - start
        inside = np.all((local >= self.point_margin) & (local <= p - 1 - self.point_margin), 1)
        target = np.zeros(4, dtype=np.float32)
        flips, k = self._draw(rng)
        x = self._apply(x, flips, k)
        if inside.any():
            d = np.linalg.norm(local[inside] - (p - 1) / 2, axis=1)
            pt = local[inside][int(np.argmin(d))].copy()
            pt = self._apply_point(pt, flips, k, p)
            target[0] = 1.0
            target[1:] = pt / (p - 1)
        return torch.from_numpy(np.ascontiguousarray(x)[None]), torch.from_numpy(target)

    # ----- augmentation -------------------------------------------------------------------
    def _draw(self, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        if not self.augment:
            return np.zeros(3, dtype=bool), 0
        flips = rng.random(3) < 0.5
        k = int(rng.integers(4)) if self.rot90 else 0
        return flips, k

    @staticmethod
    def _apply(a: np.ndarray, flips: np.ndarray, k: int) -> np.ndarray:
        for axis in range(3):
            if flips[axis]:
                a = np.flip(a, axis)
        return np.rot90(a, k, axes=(1, 2)) if k else a

    @staticmethod
    def _apply_point(pt: np.ndarray, flips: np.ndarray, k: int, p: int) -> np.ndarray:
        for axis in range(3):
            if flips[axis]:
                pt[axis] = p - 1 - pt[axis]
        for _ in range(k):  # np.rot90 axes (1, 2): new[y', x'] = old[x', p-1-y']
            pt[1], pt[2] = p - 1 - pt[2], pt[1]
        return pt

    def _augment(self, rng: np.random.Generator, x: np.ndarray, y: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
        flips, k = self._draw(rng)
        return self._apply(x, flips, k), self._apply(y, flips, k)

