"""The CryoET Data Portal: materialise portal datasets as a local copick project.

:func:`fetch_portal` reads datasets through copick's portal backend (a ``cryoet_data_portal``
root, which queries the portal's GraphQL API with the ``cryoet-data-portal`` client and reads
tomograms and annotation files from its public S3 bucket) and writes, per run, one tomogram type
at one voxel spacing (level 0 as published, a 3-level pyramid in cryobench's chunking) and the
ground-truth picks as user ``curation``, session ``0``. Runs are named by their portal run name
(``TS_5_4``), not by the portal's numeric run id.

The output folder is resumable: each run is written to ``OUT/.staging`` and moved into the
project when complete, and ``OUT/cryobench-portal.json`` (the portal manifest) lists the
finished runs with their dataset, run id, voxel spacing and the annotation files their picks
came from; a second call skips finished runs. Offline, a bounded connectivity check
(:mod:`cryobench.data.remote`) fails in a few seconds instead of copick's retries.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryobench.errors import DataError, DataUnavailableError
from cryobench.io.atomic import atomic_write_text
from cryobench.particles import CZII_PARTICLES, ParticleType

__all__ = [
    "PORTAL_MANIFEST",
    "CZII_PORTAL_DATASETS",
    "CZII_PORTAL_OBJECTS",
    "CZII_PORTAL_TOMO_TYPE",
    "FetchSummary",
    "fetch_portal",
    "portal_manifest",
    "portal_run_datasets",
]

CONFIG_NAME = "copick.json"
PORTAL_MANIFEST = "cryobench-portal.json"
MANIFEST_FORMAT = 1

CZII_PORTAL_DATASETS: dict[int, str] = {
    10440: "CZII challenge training data (the 7 Kaggle training tomograms, TS_5_4 ... TS_99_9)",
    10445: "CZII challenge public test set",
    10446: "CZII challenge private test set",
}
"""The CZII "CryoET Object Identification" datasets on the portal (see docs/data.md)."""

CZII_PORTAL_OBJECTS: dict[str, str] = {
    "ferritin-complex": "apo-ferritin",
    "beta-amylase": "beta-amylase",
    "beta-galactosidase": "beta-galactosidase",
    "cytosolic-ribosome": "ribosome",
    "thyroglobulin": "thyroglobulin",
    "virus-like-capsid": "virus-like-particle",
}
"""Portal object names (as copick derives them from the annotations' ontology names) of the six
CZII classes -> the Kaggle names cryobench scores with (copick's own CZII sync tutorial)."""

CZII_PORTAL_TOMO_TYPE = "wbp-denoised-denoiset-ctfdeconv"
"""The portal tomogram type of the Kaggle ``denoised`` tomograms, stored as ``denoised``."""

PORTAL_PLACEHOLDER_RADIUS = 50.0
"""copick gives every object derived from portal annotations this radius (Å); it is no
measurement."""


@dataclass
class FetchSummary:
    """What :func:`fetch_portal` did."""

    config: Path
    fetched: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    picks: dict[str, int] = field(default_factory=dict)
    skipped_objects: list[str] = field(default_factory=list)
    placeholder_radii: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _PortalRun:
    source: Any  # a copick run of the portal root
    name: str
    dataset_id: int
    run_id: int | None


# --------------------------------------------------------------------------------------------
# The manifest
# --------------------------------------------------------------------------------------------


def portal_manifest(config_or_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The portal manifest beside a fetched project's config (or in its folder).

    Raises:
        DataError: the folder was not written by ``cryobench data fetch-portal``.
    """
    p = Path(config_or_dir).expanduser()
    folder = p if p.is_dir() else p.parent
    path = folder / PORTAL_MANIFEST
    if not path.is_file():
        raise DataError(f"not a project written by `cryobench data fetch-portal` (no "
                        f"{PORTAL_MANIFEST} beside the config)", p)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"unreadable portal manifest ({exc})", path) from None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise DataError(f"not a portal manifest of format {MANIFEST_FORMAT}", path)
    return data


def portal_run_datasets(config_or_dir: str | os.PathLike[str]) -> dict[str, int]:
    """``{run name: portal dataset id}`` of the finished runs of a fetched project."""
    runs = portal_manifest(config_or_dir).get("runs", {})
    return {str(name): int(info["dataset_id"]) for name, info in runs.items()}


def _write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    manifest = dict(manifest, runs=dict(sorted(manifest["runs"].items())))
    atomic_write_text(out / PORTAL_MANIFEST, json.dumps(manifest, indent=1) + "\n")


# --------------------------------------------------------------------------------------------
# The portal root (network)
# --------------------------------------------------------------------------------------------


def _open_portal_root(dataset_ids: Sequence[int], out: Path) -> Any:
    """A copick portal root over ``dataset_ids``, after a bounded connectivity check."""
    from cryobench.data.remote import (
        PORTAL_GRAPHQL_HOST,
        PORTAL_S3_HOST,
        quiet_logs,
        require_reachable,
    )

    require_reachable([(PORTAL_GRAPHQL_HOST, 443), (PORTAL_S3_HOST, 443)],
                      "fetching from the CryoET Data Portal")
    cache = out / ".portal-overlay"
    cache.mkdir(parents=True, exist_ok=True)
    try:
        import copick

        with quiet_logs():
            return copick.from_czcdp_datasets(list(dataset_ids),
                                              overlay_root="local://" + str(cache.resolve()))
    except Exception as exc:  # gql / requests / pydantic errors from the portal client
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DataUnavailableError(f"the CryoET Data Portal query failed ({first[:200]})",
                                   out) from None


def _portal_runs(root: Any, dataset_ids: Sequence[int]) -> list[_PortalRun]:
    out = []
    for run in root.runs:
        ds = getattr(run.meta, "portal_dataset_id", None)
        if ds is None or int(ds) not in dataset_ids:
            continue
        name = getattr(run.meta, "portal_run_name", None) or run.name
        rid = getattr(run.meta, "portal_run_id", None)
        out.append(_PortalRun(run, str(name), int(ds), None if rid is None else int(rid)))
    return sorted(out, key=lambda r: (r.dataset_id, r.name))


# --------------------------------------------------------------------------------------------
# Objects, tomograms, picks
# --------------------------------------------------------------------------------------------


def _target_objects(source_objects: Iterable[Any], czii: bool
                    ) -> tuple[list[ParticleType], dict[str, str], list[str], list[str]]:
    """(particles, {portal name: local name}, skipped portal names, placeholder-radius names)."""
    objs = [o for o in source_objects if o.is_particle]
    if czii:
        mapping = {o.name: CZII_PORTAL_OBJECTS[o.name] for o in objs
                   if o.name in CZII_PORTAL_OBJECTS}
        skipped = sorted(o.name for o in objs if o.name not in CZII_PORTAL_OBJECTS)
        return list(CZII_PARTICLES), mapping, skipped, []
    particles, mapping, placeholder = [], {}, []
    for label, o in enumerate(sorted(objs, key=lambda o: o.name), start=1):
        radius = float(o.radius) if o.radius else PORTAL_PLACEHOLDER_RADIUS
        if radius == PORTAL_PLACEHOLDER_RADIUS:
            placeholder.append(o.name)
        color = tuple(int(c) for c in (o.color or (128, 128, 128, 255)))
        particles.append(ParticleType(o.name, label, radius, 1.0, color))
        mapping[o.name] = o.name
    skipped = sorted(o.name for o in source_objects if not o.is_particle)
    return particles, mapping, skipped, placeholder


def _select_tomogram(run: _PortalRun, voxel_spacing: float, tomo_type: str | None) -> tuple:
    from cryobench.data.project import _select_voxel_spacing

    vs = _select_voxel_spacing(run.source, voxel_spacing)
    tomos = list(vs.tomograms)
    types = sorted({t.tomo_type for t in tomos})
    if tomo_type is None:
        if len(types) != 1:
            raise DataError(f"portal run {run.name} ({run.run_id}) has "
                            f"{len(types) or 'no'} tomogram types at {vs.voxel_size:g} Å"
                            f"{': ' + ', '.join(types) if types else ''}; choose one with "
                            "--tomo-type")
        tomo_type = types[0]
    found = [t for t in tomos if t.tomo_type == tomo_type]
    if not found:
        raise DataError(f"portal run {run.name} ({run.run_id}) has no tomogram type "
                        f"{tomo_type!r} at {vs.voxel_size:g} Å; available: "
                        f"{', '.join(types) or 'none'}")
    return vs, found[0]


def _portal_flag(picks: Any, flag: str) -> bool | None:
    meta = getattr(getattr(picks, "meta", None), "portal_metadata", None)
    ann = getattr(meta, "portal_annotation", None)
    value = getattr(ann, flag, None)
    return None if value is None else bool(value)


def _ground_truth_picks(run: _PortalRun, obj: str) -> list[Any]:
    """The annotation files of ``obj`` to use as ground truth: those marked ground truth when
    any are, then the curator-recommended one among several; several left is an error."""
    found = list(run.source.get_picks(object_name=obj))
    if len(found) > 1 and any(_portal_flag(p, "ground_truth_status") for p in found):
        found = [p for p in found if _portal_flag(p, "ground_truth_status")]
    if len(found) > 1 and any(_portal_flag(p, "is_curator_recommended") for p in found):
        found = [p for p in found if _portal_flag(p, "is_curator_recommended")]
    if len(found) > 1:
        sessions = ", ".join(sorted(f"{p.user_id}/{p.session_id}" for p in found))
        raise DataError(f"portal run {run.name} has {len(found)} candidate ground-truth "
                        f"annotations of {obj!r} ({sessions}); cryobench does not merge them")
    return found


def _read_points(picks: Iterable[Any], where: str) -> np.ndarray:
    rows = []
    for cp in picks:
        try:
            xyz = np.asarray(cp.full_positions(), dtype=np.float64).reshape(-1, 3)
        except Exception as exc:
            raise DataError(f"cannot read the portal annotation {cp.user_id}/{cp.session_id} "
                            f"of {where} ({type(exc).__name__}: {str(exc)[:120]})") from None
        rows.append(xyz)
    return np.concatenate(rows) if rows else np.zeros((0, 3))


def _read_level0(tomo: Any, where: str) -> np.ndarray:
    import zarr

    try:
        group = zarr.open_group(tomo.zarr(), mode="r")
        return np.asarray(group["0"][...])
    except Exception as exc:
        raise DataError(f"cannot read the portal tomogram of {where} ({type(exc).__name__}: "
                        f"{str(exc)[:120]})") from None


# --------------------------------------------------------------------------------------------
# fetch
# --------------------------------------------------------------------------------------------


def _check_out(out: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """The existing manifest when resuming (settings must agree), else a new one."""
    if out.exists() and not out.is_dir():
        raise DataError("exists and is not a directory", out)
    if (out / PORTAL_MANIFEST).is_file():
        manifest = portal_manifest(out)
        for key, value in settings.items():
            if manifest.get(key) != value:
                raise DataError(f"was fetched with {key} {manifest.get(key)!r}, not {value!r}; "
                                "fetch into another folder", out)
        return manifest
    if out.is_dir() and any(p.name != ".portal-overlay" for p in out.iterdir()):
        raise DataError("is not empty and not a fetched portal project", out)
    return {"format": MANIFEST_FORMAT, **settings, "datasets": [], "runs": {}}


def fetch_portal(dataset_ids: Sequence[int], out: str | os.PathLike[str], *,
                 runs: Iterable[str] | None = None, voxel_spacing: float = 10.0,
                 tomo_type: str | None = None, progress: bool = True,
                 source: Any = None) -> FetchSummary:
    """Materialise portal datasets as a local copick project at ``out`` (resumable).

    Args:
        dataset_ids: portal dataset ids (e.g. 10440).
        out: output folder: new, empty, or an earlier fetch made with the same settings.
        runs: portal run names or run ids to fetch (default: every run of the datasets).
        voxel_spacing: Å; matches the portal's 10.012 Å for 10 (see ``round_spacing`` rules).
        tomo_type: portal tomogram type (default: ``wbp-denoised-denoiset-ctfdeconv`` for the
            CZII datasets, else the run's only type). CZII tomograms are stored as ``denoised``.
        progress: a tqdm bar over runs.
        source: a copick root to read instead of the portal (runs carry the portal's
            ``portal_dataset_id`` / ``portal_run_name`` / ``portal_run_id`` metadata); for
            tests and mirrors.

    Raises:
        DataUnavailableError: the portal is unreachable (after a check of a few seconds).
        DataError: bad output folder, unknown runs or tomogram type, ambiguous ground truth.
    """
    from tqdm.auto import tqdm

    from cryobench.data.project import create_project, round_spacing

    ids = sorted({int(i) for i in dataset_ids})
    if not ids:
        raise DataError("give at least one --dataset")
    out = Path(out).expanduser()
    czii = set(ids) <= set(CZII_PORTAL_DATASETS)
    if tomo_type is None and czii:
        tomo_type = CZII_PORTAL_TOMO_TYPE
    stored_type = "denoised" if czii and tomo_type == CZII_PORTAL_TOMO_TYPE else tomo_type
    settings = {"voxel_spacing": round_spacing(voxel_spacing), "portal_tomo_type": tomo_type,
                "objects": "czii" if czii else "portal"}
    manifest = _check_out(out, settings)
    root = source if source is not None else _open_portal_root(ids, out)
    out.mkdir(parents=True, exist_ok=True)
    records = _portal_runs(root, ids)
    found_ids = {r.dataset_id for r in records}
    if set(ids) - found_ids:
        missing = ", ".join(str(i) for i in sorted(set(ids) - found_ids))
        raise DataError(f"the portal returned no runs of dataset(s) {missing}")
    if runs is not None:
        wanted = [str(r) for r in runs]
        have = {r.name for r in records} | {str(r.run_id) for r in records}
        unknown = [w for w in wanted if w not in have]
        if unknown:
            raise DataError(f"no run {', '.join(unknown)} in dataset(s) "
                            f"{', '.join(map(str, ids))} (runs: "
                            f"{', '.join(sorted(r.name for r in records)[:8])} ...)")
        records = [r for r in records if r.name in wanted or str(r.run_id) in wanted]
    names: dict[str, int] = {n: int(i["dataset_id"]) for n, i in manifest["runs"].items()}
    for r in records:
        if names.setdefault(r.name, r.dataset_id) != r.dataset_id:
            raise DataError(f"run name {r.name} is in datasets {names[r.name]} and "
                            f"{r.dataset_id}; fetch them into separate folders", out)

    particles, mapping, skipped, placeholder = _target_objects(root.config.pickable_objects,
                                                               czii)
    if not particles:
        raise DataError(f"dataset(s) {', '.join(map(str, ids))} have no particle objects")
    config = out / CONFIG_NAME
    if config.is_file():
        before = json.loads(config.read_text(encoding="utf-8")).get("pickable_objects", [])
        if sorted(o.get("name") for o in before) != sorted(p.name for p in particles):
            raise DataError("was fetched with other pickable objects; fetch these datasets "
                            "into another folder", out)
    staging = out / ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    defaults = {"tomo_type": stored_type, "voxel_spacing": round_spacing(voxel_spacing)}
    manifest["datasets"] = sorted(set(manifest["datasets"]) | set(ids))
    writer = create_project(config, staging, particles, name="CryoET Data Portal datasets "
                            + ", ".join(map(str, manifest["datasets"])),
                            description="fetched by cryobench data fetch-portal",
                            defaults=defaults, final_overlay_root=out / "overlay")
    _mark_weights(config, particles)
    (out / "overlay" / "ExperimentRuns").mkdir(parents=True, exist_ok=True)
    manifest["objects_map"] = {**manifest.get("objects_map", {}), **mapping}
    _write_manifest(out, manifest)
    summary = FetchSummary(config=config, skipped_objects=skipped,
                           placeholder_radii=placeholder)
    todo = [r for r in records if r.name not in manifest["runs"]]
    summary.already = sorted(r.name for r in records if r.name in manifest["runs"])
    bar = tqdm(todo, desc="fetching runs", unit="run", disable=not progress)
    for r in bar:
        bar.set_postfix_str(r.name)
        vs, tomo = _select_tomogram(r, voxel_spacing, tomo_type)
        frames, annotations = [], {}
        for portal_name, local in mapping.items():
            chosen = _ground_truth_picks(r, portal_name)
            xyz = _read_points(chosen, f"{r.name}/{portal_name}")
            annotations[local] = sorted(f"{p.user_id}/{p.session_id}" for p in chosen)
            frames.append(pd.DataFrame({"particle_type": [local] * len(xyz), "x": xyz[:, 0],
                                        "y": xyz[:, 1], "z": xyz[:, 2]}))
            summary.picks[local] = summary.picks.get(local, 0) + len(xyz)
        volume = _read_level0(tomo, r.name)
        writer.add_run(r.name, volume, float(vs.voxel_size), pd.concat(frames, ignore_index=True),
                       tomo_type=stored_type or str(tomo.tomo_type))
        final = out / "overlay" / "ExperimentRuns" / r.name
        shutil.rmtree(final, ignore_errors=True)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / "ExperimentRuns" / r.name, final)
        manifest["runs"][r.name] = {
            "dataset_id": r.dataset_id, "run_id": r.run_id,
            "voxel_spacing": float(vs.voxel_size), "portal_tomo_type": str(tomo.tomo_type),
            "shape": list(volume.shape), "annotations": annotations,
            "fetched": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        _write_manifest(out, manifest)
        summary.fetched.append(r.name)
    _write_manifest(out, manifest)
    shutil.rmtree(staging, ignore_errors=True)
    return summary


def _mark_weights(config: Path, particles: Sequence[ParticleType]) -> None:
    """Store each object's score weight as ``metadata.score_weight`` in the written config."""
    data = json.loads(config.read_text(encoding="utf-8"))
    weights = {p.name: p.weight for p in particles}
    for obj in data.get("pickable_objects", []):
        if obj.get("name") in weights:
            obj.setdefault("metadata", {})
            obj["metadata"] = {**(obj["metadata"] or {}), "score_weight": weights[obj["name"]]}
    atomic_write_text(config, json.dumps(data, indent=2) + "\n")
