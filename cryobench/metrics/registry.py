"""The metric registry: one dispatcher for ``cryobench score``, the runner and the reports.

Each :class:`Metric` (``czii``, ``byu``, ``map``) knows its columns, the
:class:`~cryobench.metrics.params.MetricParams` fields that apply to it, how to turn a method's
picks into its submission table and a split into its solution table, and how to
:meth:`~Metric.evaluate` a submission into an :class:`Evaluation` (result object, per-experiment
counts, diagnostics). Nothing else in cryobench decides which scorer to call or with which
parameters.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from cryobench.errors import InputError
from cryobench.metrics.params import MetricParams
from cryobench.vocab import METRICS

__all__ = ["Metric", "Evaluation", "METRIC_REGISTRY", "get_metric", "infer_metric",
           "CZII_COLUMNS", "BYU_COLUMNS", "BOX_COLUMNS"]

CZII_COLUMNS: tuple[str, ...] = ("experiment", "particle_type", "x", "y", "z")
BYU_COLUMNS: tuple[str, ...] = ("tomo_id", "Motor axis 0", "Motor axis 1", "Motor axis 2")
BOX_COLUMNS: tuple[str, ...] = ("image_id", "label", "x0", "y0", "x1", "y1")


class _Run(Protocol):  # what the BYU conversion needs of a run (a RunLike)
    name: str
    voxel_spacing: float


class _Split(Protocol):  # what solution_from_split needs of a split
    def solution(self, role: str) -> pd.DataFrame: ...


@dataclass
class Evaluation:
    """The outcome of :meth:`Metric.evaluate`.

    Attributes:
        metric: the metric's name.
        score: the score.
        result: the metric's result object (:class:`~cryobench.metrics.results.CziiReport`,
            ``ByuReport`` or ``MapReport``).
        counts: per-(experiment, class) ``tp, fp, fn`` (None for mAP).
        diagnostics: metric-gaming diagnostics (CZII only, when asked for).
        params: the parameters it was scored with.
    """

    metric: str
    score: float
    result: Any
    counts: pd.DataFrame | None
    diagnostics: Any | None
    params: MetricParams

    def to_dict(self, per_experiment: bool = False) -> dict[str, Any]:
        """The JSON-ready result (what ``cryobench score --json`` prints)."""
        out = self.result.to_dict()
        if not per_experiment:
            out.pop("per_experiment", None)
            out.pop("per_tomo", None)
        if self.diagnostics is not None:
            out["diagnostics"] = self.diagnostics.to_dict()
        return out


@dataclass(frozen=True)
class Metric:
    """One metric: its columns, applicable parameters and scorer."""

    name: str
    title: str
    columns: tuple[str, ...]
    """The submission columns that identify the metric."""
    used_columns: tuple[str, ...]
    """Every column the scorer reads (others are dropped after reading)."""
    options: tuple[str, ...]
    """The :class:`MetricParams` fields that change this metric's numbers."""
    group_column: str
    """The column a bootstrap resamples (experiments, tomograms, images)."""

    # ----- tables ---------------------------------------------------------------------------
    def submission_from_picks(self, picks: pd.DataFrame, runs: Sequence[_Run]) -> pd.DataFrame:
        """A method's picks (Å) as this metric's submission table."""
        if self.name == "byu":
            from cryobench.io.byu import picks_to_byu

            return picks_to_byu(picks, runs)
        return picks

    def solution_from_split(self, split: Any, role: str = "test") -> pd.DataFrame:
        """The ground truth of a split's part as this metric's solution table."""
        if self.name == "byu":
            return split.byu_solution(role)
        return split.solution(role)

    # ----- scoring --------------------------------------------------------------------------
    def evaluate(self, submission: pd.DataFrame, solution: pd.DataFrame,
                 params: MetricParams | None = None, *, per_experiment: bool = True,
                 diagnostics: bool = True) -> Evaluation:
        """Score ``submission`` against ``solution`` with ``params`` (default: official).

        Raises:
            InputError: a malformed table (``path`` is ``"submission"`` or ``"solution"``).
            ConfigError: parameters the metric cannot use.
        """
        p = params or MetricParams()
        if self.name == "czii":
            from cryobench.metrics.diagnostics import czii_score_with_diagnostics

            report, diag = czii_score_with_diagnostics(
                submission, solution, radii=p.radii, weights=p.weights, beta=p.beta_for("czii"),
                distance_multiplier=p.distance_multiplier, matching=p.matching,
                per_experiment=True)
            counts = report.per_experiment
            if not per_experiment:
                import dataclasses

                report = dataclasses.replace(report, per_experiment=None)
            return Evaluation("czii", float(report.score), report, counts,
                              diag if diagnostics else None, p)
        if self.name == "byu":
            from cryobench.metrics.byu import byu_score
            from cryobench.metrics.counts import byu_counts

            report = byu_score(submission, solution, beta=p.beta_for("byu"),
                               distance_angstrom=p.distance_angstrom)
            motor = next(iter(p.radii), "flagellar-motor") if p.radii else "flagellar-motor"
            return Evaluation("byu", float(report.score), report,
                              byu_counts(report.per_tomo, motor), None, p)
        from cryobench.metrics.map import map_boxes, map_picks

        report = (map_boxes(submission, solution) if self.is_boxes(submission, solution)
                  else map_picks(submission, solution, radii=p.radii))
        return Evaluation("map", float(report.score), report, None, None, p)

    def is_boxes(self, submission: pd.DataFrame, solution: pd.DataFrame) -> bool:
        """mAP only: 2D boxes when either table looks like boxes (so a misspelled box column
        is reported against the table that has it), otherwise 3D picks."""
        return (any(c in submission.columns for c in BOX_COLUMNS)
                or all(c in solution.columns for c in BOX_COLUMNS))

    def score_function(self, params: MetricParams, submission: pd.DataFrame,
                       solution: pd.DataFrame):
        """The plain scorer with ``params`` bound, for resampling (bootstraps)."""
        from cryobench.metrics.byu import byu_score
        from cryobench.metrics.czii import czii_score
        from cryobench.metrics.map import map_boxes, map_picks

        if self.name == "czii":
            return functools.partial(czii_score, radii=params.radii, weights=params.weights,
                                     beta=params.beta_for("czii"),
                                     distance_multiplier=params.distance_multiplier,
                                     matching=params.matching)
        if self.name == "byu":
            return functools.partial(byu_score, beta=params.beta_for("byu"),
                                     distance_angstrom=params.distance_angstrom)
        if self.is_boxes(submission, solution):
            return map_boxes
        return functools.partial(map_picks, radii=params.radii)

    def bootstrap(self, evaluation: Evaluation, submission: pd.DataFrame,
                  solution: pd.DataFrame, *, n_resamples: int, seed: int = 0,
                  confidence: float = 0.95):
        """A percentile bootstrap interval of the score over the :attr:`group_column`."""
        from cryobench.metrics import bootstrap as bs

        if self.name == "czii":
            import dataclasses

            report = dataclasses.replace(evaluation.result, per_experiment=evaluation.counts)
            return bs.bootstrap_czii_report(report, n_resamples=n_resamples, seed=seed,
                                            confidence=confidence)
        group = self.group_column
        if self.name == "map" and not self.is_boxes(submission, solution):
            group = "experiment"
        return bs.bootstrap_ci(self.score_function(evaluation.params, submission, solution),
                               submission, solution, n_resamples=n_resamples, seed=seed,
                               confidence=confidence, group_col=group)


METRIC_REGISTRY: dict[str, Metric] = {
    "czii": Metric("czii", "weighted F-beta, Kaggle CZII rule", CZII_COLUMNS, CZII_COLUMNS,
                   ("radii", "weights", "beta", "distance_multiplier", "matching"),
                   "experiment"),
    "byu": Metric("byu", "F-beta over tomograms, BYU motor rule", BYU_COLUMNS,
                  (*BYU_COLUMNS, "Voxel spacing", "Has motor"), ("beta", "distance_angstrom"),
                  "tomo_id"),
    "map": Metric("map", "COCO mAP@[.5:.95] (2D boxes or 3D sphere IoU)", BOX_COLUMNS,
                  (*CZII_COLUMNS, *BOX_COLUMNS, "score"), ("radii",), "image_id"),
}
"""The registered metrics by name (the same names as :data:`cryobench.vocab.METRICS`)."""


def get_metric(name: str) -> Metric:
    """The :class:`Metric` called ``name``."""
    from cryobench.vocab import check_choice

    return METRIC_REGISTRY[check_choice("metric", name, METRICS)]


def infer_metric(columns: Iterable[str], path: str | None = None) -> str:
    """``czii``, ``byu`` or ``map`` from a submission's columns (the closest match wins).

    Boxes (``image_id, label, x0, y0, x1, y1``) mean ``map``. A table matching nothing at all
    is an :class:`InputError` that lists the expected columns.
    """
    cols = {str(c).strip() for c in columns}
    overlap = {name: len(cols & set(m.columns)) / len(m.columns)
               for name, m in METRIC_REGISTRY.items()}
    best = max(overlap, key=lambda k: overlap[k])
    if overlap[best] == 0:
        raise InputError(
            "cannot tell the metric from the columns "
            f"({', '.join(sorted(cols)) or 'none'}); expected CZII columns "
            f"{', '.join(CZII_COLUMNS)} or BYU columns {', '.join(BYU_COLUMNS)} "
            "(or pass --metric)", path)
    return best
