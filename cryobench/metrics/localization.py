"""Localization and orientation error of matched picks (CZII picks and BYU motors).

Detection scores say whether a pick is close enough; these figures say how close, and, when both
tables carry orientations (:data:`cryobench.coords.ROTATION_COLUMNS`), how well it is oriented.

**Matched picks (CZII).** Candidates and references are paired inside one (experiment, particle
type) with the CZII pair search (distance <= ``distance_multiplier x radius``, inclusive, the
exact test of :func:`cryobench.metrics.czii_score`):

* ``matching="kaggle"``: every reference with at least one candidate in range is matched to its
  nearest in-range candidate (ties: the earlier submission row). The number of matches per class
  is the Kaggle rule's tp; one candidate may be the match of two references (the rule's quirk),
  and then counts twice.
* ``matching="one-to-one"``: the pairs of a maximum one-to-one matching within the threshold with
  the smallest total distance (Hungarian), as the ``one-to-one`` CZII score counts them.

**Matched motors (BYU).** A tomogram whose motor has a prediction within ``distance_angstrom`` (a
BYU tp): the distance in Å (voxel distance x the solution's voxel spacing).

Per class: the median and 90th percentile of the centre distance in Å and ``n``; the orientation
error (:func:`cryobench.metrics.orientation.symmetric_angular_error`) with its median, 90th
percentile and the shares within 10, 20 and 30 degrees. Orientation figures are ``None`` (not 0)
when either table lacks the rotation columns; pairs whose rotation is NaN are left out of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cryobench.coords import ROTATION_COLUMNS, has_rotations
from cryobench.errors import ConfigError, InputError
from cryobench.metrics.orientation import (
    AngularErrorSummary,
    check_rotations,
    summarize_angular_errors,
    symmetric_angular_error,
    symmetry_group,
)

__all__ = [
    "DistanceSummary",
    "ClassLocalization",
    "LocalizationReport",
    "matched_pairs",
    "localization_orientation_report",
    "localization_from_prepared",
    "byu_localization_report",
]


@dataclass(frozen=True)
class DistanceSummary:
    """Centre distances of one class's matched picks (Å); NaN figures when ``n == 0``."""

    n: int
    median: float
    p90: float

    def to_dict(self) -> dict[str, Any]:
        from cryobench.metrics.results import to_jsonable

        return {"n": self.n, "median": to_jsonable(self.median), "p90": to_jsonable(self.p90)}


def summarize_distances(distances: np.ndarray) -> DistanceSummary:
    """Median and 90th percentile (linear interpolation) of the finite distances."""
    d = np.asarray(distances, dtype=np.float64).ravel()
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return DistanceSummary(0, float("nan"), float("nan"))
    return DistanceSummary(int(len(d)), float(np.median(d)), float(np.percentile(d, 90)))


@dataclass(frozen=True)
class ClassLocalization:
    """Localization (and orientation) error of one class."""

    distance: DistanceSummary
    orientation: AngularErrorSummary | None
    """None when either table carries no orientations."""
    symmetry: str
    """The point group used for the orientation error (a name, or ``"custom"``)."""

    def to_dict(self) -> dict[str, Any]:
        return {"distance": self.distance.to_dict(),
                "orientation": None if self.orientation is None else self.orientation.to_dict(),
                "symmetry": self.symmetry}


@dataclass(frozen=True)
class LocalizationReport:
    """Per-class centre distance and angular error of matched picks.

    Attributes:
        per_class: class name -> :class:`ClassLocalization` (every class of the solution).
        pairs: one row per matched pair: ``experiment, particle_type, reference_row,
            candidate_row, distance`` (Å) and ``angular_error`` (degrees; NaN without
            orientations). Rows index the tables as given (0-based positions).
        has_orientations: whether both tables carried the rotation columns.
        params: the parameters that produced the numbers.
    """

    per_class: dict[str, ClassLocalization]
    pairs: pd.DataFrame
    has_orientations: bool
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, with_pairs: bool = False) -> dict[str, Any]:
        """JSON-ready dict (NaN -> None); the pair table only with ``with_pairs``."""
        from cryobench.metrics.results import to_jsonable

        out: dict[str, Any] = {
            "per_class": {k: v.to_dict() for k, v in self.per_class.items()},
            "has_orientations": self.has_orientations,
            "params": to_jsonable(self.params),
        }
        if with_pairs:
            out["pairs"] = to_jsonable(self.pairs)
        return out


# ----- pairs ---------------------------------------------------------------------------------
def _nearest_per_reference(ri: np.ndarray, ci: np.ndarray, d2: np.ndarray
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each reference among ``ri``, its nearest candidate (ties: the lowest index); sorted
    by reference. (Two scatter-minimum passes instead of a three-key sort: the pairs are
    unique, so one pair per reference is left.)"""
    if len(ri) == 0:
        return ri, ci, d2
    n = int(ri.max()) + 1
    best = np.full(n, np.inf)
    np.minimum.at(best, ri, d2)
    near = np.flatnonzero(d2 == best[ri])
    first = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, ri[near], ci[near].astype(np.int64))
    keep = near[ci[near] == first[ri[near]]]
    keep = keep[np.argsort(ri[keep], kind="stable")]
    return ri[keep], ci[keep], d2[keep]


def _one_to_one_pairs(ri: np.ndarray, ci: np.ndarray, d2: np.ndarray, ref_group: np.ndarray,
                      group_radius: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pairs of a maximum one-to-one matching with the smallest total normalised distance.

    The same assignment as the one-to-one CZII score (per connected component of the pair
    graph, :func:`scipy.optimize.linear_sum_assignment` on distance / radius, a forbidden pair
    costing more than any matching of allowed ones).
    """
    from scipy.optimize import linear_sum_assignment
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if len(ri) == 0:
        return ri, ci, d2
    ur, r_local = np.unique(ri, return_inverse=True)
    uc, c_local = np.unique(ci, return_inverse=True)
    nr, nc = len(ur), len(uc)
    graph = coo_matrix((np.ones(len(ri)), (r_local, nr + c_local)), shape=(nr + nc, nr + nc))
    n_comp, label = connected_components(graph, directed=False)
    comp = label[r_local]
    star = np.minimum(np.bincount(label[:nr], minlength=n_comp),
                      np.bincount(label[nr:], minlength=n_comp)) == 1
    # a component with one reference or one candidate: its nearest pair (ties: lowest rows)
    easy = np.flatnonzero(star[comp])
    order = easy[np.lexsort((ci[easy], ri[easy], d2[easy], comp[easy]))]
    first = np.ones(len(order), dtype=bool)
    first[1:] = comp[order][1:] != comp[order][:-1]
    out_r, out_c, out_d = [ri[order[first]]], [ci[order[first]]], [d2[order[first]]]
    hard = np.flatnonzero(~star[comp])
    hard = hard[np.argsort(comp[hard], kind="stable")]
    for sel in np.split(hard, np.flatnonzero(np.diff(comp[hard])) + 1) if len(hard) else []:
        rr, rinv = np.unique(r_local[sel], return_inverse=True)
        cc, cinv = np.unique(c_local[sel], return_inverse=True)
        radius = float(group_radius[ref_group[ur[rr[0]]]])
        big = float(min(len(rr), len(cc)) + 1)
        cost = np.full((len(rr), len(cc)), big)
        cost[rinv, cinv] = np.sqrt(d2[sel]) / radius if radius > 0 else 0.0
        allowed = np.zeros_like(cost, dtype=bool)
        allowed[rinv, cinv] = True
        pair_d2 = np.zeros((len(rr), len(cc)))
        pair_d2[rinv, cinv] = d2[sel]
        a, b = linear_sum_assignment(cost)
        keep = allowed[a, b]
        a, b = a[keep], b[keep]
        out_r.append(ur[rr[a]])
        out_c.append(uc[cc[b]])
        out_d.append(pair_d2[a, b])
    return (np.concatenate(out_r).astype(np.int64), np.concatenate(out_c).astype(np.int64),
            np.concatenate(out_d).astype(np.float64))


def _pairs(submission: pd.DataFrame, solution: pd.DataFrame,
           radii: Mapping[str, float] | None, distance_multiplier: float, matching: str
           ) -> tuple[pd.DataFrame, list[str]]:
    from cryobench.metrics._matching import pairs_within
    from cryobench.metrics.czii import check_score_params, prepare, resolve_radii_weights

    check_score_params(matching, 4.0, distance_multiplier)
    r, _ = resolve_radii_weights(radii, None)
    prep = prepare(submission, solution, r, distance_multiplier)
    ri, ci, d2 = pairs_within(prep.ref_xyz, prep.ref_group, prep.cand_xyz, prep.cand_group,
                              prep.group_radius)
    return _matched(prep, ri, ci, d2, matching)


def _matched(prep: Any, ri: np.ndarray, ci: np.ndarray, d2: np.ndarray, matching: str
             ) -> tuple[pd.DataFrame, list[str]]:
    """The matched pairs' table from a prepared submission's in-range pairs."""
    if matching == "kaggle":
        ri, ci, d2 = _nearest_per_reference(ri, ci, d2)
    else:
        ri, ci, d2 = _one_to_one_pairs(ri, ci, d2, prep.ref_group, prep.group_radius)
    rows = ci if prep.cand_rows is None else prep.cand_rows[ci]
    n_cls = len(prep.classes)
    group = prep.ref_group[ri]
    # sorted by class name, experiment name, reference row (integer keys: no string sort)
    cls_rank = np.argsort(np.argsort(np.asarray(prep.classes, dtype=object), kind="stable"))
    exp_rank = np.argsort(np.argsort(np.asarray(prep.experiments, dtype=object),
                                     kind="stable"))
    order = np.lexsort((ri, exp_rank[group // n_cls], cls_rank[group % n_cls]))
    ri, rows, d2, group = ri[order], np.asarray(rows)[order], d2[order], group[order]
    table = pd.DataFrame({
        "experiment": pd.Series(np.asarray(prep.experiments, dtype=object)[group // n_cls],
                                dtype=object),
        "particle_type": pd.Series(np.asarray(prep.classes, dtype=object)[group % n_cls],
                                   dtype=object),
        "reference_row": ri.astype(np.int64),
        "candidate_row": np.asarray(rows, dtype=np.int64),
        "distance": np.sqrt(d2),
    })
    return table, list(prep.classes)


def matched_pairs(submission: pd.DataFrame, solution: pd.DataFrame,
                  radii: Mapping[str, float] | None = None, *,
                  distance_multiplier: float = 0.5, matching: str = "kaggle") -> pd.DataFrame:
    """The matched (reference, candidate) pairs of a CZII submission (see the module docstring).

    Returns a table ``experiment, particle_type, reference_row, candidate_row, distance`` (Å),
    sorted by class, experiment and reference row; rows are 0-based positions in the tables.

    Raises:
        InputError, ConfigError: as :func:`cryobench.metrics.czii_score` does for bad tables or
            parameters.
    """
    return _pairs(submission, solution, radii, distance_multiplier, matching)[0]


# ----- reports -------------------------------------------------------------------------------
def _rotations(table: pd.DataFrame, source: str) -> np.ndarray:
    """The ``(N, 3, 3)`` rotations of a table's rot_* columns, checked (InputError)."""
    cols = list(ROTATION_COLUMNS)
    raw = table[cols]
    values = raw.apply(pd.to_numeric, errors="coerce")
    bad = values.isna().to_numpy() & raw.notna().to_numpy()
    if bad.any():
        row, col = (int(v[0]) for v in np.nonzero(bad))
        raise InputError(f"column {cols[col]!r} has a non-numeric value (data row {row + 1})",
                         source)
    return check_rotations(values.to_numpy(np.float64), source)


def _groups(classes: list[str], symmetries: Mapping[str, Any] | None
            ) -> dict[str, tuple[str, np.ndarray]]:
    from cryobench.particles import czii_symmetries

    given = dict(czii_symmetries() if symmetries is None else symmetries)
    out = {}
    for c in classes:
        sym = given.get(c)
        sym = "C1" if sym is None else sym
        label = sym.strip().upper() if isinstance(sym, str) else "custom"
        out[c] = (label, symmetry_group(sym))
    return out


def localization_orientation_report(
    submission: pd.DataFrame,
    solution: pd.DataFrame,
    radii: Mapping[str, float] | None = None,
    symmetries: Mapping[str, str | np.ndarray] | None = None,
    *,
    distance_multiplier: float = 0.5,
    matching: str = "kaggle",
) -> LocalizationReport:
    """Centre distance (Å) and symmetry-aware angular error (degrees) of matched CZII picks.

    Args:
        submission, solution: picks tables (``experiment, particle_type, x, y, z`` in Å, and
            optionally the nine rotation columns).
        radii: class -> radius in Å (default: the six CZII classes).
        symmetries: class -> point group name or ``(K, 3, 3)`` matrices (default: the CZII
            catalogue's; a class not named is C1).
        distance_multiplier: match threshold as a fraction of the radius (0.5).
        matching: ``"kaggle"`` or ``"one-to-one"`` (see the module docstring).

    Raises:
        InputError: bad tables (as :func:`cryobench.metrics.czii_score`), or rotation columns
            that hold something other than rotations.
        ConfigError: bad parameters or an unknown symmetry.
    """
    pairs, classes = _pairs(submission, solution, radii, distance_multiplier, matching)
    return report_from_pairs(pairs, classes, submission, solution, symmetries,
                             distance_multiplier=distance_multiplier, matching=matching)


def localization_from_prepared(prep: Any, ri: np.ndarray, ci: np.ndarray, d2: np.ndarray,
                               submission: pd.DataFrame, solution: pd.DataFrame,
                               symmetries: Mapping[str, str | np.ndarray] | None = None, *,
                               distance_multiplier: float = 0.5, matching: str = "kaggle"
                               ) -> LocalizationReport:
    """:func:`localization_orientation_report` from the validated tables and in-range pairs
    the CZII score already computed (:func:`cryobench.metrics.czii.prepare`,
    :func:`~cryobench.metrics._matching.pairs_within`), so a caller that scores and localizes
    validates and searches once."""
    pairs, classes = _matched(prep, ri, ci, d2, matching)
    return report_from_pairs(pairs, classes, submission, solution, symmetries,
                             distance_multiplier=distance_multiplier, matching=matching)


def report_from_pairs(pairs: pd.DataFrame, classes: list[str], submission: pd.DataFrame,
                      solution: pd.DataFrame,
                      symmetries: Mapping[str, str | np.ndarray] | None, *,
                      distance_multiplier: float, matching: str) -> LocalizationReport:
    """The per-class report of a matched-pairs table (:func:`matched_pairs`'s)."""
    groups = _groups(classes, symmetries)
    oriented = has_rotations(submission) and has_rotations(solution)
    errors = np.full(len(pairs), np.nan)
    if oriented:
        sol_rot = _rotations(solution, "solution")
        sub_rot = _rotations(submission, "submission")
        for c in classes:
            sel = np.flatnonzero(pairs["particle_type"].to_numpy() == c)
            if len(sel):
                errors[sel] = symmetric_angular_error(
                    sol_rot[pairs["reference_row"].to_numpy()[sel]],
                    sub_rot[pairs["candidate_row"].to_numpy()[sel]], groups[c][1])
    pairs = pairs.assign(angular_error=errors)
    per_class = {}
    for c in classes:
        sel = pairs["particle_type"].to_numpy() == c
        per_class[c] = ClassLocalization(
            distance=summarize_distances(pairs["distance"].to_numpy()[sel]),
            orientation=summarize_angular_errors(errors[sel]) if oriented else None,
            symmetry=groups[c][0])
    params = {"metric": "localization", "matching": matching,
              "distance_multiplier": distance_multiplier,
              "symmetries": {c: groups[c][0] for c in classes},
              "n_pairs": len(pairs)}
    return LocalizationReport(per_class, pairs, oriented, params)


def byu_localization_report(submission: pd.DataFrame, solution: pd.DataFrame, *,
                            distance_angstrom: float = 1000,
                            particle_type: str = "flagellar-motor") -> LocalizationReport:
    """Centre distance (Å) of the BYU motors found (tp tomograms), as one class.

    The BYU tables carry no orientations, so the orientation figures are None.
    """
    from cryobench.io.byu import validate_byu
    from cryobench.metrics.byu import byu_outcomes

    if not np.isfinite(distance_angstrom) or distance_angstrom < 0:
        raise ConfigError(f"distance must be a number >= 0 Å, got {distance_angstrom}")
    outcomes = byu_outcomes(submission, solution, distance_angstrom=distance_angstrom)
    sol = validate_byu(solution, "solution", solution=True)
    spacing = sol.set_index("tomo_id")["Voxel spacing"].astype(np.float64)
    tp = outcomes[outcomes["outcome"] == "tp"]
    dist = tp["distance_voxels"].to_numpy(np.float64) * spacing.loc[tp["tomo_id"]].to_numpy()
    pairs = pd.DataFrame({"experiment": tp["tomo_id"].to_numpy(),
                          "particle_type": particle_type, "distance": dist,
                          "angular_error": np.nan})
    per_class = {particle_type: ClassLocalization(summarize_distances(dist), None, "C1")}
    params = {"metric": "localization", "rule": "byu", "distance_angstrom": distance_angstrom,
              "n_pairs": len(pairs)}
    return LocalizationReport(per_class, pairs.reset_index(drop=True), False, params)
