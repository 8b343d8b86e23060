"""Bootstrap confidence intervals over experiments (tomograms), seeded and percentile-based.

Each resample draws the solution's groups (experiments, tomograms, images) with replacement;
a group drawn twice enters twice, under distinct names, with its picks. The interval is the
``(1 - confidence)/2`` and ``(1 + confidence)/2`` percentiles (numpy's default linear
interpolation) of the resampled scores.

For :func:`czii_score` and :func:`byu_score` (also wrapped in :func:`functools.partial`) the
resamples are computed from per-group counts in one vectorised step; this gives the same numbers
as rescoring every resampled table (tested), only much faster.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cryobench.errors import ConfigError, InputError
from cryobench.metrics._fbeta import fbeta_sklearn, prf_from_counts
from cryobench.metrics.results import BootstrapResult, PairedBootstrapResult

__all__ = ["bootstrap_ci", "paired_bootstrap", "bootstrap_czii_report", "resample_indices",
           "score_of", "describe_metric", "SignFlipResult", "sign_flip_counts",
           "paired_sign_flip"]

MetricFn = Callable[[pd.DataFrame, pd.DataFrame], Any]


def score_of(result: Any) -> float:
    """The headline number of a metric's result: a float, or a report's ``score``."""
    if hasattr(result, "score"):
        return float(result.score)
    return float(result)


def describe_metric(metric_fn: MetricFn) -> tuple[str, dict[str, Any]]:
    """``(name, keyword arguments)`` of a metric function, through :func:`functools.partial`."""
    params: dict[str, Any] = {}
    fn = metric_fn
    while isinstance(fn, functools.partial):
        params = {**fn.keywords, **params}  # an outer partial overrides an inner one
        fn = fn.func
    name = getattr(fn, "__qualname__", None) or type(fn).__name__
    return name, params


@dataclass(frozen=True)
class SignFlipResult:
    """A two-sided sign-flip (paired permutation) test of "A and B do not differ".

    Under the null that, group by group (tomogram by tomogram), the two submissions' outcomes are
    exchangeable, swapping them on any set of groups leaves the data as likely, so
    ``p = #{flips with |difference| ≥ observed} / #flips`` is exact whatever the score (a
    ratio of micro-summed counts needs no additivity). Swapping every group negates the
    difference, so flips come in pairs; with ``exact`` all ``2^(n-1)`` pairs are enumerated and
    ``min_p = 2/2^n``. Otherwise ``n_flips`` random flips are drawn and
    ``p = (1 + #) / (1 + n_flips)``, ``min_p = 1/(1 + n_flips)``. ``p`` is never below ``min_p``.

    Attributes:
        statistic: the observed difference A - B.
        n_groups: the groups (experiments) flipped; ``n_models``: the models (seeds) paired in
            each group.
    """

    statistic: float
    p_value: float
    min_p: float
    n_flips: int
    exact: bool
    n_groups: int
    n_models: int = 1


def _flip_bits(start: int, stop: int, n: int) -> np.ndarray:
    """Flip patterns ``start..stop-1`` of groups 1..n-1 (group 0 is never swapped)."""
    ints = np.arange(start, stop, dtype=np.int64)
    out = np.zeros((len(ints), n), dtype=np.int8)
    for j in range(1, n):
        out[:, j] = (ints >> (j - 1)) & 1
    return out


def _flip_patterns(n: int, max_exact: int, n_flips: int, seed: int, chunk: int):
    """``(exact, total, iterator of 0/1 pattern blocks)``: every flip pair, or random flips."""
    n_pairs = 2 ** (n - 1)
    if n_pairs <= max_exact:
        return True, n_pairs, (_flip_bits(s, min(n_pairs, s + chunk), n)
                               for s in range(0, n_pairs, chunk))
    if n_flips < 1:
        raise ConfigError(f"n_flips must be >= 1, got {n_flips}")
    rng = np.random.default_rng(seed)
    return False, n_flips, (rng.integers(0, 2, size=(min(chunk, n_flips - s), n), dtype=np.int8)
                            for s in range(0, n_flips, chunk))


def _flip_p(observed: float, diffs, exact: bool, total: int) -> tuple[float, float]:
    tol = 1e-9 * max(1.0, abs(observed))
    hits = sum(int(np.count_nonzero(np.abs(d) >= abs(observed) - tol)) for d in diffs)
    if exact:
        return hits / total, 1.0 / total
    return (1 + hits) / (1 + total), 1.0 / (1 + total)


def sign_flip_counts(counts_a: np.ndarray, counts_b: np.ndarray,
                     score: Callable[[np.ndarray], np.ndarray], *, max_exact: int = 2**16,
                     n_flips: int = 9999, seed: int = 0, chunk: int = 8192) -> SignFlipResult:
    """Sign-flip test on counts ``(models, groups, classes, 3)`` of A and B (same shape).

    ``score`` maps micro-summed counts ``(..., classes, 3)`` to scores ``(...)``; the statistic
    is the mean over models of A's score minus B's. A flip swaps A's and B's counts of every
    model on the flipped groups (model i of A with model i of B). ``max_exact`` caps the flip
    pairs enumerated (default ``2^16``: exact up to 17 groups); beyond, ``n_flips`` random flips
    from ``seed``. See :class:`SignFlipResult`.
    """
    ca = np.asarray(counts_a, dtype=np.float64)
    cb = np.asarray(counts_b, dtype=np.float64)
    if ca.shape != cb.shape or ca.ndim != 4 or ca.shape[-1] != 3:
        raise ConfigError(f"counts of A and B must share a (models, groups, classes, 3) shape, "
                          f"got {ca.shape} and {cb.shape}")
    m, n, k, _ = ca.shape
    if n == 0 or m == 0:
        raise ConfigError("a sign-flip test needs at least one group and one model")
    delta = (cb - ca).transpose(1, 0, 2, 3).reshape(n, m * k * 3)  # (groups, models·classes·3)
    sa, sb = ca.sum(axis=1), cb.sum(axis=1)

    def diffs(flips: np.ndarray) -> np.ndarray:
        shift = (flips.astype(np.float64) @ delta).reshape(-1, m, k, 3)
        return score(sa[None] + shift).mean(axis=1) - score(sb[None] - shift).mean(axis=1)

    observed = float(diffs(np.zeros((1, n)))[0])
    exact, total, blocks = _flip_patterns(n, max_exact, n_flips, seed, chunk)
    p, min_p = _flip_p(observed, (diffs(f) for f in blocks), exact, total)
    return SignFlipResult(observed, p, min_p, total, exact, n, m)


def _n_nonfinite(samples: np.ndarray) -> int:
    return int(np.count_nonzero(~np.isfinite(samples)))


def resample_indices(n_groups: int, n_resamples: int, seed: int) -> np.ndarray:
    """``(n_resamples, n_groups)`` group indices drawn with replacement (numpy PCG64)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_groups, size=(n_resamples, n_groups))


def _check(n_resamples: int, confidence: float) -> None:
    if int(n_resamples) < 1:
        raise ConfigError(f"n_resamples must be >= 1, got {n_resamples}")
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence}")


def _groups(solution: pd.DataFrame, group_col: str) -> list:
    if group_col not in solution.columns:
        raise InputError(f"missing column {group_col!r} to resample by", "solution")
    values = pd.unique(solution[group_col].astype(str))
    if len(values) == 0:
        raise InputError("solution is empty: nothing to resample", "solution")
    return sorted(values)


def _unwrap(metric_fn: MetricFn) -> tuple[Callable, dict[str, Any]]:
    kwargs: dict[str, Any] = {}
    fn = metric_fn
    while isinstance(fn, functools.partial):
        if fn.args:
            return fn, {}
        kwargs = {**fn.keywords, **kwargs}
        fn = fn.func
    return fn, kwargs


def _fast_scores(metric_fn: MetricFn, submission: pd.DataFrame, solution: pd.DataFrame,
                 groups: list, idx: np.ndarray, group_col: str) -> tuple[float, np.ndarray] | None:
    """Estimate and resampled scores from per-group counts, or None if not a counts metric."""
    from cryobench.metrics.byu import byu_outcomes, byu_score
    from cryobench.metrics.czii import czii_score

    fn, kwargs = _unwrap(metric_fn)
    n = len(groups)
    weights_matrix = _multiplicity(idx, n)

    if fn is czii_score and group_col == "experiment":
        report = czii_score(submission, solution, **{**kwargs, "per_experiment": True})
        return report.score, _czii_resampled(report, groups, weights_matrix)

    if fn is byu_score and group_col == "tomo_id":
        beta = kwargs.get("beta", 2)
        report = byu_score(submission, solution, **kwargs)
        per = byu_outcomes(submission, solution,
                           distance_angstrom=kwargs.get("distance_angstrom", 1000))
        pos = {g: i for i, g in enumerate(groups)}
        order = per["tomo_id"].map(pos).to_numpy()
        oc = per["outcome"].to_numpy()
        vec = {k: np.zeros(n, dtype=np.int64) for k in ("tp", "fp", "fn")}
        for k in vec:
            vec[k][order] = (oc == k).astype(np.int64)
        tp, fp, fn_ = (weights_matrix @ vec[k] for k in ("tp", "fp", "fn"))
        return report.score, fbeta_sklearn(tp, fp, fn_, beta)
    return None


def _czii_resampled(report, groups: list, weights_matrix: np.ndarray) -> np.ndarray:
    """Resampled CZII scores from a report's per-experiment counts (one matrix product)."""
    counts = report.per_experiment
    classes = list(report.per_class)
    n = len(groups)
    pos = {g: i for i, g in enumerate(groups)}
    cls_pos = {c: j for j, c in enumerate(classes)}
    gi = counts["experiment"].astype(str).map(pos).to_numpy()
    cj = counts["particle_type"].map(cls_pos).to_numpy()
    mats = {}
    for k in ("tp", "fp", "fn"):
        mats[k] = np.zeros((n, len(classes)), dtype=np.int64)
        mats[k][gi, cj] = counts[k].to_numpy()
    tp, fp, fn = (weights_matrix @ mats[k] for k in ("tp", "fp", "fn"))
    _, _, fbeta = prf_from_counts(tp, fp, fn, report.params["beta"])
    w = report.params["weights"]
    agg = np.zeros(weights_matrix.shape[0])
    for j, c in enumerate(classes):  # same order of summation as the report
        agg = agg + fbeta[:, j] * w[c]
    return agg / sum(w.values())


def _multiplicity(idx: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((idx.shape[0], n), dtype=np.int64)
    np.add.at(out, (np.repeat(np.arange(idx.shape[0]), idx.shape[1]), idx.ravel()), 1)
    return out


def bootstrap_czii_report(report, *, n_resamples: int = 1000, seed: int = 0,
                          confidence: float = 0.95, return_samples: bool = False
                          ) -> BootstrapResult:
    """Bootstrap CI of a CZII score from a report made with ``per_experiment=True``.

    Gives the same interval as ``bootstrap_ci(czii_score, submission, solution, ...)`` with
    the same parameters, without scoring again (run records store these counts).
    """
    _check(n_resamples, confidence)
    if report.per_experiment is None:
        raise ConfigError("the report has no per-experiment counts; score with "
                          "per_experiment=True")
    groups = sorted(pd.unique(report.per_experiment["experiment"].astype(str)))
    idx = resample_indices(len(groups), int(n_resamples), seed)
    samples = _czii_resampled(report, groups, _multiplicity(idx, len(groups)))
    low, high = _interval(samples, confidence)
    return BootstrapResult(estimate=float(report.score), low=low, high=high,
                           confidence=confidence, n_resamples=int(n_resamples), seed=seed,
                           group_col="experiment", n_groups=len(groups),
                           metric="czii_score", metric_params=dict(report.params),
                           n_nonfinite=_n_nonfinite(samples),
                           samples=samples if return_samples else None)


def _resampled_frame(df: pd.DataFrame, group_col: str, rows_of: dict, draw: np.ndarray,
                     groups: list) -> pd.DataFrame:
    parts = [rows_of.get(groups[g], np.empty(0, dtype=np.int64)) for g in draw]
    lengths = [len(p) for p in parts]
    rows = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)
    out = df.iloc[rows].copy()
    names = np.repeat([f"{groups[g]}#{k}" for k, g in enumerate(draw)], lengths)
    out[group_col] = names
    return out.reset_index(drop=True)


def _slow_scores(metric_fn: MetricFn, submission: pd.DataFrame, solution: pd.DataFrame,
                 groups: list, idx: np.ndarray, group_col: str) -> tuple[float, np.ndarray]:
    if group_col not in submission.columns:
        raise InputError(f"missing column {group_col!r} to resample by", "submission")
    sub_rows = pd.Series(np.arange(len(submission))).groupby(
        submission[group_col].astype(str).to_numpy()).indices
    sol_rows = pd.Series(np.arange(len(solution))).groupby(
        solution[group_col].astype(str).to_numpy()).indices
    estimate = score_of(metric_fn(submission, solution))
    out = np.empty(idx.shape[0])
    for b, draw in enumerate(idx):
        out[b] = score_of(metric_fn(
            _resampled_frame(submission, group_col, sub_rows, draw, groups),
            _resampled_frame(solution, group_col, sol_rows, draw, groups)))
    return estimate, out


def _scores(metric_fn, submission, solution, groups, idx, group_col, fast):
    res = _fast_scores(metric_fn, submission, solution, groups, idx, group_col) if fast else None
    if res is None:
        res = _slow_scores(metric_fn, submission, solution, groups, idx, group_col)
    return res


def _interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.percentile(finite, [100 * (1 - confidence) / 2, 100 * (1 + confidence) / 2])
    return float(lo), float(hi)


def bootstrap_ci(
    metric_fn: MetricFn,
    submission: pd.DataFrame,
    solution: pd.DataFrame,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    group_col: str = "experiment",
    return_samples: bool = False,
    fast: bool = True,
) -> BootstrapResult:
    """Percentile bootstrap CI of ``metric_fn(submission, solution)`` over resampled groups.

    Args:
        metric_fn: any ``(submission, solution) -> float | report`` (e.g. ``czii_score``,
            ``functools.partial(czii_score, beta=2)``, ``map_picks``).
        group_col: column naming the resampling unit (``"experiment"``; ``"tomo_id"`` for BYU,
            ``"image_id"`` for boxes). Groups are the solution's values of it.
        fast: allow the vectorised counts path for the CZII and BYU scores.
    """
    _check(n_resamples, confidence)
    groups = _groups(solution, group_col)
    idx = resample_indices(len(groups), int(n_resamples), seed)
    estimate, samples = _scores(metric_fn, submission, solution, groups, idx, group_col, fast)
    low, high = _interval(samples, confidence)
    name, params = describe_metric(metric_fn)
    return BootstrapResult(estimate=float(estimate), low=low, high=high, confidence=confidence,
                           n_resamples=int(n_resamples), seed=seed, group_col=group_col,
                           n_groups=len(groups), metric=name, metric_params=params,
                           n_nonfinite=_n_nonfinite(samples),
                           samples=samples if return_samples else None)


def paired_bootstrap(
    metric_fn: MetricFn,
    submission_a: pd.DataFrame,
    submission_b: pd.DataFrame,
    solution: pd.DataFrame,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
    group_col: str = "experiment",
    return_samples: bool = False,
    fast: bool = True,
) -> PairedBootstrapResult:
    """Score difference ``A - B`` on the same solution, with a paired bootstrap CI.

    Both submissions are scored on the *same* resampled groups in every resample, so the
    interval reflects the difference between the methods rather than the spread of the data.
    ``p_value`` is the exact sign-flip test of :func:`paired_sign_flip` (``n_resamples`` random
    flips when there are too many to enumerate), never below its attainable minimum ``p_min``
    (``2/2^n`` with ``n`` groups when exact); a bootstrap p-value reached 0 whenever one
    submission won every group and rejected a true null far too often with few groups.
    """
    _check(n_resamples, confidence)
    groups = _groups(solution, group_col)
    idx = resample_indices(len(groups), int(n_resamples), seed)
    est_a, s_a = _scores(metric_fn, submission_a, solution, groups, idx, group_col, fast)
    est_b, s_b = _scores(metric_fn, submission_b, solution, groups, idx, group_col, fast)
    diff = s_a - s_b
    low, high = _interval(diff, confidence)
    name, params = describe_metric(metric_fn)
    flip = paired_sign_flip(metric_fn, submission_a, submission_b, solution,
                            n_flips=int(n_resamples), seed=seed, group_col=group_col, fast=fast)
    return PairedBootstrapResult(
        estimate_a=float(est_a), estimate_b=float(est_b), difference=float(est_a - est_b),
        low=low, high=high, p_value=flip.p_value, confidence=confidence,
        n_resamples=int(n_resamples), seed=seed, group_col=group_col, n_groups=len(groups),
        metric=name, metric_params=params, n_nonfinite=_n_nonfinite(diff),
        samples=diff if return_samples else None, p_min=flip.min_p)


def _group_counts(metric_fn: MetricFn, submission: pd.DataFrame, solution: pd.DataFrame,
                  groups: list, group_col: str, classes: list | None = None):
    """``(counts (groups, classes, 3), classes, score)`` of a counts metric, or None."""
    from cryobench.metrics.byu import byu_outcomes, byu_score
    from cryobench.metrics.czii import czii_score

    fn, kwargs = _unwrap(metric_fn)
    pos = {g: i for i, g in enumerate(groups)}
    n = len(groups)
    if fn is czii_score and group_col == "experiment":
        report = czii_score(submission, solution, **{**kwargs, "per_experiment": True})
        counts = report.per_experiment
        classes = list(classes if classes is not None else report.per_class)
        cls_pos = {c: j for j, c in enumerate(classes)}
        gi = counts["experiment"].astype(str).map(pos).to_numpy()
        cj = counts["particle_type"].map(cls_pos).to_numpy()
        ok = ~(pd.isna(gi) | pd.isna(cj))
        out = np.zeros((n, len(classes), 3), dtype=np.int64)
        for t, col in enumerate(("tp", "fp", "fn")):
            np.add.at(out[:, :, t], (gi[ok].astype(int), cj[ok].astype(int)),
                      counts[col].to_numpy()[ok])
        w = report.params["weights"]
        wv = np.array([float(w.get(c, 0.0)) for c in classes])
        beta, total = report.params["beta"], float(sum(w.values()))

        def score(sums: np.ndarray) -> np.ndarray:
            _, _, fb = prf_from_counts(sums[..., 0], sums[..., 1], sums[..., 2], beta)
            return (fb * wv).sum(axis=-1) / total

        return out, classes, score
    if fn is byu_score and group_col == "tomo_id":
        beta = kwargs.get("beta", 2)
        per = byu_outcomes(submission, solution,
                           distance_angstrom=kwargs.get("distance_angstrom", 1000))
        order = per["tomo_id"].astype(str).map(pos).to_numpy()
        oc = per["outcome"].to_numpy()
        out = np.zeros((n, 1, 3), dtype=np.int64)
        for t, k in enumerate(("tp", "fp", "fn")):
            out[order, 0, t] = (oc == k).astype(np.int64)

        def score(sums: np.ndarray) -> np.ndarray:
            return fbeta_sklearn(sums[..., 0, 0], sums[..., 0, 1], sums[..., 0, 2], beta)

        return out, ["flagellar-motor"], score
    return None


def paired_sign_flip(
    metric_fn: MetricFn,
    submission_a: pd.DataFrame,
    submission_b: pd.DataFrame,
    solution: pd.DataFrame,
    *,
    n_flips: int = 9999,
    max_exact: int = 2**16,
    seed: int = 0,
    group_col: str = "experiment",
    fast: bool = True,
) -> SignFlipResult:
    """Exact sign-flip test of ``metric_fn(A) == metric_fn(B)`` over the solution's groups.

    A flip gives A's predictions of the flipped groups to B and B's to A, and rescores both (see
    :class:`SignFlipResult`). The CZII and BYU scores flip their per-group counts in one
    vectorised step (up to ``max_exact`` flip pairs enumerated); any other metric is rescored
    for every flip, exactly when ``2^(n-1) <= n_flips``, else on ``n_flips`` random flips.
    """
    groups = _groups(solution, group_col)
    got_a = _group_counts(metric_fn, submission_a, solution, groups, group_col) if fast else None
    if got_a is not None:
        ca, classes, score = got_a
        cb, _, _ = _group_counts(metric_fn, submission_b, solution, groups, group_col, classes)
        return sign_flip_counts(ca[None], cb[None], score, max_exact=max_exact,
                                n_flips=n_flips, seed=seed)
    for frame, name in ((submission_a, "submission A"), (submission_b, "submission B")):
        if group_col not in frame.columns:
            raise InputError(f"missing column {group_col!r} to resample by", name)
    key_a = submission_a[group_col].astype(str).to_numpy()
    key_b = submission_b[group_col].astype(str).to_numpy()
    n = len(groups)

    def diffs(flips: np.ndarray) -> np.ndarray:
        out = np.empty(len(flips))
        for r, f in enumerate(flips):
            swapped = {groups[j] for j in np.flatnonzero(f)}
            in_a, in_b = np.isin(key_a, list(swapped)), np.isin(key_b, list(swapped))
            new_a = pd.concat([submission_a[~in_a], submission_b[in_b]], ignore_index=True)
            new_b = pd.concat([submission_b[~in_b], submission_a[in_a]], ignore_index=True)
            out[r] = score_of(metric_fn(new_a, solution)) - score_of(metric_fn(new_b, solution))
        return out

    observed = float(diffs(np.zeros((1, n), dtype=np.int8))[0])
    exact, total, blocks = _flip_patterns(n, min(max_exact, n_flips), n_flips, seed, 256)
    p, min_p = _flip_p(observed, (diffs(f) for f in blocks), exact, total)
    return SignFlipResult(observed, p, min_p, total, exact, n, 1)
