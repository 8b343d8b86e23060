"""Small result objects returned by the scorers; each renders to a JSON-ready dict.

Reports hold numbers and the parameters that produced them; they never print. The CLI and the
run records format them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "ClassStats",
    "CziiReport",
    "ByuReport",
    "MapReport",
    "BootstrapResult",
    "PairedBootstrapResult",
    "Diagnostics",
    "ClassDiagnostics",
    "to_jsonable",
]


def to_jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays, DataFrames, dataclasses and non-finite floats for JSON.

    NaN and infinities become ``None`` (JSON has no such numbers).
    """
    if hasattr(value, "to_dict") and not isinstance(value, pd.DataFrame | pd.Series):
        return value.to_dict()
    if isinstance(value, pd.DataFrame):
        return [to_jsonable(r) for r in value.to_dict(orient="records")]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [to_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating | float):
        v = float(value)
        return v if math.isfinite(v) else None
    return value


def _asdict_shallow(obj: Any) -> dict[str, Any]:
    return {f.name: to_jsonable(getattr(obj, f.name)) for f in fields(obj)}


@dataclass(frozen=True)
class ClassStats:
    """Counts and scores of one particle class (micro-summed over experiments)."""

    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    fbeta: float
    f1: float
    weight: float

    def to_dict(self) -> dict[str, Any]:
        return _asdict_shallow(self)


@dataclass(frozen=True)
class CziiReport:
    """Result of :func:`cryobench.metrics.czii_score`.

    Attributes:
        score: weighted F-beta: sum of weight·F-beta over the classes present in the solution,
            divided by the sum of all weights.
        per_class: class name -> :class:`ClassStats`, in the order the classes were aggregated.
        per_experiment: ``experiment, particle_type, tp, fp, fn`` per pair, or ``None``.
        params: every parameter that changed a number (radii, weights, beta, matching...).
    """

    score: float
    per_class: dict[str, ClassStats]
    per_experiment: pd.DataFrame | None
    params: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "metric": "czii",
            "score": to_jsonable(self.score),
            "per_class": {k: v.to_dict() for k, v in self.per_class.items()},
            "params": to_jsonable(self.params),
        }
        if self.per_experiment is not None:
            out["per_experiment"] = to_jsonable(self.per_experiment)
        return out


@dataclass(frozen=True)
class ByuReport:
    """Result of :func:`cryobench.metrics.byu_score` (one motor class, F-beta over tomograms)."""

    score: float
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    params: dict[str, Any]
    per_tomo: pd.DataFrame

    def to_dict(self) -> dict[str, Any]:
        stats = {"tp": self.tp, "fp": self.fp, "fn": self.fn, "precision": self.precision,
                 "recall": self.recall, "fbeta": self.score}
        return {
            "metric": "byu",
            "score": to_jsonable(self.score),
            "per_class": {"flagellar-motor": to_jsonable(stats)},
            "params": to_jsonable(self.params),
            "per_tomo": to_jsonable(self.per_tomo),
        }


@dataclass(frozen=True)
class MapReport:
    """Result of :func:`map_boxes` / :func:`map_picks` (COCO-style average precision).

    ``map`` is the mean over IoU thresholds, recall points and classes with ground truth;
    ``map50``/``map75`` the same at IoU 0.5 / 0.75 (``nan`` when that threshold is not used).
    ``per_class`` maps each class with ground truth to ``{"ap", "ap50", "ap75", "n_gt",
    "n_det"}``.
    """

    map: float
    map50: float
    map75: float
    per_class: dict[str, dict[str, float]]
    params: dict[str, Any]

    @property
    def score(self) -> float:
        """Alias of :attr:`map` so every report has a ``score``."""
        return self.map

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.params.get("kind", "map"),
            "score": to_jsonable(self.map),
            "map": to_jsonable(self.map),
            "map50": to_jsonable(self.map50),
            "map75": to_jsonable(self.map75),
            "per_class": to_jsonable(self.per_class),
            "params": to_jsonable(self.params),
        }


@dataclass(frozen=True)
class BootstrapResult:
    """A percentile bootstrap confidence interval over resampled groups (experiments).

    ``metric`` and ``metric_params`` name the scored function and its keyword arguments;
    ``n_nonfinite`` resamples gave no finite score and are left out of the percentiles.
    """

    estimate: float
    low: float
    high: float
    confidence: float
    n_resamples: int
    seed: int
    group_col: str
    n_groups: int
    metric: str = ""
    metric_params: dict[str, Any] = field(default_factory=dict)
    n_nonfinite: int = 0
    samples: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        d = _asdict_shallow(self)
        d.pop("samples")
        return d


@dataclass(frozen=True)
class PairedBootstrapResult:
    """Difference ``A - B`` of two submissions on the same resampled groups, with its CI.

    ``p_value`` is the two-sided exact sign-flip p-value of "no difference" over the groups
    (:func:`cryobench.metrics.bootstrap.paired_sign_flip`), never below ``p_min``, its
    attainable minimum (``2/2^n`` with ``n`` groups when all flips are enumerated).
    ``metric``, ``metric_params`` and ``n_nonfinite`` as in :class:`BootstrapResult`.
    """

    estimate_a: float
    estimate_b: float
    difference: float
    low: float
    high: float
    p_value: float
    confidence: float
    n_resamples: int
    seed: int
    group_col: str
    n_groups: int
    metric: str = ""
    metric_params: dict[str, Any] = field(default_factory=dict)
    n_nonfinite: int = 0
    samples: np.ndarray | None = field(default=None, repr=False, compare=False)
    p_min: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        d = _asdict_shallow(self)
        d.pop("samples")
        return d


@dataclass(frozen=True)
class ClassDiagnostics:
    """Gaming diagnostics of one class (see :class:`Diagnostics`)."""

    n_candidates: int
    n_matched: int
    n_duplicates: int
    n_unmatched: int
    duplicate_rate: float
    unmatched_rate: float

    def to_dict(self) -> dict[str, Any]:
        return _asdict_shallow(self)


@dataclass(frozen=True)
class Diagnostics:
    """How a CZII score was reached: duplicates, unmatched candidates, deduplicated score.

    A candidate is *matched* when it lies within the threshold of at least one reference. Each
    matched reference keeps its closest candidate (ties: first row); every other matched
    candidate is a *duplicate* ("a candidate beyond the first within the threshold of one
    reference"). ``score_deduplicated`` is the score with the duplicates removed. Under the Kaggle
    rule the true positives are unchanged by construction, so it is never below ``score``; under
    ``one-to-one`` matching the deduplicated submission is matched again and can score lower.
    """

    n_candidates: int
    n_matched: int
    n_duplicates: int
    n_unmatched: int
    duplicate_rate: float
    unmatched_rate: float
    score: float
    score_deduplicated: float
    per_class: dict[str, ClassDiagnostics]
    params: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        d = _asdict_shallow(self)
        d["per_class"] = {k: v.to_dict() for k, v in self.per_class.items()}
        return d
