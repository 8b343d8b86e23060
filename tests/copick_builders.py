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


PORTAL_RUNS = [  # (portal run id, run name, dataset id)
    (16463, "TS_5_4", 10440), (16464, "TS_86_3", 10440), (16465, "TS_6_4", 10440),
    (20001, "TS_100_3", 10445), (30001, "TS_200_1", 10446),
]


def fake_portal_root(tmp: Path, runs=PORTAL_RUNS, extra_picks: dict | None = None):
    """A local copick root shaped like copick's CryoET Data Portal root: runs named by their
    numeric portal id whose metadata carries ``portal_run_name`` / ``portal_dataset_id``, the
    portal's object names, two tomogram types at 10.012 Å and picks as user ``data-portal`` with
    the annotation id as session. Only the network is missing."""
    import copick
    from copick.impl.cryoet_data_portal import CopickRunMetaCDP
    from copick.models import PickableObject
    from copick.util.ome import volume_pyramid, write_ome_zarr_3d

    names = ["ferritin-complex", "cytosolic-ribosome", "beta-amylase", "membrane-protein"]
    objects = [PickableObject(name=n, is_particle=True, radius=50, label=i + 1)
               for i, n in enumerate(names)]
    objects.append(PickableObject(name="membrane", is_particle=False, label=9))
    root = copick.new_config(str(tmp / "portal" / "copick.json"), str(tmp / "portal"),
                             pickable_objects=objects)
    for rid, _, _ in runs:
        run = root.new_run(str(rid))
        vs = run.new_voxel_spacing(10.012)
        rng = np.random.default_rng(rid)
        for tomo_type in ("wbp-denoised-denoiset-ctfdeconv", "wbp"):
            vol = rng.standard_normal((12, 24, 20)).astype(np.float32)
            write_ome_zarr_3d(vs.new_tomogram(tomo_type).zarr(),
                              volume_pyramid(vol, 10.012, 1), chunk_size=(12, 24, 20))
        for k, obj in enumerate(names[:3]):
            p = run.new_picks(obj, str(74183 + k), "data-portal")
            p.from_numpy(rng.uniform(0, 200, size=(k + 1, 3)))
            p.store()
        for (obj, session), xyz in (extra_picks or {}).get(rid, {}).items():
            p = run.new_picks(obj, session, "data-portal")
            p.from_numpy(np.asarray(xyz, dtype=float).reshape(-1, 3))
            p.store()
    root.refresh()
    by_id = {str(rid): (name, ds) for rid, name, ds in runs}
    for run in root.runs:
        name, ds = by_id[run.name]
        run.meta = CopickRunMetaCDP(name=run.name, portal_run_id=int(run.name),
                                    portal_run_name=name, portal_dataset_id=ds)
    return root
