"""Data layer: copick projects, named splits, synthetic phantoms, importers, training targets.

Everything a method sees of the data comes through here::

    from cryobench.data import load_split
    split = load_split("tiny")
    for run in split.runs("train"):        # RunHandle objects (cryobench.methods.RunLike)
        vol = run.tomogram()               # float32 (z, y, x)
        picks = run.picks()                # experiment, particle_type, x, y, z (Å)

copick (and zarr) are used only in :mod:`cryobench.data.project` and, for the remote backends,
:mod:`cryobench.data.portal` (the CryoET Data Portal) and :mod:`cryobench.data.croissant`.
"""

from cryobench.data.project import (
    Project,
    RunHandle,
    create_project,
    load_copick_ground_truth,
    load_copick_picks,
    open_project,
    write_czii_csv,
)
from cryobench.data.splits import Split, data_fingerprint, list_splits, load_split

__all__ = [
    "Project",
    "RunHandle",
    "Split",
    "create_project",
    "data_fingerprint",
    "list_splits",
    "load_copick_ground_truth",
    "load_copick_picks",
    "load_split",
    "open_project",
    "write_czii_csv",
]
