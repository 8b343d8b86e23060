"""Run records: one JSON file per completed run (schema version 1).

A record holds everything needed to trust, compare and re-aggregate a run: the method, split,
seed, budget, the full config and its sha256, the dataset fingerprint, the environment, timings,
the score and per-(experiment, particle type) ``tp/fp/fn`` counts. See docs/records.md.

* :func:`validate` checks a record and raises :class:`~cryobench.errors.ResultsError` naming the
  file for anything corrupt or foreign;
* :func:`upgrade` turns an older record into the current schema (the hook for future versions);
* :func:`load` = read + upgrade + validate; :func:`write` = validate + atomic write.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from cryobench.errors import ResultsError
from cryobench.io.atomic import atomic_write_text

__all__ = [
    "SCHEMA_VERSION",
    "REQUIRED_KEYS",
    "config_hash",
    "jsonable",
    "utc_now",
    "validate",
    "upgrade",
    "load",
    "write",
    "dumps",
]

SCHEMA_VERSION = 1
"""The schema version this cryobench writes (and upgrades older records to)."""

_NUMBER = (int, float)
_OPT_STR = (str, type(None))
_OPT_NUMBER = (int, float, type(None))

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
    "config": (dict,),
    "config_hash": (str,),
    "dataset_fingerprint": (str,),
    "environment": (dict,),
    "timings": (dict,),
    "peak_memory_mb": _OPT_NUMBER,
    "started_at": (str,),
    "finished_at": (str,),
    "metric": (str,),
    "score": _NUMBER,
    "metrics": (dict,),
    "counts": (list,),
    "params": (dict,),
    "predictions": (str,),
    "status": (str,),
}
"""Top-level keys of a v1 record and their JSON types."""

ENVIRONMENT_KEYS = ("python", "platform", "torch", "cuda", "device_name", "cpu_count")
TIMING_KEYS = ("fit_s", "predict_s", "score_s", "total_s")
COUNT_KEYS = ("experiment", "particle_type", "tp", "fp", "fn")
METRICS = ("czii", "byu")
_TASKS = ("particles", "motor")
_BUDGETS = ("smoke", "cpu", "full")


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


def validate(rec: Any, path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Check a (current-schema) record; return it, or raise :class:`ResultsError` naming ``path``.

    Checks the keys and their types, the enumerations (task, budget, metric, status), that
    ``config_hash`` is the sha256 of ``config``, the timings and counts, and the ISO timestamps.
    """
    src = None if path is None else str(path)

    def bad(msg: str) -> ResultsError:
        return ResultsError(f"invalid run record: {msg}", src)

    if not isinstance(rec, dict) or "schema_version" not in rec:
        raise ResultsError("not a cryobench run record (no schema_version)", src)
    if rec["schema_version"] != SCHEMA_VERSION:
        raise bad(f"schema_version {rec['schema_version']!r}, expected {SCHEMA_VERSION} "
                  "(load records with record.load to upgrade them)")
    missing = [k for k in REQUIRED_KEYS if k not in rec]
    if missing:
        raise bad(f"missing key(s) {', '.join(missing)}")
    for key, types in REQUIRED_KEYS.items():
        if not _is(rec[key], types):
            raise bad(f"{key!r} should be {_type_name(types)}, got {type(rec[key]).__name__}")
    if rec["status"] != "complete":
        raise bad(f"status is {rec['status']!r}, only complete runs have records")
    if rec["task"] not in _TASKS:
        raise bad(f"unknown task {rec['task']!r}")
    if rec["budget"] not in _BUDGETS:
        raise bad(f"unknown budget {rec['budget']!r}")
    if rec["metric"] not in METRICS:
        raise bad(f"unknown metric {rec['metric']!r}")
    if rec["metric"] not in rec["metrics"]:
        raise bad(f"metrics has no {rec['metric']!r} entry")
    if not math.isfinite(rec["score"]):
        raise bad("score is not finite")
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
        if not _is(value, _NUMBER) or value < 0:
            raise bad(f"timings.{key} should be a non-negative number, got {value!r}")
    for i, row in enumerate(rec["counts"]):
        if not isinstance(row, dict) or any(k not in row for k in COUNT_KEYS):
            raise bad(f"counts[{i}] needs keys {', '.join(COUNT_KEYS)}")
        for k in ("tp", "fp", "fn"):
            if not _is(row[k], (int,)):
                raise bad(f"counts[{i}].{k} should be an integer, got {row[k]!r}")
    for key in ("started_at", "finished_at"):
        try:
            _parse_time(rec[key])
        except ValueError:
            raise bad(f"{key} is not an ISO 8601 time: {rec[key]!r}") from None
    pred = rec["predictions"]
    if os.path.isabs(pred) or ".." in Path(pred).parts:
        raise bad(f"predictions should be a path relative to the record, got {pred!r}")
    return rec


# ----- upgrades ----------------------------------------------------------------------------------
UPGRADES: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {}
"""``version -> function`` turning a record of that version into ``version + 1``."""


def upgrade(rec: Any, path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Bring a record to :data:`SCHEMA_VERSION` (v1 records are returned unchanged)."""
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


# ----- I/O -------------------------------------------------------------------------------------
def load(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read, upgrade and validate a record file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultsError("run record not found", p) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"cannot read run record ({exc.__class__.__name__})", p) from None
    try:
        rec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultsError(f"not valid JSON ({exc.msg} at line {exc.lineno})", p) from None
    return validate(upgrade(rec, p), p)


def write(path: str | os.PathLike[str], rec: Mapping[str, Any]) -> Path:
    """Validate ``rec`` and write it atomically to ``path`` (temp file + rename)."""
    data = jsonable(rec)
    validate(data, path)
    atomic_write_text(path, dumps(data))
    return Path(path)
