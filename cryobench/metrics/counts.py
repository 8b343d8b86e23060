"""The one counting core: ``tp, fp, fn`` per (experiment, class), the one F-beta, and the counts
that threshold tuning needs.

Every consumer counts through this module, so the rules exist once:

* :func:`fbeta` is the F-beta of the Kaggle CZII script (``P = tp/(tp+fp)``, ``R =
  tp/(tp+fn)``, 0 where a denominator is not positive, 0 when ``P + R = 0``); the BYU score
  computes the same quantity with scikit-learn's algebra, see :mod:`cryobench.metrics._fbeta`;
* :func:`czii_counts` and :func:`byu_counts` are the per-(experiment, class) tables a run record
  stores; :func:`summarise_counts` turns such a table back into per-class figures and the score;
* :func:`czii_threshold_curve` gives, for every candidate score level, the true positives and
  candidates kept under the CZII rule (what the deep baselines tune their thresholds on), and
  :func:`motor_outcomes` is the BYU rule per tomogram (what the motor methods tune on).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from cryobench.metrics._fbeta import prf_from_counts
from cryobench.metrics.params import MetricParams

__all__ = ["COUNT_COLUMNS", "fbeta", "czii_counts", "byu_counts", "counts_frame",
           "summarise_counts", "class_counts", "czii_threshold_curve",
           "motor_outcomes"]

COUNT_COLUMNS: tuple[str, ...] = ("experiment", "particle_type", "tp", "fp", "fn")
"""Columns of a counts table (one row per experiment and class)."""


def fbeta(tp: Any, fp: Any, fn: Any, beta: float, rule: str = "czii"
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(precision, recall, F-beta)`` from counts (elementwise).

    ``rule="czii"`` computes them as the Kaggle CZII script does; ``rule="byu"`` as the BYU
    script does (scikit-learn's algebra). The two are the same quantity and differ at most in
    the last bit; each reproduces its official score exactly. ``fp`` may be negative under the
    Kaggle rule (one candidate near two references), so precision, and with it F-beta, can
    exceed 1.
    """
    if rule == "byu":
        from cryobench.metrics._fbeta import fbeta_sklearn, precision_recall_sklearn

        precision, recall = precision_recall_sklearn(tp, fp, fn)
        return precision, recall, fbeta_sklearn(tp, fp, fn, beta)
    if rule != "czii":
        raise ValueError(f"unknown F-beta rule {rule!r}; use 'czii' or 'byu'")
    return prf_from_counts(tp, fp, fn, beta)


def counts_frame(rows: Iterable[Mapping[str, Any]] | pd.DataFrame) -> pd.DataFrame:
    """A counts table from rows (``experiment, particle_type, tp, fp, fn``) or a DataFrame."""
    df = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame(
        list(rows), columns=list(COUNT_COLUMNS))
    if len(df) == 0:
        df = pd.DataFrame({c: pd.Series(dtype=object if c in COUNT_COLUMNS[:2] else np.int64)
                           for c in COUNT_COLUMNS})
    return df[list(COUNT_COLUMNS)]


def czii_counts(submission: pd.DataFrame, solution: pd.DataFrame,
                params: MetricParams | None = None) -> pd.DataFrame:
    """Per-(experiment, class) ``tp, fp, fn`` of a CZII submission (see :func:`czii_score`)."""
    from cryobench.metrics.czii import czii_score

    p = params or MetricParams()
    report = czii_score(submission, solution, radii=p.radii, weights=p.weights,
                        beta=p.beta_for("czii"), distance_multiplier=p.distance_multiplier,
                        matching=p.matching, per_experiment=True)
    return report.per_experiment


def byu_counts(per_tomo: pd.DataFrame, motor: str = "flagellar-motor") -> pd.DataFrame:
    """One counts row per tomogram from a BYU outcome table (a ``tn`` row counts nothing)."""
    outcome = per_tomo["outcome"].to_numpy()
    return pd.DataFrame({"experiment": per_tomo["tomo_id"].astype(str).to_numpy(dtype=object),
                         "particle_type": np.full(len(per_tomo), motor, dtype=object),
                         "tp": (outcome == "tp").astype(np.int64),
                         "fp": (outcome == "fp").astype(np.int64),
                         "fn": (outcome == "fn").astype(np.int64)})


def summarise_counts(counts: Iterable[Mapping[str, Any]] | pd.DataFrame,
                     weights: Mapping[str, float], beta: float,
                     classes: Iterable[str] | None = None) -> tuple[float, dict[str, dict]]:
    """``(score, per_class)`` from a counts table: per class the micro sums over experiments,
    precision, recall, F-beta and F1; score = Σ weight·F-beta over the classes with a reference
    or a candidate, divided by the sum of all ``weights``.

    ``classes`` (default: the weighted classes, then any other class seen) sets the rows and
    their order; a class without counts gets zeros.
    """
    df = counts_frame(counts)
    seen = list(dict.fromkeys(map(str, df["particle_type"])))
    order = list(classes) if classes is not None else (
        [c for c in weights if c in seen or weights[c] > 0] + [c for c in seen
                                                                if c not in weights])
    sums = np.zeros((len(order), 3), dtype=np.int64)
    index = {c: i for i, c in enumerate(order)}
    for row in df.itertuples(index=False):
        i = index.get(str(row.particle_type))
        if i is not None:
            sums[i] += (int(row.tp), int(row.fp), int(row.fn))
    tp, fp, fn = sums.T
    precision, recall, fb = fbeta(tp, fp, fn, beta)
    _, _, f1 = fbeta(tp, fp, fn, 1.0)
    total = float(sum(weights.values()))
    score = 0.0
    per_class: dict[str, dict] = {}
    for i, c in enumerate(order):
        w = weights.get(c)
        if w is not None:
            score += float(fb[i]) * float(w)
        per_class[c] = {"tp": int(tp[i]), "fp": int(fp[i]), "fn": int(fn[i]),
                        "precision": float(precision[i]), "recall": float(recall[i]),
                        "fbeta": float(fb[i]), "f1": float(f1[i]),
                        "weight": None if w is None else float(w)}
    return (score / total if total > 0 else 0.0), per_class


def _best_reference_scores(candidates: pd.DataFrame, references: pd.DataFrame,
                           distance: float) -> np.ndarray:
    """For each reference, the highest score of a candidate of the same experiment within
    ``distance`` Å (inclusive), ``-inf`` where none is."""
    from cryobench.metrics._matching import pairs_within

    best = np.full(len(references), -np.inf)
    if len(references) == 0 or len(candidates) == 0:
        return best
    exps = pd.Index(pd.unique(pd.concat([references["experiment"], candidates["experiment"]])
                              .astype(str)))
    ref_group = exps.get_indexer(references["experiment"].astype(str)).astype(np.int64)
    cand_group = exps.get_indexer(candidates["experiment"].astype(str)).astype(np.int64)
    ri, ci, _ = pairs_within(references[["x", "y", "z"]].to_numpy(np.float64), ref_group,
                             candidates[["x", "y", "z"]].to_numpy(np.float64), cand_group,
                             np.full(len(exps), float(distance)))
    scores = (candidates["score"].to_numpy(np.float64) if "score" in candidates.columns
              else np.ones(len(candidates)))
    np.maximum.at(best, ri, scores[ci])
    return best


def class_counts(candidates: pd.DataFrame, references: pd.DataFrame, distance: float
                 ) -> tuple[int, int, int]:
    """``(tp, fp, fn)`` of one class under the Kaggle CZII rule, summed over experiments.

    tp = references with at least one candidate of the same experiment within ``distance`` Å
    (inclusive); fp = candidates - tp; fn = references - tp. Candidates need no ``score``.
    """
    tp = int(np.isfinite(_best_reference_scores(candidates, references, distance)).sum())
    return tp, len(candidates) - tp, len(references) - tp


def czii_threshold_curve(candidates: pd.DataFrame, references: pd.DataFrame, distance: float
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The Kaggle-rule counts of one class at every candidate score level.

    Args:
        candidates: picks of one class (``experiment, x, y, z`` in Å and ``score``).
        references: the ground truth of the same class and experiments.
        distance: match distance in Å (``distance_multiplier x radius``), inclusive.

    Every candidate counts (one of an experiment without references of the class is a false
    positive), as the CZII score counts the candidates of the solution's experiments.

    Returns:
        ``(levels, tp, kept)``: the distinct candidate scores in descending order, and for each
        level the true positives (references with a candidate of at least that score in range)
        and the candidates kept (score at least the level); ``fn = len(references) - tp``.
    """
    scores = np.sort(candidates["score"].to_numpy(np.float64))
    levels = np.unique(scores)[::-1]
    kept = len(scores) - np.searchsorted(scores, levels, side="left")
    best = np.sort(_best_reference_scores(candidates, references, distance))
    tp = len(best) - np.searchsorted(best, levels, side="left")
    return levels, tp.astype(np.int64), kept.astype(np.int64)


def motor_outcomes(has_motor: Any, predicted: Any, within: Any) -> np.ndarray:
    """The BYU rule, per tomogram: ``"tp"``, ``"fp"``, ``"fn"`` or ``"tn"`` (elementwise).

    A motor with a prediction within the threshold is a TP; a motor with no prediction, or with
    one too far away, is an FN (never an FP); no motor and any prediction is an FP.
    """
    has_motor = np.asarray(has_motor, dtype=bool)
    positive = np.asarray(predicted, dtype=bool) & (np.asarray(within, dtype=bool) | ~has_motor)
    return np.where(has_motor, np.where(positive, "tp", "fn"), np.where(positive, "fp", "tn"))
