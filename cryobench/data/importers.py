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
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
from cryobench.io.byu import motor_absent
from cryobench.io.jsonfile import read_json
from cryobench.io.names import safe_component
from cryobench.io.numbers import MAX_COORDINATE, check_voxel_spacing, numeric_column
from cryobench.io.picks import read_csv_table
from cryobench.particles import BYU_MOTOR, CZII_PARTICLES

__all__ = ["ImportSummary", "import_czii", "import_byu", "BYU_LABEL_COLUMNS", "BYU_TOMO_TYPE"]

BYU_TOMO_TYPE = "byu"
BYU_LABEL_COLUMNS: tuple[str, ...] = ("tomo_id", "Motor axis 0", "Motor axis 1", "Motor axis 2",
                                      "Voxel spacing")
"""Columns ``train_labels.csv`` must have (``Array shape (axis k)`` are checked when present)."""
MAX_STACK_SIDE = 8192
"""Most slices per stack and most pixels per side of a slice image."""
MAX_SLICE_PIXELS = 64 * 2**20
"""Most pixels in one slice image (checked from its header before decoding)."""
MAX_STACK_VOXELS = 4 * 2**30
"""Most voxels in one imported tomogram (4 GiB as uint8)."""


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
    if out.parent == out:
        raise DataError("the output must be a new directory, not the file system root", out)
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


_UNLABELLED = ("{what}: this looks like unlabelled data (such as Kaggle's test/); an import "
               "makes a labelled benchmark project from the training data, unlabelled tomograms "
               "are for prediction (`cryobench predict`)")


def _czii_points(data: Any, f: Path) -> list[dict[str, Any]]:
    """The ``points`` of a Kaggle CZII picks file, each location checked (finite, in range)."""
    if not isinstance(data, dict):
        raise DataError("a CZII picks file must be a JSON object", f)
    points = data.get("points") or []
    if not isinstance(points, list):
        raise DataError("'points' must be a list", f)
    for k, point in enumerate(points):
        loc = point.get("location") if isinstance(point, dict) else None
        if not isinstance(loc, dict) or any(c not in loc for c in "xyz"):
            raise DataError(f"point {k} has no location with x, y, z", f)
        for c in "xyz":
            v = loc[c]
            try:
                ok = (isinstance(v, (int, float)) and not isinstance(v, bool)
                      and math.isfinite(float(v)) and abs(float(v)) <= MAX_COORDINATE)
            except OverflowError:
                ok = False
            if not ok:
                raise DataError(f"point {k}: location.{c} = {str(v)[:24]!r} is not a finite "
                                f"coordinate (|value| <= {MAX_COORDINATE:g} Å)", f)
    return points


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
    entries = sorted(p for p in static_runs.iterdir() if p.is_dir())
    hidden = [p.name for p in entries if p.name.startswith(".")]  # .ipynb_checkpoints ...
    runs = [safe_component(p.name, "run folder name", p, error=DataError)
            for p in entries if not p.name.startswith(".")]
    if not runs:
        raise DataError("no runs in static/ExperimentRuns", static_runs)
    known = {p.name for p in CZII_PARTICLES}
    summary = ImportSummary(config=out / CONFIG_NAME, runs=runs,
                            picks={p.name: 0 for p in CZII_PARTICLES}, skipped=list(hidden))
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
            data = read_json(f, "CZII picks file", error=DataError)
            points = _czii_points(data, f)
            data.update(pickable_object_name=obj, user_id=GROUND_TRUTH_USER,
                        session_id=GROUND_TRUTH_SESSION, run_name=run, points=points)
            data.setdefault("unit", "angstrom")
            payloads[run][obj] = data
            summary.picks[obj] += len(points)
    if not any(summary.picks.values()):
        raise DataError(_UNLABELLED.format(
            what="no ground-truth picks (overlay/ExperimentRuns/<run>/Picks/<object>.json) in "
                 "any run"), root)
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
    if labels is None and train_dir.name == "test":
        raise DataError(_UNLABELLED.format(what="a Kaggle test/ directory has no labels"),
                        train_dir)
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
        if labels is None and (train_dir / "test").is_dir():
            raise DataError(_UNLABELLED.format(what="no train_labels.csv"), train_dir)
        raise DataError("BYU label file not found (expected train_labels.csv beside train/; "
                        "or pass --labels)", lab)
    return stacks, lab


def _read_byu_labels(path: Path) -> pd.DataFrame:
    """``train_labels.csv``, checked row by row (data rows counted from 1 after the header)."""
    df = read_csv_table(path)
    missing = [c for c in BYU_LABEL_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(map(repr, missing))}; expected "
                         f"{', '.join(BYU_LABEL_COLUMNS)}", path)
    if len(df) == 0:
        raise InputError("no data rows", path)
    numeric = [c for c in df.columns if c.startswith("Motor axis") or c == "Voxel spacing"
               or c.startswith("Array shape") or c == "Has motor"]
    for col in numeric:
        df[col] = numeric_column(df, col, path)
    for row, vs in enumerate(df["Voxel spacing"]):
        check_voxel_spacing(vs, path, f" (data row {row + 1})")
    for col in (c for c in df.columns if c.startswith("Array shape")):
        bad = (df[col] < 1) | (df[col] > MAX_STACK_SIDE) | (df[col] != np.round(df[col]))
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(f"column {col!r} must be a whole number in [1, {MAX_STACK_SIDE}] "
                             f"(data row {row + 1})", path)
    if df["tomo_id"].isna().any():
        row = int(np.flatnonzero(df["tomo_id"].isna().to_numpy())[0])
        raise InputError(f"column 'tomo_id' is empty (data row {row + 1})", path)
    df["tomo_id"] = df["tomo_id"].astype(str)
    for row, tomo_id in enumerate(df["tomo_id"]):
        safe_component(tomo_id, f"tomo_id in data row {row + 1}", path)
    axes = df[["Motor axis 0", "Motor axis 1", "Motor axis 2"]].to_numpy(np.float64)
    absent = motor_absent(axes, path)
    if "Has motor" in df.columns:
        clash = (df["Has motor"].to_numpy() == 1) == absent
        if clash.any():
            row = int(np.flatnonzero(clash)[0])
            raise InputError(f"'Has motor' is {df['Has motor'].iloc[row]:g} but the motor axes "
                             f"are {'-1 (no motor)' if absent[row] else 'a position'} "
                             f"(data row {row + 1})", path)
    per_tomo = [c for c in df.columns if c == "Voxel spacing" or c.startswith("Array shape")]
    for col in per_tomo:
        n = df.groupby("tomo_id", sort=False)[col].nunique()
        if (n > 1).any():
            tomo = str(n.index[np.flatnonzero((n > 1).to_numpy())[0]])
            row = int(np.flatnonzero((df["tomo_id"] == tomo).to_numpy())[1])
            raise InputError(f"tomo_id {tomo!r} has two different values of {col!r} "
                             f"(data row {row + 1})", path)
    mixed = pd.Series(absent).groupby(df["tomo_id"].to_numpy(), sort=False).nunique()
    if (mixed > 1).any():
        tomo = str(mixed.index[np.flatnonzero((mixed > 1).to_numpy())[0]])
        raise InputError(f"tomo_id {tomo!r} has both a 'no motor' row (-1) and motor rows",
                         path)
    df["_row"] = np.arange(1, len(df) + 1)
    return df


def _read_stack(folder: Path) -> np.ndarray:
    """The slice images of one tomogram as uint8 ``(z, y, x)``; image sizes are checked from
    the headers before anything is decoded (a decompression bomb is refused, not inflated)."""
    import warnings

    from PIL import Image

    files = [f for f in folder.iterdir() if f.suffix.lower() in (".jpg", ".jpeg", ".png")]
    if not files:
        raise DataError("no slice images (slice_NNNN.jpg) in tomogram folder", folder)
    if len(files) > MAX_STACK_SIDE:
        raise DataError(f"{len(files)} slice images (at most {MAX_STACK_SIDE})", folder)

    def key(f: Path) -> int:
        nums = _SLICE_RE.findall(f.stem)
        return int(nums[-1]) if nums else -1

    files.sort(key=key)
    slices: list[np.ndarray] = []
    for f in files:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(f) as im:
                    w, h = im.size
                    if max(w, h) > MAX_STACK_SIDE or w * h > MAX_SLICE_PIXELS:
                        raise DataError(f"slice image of {w}x{h} pixels is too large (at most "
                                        f"{MAX_STACK_SIDE} per side and {MAX_SLICE_PIXELS} "
                                        "pixels)", f)
                    if slices and (h, w) != slices[0].shape:
                        raise DataError(f"slice shape {(h, w)} differs from "
                                        f"{slices[0].shape}", f)
                    slices.append(np.asarray(im.convert("L"), dtype=np.uint8))
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
            raise DataError(f"slice image refused as a decompression bomb ({exc})", f) from None
        except (OSError, ValueError, SyntaxError) as exc:  # PIL raises all three on bad files
            raise DataError(f"unreadable slice image ({exc})", f) from None
        total = len(files) * slices[0].size
        if total > MAX_STACK_VOXELS:
            raise DataError(f"{len(files)} slices of {slices[0].shape} make {total} voxels (at "
                            f"most {MAX_STACK_VOXELS})", folder)
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
            outside = [(int(r), m) for r, m in zip(rows["_row"], axes, strict=True)
                       if (m >= 0).all() and not (m < np.asarray(vol.shape) - 0.5).all()]
            if outside:
                r, m = outside[0]
                raise InputError(f"motor at {', '.join(f'{v:g}' for v in m)} (voxels z, y, x) is "
                                 f"outside the {vol.shape} stack of {tomo_id!r} (data row {r})",
                                 lab)
            picks = voxels_to_picks(motors, spacing, tomo_id, BYU_MOTOR.name)
            writer.add_run(tomo_id, vol, spacing, picks, tomo_type=BYU_TOMO_TYPE,
                           dtype=np.uint8)
            summary.picks[BYU_MOTOR.name] += len(motors)
        atomic_write_text(tmp / MANIFEST_NAME, json.dumps(
            {"kind": "import", "importer": "byu", "source": str(stacks.parent),
             "labels": str(lab), "runs": tomo_ids, "picks": summary.picks,
             "skipped": summary.skipped}, indent=2) + "\n")
    return summary
