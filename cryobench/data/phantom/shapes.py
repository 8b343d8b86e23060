"""Soft density primitives and the class-distinct particle templates.

Every body (particle, clutter blob, gold bead, vesicle) is a small list of :class:`Blob`
ellipsoids given in Å in the body's own frame. :func:`stamp_body` rotates a body and adds each
blob into the volume *only inside that blob's bounding box*, so the cost grows with the number of
blobs, never with the volume size. Coordinates are ``(z, y, x)`` throughout, in voxels once
stamped.

The six CZII templates follow the known architecture of each complex at low resolution (sizes in
Å, amplitudes relative to protein density over ice; the amplitudes set the class difficulty,
see docs/phantoms.md):

* apo-ferritin: a hollow sphere, 60 Å outer and 40 Å inner radius;
* beta-amylase: two touching lobes (a dimer of dimers seen edge-on), weak;
* beta-galactosidase: a square tetramer of four lobes in one plane;
* ribosome: a large subunit and a flatter small subunit, dense (RNA);
* thyroglobulin: a bent (V-shaped) dimer of two elongated lobes;
* virus-like particle: a thin 28 Å capsid shell with a faint interior.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "Blob",
    "CZII_TEMPLATES",
    "body_radius",
    "clutter_body",
    "random_rotation",
    "rotation_about",
    "stamp_blob",
    "stamp_body",
]

_IDENTITY = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))


@dataclass(frozen=True)
class Blob:
    """One soft ellipsoid (solid or a shell) in a body frame.

    Attributes:
        center: centre ``(z, y, x)`` in Å in the body frame.
        axes: semi-axes in Å along the blob's principal directions.
        amplitude: density added inside the blob.
        shell: shell thickness in Å measured inwards from the surface; 0 means solid.
        orient: 3x3 rotation whose columns are the blob's principal directions in the body
            frame ``(z, y, x)``.
    """

    center: tuple[float, float, float] = (0.0, 0.0, 0.0)
    axes: tuple[float, float, float] = (10.0, 10.0, 10.0)
    amplitude: float = 1.0
    shell: float = 0.0
    orient: tuple[tuple[float, float, float], ...] = _IDENTITY


def rotation_about(axis: int, degrees: float) -> np.ndarray:
    """Rotation matrix by ``degrees`` about the ``axis`` (0 = z, 1 = y, 2 = x) of a zyx frame."""
    a = np.deg2rad(degrees)
    c, s = np.cos(a), np.sin(a)
    i, j = [k for k in range(3) if k != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly distributed random 3x3 rotation (from a random unit quaternion)."""
    q = rng.standard_normal(4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def _ramp(d: np.ndarray, soft: float) -> np.ndarray:
    """1 well inside (``d <= -soft``), 0 well outside (``d >= soft``), linear in between."""
    return np.clip(0.5 - d * (0.5 / soft), 0.0, 1.0)


def stamp_blob(
    vol: np.ndarray,
    center: np.ndarray,
    axes: np.ndarray,
    directions: np.ndarray,
    amplitude: float,
    shell: float = 0.0,
    soft: float = 0.6,
) -> None:
    """Add one soft ellipsoid into ``vol`` in place (all lengths in voxels).

    Args:
        vol: ``(z, y, x)`` float32 volume.
        center: ``(z, y, x)`` centre (may lie outside; the blob is clipped).
        axes: the three semi-axes.
        directions: 3x3 matrix whose columns are the principal directions (unit vectors, zyx).
        amplitude: density added at full inclusion.
        shell: shell thickness (0 for a solid blob).
        soft: half-width of the linear edge ramp.
    """
    axes = np.asarray(axes, dtype=np.float64)
    center = np.asarray(center, dtype=np.float64)
    half = float(axes.max()) + soft + 1.0
    lo = np.maximum(np.floor(center - half).astype(int), 0)
    hi = np.minimum(np.ceil(center + half).astype(int) + 1, vol.shape)
    if np.any(hi <= lo):
        return
    dz = (np.arange(lo[0], hi[0]) - center[0]).astype(np.float32)[:, None, None]
    dy = (np.arange(lo[1], hi[1]) - center[1]).astype(np.float32)[None, :, None]
    dx = (np.arange(lo[2], hi[2]) - center[2]).astype(np.float32)[None, None, :]
    r = np.sqrt(dz * dz + dy * dy + dx * dx)
    if np.ptp(axes) < 1e-6:  # sphere: exact signed distance
        d = r - np.float32(axes[0])
    else:
        rho2 = np.zeros(r.shape, dtype=np.float32)
        for j in range(3):
            u = directions[:, j] / axes[j]
            q = np.float32(u[0]) * dz + np.float32(u[1]) * dy + np.float32(u[2]) * dx
            rho2 += q * q
        rho = np.sqrt(rho2)
        # distance along the ray from the centre: r - (ellipsoid radius in that direction)
        g = np.where(rho > 1e-3, r / np.maximum(rho, 1e-3), np.float32(axes.min()))
        d = r - g
    val = _ramp(d, soft)
    if shell > 0:
        val -= _ramp(d + np.float32(shell), soft)
    vol[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] += np.float32(amplitude) * val


def stamp_body(
    vol: np.ndarray,
    blobs: tuple[Blob, ...] | list[Blob],
    center_vox: np.ndarray,
    rotation: np.ndarray,
    spacing: float,
    amplitude: float = 1.0,
    soft: float = 0.6,
) -> None:
    """Rotate a body by ``rotation`` and add its blobs into ``vol`` centred at ``center_vox``.

    ``amplitude`` scales every blob's own amplitude (per-instance variability).
    """
    center_vox = np.asarray(center_vox, dtype=np.float64)
    for b in blobs:
        c = center_vox + rotation @ (np.asarray(b.center) / spacing)
        dirs = rotation @ np.asarray(b.orient)
        stamp_blob(
            vol,
            c,
            np.asarray(b.axes) / spacing,
            dirs,
            amplitude * b.amplitude,
            shell=b.shell / spacing,
            soft=soft,
        )


def _sphere_points(n: int = 400) -> np.ndarray:
    """``n`` roughly uniform unit vectors (Fibonacci sphere), deterministic."""
    i = np.arange(n) + 0.5
    polar = np.arccos(1.0 - 2.0 * i / n)
    azim = np.pi * (1.0 + 5.0**0.5) * i
    return np.stack(
        [np.cos(polar), np.sin(polar) * np.sin(azim), np.sin(polar) * np.cos(azim)], axis=1
    )


_SPHERE = _sphere_points()


def body_radius(blobs: tuple[Blob, ...] | list[Blob]) -> float:
    """Radius in Å of the smallest sphere about the body origin that holds every blob."""
    r = 0.0
    for b in blobs:
        pts = np.asarray(b.center) + (_SPHERE * np.asarray(b.axes)) @ np.asarray(b.orient).T
        r = max(r, float(np.linalg.norm(pts, axis=1).max()))
    return r


def _orient(axis: int, degrees: float) -> tuple[tuple[float, float, float], ...]:
    return tuple(tuple(float(v) for v in row) for row in rotation_about(axis, degrees))


CZII_TEMPLATES: dict[str, tuple[Blob, ...]] = {
    "apo-ferritin": (Blob(axes=(60.0, 60.0, 60.0), amplitude=1.0, shell=20.0),),
    "beta-amylase": (
        Blob(center=(0.0, 0.0, -24.0), axes=(26.0, 24.0, 28.0), amplitude=0.35),
        Blob(center=(0.0, 0.0, 24.0), axes=(26.0, 24.0, 28.0), amplitude=0.35),
    ),
    "beta-galactosidase": tuple(
        Blob(center=(0.0, sy * 34.0, sx * 34.0), axes=(30.0, 35.0, 35.0), amplitude=0.5)
        for sy in (-1.0, 1.0)
        for sx in (-1.0, 1.0)
    ),
    "ribosome": (
        Blob(center=(28.0, 0.0, 0.0), axes=(95.0, 105.0, 100.0), amplitude=1.0),
        Blob(center=(-80.0, 0.0, 10.0), axes=(42.0, 88.0, 66.0), amplitude=1.0),
    ),
    "thyroglobulin": (
        Blob(center=(0.0, 22.0, -52.0), axes=(36.0, 38.0, 70.0), amplitude=0.45,
             orient=_orient(0, 25.0)),
        Blob(center=(0.0, 22.0, 52.0), axes=(36.0, 38.0, 70.0), amplitude=0.45,
             orient=_orient(0, -25.0)),
    ),
    "virus-like-particle": (
        Blob(axes=(135.0, 135.0, 135.0), amplitude=1.0, shell=28.0),
        Blob(axes=(100.0, 100.0, 100.0), amplitude=0.15),
    ),
}
"""Body-frame templates of the six CZII classes (Å)."""


def clutter_body(
    rng: np.random.Generator,
    radius_range: tuple[float, float] = (25.0, 110.0),
    amplitude_range: tuple[float, float] = (0.3, 0.8),
) -> tuple[Blob, ...]:
    """A random 'other protein': one to three ellipsoidal lobes of similar size, in Å.

    Sizes span those of the small CZII classes, so the clutter acts as realistic decoys.
    """
    n = int(rng.integers(1, 4))
    size = rng.uniform(*radius_range)
    amp = rng.uniform(*amplitude_range)
    blobs = []
    for i in range(n):
        axes = tuple(float(a) for a in size * rng.uniform(0.45, 0.8, 3) / (1 + 0.3 * (n - 1)))
        offset = (0.0, 0.0, 0.0) if i == 0 else tuple(
            float(v) for v in rng.normal(0.0, 0.35 * size, 3)
        )
        blobs.append(Blob(center=offset, axes=axes, amplitude=amp))
    return tuple(blobs)
