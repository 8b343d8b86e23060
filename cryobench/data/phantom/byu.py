"""BYU-like scene: a bacterial cell (capsule with a double membrane) holding 0 or 1 flagellar motor.

The main cell is a spherocylinder lying in the ice, flattened along z (cells are squashed in
thin ice), with one pole inside the field of view. Its envelope is an outer membrane, a faint
peptidoglycan layer and an inner membrane (Gaussian profiles of the distance to the surface); the
cytoplasm has a weak uniform density, ribosome-sized granules and sometimes dense storage
granules. A motor sits in the envelope near the pole, its axis along the surface normal:
C-ring (a ring of lobes) and export apparatus in the cytoplasm, the MS-ring disk in the inner
membrane, the rod across the periplasm, P/L rings, a hook and a gently curved filament outside
the cell. The pick is the centre of the C-ring/MS-ring assembly. An extra cell without a motor,
gold beads and a few outside blobs complete the scene.
"""

from __future__ import annotations

import numpy as np

from cryobench.particles import BYU_MOTOR

from .czii import GOLD_AMPLITUDE, GOLD_RADIUS, ice_profile, ice_slab
from .placement import Occupancy
from .shapes import Blob, body_radius, clutter_body, random_rotation, stamp_body
from .spec import PhantomSpec

__all__ = ["build_cell", "motor_body"]

MEMBRANE_SIGMA = 18.0  # Å, Gaussian half-width of a bilayer
MEMBRANE_AMPLITUDE = 1.3
CYTOPLASM_AMPLITUDE = 0.3
GRANULES = (80, 200)  # ribosome-sized cytoplasmic granules (target; fewer if space runs out)
DECOYS = (1, 4)  # membrane-associated lumps (not motors) per tomogram, upper bound exclusive
ICE_AMPLITUDE = 0.3


def _frame(direction: np.ndarray) -> np.ndarray:
    """A rotation whose first column (body z) is ``direction``."""
    a = np.asarray(direction, dtype=np.float64)
    a = a / np.linalg.norm(a)
    helper = np.array([1.0, 0.0, 0.0]) if abs(a[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    b = np.cross(a, helper)
    b /= np.linalg.norm(b)
    c = np.cross(a, b)
    return np.stack([a, b, c], axis=1)


def _tuple3x3(m: np.ndarray) -> tuple[tuple[float, float, float], ...]:
    return tuple(tuple(float(v) for v in row) for row in m)


def motor_body(
    rng: np.random.Generator, periplasm: float, filament_length: float
) -> tuple[Blob, ...]:
    """A flagellar motor in its own frame (Å); body z (axis 0) points out of the cell.

    The origin (the pick) is the C-ring/MS-ring centre; the inner membrane lies at z = +70 Å and
    the outer membrane at z = 70 + ``periplasm``.
    """
    blobs: list[Blob] = []
    inner = 70.0
    outer = inner + periplasm
    for z, ring_r, n in ((-30.0, 215.0, 18), (30.0, 200.0, 18)):  # C-ring, two tiers
        for k in range(n):
            ang = 2 * np.pi * (k + 0.5 * (z > 0)) / n
            blobs.append(
                Blob(center=(z, ring_r * np.sin(ang), ring_r * np.cos(ang)), axes=(40.0,) * 3,
                     amplitude=0.9)
            )
    blobs.append(Blob(center=(0.0, 0.0, 0.0), axes=(70.0, 60.0, 60.0), amplitude=0.8))  # export
    blobs.append(Blob(center=(inner, 0.0, 0.0), axes=(28.0, 135.0, 135.0), amplitude=1.0))  # MS
    blobs.append(Blob(center=(inner + 0.5 * periplasm, 0.0, 0.0),
                      axes=(0.5 * periplasm + 20.0, 30.0, 30.0), amplitude=1.0))  # rod
    blobs.append(Blob(center=(inner + 0.6 * periplasm, 0.0, 0.0), axes=(25.0, 90.0, 90.0),
                      amplitude=0.9))  # P-ring
    blobs.append(Blob(center=(outer, 0.0, 0.0), axes=(25.0, 95.0, 95.0), amplitude=0.9))  # L
    # hook then filament: prolate segments along a slowly bending direction
    pos = np.array([outer + 20.0, 0.0, 0.0])
    direction = np.array([1.0, 0.0, 0.0])
    seg = 150.0
    blobs.append(Blob(center=tuple(pos + direction * seg), axes=(seg, 55.0, 55.0),
                      amplitude=1.0))
    pos = pos + direction * 2 * seg
    n_seg = max(1, int(filament_length // 400.0))
    for _ in range(n_seg):
        direction = direction + rng.normal(0.0, 0.15, 3)
        direction[0] = max(direction[0], 0.3)  # keep pointing away from the cell
        direction /= np.linalg.norm(direction)
        blobs.append(Blob(center=tuple(pos + direction * 220.0), axes=(240.0, 60.0, 60.0),
                          amplitude=0.9, orient=_tuple3x3(_frame(direction))))
        pos = pos + direction * 400.0
    return tuple(blobs)


class _Cell:
    """A z-flattened spherocylinder: axis in the xy plane from pole centre ``a`` to ``b`` (Å)."""

    def __init__(self, a: np.ndarray, b: np.ndarray, radius: float, zc: float, flat: float):
        self.a = np.asarray(a, dtype=np.float64)
        self.b = np.asarray(b, dtype=np.float64)
        self.length = float(np.linalg.norm(self.b - self.a))
        self.u = (self.b - self.a) / max(self.length, 1e-9)
        self.radius = float(radius)
        self.zc = float(zc)
        self.flat = float(flat)

    def distance(self, z: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Approximate signed distance (Å, negative inside) at broadcastable z, y, x (Å)."""
        wy = y - self.a[1]
        wx = x - self.a[2]
        t = np.clip(wy * self.u[1] + wx * self.u[2], 0.0, self.length)
        qy = wy - t * self.u[1]
        qx = wx - t * self.u[2]
        qz = (z - self.zc) / self.flat
        perp2 = qy * qy + qx * qx
        rad2 = perp2 + qz * qz
        d = np.sqrt(rad2) - self.radius
        # first-order correction of the z-flattening: divide by the gradient norm, so membranes
        # keep their physical spacing on the flattened top and bottom of the cell too
        grad2 = (perp2 + qz * qz / (self.flat * self.flat)) / np.maximum(rad2, 1e-6)
        return d / np.sqrt(grad2)

    def random_surface_point(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """A random point on the side or on the ``b`` pole cap, with its outward normal."""
        e1 = np.array([1.0, 0.0, 0.0])
        e2 = np.cross(self.u, e1)
        phi = rng.uniform(0.0, 2 * np.pi)
        w = np.cos(phi) * e1 + np.sin(phi) * e2
        if rng.random() < 0.5:  # cylinder side
            base = self.a + rng.uniform(0.0, self.length) * self.u
            p = base + self.radius * w
            p[0] = self.zc + (p[0] - self.zc) * self.flat
            n = np.array([w[0] / self.flat, w[1], w[2]])
            return p, n / np.linalg.norm(n)
        alpha = np.arccos(rng.uniform(0.0, 1.0))
        return self.surface_point(np.cos(alpha) * self.u + np.sin(alpha) * w)

    def surface_point(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Point on the pole cap at unit direction ``v`` from pole centre ``b``, and its normal."""
        p = self.b + self.radius * v
        p[0] = self.zc + (p[0] - self.zc) * self.flat
        n = np.array([v[0] / self.flat, v[1], v[2]])
        return p, n / np.linalg.norm(n)


def _paint_envelope(density: np.ndarray, cell: _Cell, spacing: float, periplasm: float) -> None:
    """Add membranes, peptidoglycan and cytoplasm of one cell (whole volume, once per cell)."""
    nz, ny, nx = density.shape
    z = (np.arange(nz, dtype=np.float32) * spacing)[:, None, None]
    y = (np.arange(ny, dtype=np.float32) * spacing)[None, :, None]
    x = (np.arange(nx, dtype=np.float32) * spacing)[None, None, :]
    d = cell.distance(z, y, x).astype(np.float32)
    inv = np.float32(-0.5 / MEMBRANE_SIGMA**2)
    for centre, amp, sig2 in (
        (0.0, MEMBRANE_AMPLITUDE, 1.0),
        (-periplasm, MEMBRANE_AMPLITUDE, 1.0),
        (-0.5 * periplasm, 0.4, 0.35),
    ):
        t = d - np.float32(centre)
        density += np.float32(amp) * np.exp(t * t * (inv / np.float32(sig2)))
    # cytoplasm: soft-edged constant density inside the inner membrane
    density += np.float32(CYTOPLASM_AMPLITUDE) * np.clip(
        (-(d + np.float32(periplasm + 30.0))) / np.float32(2 * spacing) + 0.5, 0.0, 1.0
    )


def build_cell(
    spec: PhantomSpec, spacing: float, rng: np.random.Generator, has_motor: bool
) -> tuple[np.ndarray, list[tuple[str, np.ndarray, np.ndarray]], dict]:
    """Draw and paint one BYU-like scene; returns ``(density, picks, meta)`` like the CZII one."""
    shape = spec.shape
    nz, ny, nx = shape
    ext = np.array(shape, dtype=np.float64) * spacing  # Å
    density = np.zeros(shape, dtype=np.float32)
    z0, z1 = ice_slab(nz, rng, spec.ice_fraction)
    z_profile = ice_profile(nz, z0, z1, ICE_AMPLITUDE)
    zc = 0.5 * (z0 + z1) * spacing
    half_ice = 0.5 * (z1 - z0) * spacing

    fov = min(ext[1], ext[2])
    radius = rng.uniform(0.22, 0.3) * fov
    flat = min(1.0, (half_ice - 60.0) / radius)
    periplasm = rng.uniform(200.0, 300.0)
    theta = rng.uniform(0.0, 2 * np.pi)
    u = np.array([0.0, np.sin(theta), np.cos(theta)])
    tip = np.array([zc, *(rng.uniform(0.3, 0.7, 2) * ext[1:])])
    b = tip - radius * u
    a = b - rng.uniform(1.5, 4.0) * radius * u
    cell = _Cell(a, b, radius, zc, flat)
    _paint_envelope(density, cell, spacing, periplasm)
    occ = Occupancy()
    picks: list[tuple[str, np.ndarray, np.ndarray]] = []

    if has_motor:
        margin = np.array([0.0, 300.0, 300.0])
        e1 = np.array([1.0, 0.0, 0.0])
        e2 = np.cross(u, e1)
        for attempt in range(200):
            if attempt < 199:
                alpha = np.deg2rad(rng.uniform(0.0, 70.0))
                phi = rng.uniform(0.0, 2 * np.pi)
                v = np.cos(alpha) * u + np.sin(alpha) * (np.cos(phi) * e1 + np.sin(phi) * e2)
            else:  # fallback: the pole tip, always inside the field of view
                v = u.copy()
            p, n = cell.surface_point(v)
            centre = p - n * (periplasm + 70.0)
            lo = np.array([z0 * spacing + 150.0, 0.0, 0.0]) + margin
            hi = np.array([z1 * spacing - 150.0, ext[1] - spacing, ext[2] - spacing]) - margin
            if np.all(centre >= lo) and np.all(centre <= hi) or attempt == 199:
                break
        body = motor_body(rng, periplasm, rng.uniform(1200.0, 3000.0))
        rot = _frame(n)
        centre_vox = centre / spacing
        amp = 1.0 + rng.uniform(-spec.amplitude_jitter, spec.amplitude_jitter)
        stamp_body(density, body, centre_vox, rot, spacing, amplitude=amp)
        occ.add(centre_vox, 260.0 / spacing)
        picks.append((BYU_MOTOR.name, centre_vox, rot))

    # an extra cell without a motor, kept clear of the main one
    n_extra = 0
    for _ in range(int(rng.integers(spec.cells[0], spec.cells[1] + 1))):
        for _try in range(20):
            r2 = rng.uniform(0.18, 0.26) * fov
            th2 = rng.uniform(0.0, 2 * np.pi)
            u2 = np.array([0.0, np.sin(th2), np.cos(th2)])
            mid = np.array([zc, *(rng.uniform(0.0, 1.0, 2) * ext[1:])])
            half_len = rng.uniform(0.5, 2.0) * r2
            a2, b2 = mid - half_len * u2, mid + half_len * u2
            samples = a2[None] + np.linspace(0, 1, 16)[:, None] * (b2 - a2)[None]
            clear = cell.distance(samples[:, 0], samples[:, 1], samples[:, 2]) > r2 + 300.0
            if np.all(clear):
                _paint_envelope(density, _Cell(a2, b2, r2, zc, min(1.0, (half_ice - 60.0) / r2)),
                                spacing, rng.uniform(200.0, 300.0))
                n_extra += 1
                break

    # membrane-associated decoys: solid lumps under the inner membrane, about motor-sized
    n_decoy = 0
    lo_fov = np.array([z0 * spacing + 150.0, 300.0, 300.0])
    hi_fov = np.array([z1 * spacing - 150.0, ext[1] - 300.0, ext[2] - 300.0])
    n_want = int(rng.integers(*(spec.decoys or DECOYS)))
    for _ in range(n_want * 10):
        if n_decoy >= n_want:
            break
        p, n = cell.random_surface_point(rng)
        centre = p - n * (periplasm + rng.uniform(40.0, 90.0))
        if not (np.all(centre >= lo_fov) and np.all(centre <= hi_fov)):
            continue
        r = 200.0 / spacing
        if not occ.free(centre[None] / spacing, r)[0]:
            continue
        width = rng.uniform(100.0, 170.0)
        body = (
            Blob(axes=(rng.uniform(40.0, 70.0), width, width * rng.uniform(0.7, 1.0)),
                 amplitude=rng.uniform(0.7, 1.0)),
            Blob(center=(-60.0, 0.0, 0.0), axes=(50.0, 60.0, 60.0), amplitude=0.6),
        )
        stamp_body(density, body, centre / spacing, _frame(n), spacing)
        occ.add(centre / spacing, r)
        n_decoy += 1

    # cytoplasmic granules (ribosome-sized) and occasional dense storage granules
    n_gran = 0
    n_target = int(rng.integers(*GRANULES))
    for _ in range(40):
        if n_gran >= n_target:
            break
        cand = rng.uniform([z0, 0.0, 0.0], [z1, ny - 1.0, nx - 1.0], size=(256, 3))
        inside = cell.distance(*(cand * spacing).T) < -(periplasm + 170.0)
        for c in cand[inside]:
            if n_gran >= n_target:
                break
            body = clutter_body(rng, radius_range=(90.0, 130.0), amplitude_range=(0.4, 0.8))
            r = body_radius(body) / spacing
            if cell.distance(*(c * spacing)) > -(periplasm + 40.0 + r * spacing):
                continue
            if c[0] < z0 + r or c[0] > z1 - r or not occ.free(c[None], r)[0]:
                continue
            occ.add(c, r)
            stamp_body(density, body, c, random_rotation(rng), spacing)
            n_gran += 1
    n_storage = 0
    for _ in range(int(rng.integers(0, 3))):
        r_s = rng.uniform(150.0, 300.0)
        r = r_s / spacing
        c = rng.uniform([z0 + r, r, r], [z1 - r, ny - 1 - r, nx - 1 - r])
        if cell.distance(*(c * spacing)) < -(periplasm + 40.0 + r_s) and occ.free(c[None], r)[0]:
            occ.add(c, r)
            stamp_body(density, (Blob(axes=(r_s,) * 3, amplitude=1.8),), c, np.eye(3), spacing)
            n_storage += 1

    # outside: gold beads and a few loose blobs in the ice
    n_gold = 0
    for _ in range(int(rng.integers(spec.gold[0], spec.gold[1] + 1))):
        r = GOLD_RADIUS / spacing
        c = rng.uniform([z0 + r, r, r], [z1 - r, ny - 1 - r, nx - 1 - r])
        if cell.distance(*(c * spacing)) > GOLD_RADIUS + 50.0 and occ.free(c[None], r)[0]:
            occ.add(c, r)
            stamp_body(density, (Blob(axes=(GOLD_RADIUS,) * 3, amplitude=GOLD_AMPLITUDE),), c,
                       np.eye(3), spacing)
            n_gold += 1
    n_clutter = 0
    for _ in range(int(rng.integers(spec.clutter[0], spec.clutter[1] + 1))):
        body = clutter_body(rng, radius_range=(60.0, 200.0))
        r = body_radius(body) / spacing
        c = rng.uniform([z0 + r, r, r], [z1 - r, ny - 1 - r, nx - 1 - r])
        if cell.distance(*(c * spacing)) > r * spacing + 50.0 and occ.free(c[None], r)[0]:
            occ.add(c, r)
            stamp_body(density, body, c, random_rotation(rng), spacing)
            n_clutter += 1

    meta = {
        "has_motor": bool(has_motor),
        "counts": {BYU_MOTOR.name: len(picks)},
        "cell_radius_angstrom": float(radius),
        "periplasm_angstrom": float(periplasm),
        "extra_cells": n_extra,
        "granules": n_gran,
        "membrane_decoys": n_decoy,
        "storage_granules": n_storage,
        "gold": n_gold,
        "clutter": n_clutter,
        "ice_z": [z0, z1],
        "z_profile": z_profile,
    }
    return density, picks, meta
