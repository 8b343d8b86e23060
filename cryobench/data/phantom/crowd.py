"""Second-generation CZII-like scene: crowded ice with look-alikes of every class.

On top of the first-generation scene (:mod:`.czii`: vesicles, gold, the six classes, clutter)
this adds what makes real tomograms hard to pick:

* **look-alike confusers** of every class, unlabelled: hollow spheres a little smaller or larger
  than apo-ferritin, capsids smaller or larger than the VLP, large dense two-lobed complexes
  near the ribosome's size, three- and four-lobed assemblies with other spacings than
  beta-galactosidase, straight or wider-bent dimers beside thyroglobulin, small dimers beside
  beta-amylase;
* several hundred generic "other proteins" (clutter) up to ribosome size;
* an occasional **membrane sheet** (a large, gently curved bilayer crossing the volume);
* **gold beads on the ice surfaces** (as fiducials are), much denser than protein, so the
  back-projection draws streaks from them;
* **particles cut by the edges**: a fraction of the particles may have their centre anywhere in
  the volume's x-y extent, so part of the body lies outside (their picks are kept, as in the
  CZII annotations);
* **faint particles**: a fraction of every class is much fainter than the rest (annotated
  particles that no picker finds on real data), and per-class density factors set the
  difficulty of each class (see :class:`cryobench.data.phantom.spec.Crowding`).

Placement follows :mod:`.czii` (largest first, no overlaps, one of each class first).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .czii import (
    GOLD_RADIUS,
    VESICLE_AMPLITUDE,
    VESICLE_MEMBRANE,
    VESICLE_RADIUS,
    ice_slab,
    place_clutter,
    placement_order,
)
from .placement import Occupancy, largest_first
from .shapes import CZII_TEMPLATES, Blob, body_radius, random_rotation, stamp_body
from .spec import Crowding, PhantomSpec

__all__ = ["CONFUSERS", "Crowding", "build_crowded_scene"]


def _shell(rng: np.random.Generator, radius: tuple[float, float], shell: tuple[float, float],
           amp: tuple[float, float], interior: float = 0.0) -> tuple[Blob, ...]:
    r = rng.uniform(*radius)
    blobs = [Blob(axes=(r, r, r), amplitude=rng.uniform(*amp), shell=rng.uniform(*shell))]
    if interior:
        blobs.append(Blob(axes=(0.7 * r,) * 3, amplitude=interior))
    return tuple(blobs)


def _ferritin_like(rng: np.random.Generator) -> tuple[Blob, ...]:
    lo, hi = ((44.0, 52.0), (70.0, 80.0))[int(rng.integers(2))]
    return _shell(rng, (lo, hi), (14.0, 24.0), (0.6, 1.0))


def _vlp_like(rng: np.random.Generator) -> tuple[Blob, ...]:
    lo, hi = ((100.0, 115.0), (155.0, 175.0))[int(rng.integers(2))]
    return _shell(rng, (lo, hi), (22.0, 32.0), (0.7, 1.0), interior=0.1)


def _ribosome_like(rng: np.random.Generator) -> tuple[Blob, ...]:
    s = rng.uniform(0.8, 1.0)
    amp = rng.uniform(0.7, 1.0)
    return (
        Blob(center=(20.0 * s, 0.0, 0.0), axes=(110.0 * s, 95.0 * s, 90.0 * s), amplitude=amp),
        Blob(center=(-95.0 * s, 0.0, 0.0), axes=(40.0 * s, 70.0 * s, 70.0 * s), amplitude=amp),
    )


def _galactosidase_like(rng: np.random.Generator) -> tuple[Blob, ...]:
    amp = rng.uniform(0.4, 0.6)
    lobe = (rng.uniform(26.0, 34.0), rng.uniform(30.0, 38.0), rng.uniform(30.0, 38.0))
    if rng.random() < 0.5:  # trimer
        d = rng.uniform(40.0, 50.0)
        angles = np.deg2rad([90.0, 210.0, 330.0])
        centres = [(0.0, d * np.sin(a), d * np.cos(a)) for a in angles]
    else:  # rectangle of four with other spacings than the 68 Å square
        sy, sx = rng.uniform(26.0, 30.0), rng.uniform(40.0, 48.0)
        centres = [(0.0, a * sy, b * sx) for a in (-1.0, 1.0) for b in (-1.0, 1.0)]
    return tuple(Blob(center=tuple(float(v) for v in c), axes=lobe, amplitude=amp)
                 for c in centres)


def _thyroglobulin_like(rng: np.random.Generator) -> tuple[Blob, ...]:
    amp = rng.uniform(0.35, 0.5)
    bend = rng.choice([0.0, 45.0])
    gap = rng.uniform(44.0, 60.0)
    out = []
    for side in (-1.0, 1.0):
        c, s = np.cos(np.deg2rad(side * bend)), np.sin(np.deg2rad(side * bend))
        orient = ((1.0, 0.0, 0.0), (0.0, c, -s), (0.0, s, c))
        out.append(Blob(center=(0.0, 18.0 if bend else 0.0, side * gap),
                        axes=(rng.uniform(32.0, 40.0), rng.uniform(34.0, 42.0),
                              rng.uniform(60.0, 75.0)),
                        amplitude=amp, orient=orient))
    return tuple(out)


def _amylase_like(rng: np.random.Generator) -> tuple[Blob, ...]:
    amp = rng.uniform(0.3, 0.45)
    gap = rng.uniform(16.0, 34.0)
    axes = (rng.uniform(20.0, 30.0), rng.uniform(20.0, 28.0), rng.uniform(22.0, 32.0))
    return (Blob(center=(0.0, 0.0, -gap), axes=axes, amplitude=amp),
            Blob(center=(0.0, 0.0, gap), axes=axes, amplitude=amp))


CONFUSERS: dict[str, Callable[[np.random.Generator], tuple[Blob, ...]]] = {
    "apo-ferritin": _ferritin_like,
    "beta-amylase": _amylase_like,
    "beta-galactosidase": _galactosidase_like,
    "ribosome": _ribosome_like,
    "thyroglobulin": _thyroglobulin_like,
    "virus-like-particle": _vlp_like,
}
"""Class name -> a random look-alike body (Å) of that class (never labelled)."""


def _bounds(shape, z0: int, z1: int, r: float, edge: bool) -> tuple[np.ndarray, np.ndarray]:
    """Allowed centres: the body inside the ice in z; in x-y inside, or anywhere (``edge``)."""
    m = 0.0 if edge else r
    low = np.array([max(z0, 0) + r, m, m])
    high = np.array([min(z1, shape[0] - 1) - r, shape[1] - 1 - m, shape[2] - 1 - m])
    return low, high


def _sheet(spec: PhantomSpec, spacing: float, rng: np.random.Generator, z0: int, z1: int
           ) -> tuple[np.ndarray, float] | None:
    """Centre (voxels) and radius (voxels) of a large sphere whose shell crosses the ice."""
    crowd = spec.crowd
    if rng.random() >= crowd.sheet_probability:
        return None
    shape = np.asarray(spec.shape, dtype=np.float64)
    radius = rng.uniform(*crowd.sheet_radius) / spacing
    through = rng.uniform([z0, 0.2 * shape[1], 0.2 * shape[2]],
                          [z1, 0.8 * shape[1], 0.8 * shape[2]])
    phi = rng.uniform(0.0, 2 * np.pi)
    normal = np.array([rng.uniform(-0.3, 0.3), np.sin(phi), np.cos(phi)])
    normal /= np.linalg.norm(normal)
    return through - radius * normal, radius


def build_crowded_scene(
    spec: PhantomSpec, spacing: float, rng: np.random.Generator
) -> tuple[np.ndarray, list[tuple[str, np.ndarray, np.ndarray]], dict]:
    """Draw and paint one second-generation CZII-like scene (see the module docstring).

    Returns ``(density, picks, meta)`` as :func:`cryobench.data.phantom.czii.build_scene`; the
    ice itself is not painted (a laterally uniform slab lies in the missing wedge and vanishes
    from a back-projection; its thickness enters the tilt series' noise instead).
    """
    crowd = spec.crowd
    shape = spec.shape
    density = np.zeros(shape, dtype=np.float32)
    z0, z1 = ice_slab(shape[0], rng, spec.ice_fraction)
    occ = Occupancy()
    soft = 0.6

    ves = Occupancy()
    n_ves = 0
    for _ in range(int(rng.integers(spec.vesicles[0], spec.vesicles[1] + 1))):
        r = rng.uniform(*VESICLE_RADIUS) / spacing
        c = ves.place(rng, r, np.array([z0, 0.0, 0.0]),
                      np.array([z1, shape[1] - 1.0, shape[2] - 1.0]), tries=64)
        if c is None:
            continue
        blob = Blob(axes=(r * spacing,) * 3, amplitude=VESICLE_AMPLITUDE, shell=VESICLE_MEMBRANE)
        stamp_body(density, (blob,), c, np.eye(3), spacing, soft=soft)
        occ.add_shell(c, r - 0.5 * VESICLE_MEMBRANE / spacing, 0.5 * VESICLE_MEMBRANE / spacing + 1)
        n_ves += 1

    sheet = _sheet(spec, spacing, rng, z0, z1)
    if sheet is not None:
        c, r = sheet
        blob = Blob(axes=(r * spacing,) * 3, amplitude=VESICLE_AMPLITUDE, shell=VESICLE_MEMBRANE)
        stamp_body(density, (blob,), c, np.eye(3), spacing, soft=soft)
        occ.add_shell(c, r - 0.5 * VESICLE_MEMBRANE / spacing, 0.5 * VESICLE_MEMBRANE / spacing + 1)

    # gold beads on the two ice surfaces
    n_gold = 0
    gold = (Blob(axes=(GOLD_RADIUS,) * 3, amplitude=crowd.gold_amplitude),)
    r_gold = GOLD_RADIUS / spacing
    for _ in range(int(rng.integers(spec.gold[0], spec.gold[1] + 1))):
        z = z0 + r_gold if rng.random() < 0.5 else z1 - r_gold
        c = occ.place(rng, r_gold, np.array([z, r_gold, r_gold]),
                      np.array([z, shape[1] - 1 - r_gold, shape[2] - 1 - r_gold]))
        if c is not None:
            stamp_body(density, gold, c, np.eye(3), spacing, soft=soft)
            n_gold += 1

    names, radii, counts, order = placement_order(spec, spacing, rng)
    picks: list[tuple[str, np.ndarray, np.ndarray]] = []
    placed = dict.fromkeys(names, 0)
    scale = dict(crowd.density_scale)
    n_edge = 0
    faint: list[int] = []
    for k in order:
        edge = bool(rng.random() < crowd.edge_fraction)
        c = occ.place(rng, radii[k], *_bounds(shape, z0, z1, radii[k], edge))
        if c is None:
            continue
        amp = 1.0 + rng.uniform(-spec.amplitude_jitter, spec.amplitude_jitter)
        if rng.random() < crowd.faint_fraction:
            amp *= rng.uniform(*crowd.faint_density)
            faint.append(len(picks))
        amp *= scale.get(names[k], 1.0)
        rot = random_rotation(rng)
        stamp_body(density, CZII_TEMPLATES[names[k]], c, rot, spacing, amplitude=amp, soft=soft)
        picks.append((names[k], c, rot))
        placed[names[k]] += 1
        n_edge += int(edge and (np.min(c[1:]) < radii[k]
                                or np.any(c[1:] > np.asarray(shape[1:]) - 1 - radii[k])))

    # look-alikes of every class, largest first, then generic clutter
    bodies = []
    for name in names:
        for _ in range(int(rng.integers(crowd.confusers[0], crowd.confusers[1] + 1))):
            bodies.append((name, CONFUSERS[name](rng)))
    body_r = np.array([body_radius(b) for _, b in bodies]) / spacing
    n_conf = dict.fromkeys(names, 0)
    for k in largest_first(body_r):
        name, body = bodies[k]
        c = occ.place(rng, body_r[k], *_bounds(shape, z0, z1, body_r[k], False), tries=64)
        if c is None:
            continue
        stamp_body(density, body, c, random_rotation(rng), spacing,
                   amplitude=scale.get(name, 1.0), soft=soft)
        n_conf[name] += 1

    n_clutter = place_clutter(density, occ, rng, spec.clutter, (z0, z1), spacing, soft,
                              radius_range=crowd.clutter_radius)

    meta = {
        "counts": placed,
        "requested_counts": dict(zip(names, counts, strict=True)),
        "particles_cut_by_edges": n_edge,
        "faint_picks": faint,
        "confusers": n_conf,
        "clutter": n_clutter,
        "vesicles": n_ves,
        "membrane_sheet": sheet is not None,
        "gold": n_gold,
        "ice_z": [z0, z1],
    }
    return density, picks, meta
