"""The phantom recipe (:class:`PhantomSpec`) and its product (:class:`Phantom`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cryobench.errors import ConfigError
from cryobench.particles import ParticleType

from .optics import Optics

__all__ = ["Phantom", "PhantomSpec"]

TASKS = ("particles", "motor")


@dataclass(frozen=True)
class PhantomSpec:
    """Everything that defines a family of synthetic tomograms (one preset).

    Attributes:
        name: preset name.
        task: ``"particles"`` (CZII-like scene) or ``"motor"`` (BYU-like bacterial cell).
        shape: ``(z, y, x)`` voxels.
        voxel_spacing: voxel spacing in Å (the nominal value when ``spacing_range`` is set).
        spacing_range: when set, each tomogram draws its spacing uniformly in this range (Å),
            rounded to 0.1 Å.
        particles: the pickable classes.
        counts: per class (aligned with ``particles``) the inclusive range the count of each
            tomogram is drawn from. For ``task="motor"`` this is ignored (0 or 1 motor).
        snr: default ``var(signal) / var(noise)`` of the imaged volume.
        optics: microscope / reconstruction model.
        clutter: inclusive range of the number of non-target protein blobs.
        vesicles: inclusive range of the number of lipid vesicles.
        gold: inclusive range of the number of gold beads.
        ice_fraction: inclusive range of the ice slab thickness as a fraction of the z extent.
        amplitude_jitter: per-particle density scale is drawn in ``1 ± amplitude_jitter``.
        motor_probability: for ``task="motor"``, chance that a tomogram holds a motor.
        cells: for ``task="motor"``, inclusive range of extra cells without a motor.
    """

    name: str
    task: str
    shape: tuple[int, int, int]
    voxel_spacing: float
    particles: tuple[ParticleType, ...]
    counts: tuple[tuple[int, int], ...] = ()
    snr: float = 0.1
    optics: Optics = field(default_factory=Optics)
    spacing_range: tuple[float, float] | None = None
    clutter: tuple[int, int] = (0, 0)
    vesicles: tuple[int, int] = (0, 0)
    gold: tuple[int, int] = (0, 0)
    ice_fraction: tuple[float, float] = (0.75, 0.9)
    amplitude_jitter: float = 0.1
    motor_probability: float = 0.5
    cells: tuple[int, int] = (0, 1)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ConfigError(f"phantom task must be one of {TASKS}, got {self.task!r}")
        if len(self.shape) != 3 or min(self.shape) < 8:
            raise ConfigError(f"phantom shape must be 3 sizes >= 8, got {self.shape}")
        if self.task == "particles" and len(self.counts) != len(self.particles):
            raise ConfigError("phantom counts must give one (min, max) range per particle class")
        if not self.snr > 0:
            raise ConfigError(f"phantom snr must be positive, got {self.snr}")
        if self.voxel_spacing <= 0:
            raise ConfigError(f"voxel spacing must be positive, got {self.voxel_spacing}")

    def draw_spacing(self, rng: np.random.Generator) -> float:
        """The voxel spacing of one tomogram (fixed, or drawn from ``spacing_range``)."""
        if self.spacing_range is None:
            return float(self.voxel_spacing)
        lo, hi = self.spacing_range
        return float(np.round(rng.uniform(lo, hi), 1))


@dataclass
class Phantom:
    """One synthetic tomogram with its ground truth.

    Attributes:
        volume: ``(z, y, x)`` float32, zero mean and unit standard deviation.
        voxel_spacing: Å per voxel.
        picks: DataFrame ``particle_type, x, y, z`` (Å; voxel ``i`` centre at ``i * spacing``).
        clean: the noiseless imaged volume (same normalisation as ``volume``) when requested
            with ``keep_clean=True``, else None.
        meta: generation details (seed, snr, defocus, counts, ...), JSON-serialisable.
    """

    volume: np.ndarray
    voxel_spacing: float
    picks: pd.DataFrame
    clean: np.ndarray | None = None
    meta: dict = field(default_factory=dict)
