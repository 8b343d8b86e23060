"""Templates: boxes and masks, Fourier filters, rotation, subtomogram averages, symmetry checks.

Arrays are ``(z, y, x)`` voxels; a box has an odd edge ``b`` with its centre at voxel
``(b - 1) / 2`` on every axis. Rotations are ``(x, y, z)`` matrices (see
:mod:`cryobench.template_matching`): the template rotated by ``R`` holds at ``R p`` what the
template holds at ``p``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from scipy import ndimage

__all__ = [
    "box_size",
    "sphere_mask",
    "fourier_filter",
    "apply_box_filter",
    "rotate_templates",
    "zyx_matrix",
    "average_subtomograms",
    "spherical_average",
    "normalise_in_mask",
    "power_kept",
    "masked_correlation",
    "symmetry_variants",
    "detect_symmetry",
    "is_isotropic",
    "upsample_for_checks",
    "resample",
]


def box_size(radius_angstrom: float, spacing: float, fraction: float = 1.25) -> int:
    """Odd box edge (voxels) holding a sphere of ``fraction x radius``; at least 5."""
    half = math.ceil(fraction * float(radius_angstrom) / float(spacing))
    return max(5, 2 * half + 1)


def _centred_grid(box: int) -> np.ndarray:
    c = (box - 1) / 2.0
    ax = np.arange(box, dtype=np.float64) - c
    return np.stack(np.meshgrid(ax, ax, ax, indexing="ij"), axis=0)  # (3, b, b, b) z, y, x


def sphere_mask(box: int, radius_vox: float) -> np.ndarray:
    """Binary ``(b, b, b)`` float32 ball of ``radius_vox`` about the box centre (at least the
    centre voxel and its 6 neighbours)."""
    g = _centred_grid(box)
    r = np.sqrt((g * g).sum(axis=0))
    return (r <= max(float(radius_vox), 1.0) + 1e-6).astype(np.float32)


def zyx_matrix(rotations_xyz: np.ndarray) -> np.ndarray:
    """The same rotations acting on ``(z, y, x)`` vectors: ``P R P`` with ``P`` the axis flip."""
    r = np.asarray(rotations_xyz, dtype=np.float64).reshape(-1, 3, 3)
    return np.ascontiguousarray(r[:, ::-1, ::-1])


def fourier_filter(shape: Sequence[int], spacing: float, lowpass_angstrom: float,
                   max_tilt_deg: float = 90.0, whitening: np.ndarray | None = None
                   ) -> np.ndarray:
    """A real ``rfftn``-layout filter for a ``(z, y, x)`` array of ``shape``.

    * a low-pass with a raised-cosine edge from ``0.85 x`` to ``1`` times the cut-off frequency
      ``spacing / lowpass_angstrom`` (cycles per voxel; 0 or less: none);
    * the missing wedge of a ``+-max_tilt_deg`` single-axis tilt series about y (the beam along
      z): a component is kept when ``|k_z| <= tan(max_tilt) |k_x|`` (90: no wedge);
    * optionally a radial whitening profile ``whitening[i]`` at radius ``i / (2 (len - 1))``
      cycles per voxel (linear interpolation).
    """
    nz, ny, nx = (int(s) for s in shape)
    kz = np.fft.fftfreq(nz)[:, None, None]
    ky = np.fft.fftfreq(ny)[None, :, None]
    kx = np.fft.rfftfreq(nx)[None, None, :]
    k = np.sqrt(kz * kz + ky * ky + kx * kx)
    filt = np.ones(k.shape, dtype=np.float64)
    if lowpass_angstrom > 0:
        cut = float(spacing) / float(lowpass_angstrom)
        lo = 0.85 * cut
        ramp = np.clip((k - lo) / max(cut - lo, 1e-12), 0.0, 1.0)
        filt *= 0.5 * (1.0 + np.cos(np.pi * ramp))
    if max_tilt_deg < 90.0:
        t = math.tan(math.radians(max_tilt_deg))
        filt *= (np.abs(kz) <= t * np.abs(kx) + 1e-12)
    if whitening is not None:
        prof = np.asarray(whitening, dtype=np.float64)
        radii = np.linspace(0.0, 0.5 * math.sqrt(3.0), len(prof))
        filt *= np.interp(k, radii, prof)
    return filt.astype(np.float32)


def apply_box_filter(templates: torch.Tensor, filt: torch.Tensor | None) -> torch.Tensor:
    """Filter a ``(..., b, b, b)`` stack with an ``rfftn``-layout filter (None: unchanged)."""
    if filt is None:
        return templates
    spec = torch.fft.rfftn(templates, dim=(-3, -2, -1))
    return torch.fft.irfftn(spec * filt, s=templates.shape[-3:], dim=(-3, -2, -1))


def _sample_points(box: int) -> np.ndarray:
    """``(3, b^3)`` output voxel offsets from the box centre, as ``x, y, z`` rows."""
    g = _centred_grid(box).reshape(3, -1)
    return np.ascontiguousarray(g[::-1])


def rotate_templates(template: torch.Tensor, rotations_xyz: np.ndarray) -> torch.Tensor:
    """``(K, b, b, b)``: the ``(b, b, b)`` template rotated by each rotation (trilinear,
    zero outside the box), computed with :func:`torch.nn.functional.grid_sample`."""
    b = int(template.shape[-1])
    c = (b - 1) / 2.0
    rot = np.asarray(rotations_xyz, dtype=np.float64).reshape(-1, 3, 3)
    # the rotated template at u holds the template at R^T u (x, y, z), normalised to [-1, 1]
    src = np.matmul(rot.transpose(0, 2, 1), _sample_points(b)).transpose(0, 2, 1) / c
    grid = torch.from_numpy(np.ascontiguousarray(src, dtype=np.float32)
                            .reshape(len(rot), b, b, b, 3))
    grid = grid.to(device=template.device, dtype=template.dtype)
    inp = template.reshape(1, 1, b, b, b).expand(len(rot), 1, b, b, b)
    out = torch.nn.functional.grid_sample(inp, grid, mode="bilinear", padding_mode="zeros",
                                          align_corners=True)
    return out[:, 0]


def average_subtomograms(volume: np.ndarray, centres_zyx: np.ndarray, box: int,
                         rotations_xyz: np.ndarray | None = None) -> np.ndarray:
    """Mean of the ``box^3`` subtomograms at ``centres_zyx`` (fractional voxels), in the
    template frame when ``rotations_xyz`` are given (the subtomogram at ``c`` with rotation
    ``R`` is read at ``c + R p``), else as they lie. Trilinear interpolation, zero outside the
    volume. Returns float32 ``(b, b, b)``; zeros when there are no centres."""
    vol = np.asarray(volume, dtype=np.float32)
    centres = np.asarray(centres_zyx, dtype=np.float64).reshape(-1, 3)
    out = np.zeros((box, box, box), dtype=np.float64)
    if len(centres) == 0:
        return out.astype(np.float32)
    grid = _centred_grid(box).reshape(3, -1)  # template-frame points, z y x
    rots = None if rotations_xyz is None else zyx_matrix(rotations_xyz)
    for i, c in enumerate(centres):
        pts = grid if rots is None else rots[i] @ grid
        coords = pts + c[:, None]
        out += ndimage.map_coordinates(vol, coords, order=1, mode="constant",
                                       cval=0.0).reshape(box, box, box)
    return (out / len(centres)).astype(np.float32)


def spherical_average(template: np.ndarray) -> np.ndarray:
    """The rotational average about the box centre (radial profile, linear interpolation)."""
    t = np.asarray(template, dtype=np.float64)
    g = _centred_grid(t.shape[0])
    r = np.sqrt((g * g).sum(axis=0))
    shell = np.floor(r).astype(np.int64)
    frac = r - shell
    n = int(shell.max()) + 2
    w0, w1 = 1.0 - frac, frac
    num = np.bincount(shell.ravel(), (w0 * t).ravel(), n) \
        + np.bincount(shell.ravel() + 1, (w1 * t).ravel(), n)
    den = np.bincount(shell.ravel(), w0.ravel(), n) + np.bincount(shell.ravel() + 1, w1.ravel(), n)
    prof = np.divide(num, den, out=np.zeros(n), where=den > 0)
    return np.interp(r, np.arange(n), prof).astype(np.float32)


def power_kept(template: np.ndarray, mask: np.ndarray, k_keep: float, k_total: float) -> float:
    """Share of a template's power (mean removed over the mask, zero outside) at spatial
    frequencies ``|k| <= k_keep`` among those ``<= k_total`` (cycles per voxel): how much of what
    is searched survives a coarser sampling. 1 for an empty template."""
    m = np.asarray(mask, dtype=np.float64) > 0
    t = np.asarray(template, dtype=np.float64)
    x = np.where(m, t - (t[m].mean() if m.any() else 0.0), 0.0)
    spec = np.abs(np.fft.rfftn(x)) ** 2
    nz, ny, nx = x.shape
    kz = np.fft.fftfreq(nz)[:, None, None]
    ky = np.fft.fftfreq(ny)[None, :, None]
    kx = np.fft.rfftfreq(nx)[None, None, :]
    k = np.sqrt(kz * kz + ky * ky + kx * kx)
    # the half spectrum holds the columns 1 .. ceil(nx/2)-1 twice
    w = np.full(kx.shape, 2.0)
    w[..., 0] = 1.0
    if nx % 2 == 0:
        w[..., -1] = 1.0
    total = float((spec * w)[np.broadcast_to(k <= k_total, spec.shape)].sum())
    if total <= 0:
        return 1.0
    return float((spec * w)[np.broadcast_to(k <= k_keep, spec.shape)].sum()) / total


def normalise_in_mask(templates: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Zero mean and unit variance over the mask's voxels, zero outside (per template)."""
    n = mask.sum()
    dims = (-3, -2, -1)
    mean = (templates * mask).sum(dim=dims, keepdim=True) / n
    cen = (templates - mean) * mask
    std = torch.sqrt((cen * cen).sum(dim=dims, keepdim=True) / n)
    return cen / torch.clamp(std, min=1e-12)


def masked_correlation(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of ``a`` and each of ``b`` over the mask's voxels."""
    na = normalise_in_mask(a, mask)
    nb = normalise_in_mask(b, mask)
    return (na * nb).sum(dim=(-3, -2, -1)) / mask.sum()


def symmetry_variants(symmetry: str) -> list[tuple[str, np.ndarray]]:
    """The group of ``symmetry`` (scipy's axes, see :mod:`cryobench.symmetry`) and
    its versions with the principal axis along y and x (``Cn``, ``Dn``) or in the other
    standard setting (``I``: turned 90 degrees about z). ``C1``: the identity alone."""
    from cryobench.symmetry import point_group

    name = symmetry.strip().upper()
    base = point_group(name)
    if name == "C1":
        return [("C1", base)]
    out = [(name, base)]
    if name[0] in "CD":
        # z -> y and z -> x: conjugate by the rotation that takes z there
        to_y = np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])  # maps z to y
        to_x = np.array([[0, 0, 1.0], [0, 1, 0], [-1, 0, 0]])  # maps z to x
        for axis, p in (("y", to_y), ("x", to_x)):
            out.append((f"{name} about {axis}", np.einsum("ij,kjl,ml->kim", p, base, p)))
    elif name == "I":
        p = np.array([[0, -1.0, 0], [1, 0, 0], [0, 0, 1]])
        out.append(("I (turned 90 about z)", np.einsum("ij,kjl,ml->kim", p, base, p)))
    return out


_CHECK_EDGE = 24  # templates are upsampled to about this edge for the self-similarity checks


def upsample_for_checks(template: np.ndarray, mask: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """The template (cubic spline) and its mask upsampled to an edge of at least 24 voxels,
    keeping the centre on a voxel, so that trilinear interpolation blurs turned copies little.
    Larger templates are returned as they are."""
    t = np.asarray(template, dtype=np.float64)
    m = np.asarray(mask, dtype=np.float64)
    b = t.shape[0]
    factor = max(1, math.ceil(_CHECK_EDGE / b))
    if factor == 1:
        return t.astype(np.float32), (m >= 0.5).astype(np.float32)
    size = factor * (b - 1) + 1
    t = ndimage.zoom(t, size / b, order=3, mode="grid-constant", grid_mode=False)
    m = ndimage.zoom(m, size / b, order=1, mode="grid-constant", grid_mode=False)
    return t.astype(np.float32), (m >= 0.5).astype(np.float32)


def _self_correlations(template: np.ndarray, mask: np.ndarray, rotations: np.ndarray
                       ) -> np.ndarray:
    """Correlation over the mask of the template with itself turned by each rotation (after
    :func:`upsample_for_checks`, which does nothing to an already upsampled template)."""
    t, m = upsample_for_checks(template, mask)
    tt = torch.as_tensor(t)
    rot = rotate_templates(tt, rotations)
    return masked_correlation(tt, rot, torch.as_tensor(m)).numpy().astype(np.float64)


def detect_symmetry(template: np.ndarray, mask: np.ndarray, symmetry: str,
                    threshold: float) -> tuple[str, np.ndarray]:
    """The first variant of ``symmetry`` (:func:`symmetry_variants`) under which the template
    correlates with itself at ``>= threshold`` for every element, or ``("C1", identity)``."""
    for label, group in symmetry_variants(symmetry):
        if len(group) == 1:
            return label, group
        if _self_correlations(template, mask, group[1:]).min() >= threshold:
            return label, group
    return "C1", np.eye(3)[None].copy()


def is_isotropic(template: np.ndarray, mask: np.ndarray, threshold: float, n: int = 12
                 ) -> bool:
    """Whether the template correlates at ``>= threshold`` with itself turned by each of ``n``
    fixed rotations of 30 to 150 degrees (then one orientation is as good as any)."""
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(12345)
    axes = rng.standard_normal((n, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    angles = np.radians(np.linspace(30.0, 150.0, n))
    rots = Rotation.from_rotvec(axes * angles[:, None]).as_matrix()
    return bool(_self_correlations(template, mask, rots).min() >= threshold)


def resample(volume: np.ndarray, from_spacing: float, to_spacing: float, box: int
             ) -> np.ndarray:
    """A ``(z, y, x)`` map at ``from_spacing`` Å resampled to ``to_spacing`` Å (Gaussian
    anti-aliasing when coarsening, trilinear interpolation), cut or zero-padded to ``box^3``
    about its centre."""
    v = np.asarray(volume, dtype=np.float64)
    ratio = float(to_spacing) / float(from_spacing)  # input voxels per output voxel
    if ratio > 1.0:
        v = ndimage.gaussian_filter(v, sigma=0.5 * math.sqrt(ratio * ratio - 1.0), mode="constant")
    centre_in = (np.asarray(v.shape, dtype=np.float64) - 1.0) / 2.0
    g = _centred_grid(box).reshape(3, -1) * ratio + centre_in[:, None]
    out = ndimage.map_coordinates(v, g, order=1, mode="constant", cval=0.0)
    return out.reshape(box, box, box).astype(np.float32)
