"""Copick projects built with copick's own API, for the tests of any-project support."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def copick_project(tmp: Path, objects: list[dict], runs=("TS_a", "TS_b", "TS_c"),
                   picks: dict | None = None) -> Path:
    """A filesystem copick project written with copick's API: 16x32x32 tomograms ``denoised``
    at 10 Å, ground truth curation/0 and any extra ``picks`` {(user, session): {obj: xyz}}."""
    import copick
    from copick.models import PickableObject
    from copick.util.ome import volume_pyramid, write_ome_zarr_3d

    cfg = tmp / "proj" / "copick.json"
    root = copick.new_config(str(cfg), str(tmp / "proj"),
                             pickable_objects=[PickableObject(**o) for o in objects])
    rng = np.random.default_rng(0)
    particle_names = [o["name"] for o in objects if o["is_particle"]]
    for k, name in enumerate(runs):
        run = root.new_run(name)
        tomo = run.new_voxel_spacing(10.0).new_tomogram("denoised")
        vol = rng.standard_normal((16, 32, 32)).astype(np.float32)
        write_ome_zarr_3d(tomo.zarr(), volume_pyramid(vol, 10.0, 1), chunk_size=(16, 32, 32))
        for obj in particle_names:
            p = run.new_picks(obj, "0", "curation")
            p.from_numpy(np.array([[100.0 + k, 120.0, 50.0]]))
            p.store()
        for (user, session), by_obj in (picks or {}).items():
            for obj, xyz in by_obj.items():
                p = run.new_picks(obj, session, user)
                p.from_numpy(np.asarray(xyz, dtype=float).reshape(-1, 3))
                p.store()
    return cfg


OBJECTS = [
    {"name": "ribosome", "is_particle": True, "radius": 150, "label": 1,
     "metadata": {"score_weight": 3}},
    {"name": "proteasome", "is_particle": True, "radius": 80, "label": 2,
     "metadata": {"weight": 0.5}},
    {"name": "apo-ferritin", "is_particle": True, "radius": 60, "label": 3},
    {"name": "mystery", "is_particle": True, "radius": 70, "label": 4},
    {"name": "membrane", "is_particle": False, "label": 5},
]


def croissant_project(tmp: Path, splits: dict | None = None, objects=None) -> Path:
    """:func:`copick_project` exported by copick as a Croissant (base URL: the project folder);
    returns the ``metadata.json``."""
    import copick
    from copick.ops.croissant import export_croissant

    cfg = copick_project(tmp, objects or OBJECTS[:2])
    root = copick.from_file(str(cfg))
    return Path(export_croissant(root, str(cfg.parent), base_url=str(cfg.parent),
                                 splits=splits, validate=False))
