"""The ablation manifest: the format ``cryobench ablate`` writes and the reports read.

``<results>/ablations/<name>/ablation.json`` lists an ablation's cells (label, split, overrides,
config hash, whether it is the base), its method, budget, seeds and varied keys, so reports and
the site can find the cells' runs in the results store and say which have not run yet. This
module owns the format (its kind, version and keys); the writer (:mod:`cryobench.runner.ablate`)
and the reader (:mod:`cryobench.report.ablation`) both go through it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cryobench.errors import ConfigError, ResultsError

__all__ = ["MANIFEST_NAME", "MANIFEST_KIND", "MANIFEST_FORMAT", "check_ablation_name",
           "manifest_path", "write_manifest_data", "read_manifest", "find_manifests"]

MANIFEST_NAME = "ablation.json"
MANIFEST_KIND = "cryobench-ablation"
MANIFEST_FORMAT = 1
REQUIRED = ("name", "method", "cells")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def check_ablation_name(name: str, source: str | os.PathLike[str] | None = None) -> str:
    """An ablation name is one path component: letters, digits, ``.``, ``_``, ``-``, starting
    with a letter or digit, at most 100 characters (so ``..``, ``a b`` and ``a/b`` are refused,
    never rewritten into a name that could collide)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"invalid ablation name {name!r}: use letters, digits, '.', '_' and "
                          "'-', starting with a letter or digit (at most 100 characters)", source)
    return name


def manifest_path(results_dir: str | os.PathLike[str], name: str) -> Path:
    """``<results>/ablations/<name>/ablation.json`` (the name checked first)."""
    return Path(results_dir) / "ablations" / check_ablation_name(name) / MANIFEST_NAME


def write_manifest_data(results_dir: str | os.PathLike[str], data: Mapping[str, Any]) -> Path:
    """Write a manifest (atomically) with the kind and format filled in; returns its path."""
    from cryobench.io.atomic import atomic_write_text
    from cryobench.runner.record import jsonable

    missing = [k for k in REQUIRED if k not in data]
    if missing:  # pragma: no cover - the writer builds complete manifests
        raise ValueError(f"manifest lacks {', '.join(missing)}")
    body = {"kind": MANIFEST_KIND, "format": MANIFEST_FORMAT, **data}
    path = manifest_path(results_dir, str(data["name"]))
    atomic_write_text(path, json.dumps(jsonable(body), indent=2) + "\n")
    return path


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check an ``ablation.json`` manifest."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ResultsError(f"unreadable ablation manifest ({type(exc).__name__})", p) from None
    if not isinstance(data, dict) or data.get("kind") != MANIFEST_KIND:
        raise ResultsError("not a cryobench ablation manifest", p)
    if data.get("format", MANIFEST_FORMAT) != MANIFEST_FORMAT:
        raise ResultsError(f"ablation manifest format {data.get('format')!r}, expected "
                           f"{MANIFEST_FORMAT}", p)
    for key in REQUIRED:
        if key not in data:
            raise ResultsError(f"ablation manifest has no {key!r}", p)
    if not isinstance(data["cells"], list) or not all(
            isinstance(c, dict) and "split" in c and "config_hash" in c for c in data["cells"]):
        raise ResultsError("ablation manifest cells must be objects with split and "
                           "config_hash", p)
    return data


def find_manifests(paths: Iterable[str | os.PathLike[str]]
                   ) -> tuple[list[tuple[Path, dict[str, Any]]], list[tuple[Path, str]]]:
    """Every ablation manifest under ``paths`` and the unreadable ones."""
    found, bad = [], []
    for root in map(Path, paths):
        files = [root] if root.is_file() else sorted(root.rglob(MANIFEST_NAME))
        for f in files:
            if f.name != MANIFEST_NAME:
                continue
            try:
                found.append((f, read_manifest(f)))
            except ResultsError as exc:
                bad.append((f, exc.message))
    return found, bad
