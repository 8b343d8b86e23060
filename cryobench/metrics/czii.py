"""The CZII score (Kaggle "CZII - CryoET Object Identification"), bit for bit.

Rules (see docs/metrics.md for worked examples):

* a candidate matches a reference of the same experiment and particle type when their distance
  is ≤ ``distance_multiplier × radius`` (inclusive);
* per (experiment, type): ``tp`` = number of distinct references with at least one candidate
  within the threshold, ``fp = candidates - tp`` (negative when one candidate sits near two
  references), ``fn = references - tp``;
* counts are summed over experiments per type; precision, recall, F-beta per type (beta 4);
* score = Σ weight·F-beta over the types present in the solution / Σ of **all** weights;
* submission rows of experiments absent from the solution are dropped; submission rows of a
  known type absent from the solution are ignored; an unknown type is an error; a solution with
  two rows at the same (experiment, x, y, z) is an error.

``matching="one-to-one"`` replaces the tp rule by a maximum one-to-one assignment within the
threshold (Hungarian, ties broken by total distance). It is *not* the Kaggle rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from cryobench._threads import run_concurrently, submit
from cryobench.errors import ConfigError, InputError
from cryobench.io.numbers import MAX_COORDINATE
from cryobench.io.picks import PICKS_COLUMNS, label_text, validate_picks
from cryobench.metrics._fbeta import prf_from_counts
from cryobench.metrics._matching import pairs_within
from cryobench.metrics.results import ClassStats, CziiReport
from cryobench.particles import czii_radii, czii_weights

__all__ = ["czii_score", "czii_score_from_counts", "resolve_radii_weights", "COUNT_COLUMNS"]

COUNT_COLUMNS = ("experiment", "particle_type", "tp", "fp", "fn")
_PARALLEL_MIN = 100_000  # rows from which the label columns are factorised on two threads
Matching = Literal["kaggle", "one-to-one"]


def resolve_radii_weights(
    radii: Mapping[str, float] | None, weights: Mapping[str, float] | None
) -> tuple[dict[str, float], dict[str, float]]:
    """Defaults and consistency checks for radii (Å) and weights.

    ``radii=None`` means the six CZII classes. ``weights=None`` gives each class its CZII
    weight, or 1 for a class outside the CZII catalogue. Radii and weights must name the same
    classes (as the Kaggle script asserts) and the weights must not sum to 0.
    """
    r = dict(czii_radii() if radii is None else {str(k): float(v) for k, v in radii.items()})
    if weights is None:
        cz = czii_weights()
        w = {k: float(cz.get(k, 1.0)) for k in r}
    else:
        w = {str(k): float(v) for k, v in weights.items()}
    if set(r) != set(w):
        only_r = sorted(set(r) - set(w))
        only_w = sorted(set(w) - set(r))
        raise ConfigError(
            "radii and weights must name the same particle types"
            + (f"; no weight for {', '.join(only_r)}" if only_r else "")
            + (f"; no radius for {', '.join(only_w)}" if only_w else "")
        )
    for k, v in r.items():
        if not np.isfinite(v) or v < 0:
            raise ConfigError(f"radius of {k!r} must be a finite number >= 0, got {v}")
    for k, v in w.items():
        if not np.isfinite(v) or v < 0:
            raise ConfigError(f"weight of {k!r} must be a finite number >= 0, got {v}")
    if sum(w.values()) <= 0:
        raise ConfigError("the weights sum to 0; at least one class needs a positive weight")
    return r, w


def _first_row(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0]) + 1


def _codes(series: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Integer codes (first-appearance order) and the string names of a label column.

    Factorising the column itself is fast for pyarrow-backed strings (no per-row Python
    objects); only the few distinct values are converted to ``str``.
    """
    codes, uniques = pd.factorize(series, sort=False)
    names = [label_text(u) for u in uniques]  # one label rule for every path (io.picks)
    if len(set(names)) != len(names):  # 1 and "1", or "TS_1" and " TS_1": the same label
        remap, names_idx = pd.factorize(np.array(names, dtype=object))
        codes = remap[codes]
        names = [str(u) for u in names_idx]
    return codes.astype(np.int64, copy=False), names


def _picks_arrays(
    df: pd.DataFrame, source: str
) -> tuple[np.ndarray, list[str], np.ndarray, list[str], np.ndarray, pd.DataFrame]:
    """Validated ``(exp_codes, exp_names, type_codes, type_names, xyz, df)`` of a picks table.

    Falls back to :func:`cryobench.io.validate_picks` (which converts and explains) whenever a
    column is not already numeric / string.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{source} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in PICKS_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(
            f"missing column(s) {', '.join(missing)}; expected {', '.join(PICKS_COLUMNS)}",
            source,
        )
    numeric = all(pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
                  for c in ("x", "y", "z"))
    ids_ok = all(
        (pd.api.types.is_string_dtype(df[c]) or pd.api.types.is_object_dtype(df[c]))
        and not df[c].isna().any()
        for c in ("experiment", "particle_type")
    )
    if not (numeric and ids_ok):
        df = validate_picks(df, source)
    xyz = df[["x", "y", "z"]].to_numpy(dtype=np.float64)
    finite = np.isfinite(xyz)
    if not finite.all():
        bad_col = ["x", "y", "z"][int(np.flatnonzero(~finite.all(axis=0))[0])]
        row = _first_row(~finite.all(axis=1))
        raise InputError(f"column {bad_col!r} has a NaN or infinite value (data row {row})",
                         source)
    big = np.abs(xyz) > MAX_COORDINATE
    if big.any():
        bad_col = ["x", "y", "z"][int(np.flatnonzero(big.any(axis=0))[0])]
        row = _first_row(big.any(axis=1))
        raise InputError(f"column {bad_col!r} has a value beyond ±{MAX_COORDINATE:g} Å "
                         f"(data row {row})", source)
    if len(df) >= _PARALLEL_MIN:  # two hash passes over string columns, side by side
        (exp_codes, exp_names), (typ_codes, typ_names) = run_concurrently(
            (_codes, df["experiment"]), (_codes, df["particle_type"]))
    else:
        exp_codes, exp_names = _codes(df["experiment"])
        typ_codes, typ_names = _codes(df["particle_type"])
    return exp_codes, exp_names, typ_codes, typ_names, xyz, df


def _unknown_types(names: list[str], known: pd.Index, source: str) -> None:
    bad = sorted(n for n, k in zip(names, known.get_indexer(names), strict=True) if k < 0)
    if bad:
        raise InputError(f"unknown particle type(s) {', '.join(map(repr, bad))}; "
                         f"known: {', '.join(known)}", source)


@dataclass
class _Prepared:
    """Solution and submission encoded as integer groups ``experiment * n_classes + class``."""

    experiments: list[str]
    classes: list[str]
    class_radius: np.ndarray  # threshold (Å) per class
    ref_xyz: np.ndarray
    ref_group: np.ndarray
    cand_xyz: np.ndarray
    cand_group: np.ndarray
    cand_rows: np.ndarray | None  # submission rows of the candidates (None: all rows)
    cand_score: np.ndarray | None
    n_dropped_foreign: int
    n_ignored_types: int
    cand_count: np.ndarray  # candidates per group

    @property
    def n_groups(self) -> int:
        return len(self.experiments) * len(self.classes)

    @property
    def group_radius(self) -> np.ndarray:
        return np.tile(self.class_radius, len(self.experiments))


def _solution_arrays(solution: pd.DataFrame, known: pd.Index):
    """Validated ``(exp_codes, exp_names, class_codes, class_names, xyz)`` of the solution.

    Besides the checks of every picks table: known particle types only, and no two rows at the
    same (experiment, x, y, z).
    """
    exp_codes, exp_names, cls_codes, cls_names, s_xyz, _ = _picks_arrays(solution, "solution")
    _unknown_types(cls_names, known, "solution")
    # a duplicated (experiment, x, y, z) row has a duplicated x: check those rows only
    maybe = np.flatnonzero(pd.Series(s_xyz[:, 0]).duplicated(keep=False).to_numpy())
    key = pd.DataFrame({"e": exp_codes[maybe], "x": s_xyz[maybe, 0], "y": s_xyz[maybe, 1],
                        "z": s_xyz[maybe, 2]})
    dup = key.duplicated().to_numpy()
    if dup.any():
        row = int(maybe[np.flatnonzero(dup)[0]]) + 1
        raise InputError(
            f"duplicate solution row: experiment {exp_names[exp_codes[row - 1]]!r} has two "
            f"particles at x, y, z = {s_xyz[row - 1, 0]}, {s_xyz[row - 1, 1]}, "
            f"{s_xyz[row - 1, 2]} (data row {row})", "solution")
    return exp_codes, exp_names, cls_codes, cls_names, s_xyz


def _encode_rows(out: np.ndarray, exp_codes: np.ndarray, type_codes: np.ndarray, n_types: int,
                 table: np.ndarray) -> np.ndarray:
    """Write each row's group (``table[experiment, type]``, -1: not scored) into ``out``.

    Returns the row count of every (experiment, type) pair of codes.
    """
    code = exp_codes * n_types
    code += type_codes
    np.take(table, code, out=out)
    return np.bincount(code, minlength=len(table))


def prepare(
    submission: pd.DataFrame,
    solution: pd.DataFrame,
    radii: Mapping[str, float],
    distance_multiplier: float,
    *,
    need_score: bool = False,
) -> _Prepared:
    """Validate both tables and encode them (shared by the CZII score, diagnostics, mAP).

    Errors in the solution are reported before errors in the submission. A large submission's
    label columns are factorised while another thread validates the solution.
    """
    known = pd.Index(list(radii))
    if isinstance(submission, pd.DataFrame) and len(submission) >= _PARALLEL_MIN:
        sol_future = submit(_solution_arrays, solution, known)
        try:
            sub_parts = _picks_arrays(submission, "submission")
        except Exception:
            sol_future.result()  # the solution's error, if any, wins
            raise
        exp_codes, exp_names, cls_codes, cls_names, s_xyz = sol_future.result()
    else:
        exp_codes, exp_names, cls_codes, cls_names, s_xyz = _solution_arrays(solution, known)
        sub_parts = _picks_arrays(submission, "submission")
    c_exp_c, c_exp_names, c_typ_c, c_typ_names, c_xyz, sub_df = sub_parts
    n_cls = len(cls_names)
    ref_group = exp_codes * n_cls + cls_codes

    # submission: drop foreign experiments, then unknown types are an error. Everything is
    # decided on the small (submission experiment x submission type) table, then applied to
    # the rows with one gather.
    n_se, n_st = len(c_exp_names), len(c_typ_names)
    exp_map = pd.Index(exp_names).get_indexer(c_exp_names)  # -1: foreign experiment
    cls_map = pd.Index(cls_names).get_indexer(c_typ_names)  # -1: type not in the solution
    in_split = exp_map >= 0
    table = np.where(in_split[:, None] & (cls_map >= 0)[None, :],
                     exp_map[:, None] * n_cls + cls_map[None, :], -1).astype(np.int64)
    cand_group = np.empty(len(c_exp_c), dtype=np.int64)
    halves = 2 if len(c_exp_c) >= _PARALLEL_MIN else 1
    bounds = np.linspace(0, len(c_exp_c), halves + 1).astype(int)
    pair_count = sum(run_concurrently(*[
        (_encode_rows, cand_group[a:b], c_exp_c[a:b], c_typ_c[a:b], n_st, table.ravel())
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)])).reshape(n_se, n_st)
    n_foreign = int(pair_count[~in_split].sum())
    present = pair_count[in_split].sum(axis=0) > 0
    _unknown_types([n for n, p in zip(c_typ_names, present, strict=True) if p], known,
                   "submission")
    n_ignored = int(pair_count[np.ix_(in_split, cls_map < 0)].sum())
    valid = table >= 0  # candidates per group, from the small table instead of the rows
    cand_count = np.bincount(table[valid], weights=pair_count[valid],
                             minlength=len(exp_names) * n_cls).astype(np.int64)
    rows = None
    if n_foreign or n_ignored:
        rows = np.flatnonzero(cand_group >= 0)
        cand_group, c_xyz = cand_group[rows], c_xyz[rows]

    score = None
    if need_score:
        if "score" not in sub_df.columns:
            raise InputError("missing column 'score' (confidence), needed to rank picks",
                             "submission")
        score = pd.to_numeric(sub_df["score"], errors="coerce").to_numpy(dtype=np.float64)
        if not np.isfinite(score).all():
            raise InputError("column 'score' has a NaN, infinite or non-numeric value "
                             f"(data row {_first_row(~np.isfinite(score))})", "submission")
        if rows is not None:
            score = score[rows]

    class_radius = np.array([float(radii[c]) * distance_multiplier for c in cls_names])
    return _Prepared(
        experiments=exp_names, classes=cls_names,
        class_radius=class_radius, ref_xyz=s_xyz, ref_group=ref_group, cand_xyz=c_xyz,
        cand_group=cand_group, cand_rows=rows, cand_score=score,
        n_dropped_foreign=n_foreign, n_ignored_types=n_ignored, cand_count=cand_count,
    )


def _one_to_one_tp(ri: np.ndarray, ci: np.ndarray, d2: np.ndarray, ref_group: np.ndarray,
                   n_groups: int, group_radius: np.ndarray) -> np.ndarray:
    """Per-group size of a maximum one-to-one matching of the pairs (min total distance)."""
    from scipy.optimize import linear_sum_assignment
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    tp = np.zeros(n_groups, dtype=np.int64)
    if len(ri) == 0:
        return tp
    ur, r_local = np.unique(ri, return_inverse=True)
    uc, c_local = np.unique(ci, return_inverse=True)
    nr, nc = len(ur), len(uc)
    graph = coo_matrix((np.ones(len(ri)), (r_local, nr + c_local)), shape=(nr + nc, nr + nc))
    n_comp, label = connected_components(graph, directed=False)
    comp_of_pair = label[r_local]
    refs_per_comp = np.bincount(label[:nr], minlength=n_comp)
    cands_per_comp = np.bincount(label[nr:], minlength=n_comp)
    size = np.minimum(refs_per_comp, cands_per_comp)  # exact when one side has one node
    group_of_comp = np.zeros(n_comp, dtype=np.int64)
    group_of_comp[label[:nr]] = ref_group[ur]
    hard = np.flatnonzero(size > 1)
    if len(hard):
        order = np.argsort(comp_of_pair, kind="stable")
        bounds = np.searchsorted(comp_of_pair[order], np.append(hard, hard + 1))
        for k, comp in enumerate(hard):
            sel = order[bounds[k]:bounds[len(hard) + k]]
            rr, rinv = np.unique(r_local[sel], return_inverse=True)
            cc, cinv = np.unique(c_local[sel], return_inverse=True)
            radius = float(group_radius[group_of_comp[comp]])
            big = float(min(len(rr), len(cc)) + 1)
            cost = np.full((len(rr), len(cc)), big)
            cost[rinv, cinv] = np.sqrt(d2[sel]) / radius if radius > 0 else 0.0
            allowed = np.zeros_like(cost, dtype=bool)
            allowed[rinv, cinv] = True
            a, b = linear_sum_assignment(cost)
            size[comp] = int(allowed[a, b].sum())
    np.add.at(tp, group_of_comp, size)
    return tp


def _count_table(prep: _Prepared, tp_group: np.ndarray) -> pd.DataFrame:
    g = prep.n_groups
    n_ref = np.bincount(prep.ref_group, minlength=g)
    n_cand = prep.cand_count
    n_cls = len(prep.classes)
    return pd.DataFrame({
        "experiment": np.repeat(np.array(prep.experiments, dtype=object), n_cls),
        "particle_type": np.tile(np.array(prep.classes, dtype=object), len(prep.experiments)),
        "tp": tp_group.astype(np.int64),
        "fp": (n_cand - tp_group).astype(np.int64),
        "fn": (n_ref - tp_group).astype(np.int64),
    })


def kaggle_tp(prep: _Prepared, ri: np.ndarray) -> np.ndarray:
    """Per-group number of distinct references with at least one candidate in range."""
    matched = np.zeros(len(prep.ref_group), dtype=bool)
    matched[ri] = True
    return np.bincount(prep.ref_group[matched], minlength=prep.n_groups)


def czii_score(
    submission: pd.DataFrame,
    solution: pd.DataFrame,
    *,
    radii: Mapping[str, float] | None = None,
    weights: Mapping[str, float] | None = None,
    beta: float = 4,
    distance_multiplier: float = 0.5,
    matching: Matching = "kaggle",
    per_experiment: bool = False,
) -> CziiReport:
    """Score picks with the CZII rule (Kaggle semantics by default).

    Args:
        submission: ``experiment, particle_type, x, y, z`` (Å); other columns are ignored.
        solution: the reference particles, same columns.
        radii: particle radius in Å per type (default: the six CZII classes).
        weights: score weight per type (default: CZII weights; 1 for other classes).
        beta: F-beta's beta (4).
        distance_multiplier: match threshold as a fraction of the radius (0.5), inclusive.
        matching: ``"kaggle"`` (the official rule) or ``"one-to-one"`` (Hungarian within the
            threshold; not the Kaggle rule).
        per_experiment: keep the per-(experiment, type) counts in the report.

    Raises:
        InputError: missing columns, non-finite coordinates, unknown particle types, duplicate
            solution rows (``path`` is ``"submission"`` or ``"solution"``).
        ConfigError: inconsistent radii/weights, bad beta, multiplier or matching.
    """
    check_score_params(matching, beta, distance_multiplier)
    r, w = resolve_radii_weights(radii, weights)
    prep = prepare(submission, solution, r, distance_multiplier)
    ri, ci, d2 = pairs_within(prep.ref_xyz, prep.ref_group, prep.cand_xyz, prep.cand_group,
                              prep.group_radius)
    return score_pairs(prep, ri, ci, d2, radii=r, weights=w, beta=beta,
                       distance_multiplier=distance_multiplier, matching=matching,
                       per_experiment=per_experiment)


def tp_per_group(prep: _Prepared, ri: np.ndarray, ci: np.ndarray, d2: np.ndarray,
                 matching: Matching) -> np.ndarray:
    """Per-group true positives of the in-range pairs under ``matching``."""
    if matching == "kaggle":
        return kaggle_tp(prep, ri)
    return _one_to_one_tp(ri, ci, d2, prep.ref_group, prep.n_groups, prep.group_radius)


def check_score_params(matching: str, beta: float, distance_multiplier: float) -> None:
    """Raise :class:`ConfigError` for an unknown matching, a bad beta or multiplier."""
    if matching not in ("kaggle", "one-to-one"):
        raise ConfigError(f"unknown matching {matching!r}; use 'kaggle' or 'one-to-one'")
    if not np.isfinite(distance_multiplier) or distance_multiplier < 0:
        raise ConfigError(f"distance multiplier must be >= 0, got {distance_multiplier}")
    if not np.isfinite(beta) or beta <= 0:
        raise ConfigError(f"beta must be a positive number, got {beta}")


def score_pairs(prep: _Prepared, ri: np.ndarray, ci: np.ndarray, d2: np.ndarray, *,
                radii: Mapping[str, float], weights: Mapping[str, float], beta: float,
                distance_multiplier: float, matching: Matching,
                per_experiment: bool) -> CziiReport:
    """The CZII report from prepared inputs and their in-range pairs (see :func:`czii_score`)."""
    counts = _count_table(prep, tp_per_group(prep, ri, ci, d2, matching))
    params = {
        "metric": "czii",
        "radii": dict(radii),
        "weights": dict(weights),
        "beta": beta,
        "distance_multiplier": distance_multiplier,
        "thresholds": dict(zip(prep.classes, prep.class_radius.tolist(), strict=True)),
        "matching": matching,
        "n_experiments": len(prep.experiments),
        "n_references": len(prep.ref_group),
        "n_candidates": len(prep.cand_group),
        "n_dropped_foreign_experiment_rows": prep.n_dropped_foreign,
        "n_ignored_rows_of_types_absent_from_solution": prep.n_ignored_types,
    }
    return _report_from_counts(counts, weights, beta, params, per_experiment)


def _report_from_counts(counts: pd.DataFrame, weights: Mapping[str, float], beta: float,
                        params: dict[str, Any], per_experiment: bool) -> CziiReport:
    # per-class sums in order of first appearance (a groupby(sort=False) without its overhead)
    codes, names = pd.factorize(counts["particle_type"], sort=False)
    keep = codes >= 0
    sums = []
    for col in ("tp", "fp", "fn"):
        total = np.zeros(len(names), dtype=np.int64)
        np.add.at(total, codes[keep], counts[col].to_numpy(dtype=np.int64)[keep])
        sums.append(total)
    tp, fp, fn = sums
    precision, recall, fbeta = prf_from_counts(tp, fp, fn, beta)
    _, _, f1 = prf_from_counts(tp, fp, fn, 1)
    per_class: dict[str, ClassStats] = {}
    aggregate = 0.0
    for i, name in enumerate(names):
        wt = weights[name]
        aggregate += float(fbeta[i]) * wt  # the Kaggle script's order of summation
        per_class[str(name)] = ClassStats(
            tp=int(tp[i]), fp=int(fp[i]), fn=int(fn[i]), precision=float(precision[i]),
            recall=float(recall[i]), fbeta=float(fbeta[i]), f1=float(f1[i]), weight=wt)
    score = aggregate / sum(weights.values())
    return CziiReport(score=score, per_class=per_class,
                      per_experiment=counts.reset_index(drop=True) if per_experiment else None,
                      params=params)


def czii_score_from_counts(
    counts: pd.DataFrame,
    weights: Mapping[str, float] | None = None,
    beta: float = 4,
) -> CziiReport:
    """Recompute a CZII report from per-(experiment, type) counts (e.g. stored in a run record).

    ``counts`` has columns ``experiment, particle_type, tp, fp, fn``. Classes are aggregated in
    order of first appearance, which is how :func:`czii_score` lays out its
    ``per_experiment`` table, so ``czii_score_from_counts(report.per_experiment)`` reproduces
    ``report.score`` exactly.
    """
    missing = [c for c in COUNT_COLUMNS if c not in counts.columns]
    if missing:
        raise InputError(f"counts table lacks column(s) {', '.join(missing)}", "counts")
    if weights is None:
        cz = czii_weights()
        present = [str(k) for k in dict.fromkeys(counts["particle_type"])]
        # the CZII weights (sum 7) for CZII classes; otherwise 1 per class present
        weights = cz if set(present) <= set(cz) else {k: float(cz.get(k, 1.0)) for k in present}
    w = {str(k): float(v) for k, v in weights.items()}
    unknown = sorted(set(map(str, counts["particle_type"])) - set(w))
    if unknown:
        raise InputError(f"unknown particle type(s) {', '.join(map(repr, unknown))}; "
                         f"known: {', '.join(w)}", "counts")
    if sum(w.values()) <= 0:
        raise ConfigError("the weights sum to 0; at least one class needs a positive weight")
    table = counts[list(COUNT_COLUMNS)].copy()
    for c in ("tp", "fp", "fn"):
        table[c] = pd.to_numeric(table[c], errors="raise").astype(np.int64)
    params = {"metric": "czii", "weights": w, "beta": beta, "source": "counts",
              "n_experiments": int(table["experiment"].nunique())}
    return _report_from_counts(table, w, beta, params, per_experiment=True)
