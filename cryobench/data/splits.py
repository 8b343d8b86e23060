"""Named splits: which runs train, validate and test a method, on which data.

A split definition is data: a JSON file in ``cryobench/splits/`` (or any ``*.json`` path given to
:func:`load_split`) with the keys

``name, description, task ("particles"|"motor"), metric ("czii"|"byu"), source, tomo_type,
voxel_spacing (Å or null), train, val, test (run names), folds (list of {train, val, test} or
null)`` and, for imported data with too many runs to list, ``assign`` (a salted-hash rule).

``source`` is ``{"kind": "import", "importer": "czii"|"byu", "env": VAR}`` (real data the user
imports; located by ``data_dir`` or the environment variable), ``{"kind": "synth", "preset",
"seed", "snr", "run_options"}`` (generated on first use into the cache and reused afterwards),
``{"kind": "copick", "config": PATH}`` (a user's own copick project or Croissant manifest, as
``cryobench data init-split`` writes; a relative PATH is relative to the split file) or
``{"kind": "portal", "datasets": [ID, ...], "env": VAR}`` (a project fetched from the CryoET Data
Portal with ``cryobench data fetch-portal``).

Optional keys: ``parts`` (``{name: [runs]}``, further disjoint groups of runs such as an
alternative test set; ``load_split("NAME/PART")`` tests on one) and ``by_dataset``
(``{role or part: [portal dataset ids]}``: a portal split's roles are the fetched runs of those
datasets, less the runs listed by name in another role).

A split's :attr:`Split.fingerprint` (sha256 over the definition and the data fingerprint) goes
into every run record.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import hashlib
import json
import math
import os
import re
import warnings
from collections.abc import Iterable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryobench.coords import picks_to_voxels
from cryobench.data.cache import cache_dir
from cryobench.data.project import (
    GROUND_TRUTH_SESSION,
    GROUND_TRUTH_USER,
    Project,
    RunHandle,
    open_project,
)
from cryobench.data.synth import CONFIG_NAME, MANIFEST_NAME
from cryobench.errors import ConfigError, DataError, DataUnavailableError
from cryobench.io.names import safe_component
from cryobench.particles import ParticleType

__all__ = [
    "ROLES",
    "SOURCE_KINDS",
    "Split",
    "check_split_name",
    "list_splits",
    "load_split",
    "split_part_runs",
    "split_definition",
    "data_fingerprint",
    "BYU_SOLUTION_COLUMNS",
    "byu_solution",
]

ROLES: tuple[str, ...] = ("train", "val", "test")
SOURCE_KINDS: tuple[str, ...] = ("import", "synth", "copick", "portal")
BYU_SOLUTION_COLUMNS: tuple[str, ...] = ("tomo_id", "Motor axis 0", "Motor axis 1",
                                         "Motor axis 2", "Voxel spacing", "Has motor")
_REQUIRED = ("name", "task", "metric", "source", "train", "val", "test")

_HOW_TO_GET = {
    "czii": (
        "the real CZII training data is not available{where}. Download the Kaggle competition "
        "'czii-cryo-et-object-identification' (or build it from the CryoET Data Portal, dataset "
        "10440; see docs/data.md), run `cryobench data import-czii <kaggle>/train --out DIR`, "
        "then pass --data DIR or set CRYOBENCH_CZII=DIR. The synthetic split `czii-synth` runs "
        "offline."
    ),
    "byu": (
        "the real BYU motor data is not available{where}. Download the Kaggle competition "
        "'byu-locating-bacterial-flagellar-motors-2025', run `cryobench data import-byu "
        "<kaggle dir> --out DIR`, then pass --data DIR or set CRYOBENCH_BYU=DIR. The synthetic "
        "split `byu-synth` runs offline."
    ),
}


# --------------------------------------------------------------------------------------------
# Definitions
# --------------------------------------------------------------------------------------------


def _builtin_dir() -> Any:
    return resources.files("cryobench").joinpath("splits")


def list_splits() -> list[str]:
    """Names of the built-in splits, sorted."""
    return sorted(p.name[:-5] for p in _builtin_dir().iterdir() if p.name.endswith(".json"))


def _validate_definition(d: Any, source: str) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise ConfigError("a split definition must be a JSON object", source)
    missing = [k for k in _REQUIRED if k not in d]
    if missing:
        raise ConfigError(f"split definition lacks {', '.join(missing)}", source)
    if d["task"] not in ("particles", "motor"):
        raise ConfigError(f"unknown task {d['task']!r} (particles or motor)", source)
    if d["metric"] not in ("czii", "byu"):
        raise ConfigError(f"unknown metric {d['metric']!r} (czii or byu)", source)
    kind = d["source"].get("kind") if isinstance(d["source"], dict) else None
    if kind not in SOURCE_KINDS:
        raise ConfigError(f"source.kind must be one of {', '.join(SOURCE_KINDS)}", source)
    if kind == "copick" and not isinstance(d["source"].get("config"), str):
        raise ConfigError("a copick source needs 'config' (the path of a copick config)", source)
    safe_component(d["name"], "split name", source, error=ConfigError)
    for role in ROLES:
        runs = d[role]
        if not isinstance(runs, list) or not all(isinstance(r, str) for r in runs):
            raise ConfigError(f"{role!r} must be a list of run names", source)
        for r in runs:
            safe_component(r, f"run name in {role!r}", source, error=ConfigError)
    parts = _validate_parts(d, source)
    for part, part_runs in parts.items():
        for r in part_runs:
            safe_component(r, f"run name in part {part!r}", source, error=ConfigError)
    listed = [r for role in ROLES for r in d[role]] + [r for v in parts.values() for r in v]
    if len(set(listed)) != len(listed):
        raise ConfigError("a run appears in more than one role", source)
    if not listed and "assign" not in d and not d.get("by_dataset"):
        raise ConfigError("split lists no runs and has no 'assign' rule", source)
    _validate_values(d, source)
    folds = d.get("folds") or []
    if not isinstance(folds, list):
        raise ConfigError("'folds' must be a list of {train, val, test} objects", source)
    for k, fold in enumerate(folds):
        if not isinstance(fold, dict) or any(r not in fold for r in ROLES):
            raise ConfigError(f"fold {k} needs train, val and test lists", source)
        for role in ROLES:
            if not isinstance(fold[role], list) or not all(isinstance(r, str)
                                                          for r in fold[role]):
                raise ConfigError(f"fold {k}: {role!r} must be a list of run names", source)
            for r in fold[role]:
                safe_component(r, f"run name in fold {k} {role!r}", source, error=ConfigError)
    return d


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _validate_values(d: dict[str, Any], source: str) -> None:
    """Types and ranges of the optional keys (so a bad file fails here, in one line)."""
    if not isinstance(d.get("description", ""), str):
        raise ConfigError("'description' must be text", source)
    tomo_type = d.get("tomo_type")
    if tomo_type is not None:
        safe_component(tomo_type, "tomo_type", source, error=ConfigError)
    vs = d.get("voxel_spacing")
    if vs is not None and not (_is_number(vs) and 0 < vs < 1e6):
        raise ConfigError(f"voxel_spacing must be a positive number of Å or null, not {vs!r}",
                          source)
    src = d["source"]
    if src["kind"] == "synth":
        if not isinstance(src.get("preset"), str):
            raise ConfigError("source.preset must be the name of a phantom preset", source)
        seed = src.get("seed", 0)
        if not (isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 2**32):
            raise ConfigError(f"source.seed must be an integer in [0, 2**32), not {seed!r}",
                              source)
        snr = src.get("snr")
        if snr is not None and not (_is_number(snr) and snr > 0):
            raise ConfigError(f"source.snr must be a positive number or null, not {snr!r}",
                              source)
        opts = src.get("run_options") or {}
        if not isinstance(opts, dict) or not all(isinstance(v, dict) for v in opts.values()):
            raise ConfigError("source.run_options must map run names to objects", source)
    elif not isinstance(src.get("env", ""), str) or not isinstance(src.get("importer", ""),
                                                                   str):
        raise ConfigError("source.env and source.importer must be text", source)
    rule = d.get("assign")
    if rule is not None:
        if not isinstance(rule, dict):
            raise ConfigError("'assign' must be an object", source)
        fractions = [rule.get("val_fraction", 0.1), rule.get("test_fraction", 0.2)]
        if not (all(_is_number(f) and 0 <= f <= 1 for f in fractions) and sum(fractions) <= 1):
            raise ConfigError("assign.val_fraction and assign.test_fraction must be in [0, 1] "
                              "with a sum of at most 1", source)


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_split_name(name: str, what: str = "split name") -> str:
    """``name`` when it is a valid split (or part) name: letters, digits, ``.``, ``_``, ``-``,
    not starting with a dot or dash, so it can never be a path; else a ConfigError."""
    if not isinstance(name, str) or not _NAME_RE.match(name) or ".." in name:
        raise ConfigError(f"invalid {what} {name!r}: use letters, digits, '.', '_' and '-' "
                          "(no path characters), starting with a letter or digit")
    return name


def _validate_parts(d: dict[str, Any], source: str) -> dict[str, list[str]]:
    parts = d.get("parts") or {}
    if not isinstance(parts, dict):
        raise ConfigError("'parts' must map part names to lists of run names", source)
    for name, runs in parts.items():
        try:
            check_split_name(name, "part name")
        except ConfigError as exc:
            raise ConfigError(exc.message, source) from None
        if name in (*ROLES, "all") or re.fullmatch(r"fold\d+", name):
            raise ConfigError(f"part name {name!r} is reserved", source)
        if not isinstance(runs, list) or not all(isinstance(r, str) for r in runs):
            raise ConfigError(f"part {name!r} must be a list of run names", source)
    by_dataset = d.get("by_dataset") or {}
    if by_dataset:
        if d["source"].get("kind") != "portal":
            raise ConfigError("'by_dataset' needs a portal source", source)
        if not isinstance(by_dataset, dict):
            raise ConfigError("'by_dataset' must map roles or parts to dataset ids", source)
        for key, ids in by_dataset.items():
            if key not in ROLES and key not in parts:
                raise ConfigError(f"'by_dataset' names {key!r}, neither a role nor a part",
                                  source)
            if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
                raise ConfigError(f"'by_dataset.{key}' must be a list of dataset ids", source)
    return {str(k): list(v) for k, v in parts.items()}


def split_definition(name: str) -> dict[str, Any]:
    """The parsed definition of a built-in split, or of a split JSON file given by path.

    Raises:
        ConfigError: unknown name (listing close matches) or an invalid definition.
    """
    p = Path(name)
    if name.endswith(".json") and p.exists():
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"cannot read split definition ({exc})", p) from None
        return _validate_definition(d, str(p))
    names = list_splits()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.4)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown split {name!r}{hint} (known: {', '.join(names)})")
    entry = _builtin_dir().joinpath(f"{name}.json")
    return _validate_definition(json.loads(entry.read_text(encoding="utf-8")), f"{name}.json")


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


# --------------------------------------------------------------------------------------------
# Data fingerprint
# --------------------------------------------------------------------------------------------


def data_fingerprint(project: Project, runs: Iterable[str], tomo_type: str | None = None,
                     voxel_spacing: float | None = None) -> str:
    """sha256 identifying the data of ``runs``: per run its spacing, tomogram type and shape, the
    ground-truth picks (rounded to 1e-3 Å) and the raw bytes of a central 16³ crop."""
    h = hashlib.sha256()
    for name in sorted(runs):
        rh = project.run(name, tomo_type, voxel_spacing)
        h.update(_canonical([name, round(rh.voxel_spacing, 3), rh.tomo_type, list(rh.shape)]))
        gt = rh.picks(GROUND_TRUTH_USER, GROUND_TRUTH_SESSION)
        gt = gt.assign(x=gt["x"].round(3), y=gt["y"].round(3), z=gt["z"].round(3))
        gt = gt.sort_values(["particle_type", "x", "y", "z"]).reset_index(drop=True)
        h.update(gt[["particle_type", "x", "y", "z"]].to_csv(index=False).encode())
        crop = tuple(slice(max(0, s // 2 - 8), max(0, s // 2 - 8) + 16) for s in rh.shape)
        h.update(np.ascontiguousarray(rh.tomogram(0, crop)).tobytes())  # type: ignore[arg-type]
    return h.hexdigest()


@contextlib.contextmanager
def _generation_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (POSIX ``flock``): two processes asking for the same
    synthetic split generate it once; the second waits and then reuses the cache."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _cache_damage(root: Path, manifest: Any) -> str | None:
    """Why a cached synthetic project cannot be trusted (its zarr arrays differ from the
    listings recorded at generation), or None. Caches written before listings were recorded
    pass here and get them after the fingerprint check (:func:`_record_integrity`)."""
    from cryobench.data.integrity import check_integrity
    from cryobench.data.synth import INTEGRITY_KEY

    if not isinstance(manifest, dict):
        return "its manifest is not a JSON object"
    listings = manifest.get(INTEGRITY_KEY)
    if listings is None:
        return None
    if not isinstance(listings, dict):
        return "its manifest's integrity listings are malformed"
    return check_integrity(root, listings)


def _record_integrity(root: Path, manifest: dict[str, Any], manifest_path: Path) -> None:
    """Add the arrays' listings to a cache manifest that has none (an older cache that just
    passed the fingerprint check)."""
    from cryobench.data.integrity import array_listings
    from cryobench.data.synth import INTEGRITY_KEY
    from cryobench.io.atomic import atomic_write_text

    if INTEGRITY_KEY in manifest:
        return
    manifest = {**manifest, INTEGRITY_KEY: array_listings(root)}
    with contextlib.suppress(OSError):  # a read-only cache is still usable
        atomic_write_text(manifest_path, json.dumps(manifest, indent=2) + "\n")


def _hash_role(name: str, salt: str) -> float:
    digest = hashlib.sha256(f"{salt}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


# --------------------------------------------------------------------------------------------
# Split
# --------------------------------------------------------------------------------------------


class Split:
    """A named split: its runs per role, task, metric, data source and fingerprint."""

    def __init__(self, definition: dict[str, Any], data_dir: str | os.PathLike[str] | None = None,
                 fold: int | None = None, part: str | None = None,
                 base_dir: str | os.PathLike[str] | None = None,
                 check_runs: bool = True) -> None:
        self.definition = copy.deepcopy(definition)
        d = self.definition
        self.name: str = d["name"] if fold is None else f"{d['name']}/fold{fold}"
        self.parts: dict[str, list[str]] = {str(k): list(v)
                                            for k, v in (d.get("parts") or {}).items()}
        """Further named groups of runs (e.g. an alternative test set), by part name."""
        self.part = part
        self._base_dir = None if base_dir is None else Path(base_dir)
        self._missing: dict[str, list[int]] = {}
        self.description: str = d.get("description", "")
        self.task: str = d["task"]
        self.metric: str = d["metric"]
        self.source: dict[str, Any] = dict(d["source"])
        self.tomo_type: str | None = d.get("tomo_type")
        vs = d.get("voxel_spacing")
        self.voxel_spacing: float | None = None if vs is None else float(vs)
        folds = d.get("folds")
        self.folds: list[tuple[list[str], list[str], list[str]]] | None = (
            None if not folds else [(list(f["train"]), list(f["val"]), list(f["test"]))
                                    for f in folds])
        self.fold = fold
        self.train: list[str] = list(d["train"])
        self.val: list[str] = list(d["val"])
        self.test: list[str] = list(d["test"])
        if fold is not None:
            if not self.folds or not 0 <= fold < len(self.folds):
                n = len(self.folds or [])
                raise ConfigError(f"split {d['name']!r} has {n} folds; no fold {fold}")
            self.train, self.val, self.test = (list(x) for x in self.folds[fold])
        self._data_dir = None if data_dir is None else Path(data_dir).expanduser()
        self._project: Project | None = None
        self._data_fp: str | None = None
        self._config_path: Path | None = None
        if self.source["kind"] in ("import", "portal", "copick"):
            self._config_path = (self._locate_copick() if self.source["kind"] == "copick"
                                 else self._locate_import())
            if "assign" in d and not (self.train or self.val or self.test):
                self._assign_by_hash()
            if d.get("by_dataset"):
                self._assign_by_dataset()
            if check_runs:
                self._check_runs_present()
        if part is not None:
            if part not in self.parts:
                raise ConfigError(f"split {d['name']!r} has no part {part!r} (parts: "
                                  f"{', '.join(self.parts) or 'none'})")
            self.test = list(self.parts[part])
            if part in self._missing:
                self._missing["test"] = self._missing[part]
            else:
                self._missing.pop("test", None)
            self.name = f"{self.name}/{part}"

    def __repr__(self) -> str:
        return (f"Split({self.name!r}, task={self.task!r}, train={len(self.train)}, "
                f"val={len(self.val)}, test={len(self.test)})")

    # ----- data location -------------------------------------------------------------------
    @property
    def is_synthetic(self) -> bool:
        return self.source["kind"] == "synth"

    def _unavailable(self, where: str) -> DataUnavailableError:
        if self.source["kind"] == "portal":
            ids = " ".join(f"--dataset {i}" for i in self.source.get("datasets", []))
            env = self.source.get("env")
            return DataUnavailableError(
                f"the CryoET Data Portal project of split {self.definition['name']} is not "
                f"available{where}. Fetch it (needs the network): `cryobench data fetch-portal "
                f"{ids} --out DIR`, then pass --data DIR" + (f" or set {env}=DIR" if env else ""))
        importer = self.source.get("importer", "")
        template = _HOW_TO_GET.get(importer, "the data of split {name} is not available{where}")
        return DataUnavailableError(template.format(where=where, name=self.name))

    def _locate_import(self) -> Path:
        env = self.source.get("env")
        base = self._data_dir
        if base is None and env and os.environ.get(env):
            base = Path(os.environ[env]).expanduser()
        if base is None:
            raise self._unavailable(f" (no --data directory given and {env} is not set)"
                                    if env else "")
        if base.is_file():
            return base
        cfg = base / CONFIG_NAME
        if cfg.is_file():
            return cfg
        if not base.exists():
            raise self._unavailable(f" ({base} does not exist)")
        if (base / "static").is_dir() or (base / "train").is_dir():
            raise DataUnavailableError(
                f"this looks like a raw Kaggle download, not an imported project; run `cryobench "
                f"data import-{self.source.get('importer', '?')} {base} --out DIR` and use DIR",
                base)
        raise self._unavailable(f" (no {CONFIG_NAME} in {base})")

    def _locate_copick(self) -> Path:
        """The copick config of a ``copick`` source: ``data_dir`` when given, else the path in the
        definition (relative to the split file)."""
        if self._data_dir is not None:
            base = self._data_dir
            if base.is_dir() and (base / CONFIG_NAME).is_file():
                return base / CONFIG_NAME
        else:
            base = Path(self.source["config"]).expanduser()
            if not base.is_absolute() and self._base_dir is not None:
                base = self._base_dir / base
        if not base.exists():
            raise DataUnavailableError(f"the copick project of split {self.name!r} is not "
                                       "there (pass --data CONFIG to point at it)", base)
        return base

    def _assign_by_dataset(self) -> None:
        """Fill roles and parts from ``by_dataset`` with the project's fetched portal runs."""
        from cryobench.data.portal import portal_run_datasets

        assert self._config_path is not None
        datasets = portal_run_datasets(self._config_path)
        named = set(self.all_runs) | {r for v in self.parts.values() for r in v}
        for key, ids in self.definition["by_dataset"].items():
            runs = sorted(r for r, ds in datasets.items() if ds in ids and r not in named)
            if not any(ds in ids for ds in datasets.values()):
                self._missing[key] = list(ids)
            target = self.parts[key] if key in self.parts else getattr(self, key)
            target.extend(runs)

    def _assign_by_hash(self) -> None:
        rule = self.definition["assign"]
        project = self.project()
        salt = str(rule.get("salt", self.definition["name"]))
        val_f, test_f = float(rule.get("val_fraction", 0.1)), float(rule.get("test_fraction", 0.2))
        for run in project.runs:
            u = _hash_role(run, salt)
            role = self.test if u < test_f else self.val if u < test_f + val_f else self.train
            role.append(run)

    def _check_runs_present(self) -> None:
        project = self.project()
        have = set(project.runs)
        listed = self.all_runs + [r for v in self.parts.values() for r in v]
        missing = [r for r in listed if r not in have]
        if missing:
            hint = ""
            if self.source["kind"] == "portal":
                ids = " ".join(f"--dataset {i}" for i in self.source.get("datasets", []))
                hint = f"; fetch them with `cryobench data fetch-portal {ids} --out DIR`"
            raise DataUnavailableError(
                f"the project lacks run(s) {', '.join(missing)} of split {self.name!r} "
                f"(it has {len(have)} runs){hint}", project.config_path)

    # ----- the project ---------------------------------------------------------------------
    @property
    def all_runs(self) -> list[str]:
        return self.train + self.val + self.test

    def _generation_runs(self) -> list[str]:
        """Every run a synthetic split generates (all folds' runs too), in definition order."""
        names = list(self.definition["train"] + self.definition["val"] + self.definition["test"])
        for fold in self.definition.get("folds") or []:
            names += [r for role in ROLES for r in fold[role] if r not in names]
        return names

    def cache_path(self) -> Path:
        """Directory of a synthetic split's generated project in the cache."""
        from cryobench._cpu_isa import numpy_simd_level
        from cryobench.data.synth import generator_fingerprint

        d = {k: v for k, v in self.definition.items() if k != "description"}
        # numpy's AVX-512 kernels give other volume bytes than its AVX2 ones (cryobench/_cpu_isa.py)
        tag = generator_fingerprint() + ("" if numpy_simd_level() != "X86_V4" else "+X86_V4")
        key = hashlib.sha256(_canonical(d) + tag.encode()).hexdigest()[:16]
        return cache_dir() / "splits" / f"{self.definition['name']}-{key}"

    def project(self, progress: bool = True) -> Project:
        """The copick project holding this split's data (synthetic splits: generated on first
        use into the cache, with a progress bar, and reused afterwards after a fingerprint
        check)."""
        if self._project is not None:
            return self._project
        if self.source["kind"] != "synth":
            assert self._config_path is not None
            self._project = open_project(self._config_path)
            return self._project
        self._project, self._data_fp = self._synthetic_project(progress)
        return self._project

    def prepare(self, progress: bool = True) -> None:
        """Make the split's data available (a synthetic split is generated on first use)."""
        self.project(progress=progress)

    writes_predictions: bool = True
    """A split over a copick project can store a method's picks beside the ground truth."""

    def write_predictions(self, run: str, picks: pd.DataFrame, *, user: str,
                          session: str) -> None:
        """Store one run's predicted picks in the split's copick project (user/session)."""
        self.project().write_picks(run, picks, user=user, session=session)

    def _synthetic_project(self, progress: bool) -> tuple[Project, str]:
        root = self.cache_path()
        with _generation_lock(root.with_name(f".{root.name}.lock")):
            return self._synthetic_project_locked(root, progress)

    def _synthetic_project_locked(self, root: Path, progress: bool) -> tuple[Project, str]:
        from cryobench.data.synth import get_preset, write_synthetic_project

        cfg, manifest_path = root / CONFIG_NAME, root / MANIFEST_NAME
        runs = self._generation_runs()
        if cfg.is_file() and manifest_path.is_file():
            try:
                manifest = json.loads(manifest_path.read_text())
                reason = _cache_damage(root, manifest)
                if reason is None:
                    project = open_project(cfg)
                    fp = data_fingerprint(project, runs, self.tomo_type, self.voxel_spacing)
                    if fp == manifest.get("data_fingerprint"):
                        _record_integrity(root, manifest, manifest_path)
                        return project, fp
                    reason = "its data fingerprint does not match"
            except (DataError, ValueError, OSError, TypeError, AttributeError) as exc:
                reason = f"it is unreadable ({exc})"
            warnings.warn(f"regenerating cached split {self.definition['name']!r} at {root}: "
                          f"{reason}", RuntimeWarning, stacklevel=3)

        def fingerprint(config: Path) -> str:
            return data_fingerprint(open_project(config), runs, self.tomo_type,
                                    self.voxel_spacing)

        src = self.source
        made = tuple(getattr(get_preset(src["preset"]), "tomo_types", ()))
        write_synthetic_project(
            root, src["preset"], runs, seed=int(src.get("seed", 0)), snr=src.get("snr"),
            run_options=src.get("run_options"), progress=progress,
            extra_manifest={"split": self.definition["name"]},
            fingerprint_fn=fingerprint, overwrite=True,
            tomo_types=[self.tomo_type] if self.tomo_type in made else None, resume=True)
        manifest = json.loads(manifest_path.read_text())
        self._prune_stale(root)
        return open_project(cfg), str(manifest["data_fingerprint"])

    def _prune_stale(self, keep: Path) -> None:
        """Remove this split's cache entries made by other definitions or generator versions,
        and temporary directories of generations killed more than a day ago."""
        import shutil
        import time

        name = self.definition["name"]
        for old in keep.parent.glob(f"{name}-*"):
            stem = old.name[len(name) + 1:]
            if old != keep and old.is_dir() and len(stem) == 16 and "-" not in stem:
                shutil.rmtree(old, ignore_errors=True)
        for tmp in keep.parent.glob(f".{name}-*"):
            stem = tmp.name[len(name) + 2:]  # "<key>.<suffix>" of this split's entries only
            if not (len(stem) > 17 and stem[16] == "." and "-" not in stem[:16]):
                continue
            if tmp.is_dir() and time.time() - tmp.stat().st_mtime > 86400:
                shutil.rmtree(tmp, ignore_errors=True)

    @property
    def data_fingerprint(self) -> str:
        """sha256 of the split's data (see :func:`data_fingerprint`)."""
        if self._data_fp is None:
            project = self.project()
            if self._data_fp is None:
                self._data_fp = data_fingerprint(project, self._generation_runs()
                                                 if self.is_synthetic else self.all_runs,
                                                 self.tomo_type, self.voxel_spacing)
        return self._data_fp

    @property
    def fingerprint(self) -> str:
        """sha256 over the split definition (with fold) and the data fingerprint."""
        d = {k: v for k, v in self.definition.items() if k != "description"}
        payload = _canonical({"definition": d, "fold": self.fold,
                              "roles": [self.train, self.val, self.test]})
        return hashlib.sha256(payload + self.data_fingerprint.encode()).hexdigest()

    @property
    def particles(self) -> tuple[ParticleType, ...]:
        return self.project().particles

    # ----- runs and ground truth -----------------------------------------------------------
    def role_runs(self, role: str) -> list[str]:
        """Run names of a role (``train``, ``val``, ``test``, ``all``) or of a part.

        Raises:
            ConfigError: unknown role or part.
            DataUnavailableError: a portal role whose datasets the project has not fetched.
        """
        if role == "all":
            return self.all_runs
        if role not in ROLES and role not in self.parts:
            extra = "".join(f", {p}" for p in self.parts)
            raise ConfigError(f"unknown role {role!r}; choose train, val, test, all{extra}")
        if role in self._missing:
            ids = " ".join(f"--dataset {i}" for i in self._missing[role])
            raise DataUnavailableError(
                f"{role!r} of split {self.name!r} is portal dataset(s) "
                f"{', '.join(map(str, self._missing[role]))}, which this project has not "
                f"fetched; run `cryobench data fetch-portal {ids} --out "
                f"{Path(str(self._config_path)).parent}`", self._config_path)
        return list(self.parts[role] if role in self.parts else getattr(self, role))

    def runs(self, role: str) -> list[RunHandle]:
        """Handles on the runs of a role, at the split's tomogram type and voxel spacing."""
        project = self.project()
        return [project.run(n, self.tomo_type, self.voxel_spacing) for n in self.role_runs(role)]

    def with_part(self, part: str) -> Split:
        """The split whose test runs are those of ``part`` (e.g. an alternative test set)."""
        return Split(self.definition, self._data_dir, fold=self.fold, part=part,
                     base_dir=self._base_dir)

    def solution(self, role: str = "test") -> pd.DataFrame:
        """Ground-truth picks (``experiment, particle_type, x, y, z`` in Å) of a role's runs,
        with their orientations (:data:`cryobench.coords.ROTATION_COLUMNS`) when the project
        records them (see :meth:`~cryobench.data.project.Project.read_picks`)."""
        return self.project().read_picks(self.role_runs(role), GROUND_TRUTH_USER,
                                         GROUND_TRUTH_SESSION, with_rotations=True)

    def byu_solution(self, role: str = "test") -> pd.DataFrame:
        """The BYU solution table of a role's runs (see :func:`byu_solution`)."""
        return byu_solution(self.runs(role))

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description (for run records and ``cryobench data splits``)."""
        out = {"name": self.name, "task": self.task, "metric": self.metric,
               "source": self.source, "tomo_type": self.tomo_type,
               "voxel_spacing": self.voxel_spacing, "train": self.train, "val": self.val,
               "test": self.test, "n_folds": len(self.folds or []),
               "fingerprint": self.fingerprint}
        if self.parts:
            out["parts"] = {k: list(v) for k, v in self.parts.items()}
        return out


def byu_solution(runs: Iterable[RunHandle]) -> pd.DataFrame:
    """The BYU solution table of run handles (``split.runs(role)``, or ``project.run(name)`` for
    any copick project): one row per tomogram, motor in voxels (z, y, x; -1 when there is none),
    ``Voxel spacing`` and ``Has motor``, from the ground truth (``curation``/``0``).

    A run with several motors contributes its first one (the BYU score expects at most one).
    """
    rows = []
    for rh in runs:
        gt = rh.picks(GROUND_TRUTH_USER, GROUND_TRUTH_SESSION)
        if len(gt):
            z, y, x = picks_to_voxels(gt.iloc[:1], rh.voxel_spacing)[0]
            rows.append((rh.name, z, y, x, rh.voxel_spacing, 1))
        else:
            rows.append((rh.name, -1.0, -1.0, -1.0, rh.voxel_spacing, 0))
    df = pd.DataFrame(rows, columns=list(BYU_SOLUTION_COLUMNS))
    df["tomo_id"] = df["tomo_id"].astype(object)
    df["Has motor"] = df["Has motor"].astype(int)
    return df


def _parse_split_name(name: str) -> tuple[str, int | None, str | None]:
    """``NAME``, ``NAME/foldK`` or ``NAME/PART`` -> (name, fold, part); a ``.json`` path may
    carry the same suffixes."""
    if name.endswith(".json") or "/" not in name:
        return name, None, None
    base, _, suffix = name.rpartition("/")
    if not base:
        return name, None, None
    if suffix.startswith("fold") and suffix != "fold":
        if not suffix[4:].isdigit():
            raise ConfigError(f"bad fold suffix in split name {name}")
        return base, int(suffix[4:]), None
    if not base.endswith(".json") and "/" in base:
        return name, None, None  # a path without .json: let split_definition report it
    return base, None, suffix


def load_split(name: str, data_dir: str | os.PathLike[str] | None = None) -> Split:
    """Load a named split (``czii``, ``czii-synth``, ``czii-portal``, ``byu``, ``byu-synth``,
    ``tiny``...) or a split JSON file; a ``name/foldK`` suffix selects fold K, a ``name/PART``
    suffix tests on the split's part PART (e.g. ``czii-portal/test-public``).

    Synthetic splits generate nothing here (see :meth:`Split.project`). Imported, portal and
    copick splits locate their data now: ``data_dir`` (the directory ``cryobench data import-*``
    or ``fetch-portal`` wrote, or its ``copick.json``; for a copick split, any copick config),
    else the source's environment variable or config path.

    Raises:
        ConfigError: unknown split, fold or part (with close matches) or bad definition.
        DataUnavailableError: the real data is missing (says how to obtain it). Synthetic data is
            never substituted.
    """
    name, fold, part = _parse_split_name(name)
    base_dir = Path(name).expanduser().resolve().parent if name.endswith(".json") else None
    return Split(split_definition(name), data_dir=data_dir, fold=fold, part=part,
                 base_dir=base_dir)


def split_part_runs(split: str, part: str, project: Project) -> list[str]:
    """The runs of ``part`` (train, val, test, all or a named part) of split ``split``, checked
    against ``project`` (the data the caller scores: a split of real or portal data is read
    from it, never from the environment).

    Raises:
        ConfigError: unknown split or part.
        DataError: a run of that part is not in the project.
    """
    name, fold, suffix = _parse_split_name(split)
    definition = split_definition(name)
    if definition["source"]["kind"] == "synth":
        data_dir = None
    else:
        data_dir = project.config_path
    base_dir = Path(name).expanduser().resolve().parent if name.endswith(".json") else None
    sp = Split(definition, data_dir=data_dir, fold=fold, part=suffix, base_dir=base_dir,
               check_runs=False)
    runs = sp.role_runs(part)
    missing = [r for r in runs if r not in set(project.runs)]
    if missing:
        raise DataError(f"split {sp.name!r} part {part!r} has run(s) the project lacks: "
                        f"{', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}",
                        project.config_path)
    return runs
