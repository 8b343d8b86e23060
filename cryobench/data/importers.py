"""Importers: turn data a user downloaded elsewhere into working copick projects.

* :func:`import_czii`: the Kaggle CZII ``train/`` layout (``static/`` read-only tomograms,
  ``overlay/ExperimentRuns/<run>/Picks/<object>.json``). Tomograms stay where they are (the
  config's static root); picks are copied as ``curation_0_<object>.json`` (copick cannot open
  ``<object>.json``).
* :func:`import_byu`: the Kaggle BYU layout (``train/<tomo_id>/slice_NNNN.jpg`` stacks and
  ``train_labels.csv`` with motor coordinates in voxels and ``Voxel spacing``) into a project with
  one ``flagellar-motor`` object; tomograms without a motor get an empty picks file.

Both write the output directory atomically (a temporary sibling renamed into place).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cryobench.coords import voxels_to_picks
from cryobench.data.project import (
    GROUND_TRUTH_SESSION,
    GROUND_TRUTH_USER,
    create_project,
    round_spacing,
)
from cryobench.data.synth import CONFIG_NAME, MANIFEST_NAME
from cryobench.errors import DataError, InputError
from cryobench.io.atomic import atomic_dir, atomic_write_text
from cryobench.io.picks import read_csv_table
from cryobench.particles import BYU_MOTOR, CZII_PARTICLES

__all__ = ["ImportSummary", "import_czii", "import_byu", "BYU_LABEL_COLUMNS", "BYU_TOMO_TYPE"]

BYU_TOMO_TYPE = "byu"
BYU_LABEL_COLUMNS: tuple[str, ...] = ("tomo_id", "Motor axis 0", "Motor axis 1", "Motor axis 2",
                                      "Voxel spacing")
"""Columns ``train_labels.csv`` must have (``Array shape (axis k)`` are checked when present)."""


@dataclass
class ImportSummary:
    """What an importer wrote."""

    config: Path
    runs: list[str] = field(default_factory=list)
    picks: dict[str, int] = field(default_factory=dict)
    """Number of ground-truth picks per particle type."""
    skipped: list[str] = field(default_factory=list)
    """Things present in the input that were not imported (unknown objects, unlabelled stacks)."""


def _check_out(out: Path) -> Path:
    out = out.expanduser().resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError("output exists and is not an empty directory (choose a new one)", out)
    return out


# --------------------------------------------------------------------------------------------
# CZII
# --------------------------------------------------------------------------------------------


def _czii_root(train_dir: Path) -> Path:
    if not train_dir.exists():
        raise DataError("directory not found", train_dir)
    for cand in (train_dir, train_dir / "train"):
        if (cand / "static" / "ExperimentRuns").is_dir():
            return cand
    raise DataError("not a Kaggle CZII train directory: no static/ExperimentRuns "
                    "(expected <kaggle>/train with static/ and overlay/)", train_dir)


def import_czii(train_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str]
                ) -> ImportSummary:
    """Import the Kaggle CZII ``train`` directory into a copick project at ``out_dir``.

    Raises:
        DataError: missing layout, a run without tomograms, an unreadable picks file.
    """
    root = _czii_root(Path(train_dir).expanduser().resolve())
    out = _check_out(Path(out_dir))
    static_runs = root / "static" / "ExperimentRuns"
    overlay_runs = root / "overlay" / "ExperimentRuns"
    runs = sorted(p.name for p in static_runs.iterdir() if p.is_dir())
    if not runs:
        raise DataError("no runs in static/ExperimentRuns", static_runs)
    known = {p.name for p in CZII_PARTICLES}
    summary = ImportSummary(config=out / CONFIG_NAME, runs=runs,
                            picks={p.name: 0 for p in CZII_PARTICLES})
    # read and check everything first: nothing is written if the input is bad
    payloads: dict[str, dict[str, dict]] = {}
    for run in runs:
        if not any((static_runs / run).glob("VoxelSpacing*/*.zarr")):
            raise DataError(f"run {run!r} has no tomogram (VoxelSpacing*/<type>.zarr)",
                            static_runs / run)
        payloads[run] = {}
        pick_dir = overlay_runs / run / "Picks"
        files = sorted(pick_dir.glob("*.json")) if pick_dir.is_dir() else []
        for f in files:
            obj = f.stem.split("_")[-1]  # "<object>.json" or already "<user>_<session>_<object>"
            if obj not in known:
                summary.skipped.append(f"{run}/{f.name}")
                continue
            try:
                data = json.loads(f.read_text(encoding="utf-8"))
                points = data.get("points") or []
                for p in points:
                    loc = p["location"]
                    float(loc["x"]), float(loc["y"]), float(loc["z"])
            except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError,
                    ValueError, AttributeError) as exc:
                raise DataError(f"unreadable CZII picks file ({type(exc).__name__}: {exc})",
                                f) from None
            data.update(pickable_object_name=obj, user_id=GROUND_TRUTH_USER,
                        session_id=GROUND_TRUTH_SESSION, run_name=run, points=points)
            data.setdefault("unit", "angstrom")
            payloads[run][obj] = data
            summary.picks[obj] += len(points)
    with atomic_dir(out) as tmp:
        create_project(tmp / CONFIG_NAME, tmp / "overlay", CZII_PARTICLES,
                       name="CZII CryoET Object Identification (train)",
                       description=f"Imported from {root} by cryobench",
                       static_root=root / "static",
                       defaults={"tomo_type": "denoised", "voxel_spacing": 10.0},
                       final_overlay_root=out / "overlay")
        for run, objs in payloads.items():
            for obj in sorted(known):
                data = objs.get(obj) or {"pickable_object_name": obj, "user_id": GROUND_TRUTH_USER,
                                         "session_id": GROUND_TRUTH_SESSION, "run_name": run,
                                         "unit": "angstrom", "points": []}
                dest = (tmp / "overlay" / "ExperimentRuns" / run / "Picks" /
                        f"{GROUND_TRUTH_USER}_{GROUND_TRUTH_SESSION}_{obj}.json")
                atomic_write_text(dest, json.dumps(data, indent=1))
        atomic_write_text(tmp / MANIFEST_NAME, json.dumps(
            {"kind": "import", "importer": "czii", "source": str(root), "runs": runs,
             "picks": summary.picks, "skipped": summary.skipped}, indent=2) + "\n")
    return summary


# --------------------------------------------------------------------------------------------
# BYU
# --------------------------------------------------------------------------------------------

_SLICE_RE = re.compile(r"(\d+)")


def _byu_layout(train_dir: Path, labels: Path | None) -> tuple[Path, Path]:
    if not train_dir.exists():
        raise DataError("directory not found", train_dir)
    if (train_dir / "train").is_dir():
        stacks = train_dir / "train"
        default_labels = train_dir / "train_labels.csv"
    else:
        stacks = train_dir
        default_labels = train_dir / "train_labels.csv"
        if not default_labels.exists():
            default_labels = train_dir.parent / "train_labels.csv"
    lab = labels if labels is not None else default_labels
    if not lab.exists():
        raise DataError("BYU label file not found (expected train_labels.csv beside train/; "
                        "or pass --labels)", lab)
    return stacks, lab


def _read_byu_labels(path: Path) -> pd.DataFrame:
    df = read_csv_table(path)
    missing = [c for c in BYU_LABEL_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(map(repr, missing))}; expected "
                         f"{', '.join(BYU_LABEL_COLUMNS)}", path)
    numeric = [c for c in df.columns if c.startswith("Motor axis") or c == "Voxel spacing"
               or c.startswith("Array shape")]
    for col in numeric:
        vals = pd.to_numeric(df[col], errors="coerce")
        if vals.isna().any():
            row = int(np.flatnonzero(vals.isna().to_numpy())[0])
            raise InputError(f"column {col!r} has a missing or non-numeric value (data row "
                             f"{row + 1})", path)
        df[col] = vals.astype(np.float64)
    if (df["Voxel spacing"] <= 0).any():
        raise InputError("column 'Voxel spacing' has a non-positive value", path)
    df["tomo_id"] = df["tomo_id"].astype(str).str.strip()
    return df


def _read_stack(folder: Path) -> np.ndarray:
    from PIL import Image

    files = [f for f in folder.iterdir() if f.suffix.lower() in (".jpg", ".jpeg", ".png")]
    if not files:
        raise DataError("no slice images (slice_NNNN.jpg) in tomogram folder", folder)

    def key(f: Path) -> int:
        nums = _SLICE_RE.findall(f.stem)
        return int(nums[-1]) if nums else -1

    files.sort(key=key)
    slices = []
    for f in files:
        try:
            with Image.open(f) as im:
                slices.append(np.asarray(im.convert("L"), dtype=np.uint8))
        except OSError as exc:
            raise DataError(f"unreadable slice image ({exc})", f) from None
        if slices[-1].shape != slices[0].shape:
            raise DataError(f"slice shape {slices[-1].shape} differs from {slices[0].shape}", f)
    return np.stack(slices)


def import_byu(train_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
               labels: str | os.PathLike[str] | None = None, progress: bool = True
               ) -> ImportSummary:
    """Import the Kaggle BYU training data (``train/`` stacks + ``train_labels.csv``).

    Tomograms are stored as uint8 (as in the JPEG slices; :meth:`RunHandle.tomogram` returns
    float32 0..255) at their own voxel spacing, tomogram type ``byu``.

    Raises:
        InputError: a label file with missing columns or bad values.
        DataError: missing folders or images, shape mismatches with ``Array shape`` columns.
    """
    from tqdm.auto import tqdm

    stacks, lab = _byu_layout(Path(train_dir).expanduser().resolve(),
                              None if labels is None else Path(labels).expanduser())
    df = _read_byu_labels(lab)
    out = _check_out(Path(out_dir))
    tomo_ids = list(dict.fromkeys(df["tomo_id"]))
    missing = [t for t in tomo_ids if not (stacks / t).is_dir()]
    if missing:
        raise DataError(f"no slice folder for tomo_id(s) {', '.join(missing[:5])}"
                        f"{' ...' if len(missing) > 5 else ''}", stacks)
    summary = ImportSummary(config=out / CONFIG_NAME, runs=tomo_ids,
                            picks={BYU_MOTOR.name: 0})
    summary.skipped = sorted(p.name for p in stacks.iterdir()
                             if p.is_dir() and p.name not in set(tomo_ids))
    with atomic_dir(out) as tmp:
        writer = create_project(tmp / CONFIG_NAME, tmp / "overlay", (BYU_MOTOR,),
                                name="BYU flagellar motors (train)",
                                description=f"Imported from {stacks.parent} by cryobench",
                                defaults={"tomo_type": BYU_TOMO_TYPE},
                                final_overlay_root=out / "overlay")
        for tomo_id in tqdm(tomo_ids, desc="import byu", unit="tomo", disable=not progress):
            rows = df[df["tomo_id"] == tomo_id]
            vol = _read_stack(stacks / tomo_id)
            shape_cols = [f"Array shape (axis {k})" for k in range(3)]
            if all(c in rows.columns for c in shape_cols):
                want = tuple(int(rows.iloc[0][c]) for c in shape_cols)
                if want != vol.shape:
                    raise DataError(f"slice stack has shape {vol.shape} but {lab.name} says "
                                    f"{want}", stacks / tomo_id)
            spacing = round_spacing(float(rows.iloc[0]["Voxel spacing"]))
            axes = rows[["Motor axis 0", "Motor axis 1", "Motor axis 2"]].to_numpy(np.float64)
            motors = axes[(axes >= 0).all(axis=1)]
            picks = voxels_to_picks(motors, spacing, tomo_id, BYU_MOTOR.name)
            writer.add_run(tomo_id, vol, spacing, picks, tomo_type=BYU_TOMO_TYPE,
                           dtype=np.uint8)
            summary.picks[BYU_MOTOR.name] += len(motors)
        atomic_write_text(tmp / MANIFEST_NAME, json.dumps(
            {"kind": "import", "importer": "byu", "source": str(stacks.parent),
             "labels": str(lab), "runs": tomo_ids, "picks": summary.picks,
             "skipped": summary.skipped}, indent=2) + "\n")
    return summary
