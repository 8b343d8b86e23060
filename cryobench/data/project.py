"""copick access: the module that talks to copick and zarr (with, for the remote backends only,
:mod:`cryobench.data.portal` and :mod:`cryobench.data.croissant`).

A move to copick 2 (zarr 3) should touch only these files. Everything else in cryobench sees a
:class:`Project` (one copick config) and :class:`RunHandle` objects (one run at one tomogram type
and voxel spacing) that hand out float32 ``(z, y, x)`` arrays and picks DataFrames in Å.

Ground truth is stored as copick picks of user ``curation``, session ``0`` (the CZII convention);
predictions are written as user ``cryobench``, session ``<method name>`` with scores.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryobench.coords import (
    ROTATION_COLUMNS,
    is_rotation,
    rotation_to_transform,
    transform_to_rotation,
)
from cryobench.coords import with_rotations as with_rotation_columns
from cryobench.errors import DataError, InputError
from cryobench.io.atomic import atomic_write_text
from cryobench.io.jsonfile import read_json
from cryobench.io.names import safe_component
from cryobench.io.numbers import MAX_COORDINATE, check_voxel_spacing
from cryobench.io.picks import PICKS_COLUMNS, validate_picks, write_picks_csv
from cryobench.particles import CZII_PARTICLES, ParticleType

__all__ = [
    "GROUND_TRUTH_USER",
    "GROUND_TRUTH_SESSION",
    "PREDICTION_USER",
    "TOMOGRAM_CHUNKS",
    "Project",
    "RunHandle",
    "open_project",
    "create_project",
    "load_copick_picks",
    "load_copick_ground_truth",
    "write_czii_csv",
    "copick_name",
    "round_spacing",
]

GROUND_TRUTH_USER = "curation"
GROUND_TRUTH_SESSION = "0"
PREDICTION_USER = "cryobench"
TOMOGRAM_CHUNKS: tuple[int, int, int] = (64, 128, 128)
"""zarr chunk shape (z, y, x) of tomograms written by cryobench (random crops 4-7x faster than
copick's default 256³; see docs/data.md)."""

SPACING_TOLERANCE = 0.002
"""A requested voxel spacing matches the only one within this relative tolerance (0.2%)."""

PREFERRED_TOMO_TYPES: tuple[str, ...] = ("denoised", "wbp", "ctfdeconvolved", "isonetcorrected")
"""Order in which a tomogram type is chosen when a run has several and none is asked for."""

_EMPTY_PICKS_COLUMNS = list(PICKS_COLUMNS)

write_czii_csv = write_picks_csv
"""Write picks as a CZII submission CSV (``id, experiment, particle_type, x, y, z``), atomically."""


def round_spacing(spacing: float) -> float:
    """Voxel spacings are compared and stored rounded to 3 decimals (copick's directory names)."""
    return round(float(spacing), 3)


def copick_name(name: str) -> str:
    """A copick-safe object, user or session name: invalid characters (``_``...) -> ``-``.

    copick splits pick file names ``<user>_<session>_<object>.json`` on underscores, so a method
    name such as ``unet_per_particle`` is stored as session ``unet-per-particle``.
    """
    from copick.util.escape import sanitize_name

    try:
        clean = sanitize_name(str(name), suppress_warnings=True)
    except ValueError as exc:
        raise DataError(f"invalid copick name {name!r}: {exc}") from None
    return safe_component(clean, f"copick name {name!r} (as {clean!r})", error=DataError)


def _close(name: str, choices: Iterable[str]) -> str:
    matches = difflib.get_close_matches(name, list(choices), n=3, cutoff=0.5)
    return f" (did you mean {', '.join(matches)}?)" if matches else ""


def _short(items: Sequence[str], n: int = 8) -> str:
    items = list(items)
    more = f", ... ({len(items)} in all)" if len(items) > n else ""
    return ", ".join(items[:n]) + more


# --------------------------------------------------------------------------------------------
# Opening projects
# --------------------------------------------------------------------------------------------


def _read_config_json(path: Path) -> dict[str, Any]:
    data = read_json(path, "copick config", error=DataError)
    if not isinstance(data, dict):
        raise DataError("a copick config must be a JSON object", path)
    return data


# ----- config checks before copick sees the config (one-line errors, no slow network waits)

DEFAULT_KEYS: tuple[str, ...] = ("tomo_type", "voxel_spacing", "task")
"""Keys of the ``"cryobench"`` block of a copick config."""

def _cryobench_block(data: dict[str, Any], path: Path) -> dict[str, Any]:
    """The config's ``"cryobench"`` defaults, checked: an object with a safe ``tomo_type``,
    a positive finite ``voxel_spacing`` and a ``task`` (checked by :func:`project_task`), nothing
    else."""
    block = data.get("cryobench")
    if block is None:
        return {}
    if not isinstance(block, dict):
        raise DataError(f"the 'cryobench' block must be an object, not {type(block).__name__}",
                        path)
    unknown = sorted(set(block) - set(DEFAULT_KEYS))
    if unknown:
        raise DataError(f"unknown key(s) {', '.join(map(repr, unknown))} in the 'cryobench' "
                        f"block (known: {', '.join(DEFAULT_KEYS)})", path)
    tomo_type = block.get("tomo_type")
    if tomo_type is not None:
        safe_component(tomo_type, "cryobench.tomo_type", path, error=DataError)
    if not isinstance(block.get("task", ""), str):
        raise DataError(f"cryobench.task must be text, not {block['task']!r}", path)
    vs = block.get("voxel_spacing")
    if vs is not None and not (isinstance(vs, (int, float)) and not isinstance(vs, bool)
                               and math.isfinite(vs) and 0 < vs < 1e6):
        raise DataError(f"cryobench.voxel_spacing must be a positive number of Å, not {vs!r}",
                        path)
    return dict(block)


def _check_local_roots(data: dict[str, Any], path: Path) -> None:
    """The local roots a filesystem config reads runs from must exist (else every run would be
    "unknown"): the static root when there is one, else the overlay root. (An overlay beside a
    static root, or the overlay of a portal project, may not exist yet: copick creates it when
    something is written.)"""
    from cryobench.data.remote import url_host

    keys = ("static_root",) if data.get("static_root") is not None else ("overlay_root",)
    for key in keys:
        url = data.get(key)
        if url is None:
            continue
        if not isinstance(url, str) or not url:
            raise DataError(f"{key!r} must be a path or URL", path)
        if url_host(url) is not None:
            continue  # remote: checked by check_config_reachable
        if "://" in url and not url.startswith(("local://", "file://")):
            continue  # another fsspec protocol (memory://...): copick's business
        local = url.split("://", 1)[1] if "://" in url else url
        if not Path(local).expanduser().is_dir():
            raise DataError(f"{key.replace('_', ' ')} {local} not found", path)


def _check_s3_endpoints(data: dict[str, Any], path: Path) -> None:
    """An ``s3://`` root read through a custom endpoint (``*_fs_args.client_kwargs.endpoint_url``,
    MinIO and the like) must answer too; :func:`~cryobench.data.remote.config_hosts` probes
    only AWS's host."""
    from urllib.parse import urlsplit

    from cryobench.data.remote import require_reachable

    for key in ("overlay_root", "static_root"):
        url = data.get(key)
        args = data.get(key.replace("root", "fs_args"))
        if not (isinstance(url, str) and url.lower().startswith(("s3://", "s3a://"))
                and isinstance(args, dict)):
            continue
        client = args.get("client_kwargs")
        endpoint = args.get("endpoint_url") or (client.get("endpoint_url")
                                                if isinstance(client, dict) else None)
        if isinstance(endpoint, str) and endpoint:
            ep = urlsplit(endpoint)
            port = ep.port or (80 if ep.scheme == "http" else 443)
            require_reachable([(ep.hostname or "", port)], f"the {key.replace('_', ' ')} {url}",
                              path)


def open_project(config_path: str | os.PathLike[str]) -> Project:
    """Open a copick project from its config file (or a copick Croissant ``metadata.json``).

    A config whose data is remote (the CryoET Data Portal, ``s3://``, ``https://``...) is opened
    only after a bounded check that its hosts answer (:mod:`cryobench.data.remote`).

    Raises:
        DataError: naming the file when it is missing, not JSON, or not a valid copick config.
        DataUnavailableError: a remote host does not answer (within a few seconds).
    """
    path = Path(config_path).expanduser()
    from cryobench.data.croissant import normalise_config
    from cryobench.data.remote import check_config_reachable, quiet_logs

    data = normalise_config(_read_config_json(path), path)
    config_type = data.get("config_type", "filesystem")
    if config_type == "filesystem" and "overlay_root" not in data:
        raise DataError("not a copick config: no 'overlay_root'", path)
    if "pickable_objects" not in data and config_type != "mlcroissant":
        raise DataError("not a copick config: no 'pickable_objects'", path)
    defaults = _cryobench_block(data, path)
    check_config_reachable(data, path)
    _check_s3_endpoints(data, path)
    if config_type == "filesystem":
        _check_local_roots(data, path)
    try:
        with warnings.catch_warnings(), quiet_logs():
            warnings.simplefilter("ignore")
            if config_type == "filesystem":  # direct: avoids importing the portal client
                from copick.impl.filesystem import CopickConfigFSSpec, CopickRootFSSpec

                root = CopickRootFSSpec(CopickConfigFSSpec(**{**data, "config_type": config_type}))
            else:
                import copick

                root = copick.from_string(json.dumps({"config_type": config_type, **data}))
    except Exception as exc:  # pydantic ValidationError, ValueError, fsspec errors
        raise DataError(f"invalid copick config ({_first_problem(exc)})", path) from None
    return Project(path, root, defaults)


def _first_problem(exc: Exception) -> str:
    """One line for an exception; for a pydantic ValidationError, its first error with the
    location in the config (``pickable_objects.0.name: ...``)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            first = errors()[0]
            loc = ".".join(str(x) for x in first.get("loc", ()))
            msg = str(first.get("msg", "")).removeprefix("Value error, ")
            return f"{loc}: {msg}" if loc else msg
        except Exception:  # noqa: BLE001 - fall back to the text below
            pass
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _particles_from_objects(objects: Iterable[Any], source: Path,
                            raw: dict[str, dict[str, Any]] | None = None
                            ) -> tuple[ParticleType, ...]:
    czii = {p.name: p for p in CZII_PARTICLES}
    out = []
    for obj in objects:
        if not obj.is_particle:
            continue
        safe_component(obj.name, "pickable object name", source, error=DataError)
        if obj.radius is None or not (math.isfinite(obj.radius) and obj.radius > 0):
            raise DataError(f"pickable object {obj.name!r} has no positive radius", source)
        weight = object_weight(obj, (raw or {}).get(obj.name), source)
        if weight is None:
            weight = czii[obj.name].weight if obj.name in czii else 1.0
        color = tuple(int(c) for c in (obj.color or (128, 128, 128, 255)))
        # point group: metadata["symmetry"] or the entry's "symmetry" (as for the weight), else
        # the CZII catalogue's
        meta = getattr(obj, "metadata", None) or {}
        symmetry = meta.get("symmetry") if isinstance(meta, dict) else None
        if symmetry is None:
            symmetry = (raw or {}).get(obj.name, {}).get("symmetry")
        if symmetry is None:
            symmetry = czii[obj.name].symmetry if obj.name in czii else None
        try:
            label = obj.label if isinstance(obj.label, int) else int(obj.label)
            out.append(ParticleType(obj.name, label, float(obj.radius), weight, color,
                                    None if symmetry is None else str(symmetry).strip().upper()))
        except (ValueError, TypeError, OverflowError) as exc:
            raise DataError(str(exc), source) from None
    return tuple(out)


class Project:
    """One copick project (a config file). Create with :func:`open_project`."""

    def __init__(self, config_path: Path, root: Any, defaults: dict[str, Any] | None = None):
        self.config_path = Path(config_path)
        self.root = root
        """The underlying copick root (an implementation detail; prefer the methods here)."""
        self.defaults = dict(defaults or {})
        """cryobench defaults stored in the config under ``"cryobench"`` (tomo_type, ...)."""
        self._particles: tuple[ParticleType, ...] | None = None
        self._runs: list[str] | None = None

    def __repr__(self) -> str:
        return f"Project({str(self.config_path)!r}, runs={len(self.runs)})"

    @property
    def name(self) -> str:
        return str(self.root.config.name)

    @property
    def particles(self) -> tuple[ParticleType, ...]:
        """The particle catalogue from the config's pickable objects (``is_particle`` only)."""
        if self._particles is None:
            objs = self.root.config.pickable_objects
            self._particles = _particles_from_objects(objs, self.config_path,
                                                      _raw_object_entries(self.config_path))
        return self._particles

    @property
    def runs(self) -> list[str]:
        """Run names, sorted."""
        if self._runs is None:
            try:
                self._runs = sorted(r.name for r in self.root.runs)
            except Exception as exc:
                raise DataError(f"cannot list runs ({exc})", self.config_path) from None
        return list(self._runs)

    def refresh(self) -> None:
        """Forget cached listings (after another process wrote to the project)."""
        self.root.refresh()
        self._runs = None

    # ----- project facts for scoring (task, runs, pick inventory) -----------------------------
    @property
    def task(self) -> str:
        """``"motor"`` or ``"particles"``: the config's ``cryobench.task`` when set, else
        ``"motor"`` for a project whose only particle object is a flagellar motor."""
        return project_task(self)

    @property
    def metric(self) -> str:
        """The metric of the project's task: ``"byu"`` for a motor project, else ``"czii"``."""
        return "byu" if self.task == "motor" else "czii"

    def select_runs(self, runs: Iterable[str] | None) -> list[str]:
        """``runs`` checked against the project (order kept, repeats dropped); None: all runs.

        Raises:
            DataError: an unknown run, with close matches and the runs that exist.
        """
        return select_runs(self, runs)

    def pick_sessions(self, runs: Iterable[str] | None = None) -> pd.DataFrame:
        """Which users/sessions have picks: ``user, session, runs, files, picks`` (one row per
        pair, sorted; ``files`` counts pick files of particle objects, ``picks`` their points)."""
        return pick_sessions(self, runs)

    def require_picks(self, user: str, session: str | None = None,
                      runs: Iterable[str] | None = None) -> None:
        """Check that ``user`` (and ``session``) have picks files in ``runs``.

        Raises:
            DataError: none there; the message lists the users/sessions that do have picks
                (and close matches of the session asked for).
        """
        require_picks(self, user, session, runs)

    def _copick_run(self, name: str) -> Any:
        run = self.root.get_run(name)
        if run is None:
            raise DataError(f"unknown run {name!r}{_close(name, self.runs)}; "
                            f"runs: {_short(self.runs)}", self.config_path)
        return run

    def run(self, name: str, tomo_type: str | None = None,
            voxel_spacing: float | None = None) -> RunHandle:
        """A handle on one run at one tomogram type and voxel spacing.

        ``tomo_type`` / ``voxel_spacing`` default to the project's stored defaults, else to the only
        (or preferred: denoised, wbp, ...) one available in the run.

        Raises:
            DataError: unknown run, missing voxel spacing or tomogram type (naming what exists).
        """
        run = self._copick_run(name)
        tomo_type = tomo_type or self.defaults.get("tomo_type")
        if voxel_spacing is None:
            voxel_spacing = self.defaults.get("voxel_spacing")
        vs = _select_voxel_spacing(run, voxel_spacing)
        tomo = _select_tomogram(run, vs, tomo_type)
        return RunHandle(self, run, vs, tomo)

    def read_picks(self, runs: Iterable[str] | None = None, user: str = GROUND_TRUTH_USER,
                   session: str | None = None, with_score: bool = False,
                   with_rotations: bool = False) -> pd.DataFrame:
        """Picks of ``user`` (and ``session``) for all particle objects of the given runs.

        ``with_rotations``: also the orientation of each pick (the rotation block of its
        transform) in :data:`cryobench.coords.ROTATION_COLUMNS`, when some picks file holds
        one: a file whose transforms are all the identity (copick's default, what a tool that
        records no orientation writes) or with ``trust_orientation`` false gives NaN rows (no
        orientation); when no file holds one the columns are left out.
        """
        names = self.runs if runs is None else list(runs)
        frames = [_read_run_picks(self, self._copick_run(n), user, session, with_score,
                                  with_rotations) for n in names]
        if not frames:
            return _empty_picks(with_score)
        return _without_empty_rotations(pd.concat(frames, ignore_index=True))

    def write_picks(self, run_name: str, picks: pd.DataFrame, user: str = PREDICTION_USER,
                    session: str = "predictions") -> None:
        """Store predictions for one run as copick picks (one file per particle object).

        Rows whose ``experiment`` is not ``run_name`` are an error. Every particle object gets a
        file (empty when it has no picks), so a rewrite replaces an older session completely.
        Each file is written atomically; all input is validated before anything is written.
        ``user``/``session`` are made copick-safe (underscores -> dashes).
        """
        run = self._copick_run(run_name)
        particles = self.particles
        known = [p.name for p in particles]
        df = validate_picks(picks, f"picks for run {run_name}", known_types=known)
        other = sorted(set(df["experiment"]) - {run_name})
        if other:
            raise InputError(f"picks for run {run_name!r} contain rows of other experiments: "
                             f"{_short(other)}")
        user = copick_name(user)
        session = copick_name(session)
        scores = (df["score"].to_numpy(np.float64) if "score" in df.columns
                  else np.ones(len(df)))
        rot = _orientations_to_store(df, f"picks for run {run_name}")
        payloads = {}
        for p in particles:
            mask = (df["particle_type"] == p.name).to_numpy()
            xyz = df.loc[mask, ["x", "y", "z"]].to_numpy(np.float64)
            payloads[p.name] = _picks_payload(p.name, user, session, run_name, xyz, scores[mask],
                                              None if rot is None else rot[mask])
        for obj_name, payload in payloads.items():
            cp = run.new_picks(obj_name, session, user, exist_ok=True)
            _store_picks_atomic(cp, payload)
        run.refresh_picks()


# --------------------------------------------------------------------------------------------
# Runs
# --------------------------------------------------------------------------------------------


def _location(obj: Any) -> str:
    """Where a copick run / voxel spacing lives, for messages (static root if only there)."""
    overlay = getattr(obj, "overlay_path", None)
    static = getattr(obj, "static_path", None)
    try:
        if static and not obj.static_is_overlay and obj.fs_static.exists(static) and not (
                overlay and obj.fs_overlay.exists(overlay)):
            return str(static)
    except Exception:  # pragma: no cover - remote file systems
        pass
    return str(overlay or getattr(obj, "name", "?"))


def _select_voxel_spacing(run: Any, voxel_spacing: float | None) -> Any:
    spacings = sorted(run.voxel_spacings, key=lambda v: v.voxel_size)
    avail = [f"{v.voxel_size:g}" for v in spacings]
    where = _location(run)
    if voxel_spacing is None:
        if not spacings:
            raise DataError(f"run {run.name!r} has no tomograms (no voxel spacing)", where)
        if len(spacings) > 1:
            raise DataError(f"run {run.name!r} has several voxel spacings ({', '.join(avail)} Å); "
                            "choose one", where)
        return spacings[0]
    want = round_spacing(voxel_spacing)
    for v in spacings:
        if abs(v.voxel_size - want) < 1e-3:
            return v
    near = [v for v in spacings if abs(v.voxel_size - want) <= SPACING_TOLERANCE * want]
    if len(near) == 1:  # e.g. 10.012 Å (CryoET Data Portal) for the nominal 10 Å of Kaggle
        return near[0]
    raise DataError(f"run {run.name!r} has no voxel spacing {want:g} Å; available: "
                    f"{', '.join(avail) or 'none'}", where)


def _select_tomogram(run: Any, vs: Any, tomo_type: str | None) -> Any:
    tomos = list(vs.tomograms)
    types = sorted({t.tomo_type for t in tomos})
    where = _location(vs)
    if tomo_type is None:
        if not tomos:
            raise DataError(f"run {run.name!r} has no tomogram at {vs.voxel_size:g} Å", where)
        for pref in PREFERRED_TOMO_TYPES:
            if pref in types:
                tomo_type = pref
                break
        else:
            if len(types) > 1:
                raise DataError(f"run {run.name!r} has several tomogram types "
                                f"({', '.join(types)}); choose one", where)
            tomo_type = types[0]
    found = [t for t in tomos if t.tomo_type == tomo_type]
    if not found:
        raise DataError(f"run {run.name!r} has no tomogram type {tomo_type!r} at "
                        f"{vs.voxel_size:g} Å{_close(tomo_type, types)}; available: "
                        f"{', '.join(types) or 'none'}", where)
    return found[0]


def _tomogram_location(tomo: Any) -> str:
    if getattr(tomo, "read_only", False) and hasattr(tomo, "static_path"):
        return str(tomo.static_path)
    return str(getattr(tomo, "overlay_path", tomo.tomo_type))


# --------------------------------------------------------------------------------------------
# Tomogram store checks (zarr reads a missing or unreadable chunk as zeros, silently)
# --------------------------------------------------------------------------------------------

_NUMERIC_KINDS = "iuf"
"""numpy dtype kinds a tomogram may have (integers, unsigned integers, floats)."""


def _open_level(group: Any, level: int, where: str) -> Any:
    """Pyramid level ``level`` of an open zarr group, with one-line errors for a missing level,
    unreadable metadata (``.zarray`` not JSON...), a non-3-D or a non-numeric array."""
    key = str(int(level))
    try:
        levels = sorted(k for k in group.array_keys() if k.isdigit())
    except Exception as exc:
        raise DataError(f"cannot list the pyramid levels ({type(exc).__name__}: {exc})",
                        where) from None
    if key not in levels:
        raise DataError(f"tomogram has no pyramid level {level} (levels: "
                        f"{', '.join(levels) or 'none'})", where)
    try:
        arr = group[key]
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise DataError(f"cannot read the metadata of pyramid level {level} (.zarray: "
                        f"{type(exc).__name__}{': ' + first if first else ''})",
                        f"{where}/{key}") from None
    if len(arr.shape) != 3:
        raise DataError(f"pyramid level {level} is not 3-D (shape {arr.shape})", where)
    if np.dtype(arr.dtype).kind not in _NUMERIC_KINDS:
        raise DataError(f"pyramid level {level} has dtype {np.dtype(arr.dtype).str}; a tomogram "
                        "must hold integers or floats", f"{where}/{key}")
    return arr


def _local_array_dir(arr: Any) -> Path | None:
    """The directory of a zarr array on a local file system (None for remote stores)."""
    store = arr.store
    fs = getattr(store, "fs", None)
    if fs is not None:
        protocol = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
        if not {"file", "local"} & set(protocol):
            return None
    root = getattr(store, "path", None) or getattr(store, "dir_path", lambda: None)()
    if root is None:
        return None
    return Path(str(root)) / arr.path


def _chunk_separator(arr: Any) -> str:
    """The separator of the chunk keys zarr will actually read: an ``FSStore`` with a
    ``key_separator`` (copick's: ``/``) rewrites every key to it, whatever ``.zarray`` says."""
    sep = getattr(arr.store, "key_separator", None)
    return sep or getattr(arr, "_dimension_separator", None) or "."


def _scan_chunks(directory: str, ndim: int) -> tuple[dict[str, list[str]],
                                                    list[tuple[str, str]]]:
    """Chunk-like entries under an array directory: keys written with ``/`` (nested folders
    of numbers) and with ``.`` (``0.0.0`` files), and problems with the entries' kinds
    (``(key, problem)``). Uses ``os.scandir`` (no stat for plain files)."""
    found: dict[str, list[str]] = {"/": [], ".": []}
    kinds: dict[str, str] = {}

    def visit(path: str, prefix: str, depth: int) -> None:
        with os.scandir(path) as it:
            for entry in it:
                name = entry.name
                if name.startswith("."):
                    continue
                if depth == 0 and name.count(".") == ndim - 1 and \
                        name.replace(".", "").isdigit() and ndim > 1:
                    found["."].append(name)
                    kinds[name] = _entry_kind(entry)
                    continue
                if not name.isdigit():
                    continue
                key = prefix + name
                if depth == ndim - 1:
                    found["/"].append(key)
                    kinds[key] = _entry_kind(entry)
                elif entry.is_dir(follow_symlinks=False):
                    visit(entry.path, key + "/", depth + 1)

    visit(directory, "", 0)
    return found, [(k, v) for k, v in kinds.items() if v]


def _entry_kind(entry: os.DirEntry) -> str:
    """'' for a readable chunk file, else what is wrong with the entry."""
    if entry.is_dir(follow_symlinks=False):
        return "is a directory, not a chunk file"
    if not entry.is_file():
        return "is not a readable file (a dangling link?)"
    if not os.access(entry.path, os.R_OK):
        return "cannot be read (permissions)"
    return ""


def _check_level(arr: Any, level: int, where: str) -> None:
    """Refuse a local zarr array that would silently read as zeros: no chunk at all, chunk
    keys with the other separator, or a chunk that is a directory or cannot be read.

    Missing chunks in an otherwise complete array are allowed (zarr stores a chunk that holds
    only the fill value as no file); the integrity listings of generated data
    (:mod:`cryobench.data.integrity`) catch a deleted chunk there.
    """
    import math

    directory = _local_array_dir(arr)
    if directory is None or not directory.is_dir():
        return
    ndim = len(arr.shape)
    grid = [math.ceil(s / c) if c else 0 for s, c in zip(arr.shape, arr.chunks, strict=True)]
    if math.prod(grid) == 0:
        return
    sep = _chunk_separator(arr)
    other = "." if sep == "/" else "/"
    found, problems = _scan_chunks(str(directory), ndim)
    bad = sorted((k, v) for k, v in problems if k in set(found[sep]))
    if bad:
        rel, problem = bad[0]
        more = f" ({len(bad)} such chunks)" if len(bad) > 1 else ""
        raise DataError(f"chunk {rel} of pyramid level {level} {problem}{more}; it would read "
                        "as zeros", f"{where}/{arr.path}")
    if found[other]:
        example = sorted(found[other])[0]
        raise DataError(f"pyramid level {level} has chunk keys separated by {other!r} (e.g. "
                        f"{example}) but is read with {sep!r}-separated keys: every such chunk "
                        f"would read as zeros (rewrite the store with dimension_separator "
                        f"{sep!r})", f"{where}/{arr.path}")
    if not found[sep]:
        raise DataError(f"pyramid level {level} has no chunk files (the {'x'.join(map(str, grid))}"
                        " chunk grid is empty): it would read as zeros", f"{where}/{arr.path}")


class RunHandle:
    """One run at one tomogram type and voxel spacing; satisfies :class:`cryobench.methods.RunLike`.

    Attributes:
        name: run name (``experiment`` in picks).
        voxel_spacing: Å per voxel of level 0.
        particles: the project's particle catalogue.
        tomo_type: copick tomogram type, e.g. ``denoised``.
        shape: ``(z, y, x)`` of level 0.
        project: the :class:`Project` it belongs to.
    """

    def __init__(self, project: Project, run: Any, vs: Any, tomo: Any) -> None:
        self.project = project
        self._run = run
        self._vs = vs
        self._tomo = tomo
        self._group: Any = None
        self._checked_levels: set[int] = set()
        self.name: str = str(run.name)
        self.voxel_spacing: float = float(vs.voxel_size)
        self.particles: tuple[ParticleType, ...] = project.particles
        self.tomo_type: str = str(tomo.tomo_type)
        self.shape: tuple[int, int, int] = self.level_shape(0)

    def __repr__(self) -> str:
        return (f"RunHandle(name={self.name!r}, tomo_type={self.tomo_type!r}, "
                f"voxel_spacing={self.voxel_spacing:g}, shape={self.shape})")

    @property
    def location(self) -> str:
        """Path (or URL) of the tomogram's zarr store, for messages."""
        return _tomogram_location(self._tomo)

    def _open_group(self) -> Any:
        if self._group is None:
            import zarr

            try:
                self._group = zarr.open_group(self._tomo.zarr(), mode="r")
            except Exception as exc:
                raise DataError(f"cannot open tomogram zarr ({type(exc).__name__}: {exc})",
                                self.location) from None
        return self._group

    @property
    def levels(self) -> int:
        """Number of pyramid levels (level ``k`` has voxel spacing ``spacing * 2**k``)."""
        group = self._open_group()
        return len([k for k in group.array_keys() if k.isdigit()])

    def _array(self, level: int) -> Any:
        group = self._open_group()
        arr = _open_level(group, int(level), self.location)
        if level not in self._checked_levels:
            _check_level(arr, int(level), self.location)
            self._checked_levels.add(level)
        return arr

    def level_shape(self, level: int = 0) -> tuple[int, int, int]:
        """``(z, y, x)`` shape of a pyramid level."""
        return tuple(int(s) for s in self._array(level).shape)  # type: ignore[return-value]

    def tomogram(self, level: int = 0, crop: tuple[slice, slice, slice] | None = None
                 ) -> np.ndarray:
        """The tomogram as float32 ``(z, y, x)``: whole, or a crop (slices in that level's voxels).

        Raises:
            DataError: missing level or unreadable / corrupt zarr data (naming the store).
        """
        arr = self._array(level)
        index = (slice(None),) * 3 if crop is None else tuple(crop)
        if len(index) != 3:
            raise ValueError(f"crop must be three slices (z, y, x), got {len(index)}")
        try:
            out = arr[index]
        except Exception as exc:
            raise DataError(f"corrupt or unreadable tomogram data at level {level} "
                            f"({type(exc).__name__}: {exc})", self.location) from None
        return np.ascontiguousarray(out, dtype=np.float32)

    def picks(self, user: str = GROUND_TRUTH_USER, session: str | None = None,
              with_score: bool = False, with_rotations: bool = True) -> pd.DataFrame:
        """Picks of ``user`` (default ground truth) for all particle objects, in Å, with their
        orientations (``rot_*`` columns) when the picks files record them (see
        :meth:`Project.read_picks`; template_match aligns its averages with them)."""
        return _without_empty_rotations(
            _read_run_picks(self.project, self._run, user, session, with_score, with_rotations))


# --------------------------------------------------------------------------------------------
# Picks
# --------------------------------------------------------------------------------------------


def _without_empty_rotations(picks: pd.DataFrame) -> pd.DataFrame:
    """``picks`` without its rot_* columns when no row has an orientation (float64 otherwise)."""
    cols = list(ROTATION_COLUMNS)
    if cols[0] not in picks.columns:
        return picks
    if picks[cols[0]].isna().all():
        return picks.drop(columns=cols)
    picks[cols] = picks[cols].astype(np.float64)
    return picks


def _file_rotations(cp: Any) -> np.ndarray | None:
    """The ``(N, 3, 3)`` orientations of a loaded picks file, or None when it records none
    (``trust_orientation`` false, or every transform's rotation the identity)."""
    if getattr(cp.meta, "trust_orientation", True) is False:
        return None
    _, transforms = cp.numpy()
    rot = transform_to_rotation(transforms)
    if len(rot) == 0 or np.allclose(rot, np.eye(3), atol=1e-9):
        return None
    bad = ~is_rotation(rot, atol=1e-3)
    if bad.any():
        raise DataError(f"the transform of point {int(np.flatnonzero(bad)[0])} is not a "
                        "rotation and a shift", _picks_file_path(cp))
    return rot


def _empty_picks(with_score: bool) -> pd.DataFrame:
    cols: dict[str, Any] = {"experiment": pd.Series([], dtype=object),
                            "particle_type": pd.Series([], dtype=object),
                            "x": pd.Series([], dtype=np.float64),
                            "y": pd.Series([], dtype=np.float64),
                            "z": pd.Series([], dtype=np.float64)}
    if with_score:
        cols["score"] = pd.Series([], dtype=np.float64)
    return pd.DataFrame(cols)


def _picks_file_path(cp: Any) -> str:
    return str(getattr(cp, "path", f"{cp.user_id}_{cp.session_id}_{cp.pickable_object_name}"))


def _read_run_picks(project: Project, run: Any, user: str, session: str | None,
                    with_score: bool, with_rotations: bool = False) -> pd.DataFrame:
    names = {p.name for p in project.particles}
    try:
        found = run.get_picks(user_id=user, session_id=session)
    except Exception as exc:
        raise DataError(f"cannot list picks of run {run.name!r} ({exc})",
                        _location(run)) from None
    found = [cp for cp in found if cp.pickable_object_name in names]
    if session is None:
        by_object: dict[str, set[str]] = {}
        for cp in found:
            by_object.setdefault(cp.pickable_object_name, set()).add(cp.session_id)
        multi = {o: s for o, s in by_object.items() if len(s) > 1}
        if multi:
            obj, sessions = sorted(multi.items())[0]
            raise DataError(f"run {run.name!r} has {obj!r} picks of user {user!r} in several "
                            f"sessions ({', '.join(sorted(sessions))}); choose one",
                            project.config_path)
    frames = []
    for cp in sorted(found, key=lambda c: c.pickable_object_name):
        try:
            cp.load()
            xyz = np.asarray(cp.full_positions(), dtype=np.float64).reshape(-1, 3)
            scores = cp.scores()
        except Exception as exc:
            raise DataError(f"invalid picks file ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''})",
                            _picks_file_path(cp)) from None
        if len(xyz) == 0:
            continue
        bad = ~np.isfinite(xyz).all(axis=1) | (np.abs(xyz) > MAX_COORDINATE).any(axis=1)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"point {i} has location {tuple(xyz[i].tolist())}: every coordinate "
                            f"must be a finite number of at most {MAX_COORDINATE:g} Å "
                            f"({int(bad.sum())} such point(s))", _picks_file_path(cp))
        rot = _file_rotations(cp) if with_rotations else None
        df = pd.DataFrame({"experiment": pd.Series([run.name] * len(xyz), dtype=object),
                           "particle_type": pd.Series([cp.pickable_object_name] * len(xyz),
                                                      dtype=object),
                           "x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2]})
        if with_score:
            df["score"] = np.asarray(scores, dtype=np.float64)
            if not np.isfinite(df["score"]).all():
                raise DataError("a point has a score that is not a finite number",
                                _picks_file_path(cp))
        if with_rotations:
            df = with_rotation_columns(df, np.full((len(df), 3, 3), np.nan) if rot is None
                                       else rot)
        frames.append(df)
    if not frames:
        return _empty_picks(with_score)
    return pd.concat(frames, ignore_index=True)


def _orientations_to_store(df: pd.DataFrame, source: str) -> np.ndarray | None:
    """The ``(N, 3, 3)`` orientations of picks to store as copick transforms (a row without
    one, all NaN, is stored as the identity), or None when the table has no rot_* columns."""
    from cryobench.coords import has_rotations, picks_rotations

    if not any(c in df.columns for c in ROTATION_COLUMNS):
        return None
    if not has_rotations(df):
        missing = [c for c in ROTATION_COLUMNS if c not in df.columns]
        raise InputError(f"orientation columns incomplete (missing {', '.join(missing)})", source)
    try:
        rot = picks_rotations(df)
    except (TypeError, ValueError):
        raise InputError("orientation columns rot_* must be numeric", source) from None
    missing = np.isnan(rot).all(axis=(1, 2))
    rot = np.where(missing[:, None, None], np.eye(3), rot)
    bad = ~is_rotation(rot, atol=1e-3)
    if bad.any():
        raise InputError(f"rot_* of data row {int(np.flatnonzero(bad)[0]) + 1} is not a "
                         "rotation matrix (orthonormal, determinant +1)", source)
    return rot


def _picks_payload(obj: str, user: str, session: str, run_name: str, xyz: np.ndarray,
                   scores: np.ndarray, rotations: np.ndarray | None = None) -> dict[str, Any]:
    from copick.models import CopickLocation, CopickPicksFile, CopickPoint

    def point(k: int) -> CopickPoint:
        p = xyz[k]
        extra = {} if rotations is None else {
            "transformation_": rotation_to_transform(rotations[k])[0].tolist()}
        return CopickPoint(location=CopickLocation(x=float(p[0]), y=float(p[1]), z=float(p[2])),
                           score=float(scores[k]), **extra)

    points = [point(k) for k in range(len(xyz))]
    meta = CopickPicksFile(pickable_object_name=obj, user_id=user, session_id=session,
                           run_name=run_name, points=points)
    return meta.model_dump()


def _store_picks_atomic(cp: Any, payload: dict[str, Any]) -> None:
    """Write one picks file atomically on a local file system; through copick otherwise."""
    from copick.models import CopickPicksFile

    fs = getattr(cp, "fs", None)
    protocol = getattr(fs, "protocol", ())
    protocol = (protocol,) if isinstance(protocol, str) else tuple(protocol)
    if "file" in protocol or "local" in protocol:
        atomic_write_text(cp.path, json.dumps(payload, indent=1))
        cp.meta = CopickPicksFile(**payload)
    else:  # remote overlay: copick's own store (not atomic)
        cp.meta = CopickPicksFile(**payload)
        cp.store()


# --------------------------------------------------------------------------------------------
# Writing projects (used by synth and the importers)
# --------------------------------------------------------------------------------------------


def _pickable_object(p: ParticleType) -> Any:
    from copick.models import PickableObject

    color = tuple(int(c) for c in p.color) + (255,) * (4 - len(p.color))
    return PickableObject(name=p.name, is_particle=True, label=int(p.label),
                          radius=float(p.radius), color=color[:4])


def create_project(config_path: str | os.PathLike[str], overlay_root: str | os.PathLike[str],
                   particles: Sequence[ParticleType], *, name: str = "cryobench project",
                   description: str = "", static_root: str | os.PathLike[str] | None = None,
                   defaults: dict[str, Any] | None = None,
                   final_overlay_root: str | os.PathLike[str] | None = None,
                   final_static_root: str | os.PathLike[str] | None = None) -> ProjectWriter:
    """Write a filesystem copick config (atomically) and return a writer for runs.

    ``final_*_root``: the roots written into the config when data is being written to a temporary
    directory that is renamed into place afterwards (the writer uses ``overlay_root``).
    """
    import copick
    from copick.impl.filesystem import CopickConfigFSSpec, CopickRootFSSpec

    def url(p: str | os.PathLike[str]) -> str:
        return "local://" + str(Path(p).expanduser().resolve())

    base: dict[str, Any] = {
        "config_type": "filesystem",
        "name": name,
        "description": description,
        "version": copick.__version__,
        "pickable_objects": [_pickable_object(p).model_dump() for p in particles],
        "overlay_fs_args": {"auto_mkdir": True},
    }
    work = dict(base, overlay_root=url(overlay_root))
    final = dict(base, overlay_root=url(final_overlay_root or overlay_root))
    if static_root is not None:
        work["static_root"] = url(static_root)
        final["static_root"] = url(final_static_root or static_root)
    if defaults:
        final["cryobench"] = dict(defaults)
    Path(overlay_root).mkdir(parents=True, exist_ok=True)
    atomic_write_text(config_path, json.dumps(final, indent=2) + "\n")
    root = CopickRootFSSpec(CopickConfigFSSpec(**work))
    return ProjectWriter(Path(config_path), root)


class ProjectWriter:
    """Adds runs, tomograms and ground-truth picks to a new project (see :func:`create_project`)."""

    def __init__(self, config_path: Path, root: Any) -> None:
        self.config_path = config_path
        self.root = root

    def add_run(self, run_name: str, volume: np.ndarray | None, voxel_spacing: float,
                picks: pd.DataFrame | None = None, *, tomo_type: str = "denoised",
                levels: int = 3, dtype: Any = np.float32,
                chunks: tuple[int, int, int] = TOMOGRAM_CHUNKS) -> None:
        """Write one run: the tomogram (with a ``levels``-level pyramid) and ground-truth picks.

        ``volume`` None writes no tomogram (for runs whose tomogram lives in the static root).
        ``picks``: ``particle_type, x, y, z`` in Å (an ``experiment`` column is ignored); objects
        of the project without picks get an empty ground-truth file.
        """
        safe_component(run_name, "run name", self.config_path, error=DataError)
        check_voxel_spacing(voxel_spacing, self.config_path, f" (run {run_name!r})",
                            error=DataError)
        if volume is not None:
            self.add_tomogram(run_name, volume, voxel_spacing, tomo_type=tomo_type,
                              levels=levels, dtype=dtype, chunks=chunks)
        else:
            self.root.new_run(run_name, exist_ok=True)
        self.add_picks(run_name, picks)

    def add_tomogram(self, run_name: str, volume: np.ndarray, voxel_spacing: float, *,
                     tomo_type: str = "denoised", levels: int = 3, dtype: Any = np.float32,
                     chunks: tuple[int, int, int] = TOMOGRAM_CHUNKS) -> None:
        """Write (or overwrite) one tomogram of a run, with a ``levels``-level pyramid stored
        as ``dtype`` (``RunHandle.tomogram`` always returns float32)."""
        from copick.util.ome import volume_pyramid, write_ome_zarr_3d

        safe_component(run_name, "run name", self.config_path, error=DataError)
        check_voxel_spacing(voxel_spacing, self.config_path, f" (run {run_name!r})",
                            error=DataError)
        run = self.root.new_run(run_name, exist_ok=True)
        vs = run.new_voxel_spacing(round_spacing(voxel_spacing), exist_ok=True)
        tomo = vs.new_tomogram(copick_name(tomo_type), exist_ok=True)
        pyramid = volume_pyramid(np.asarray(volume), round_spacing(voxel_spacing), levels,
                                 dtype=dtype)
        write_ome_zarr_3d(tomo.zarr(), pyramid, chunk_size=tuple(chunks))

    def add_picks(self, run_name: str, picks: pd.DataFrame | None,
                  user: str = GROUND_TRUTH_USER, session: str = GROUND_TRUTH_SESSION) -> None:
        """Write picks (Å) for every pickable particle object of the project."""
        safe_component(run_name, "run name", self.config_path, error=DataError)
        run = self.root.new_run(run_name, exist_ok=True)
        names = [o.name for o in self.root.config.pickable_objects if o.is_particle]
        if picks is None:
            picks = pd.DataFrame(columns=["particle_type", "x", "y", "z"])
        unknown = sorted(set(picks["particle_type"].astype(str)) - set(names))
        if unknown:
            raise DataError(f"picks of run {run_name!r} have unknown particle type(s) "
                            f"{', '.join(unknown)}; objects: {', '.join(names)}",
                            self.config_path)
        for obj in names:
            sel = picks[picks["particle_type"].astype(str) == obj]
            xyz = sel[["x", "y", "z"]].to_numpy(np.float64).reshape(-1, 3)
            sc = (sel["score"].to_numpy(np.float64) if "score" in sel.columns
                  else np.ones(len(sel)))
            payload = _picks_payload(obj, user, session, run_name, xyz, sc,
                                     _orientations_to_store(sel, str(self.config_path)))
            cp = run.new_picks(obj, session, user, exist_ok=True)
            _store_picks_atomic(cp, payload)


# --------------------------------------------------------------------------------------------
# Loaders for scoring (``cryobench score --copick``)
# --------------------------------------------------------------------------------------------


def load_copick_picks(config: str | os.PathLike[str], user: str = PREDICTION_USER,
                      session: str | None = None, runs: Iterable[str] | None = None
                      ) -> pd.DataFrame:
    """Predicted picks stored in a copick project (with ``score``), as one picks DataFrame."""
    project = open_project(config)
    return project.read_picks(runs, user=copick_name(user),
                              session=None if session is None else copick_name(session),
                              with_score=True)


def load_copick_ground_truth(config: str | os.PathLike[str], runs: Iterable[str] | None = None,
                             user: str = GROUND_TRUTH_USER,
                             session: str = GROUND_TRUTH_SESSION) -> pd.DataFrame:
    """Ground-truth picks (user ``curation``, session ``0``) of a copick project."""
    project = open_project(config)
    return project.read_picks(runs, user=user, session=session)


# --------------------------------------------------------------------------------------------
# Project facts for scoring: score weights, task, run selection, pick inventory
# --------------------------------------------------------------------------------------------

WEIGHT_KEYS: tuple[str, ...] = ("score_weight", "weight")
"""Keys read, in this order, for a pickable object's score weight: first in the object's
``metadata``, then at the top level of the object's entry in the config JSON."""

TASKS: tuple[str, ...] = ("particles", "motor")
MOTOR_OBJECT_NAMES: frozenset[str] = frozenset({"flagellar-motor"})
"""A project whose only particle object has one of these names is a motor project (BYU rule)."""


def _raw_object_entries(config_path: Path) -> dict[str, dict[str, Any]]:
    """The config file's pickable-object entries by name, as written (copick's model drops
    unknown top-level keys such as ``score_weight``); empty when there is no such file."""
    try:
        data = json.loads(Path(config_path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    objs = data.get("pickable_objects") if isinstance(data, dict) else None
    if not isinstance(objs, list):
        return {}
    return {str(o["name"]): o for o in objs if isinstance(o, dict) and "name" in o}


def object_weight(obj: Any, raw: dict[str, Any] | None = None,
                  source: str | os.PathLike[str] | None = None) -> float | None:
    """The score weight a pickable object declares, or None when it declares none.

    Looked up as ``metadata["score_weight"]``, ``metadata["weight"]``, then the same keys at the
    top level of the object's config entry ``raw``; the first one present wins.

    Raises:
        DataError: a declared weight that is not a finite number >= 0.
    """
    import math

    meta = getattr(obj, "metadata", None) or {}
    found = [(f"metadata.{k}", meta.get(k)) for k in WEIGHT_KEYS]
    found += [(k, (raw or {}).get(k)) for k in WEIGHT_KEYS]
    for where, value in found:
        if value is None:
            continue
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok or not math.isfinite(float(value)) or float(value) < 0:
            raise DataError(f"pickable object {obj.name!r}: {where} must be a number >= 0, "
                            f"got {value!r}", source)
        return float(value)
    return None


def project_task(project: Project) -> str:
    """See :attr:`Project.task`."""
    task = project.defaults.get("task")
    if task is not None:
        if task not in TASKS:
            raise DataError(f"config key cryobench.task must be one of {', '.join(TASKS)}, "
                            f"got {task!r}", project.config_path)
        return str(task)
    names = [p.name for p in project.particles]
    return "motor" if len(names) == 1 and names[0] in MOTOR_OBJECT_NAMES else "particles"


def select_runs(project: Project, runs: Iterable[str] | None) -> list[str]:
    """See :meth:`Project.select_runs`."""
    if runs is None:
        return project.runs
    have = set(project.runs)
    out: list[str] = []
    unknown: list[str] = []
    for name in (str(r) for r in runs):
        if name not in have:
            unknown.append(name)
        elif name not in out:
            out.append(name)
    if unknown:
        raise DataError(f"unknown run(s) {', '.join(repr(u) for u in unknown)}"
                        f"{_close(unknown[0], project.runs)}; runs: {_short(project.runs)}",
                        project.config_path)
    return out


def _particle_picks(project: Project, run_name: str, user: str | None = None,
                    session: str | None = None) -> list[Any]:
    names = {p.name for p in project.particles}
    run = project._copick_run(run_name)
    try:
        found = run.get_picks(user_id=user, session_id=session)
    except Exception as exc:
        raise DataError(f"cannot list picks of run {run_name!r} ({exc})",
                        _location(run)) from None
    return [cp for cp in found if cp.pickable_object_name in names]


def pick_sessions(project: Project, runs: Iterable[str] | None = None) -> pd.DataFrame:
    """See :meth:`Project.pick_sessions`."""
    stats: dict[tuple[str, str], list[Any]] = {}
    for name in select_runs(project, runs):
        for cp in _particle_picks(project, name):
            entry = stats.setdefault((str(cp.user_id), str(cp.session_id)), [set(), 0, 0])
            entry[0].add(name)
            entry[1] += 1
            try:
                entry[2] += len(cp.points or [])
            except Exception as exc:
                raise DataError(f"invalid picks file ({type(exc).__name__})",
                                _picks_file_path(cp)) from None
    rows = [(u, s, len(v[0]), v[1], v[2]) for (u, s), v in sorted(stats.items())]
    return pd.DataFrame(rows, columns=["user", "session", "runs", "files", "picks"])


def require_picks(project: Project, user: str, session: str | None = None,
                  runs: Iterable[str] | None = None) -> None:
    """See :meth:`Project.require_picks`."""
    user_c = copick_name(user)
    session_c = None if session is None else copick_name(session)
    names = select_runs(project, runs)
    if any(_particle_picks(project, n, user_c, session_c) for n in names):
        return
    inv = pick_sessions(project, names)
    who = f"user {user_c!r}" + (f", session {session_c!r}" if session_c is not None else "")
    where = "" if runs is None else f" in the {len(names)} selected run(s)"
    if inv.empty:
        raise DataError(f"no picks of {who}{where}: the project has no picks there",
                        project.config_path)
    if session_c is not None and user_c in set(inv["user"]):
        own = sorted(inv.loc[inv["user"] == user_c, "session"])
        close = [s for s in own if s.startswith(session_c)] or difflib.get_close_matches(
            session_c, own, n=3, cutoff=0.5)
        hint = f" (did you mean session {', '.join(close)}?)" if close else ""
    else:
        hint = _close(user_c, sorted(set(inv["user"])))
    pairs = [f"{r.user}/{r.session} ({r.runs} run{'s' * (r.runs != 1)}, {r.picks} picks)"
             for r in inv.itertuples()]
    raise DataError(f"no picks of {who}{where}{hint}; users/sessions with picks: "
                    f"{_short(pairs)}", project.config_path)
