"""What one record's predictions do against the ground truth: curves and per-pick outcomes.

* :func:`distance_curve`: F-beta per class and the weighted score as the match distance
  changes (CZII: ``0.1 ... 1.0 x radius``; BYU: ``0.1 ... 1.0 x`` the record's distance),
  each point the score :meth:`cryobench.metrics.registry.Metric.evaluate` gives with the
  record's own parameters and only the distance replaced (CZII: one validation and pair search
  for all distances, each scored by the metric core's ``score_pairs``; a test checks it equals
  ``evaluate`` at every distance);
* :func:`pr_curves`: precision and recall per class at every pick-score level (keeping the picks
  scoring at least that level), from the counting core's threshold counts
  (:func:`~cryobench.metrics.counts.czii_threshold_curve` under the Kaggle rule,
  :func:`~cryobench.metrics.counts.motor_outcomes` on the BYU per-tomogram table) or, for
  one-to-one matching, by scoring the kept picks through the registry at each level;
* :func:`pick_outcomes`: which picks are true positives, duplicates or false positives and which
  references were found, by the Kaggle rule (the pairs within each class's threshold, as the
  metric core finds them), for drawing a slice.

Nothing here counts matches itself: every number comes from the metric core.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cryobench.metrics.params import MetricParams
from cryobench.runner.record import RunRecord

__all__ = ["MULTIPLIERS", "DistanceCurve", "PRCurve", "distance_curve", "pr_curves",
           "pick_outcomes", "submission_of"]

MULTIPLIERS: tuple[float, ...] = tuple(round(0.1 * k, 1) for k in range(1, 11))
"""Distances of :func:`distance_curve`, as multiples of the radius (CZII) or of the record's
match distance (BYU)."""

MAX_LEVELS = 20
"""Most score levels scored one by one (one-to-one matching); quantiles beyond that."""


@dataclass
class DistanceCurve:
    """F-beta per class and the weighted score at each distance multiplier."""

    multipliers: np.ndarray
    fbeta: dict[str, np.ndarray]
    score: np.ndarray
    official: float
    """The multiplier the record was scored with (0.5 for CZII, 1.0 for BYU)."""
    unit: str
    """What the multiplier multiplies: ``radius`` or e.g. ``1000 Å``."""


@dataclass
class PRCurve:
    """Precision and recall of one class when keeping the picks scoring at least ``levels``."""

    levels: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    n_references: int
    n_picks: int = 0
    notes: list[str] = field(default_factory=list)


def submission_of(metric: Any, picks: pd.DataFrame, truth: Any) -> pd.DataFrame:
    """The metric's submission table of ``picks`` against ``truth`` (a GroundTruth)."""
    return metric.submission_from_picks(picks, truth.runs)


def _params(rec: RunRecord) -> MetricParams:
    return MetricParams.from_record(rec.params)


def distance_curve(rec: RunRecord, picks: pd.DataFrame, truth: Any,
                   multipliers: tuple[float, ...] = MULTIPLIERS) -> DistanceCurve:
    """F-beta per class and the score of ``picks`` at each distance multiplier.

    CZII: ``distance_multiplier = m`` (the threshold is ``m x radius``). BYU: the distance is
    ``m x`` the record's ``distance_angstrom`` (1000 Å by default), so ``m = 1`` is the rule.
    """
    from cryobench.metrics.registry import get_metric

    metric = get_metric(rec.metric)
    base = _params(rec)
    sub = submission_of(metric, picks, truth)
    per_class: dict[str, list[float]] = {}
    scores = []
    if rec.metric == "czii" and len(multipliers):
        for report in _czii_at_distances(sub, truth.table, base, multipliers):
            scores.append(float(report.score))
            for c, st in report.per_class.items():
                per_class.setdefault(c, []).append(float(st.fbeta))
    for m in (multipliers if rec.metric != "czii" else ()):
        p = (base.replace(distance_multiplier=float(m)) if rec.metric == "czii"
             else base.replace(distance_angstrom=float(m) * base.distance_angstrom))
        ev = metric.evaluate(sub, truth.table, p, per_experiment=False, diagnostics=False)
        scores.append(ev.score)
        if rec.metric == "czii":
            for c, st in ev.result.per_class.items():
                per_class.setdefault(c, []).append(float(st.fbeta))
        else:
            per_class.setdefault(_motor(rec), []).append(float(ev.score))
    official = base.distance_multiplier if rec.metric == "czii" else 1.0
    unit = "radius" if rec.metric == "czii" else f"{base.distance_angstrom:g} Å"
    return DistanceCurve(np.asarray(multipliers, dtype=np.float64),
                         {c: np.asarray(v) for c, v in per_class.items()},
                         np.asarray(scores), float(official), unit)


def _czii_at_distances(submission: pd.DataFrame, solution: pd.DataFrame, base: MetricParams,
                       multipliers: tuple[float, ...]) -> list[Any]:
    """The CZII report at each distance multiplier, as
    :meth:`~cryobench.metrics.registry.Metric.evaluate` gives it with only
    ``distance_multiplier`` replaced, from one validation and one pair search (at the largest
    multiplier; each smaller one keeps the pairs passing the pair search's own exact test
    ``d2 <= r * r`` with its thresholds, so every count is the same, bit for bit)."""
    import dataclasses

    from cryobench.metrics._matching import pairs_within
    from cryobench.metrics.czii import (
        check_score_params,
        prepare,
        resolve_radii_weights,
        score_pairs,
    )

    beta = base.beta_for("czii")
    for m in multipliers:
        check_score_params(base.matching, beta, float(m))
    radii, weights = resolve_radii_weights(base.radii, base.weights)
    prep = prepare(submission, solution, radii, float(max(multipliers)))
    ri, ci, d2 = pairs_within(prep.ref_xyz, prep.ref_group, prep.cand_xyz, prep.cand_group,
                              prep.group_radius)
    out = []
    for m in multipliers:
        class_radius = np.array([float(radii[c]) * float(m) for c in prep.classes])
        at = dataclasses.replace(prep, class_radius=class_radius)
        r = at.group_radius
        keep = np.flatnonzero(d2 <= (r * r)[prep.ref_group[ri]])
        out.append(score_pairs(at, ri[keep], ci[keep], d2[keep], radii=radii, weights=weights,
                               beta=beta, distance_multiplier=float(m),
                               matching=base.matching, per_experiment=False))
    return out


def _motor(rec: RunRecord) -> str:
    return next((c.particle_type for c in rec.counts), "flagellar-motor")


def pr_curves(rec: RunRecord, picks: pd.DataFrame, truth: Any) -> dict[str, PRCurve]:
    """Precision and recall per class at every pick-score level (``{}`` without a score)."""
    if "score" not in picks.columns or len(picks) == 0:
        return {}
    params = _params(rec)
    if rec.metric == "byu":
        return _byu_pr(rec, picks, truth, params)
    if params.matching == "kaggle":
        return _czii_pr(picks, truth.table, params)
    return _scored_pr(rec, picks, truth, params)


def _czii_pr(picks: pd.DataFrame, solution: pd.DataFrame, params: MetricParams
             ) -> dict[str, PRCurve]:
    from cryobench.metrics.counts import czii_threshold_curve
    from cryobench.metrics.czii import resolve_radii_weights

    radii, _ = resolve_radii_weights(params.radii, params.weights)
    exps = set(solution["experiment"].astype(str))
    # the score counts the candidates of the solution's experiments only
    mine = picks[picks["experiment"].astype(str).isin(exps)]
    out: dict[str, PRCurve] = {}
    by_type_p = dict(tuple(mine.groupby(mine["particle_type"].astype(str), sort=False)))
    by_type_s = dict(tuple(solution.groupby(solution["particle_type"].astype(str),
                                            sort=False)))
    for c in radii:
        cands = by_type_p.get(c, mine.iloc[:0])
        refs = by_type_s.get(c, solution.iloc[:0])
        if len(cands) == 0 and len(refs) == 0:
            continue
        if len(cands) == 0:
            out[c] = PRCurve(np.empty(0), np.empty(0), np.empty(0), len(refs), 0)
            continue
        levels, tp, kept = czii_threshold_curve(cands, refs, params.distance_multiplier
                                                * radii[c])
        precision = tp / np.maximum(kept, 1)
        recall = tp / len(refs) if len(refs) else np.zeros(len(tp))
        out[c] = PRCurve(levels, precision.astype(np.float64), recall.astype(np.float64),
                         len(refs), len(cands))
    return out


def _levels(scores: np.ndarray) -> np.ndarray:
    levels = np.unique(scores)[::-1]
    if len(levels) > MAX_LEVELS:
        levels = np.unique(np.quantile(scores, np.linspace(0, 1, MAX_LEVELS)))[::-1]
    return levels


def _byu_pr(rec: RunRecord, picks: pd.DataFrame, truth: Any, params: MetricParams
            ) -> dict[str, PRCurve]:
    """BYU: each tomogram's submission is its best-scoring pick, so keeping the picks scoring at
    least ``t`` keeps a tomogram's prediction while its best score clears ``t``. The outcome
    of every tomogram at every level is the BYU rule (:func:`~cryobench.metrics.counts.
    motor_outcomes`) on the per-tomogram table the metric computes once."""
    from cryobench.metrics.counts import fbeta, motor_outcomes
    from cryobench.metrics.registry import get_metric

    metric = get_metric("byu")
    ev = metric.evaluate(metric.submission_from_picks(picks, truth.runs), truth.table, params,
                         diagnostics=False)
    tomo = ev.result.per_tomo
    best = picks.groupby(picks["experiment"].astype(str))["score"].max()
    top = tomo["tomo_id"].astype(str).map(best).fillna(-np.inf).to_numpy(np.float64)
    within = (tomo["distance_voxels"] <= tomo["threshold_voxels"]).to_numpy()
    levels = np.unique(top[np.isfinite(top)])[::-1]
    tp, fp, fn = [], [], []
    for t in levels:
        oc = motor_outcomes(tomo["has_motor"].to_numpy(), tomo["predicted"].to_numpy()
                            & (top >= t), within)
        tp.append(int((oc == "tp").sum()))
        fp.append(int((oc == "fp").sum()))
        fn.append(int((oc == "fn").sum()))
    precision, recall, _ = fbeta(np.asarray(tp), np.asarray(fp), np.asarray(fn),
                                 params.beta_for("byu"), rule="byu")
    n_ref = int(tomo["has_motor"].sum())
    return {_motor(rec): PRCurve(levels, np.asarray(precision, dtype=np.float64),
                                 np.asarray(recall, dtype=np.float64), n_ref, len(picks))}


def _scored_pr(rec: RunRecord, picks: pd.DataFrame, truth: Any, params: MetricParams
               ) -> dict[str, PRCurve]:
    """CZII with one-to-one matching: the kept picks scored through the registry at each of at
    most :data:`MAX_LEVELS` levels."""
    from cryobench.metrics.registry import get_metric

    metric = get_metric(rec.metric)
    scores = picks["score"].to_numpy(np.float64)
    levels = _levels(scores)
    rows: dict[str, tuple[list[float], list[float]]] = {}
    n_ref: dict[str, int] = {}
    for t in levels:
        ev = metric.evaluate(picks[scores >= t], truth.table, params, per_experiment=False,
                             diagnostics=False)
        for c, st in ev.result.per_class.items():
            rows.setdefault(c, ([], []))
            rows[c][0].append(st.precision)
            rows[c][1].append(st.recall)
            n_ref[c] = st.tp + st.fn
    return {c: PRCurve(levels, np.asarray(p), np.asarray(r), n_ref[c], len(picks))
            for c, (p, r) in rows.items() if n_ref[c] or any(p)}


def pick_outcomes(picks: pd.DataFrame, solution: pd.DataFrame, params: MetricParams
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per pick ``"tp"``, ``"duplicate"``, ``"fp"`` (or ``""`` when not scored: an experiment
    or class the solution lacks), and per reference ``"tp"`` or ``"fn"``, by the Kaggle rule.

    A pick within its class's threshold (``distance_multiplier x radius``, inclusive) of a
    reference of the same experiment is matched: the closest pick of a reference is its true
    positive, any other matched pick a duplicate (a false positive in the Kaggle counts); a
    pick near no reference is a false positive; a reference with no pick in range is a false
    negative. The pairs come from the metric core (as the CZII score and its diagnostics find
    them).
    """
    from cryobench.metrics._matching import pairs_within
    from cryobench.metrics.czii import prepare, resolve_radii_weights
    from cryobench.metrics.diagnostics import candidate_kinds

    radii, _ = resolve_radii_weights(params.radii, params.weights)
    prep = prepare(picks, solution, radii, params.distance_multiplier)
    ri, ci, d2 = pairs_within(prep.ref_xyz, prep.ref_group, prep.cand_xyz, prep.cand_group,
                              prep.group_radius)
    kinds = candidate_kinds(len(prep.cand_group), ri, ci, d2)
    pick_kind = np.full(len(picks), "", dtype=object)
    rows = np.arange(len(picks)) if prep.cand_rows is None else prep.cand_rows
    pick_kind[rows] = np.array(["fp", "tp", "duplicate"], dtype=object)[kinds]
    ref_kind = np.full(len(solution), "fn", dtype=object)
    ref_kind[np.unique(ri)] = "tp"
    return pick_kind, ref_kind
