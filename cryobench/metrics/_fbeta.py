"""The one functional core for precision, recall and F-beta (every scorer reuses it).

Two formulas exist in the wild and they differ in the last bit of a float:

* :func:`prf_from_counts` follows the Kaggle CZII metric script: ``P = tp / (tp + fp)``,
  ``R = tp / (tp + fn)``, ``F = (1 + b²)·(P·R) / (b²·P + R)``, and 0 where a denominator is 0.
* :func:`fbeta_sklearn` follows :func:`sklearn.metrics.fbeta_score` (used by the BYU script):
  ``F = (1 + b²)·tp / (b²·(tp + fn) + (tp + fp))``, 0 where the denominator is 0.

Both operate elementwise on numpy arrays with float64 arithmetic in the same order as the
reference scripts, so the results are identical bit for bit.
"""

from __future__ import annotations

import numpy as np

__all__ = ["prf_from_counts", "fbeta_sklearn", "precision_recall_sklearn"]


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.zeros(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def prf_from_counts(
    tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, beta: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and F-beta exactly as the Kaggle CZII script computes them.

    ``fp`` may be negative (the Kaggle rule counts a candidate near two references twice);
    precision is then above 1 and so can F-beta be. Denominators ``tp + fp`` and ``tp + fn``
    that are not positive give 0, and F-beta is 0 when ``P + R`` is 0.
    """
    tp = np.asarray(tp, dtype=np.float64)
    fp = np.asarray(fp, dtype=np.float64)
    fn = np.asarray(fn, dtype=np.float64)
    precision = _safe_div(tp, tp + fp)
    recall = _safe_div(tp, tp + fn)
    b2 = float(beta) ** 2
    num = (1 + b2) * (precision * recall)
    den = b2 * precision + recall
    fbeta = np.zeros_like(num)
    np.divide(num, den, out=fbeta, where=(precision + recall) > 0)
    return precision, recall, fbeta


def precision_recall_sklearn(
    tp: np.ndarray, fp: np.ndarray, fn: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall with ``zero_division=0`` (scikit-learn's convention)."""
    tp = np.asarray(tp, dtype=np.float64)
    return _safe_div(tp, tp + np.asarray(fp)), _safe_div(tp, tp + np.asarray(fn))


def fbeta_sklearn(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, beta: float) -> np.ndarray:
    """F-beta as :func:`sklearn.metrics.fbeta_score` computes it (``zero_division=0``)."""
    tp = np.asarray(tp, dtype=np.float64)
    fp = np.asarray(fp, dtype=np.float64)
    fn = np.asarray(fn, dtype=np.float64)
    b2 = float(beta) ** 2
    return _safe_div((1 + b2) * tp, b2 * (tp + fn) + (tp + fp))
