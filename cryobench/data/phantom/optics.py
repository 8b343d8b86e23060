"""Imaging model in one forward and one inverse FFT.

The noiseless density is transformed once (``scipy.fft.rfftn``, float32 -> complex64), then each
Fourier plane is multiplied by

* the phase-flipped CTF ``|sin(chi + asin(A))|`` (300 kV, ~3 µm underfocus, Cs 2.7 mm, amplitude
  contrast A = 0.07): low frequencies are weak, the first zero sits near 24 Å;
* a B-factor envelope ``exp(-B k^2 / 4)``;
* the missing wedge of a ±60° single-axis tilt series about y: Fourier components with
  ``|k_z| > tan(60°) |k_x|`` are zero;

and noise is added in the same planes: power proportional to ``|k|`` (the ramp filter of
weighted back-projection applied to white projection noise), inside the same wedge, scaled so that
``var(signal) / var(noise)`` equals the requested SNR (both over the whole volume, after the
filters, without the mean). One inverse FFT then yields the tomogram, already normalised to zero
mean and unit variance (the variances come from Parseval's theorem on the half spectrum).

Noise coefficients have independent uniform real and imaginary parts (int8 draws, ~20x faster than
Gaussian draws); every voxel sums millions of them, so the real-space noise is Gaussian by the
central limit theorem (checked in the tests).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft

__all__ = [
    "Optics",
    "apply_optics",
    "electron_wavelength",
    "transfer_function",
    "wedge_mask",
]

_U8_STD = np.sqrt((256.0**2 - 1.0) / 12.0)  # std of (int8 + 0.5), uniform on -127.5..127.5


@dataclass(frozen=True)
class Optics:
    """Microscope and reconstruction parameters of the imaging model.

    Attributes:
        voltage_kv: acceleration voltage (kV).
        defocus_um: mean underfocus (µm).
        defocus_jitter_um: per-tomogram defocus is drawn uniformly in mean ± jitter.
        cs_mm: spherical aberration (mm).
        amplitude_contrast: fraction of amplitude contrast.
        bfactor: B-factor of the envelope (Å^2).
        max_tilt_deg: the tilt range is ±max_tilt_deg about y; 90 means no missing wedge.
        noise_exponent: noise power is proportional to ``|k| ** noise_exponent``.
        invert: multiply by -1 so that protein is dark, as in raw cryo-ET tomograms.
    """

    voltage_kv: float = 300.0
    defocus_um: float = 3.0
    defocus_jitter_um: float = 0.3
    cs_mm: float = 2.7
    amplitude_contrast: float = 0.07
    bfactor: float = 1000.0
    max_tilt_deg: float = 60.0
    noise_exponent: float = 1.0
    invert: bool = True


def electron_wavelength(voltage_kv: float) -> float:
    """Relativistic electron wavelength in Å (0.0197 Å at 300 kV)."""
    v = voltage_kv * 1e3
    return 12.2643 / np.sqrt(v * (1.0 + 0.978466e-6 * v))


def transfer_function(k2: np.ndarray, defocus_um: float, optics: Optics) -> np.ndarray:
    """Phase-flipped CTF times the B-factor envelope at squared frequencies ``k2`` (1/Å^2)."""
    lam = electron_wavelength(optics.voltage_kv)
    a1 = np.float32(np.pi * lam * defocus_um * 1e4)
    a2 = np.float32(0.5 * np.pi * optics.cs_mm * 1e7 * lam**3)
    phi = np.float32(np.arcsin(optics.amplitude_contrast))
    chi = k2 * (a1 - a2 * k2)
    out = np.abs(np.sin(chi + phi))
    if optics.bfactor:
        out *= np.exp(np.float32(-optics.bfactor / 4.0) * k2)
    return out


def wedge_mask(kz: float | np.ndarray, kx: np.ndarray, max_tilt_deg: float) -> np.ndarray:
    """True where a ±``max_tilt_deg`` tilt series about y samples Fourier space.

    A tilt by ``a`` samples the central plane holding k_y and the direction at angle ``a`` from
    k_x towards k_z, so the sampled set is ``|k_z| <= tan(max_tilt) |k_x|``.
    """
    if max_tilt_deg >= 90.0:
        return np.ones(np.broadcast(kz, kx).shape, dtype=bool)
    t = np.tan(np.deg2rad(max_tilt_deg))
    return np.abs(kz) <= t * np.abs(kx) + 1e-12


def _plane_pairs(nz: int) -> list[tuple[int, int]]:
    """Pairs (i, -i mod nz) of k_z planes that share |k_z| and therefore one filter."""
    return [(i, (-i) % nz) for i in range(nz // 2 + 1)]


def _sq(a: np.ndarray) -> float:
    """Σ |a|² in float64 (BLAS dot product, no temporaries for contiguous input)."""
    a = a.ravel()
    return float(np.vdot(a, a).real)


def _plane_power(plane: np.ndarray, last_weight: float) -> float:
    """Σ w |F|² over one half-spectrum plane: weight 2 for columns that stand for two."""
    total = 2.0 * _sq(plane) - _sq(plane[:, 0])
    if last_weight == 1.0:
        total -= _sq(plane[:, -1])
    return total


def _hermitian_column(col: np.ndarray) -> np.ndarray:
    """Project a ``(nz, ny)`` column of an rfft (k_x = 0 or Nyquist) onto Hermitian symmetry."""
    iz = (-np.arange(col.shape[0])) % col.shape[0]
    iy = (-np.arange(col.shape[1])) % col.shape[1]
    return 0.5 * (col + np.conj(col[iz][:, iy]))


def apply_optics(
    density: np.ndarray,
    spacing: float,
    optics: Optics,
    snr: float,
    rng: np.random.Generator,
    *,
    defocus_um: float | None = None,
    z_profile: np.ndarray | None = None,
    keep_clean: bool = False,
    workers: int = 2,
) -> tuple[np.ndarray, np.ndarray | None, dict]:
    """Image a noiseless density: CTF, B-factor, missing wedge, ramp-shaped noise at ``snr``.

    Args:
        density: ``(z, y, x)`` float32 density (not modified).
        spacing: voxel spacing in Å.
        optics: the imaging parameters.
        snr: target ``var(signal) / var(noise)`` (> 0; ``inf`` for no noise).
        rng: source of the noise (nothing else is drawn from it).
        defocus_um: underfocus; default ``optics.defocus_um``.
        z_profile: optional ``(nz,)`` density added to every z plane (the ice slab). It is
            added in Fourier space, where it only touches the ``k_y = k_x = 0`` line, which is
            cheaper than painting the whole volume.
        keep_clean: also return the noiseless filtered volume, normalised with the same offset
            and scale as the noisy one (so ``volume - clean`` is exactly the noise). Costs one
            more inverse FFT and a copy of the spectrum.
        workers: threads for the FFTs.

    Returns:
        ``(volume, clean_or_None, info)``: float32 volumes with zero mean and unit variance
        (``volume``), and a dict with ``defocus_um``, ``snr``, ``signal_var`` and ``noise_var``
        (the latter two in the units of ``density`` before normalisation).
    """
    if not snr > 0:
        raise ValueError(f"snr must be positive, got {snr}")
    shape = density.shape
    nz, ny, nx = shape
    n_vox = float(nz * ny * nx)
    dfu = optics.defocus_um if defocus_um is None else float(defocus_um)

    spec = sfft.rfftn(density.astype(np.float32, copy=False), workers=workers)
    if z_profile is not None:
        prof = np.asarray(z_profile, dtype=np.float64)
        if prof.shape != (nz,):
            raise ValueError(f"z_profile must have shape ({nz},), got {prof.shape}")
        spec[:, 0, 0] += (np.fft.fft(prof) * (ny * nx)).astype(np.complex64)
    spec[0, 0, 0] = 0.0  # mean removed
    kz = sfft.fftfreq(nz, d=spacing).astype(np.float32)
    ky = sfft.fftfreq(ny, d=spacing).astype(np.float32)
    kx = sfft.rfftfreq(nx, d=spacing).astype(np.float32)
    kyx2 = ky[:, None] ** 2 + kx[None, :] ** 2
    last_weight = 1.0 if nx % 2 == 0 else 2.0
    ncol = spec.shape[2]

    # pass 1: filter the signal; accumulate its power and the unit-noise power
    p_signal = 0.0
    p_unit_noise = 0.0
    col_w = np.full(ncol, 2.0)
    col_w[0] = 1.0
    if last_weight == 1.0:
        col_w[-1] = 1.0
    for i, j in _plane_pairs(nz):
        k2 = kyx2 + kz[i] * kz[i]
        filt = transfer_function(k2, dfu, optics)
        wedge = wedge_mask(kz[i], kx, optics.max_tilt_deg)[None, :]
        filt *= wedge
        noise_pow = (k2 ** np.float32(0.5 * optics.noise_exponent)) * wedge
        planes = (i,) if i == j else (i, j)
        for p in planes:
            spec[p] *= filt
            p_signal += _plane_power(spec[p], last_weight)
            p_unit_noise += float((noise_pow.sum(axis=0, dtype=np.float64) * col_w).sum())
    if p_unit_noise <= 0:
        raise ValueError("no Fourier component carries noise (volume too small?)")

    clean_spec = spec.copy() if keep_clean else None

    # pass 2: add noise with power scale**2 * |k|**e inside the wedge
    scale = 0.0 if np.isinf(snr) else np.sqrt(p_signal / (snr * p_unit_noise))
    edge_boost = np.ones(ncol, dtype=np.float32)
    edge_boost[0] = np.sqrt(2.0)  # halved again by the Hermitian projection below
    if last_weight == 1.0:
        edge_boost[-1] = np.sqrt(2.0)
    unit = np.float32(scale / (np.sqrt(2.0) * _U8_STD))
    p_total = 0.0
    if scale > 0:
        for i, j in _plane_pairs(nz):
            k2 = kyx2 + kz[i] * kz[i]
            amp = k2 ** np.float32(0.25 * optics.noise_exponent)
            amp *= wedge_mask(kz[i], kx, optics.max_tilt_deg)[None, :]
            amp *= edge_boost[None, :] * unit
            for p in (i,) if i == j else (i, j):
                draws = rng.integers(-128, 128, size=(2, ny, ncol), dtype=np.int8)
                noise = draws.astype(np.float32)
                noise += np.float32(0.5)
                spec[p].real += noise[0] * amp
                spec[p].imag += noise[1] * amp
        spec[:, :, 0] = _hermitian_column(spec[:, :, 0])
        if last_weight == 1.0:
            spec[:, :, -1] = _hermitian_column(spec[:, :, -1])
        for p in range(nz):
            p_total += _plane_power(spec[p], last_weight)
    else:
        p_total = p_signal

    std = np.sqrt(p_total) / n_vox
    factor = np.float32((-1.0 if optics.invert else 1.0) / std) if std > 0 else np.float32(1.0)
    volume = sfft.irfftn(spec, s=shape, workers=workers, overwrite_x=True)
    del spec
    volume *= factor
    clean = None
    if clean_spec is not None:
        clean = sfft.irfftn(clean_spec, s=shape, workers=workers, overwrite_x=True)
        clean *= factor
    info = {
        "defocus_um": dfu,
        "snr": float(snr),
        "signal_var": p_signal / n_vox**2,
        "noise_var": max(p_total - p_signal, 0.0) / n_vox**2,
    }
    return volume.astype(np.float32, copy=False), clean, info
