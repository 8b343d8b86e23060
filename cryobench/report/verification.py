"""Rescoring records from their predictions: the leaderboard shows only what it can check.

A record carries its score, but a third party could have edited it. Given the ground truth of a
split's test part (a solution CSV with a ``.json`` sidecar that names the split, the part, the
metric and the dataset fingerprint; ``cryobench data solution SPLIT --fingerprint -o FILE``
writes both), :func:`check_record` rescores the record's own ``predictions.csv`` with the
record's parameters through the metric registry and compares: ``verified``, ``mismatch`` (the
entry is then flagged and never ranked) or ``unchecked`` with the reason.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pandas as pd

from cryobench.errors import CryobenchError
from cryobench.runner.record import RunRecord

__all__ = ["Solution", "Check", "load_solutions", "check_record", "write_sidecar",
           "SIDECAR_KIND", "TOLERANCE"]

SIDECAR_KIND = "cryobench-solution"
TOLERANCE = 1e-9
"""Largest difference between a stored and a rescored score that still counts as equal."""


@dataclass
class Solution:
    """The ground truth of one split's part, and what it is of."""

    split: str
    part: str
    metric: str
    fingerprint: str
    table: pd.DataFrame
    path: Path


@dataclass(frozen=True)
class Check:
    """The outcome of rescoring one record."""

    status: str
    """``verified``, ``mismatch`` or ``unchecked``."""
    detail: str = ""
    rescored: float | None = None


def load_solutions(directory: str | os.PathLike[str] | None
                   ) -> tuple[dict[str, Solution], list[tuple[Path, str]]]:
    """Every solution (``*.json`` sidecar + its CSV) in ``directory`` by split name, and the
    files that could not be used (listed, never fatal)."""
    from cryobench.io.picks import read_csv_table

    out: dict[str, Solution] = {}
    bad: list[tuple[Path, str]] = []
    if directory is None:
        return out, bad
    root = Path(directory)
    if not root.is_dir():
        return out, [(root, "solutions directory not found")]
    for meta_path in sorted(root.glob("*.json")):
        try:
            meta = _read_json(meta_path)
            if not isinstance(meta, dict) or meta.get("kind") != SIDECAR_KIND:
                raise CryobenchError("not a cryobench solution sidecar", meta_path)
            csv = meta_path.with_suffix(".csv")
            table = read_csv_table(csv)
            sol = Solution(str(meta["split"]), str(meta.get("part", "test")),
                           str(meta["metric"]), str(meta["dataset_fingerprint"]), table, csv)
        except (CryobenchError, KeyError, TypeError) as exc:
            bad.append((meta_path, getattr(exc, "message", None) or f"missing key {exc}"))
            continue
        if sol.split in out:
            bad.append((meta_path, f"a second solution of split {sol.split!r}: not used"))
            continue
        out[sol.split] = sol
    return out, bad


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CryobenchError(f"unreadable JSON ({type(exc).__name__})", path) from None


def check_record(rec: RunRecord, solutions: dict[str, Solution]) -> Check:
    """Rescore ``rec`` from its predictions against the split's solution, if it is given."""
    from cryobench.io.picks import read_picks_csv
    from cryobench.metrics.params import MetricParams
    from cryobench.metrics.registry import get_metric

    sol = solutions.get(rec.split)
    if sol is None:
        return Check("unchecked", f"no ground truth of split {rec.split!r} was given")
    if sol.fingerprint != rec.dataset_fingerprint:
        return Check("unchecked", "the ground truth given is of other data (its dataset "
                                  "fingerprint differs from the record's)")
    if sol.metric != rec.metric:
        return Check("unchecked", f"the ground truth is for the {sol.metric} metric, the record "
                                  f"is scored with {rec.metric}")
    path = rec.predictions_path
    if path is None or not path.is_file():
        return Check("unchecked", "predictions.csv not found beside the record")
    try:
        picks = read_picks_csv(path)
        metric = get_metric(rec.metric)
        runs = ([SimpleNamespace(name=str(t), voxel_spacing=float(v)) for t, v in
                 zip(sol.table["tomo_id"], sol.table["Voxel spacing"], strict=True)]
                if rec.metric == "byu" else [])
        ev = metric.evaluate(metric.submission_from_picks(picks, runs), sol.table,
                             MetricParams.from_record(rec.params), diagnostics=False)
    except CryobenchError as exc:
        return Check("mismatch", f"the predictions cannot be rescored ({exc.message})")
    if abs(ev.score - rec.score) <= TOLERANCE:
        return Check("verified", "rescored from its predictions", ev.score)
    return Check("mismatch", f"its predictions score {ev.score:.6f}, the record says "
                             f"{rec.score:.6f}", ev.score)


def write_sidecar(csv_path: str | os.PathLike[str], *, split: str, part: str, metric: str,
                  fingerprint: str) -> Path:
    """Write the ``.json`` sidecar of a solution CSV (atomically)."""
    from cryobench.io.atomic import atomic_write_text

    path = Path(csv_path).with_suffix(".json")
    atomic_write_text(path, json.dumps({"kind": SIDECAR_KIND, "split": split, "part": part,
                                        "metric": metric, "dataset_fingerprint": fingerprint},
                                       indent=2) + "\n")
    return path
