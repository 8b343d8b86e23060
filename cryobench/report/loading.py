"""Reading run records for reports and leaderboards.

Records are read through the results store (:mod:`cryobench.runner.store`) when it is importable;
until then a thin fallback reads ``record.json`` files itself with the same contract: valid
records are returned, every corrupt or foreign file is returned as ``(path, reason)`` so the
caller can report it, and nothing is averaged over silently.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cryobench.errors import ResultsError

__all__ = ["load_records", "REQUIRED_KEYS", "RECORD_NAME"]

RECORD_NAME = "record.json"
REQUIRED_KEYS = ("schema_version", "method", "split", "seed", "config_hash", "metric", "score",
                 "counts", "params", "status")
SCHEMA_VERSION = 1


def _store():
    try:
        from cryobench.runner import store  # the results store, when it has landed
    except ImportError:
        return None
    return store if hasattr(store, "iter_records") else None


def _fallback_validate(rec: Any) -> str | None:
    if not isinstance(rec, dict):
        return "not a run record (expected a JSON object)"
    missing = [k for k in REQUIRED_KEYS if k not in rec]
    if missing:
        return f"not a run record (missing {', '.join(missing)})"
    if rec["schema_version"] != SCHEMA_VERSION:
        return f"unsupported schema_version {rec['schema_version']!r}"
    if rec["status"] != "complete":
        return f"run status is {rec['status']!r}, not 'complete'"
    if not isinstance(rec["counts"], list):
        return "counts is not a list"
    return None


def _fallback_iter(root: Path) -> tuple[list[dict], list[tuple[Path, str]]]:
    files = [root] if root.is_file() else sorted(
        f for f in root.rglob("*.json")
        if f.name == RECORD_NAME or f.name.endswith("." + RECORD_NAME))
    records, bad = [], []
    for f in files:
        try:
            rec = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            bad.append((f, f"unreadable JSON ({type(exc).__name__})"))
            continue
        problem = _fallback_validate(rec)
        if problem:
            bad.append((f, problem))
            continue
        rec.setdefault("_path", str(f))
        records.append(rec)
    return records, bad


def _iter_one(root: Path) -> tuple[list[dict], list[tuple[Path, str]]]:
    store = _store()
    if store is None:
        return _fallback_iter(root)
    errors: list[tuple[Path, str]] = []
    records = []
    for path, rec in store.iter_records(root, errors):
        rec = dict(rec)
        rec.setdefault("_path", str(path))
        records.append(rec)
    return records, [(Path(p), str(e)) for p, e in errors]


def load_records(paths: Iterable[str | os.PathLike[str]]
                 ) -> tuple[list[dict[str, Any]], list[tuple[Path, str]]]:
    """All valid records under ``paths`` (result directories or record files) and the bad files.

    Raises:
        ResultsError: a path does not exist, or no valid record was found at all.
    """
    paths = [Path(p) for p in paths]
    if not paths:
        raise ResultsError("no results directory given")
    records: list[dict[str, Any]] = []
    bad: list[tuple[Path, str]] = []
    for p in paths:
        if not p.exists():
            raise ResultsError("results path not found", p)
        r, b = _iter_one(p)
        records += r
        bad += b
    if not records:
        where = paths[0] if len(paths) == 1 else ", ".join(map(str, paths))
        why = f" ({len(bad)} unreadable: {bad[0][0]}: {bad[0][1]})" if bad else ""
        raise ResultsError(f"no valid run records found{why}", where)
    versions = sorted({str(r.get("schema_version")) for r in records})
    if len(versions) > 1:
        raise ResultsError(f"records mix schema versions {', '.join(versions)}; "
                           "upgrade them to one version first", paths[0])
    return records, bad
