"""Tilt-series imaging: project, image each tilt, reconstruct by weighted back-projection.

The second-generation forward model, as real tomograms are made:

1. **Projection.** The clean density is projected at every tilt angle (single axis about y;
   default -60° to +60° in 3° steps). A projection at tilt ``t`` integrates along the beam
   direction ``(z, x) = (cos t, -sin t)``; its detector coordinate is
   ``u = x cos t + z sin t`` (voxels from the centre). The projector is a sparse system matrix
   (:mod:`scipy.sparse`, pixel-driven: each voxel splats onto its two nearest detector bins with
   linear weights) applied to every y column at once; its transpose is the back-projector. The
   matrix depends only on ``(nz, nx)`` and the angles and is cached.
2. **Per-tilt imaging** (one 2-D FFT per tilt image ``(y, u)``): the CTF ``-sin(chi + asin(A))``
   at that tilt's defocus (the tomogram's defocus plus a per-tilt offset), the exposure filter of
   the dose received before the tilt (Grant & Grigorieff 2015 critical exposure; tilts are
   acquired in dose-symmetric order), a B-factor envelope and a small random image shift
   (alignment error). White noise (shot noise) is added to each tilt image; its variance grows
   with the path length through the ice, ``exp(thickness / (mfp cos t))``.
3. **Reconstruction.** Each tilt image is phase-flipped with the *estimated* defocus (true
   defocus plus an estimation error), ramp-filtered along ``u`` (``|k|`` with a Gaussian fall-off
   past a cut-off, as IMOD's radial filter) and back-projected. The missing wedge, the X-shaped
   streaks around dense objects, the tilt-dependent noise and its non-white spectrum all come out
   of this, not from a filter.

``snr`` is the signal-to-noise ratio of the **untilted image**: ``var(signal) / var(noise)``
over the 0° tilt image (signal = the projection after CTF and envelopes).

The ``denoised`` tomogram is the reconstruction low-passed by a 3-D Gaussian (a simple stand-in
for the learned denoisers behind the CZII ``denoised`` tomograms); ``wbp`` is the plain
reconstruction.
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft
import scipy.sparse as sparse
from scipy import ndimage

from .optics import Optics, electron_wavelength

__all__ = [
    "TiltSeries",
    "acquisition_order",
    "critical_exposure",
    "projector",
    "project",
    "back_project",
    "tilt_angles",
    "image_tilt_series",
]


@dataclass(frozen=True)
class TiltSeries:
    """Acquisition and reconstruction parameters of the tilt-series model.

    Attributes:
        max_tilt_deg: tilts span ``-max_tilt_deg .. +max_tilt_deg``.
        step_deg: angular step.
        order: ``"dose-symmetric"`` (Hagen: 0°, then alternating groups of ``group`` tilts on
            each side) or ``"sequential"`` (from -max to +max).
        group: tilts per side in a dose-symmetric group.
        dose_per_tilt: electrons per Å² per tilt image.
        defocus_tilt_sigma_um: per-tilt defocus offset (Gaussian sigma, µm).
        defocus_error_sigma_um: error of the defocus estimate used for phase flipping (µm).
        bfactor: B-factor envelope of every tilt image (Å²).
        shift_sigma_px: per-tilt alignment error, a random image shift (pixels, each axis).
        ice_mfp_angstrom: inelastic mean free path; noise variance grows as
            ``exp(thickness / (mfp cos t))`` relative to the untilted image of ice of zero
            thickness (the SNR is given at the tomogram's own thickness, untilted).
        ramp_cutoff: radial-filter cut-off (cycles/pixel); past it the ramp falls off as a
            Gaussian of width ``ramp_falloff``.
        ramp_falloff: width of the fall-off (cycles/pixel).
        denoise_sigma_px: Gaussian sigma (voxels) of the ``denoised`` tomogram.
        snr_spread: the SNR of each tomogram is the requested one times a factor drawn
            log-uniformly in ``[1 / snr_spread, snr_spread]`` (1 = none).
        detector_margin: detector bins beyond the volume's widest projection.
    """

    max_tilt_deg: float = 60.0
    step_deg: float = 3.0
    order: str = "dose-symmetric"
    group: int = 2
    dose_per_tilt: float = 3.0
    defocus_tilt_sigma_um: float = 0.1
    defocus_error_sigma_um: float = 0.05
    bfactor: float = 400.0
    shift_sigma_px: float = 0.3
    ice_mfp_angstrom: float = 3500.0
    ramp_cutoff: float = 0.35
    ramp_falloff: float = 0.05
    denoise_sigma_px: float = 1.2
    snr_spread: float = 1.5
    detector_margin: int = 4

    def __post_init__(self) -> None:
        if not 0 < self.max_tilt_deg < 90 or not self.step_deg > 0:
            raise ValueError("tilt range must be in (0, 90) degrees with a positive step")
        if self.order not in ("dose-symmetric", "sequential"):
            raise ValueError(f"unknown tilt order {self.order!r}")
        if self.group < 1 or self.snr_spread < 1:
            raise ValueError("group must be >= 1 and snr_spread >= 1")


def tilt_angles(max_tilt_deg: float, step_deg: float) -> np.ndarray:
    """Tilt angles in degrees, ascending, symmetric about 0 (0 included)."""
    n = int(np.floor(max_tilt_deg / step_deg + 1e-9))
    return np.arange(-n, n + 1, dtype=np.float64) * step_deg


def acquisition_order(angles: np.ndarray, order: str = "dose-symmetric",
                      group: int = 2) -> np.ndarray:
    """Position of each tilt in the acquisition (0 = first image), for ``angles`` ascending.

    Dose-symmetric (Hagen et al. 2017): 0° first, then ``group`` tilts on the positive side,
    ``group`` on the negative side, and so on outwards. For ±6° in 3° steps and ``group=2``:
    0, +3, +6, -3, -6.
    """
    angles = np.asarray(angles, dtype=np.float64)
    if order == "sequential":
        return np.arange(len(angles))
    centre = int(np.argmin(np.abs(angles)))
    pos = list(range(centre + 1, len(angles)))
    neg = list(range(centre - 1, -1, -1))
    sequence = [centre]
    while pos or neg:
        sequence += pos[:group]
        pos = pos[group:]
        sequence += neg[:group]
        neg = neg[group:]
    rank = np.empty(len(angles), dtype=np.int64)
    rank[np.asarray(sequence)] = np.arange(len(angles))
    return rank


def critical_exposure(k: np.ndarray) -> np.ndarray:
    """Critical exposure (e/Å²) at spatial frequency ``k`` (1/Å), Grant & Grigorieff 2015.

    The signal at ``k`` decays as ``exp(-dose / (2 critical_exposure(k)))``.
    """
    k = np.maximum(np.asarray(k, dtype=np.float64), 1e-6)
    return 0.245 * k ** -1.665 + 2.81


def _detector_size(nz: int, nx: int, max_tilt_deg: float, margin: int) -> int:
    t = np.deg2rad(np.linspace(0.0, max_tilt_deg, 64))
    width = np.max(np.abs(np.cos(t)) * nx + np.abs(np.sin(t)) * nz)
    return int(np.ceil(width)) + 2 * margin


@functools.lru_cache(maxsize=2)
def _projector_cached(nz: int, nx: int, angles: tuple[float, ...], n_det: int
                      ) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    z = np.arange(nz, dtype=np.float64) - 0.5 * (nz - 1)
    x = np.arange(nx, dtype=np.float64) - 0.5 * (nx - 1)
    zz = np.repeat(z, nx)
    xx = np.tile(x, nz)
    pix = np.arange(nz * nx, dtype=np.int64)
    rows, cols, vals = [], [], []
    for a, deg in enumerate(angles):
        t = np.deg2rad(deg)
        u = xx * np.cos(t) + zz * np.sin(t) + 0.5 * (n_det - 1)
        i0 = np.floor(u).astype(np.int64)
        w = (u - i0).astype(np.float32)
        rows += [a * n_det + i0, a * n_det + i0 + 1]
        cols += [pix, pix]
        vals += [1.0 - w, w]
    a_mat = sparse.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(len(angles) * n_det, nz * nx), dtype=np.float32)
    a_mat.sum_duplicates()
    return a_mat, a_mat.T.tocsr()


def projector(nz: int, nx: int, angles_deg: np.ndarray, margin: int = 4
              ) -> tuple[sparse.csr_matrix, sparse.csr_matrix, int]:
    """The sparse projector ``A`` of an ``(nz, nx)`` slice, its transpose and the detector size.

    ``A @ slice.ravel()`` (row-major ``(z, x)``) is the sinogram ``(n_angles, n_det)`` raveled;
    every voxel's weights sum to 1 per angle, so each projection preserves the slice's sum.
    """
    angles = tuple(float(a) for a in np.asarray(angles_deg, dtype=np.float64))
    n_det = _detector_size(nz, nx, max(abs(a) for a in angles), margin)
    a_mat, a_t = _projector_cached(int(nz), int(nx), angles, n_det)
    return a_mat, a_t, n_det


def _matmul_columns(mat: sparse.csr_matrix, dense: np.ndarray, workers: int) -> np.ndarray:
    """``mat @ dense`` with the columns of ``dense`` split over ``workers`` threads."""
    n = dense.shape[1]
    if workers <= 1 or n < 2 * workers:
        return np.asarray(mat @ dense, dtype=np.float32)
    edges = np.linspace(0, n, workers + 1).astype(int)
    out = np.empty((mat.shape[0], n), dtype=np.float32)

    def part(k: int) -> None:
        lo, hi = edges[k], edges[k + 1]
        out[:, lo:hi] = mat @ np.ascontiguousarray(dense[:, lo:hi])

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(part, range(workers)))
    return out


def project(volume: np.ndarray, angles_deg: np.ndarray, *, workers: int = 2,
            margin: int = 4) -> np.ndarray:
    """Project a ``(z, y, x)`` volume at the tilt angles: ``(n_angles, y, n_det)`` float32."""
    nz, ny, nx = volume.shape
    a_mat, _, n_det = projector(nz, nx, angles_deg, margin)
    cols = np.ascontiguousarray(np.asarray(volume, dtype=np.float32).transpose(0, 2, 1))
    sino = _matmul_columns(a_mat, cols.reshape(nz * nx, ny), workers)
    del cols
    return np.ascontiguousarray(sino.reshape(len(angles_deg), n_det, ny).transpose(0, 2, 1))


def back_project(images: np.ndarray, shape: tuple[int, int, int], angles_deg: np.ndarray, *,
                 workers: int = 2, margin: int = 4) -> np.ndarray:
    """The transpose of :func:`project`: ``(n_angles, y, n_det)`` images -> ``(z, y, x)``."""
    nz, ny, nx = shape
    _, a_t, n_det = projector(nz, nx, angles_deg, margin)
    if images.shape != (len(angles_deg), ny, n_det):
        raise ValueError(f"expected images of shape {(len(angles_deg), ny, n_det)}, "
                         f"got {images.shape}")
    sino = np.ascontiguousarray(np.asarray(images, dtype=np.float32).transpose(0, 2, 1))
    vol = _matmul_columns(a_t, sino.reshape(-1, ny), workers)
    del sino
    return np.ascontiguousarray(vol.reshape(nz, nx, ny).transpose(0, 2, 1))


def _ctf(k2: np.ndarray, defocus_um: float, optics: Optics) -> np.ndarray:
    """Signed CTF ``-sin(chi + asin(A))`` at squared frequencies ``k2`` (1/Å², float32)."""
    lam = electron_wavelength(optics.voltage_kv)
    a1 = np.float32(np.pi * lam * defocus_um * 1e4)
    a2 = np.float32(0.5 * np.pi * optics.cs_mm * 1e7 * lam**3)
    chi = k2 * (a1 - a2 * k2)
    chi += np.float32(np.arcsin(optics.amplitude_contrast))
    return -np.sin(chi)


def _mean_std(vol: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation in float64, accumulated slab by slab (no big temporaries)."""
    flat = vol.reshape(vol.shape[0], -1) if vol.ndim > 1 else vol[None]
    n = flat.size
    mean = sum(float(r.sum(dtype=np.float64)) for r in flat) / n
    m32 = np.float32(mean)
    ss = sum(float(np.square(r - m32).sum(dtype=np.float64)) for r in flat)
    return mean, float(np.sqrt(ss / n))


def _ramp(k: np.ndarray, cutoff: float, falloff: float) -> np.ndarray:
    """|k| up to ``cutoff`` (cycles/pixel), then a Gaussian fall-off of width ``falloff``."""
    k = np.abs(k)
    out = k.copy()
    past = k > cutoff
    out[past] = cutoff * np.exp(-0.5 * ((k[past] - cutoff) / falloff) ** 2)
    return out


def image_tilt_series(
    density: np.ndarray,
    spacing: float,
    optics: Optics,
    tilt: TiltSeries,
    snr: float,
    rng: np.random.Generator,
    *,
    defocus_um: float,
    ice_thickness_angstrom: float,
    keep_clean: bool = False,
    workers: int = 2,
) -> tuple[dict[str, np.ndarray], np.ndarray | None, dict]:
    """Image a clean density through a simulated tilt series and reconstruct it.

    Args:
        density: ``(z, y, x)`` float32 density (not modified).
        spacing: voxel (= detector pixel) size in Å.
        optics: voltage, Cs, amplitude contrast (the defocus comes from ``defocus_um``).
        tilt: acquisition and reconstruction parameters.
        snr: ``var(signal) / var(noise)`` of the untilted image (> 0, ``inf`` for no noise).
        rng: source of every per-tilt draw and of the noise (nothing else is drawn from it).
        defocus_um: mean underfocus of the tilt series.
        ice_thickness_angstrom: ice thickness, for the tilt-dependent noise.
        keep_clean: also reconstruct the noiseless series (one more back-projection).
        workers: threads for the projector and the FFTs.

    Returns:
        ``(tomograms, clean_or_None, info)``: ``{"wbp": ..., "denoised": ...}`` float32 volumes
        with zero mean and unit variance and protein dark (the clean one, when asked, uses the
        ``wbp`` normalisation, so ``tomograms["wbp"] - clean`` is exactly the noise), and a dict
        of the drawn parameters (per-tilt defocus, dose, noise scale...).
    """
    if not snr > 0:
        raise ValueError(f"snr must be positive, got {snr}")
    shape = density.shape
    angles = tilt_angles(tilt.max_tilt_deg, tilt.step_deg)
    n_tilt = len(angles)
    rank = acquisition_order(angles, tilt.order, tilt.group)
    dose_before = (rank + 0.5) * tilt.dose_per_tilt

    # every draw of the series, in a fixed order (the noise last, so parameters never depend on
    # the image size)
    defocus = defocus_um + rng.normal(0.0, tilt.defocus_tilt_sigma_um, n_tilt)
    defocus_est = defocus + rng.normal(0.0, tilt.defocus_error_sigma_um, n_tilt)
    shifts = rng.normal(0.0, tilt.shift_sigma_px, (n_tilt, 2))
    log_spread = np.log(tilt.snr_spread)
    snr_factor = float(np.exp(rng.uniform(-log_spread, log_spread)))
    tomo_snr = snr * snr_factor

    images = project(density, angles, workers=workers, margin=tilt.detector_margin)
    _, ny, n_det = images.shape
    n_pad = sfft.next_fast_len(2 * n_det)
    ky = sfft.fftfreq(ny).astype(np.float32)[:, None]  # cycles/pixel
    ku = sfft.rfftfreq(n_pad).astype(np.float32)[None, :]
    k2 = (ky * ky + ku * ku) * np.float32(1.0 / spacing**2)  # 1/Å²
    ramp = _ramp(ku, tilt.ramp_cutoff, tilt.ramp_falloff).astype(np.float32)
    dose_rate = (-0.5 / critical_exposure(np.sqrt(k2))).astype(np.float32)
    log_envelope = np.float32(-tilt.bfactor / 4.0) * k2

    def imaged(a: int) -> np.ndarray:
        """Half spectrum of tilt ``a``: CTF, envelopes (B-factor, dose) and alignment shift."""
        f = sfft.rfft2(images[a], s=(ny, n_pad), workers=workers)
        amp = _ctf(k2, defocus[a], optics)
        amp *= np.exp(log_envelope + np.float32(dose_before[a]) * dose_rate)
        f *= amp
        f *= np.exp(np.complex64(-2j * np.pi * shifts[a, 0]) * ky)
        f *= np.exp(np.complex64(-2j * np.pi * shifts[a, 1]) * ku)
        return f

    # the untilted image first: its signal variance sets the noise of every tilt
    centre = int(np.argmin(np.abs(angles)))
    f_centre = imaged(centre)
    signal_var0 = _mean_std(sfft.irfft2(f_centre, s=(ny, n_pad), workers=workers)[:, :n_det])[1]
    signal_var0 = signal_var0**2
    path = ice_thickness_angstrom / tilt.ice_mfp_angstrom
    rel_var = np.exp(path / np.cos(np.deg2rad(angles)) - path)
    noise_var0 = 0.0 if np.isinf(tomo_snr) else signal_var0 / tomo_snr
    noise_std = np.sqrt(noise_var0 * rel_var)

    # each tilt: white noise (shot noise), phase flip with the estimated defocus, ramp filter
    filtered = np.empty((n_tilt, ny, n_det), dtype=np.float32)
    clean = np.empty_like(filtered) if keep_clean else None
    for a in range(n_tilt):
        f = f_centre if a == centre else imaged(a)
        post = np.sign(_ctf(k2, defocus_est[a], optics)) * ramp
        if clean is not None:
            clean[a] = sfft.irfft2(f * post, s=(ny, n_pad), workers=workers)[:, :n_det]
        if noise_std[a] > 0:
            noise = rng.standard_normal((ny, n_det), dtype=np.float32)
            noise *= np.float32(noise_std[a])
            f += sfft.rfft2(noise, s=(ny, n_pad), workers=workers)
        f *= post
        filtered[a] = sfft.irfft2(f, s=(ny, n_pad), workers=workers)[:, :n_det]
    images = f_centre = None  # freed before the back-projection

    wbp = back_project(filtered, shape, angles, workers=workers, margin=tilt.detector_margin)
    del filtered
    mean, std = _mean_std(wbp)
    scale = np.float32(-1.0 / std if std > 0 else -1.0)  # protein dark, as in raw tomograms
    wbp -= np.float32(mean)
    wbp *= scale
    denoised = ndimage.gaussian_filter(wbp, tilt.denoise_sigma_px, mode="nearest", truncate=3.0)
    d_mean, d_std = _mean_std(denoised)
    denoised -= np.float32(d_mean)
    if d_std > 0:
        denoised *= np.float32(1.0 / d_std)
    clean_vol = None
    if clean is not None:
        clean_vol = back_project(clean, shape, angles, workers=workers,
                                 margin=tilt.detector_margin)
        clean_vol -= np.float32(mean)
        clean_vol *= scale
    info = {
        "tilt_angles": angles.tolist(),
        "acquisition_order": rank.tolist(),
        "defocus_um_per_tilt": defocus.tolist(),
        "defocus_estimate_um_per_tilt": defocus_est.tolist(),
        "tomogram_snr": tomo_snr,
        "snr_factor": snr_factor,
        "signal_var_untilted": signal_var0,
        "noise_var_untilted": noise_var0,
        "total_dose": float(n_tilt * tilt.dose_per_tilt),
    }
    return {"denoised": denoised, "wbp": wbp}, clean_vol, info
