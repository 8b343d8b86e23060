"""Metric-gaming diagnostics for the CZII score: was the score bought with extra copies?

For every (experiment, type) the candidates are sorted into three kinds:

* **first**: the closest candidate of some reference within the threshold (ties: first row);
* **duplicate**: within the threshold of a reference, but the first of none ("a candidate
  beyond the first within the threshold of one reference");
* **unmatched**: within the threshold of no reference.

``duplicate_rate`` and ``unmatched_rate`` are shares of all scored candidates.
``score_deduplicated`` rescores after deleting the duplicates. Under the Kaggle rule every
matched reference keeps its first candidate, so true positives are unchanged and only false
positives fall: a large gap between ``score`` and ``score_deduplicated`` means many near-copies
were submitted. Under ``matching="one-to-one"`` the deduplicated candidates are matched again
with the same rule (a duplicate may have been the partner of a reference whose closest candidate
went to another one, so the deduplicated score can also be lower).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
import pandas as pd

from cryobench._threads import run_concurrently
from cryobench.metrics._matching import pairs_within
from cryobench.metrics.czii import (
    _count_table,
    _Prepared,
    _report_from_counts,
    check_score_params,
    prepare,
    resolve_radii_weights,
    tp_per_group,
)
from cryobench.metrics.results import ClassDiagnostics, Diagnostics

__all__ = ["gaming_diagnostics", "candidate_kinds", "group_kind_counts",
           "czii_score_with_diagnostics"]

_PARALLEL_MIN = 100_000  # candidates from which the two kinds of counts run side by side


def _closest(n_ref: int, ri: np.ndarray, ci: np.ndarray, d2: np.ndarray) -> np.ndarray:
    """Each reference's closest candidate among the pairs (ties: lowest row); -1 for none."""
    best_d2 = np.full(n_ref, np.inf)
    np.minimum.at(best_d2, ri, d2)
    closest = d2 == best_d2[ri]
    none = np.iinfo(np.int64).max
    best_c = np.full(n_ref, none, dtype=np.int64)
    np.minimum.at(best_c, ri[closest], ci[closest])
    best_c[best_c == none] = -1
    return best_c


def candidate_kinds(n_cand: int, ri: np.ndarray, ci: np.ndarray, d2: np.ndarray) -> np.ndarray:
    """Kind of each candidate from the in-range pairs: 0 unmatched, 1 first, 2 duplicate.

    The first candidate of a reference is its closest one; equal distances go to the lowest
    row. Computed with unbuffered ufunc reductions, O(number of pairs), no sort.
    """
    kind = np.zeros(n_cand, dtype=np.int8)
    if len(ri) == 0:
        return kind
    kind[ci] = 2
    best_c = _closest(int(ri.max()) + 1, ri, ci, d2)
    kind[best_c[best_c >= 0]] = 1
    return kind


def _one_each(idx: np.ndarray, n: int) -> np.ndarray:
    """A mask selecting exactly one occurrence of every distinct value of ``idx`` (< ``n``).

    Whichever occurrence a repeated fancy assignment keeps, reading it back matches only there.
    """
    pos = np.arange(len(idx), dtype=np.int64)
    owner = np.empty(n, dtype=np.int64)
    owner[idx] = pos
    return owner[idx] == pos


def group_kind_counts(prep: _Prepared, ri: np.ndarray, ci: np.ndarray,
                      d2: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per group: candidates, duplicates and unmatched candidates (see :func:`candidate_kinds`).

    Works on the pairs alone (no pass over all candidates): the matched candidates are the
    distinct ``ci``, the first ones the distinct closest candidates of the references.
    """
    g = prep.n_groups
    n_g = prep.cand_count
    if len(ri) == 0:
        return n_g, np.zeros(g, dtype=np.int64), n_g.copy()
    m = len(prep.cand_group)
    matched, first = (_matched_per_group, prep, ri, ci), (_first_per_group, prep, ri, ci, d2)
    if m >= _PARALLEL_MIN:
        matched_g, first_g = run_concurrently(matched, first)
    else:
        matched_g, first_g = matched[0](*matched[1:]), first[0](*first[1:])
    return n_g, matched_g - first_g, n_g - matched_g


def _matched_per_group(prep: _Prepared, ri: np.ndarray, ci: np.ndarray) -> np.ndarray:
    """Distinct candidates within range of some reference, per group."""
    keep = _one_each(ci, len(prep.cand_group))
    return np.bincount(prep.ref_group[ri[keep]], minlength=prep.n_groups)


def _first_per_group(prep: _Prepared, ri: np.ndarray, ci: np.ndarray,
                     d2: np.ndarray) -> np.ndarray:
    """Distinct candidates that are the closest of some reference, per group."""
    best_c = _closest(len(prep.ref_group), ri, ci, d2)
    refs = np.flatnonzero(best_c >= 0)
    keep = _one_each(best_c[refs], len(prep.cand_group))
    return np.bincount(prep.ref_group[refs[keep]], minlength=prep.n_groups)


def _rate(num: int, den: int) -> float:
    return num / den if den else 0.0


def gaming_diagnostics(
    submission: pd.DataFrame,
    solution: pd.DataFrame,
    *,
    radii: Mapping[str, float] | None = None,
    weights: Mapping[str, float] | None = None,
    beta: float = 4,
    distance_multiplier: float = 0.5,
    matching: str = "kaggle",
) -> Diagnostics:
    """Duplicate and unmatched shares of a CZII submission, and its deduplicated score.

    The scores use the same parameters as :func:`czii_score`, ``matching`` included: under
    ``"one-to-one"`` the deduplicated submission is matched again (removing a duplicate can
    then cost a true positive), under the Kaggle rule only false positives fall.
    """
    check_score_params(matching, beta, distance_multiplier)
    r, w = resolve_radii_weights(radii, weights)
    prep = prepare(submission, solution, r, distance_multiplier)
    ri, ci, d2 = pairs_within(prep.ref_xyz, prep.ref_group, prep.cand_xyz, prep.cand_group,
                              prep.group_radius)
    return diagnostics_from_pairs(prep, ri, ci, d2, w, beta, distance_multiplier,
                                  matching=matching)


def diagnostics_from_pairs(prep, ri, ci, d2, weights, beta, distance_multiplier,
                           counts: pd.DataFrame | None = None,
                           kind_counts: tuple[np.ndarray, ...] | None = None,
                           matching: str = "kaggle") -> Diagnostics:
    """Diagnostics from already computed in-range pairs (shared with the CLI).

    ``counts``: the per-(experiment, type) counts under ``matching`` when already computed;
    ``kind_counts``: :func:`group_kind_counts` when already computed.
    """
    n_g, dup_g, unm_g = kind_counts if kind_counts is not None else group_kind_counts(
        prep, ri, ci, d2)
    g = prep.n_groups

    if counts is None:
        counts = _count_table(prep, tp_per_group(prep, ri, ci, d2, matching))
    if matching == "kaggle":
        # every matched reference keeps its first candidate: only false positives fall
        dedup = counts.copy()
    else:
        # one-to-one: a duplicate may have been some reference's partner, so match again
        keep = candidate_kinds(len(prep.cand_group), ri, ci, d2)[ci] != 2
        dedup = _count_table(prep, tp_per_group(prep, ri[keep], ci[keep], d2[keep], matching))
    dedup["fp"] = dedup["fp"] - dup_g
    params = {"beta": beta, "weights": dict(weights)}
    score = _report_from_counts(counts, weights, beta, params, False).score
    score_dedup = _report_from_counts(dedup, weights, beta, params, False).score

    n_cls = len(prep.classes)
    per_class = {}
    for k, c in enumerate(prep.classes):
        sl = slice(k, g, n_cls)
        n, dup, unm = int(n_g[sl].sum()), int(dup_g[sl].sum()), int(unm_g[sl].sum())
        per_class[c] = ClassDiagnostics(
            n_candidates=n, n_matched=n - unm, n_duplicates=dup, n_unmatched=unm,
            duplicate_rate=_rate(dup, n), unmatched_rate=_rate(unm, n))
    n = int(n_g.sum())
    dup = int(dup_g.sum())
    unm = int(unm_g.sum())
    return Diagnostics(
        n_candidates=n, n_matched=n - unm, n_duplicates=dup, n_unmatched=unm,
        duplicate_rate=_rate(dup, n), unmatched_rate=_rate(unm, n), score=score,
        score_deduplicated=score_dedup, per_class=per_class,
        params={"distance_multiplier": distance_multiplier,
                "thresholds": dict(zip(prep.classes, prep.class_radius.tolist(), strict=True)),
                "beta": beta, "weights": dict(weights), "matching": matching})


def czii_score_with_diagnostics(
    submission: pd.DataFrame,
    solution: pd.DataFrame,
    *,
    radii: Mapping[str, float] | None = None,
    weights: Mapping[str, float] | None = None,
    beta: float = 4,
    distance_multiplier: float = 0.5,
    matching: str = "kaggle",
    per_experiment: bool = False,
):
    """``(czii_score(...), gaming_diagnostics(...))`` sharing one validation and pair search."""
    from cryobench.metrics.czii import score_pairs

    check_score_params(matching, beta, distance_multiplier)
    r, w = resolve_radii_weights(radii, weights)
    prep = prepare(submission, solution, r, distance_multiplier)
    ri, ci, d2 = pairs_within(prep.ref_xyz, prep.ref_group, prep.cand_xyz, prep.cand_group,
                              prep.group_radius)
    report = score_pairs(prep, ri, ci, d2, radii=r, weights=w, beta=beta,
                         distance_multiplier=distance_multiplier, matching=matching,
                         per_experiment=True)
    kind_counts = group_kind_counts(prep, ri, ci, d2)
    diag = diagnostics_from_pairs(prep, ri, ci, d2, w, beta, distance_multiplier,
                                  report.per_experiment, kind_counts, matching)
    if not per_experiment:
        report = dataclasses.replace(report, per_experiment=None)
    return report, diag
