"""The BYU motor score (Kaggle "BYU - Locating Bacterial Flagellar Motors 2025"), exactly.

One row per ``tomo_id`` in both tables; ``Motor axis 0/1/2`` are voxel coordinates (z, y, x).
A prediction with any axis equal to -1 means "no motor". The solution also has ``Voxel
spacing`` (Å per voxel) and ``Has motor`` (derived from the -1 rule when absent).

* motor and a prediction within ``distance_angstrom / spacing`` voxels (inclusive): TP;
* motor and no prediction: FN; motor and a prediction too far away: FN (not an FP);
* no motor and any prediction: FP; no motor and no prediction: TN.

F-beta (beta 2) over tomograms with scikit-learn's formula, as the official script computes it.
The tomo_id sets of submission and solution must be equal.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cryobench.errors import ConfigError, InputError
from cryobench.io.byu import BYU_AXES, validate_byu
from cryobench.metrics._fbeta import fbeta_sklearn, precision_recall_sklearn
from cryobench.metrics.counts import motor_outcomes
from cryobench.metrics.results import ByuReport

__all__ = ["byu_score", "byu_outcomes"]


def byu_outcomes(
    submission: pd.DataFrame, solution: pd.DataFrame, *, distance_angstrom: float = 1000
) -> pd.DataFrame:
    """Per-tomogram outcome table: ``tomo_id, has_motor, predicted, distance_voxels,
    threshold_voxels, outcome`` (``"tp"``, ``"fp"``, ``"fn"`` or ``"tn"``), sorted by tomo_id."""
    if not np.isfinite(distance_angstrom) or distance_angstrom < 0:
        raise ConfigError(f"distance must be a number >= 0 Å, got {distance_angstrom}")
    sol = validate_byu(solution, "solution", solution=True)
    sub = validate_byu(submission, "submission", solution=False)
    sol_ids = pd.Index(sol["tomo_id"])
    sub_ids = pd.Index(sub["tomo_id"])
    if not sol_ids.sort_values().equals(sub_ids.sort_values()):
        missing = sorted(set(sol_ids) - set(sub_ids))
        extra = sorted(set(sub_ids) - set(sol_ids))
        parts = []
        if missing:
            parts.append(f"{len(missing)} tomo_id(s) of the solution are missing "
                         f"(e.g. {missing[0]!r})")
        if extra:
            parts.append(f"{len(extra)} tomo_id(s) are not in the solution (e.g. {extra[0]!r})")
        raise InputError("tomo_id values do not match the solution: " + "; ".join(parts),
                         "submission")
    sol = sol.sort_values("tomo_id", kind="stable").reset_index(drop=True)
    sub = sub.set_index("tomo_id").loc[sol["tomo_id"]].reset_index()

    label = sol[list(BYU_AXES)].to_numpy(dtype=np.float64)
    pred = sub[list(BYU_AXES)].to_numpy(dtype=np.float64)
    predicted = ~(pred == -1).any(axis=1)
    has_motor = sol["Has motor"].to_numpy() == 1
    distance = np.linalg.norm(label - pred, axis=1)
    threshold = (float(distance_angstrom) * 1.0) / sol["Voxel spacing"].to_numpy(np.float64)
    outcome = motor_outcomes(has_motor, predicted, distance <= threshold)
    return pd.DataFrame({
        "tomo_id": sol["tomo_id"].to_numpy(),
        "has_motor": has_motor,
        "predicted": predicted,
        "distance_voxels": np.where(has_motor & predicted, distance, np.nan),
        "threshold_voxels": threshold,
        "outcome": outcome,
    })


def byu_score(
    submission: pd.DataFrame,
    solution: pd.DataFrame,
    *,
    beta: float = 2,
    distance_angstrom: float = 1000,
) -> ByuReport:
    """F-beta of motor detection over tomograms (official BYU semantics).

    Raises:
        InputError: missing columns, non-numeric or NaN values, duplicate tomo_ids, or
            submission/solution tomo_id sets that differ.
    """
    if not np.isfinite(beta) or beta <= 0:
        raise ConfigError(f"beta must be a positive number, got {beta}")
    per_tomo = byu_outcomes(submission, solution, distance_angstrom=distance_angstrom)
    outcome = per_tomo["outcome"].to_numpy()
    tp = int((outcome == "tp").sum())
    fp = int((outcome == "fp").sum())
    fn = int((outcome == "fn").sum())
    fbeta = float(fbeta_sklearn(tp, fp, fn, beta))
    precision, recall = (float(v) for v in precision_recall_sklearn(tp, fp, fn))
    params = {"metric": "byu", "beta": beta, "distance_angstrom": distance_angstrom,
              "n_tomograms": len(per_tomo)}
    return ByuReport(score=fbeta, tp=tp, fp=fp, fn=fn, precision=precision, recall=recall,
                     params=params, per_tomo=per_tomo)
