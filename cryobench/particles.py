"""The particle catalogue: name, label, radius (Å) and score weight of each pickable object.

The CZII values are those of the Kaggle "CZII CryoET Object Identification" challenge; the BYU
flagellar motor is the single class of the Kaggle "BYU Locating Bacterial Flagellar Motors 2025"
challenge. Any copick project's pickable objects can be turned into the same structure
(see :mod:`cryobench.data`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "ParticleType",
    "CZII_PARTICLES",
    "BYU_MOTOR",
    "czii_radii",
    "czii_weights",
    "by_name",
]


MAX_RADIUS = 1e5
"""Largest particle radius accepted, in Å (10 µm: larger than any tomogram)."""


@dataclass(frozen=True)
class ParticleType:
    """One pickable particle class.

    Attributes:
        name: copick object name (no underscores), e.g. ``"ribosome"``.
        label: integer label used in segmentation targets (1-based; 0 is background).
        radius: particle radius in Å.
        weight: weight of the class in the weighted score.
        color: RGB(A) display colour, 0-255.
        symmetry: point-group symmetry (``C1``, ``C2``, ``D2``, ``T``, ``O``, ``I``...), if known.
    """

    name: str
    label: int
    radius: float
    weight: float = 1.0
    color: tuple[int, ...] = (128, 128, 128, 255)
    symmetry: str | None = None

    def __post_init__(self) -> None:
        if "_" in self.name:
            raise ValueError(f"particle name {self.name!r} may not contain underscores (copick)")
        if isinstance(self.label, bool) or not isinstance(self.label, int) or not (
                1 <= self.label <= 255):
            raise ValueError(f"particle {self.name!r} needs a label in [1, 255] (label volumes "
                             f"are uint8, 0 is background), got {self.label!r}")
        if not (isinstance(self.radius, (int, float)) and 0 < self.radius <= MAX_RADIUS):
            raise ValueError(f"particle {self.name!r} needs a radius in (0, {MAX_RADIUS:g}] Å, "
                             f"got {self.radius}")
        if not (isinstance(self.weight, (int, float)) and math.isfinite(self.weight)
                and self.weight >= 0):
            raise ValueError(f"particle {self.name!r} needs a finite weight >= 0, got "
                             f"{self.weight}")


CZII_PARTICLES: tuple[ParticleType, ...] = (
    ParticleType("apo-ferritin", 1, 60.0, 1.0, (0, 117, 220, 255)),
    ParticleType("beta-amylase", 2, 65.0, 0.0, (153, 63, 0, 255)),
    ParticleType("beta-galactosidase", 3, 90.0, 2.0, (76, 0, 92, 255)),
    ParticleType("ribosome", 4, 150.0, 1.0, (0, 92, 49, 255)),
    ParticleType("thyroglobulin", 5, 130.0, 2.0, (43, 206, 72, 255)),
    ParticleType("virus-like-particle", 6, 135.0, 1.0, (255, 204, 153, 255)),
)
"""The six CZII classes with their official radii (Å) and weights (sum of weights: 7)."""

BYU_MOTOR = ParticleType("flagellar-motor", 1, 250.0, 1.0, (230, 60, 60, 255))
"""The BYU flagellar motor; its radius is nominal (the BYU score uses a 1000 Å threshold)."""


def czii_radii() -> dict[str, float]:
    """Radius in Å of each CZII class."""
    return {p.name: p.radius for p in CZII_PARTICLES}


def czii_weights() -> dict[str, float]:
    """Score weight of each CZII class."""
    return {p.name: p.weight for p in CZII_PARTICLES}


def by_name(particles: Iterable[ParticleType]) -> Mapping[str, ParticleType]:
    """Index particle types by name."""
    return {p.name: p for p in particles}
