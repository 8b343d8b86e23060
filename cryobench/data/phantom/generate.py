"""Generate one synthetic tomogram from a :class:`PhantomSpec` and a seed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cryobench.coords import ROTATION_COLUMNS, rotation_zyx_to_xyz, voxels_to_picks, with_rotations
from cryobench.errors import ConfigError

from .byu import build_cell
from .crowd import build_crowded_scene
from .czii import build_scene
from .optics import apply_optics
from .spec import Phantom, PhantomSpec
from .tilt import image_tilt_series

__all__ = ["generate_tomogram", "tomogram_pyramid"]

PICK_COLUMNS = ["particle_type", "x", "y", "z", *ROTATION_COLUMNS]


def _seed_sequence(seed: int | np.random.SeedSequence) -> np.random.SeedSequence:
    """A fresh SeedSequence equal to ``seed`` (spawning never mutates the caller's object)."""
    if isinstance(seed, np.random.SeedSequence):
        return np.random.SeedSequence(
            seed.entropy, spawn_key=seed.spawn_key, pool_size=seed.pool_size
        )
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer or a SeedSequence, got {seed!r}")
    return np.random.SeedSequence(int(seed))


def _seed_record(seed: int | np.random.SeedSequence) -> int | dict:
    if isinstance(seed, np.random.SeedSequence):
        return {"entropy": int(seed.entropy), "spawn_key": [int(k) for k in seed.spawn_key]}
    return int(seed)


def generate_tomogram(
    spec: PhantomSpec,
    seed: int | np.random.SeedSequence,
    *,
    snr: float | None = None,
    has_motor: bool | None = None,
    keep_clean: bool = False,
    workers: int = 2,
) -> Phantom:
    """Generate one tomogram and its ground-truth picks.

    The same ``(spec, seed, snr, has_motor)`` gives bit-identical arrays and picks (for a given
    numpy/scipy build and CPU family); the scene, the voxel spacing, the motor draw and the
    imaging (noise, per-tilt parameters) come from independent child streams of ``seed``, so
    changing ``snr`` keeps the scene. ``spec.imaging`` chooses the first generation's Fourier
    filter or the tilt series (:mod:`.tilt`); ``spec.crowd`` the crowded scene (:mod:`.crowd`).

    Args:
        spec: the recipe (see :data:`cryobench.data.phantom.PRESETS`).
        seed: non-negative int or a :class:`numpy.random.SeedSequence` (not consumed).
        snr: override ``spec.snr`` (``var(signal) / var(noise)``).
        has_motor: ``task="motor"`` only: force a motor (True) or none (False); None draws it
            with probability ``spec.motor_probability``.
        keep_clean: also return the noiseless imaged volume (first generation: one more
            inverse FFT and about 0.6 GB at the czii size; tilt series: one more
            back-projection, in the ``wbp`` normalisation).
        workers: threads for the FFTs and the tilt-series projector.

    Returns:
        A :class:`Phantom`; picks are in Å, voxel ``i`` centred at ``i * spacing``.
    """
    if not isinstance(spec, PhantomSpec):
        raise ConfigError(f"expected a PhantomSpec, got {type(spec).__name__}")
    target_snr = spec.snr if snr is None else float(snr)
    if not target_snr > 0:
        raise ConfigError(f"snr must be positive, got {snr}")
    if has_motor is not None and spec.task != "motor":
        raise ConfigError(f"has_motor applies to motor presets only, not {spec.name!r}")
    ss = _seed_sequence(seed)
    scene_ss, noise_ss, spacing_ss, motor_ss = ss.spawn(4)
    spacing = spec.draw_spacing(np.random.default_rng(spacing_ss))
    noise_rng = np.random.default_rng(noise_ss)
    jitter = spec.optics.defocus_jitter_um
    defocus = float(spec.optics.defocus_um + noise_rng.uniform(-jitter, jitter))

    scene_rng = np.random.default_rng(scene_ss)
    if spec.task == "particles":
        build = build_crowded_scene if spec.crowd is not None else build_scene
        density, picks, meta = build(spec, spacing, scene_rng)
    else:
        if has_motor is None:
            has_motor = bool(np.random.default_rng(motor_ss).random() < spec.motor_probability)
        density, picks, meta = build_cell(spec, spacing, scene_rng, bool(has_motor))

    z_profile = meta.pop("z_profile", None)
    if spec.imaging == "filter":
        volume, clean, info = apply_optics(
            density, spacing, spec.optics, target_snr, noise_rng,
            defocus_um=defocus, z_profile=z_profile, keep_clean=keep_clean, workers=workers,
        )
        tomograms = {"denoised": volume}
    else:
        z0, z1 = meta["ice_z"]
        tomograms, clean, info = image_tilt_series(
            density, spacing, spec.optics, spec.tilt, target_snr, noise_rng,
            defocus_um=defocus, ice_thickness_angstrom=(z1 - z0 + 1) * spacing,
            keep_clean=keep_clean, workers=workers,
        )
        tomograms = {t: tomograms[t] for t in spec.tomo_types}
        volume = tomograms[spec.tomo_types[0]]
    del density

    df = _picks_frame(picks, spacing)
    meta = {
        "preset": spec.name,
        "task": spec.task,
        "seed": _seed_record(seed),
        "shape": list(spec.shape),
        "voxel_spacing": spacing,
        "snr": target_snr,
        "defocus_um": defocus,
        "imaging": spec.imaging,
        **{k: v for k, v in info.items() if k not in ("defocus_um", "snr")},
        **meta,
    }
    return Phantom(volume=volume, voxel_spacing=spacing, picks=df.reset_index(drop=True),
                   clean=clean, meta=meta, tomograms=tomograms)


def _picks_frame(picks: list[tuple[str, np.ndarray, np.ndarray]], spacing: float) -> pd.DataFrame:
    """Picks ``(name, zyx voxel centre, zyx rotation)`` -> ``particle_type, x, y, z, rot_*``."""
    if picks:
        zyx = np.stack([c for _, c, _ in picks])
        df = voxels_to_picks(zyx, spacing, "", [name for name, _, _ in picks])
        rot = rotation_zyx_to_xyz(np.stack([r for _, _, r in picks]))
        return with_rotations(df, rot)[PICK_COLUMNS]
    return pd.DataFrame(
        {
            "particle_type": pd.Series([], dtype=object),
            **{k: pd.Series([], dtype=np.float64) for k in PICK_COLUMNS[1:]},
        }
    )


def tomogram_pyramid(volume: np.ndarray, levels: int = 3) -> list[np.ndarray]:
    """``levels`` float32 volumes, each the 2x2x2 mean of the previous one.

    Odd sizes are padded by repeating the last plane, so level ``l`` has shape
    ``ceil(n / 2**l)`` like copick's own pyramid. Note that a binned voxel ``i`` averages fine
    voxels ``2i`` and ``2i + 1``: its centre lies half a fine voxel after ``i * 2 * spacing``.
    """
    if levels < 1:
        raise ValueError(f"levels must be >= 1, got {levels}")
    out = [np.asarray(volume, dtype=np.float32)]
    for _ in range(1, levels):
        v = out[-1]
        pad = [(0, s % 2) for s in v.shape]
        if any(p[1] for p in pad):
            v = np.pad(v, pad, mode="edge")
        z, y, x = (s // 2 for s in v.shape)
        out.append(v.reshape(z, 2, y, 2, x, 2).mean(axis=(1, 3, 5), dtype=np.float32))
    return out
