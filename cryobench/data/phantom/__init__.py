"""Synthetic cryo-ET phantoms: realistic tomograms with exact ground-truth picks (numpy + scipy).

Usage::

    from cryobench.data.phantom import PRESETS, generate_tomogram
    ph = generate_tomogram(PRESETS["czii"], seed=0)
    ph.volume        # (z, y, x) float32, zero mean, unit std
    ph.picks         # DataFrame particle_type, x, y, z in Å
    ph.voxel_spacing # Å

Recipe, default values and measured timings: docs/phantoms.md.
"""

from __future__ import annotations

from .generate import generate_tomogram, tomogram_pyramid
from .optics import Optics, apply_optics, transfer_function, wedge_mask
from .presets import PRESETS
from .spec import Phantom, PhantomSpec

__all__ = [
    "PRESETS",
    "Optics",
    "Phantom",
    "PhantomSpec",
    "apply_optics",
    "generate_tomogram",
    "tomogram_pyramid",
    "transfer_function",
    "wedge_mask",
]
