"""The ground truth behind a report's curves: from the split's data or from a solutions folder.

Curves over pick scores and distances, and the TP / FP / FN labels of the example slice, need
the test part's ground truth. It comes from either

* the split's data, when it is at hand (imported data, or a synthetic split already generated
  on this machine; nothing here triggers a generation), or
* a solution CSV with its ``.json`` sidecar (``cryobench data solution SPLIT --fingerprint -o
  DIR/SPLIT.csv``), so committed boards can show the curves without any data.

A record is compared only with ground truth of the data it was made on: the dataset
fingerprints must agree, otherwise the record gets no curves and the reason says why.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pandas as pd

from cryobench.errors import CryobenchError
from cryobench.runner.record import RunRecord

__all__ = ["GroundTruth", "SplitData", "open_split_data", "truth_from_solution",
           "truth_from_split", "pick_truth"]


@dataclass
class GroundTruth:
    """The test part's solution table of one split, and where it came from."""

    split: str
    metric: str
    table: pd.DataFrame
    """The metric's solution table (CZII: picks in Å; BYU: one row per tomogram)."""
    fingerprint: str | None
    """The dataset fingerprint of the data it belongs to (None: unknown)."""
    source: str
    """Said on the pages: "the split's data" or the solution file's name."""
    runs: list[Any] = field(default_factory=list)
    """``name`` / ``voxel_spacing`` of the test runs (what a BYU submission needs)."""

    def why_not(self, rec: RunRecord) -> str | None:
        """Why ``rec`` cannot be compared with this ground truth (None: it can)."""
        if rec.metric != self.metric:
            return (f"the ground truth is for the {self.metric} metric, the record is scored "
                    f"with {rec.metric}")
        if self.fingerprint is not None and self.fingerprint != rec.dataset_fingerprint:
            return (f"{self.source} on this machine is of other data than the record (their "
                    "dataset fingerprints differ)")
        return None


@dataclass
class SplitData:
    """A split whose data is at hand (tomograms and ground truth)."""

    split: Any
    truth: GroundTruth


def truth_from_solution(sol: Any) -> GroundTruth:
    """A :class:`GroundTruth` from a :class:`~cryobench.report.verification.Solution`."""
    runs: list[Any] = []
    if sol.metric == "byu":
        runs = [SimpleNamespace(name=str(t), voxel_spacing=float(v)) for t, v in
                zip(sol.table["tomo_id"], sol.table["Voxel spacing"], strict=True)]
    return GroundTruth(sol.split, sol.metric, sol.table, sol.fingerprint, sol.path.name, runs)


def truth_from_split(sp: Any) -> GroundTruth:
    """The test part's ground truth of a split whose data is at hand."""
    from cryobench.metrics.registry import get_metric

    metric = get_metric(sp.metric)
    runs = [SimpleNamespace(name=r.name, voxel_spacing=r.voxel_spacing) for r in sp.runs("test")]
    return GroundTruth(sp.name, sp.metric, metric.solution_from_split(sp, "test"),
                       sp.fingerprint, "the split's data", runs)


def open_split_data(name: str, data_dir: str | None = None) -> tuple[SplitData | None, str]:
    """The split ``name`` with its data, or ``(None, why not)``; never generates data."""
    try:
        from cryobench.data import load_split
        from cryobench.data.synth import CONFIG_NAME
    except ImportError as exc:  # pragma: no cover - the data layer is part of cryobench
        return None, f"the data layer is unavailable ({exc})"
    try:
        sp = load_split(name, data_dir)
        if sp.is_synthetic and not (sp.cache_path() / CONFIG_NAME).is_file():
            return None, (f"split {name!r} has not been generated on this machine (a run "
                          "generates it)")
        sp.project(progress=False)
        return SplitData(sp, truth_from_split(sp)), ""
    except CryobenchError as exc:
        return None, f"no data for split {name!r} ({exc.message.split(';')[0]})"


def pick_truth(rec: RunRecord, solutions: Mapping[str, GroundTruth],
               data: SplitData | None) -> tuple[GroundTruth | None, str]:
    """The ground truth to compare ``rec`` with: the split's data when it is of the record's
    data, else the solution of its split; ``(None, why)`` when neither fits."""
    reasons = []
    for truth in ([data.truth] if data is not None else []) + (
            [solutions[rec.split]] if rec.split in solutions else []):
        why = truth.why_not(rec)
        if why is None:
            return truth, ""
        reasons.append(why)
    if not reasons:
        return None, f"no ground truth of split {rec.split!r} at hand"
    return None, "; ".join(reasons)
