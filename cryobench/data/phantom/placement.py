"""Non-overlapping random placement of spherical footprints (largest first).

Two bodies never overlap: centre distance >= r_i + r_j. Spherical shells (vesicle membranes) are
obstacles too: a body stays clear of a shell by its radius plus half the shell thickness.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Occupancy", "largest_first"]


@dataclass
class Occupancy:
    """The bodies placed so far in a volume (all lengths in voxels, coordinates ``(z, y, x)``).

    Attributes:
        centres: ``(N, 3)`` centres placed so far.
        radii: ``(N,)`` footprint radii.
        shells: list of ``(centre, radius, half_thickness)`` spherical shells to keep clear of.
    """

    centres: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    radii: np.ndarray = field(default_factory=lambda: np.zeros(0))
    shells: list[tuple[np.ndarray, float, float]] = field(default_factory=list)

    def add(self, centre: np.ndarray, radius: float) -> None:
        """Record a placed body."""
        self.centres = np.vstack([self.centres, np.asarray(centre, dtype=np.float64)[None]])
        self.radii = np.append(self.radii, float(radius))

    def add_shell(self, centre: np.ndarray, radius: float, half_thickness: float) -> None:
        """Record a spherical shell obstacle (e.g. a vesicle membrane)."""
        self.shells.append((np.asarray(centre, dtype=np.float64), float(radius),
                            float(half_thickness)))

    def free(self, candidates: np.ndarray, radius: float, spacing: float = 1.0) -> np.ndarray:
        """Boolean mask of the ``(M, 3)`` candidate centres where a body of ``radius`` fits.

        ``spacing`` (>= 1) scales the required centre distance, e.g. 1.05 leaves a 5 % gap.
        """
        ok = np.ones(len(candidates), dtype=bool)
        if len(self.radii):
            d2 = ((candidates[:, None, :] - self.centres[None, :, :]) ** 2).sum(-1)
            ok &= np.all(d2 >= (spacing * (radius + self.radii[None, :])) ** 2, axis=1)
        for c, r, h in self.shells:
            dist = np.linalg.norm(candidates - c, axis=1)
            ok &= np.abs(dist - r) >= radius + h
        return ok

    def place(
        self,
        rng: np.random.Generator,
        radius: float,
        low: np.ndarray,
        high: np.ndarray,
        tries: int = 256,
        batch: int = 32,
    ) -> np.ndarray | None:
        """Draw a free centre uniformly in the box ``[low, high]``; record and return it.

        Returns None when no free spot is found in ``tries`` random draws (the caller decides
        whether that is acceptable). The draws come only from ``rng``.
        """
        low = np.asarray(low, dtype=np.float64)
        high = np.asarray(high, dtype=np.float64)
        if np.any(high < low):
            return None
        for _ in range(max(1, tries // batch)):
            cand = rng.uniform(low, high, size=(batch, 3))
            ok = self.free(cand, radius)
            if ok.any():
                c = cand[int(np.argmax(ok))]
                self.add(c, radius)
                return c
        return None


def largest_first(radii: np.ndarray) -> np.ndarray:
    """Indices ordering ``radii`` from largest to smallest (stable, so deterministic)."""
    return np.argsort(-np.asarray(radii), kind="stable")
