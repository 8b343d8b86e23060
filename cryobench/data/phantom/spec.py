"""The phantom recipe (:class:`PhantomSpec`) and its product (:class:`Phantom`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cryobench.errors import ConfigError
from cryobench.particles import ParticleType

from .optics import Optics
from .tilt import TiltSeries

__all__ = ["Crowding", "Phantom", "PhantomSpec"]

TASKS = ("particles", "motor")
IMAGING = ("filter", "tilt")
TOMO_TYPES = ("denoised", "wbp")


@dataclass(frozen=True)
class Crowding:
    """Parameters of the second-generation CZII-like scene (:mod:`.crowd`).

    Attributes:
        confusers: inclusive range of the number of look-alikes of each class per tomogram.
        clutter_radius: size range (Å) of the generic clutter bodies.
        sheet_probability: chance of one large membrane sheet crossing the volume.
        sheet_radius: curvature radius range (Å) of the sheet.
        edge_fraction: share of particles whose centre may lie within one radius of the x-y
            edges (the body is cut by the edge).
        gold_amplitude: density of a gold bead (protein is about 1).
        faint_fraction: share of the particles (every class) drawn faint: their density is
            scaled by a factor in ``faint_density``. They stand for the annotated particles no
            picker finds (damaged at the air-water interface, hidden in dense surroundings) and
            cap the recall of the easy classes below 1, as on the real data.
        faint_density: density factor range of a faint particle.
        density_scale: ``(class, factor)`` pairs scaling a class's template density (and that of
            its look-alikes) in this scene only; the first-generation templates are unchanged.
    """

    confusers: tuple[int, int] = (8, 16)
    clutter_radius: tuple[float, float] = (25.0, 130.0)
    sheet_probability: float = 0.5
    sheet_radius: tuple[float, float] = (3000.0, 8000.0)
    edge_fraction: float = 0.08
    gold_amplitude: float = 8.0
    faint_fraction: float = 0.1
    faint_density: tuple[float, float] = (0.1, 0.3)
    density_scale: tuple[tuple[str, float], ...] = (("beta-galactosidase", 1.3),)


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
        decoys: for ``task="motor"``, range (upper bound exclusive) of membrane-associated
            lumps; None keeps the first generation's (1, 4).
        imaging: ``"filter"`` (first generation: CTF, wedge and noise as one Fourier filter
            of the clean volume) or ``"tilt"`` (tilt series and weighted back-projection,
            :mod:`.tilt`).
        tilt: the tilt-series parameters (``imaging="tilt"`` only).
        crowd: the second-generation CZII scene (look-alike confusers, membrane sheets, particles
            cut by the edges, :mod:`.crowd`); None is the first-generation scene.
        tomo_types: the tomogram types a phantom provides, the first one being
            :attr:`Phantom.volume` (``"filter"`` imaging makes ``denoised`` only).
        storage_dtype: dtype the tomograms are stored in by ``cryobench data synth`` and the
            split cache (``float32`` or ``float16``).
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
    decoys: tuple[int, int] | None = None
    imaging: str = "filter"
    tilt: TiltSeries = field(default_factory=TiltSeries)
    crowd: Crowding | None = None
    tomo_types: tuple[str, ...] = ("denoised",)
    storage_dtype: str = "float32"

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
        if self.imaging not in IMAGING:
            raise ConfigError(f"phantom imaging must be one of {IMAGING}, got {self.imaging!r}")
        if not self.tomo_types or any(t not in TOMO_TYPES for t in self.tomo_types):
            raise ConfigError(f"phantom tomo_types must be taken from {TOMO_TYPES}")
        if self.imaging == "filter" and self.tomo_types != ("denoised",):
            raise ConfigError("filter imaging makes the 'denoised' tomogram only")
        if self.storage_dtype not in ("float32", "float16"):
            raise ConfigError(f"storage dtype must be float32 or float16, "
                              f"got {self.storage_dtype!r}")

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
        volume: ``(z, y, x)`` float32, zero mean and unit standard deviation (the first of
            ``tomograms``).
        voxel_spacing: Å per voxel.
        picks: DataFrame ``particle_type, x, y, z`` (Å; voxel ``i`` centre at ``i * spacing``)
            and the nine ``rot_*`` columns of :data:`cryobench.coords.ROTATION_COLUMNS`: the
            rotation each particle was placed with (template frame -> tomogram, on x, y, z).
        clean: the noiseless imaged volume (same normalisation as ``volume``) when requested
            with ``keep_clean=True``, else None.
        meta: generation details (seed, snr, defocus, counts, ...), JSON-serialisable.
        tomograms: every tomogram type made (``denoised``, ``wbp``), ``volume`` among them.
    """

    volume: np.ndarray
    voxel_spacing: float
    picks: pd.DataFrame
    clean: np.ndarray | None = None
    meta: dict = field(default_factory=dict)
    tomograms: dict[str, np.ndarray] = field(default_factory=dict)
