"""Named splits: which runs train, validate and test a method, on which data.

A split definition is data: a JSON file in ``cryobench/splits/`` (or any ``*.json`` path given to
:func:`load_split`) with the keys

``name, description, task ("particles"|"motor"), metric ("czii"|"byu"), source, tomo_type,
voxel_spacing (Å or null), train, val, test (run names), folds (list of {train, val, test} or
null)`` and, for imported data with too many runs to list, ``assign`` (a salted-hash rule).

``source`` is ``{"kind": "import", "importer": "czii"|"byu", "env": VAR}`` (real data the user
imports; located by ``data_dir`` or the environment variable) or ``{"kind": "synth", "preset",
"seed", "snr", "run_options"}`` (generated on first use into the cache and reused afterwards).

A split's :attr:`Split.fingerprint` (sha256 over the definition and the data fingerprint) goes
into every run record.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import hashlib
import json
import os
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
from cryobench.particles import ParticleType

__all__ = [
    "ROLES",
    "Split",
    "list_splits",
    "load_split",
    "split_definition",
    "data_fingerprint",
    "BYU_SOLUTION_COLUMNS",
]

ROLES: tuple[str, ...] = ("train", "val", "test")
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
    if kind not in ("import", "synth"):
        raise ConfigError("source.kind must be 'import' or 'synth'", source)
    for role in ROLES:
        runs = d[role]
        if not isinstance(runs, list) or not all(isinstance(r, str) for r in runs):
            raise ConfigError(f"{role!r} must be a list of run names", source)
    listed = [r for role in ROLES for r in d[role]]
    if len(set(listed)) != len(listed):
        raise ConfigError("a run appears in more than one role", source)
    if not listed and "assign" not in d:
        raise ConfigError("split lists no runs and has no 'assign' rule", source)
    for k, fold in enumerate(d.get("folds") or []):
        if not isinstance(fold, dict) or any(r not in fold for r in ROLES):
            raise ConfigError(f"fold {k} needs train, val and test lists", source)
    return d


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


def _hash_role(name: str, salt: str) -> float:
    digest = hashlib.sha256(f"{salt}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


# --------------------------------------------------------------------------------------------
# Split
# --------------------------------------------------------------------------------------------


class Split:
    """A named split: its runs per role, task, metric, data source and fingerprint."""

    def __init__(self, definition: dict[str, Any], data_dir: str | os.PathLike[str] | None = None,
                 fold: int | None = None) -> None:
        self.definition = copy.deepcopy(definition)
        d = self.definition
        self.name: str = d["name"] if fold is None else f"{d['name']}/fold{fold}"
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
        if self.source["kind"] == "import":
            self._config_path = self._locate_import()
            if "assign" in d and not (self.train or self.val or self.test):
                self._assign_by_hash()
            self._check_runs_present()

    def __repr__(self) -> str:
        return (f"Split({self.name!r}, task={self.task!r}, train={len(self.train)}, "
                f"val={len(self.val)}, test={len(self.test)})")

    # ----- data location -------------------------------------------------------------------
    @property
    def is_synthetic(self) -> bool:
        return self.source["kind"] == "synth"

    def _unavailable(self, where: str) -> DataUnavailableError:
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
        missing = [r for r in self.all_runs if r not in have]
        if missing:
            raise DataUnavailableError(
                f"the project lacks run(s) {', '.join(missing)} of split {self.name!r} "
                f"(it has {len(have)} runs)", project.config_path)

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
        from cryobench.data.synth import generator_fingerprint

        d = {k: v for k, v in self.definition.items() if k != "description"}
        key = hashlib.sha256(_canonical(d) + generator_fingerprint().encode()).hexdigest()[:16]
        return cache_dir() / "splits" / f"{self.definition['name']}-{key}"

    def project(self, progress: bool = True) -> Project:
        """The copick project holding this split's data (synthetic splits: generated on first
        use into the cache, with a progress bar, and reused afterwards after a fingerprint
        check)."""
        if self._project is not None:
            return self._project
        if self.source["kind"] == "import":
            assert self._config_path is not None
            self._project = open_project(self._config_path)
            return self._project
        self._project, self._data_fp = self._synthetic_project(progress)
        return self._project

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
                project = open_project(cfg)
                fp = data_fingerprint(project, runs, self.tomo_type, self.voxel_spacing)
                if fp == manifest.get("data_fingerprint"):
                    return project, fp
                reason = "its data fingerprint does not match"
            except (DataError, ValueError, OSError) as exc:
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
        """Run names of a role (``train``, ``val``, ``test`` or ``all``)."""
        if role == "all":
            return self.all_runs
        if role not in ROLES:
            raise ConfigError(f"unknown role {role!r}; choose train, val, test or all")
        return list(getattr(self, role))

    def runs(self, role: str) -> list[RunHandle]:
        """Handles on the runs of a role, at the split's tomogram type and voxel spacing."""
        project = self.project()
        return [project.run(n, self.tomo_type, self.voxel_spacing) for n in self.role_runs(role)]

    def with_fold(self, k: int) -> Split:
        """The split whose train/val/test are those of fold ``k``."""
        return Split(self.definition, self._data_dir, fold=k)

    def solution(self, role: str = "test") -> pd.DataFrame:
        """Ground-truth picks (``experiment, particle_type, x, y, z`` in Å) of a role's runs."""
        return self.project().read_picks(self.role_runs(role), GROUND_TRUTH_USER,
                                         GROUND_TRUTH_SESSION)

    def byu_solution(self, role: str = "test") -> pd.DataFrame:
        """The BYU solution table of a role's runs: one row per tomogram, motor in voxels
        (z, y, x; -1 when there is none), ``Voxel spacing`` and ``Has motor``.

        A run with several motors contributes its first one (the BYU score expects at most one).
        """
        rows = []
        for rh in self.runs(role):
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

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description (for run records and ``cryobench data splits``)."""
        return {"name": self.name, "task": self.task, "metric": self.metric,
                "source": self.source, "tomo_type": self.tomo_type,
                "voxel_spacing": self.voxel_spacing, "train": self.train, "val": self.val,
                "test": self.test, "n_folds": len(self.folds or []),
                "fingerprint": self.fingerprint}


def load_split(name: str, data_dir: str | os.PathLike[str] | None = None) -> Split:
    """Load a named split (``czii``, ``czii-synth``, ``byu``, ``byu-synth``, ``tiny``) or a split
    JSON file; a ``name/foldK`` suffix selects fold K.

    Synthetic splits generate nothing here (see :meth:`Split.project`). Imported splits locate
    their data now: ``data_dir`` (the directory ``cryobench data import-*`` wrote, or its
    ``copick.json``), else the source's environment variable.

    Raises:
        ConfigError: unknown split (with close matches) or bad definition.
        DataUnavailableError: the real data is missing (says how to obtain it). Synthetic data is
            never substituted.
    """
    fold = None
    if "/fold" in name and not name.endswith(".json"):
        name, _, k = name.rpartition("/fold")
        if not k.isdigit():
            raise ConfigError(f"bad fold suffix in split name {name}/fold{k}")
        fold = int(k)
    return Split(split_definition(name), data_dir=data_dir, fold=fold)
