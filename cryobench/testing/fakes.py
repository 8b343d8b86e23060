"""Small in-memory runs (bright balls in noise) for tests, examples and benchmarks.

:class:`FakeRun` satisfies :class:`cryobench.methods.base.RunLike` without copick or files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import ndimage

from cryobench.coords import voxels_to_picks
from cryobench.particles import BYU_MOTOR, CZII_PARTICLES, ParticleType, by_name

__all__ = ["FakeRun", "make_fake_runs", "make_fake_motor_runs", "FAKE_PARTICLES"]

FAKE_PARTICLES: tuple[ParticleType, ...] = tuple(
    by_name(CZII_PARTICLES)[n] for n in ("apo-ferritin", "ribosome"))
"""Two CZII classes that differ in size (60 and 150 Å radius)."""


@dataclass
class FakeRun:
    """A run held in memory: ``volume`` is level 0 ``(z, y, x)``; ``truth`` the picks (Å)."""

    name: str
    volume: np.ndarray
    voxel_spacing: float
    particles: tuple[ParticleType, ...]
    truth: pd.DataFrame
    calls: dict[str, int] = field(default_factory=lambda: {"tomogram": 0, "picks": 0})

    def tomogram(self, level: int = 0, crop: tuple[slice, slice, slice] | None = None
                 ) -> np.ndarray:
        self.calls["tomogram"] += 1
        vol = self.volume
        if level:
            f = 2 ** int(level)
            z, y, x = (s // f * f for s in vol.shape)
            vol = vol[:z, :y, :x].reshape(z // f, f, y // f, f, x // f, f).mean((1, 3, 5))
        return np.array(vol[crop] if crop is not None else vol, dtype=np.float32)

    def picks(self) -> pd.DataFrame:
        self.calls["picks"] += 1
        return self.truth.copy()


def _ball(vol: np.ndarray, centre: np.ndarray, radius: float, value: float) -> None:
    lo = np.maximum(np.floor(centre - radius).astype(int), 0)
    hi = np.minimum(np.ceil(centre + radius).astype(int) + 1, vol.shape)
    zz, yy, xx = np.ogrid[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    d2 = (zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2
    vol[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]][d2 <= radius * radius] += value


def _place(rng: np.random.Generator, shape: Sequence[int], radii: Sequence[float],
           tries: int = 200) -> list[np.ndarray | None]:
    placed: list[tuple[np.ndarray, float]] = []
    out: list[np.ndarray | None] = []
    for r in radii:
        pos = None
        for _ in range(tries):
            c = np.array([rng.uniform(r, s - 1 - r) if s - 1 > 2 * r else (s - 1) / 2
                          for s in shape])
            if all(np.linalg.norm(c - p) >= r + q + 1 for p, q in placed):
                pos = c
                break
        if pos is not None:
            placed.append((pos, r))
        out.append(pos)
    return out


def make_fake_runs(n: int = 2, shape: Sequence[int] = (32, 64, 64), *, spacing: float = 10.0,
                   particles: Sequence[ParticleType] = FAKE_PARTICLES, per_class: int = 3,
                   noise: float = 0.3, seed: int = 0, prefix: str = "fake") -> list[FakeRun]:
    """``n`` runs with ``per_class`` balls of each class (radius = the class radius) in noise."""
    runs = []
    for k in range(n):
        rng = np.random.default_rng([seed, k])
        vol = np.zeros(tuple(shape), dtype=np.float32)
        radii, names = [], []
        for p in sorted(particles, key=lambda q: -q.radius):
            radii += [p.radius / spacing] * per_class
            names += [p.name] * per_class
        pos = _place(rng, shape, radii)
        zyx, kept = [], []
        for c, r, name in zip(pos, radii, names, strict=True):
            if c is None:
                continue
            _ball(vol, c, r, 1.0)
            zyx.append(c)
            kept.append(name)
        vol = ndimage.gaussian_filter(vol, 1.0)
        vol += noise * rng.standard_normal(vol.shape, dtype=np.float32)
        name = f"{prefix}{k}"
        truth = voxels_to_picks(np.asarray(zyx).reshape(-1, 3), spacing, name, kept)
        runs.append(FakeRun(name, vol, spacing, tuple(particles), truth))
    return runs


def make_fake_motor_runs(n: int = 4, shape: Sequence[int] = (32, 64, 64), *,
                         spacing: float = 40.0, motor_fraction: float = 0.75,
                         noise: float = 0.3, seed: int = 0, prefix: str = "motor"
                         ) -> list[FakeRun]:
    """Motor-task runs: a bright ball of radius 250 Å in most runs, nothing in the others."""
    runs = []
    for k in range(n):
        rng = np.random.default_rng([seed, 1000 + k])
        vol = np.zeros(tuple(shape), dtype=np.float32)
        has = k < max(1, int(round(motor_fraction * n)))
        zyx = []
        if has:
            r = BYU_MOTOR.radius / spacing
            c = np.array([rng.uniform(min(r + 1, (s - 1) / 2), max(s - 2 - r, (s - 1) / 2))
                          for s in shape])
            _ball(vol, c, r, 1.0)
            zyx.append(c)
        vol = ndimage.gaussian_filter(vol, 1.0)
        vol += noise * rng.standard_normal(vol.shape, dtype=np.float32)
        name = f"{prefix}{k}"
        truth = voxels_to_picks(np.asarray(zyx).reshape(-1, 3), spacing, name, BYU_MOTOR.name)
        runs.append(FakeRun(name, vol, spacing, (BYU_MOTOR,), truth))
    return runs
