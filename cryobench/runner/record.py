"""Run records: one typed :class:`RunRecord` per completed run (schema version 2).

A record holds everything needed to trust, compare and re-aggregate a run: the method, split,
seed, budget, the full config and its sha256, the dataset fingerprint, the environment, timings,
the score and per-(experiment, particle type) ``tp/fp/fn`` counts. See docs/records.md.

The runner builds a record in one place (:func:`cryobench.runner.run.run`); reports, the site,
ablations and the test fakes read and write only this type:

* :meth:`RunRecord.load` = read + upgrade (schema 1 records load unchanged, with the keys schema 2
  added filled in) + validate; :meth:`RunRecord.save` = validate + atomic write;
* :func:`validate` checks the JSON form and raises :class:`~cryobench.errors.ResultsError` naming
  the file for anything corrupt or foreign; :func:`upgrade` migrates older schemas.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryobench.errors import ResultsError
from cryobench.io.atomic import atomic_write_text
from cryobench.vocab import BUDGETS, PRECISIONS, RECORD_METRICS, TASKS

__all__ = [
    "SCHEMA_VERSION",
    "REQUIRED_KEYS",
    "RunRecord",
    "CountRow",
    "config_hash",
    "jsonable",
    "utc_now",
    "validate",
    "upgrade",
    "load",
    "write",
    "dumps",
]

SCHEMA_VERSION = 2
"""The schema version this cryobench writes (and upgrades older records to)."""

_NUMBER = (int, float)
_OPT_STR = (str, type(None))
_OPT_NUMBER = (int, float, type(None))
_OPT_INT = (int, type(None))

REQUIRED_KEYS: dict[str, tuple[type, ...]] = {
    "schema_version": (int,),
    "cryobench_version": (str,),
    "git_sha": _OPT_STR,
    "method": (str,),
    "split": (str,),
    "task": (str,),
    "seed": (int,),
    "budget": (str,),
    "device": (str,),
    "precision": _OPT_STR,
    "config": (dict,),
    "config_hash": (str,),
    "dataset_fingerprint": (str,),
    "environment": (dict,),
    "timings": (dict,),
    "peak_memory_mb": _OPT_NUMBER,
    "peak_gpu_memory_mb": _OPT_NUMBER,
    "started_at": (str,),
    "finished_at": (str,),
    "metric": (str,),
    "score": _NUMBER,
    "metrics": (dict,),
    "counts": (list,),
    "params": (dict,),
    "n_test_runs": _OPT_INT,
    "n_predictions": _OPT_INT,
    "predictions": (str,),
    "model": _OPT_STR,
    "copick": (dict, type(None)),
    "status": (str,),
}
"""Top-level keys of a schema-2 record and their JSON types."""

OPTIONAL_KEYS: dict[str, tuple[type, ...]] = {
    "seeded": (bool,),
}
"""Top-level keys a schema-2 record may hold (written only when they differ from the default):
``seeded`` is False for a method that ignores the seed (template matching), so a board shows
one seed as the whole story rather than flagging the missing ones."""

ENVIRONMENT_KEYS = ("python", "platform", "torch", "cuda", "device_name", "cpu_count")
TIMING_KEYS = ("fit_s", "predict_s", "score_s", "total_s")
COUNT_KEYS = ("experiment", "particle_type", "tp", "fp", "fn")
_RESOLVED_PRECISIONS = tuple(p for p in PRECISIONS if p != "auto")


# ----- helpers ---------------------------------------------------------------------------------
def jsonable(obj: Any) -> Any:
    """A JSON-ready copy: tuples -> lists, NumPy scalars/arrays -> Python, NaN/inf -> None."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj) if isinstance(obj, (set, frozenset)) else obj
        return [jsonable(v) for v in items]
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "tolist"):  # NumPy scalars and arrays
        return jsonable(obj.tolist())
    if hasattr(obj, "item"):
        return jsonable(obj.item())
    raise TypeError(f"cannot store a {type(obj).__name__} in a run record: {obj!r}")


def canonical_json(obj: Any) -> str:
    """Canonical JSON (sorted keys, no whitespace, ASCII) used for hashing."""
    return json.dumps(jsonable(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)


def config_hash(config: Mapping[str, Any]) -> str:
    """sha256 (hex) of the canonical JSON of a config dict."""
    return hashlib.sha256(canonical_json(config).encode("ascii")).hexdigest()


def utc_now() -> str:
    """The current time as ISO 8601 UTC, second precision (``2025-01-31T12:00:00Z``)."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace(
        "+00:00", "Z")


def _parse_time(value: str) -> _dt.datetime:
    return _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def dumps(rec: Mapping[str, Any]) -> str:
    """The record as pretty JSON (the on-disk format)."""
    return json.dumps(jsonable(rec), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


# ----- validation ------------------------------------------------------------------------------
def _type_name(types: tuple[type, ...]) -> str:
    names = {int: "integer", float: "number", str: "string", dict: "object", list: "array",
             type(None): "null"}
    labels = list(dict.fromkeys(names.get(t, t.__name__) for t in types))
    if "number" in labels and "integer" in labels:
        labels.remove("integer")
    return " or ".join(labels)


def _is(value: Any, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool):  # JSON true/false is not a number here
        return bool in types
    return isinstance(value, types)


def _nonfinite_path(obj: Any, prefix: str) -> str | None:
    """The dotted path of the first NaN/infinite number inside ``obj`` (None when all finite)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return prefix
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            found = _nonfinite_path(v, f"{prefix}.{k}")
            if found:
                return found
    elif isinstance(obj, list):
        for k, v in enumerate(obj):
            found = _nonfinite_path(v, f"{prefix}[{k}]")
            if found:
                return found
    return None


def validate(rec: Any, path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Check the JSON form of a current-schema record; return it, or raise
    :class:`ResultsError` naming ``path``.

    Checks the keys and their types, the enumerations (task, budget, metric, status, precision),
    that ``config_hash`` is the sha256 of ``config``, the timings and counts (integers), that
    the score and every scoring parameter are finite, and the ISO timestamps.
    """
    src = None if path is None else str(path)

    def bad(msg: str) -> ResultsError:
        return ResultsError(f"invalid run record: {msg}", src)

    if not isinstance(rec, dict) or "schema_version" not in rec:
        raise ResultsError("not a cryobench run record (no schema_version)", src)
    if rec["schema_version"] != SCHEMA_VERSION:
        raise bad(f"schema_version {rec['schema_version']!r}, expected {SCHEMA_VERSION} "
                  "(load records with RunRecord.load to upgrade them)")
    missing = [k for k in REQUIRED_KEYS if k not in rec]
    if missing:
        raise bad(f"missing key(s) {', '.join(missing)}")
    for key, types in REQUIRED_KEYS.items():
        if not _is(rec[key], types):
            raise bad(f"{key!r} should be {_type_name(types)}, got {type(rec[key]).__name__}")
    for key, types in OPTIONAL_KEYS.items():
        if key in rec and not _is(rec[key], types):
            raise bad(f"{key!r} should be {_type_name(types)}, got {type(rec[key]).__name__}")
    if rec["status"] != "complete":
        raise bad(f"status is {rec['status']!r}, only complete runs have records")
    for key, choices in (("task", TASKS), ("budget", BUDGETS), ("metric", RECORD_METRICS)):
        if rec[key] not in choices:
            raise bad(f"unknown {key} {rec[key]!r}")
    if rec["precision"] is not None and rec["precision"] not in _RESOLVED_PRECISIONS:
        raise bad(f"unknown precision {rec['precision']!r}")
    if rec["metric"] not in rec["metrics"]:
        raise bad(f"metrics has no {rec['metric']!r} entry")
    if not math.isfinite(rec["score"]):
        raise bad("score is not finite")
    for key in ("params", "counts"):
        where = _nonfinite_path(rec[key], key)
        if where:
            raise bad(f"{where} is not a finite number")
    for key in ("weights", "radii"):
        table = rec["params"].get(key)
        if table is not None and (not isinstance(table, dict) or not all(
                _is(v, _NUMBER) and v >= 0 for v in table.values())):
            raise bad(f"params.{key} should map classes to numbers >= 0")
    beta = rec["params"].get("beta")
    if beta is not None and (not _is(beta, _NUMBER) or beta <= 0):
        raise bad(f"params.beta should be a number > 0, got {beta!r}")
    for key, block in rec["metrics"].items():
        if not isinstance(block, dict) and block is not None:
            raise bad(f"metrics.{key} should be an object")
    try:
        expected = config_hash(rec["config"])
    except (TypeError, ValueError) as exc:
        raise bad(f"config is not canonical JSON ({exc})") from None
    if rec["config_hash"] != expected:
        raise bad("config_hash does not match config (edited or corrupt record)")
    for key in ENVIRONMENT_KEYS:
        if key not in rec["environment"]:
            raise bad(f"environment has no {key!r}")
    for key in TIMING_KEYS:
        value = rec["timings"].get(key)
        if not _is(value, _NUMBER) or not math.isfinite(value) or value < 0:
            raise bad(f"timings.{key} should be a non-negative number, got {value!r}")
    for i, row in enumerate(rec["counts"]):
        if not isinstance(row, dict) or any(k not in row for k in COUNT_KEYS):
            raise bad(f"counts[{i}] needs keys {', '.join(COUNT_KEYS)}")
        for k in ("experiment", "particle_type"):
            if not isinstance(row[k], str):
                raise bad(f"counts[{i}].{k} should be a string, got {row[k]!r}")
        for k in ("tp", "fp", "fn"):
            if not _is(row[k], (int,)) or abs(row[k]) > 2**53:
                raise bad(f"counts[{i}].{k} should be an integer, got {row[k]!r}")
    for key in ("started_at", "finished_at"):
        try:
            _parse_time(rec[key])
        except ValueError:
            raise bad(f"{key} is not an ISO 8601 time: {rec[key]!r}") from None
    for key in ("predictions", "model"):
        value = rec[key]
        if value is not None and (os.path.isabs(value) or ".." in Path(value).parts):
            raise bad(f"{key} should be a path relative to the record, got {value!r}")
    return rec


# ----- upgrades ----------------------------------------------------------------------------------
def _v1_precision(rec: dict[str, Any]) -> str | None:
    """What a schema-1 record computed in, where it can be told: an explicit config precision,
    or ``auto`` on a CPU whose bf16 units the record states (bf16 then, as ``auto`` was)."""
    asked = (rec.get("config") or {}).get("precision")
    if asked in _RESOLVED_PRECISIONS:
        return str(asked)
    if asked == "auto" and str(rec.get("device", "")).startswith("cpu"):
        native = (rec.get("environment") or {}).get("cpu_native_bf16")
        return None if native is None else ("bf16" if native else "fp32")
    return None


def _upgrade_v1(rec: dict[str, Any]) -> dict[str, Any]:
    """Schema 1 -> 2: adds ``precision`` (what the networks computed in, when the record tells),
    ``model`` (unknown: null) and makes the optional keys explicit."""
    out = dict(rec)
    out["schema_version"] = 2
    out["precision"] = _v1_precision(rec)
    out.setdefault("model", None)
    out.setdefault("peak_gpu_memory_mb", None)
    out.setdefault("n_test_runs", None)
    out.setdefault("n_predictions", None)
    out.setdefault("copick", None)
    return out


UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _upgrade_v1}
"""``version -> function`` turning a record of that version into ``version + 1``."""


def upgrade(rec: Any, path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Bring the JSON form of a record to :data:`SCHEMA_VERSION`."""
    src = None if path is None else str(path)
    if not isinstance(rec, dict) or "schema_version" not in rec:
        raise ResultsError("not a cryobench run record (no schema_version)", src)
    version = rec["schema_version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ResultsError(f"invalid schema_version {version!r}", src)
    if version > SCHEMA_VERSION:
        raise ResultsError(
            f"record has schema_version {version}, newer than this cryobench supports "
            f"({SCHEMA_VERSION}); upgrade cryobench", src)
    while version < SCHEMA_VERSION:
        step = UPGRADES.get(version)
        if step is None:  # pragma: no cover - every past version gets an upgrade function
            raise ResultsError(f"no upgrade from schema_version {version}", src)
        rec = step(dict(rec))
        version = rec["schema_version"]
    return rec


# ----- the type ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CountRow:
    """``tp, fp, fn`` of one (test run, particle type)."""

    experiment: str
    particle_type: str
    tp: int
    fp: int
    fn: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class RunRecord:
    """One completed run (the schema-2 keys as attributes; see docs/records.md).

    ``path`` is where the record was loaded from (not part of the JSON).
    """

    method: str
    split: str
    task: str
    seed: int
    budget: str
    device: str
    config: dict[str, Any]
    config_hash: str
    dataset_fingerprint: str
    environment: dict[str, Any]
    timings: dict[str, float]
    started_at: str
    finished_at: str
    metric: str
    score: float
    metrics: dict[str, Any]
    counts: list[CountRow]
    params: dict[str, Any]
    predictions: str = "predictions.csv"
    precision: str | None = None
    peak_memory_mb: float | None = None
    peak_gpu_memory_mb: float | None = None
    n_test_runs: int | None = None
    n_predictions: int | None = None
    model: str | None = None
    copick: dict[str, str] | None = None
    git_sha: str | None = None
    cryobench_version: str = ""
    status: str = "complete"
    seeded: bool = True
    schema_version: int = SCHEMA_VERSION
    path: Path | None = field(default=None, compare=False, repr=False)

    # ----- JSON form --------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Any, path: str | os.PathLike[str] | None = None) -> RunRecord:
        """A record from its JSON form (any supported schema: upgraded, then validated)."""
        rec = validate(upgrade(data, path), path)
        names = {f.name for f in dataclasses.fields(cls)} - {"path"}
        values = {k: rec[k] for k in names if k in rec}
        values["counts"] = [CountRow(str(c["experiment"]), str(c["particle_type"]), int(c["tp"]),
                                     int(c["fp"]), int(c["fn"])) for c in rec["counts"]]
        return cls(**values, path=None if path is None else Path(path))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (key order of the on-disk format)."""
        out = {k: getattr(self, k) for k in REQUIRED_KEYS}
        out["counts"] = [c.to_dict() for c in self.counts]
        if not self.seeded:
            out["seeded"] = False
        return jsonable(out)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RunRecord:
        """Read, upgrade and validate a record file."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ResultsError("run record not found", p) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ResultsError(f"cannot read run record ({exc.__class__.__name__})", p) from None
        try:
            data = json.loads(text, parse_constant=_constant)
        except (json.JSONDecodeError, ValueError, RecursionError) as exc:
            msg = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)[:80]
            raise ResultsError(f"not valid JSON ({msg})", p) from None
        return cls.from_dict(data, p)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Validate and write atomically to ``path`` (temp file + rename)."""
        data = self.to_dict()
        validate(data, path)
        atomic_write_text(path, dumps(data))
        self.path = Path(path)
        return Path(path)

    # ----- what readers need ------------------------------------------------------------------
    @property
    def directory(self) -> Path | None:
        """The run directory (the folder of the record file), when loaded from disk."""
        return None if self.path is None else self.path.parent

    @property
    def predictions_path(self) -> Path | None:
        """The predictions CSV beside the record, when loaded from disk (its ``.gz`` copy when
        only that is there: see :func:`cryobench.runner.store.compress_predictions`)."""
        if self.path is None:
            return None
        plain = self.path.parent / self.predictions
        packed = plain.with_name(plain.name + ".gz")
        return packed if not plain.is_file() and packed.is_file() else plain

    @property
    def model_path(self) -> Path | None:
        """The saved model's folder beside the record (None when none was saved)."""
        return None if self.path is None or self.model is None else self.path.parent / self.model

    @property
    def beta(self) -> float:
        """The F-beta parameter the record was scored with."""
        from cryobench.metrics.params import DEFAULT_BETA

        value = self.params.get("beta")
        return float(value) if isinstance(value, (int, float)) else DEFAULT_BETA[self.metric]

    @property
    def weights(self) -> dict[str, float]:
        """Class weights the record was scored with."""
        return {str(k): float(v) for k, v in (self.params.get("weights") or {}).items()}

    def class_ap(self, particle_type: str) -> float | None:
        """COCO-style AP@[.5:.95] of one class (the record's ``metrics.map`` block)."""
        item = ((self.metrics.get("map") or {}).get("per_class") or {}).get(particle_type)
        value = item.get("ap") if isinstance(item, dict) else None
        return float(value) if isinstance(value, (int, float)) else None

    @property
    def diagnostics(self) -> dict[str, Any]:
        """The metric-gaming diagnostics block (empty when the record has none)."""
        block = self.metrics.get("diagnostics")
        return block if isinstance(block, dict) else {}

    @property
    def localization(self) -> dict[str, Any]:
        """Per class, the centre distance (Å) and orientation error (degrees) of the matched
        picks: ``{class: {"distance": {n, median, p90}, "orientation": {n, median, p90,
        within_10, within_20, within_30} or None, "symmetry": ...}}`` (the record's
        ``metrics.localization`` block; empty for records written before it existed)."""
        block = self.metrics.get("localization")
        per_class = block.get("per_class") if isinstance(block, dict) else None
        return per_class if isinstance(per_class, dict) else {}

    @property
    def method_metrics(self) -> dict[str, Any]:
        """Figures the method reported itself (validation scores, slice mAP)."""
        block = self.metrics.get("method")
        return block if isinstance(block, dict) else {}

    def count_rows(self) -> list[dict[str, Any]]:
        """``counts`` as plain dicts (for :class:`~cryobench.report.stats.CountCube`)."""
        return [c.to_dict() for c in self.counts]


def _constant(name: str) -> float:
    return float(name)  # NaN/Infinity parse; validate() then names where they are


# ----- I/O -------------------------------------------------------------------------------------
def load(path: str | os.PathLike[str]) -> RunRecord:
    """Read, upgrade and validate a record file (:meth:`RunRecord.load`)."""
    return RunRecord.load(path)


def write(path: str | os.PathLike[str], rec: RunRecord) -> Path:
    """Validate ``rec`` and write it atomically to ``path`` (:meth:`RunRecord.save`)."""
    if not isinstance(rec, RunRecord):
        raise TypeError(f"write() takes a RunRecord, got {type(rec).__name__}")
    return rec.save(path)
