"""The named phantom presets (values explained in docs/phantoms.md).

First generation (one Fourier filter; their volumes must never change, committed records point
at them): ``czii``, ``byu``, ``tiny``, ``tiny-byu``. Second generation (tilt series, crowding,
look-alikes): ``czii-v2``, ``byu-v2``, ``tiny-v2``.
"""

from __future__ import annotations

from cryobench.particles import BYU_MOTOR, CZII_PARTICLES

from .optics import Optics
from .spec import Crowding, PhantomSpec
from .tilt import TiltSeries

__all__ = ["PRESETS", "CZII_COUNTS", "V2_OPTICS"]

CZII_COUNTS: dict[str, tuple[int, int]] = {
    "apo-ferritin": (40, 60),
    "beta-amylase": (10, 15),
    "beta-galactosidase": (10, 15),
    "ribosome": (30, 60),
    "thyroglobulin": (20, 30),
    "virus-like-particle": (5, 15),
}
"""Inclusive per-tomogram count ranges of the czii preset (CZII-like, see docs/phantoms.md)."""

TINY_COUNTS: dict[str, tuple[int, int]] = {
    "apo-ferritin": (3, 4),
    "beta-amylase": (2, 3),
    "beta-galactosidase": (2, 3),
    "ribosome": (2, 3),
    "thyroglobulin": (2, 3),
    "virus-like-particle": (1, 2),
}

PRESETS: dict[str, PhantomSpec] = {
    "czii": PhantomSpec(
        name="czii",
        task="particles",
        shape=(184, 630, 630),
        voxel_spacing=10.0,
        particles=CZII_PARTICLES,
        counts=tuple(CZII_COUNTS[p.name] for p in CZII_PARTICLES),
        snr=0.1,
        clutter=(250, 400),
        vesicles=(1, 3),
        gold=(0, 4),
        ice_fraction=(0.75, 0.9),
    ),
    "byu": PhantomSpec(
        name="byu",
        task="motor",
        shape=(128, 256, 256),
        voxel_spacing=16.0,
        spacing_range=(13.1, 19.7),
        particles=(BYU_MOTOR,),
        snr=0.1,
        clutter=(5, 20),
        gold=(0, 3),
        ice_fraction=(0.8, 0.95),
        motor_probability=0.5,
        cells=(0, 1),
    ),
    "tiny": PhantomSpec(
        name="tiny",
        task="particles",
        shape=(48, 96, 96),
        voxel_spacing=15.0,
        particles=CZII_PARTICLES,
        counts=tuple(TINY_COUNTS[p.name] for p in CZII_PARTICLES),
        snr=1.0,
        clutter=(10, 20),
        vesicles=(0, 0),
        gold=(0, 1),
        ice_fraction=(0.85, 0.95),
    ),
    "tiny-byu": PhantomSpec(
        name="tiny-byu",
        task="motor",
        shape=(48, 96, 96),
        voxel_spacing=40.0,
        spacing_range=(36.0, 44.0),
        particles=(BYU_MOTOR,),
        snr=1.0,
        clutter=(2, 5),
        gold=(0, 1),
        ice_fraction=(0.8, 0.95),
        motor_probability=0.5,
        cells=(0, 0),
    ),
}
"""Preset name -> recipe. ``tiny-byu`` is the byu scene at the same physical size on a 2.5x
coarser grid: seconds to generate, for the motor task's conformance tests."""

V2_OPTICS = Optics(defocus_um=3.5, defocus_jitter_um=1.0)
"""Second-generation optics: 300 kV, Cs 2.7 mm, 7 % amplitude contrast, 2.5-4.5 µm underfocus
(the envelope and the noise come from the tilt series, see :class:`TiltSeries`)."""

PRESETS.update({
    "czii-v2": PhantomSpec(
        name="czii-v2",
        task="particles",
        shape=(184, 630, 630),
        voxel_spacing=10.0,
        particles=CZII_PARTICLES,
        counts=tuple(CZII_COUNTS[p.name] for p in CZII_PARTICLES),
        snr=0.07,
        optics=V2_OPTICS,
        clutter=(300, 450),
        vesicles=(1, 3),
        gold=(2, 8),
        ice_fraction=(0.55, 0.95),
        amplitude_jitter=0.25,
        imaging="tilt",
        tilt=TiltSeries(),
        crowd=Crowding(),
        tomo_types=("denoised", "wbp"),
        storage_dtype="float16",
    ),
    "byu-v2": PhantomSpec(
        name="byu-v2",
        task="motor",
        shape=(128, 256, 256),
        voxel_spacing=16.0,
        spacing_range=(13.1, 19.7),
        particles=(BYU_MOTOR,),
        snr=0.05,
        optics=V2_OPTICS,
        clutter=(10, 30),
        gold=(1, 5),
        ice_fraction=(0.7, 0.95),
        amplitude_jitter=0.2,
        motor_probability=0.5,
        cells=(0, 1),
        decoys=(2, 6),
        imaging="tilt",
        tilt=TiltSeries(),
        tomo_types=("denoised", "wbp"),
        storage_dtype="float16",
    ),
    "tiny-v2": PhantomSpec(
        name="tiny-v2",
        task="particles",
        shape=(48, 96, 96),
        voxel_spacing=15.0,
        particles=CZII_PARTICLES,
        counts=tuple(TINY_COUNTS[p.name] for p in CZII_PARTICLES),
        snr=0.5,
        optics=V2_OPTICS,
        clutter=(10, 20),
        vesicles=(0, 0),
        gold=(1, 2),
        ice_fraction=(0.85, 0.95),
        imaging="tilt",
        tilt=TiltSeries(),
        crowd=Crowding(confusers=(1, 1), sheet_probability=0.0),
        tomo_types=("denoised", "wbp"),
        storage_dtype="float16",
    ),
})
