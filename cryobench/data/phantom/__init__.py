"""Synthetic cryo-ET phantoms: realistic tomograms with exact ground-truth picks (numpy + scipy).

Usage::

    from cryobench.data.phantom import PRESETS, generate_tomogram
    ph = generate_tomogram(PRESETS["czii-v2"], seed=0)
    ph.volume        # (z, y, x) float32, zero mean, unit std
    ph.tomograms     # {"denoised": ..., "wbp": ...}
    ph.picks         # DataFrame particle_type, x, y, z in Å and the rot_* orientation columns
    ph.voxel_spacing # Å

Two generations: ``czii``, ``byu``, ``tiny``, ``tiny-byu`` (one Fourier filter, frozen: records
point at their data) and ``czii-v2``, ``byu-v2``, ``tiny-v2`` (tilt series and weighted
back-projection of a crowded scene).

Recipe, default values and measured timings: docs/phantoms.md.
"""

from __future__ import annotations

from .generate import generate_tomogram, tomogram_pyramid
from .optics import Optics, apply_optics, transfer_function, wedge_mask
from .presets import PRESETS
from .spec import Crowding, Phantom, PhantomSpec
from .tilt import TiltSeries

__all__ = [
    "PRESETS",
    "Crowding",
    "TiltSeries",
    "Optics",
    "Phantom",
    "PhantomSpec",
    "apply_optics",
    "generate_tomogram",
    "tomogram_pyramid",
    "transfer_function",
    "wedge_mask",
]
