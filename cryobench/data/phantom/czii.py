"""CZII-like scene: an ice slab with vesicles, gold beads, the six particle classes and clutter.

Placement order is largest first (vesicles, gold beads, particles by radius, then clutter), and
no two bodies overlap (centre distance >= r_i + r_j, with r the class radius for particles).
One instance of every class with a non-zero count is placed before the rest, so a class never
goes missing through crowding.
"""

from __future__ import annotations

import numpy as np

from .placement import Occupancy, largest_first
from .shapes import CZII_TEMPLATES, Blob, body_radius, clutter_body, random_rotation, stamp_body
from .spec import PhantomSpec

__all__ = ["build_scene", "ice_profile", "ice_slab"]

ICE_AMPLITUDE = 0.3
VESICLE_RADIUS = (250.0, 700.0)  # Å
VESICLE_MEMBRANE = 40.0  # Å, bilayer thickness
VESICLE_AMPLITUDE = 1.0
GOLD_RADIUS = 50.0  # Å (10 nm fiducials)
GOLD_AMPLITUDE = 4.0


def ice_slab(nz: int, rng: np.random.Generator, fraction: tuple[float, float]) -> tuple[int, int]:
    """Draw the ice slab: first and last z index (inclusive) of the sample."""
    thick = int(round(nz * rng.uniform(*fraction)))
    thick = max(4, min(nz, thick))
    start = int(rng.integers(0, nz - thick + 1))
    return start, start + thick - 1


def ice_profile(nz: int, z0: int, z1: int, amplitude: float) -> np.ndarray:
    """Ice density along z: constant between z0 and z1 with one-voxel soft edges."""
    z = np.arange(nz, dtype=np.float64)
    return amplitude * np.clip(np.minimum(z - z0 + 1.0, z1 + 1.0 - z), 0.0, 2.0) / 2.0


def _bounds(shape, z0: int, z1: int, r: float) -> tuple[np.ndarray, np.ndarray]:
    """Box of allowed centres for a body of radius ``r`` voxels (whole body inside the ice)."""
    low = np.array([max(z0, 0) + r, r, r])
    high = np.array([min(z1, shape[0] - 1) - r, shape[1] - 1 - r, shape[2] - 1 - r])
    return low, high


def place_clutter(density: np.ndarray, occ: Occupancy, rng: np.random.Generator,
                  n_range: tuple[int, int], ice: tuple[int, int], spacing: float, soft: float,
                  radius_range: tuple[float, float] = (25.0, 110.0)) -> int:
    """Paint between ``n_range[0]`` and ``n_range[1]`` random 'other proteins' (unlabelled,
    whole inside the ice, wherever ``occ`` leaves room); returns how many found a place."""
    z0, z1 = ice
    n = 0
    for _ in range(int(rng.integers(n_range[0], n_range[1] + 1))):
        body = clutter_body(rng, radius_range=radius_range)
        r = body_radius(body) / spacing
        c = occ.place(rng, r, *_bounds(density.shape, z0, z1, r), tries=64)
        if c is None:
            continue
        stamp_body(density, body, c, random_rotation(rng), spacing, soft=soft)
        n += 1
    return n


def build_scene(
    spec: PhantomSpec, spacing: float, rng: np.random.Generator
) -> tuple[np.ndarray, list[tuple[str, np.ndarray, np.ndarray]], dict]:
    """Draw and paint one CZII-like scene.

    Returns:
        ``(density, picks, meta)``: the float32 ``(z, y, x)`` density, a list of
        ``(particle_type, (z, y, x) voxel centre, 3x3 rotation on zyx vectors)`` and counts
        for the record.
    """
    shape = spec.shape
    density = np.zeros(shape, dtype=np.float32)
    z0, z1 = ice_slab(shape[0], rng, spec.ice_fraction)
    z_profile = ice_profile(shape[0], z0, z1, ICE_AMPLITUDE)
    occ = Occupancy()
    soft = 0.6

    # vesicles: large bilayer shells (kept apart from each other, may be cut by the edges)
    ves = Occupancy()
    n_ves = 0
    for _ in range(int(rng.integers(spec.vesicles[0], spec.vesicles[1] + 1))):
        r = rng.uniform(*VESICLE_RADIUS) / spacing
        low = np.array([z0, 0.0, 0.0])
        high = np.array([z1, shape[1] - 1.0, shape[2] - 1.0])
        c = ves.place(rng, r, low, high, tries=64)
        if c is None:
            continue
        blob = Blob(axes=(r * spacing,) * 3, amplitude=VESICLE_AMPLITUDE, shell=VESICLE_MEMBRANE)
        stamp_body(density, (blob,), c, np.eye(3), spacing, soft=soft)
        occ.add_shell(c, r - 0.5 * VESICLE_MEMBRANE / spacing, 0.5 * VESICLE_MEMBRANE / spacing + 1)
        n_ves += 1

    # gold beads
    n_gold = 0
    gold = (Blob(axes=(GOLD_RADIUS,) * 3, amplitude=GOLD_AMPLITUDE),)
    for _ in range(int(rng.integers(spec.gold[0], spec.gold[1] + 1))):
        r = GOLD_RADIUS / spacing
        c = occ.place(rng, r, *_bounds(shape, z0, z1, r))
        if c is not None:
            stamp_body(density, gold, c, np.eye(3), spacing, soft=soft)
            n_gold += 1

    # particles: one of each class first (largest first), then the rest (largest first)
    names, radii, counts, order = placement_order(spec, spacing, rng)
    picks: list[tuple[str, np.ndarray, np.ndarray]] = []
    placed = dict.fromkeys(names, 0)
    for k in order:
        c = occ.place(rng, radii[k], *_bounds(shape, z0, z1, radii[k]))
        if c is None:
            continue
        amp = 1.0 + rng.uniform(-spec.amplitude_jitter, spec.amplitude_jitter)
        rot = random_rotation(rng)
        stamp_body(density, CZII_TEMPLATES[names[k]], c, rot, spacing, amplitude=amp, soft=soft)
        picks.append((names[k], c, rot))
        placed[names[k]] += 1

    # clutter: other proteins, as crowded as the space allows
    n_clutter = place_clutter(density, occ, rng, spec.clutter, (z0, z1), spacing, soft)

    meta = {
        "counts": placed,
        "requested_counts": dict(zip(names, counts, strict=True)),
        "clutter": n_clutter,
        "vesicles": n_ves,
        "gold": n_gold,
        "ice_z": [z0, z1],
        "z_profile": z_profile,
    }
    return density, picks, meta


def placement_order(spec: PhantomSpec, spacing: float, rng: np.random.Generator
                    ) -> tuple[list[str], np.ndarray, list[int], list[int]]:
    """Class names, their radii in voxels (the larger of the catalogue radius and the template's
    body), the requested count of each (drawn from ``rng``) and the order in which instances are
    placed: one of each class first, then the rest, largest first both times."""
    names = [p.name for p in spec.particles]
    radii = np.array(
        [max(p.radius, body_radius(CZII_TEMPLATES[p.name])) for p in spec.particles]
    ) / spacing
    counts = [int(rng.integers(lo, hi + 1)) for lo, hi in spec.counts]
    first = [k for k in largest_first(radii) if counts[k] > 0]
    rest = [k for k in largest_first(radii) for _ in range(counts[k] - 1)]
    return names, radii, counts, first + rest
