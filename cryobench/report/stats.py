"""Vectorised aggregates over run records: scores from counts, seed means, intervals and tests.

Every aggregate is recomputed from the per-(experiment, class) ``tp, fp, fn`` counts a run
record carries, never taken on trust from the record's summary. Counts live in a dense cube of
shape ``(seeds, experiments, classes, 3)``; a resample or a sign flip of experiments is a vector
of multiplicities, so all of them are scored with one matrix product instead of a Python loop.

What the leaderboard and the ablation tables use (docs/leaderboards.md, "Statistics"):

* :func:`score_interval`: an interval for the seed-mean score whose variance has a tomogram
  part (delete-one jackknife over test experiments) and a seed part (the spread of the seeds'
  scores), each with its own t distribution (a generalized pivotal quantity).
* :func:`paired_comparison`: the difference of two entries with the same kind of interval, and a
  p-value that is the larger of an exact sign-flip test over test experiments and the seed-aware
  t-test; it is never below :attr:`PairedComparison.min_p`.
* :func:`rank_by_comparisons` / :func:`rank_cubes`: ranks that separate two entries only where
  the paired comparison does, after Holm's correction over all pairs.

The percentile bootstrap (:func:`bootstrap_seed_mean`, :func:`paired_bootstrap_difference`,
:func:`percentile_interval`) is kept for callers that still use it; it under-covers with few
test experiments and leaves out the seed-to-seed spread (``benchmarks/bench_coverage.py``).

The score follows the CZII rule (docs/metrics.md), which is also the BYU rule when there is
one class of weight 1 and ``beta = 2``: per class, counts are summed over experiments (micro),
``P = tp / (tp + fp)`` (0 when ``tp + fp == 0``), recall likewise, ``F = (1 + b²)PR / (b²P + R)``
(0 when ``P + R == 0``); the score is ``Σ weight · F`` over the classes with at least one reference
in the summed counts, divided by the sum of *all* weights.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import special as _special
from scipy import stats as _sps

from cryobench.errors import ConfigError
from cryobench.metrics.bootstrap import SignFlipResult, sign_flip_counts

__all__ = [
    "CountCube",
    "class_metrics",
    "scores_from_sums",
    "bootstrap_multiplicities",
    "bootstrap_seed_mean",
    "paired_bootstrap_difference",
    "percentile_interval",
    "jackknife_scores",
    "ScoreInterval",
    "score_interval",
    "two_level_bootstrap",
    "SignFlipResult",
    "sign_flip_test",
    "PairedComparison",
    "paired_comparison",
    "holm_adjust",
    "Ranking",
    "rank_by_comparisons",
    "rank_cubes",
    "SCORE_RANGE",
]

#: The range of every score cryobench computes (F-beta, mAP): intervals are cut to it.
SCORE_RANGE: tuple[float, float] = (0.0, 1.0)


@dataclass
class CountCube:
    """Counts of several seeds of one configuration on the same experiments.

    Attributes:
        seeds: seed of each slice along axis 0.
        experiments: experiment (tomogram) names along axis 1.
        classes: particle types along axis 2.
        counts: int64 array ``(seeds, experiments, classes, 3)`` holding ``tp, fp, fn``.
        weights: weight of each class (float64, aligned with ``classes``).
        weight_total: denominator of the score (the sum of all weights of the metric).
        beta: the F-beta parameter.
        rule: whose F-beta algebra (``czii`` or ``byu``, see
            :func:`cryobench.metrics.counts.fbeta`), so scores equal the scorer's to the bit.
    """

    seeds: list[int]
    experiments: list[str]
    classes: list[str]
    counts: np.ndarray
    weights: np.ndarray
    weight_total: float
    beta: float
    rule: str = "czii"
    seedless: bool = False
    """The method ignores the seed (deterministic): one seed is the whole story, its seed
    spread is zero rather than unknown."""

    @classmethod
    def from_rows(cls, seeds: Sequence[int], rows_per_seed: Sequence[Sequence[Mapping]],
                  weights: Mapping[str, float], beta: float,
                  classes: Sequence[str] | None = None,
                  experiments: Sequence[str] | None = None, rule: str = "czii") -> CountCube:
        """A cube from each seed's ``counts`` rows (experiment, particle_type, tp, fp, fn).

        A (seed, experiment, class) with no row counts as zeros: the caller decides beforehand
        whether a missing row is legitimate (see :mod:`cryobench.report.summary`).
        """
        if classes is None:
            seen = {str(r["particle_type"]) for rows in rows_per_seed for r in rows}
            classes = [c for c in weights if c in seen or weights[c] > 0]
            classes += sorted(seen - set(classes))
        if experiments is None:
            experiments = sorted({str(r["experiment"]) for rows in rows_per_seed for r in rows})
        ci = {c: i for i, c in enumerate(classes)}
        ei = {e: i for i, e in enumerate(experiments)}
        cube = np.zeros((len(seeds), len(experiments), len(classes), 3), dtype=np.int64)
        for s, rows in enumerate(rows_per_seed):
            for r in rows:
                e, c = ei.get(str(r["experiment"])), ci.get(str(r["particle_type"]))
                if e is None or c is None:
                    continue
                cube[s, e, c] += (int(r["tp"]), int(r["fp"]), int(r["fn"]))
        w = np.array([float(weights.get(c, 1.0)) for c in classes], dtype=np.float64)
        return cls(list(seeds), list(experiments), list(classes), cube, w,
                   float(sum(float(v) for v in weights.values())), float(beta), rule)

    def sums(self) -> np.ndarray:
        """Counts summed over experiments: ``(seeds, classes, 3)``."""
        return self.counts.sum(axis=1)

    def seed_scores(self) -> np.ndarray:
        """The score of each seed: ``(seeds,)``."""
        return scores_from_sums(self.sums(), self.weights, self.weight_total, self.beta,
                                self.rule)


def class_metrics(sums: np.ndarray, beta: float, rule: str = "czii") -> dict[str, np.ndarray]:
    """Precision, recall, F-beta and F1 from summed counts ``(..., classes, 3)`` (the metrics'
    own F-beta, :func:`cryobench.metrics.counts.fbeta`, with the metric's ``rule``)."""
    from cryobench.metrics.counts import fbeta

    sums = np.asarray(sums, dtype=np.float64)
    tp, fp, fn = sums[..., 0], sums[..., 1], sums[..., 2]
    precision, recall, fb = fbeta(tp, fp, fn, beta, rule)
    return {"precision": precision, "recall": recall, "fbeta": fb,
            "f1": fbeta(tp, fp, fn, 1.0, rule)[2], "present": (tp + fn) > 0}


def scores_from_sums(sums: np.ndarray, weights: np.ndarray, weight_total: float,
                     beta: float, rule: str = "czii") -> np.ndarray:
    """Weighted score from summed counts ``(..., classes, 3)``; classes without references add 0."""
    m = class_metrics(sums, beta, rule)
    contrib = np.where(m["present"], m["fbeta"], 0.0) * np.asarray(weights, dtype=np.float64)
    total = np.zeros(contrib.shape[:-1])
    for k in range(contrib.shape[-1]):  # class by class, the scorer's order of summation
        total = total + contrib[..., k]
    return total / weight_total if weight_total else total


def bootstrap_multiplicities(n_experiments: int, n_resamples: int, seed: int = 0) -> np.ndarray:
    """How often each experiment is drawn in each resample: ``(n_resamples, n_experiments)``."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n_experiments, size=(n_resamples, n_experiments))
    mult = np.zeros((n_resamples, n_experiments), dtype=np.int64)
    np.add.at(mult, (np.arange(n_resamples)[:, None], idx), 1)
    return mult


def _resampled_seed_mean(cube: CountCube, mult: np.ndarray) -> np.ndarray:
    # (B, E) x (S, E, K*3) -> (S, B, K, 3): the summed counts of every seed under every resample.
    s, e, k, _ = cube.counts.shape
    flat = cube.counts.reshape(s, e, k * 3).astype(np.float64)
    sums = np.einsum("be,sek->sbk", mult.astype(np.float64), flat).reshape(s, -1, k, 3)
    return scores_from_sums(sums, cube.weights, cube.weight_total, cube.beta,
                            cube.rule).mean(axis=0)


def bootstrap_seed_mean(cube: CountCube, n_resamples: int = 1000, seed: int = 0) -> np.ndarray:
    """Bootstrap distribution of the seed-mean score, resampling experiments (shared by seeds)."""
    if not cube.experiments or n_resamples <= 0:
        return np.empty(0)
    mult = bootstrap_multiplicities(len(cube.experiments), n_resamples, seed)
    return _resampled_seed_mean(cube, mult)


def paired_bootstrap_difference(a: CountCube, b: CountCube, n_resamples: int = 1000,
                                seed: int = 0) -> tuple[float, np.ndarray]:
    """Seed-mean score of ``a`` minus that of ``b`` and its bootstrap distribution.

    Both cubes are resampled with the same experiment draws (paired by experiment name); only the
    experiments present in both are used.
    """
    common = [e for e in a.experiments if e in set(b.experiments)]
    a2, b2 = _restrict(a, common), _restrict(b, common)
    point = float(a2.seed_scores().mean() - b2.seed_scores().mean())
    if not common or n_resamples <= 0:
        return point, np.empty(0)
    mult = bootstrap_multiplicities(len(common), n_resamples, seed)
    return point, _resampled_seed_mean(a2, mult) - _resampled_seed_mean(b2, mult)


def _restrict(cube: CountCube, experiments: Sequence[str]) -> CountCube:
    idx = [cube.experiments.index(e) for e in experiments]
    return CountCube(cube.seeds, list(experiments), cube.classes, cube.counts[:, idx],
                     cube.weights, cube.weight_total, cube.beta, cube.rule)


def percentile_interval(samples: np.ndarray, level: float = 0.95) -> tuple[float, float] | None:
    """Percentile interval of a bootstrap distribution, or None when there are no samples."""
    if samples.size == 0:
        return None
    lo, hi = np.percentile(samples, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


# ----- intervals over experiments and seeds ----------------------------------------------------
def jackknife_scores(cube: CountCube) -> np.ndarray:
    """Each seed's score with one experiment left out: ``(seeds, experiments)``.

    The score is a ratio of micro-summed counts, so an experiment's contribution is not a term of
    a sum; the delete-one jackknife measures it by rescoring without it (``sums - counts[e]``).
    """
    c = cube.counts.astype(np.float64)
    loo = c.sum(axis=1, keepdims=True) - c
    return scores_from_sums(loo, cube.weights, cube.weight_total, cube.beta, cube.rule)


def _jackknife_cov(loo: np.ndarray) -> np.ndarray:
    """Jackknife covariance ``(n-1)/n · Σ_e z_ie z_je`` of the rows of ``loo`` (models × n)."""
    n = loo.shape[1]
    z = loo - loo.mean(axis=1, keepdims=True)
    return (n - 1) / n * (z @ z.T)


def _offdiag_mean(block: np.ndarray) -> float:
    k = block.shape[0]
    if k < 2:
        return float("nan")
    return float((block.sum() - np.trace(block)) / (k * (k - 1)))


def _shared_part(block: np.ndarray) -> float:
    """The experiment variance the seeds share: the off-diagonal mean of their jackknife
    covariance, or for one (seedless) model its own variance."""
    return float(block[0, 0]) if block.shape[0] == 1 else _offdiag_mean(block)


def _satterthwaite(parts: Sequence[tuple[float, float]]) -> float:
    """Welch-Satterthwaite degrees of freedom of a sum of variance estimates ``(v, df)``."""
    parts = [(v, d) for v, d in parts if v > 0 and d > 0]
    if not parts:
        return float("nan")
    total = sum(v for v, _ in parts)
    return float(total * total / sum(v * v / d for v, d in parts))


def _t_quantile(level: float, df: float) -> float:
    if not math.isfinite(df):
        return float(_sps.norm.ppf(0.5 + level / 2))
    return float(_sps.t.ppf(0.5 + level / 2, df))


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ConfigError(f"level must be in (0, 1), got {level}")


_SINH_Y = np.linspace(-14.5, 14.5, 1201)
_SINH_T = np.sinh(_SINH_Y)


@functools.lru_cache(maxsize=64)
def _sinh_weights(df: float) -> np.ndarray:
    """Quadrature weights of a t(df) variable on the nodes ``_SINH_T`` (summing to 1)."""
    dens = _sps.norm.pdf(_SINH_T) if not math.isfinite(df) else _sps.t.pdf(_SINH_T, df)
    w = dens * np.cosh(_SINH_Y)
    w.setflags(write=False)
    return w / w.sum()


def _t_cdf(x: np.ndarray, df: float) -> np.ndarray:
    return _special.ndtr(x) if not math.isfinite(df) else _special.stdtr(df, x)


def _pivot_within(q: float, c1: float, d1: float, c2: float, d2: float) -> float:
    """``P(|c1·T1 + c2·T2| ≤ q)`` for independent t variables (``c1 ≥ c2 > 0``).

    T1's distribution function is used exactly; T2 is integrated on a sinh-spaced grid (its
    tails reach ``|t| = 10^6``), which keeps the heavy tails of 1 or 2 degrees of freedom.
    """
    w = _sinh_weights(float(d2))
    s = c2 * _SINH_T
    return float(np.sum(w * (_t_cdf((q - s) / c1, d1) - _t_cdf((-q - s) / c1, d1))))


def _pivot_quantile(level: float, c1: float, d1: float, c2: float, d2: float) -> float:
    """The ``q`` with ``P(|c1·T1 + c2·T2| ≤ q) = level`` (either scale may be 0)."""
    from scipy.optimize import brentq

    (c1, d1), (c2, d2) = sorted([(c1, d1), (c2, d2)], key=lambda p: -p[0])
    if c1 <= 0:
        return 0.0
    if c2 <= 0:
        return c1 * _t_quantile(level, d1)
    tail = 0.5 + (1 - (1 - level) / 2) / 2  # each part gets half the miss rate: a bracket
    hi = c1 * _t_quantile(2 * tail - 1, d1) + c2 * _t_quantile(2 * tail - 1, d2)
    return float(brentq(lambda q: _pivot_within(q, c1, d1, c2, d2) - level, 0.0, hi,
                        xtol=1e-10 * max(hi, 1e-300), rtol=1e-8))


@dataclass(frozen=True)
class ScoreInterval:
    """An interval for the seed-mean score of one entry.

    ``se² = se_experiments² + se_seeds²``. With two or more seeds, ``se_experiments²`` is the
    part of the experiment-to-experiment variation that the seeds share (the mean jackknife
    covariance between two different seeds) and ``se_seeds² = s²/S`` with ``s`` the standard
    deviation of the seeds' scores, so the interval is for the score of the *method* (a new seed
    on new test experiments). It is the generalized pivotal (Behrens-Fisher fiducial) interval
    ``estimate ± q`` with ``P(|se_experiments·T(n-1) + se_seeds·T(S-1)| ≤ q) = level``, for
    independent t variables (``method = "pivot"``); ``df`` is Welch-Satterthwaite's, which
    ``method = "satterthwaite"`` uses instead with one t quantile.

    With one seed the seed spread cannot be measured: ``se_experiments²`` is that seed's
    jackknife variance, the interval is a t-interval with ``n - 1`` degrees of freedom for that
    trained model only, and ``includes_seed_spread`` is False. Fewer than two experiments give
    no interval (``low``/``high`` are NaN).
    """

    estimate: float
    low: float
    high: float
    level: float
    se: float
    se_experiments: float
    se_seeds: float | None
    df: float
    n_experiments: int
    n_seeds: int
    includes_seed_spread: bool
    method: str = "pivot"

    @property
    def bounds(self) -> tuple[float, float] | None:
        """``(low, high)``, or None when there is no interval."""
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            return None
        return self.low, self.high

    def to_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def score_interval(cube: CountCube, level: float = 0.95,
                   method: str = "pivot") -> ScoreInterval:
    """Interval for the seed-mean score over test experiments and seeds (:class:`ScoreInterval`).

    The bounds are cut to :data:`SCORE_RANGE`, ``[0, 1]``, the range of every score (the true
    score lies there, so the cut cannot lower the coverage). ``method``: ``"pivot"`` (default)
    or ``"satterthwaite"`` (a t quantile with Welch-Satterthwaite degrees of freedom;
    under-covers with three seeds, kept for comparison).
    """
    _check_level(level)
    if method not in ("pivot", "satterthwaite"):
        raise ConfigError(f"method must be 'pivot' or 'satterthwaite', got {method!r}")
    n, s = len(cube.experiments), len(cube.seeds)
    seed_scores = cube.seed_scores()
    est = float(seed_scores.mean()) if s else float("nan")
    nan = float("nan")
    if n < 2 or s < 1:
        return ScoreInterval(est, nan, nan, level, nan, nan, None, nan, n, s, s >= 2, method)
    cov = _jackknife_cov(jackknife_scores(cube))
    if s >= 2:
        v_exp = max(0.0, _offdiag_mean(cov))
        v_seed = float(np.var(seed_scores, ddof=1)) / s
        df = _satterthwaite([(v_exp, n - 1), (v_seed, s - 1)])
        se_seeds: float | None = math.sqrt(v_seed)
    else:
        v_exp, v_seed, df, se_seeds = float(cov[0, 0]), 0.0, float(n - 1), None
    if not math.isfinite(df):
        df = float(n - 1)
    se = math.sqrt(v_exp + v_seed)
    if method == "pivot" and s >= 2:
        half = _pivot_quantile(level, math.sqrt(v_exp), n - 1, math.sqrt(v_seed), s - 1)
    else:
        half = _t_quantile(level, df) * se
    # every score is in [0, 1]: cutting the interval there keeps its coverage
    low, high = max(est - half, SCORE_RANGE[0]), min(est + half, SCORE_RANGE[1])
    return ScoreInterval(est, low, high, level, se, math.sqrt(v_exp), se_seeds,
                         df, n, s, s >= 2 or (cube.seedless and s == 1), method)


def two_level_bootstrap(cube: CountCube, n_resamples: int = 1000, seed: int = 0) -> np.ndarray:
    """Bootstrap distribution of the seed-mean score resampling seeds, then experiments.

    Each resample draws the seeds with replacement and the experiments with replacement (one draw
    shared by the seeds). Kept to compare against :func:`score_interval`: with three seeds the
    resampled seed spread is biased low by a factor 2/3 and its percentiles are those of a normal
    rather than of a t with 2 degrees of freedom, so it under-covers when seeds vary.
    """
    s, e = len(cube.seeds), len(cube.experiments)
    if not s or not e or n_resamples <= 0:
        return np.empty(0)
    mult = bootstrap_multiplicities(e, n_resamples, seed)
    per_seed = _resampled_scores(cube, mult)  # (S, B)
    pick = np.random.default_rng([seed, 1]).integers(0, s, size=(n_resamples, s))
    return per_seed[pick, np.arange(n_resamples)[:, None]].mean(axis=1)


def _resampled_scores(cube: CountCube, mult: np.ndarray) -> np.ndarray:
    s, e, k, _ = cube.counts.shape
    flat = cube.counts.reshape(s, e, k * 3).astype(np.float64)
    sums = np.einsum("be,sek->sbk", mult.astype(np.float64), flat).reshape(s, -1, k, 3)
    return scores_from_sums(sums, cube.weights, cube.weight_total, cube.beta, cube.rule)


# ----- paired comparison of two entries -------------------------------------------------------
def _align(a: CountCube, b: CountCube) -> tuple[CountCube, CountCube]:
    """Both cubes on their common experiments (sorted by name) and on the union of classes."""
    if (a.beta != b.beta or a.rule != b.rule
            or not math.isclose(a.weight_total, b.weight_total)):
        raise ConfigError("the two entries were scored with different parameters "
                          f"(beta {a.beta} / {b.beta}, rule {a.rule} / {b.rule}, weight total "
                          f"{a.weight_total} / {b.weight_total}): they cannot be compared")
    common = sorted(set(a.experiments) & set(b.experiments))
    if not common:
        raise ConfigError("the two entries share no test experiment: they cannot be compared")
    classes = list(a.classes) + [c for c in b.classes if c not in a.classes]
    wa = dict(zip(a.classes, a.weights, strict=True))
    wb = dict(zip(b.classes, b.weights, strict=True))
    for c in set(wa) & set(wb):
        if not math.isclose(float(wa[c]), float(wb[c])):
            raise ConfigError(f"class {c!r} has weight {wa[c]} in one entry and {wb[c]} in the "
                              "other: they cannot be compared")
    weights = np.array([float(wa.get(c, wb.get(c, 0.0))) for c in classes])

    def on(cube: CountCube) -> CountCube:
        ei = [cube.experiments.index(x) for x in common]
        out = np.zeros((len(cube.seeds), len(common), len(classes), 3), dtype=np.int64)
        for j, c in enumerate(classes):
            if c in cube.classes:
                out[:, :, j] = cube.counts[:, ei, cube.classes.index(c)]
        return CountCube(list(cube.seeds), list(common), classes, out, weights,
                         cube.weight_total, cube.beta, cube.rule, cube.seedless)

    return on(a), on(b)


def _seed_pairs(a: CountCube, b: CountCube) -> tuple[np.ndarray, np.ndarray]:
    """Counts of the seeds paired for the sign flip: by sorted seed, as many pairs as both have."""
    m = min(len(a.seeds), len(b.seeds))
    ia = np.argsort(np.asarray(a.seeds), kind="stable")[:m]
    ib = np.argsort(np.asarray(b.seeds), kind="stable")[:m]
    return a.counts[ia].astype(np.float64), b.counts[ib].astype(np.float64)


def sign_flip_test(a: CountCube, b: CountCube, *, max_exact: int = 2**16, n_flips: int = 9999,
                   seed: int = 0) -> SignFlipResult:
    """Two-sided sign-flip test over the shared test experiments (see :class:`SignFlipResult`).

    A flip swaps the two entries' counts on a set of test experiments (all paired seeds at
    once) and rescores both from the swapped micro-summed counts. Seeds are paired by sorted seed
    (the i-th seed of ``a`` with the i-th of ``b``); seeds beyond the shorter list are left out
    of this test. ``max_exact`` caps the flip pairs enumerated (default ``2^16``: exact up to 17
    experiments), beyond which ``n_flips`` random flips, drawn from ``seed``, are used.
    """
    a, b = _align(a, b)
    ca, cb = _seed_pairs(a, b)
    if ca.shape[0] == 0:
        raise ConfigError("an entry without seeds cannot be compared")

    def score(sums: np.ndarray) -> np.ndarray:
        return scores_from_sums(sums, a.weights, a.weight_total, a.beta, a.rule)

    return sign_flip_counts(ca, cb, score, max_exact=max_exact, n_flips=n_flips, seed=seed)


@dataclass(frozen=True)
class PairedComparison:
    """Difference ``estimate_a - estimate_b`` of two entries on their shared test experiments.

    ``low``/``high``: a t-interval built like :class:`ScoreInterval`'s, on the paired difference:
    its experiment part is the jackknife variance of the difference that the seeds share (test
    experiments hard for one entry are often hard for the other, and that cancels), its seed
    part ``s_a²/S_a + s_b²/S_b``. ``p_t`` is the matching two-sided t-test. ``p_sign_flip`` is the
    exact sign-flip test over experiments (:class:`SignFlipResult`), which is exact for the
    trained models at hand but blind to seed-to-seed luck. ``p_value = max(p_sign_flip, p_t)``:
    the two entries are separated only when both tests agree (an intersection-union test, valid
    when either one is), and it is never below ``min_p``, the sign flip's attainable minimum.
    With fewer than two seeds on either side the seed spread is unknown,
    ``includes_seed_spread`` is False and both parts concern the trained models only, unless
    that side is seedless (:attr:`CountCube.seedless`: a deterministic method, whose seed spread
    is zero).
    """

    estimate_a: float
    estimate_b: float
    difference: float
    low: float
    high: float
    level: float
    se: float
    df: float
    p_value: float
    p_sign_flip: float
    p_t: float
    min_p: float
    exact: bool
    n_flips: int
    n_experiments: int
    n_seeds_a: int
    n_seeds_b: int
    n_seed_pairs: int
    includes_seed_spread: bool

    @property
    def bounds(self) -> tuple[float, float] | None:
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            return None
        return self.low, self.high

    def to_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def paired_comparison(a: CountCube, b: CountCube, *, level: float = 0.95,
                      max_exact: int = 2**16, n_flips: int = 9999,
                      seed: int = 0) -> PairedComparison:
    """Compare entry ``a`` with entry ``b`` on their shared test experiments.

    See :class:`PairedComparison`. Raises :class:`~cryobench.errors.ConfigError` when the entries
    share no experiment or were scored with different parameters.
    """
    _check_level(level)
    flip = sign_flip_test(a, b, max_exact=max_exact, n_flips=n_flips, seed=seed)
    a, b = _align(a, b)
    n, sa, sb = len(a.experiments), len(a.seeds), len(b.seeds)
    ta, tb = a.seed_scores(), b.seed_scores()
    est_a, est_b = float(ta.mean()), float(tb.mean())
    diff = est_a - est_b
    known_a, known_b = sa >= 2 or (a.seedless and sa == 1), sb >= 2 or (b.seedless and sb == 1)
    both = known_a and known_b
    nan = float("nan")
    if n < 2:
        se = df = low = high = p_t = nan
    else:
        cov = _jackknife_cov(np.vstack([jackknife_scores(a), jackknife_scores(b)]))
        caa, cbb, cab = cov[:sa, :sa], cov[sa:, sa:], cov[:sa, sa:]
        if both:
            v_exp = max(0.0, _shared_part(caa) + _shared_part(cbb) - 2 * float(cab.mean()))
            v_a = float(np.var(ta, ddof=1)) / sa if sa >= 2 else 0.0
            v_b = float(np.var(tb, ddof=1)) / sb if sb >= 2 else 0.0
            var = v_exp + v_a + v_b
            df = _satterthwaite([(v_exp, n - 1), (v_a, sa - 1), (v_b, sb - 1)])
        else:
            var = max(0.0, float(caa.mean() + cbb.mean() - 2 * cab.mean()))
            df = float(n - 1)
        if not math.isfinite(df):
            df = float(n - 1)
        se = math.sqrt(var)
        half = _t_quantile(level, df) * se
        low, high = diff - half, diff + half
        if se > 0:
            p_t = float(min(1.0, 2 * _sps.t.sf(abs(diff) / se, df)))
        else:
            p_t = 1.0 if abs(diff) <= 1e-12 else 0.0
    p = flip.p_value if math.isnan(p_t) else max(flip.p_value, p_t)
    return PairedComparison(est_a, est_b, diff, low, high, level, se, df, p, flip.p_value, p_t,
                            flip.min_p, flip.exact, flip.n_flips, n, sa, sb, flip.n_models,
                            both)


# ----- ranks ----------------------------------------------------------------------------------
def holm_adjust(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN counts as 1); the same order as the input."""
    p = np.asarray(p_values, dtype=np.float64).ravel()
    p = np.where(np.isnan(p), 1.0, p)
    m = p.size
    order = np.argsort(p, kind="stable")
    adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adj
    return out


@dataclass(frozen=True)
class Ranking:
    """Ranks that separate two entries only where their paired comparison does.

    ``ranks[i] = 1 + len(beaten_by[i])``: one more than the number of entries with a higher
    score *and* a significant difference (adjusted p ≤ ``alpha``), so entries nobody beats share
    rank 1 (the "rank (upper bound)" of pairwise-test leaderboards). ``tied_with[i]``: the
    entries not separated from ``i``. ``order`` lists the entries by score, best first.
    ``can_separate`` is False when no pair could be separated whatever the scores (the smallest
    attainable p is above Holm's first threshold ``alpha / n_pairs``, or no pair has the seed
    spread it needs); ``reason`` then says why.
    """

    order: list[int]
    ranks: list[int]
    tied_with: list[list[int]]
    beaten_by: list[list[int]]
    p_values: np.ndarray
    p_adjusted: np.ndarray
    alpha: float
    correction: str
    can_separate: bool
    reason: str = ""
    comparisons: dict[tuple[int, int], PairedComparison] = field(default_factory=dict,
                                                                  repr=False)


def rank_by_comparisons(scores: Sequence[float], p_values: np.ndarray, *, alpha: float = 0.05,
                        correction: str = "holm", min_p: np.ndarray | None = None) -> Ranking:
    """Ranks from scores and a symmetric matrix of pairwise p-values (see :class:`Ranking`).

    Args:
        scores: one score per entry.
        p_values: ``(k, k)`` two-sided p-values (the diagonal is ignored; NaN means "not
            comparable" and never separates).
        correction: ``"holm"`` (family-wise error over all ``k(k-1)/2`` pairs) or ``"none"``.
        min_p: ``(k, k)`` attainable minima of the p-values, to tell whether any separation was
            possible at all.
    """
    if correction not in ("holm", "none"):
        raise ConfigError(f"correction must be 'holm' or 'none', got {correction!r}")
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must be in (0, 1), got {alpha}")
    sc = np.asarray(scores, dtype=np.float64)
    k = sc.size
    p = np.asarray(p_values, dtype=np.float64).reshape(k, k)
    iu = np.triu_indices(k, 1)
    raw = p[iu]
    adj_flat = holm_adjust(raw) if correction == "holm" else np.where(np.isnan(raw), 1.0, raw)
    adj = np.full((k, k), np.nan)
    adj[iu] = adj_flat
    adj.T[iu] = adj_flat
    sep = np.nan_to_num(adj, nan=1.0) <= alpha
    np.fill_diagonal(sep, False)
    beaten = [[j for j in range(k) if sep[i, j] and sc[j] > sc[i]] for i in range(k)]
    tied = [[j for j in range(k) if j != i and not sep[i, j]] for i in range(k)]
    order = sorted(range(k), key=lambda i: (-sc[i] if np.isfinite(sc[i]) else np.inf, i))
    n_pairs = len(raw)
    threshold = alpha / n_pairs if (correction == "holm" and n_pairs) else alpha
    can, reason = True, ""
    if n_pairs == 0:
        can, reason = False, "a single entry: nothing to compare"
    elif np.all(np.isnan(raw)):
        can, reason = False, "no pair of entries can be compared"
    elif min_p is not None:
        mp = np.asarray(min_p, dtype=np.float64).reshape(k, k)[iu]
        mp = mp[~np.isnan(raw)]
        if mp.size and float(np.nanmin(mp)) > threshold:
            can = False
            reason = (f"the smallest attainable p-value is {float(np.nanmin(mp)):.3g}, above "
                      f"{threshold:.3g} (alpha {alpha:g}"
                      + (f" / {n_pairs} pairs, Holm" if correction == "holm" else "")
                      + "): no two entries can be separated")
    return Ranking(order=order, ranks=[1 + len(b) for b in beaten], tied_with=tied,
                   beaten_by=beaten, p_values=p, p_adjusted=adj, alpha=alpha,
                   correction=correction, can_separate=can, reason=reason)


def rank_cubes(cubes: Sequence[CountCube], *, alpha: float = 0.05, correction: str = "holm",
               require_seed_spread: bool = True, level: float = 0.95,
               max_exact: int = 2**16, n_flips: int = 9999, seed: int = 0) -> Ranking:
    """Compare every pair of entries with :func:`paired_comparison` and rank them.

    Scores are the entries' seed means. With ``require_seed_spread`` (the default) a pair in
    which either entry has fewer than two seeds is never separated: its comparison says nothing
    about the methods, only about the two trained models.
    """
    k = len(cubes)
    scores = [float(c.seed_scores().mean()) if c.seeds else float("nan") for c in cubes]
    p = np.full((k, k), np.nan)
    mins = np.full((k, k), np.nan)
    comps: dict[tuple[int, int], PairedComparison] = {}
    for i in range(k):
        for j in range(i + 1, k):
            c = paired_comparison(cubes[i], cubes[j], level=level, max_exact=max_exact,
                                  n_flips=n_flips, seed=seed)
            comps[(i, j)] = c
            if c.includes_seed_spread or not require_seed_spread:
                p[i, j] = p[j, i] = c.p_value
                mins[i, j] = mins[j, i] = c.min_p
    r = rank_by_comparisons(scores, p, alpha=alpha, correction=correction, min_p=mins)
    reason = r.reason
    if require_seed_spread and any(len(c.seeds) < 2 and not c.seedless for c in cubes):
        few = sum(len(c.seeds) < 2 and not c.seedless for c in cubes)
        reason = "; ".join(x for x in (reason, f"{few} entr{'y has' if few == 1 else 'ies have'}"
                                       " fewer than two seeds: not ranked against others")
                           if x)
    return Ranking(order=r.order, ranks=r.ranks, tied_with=r.tied_with, beaten_by=r.beaten_by,
                   p_values=r.p_values, p_adjusted=r.p_adjusted, alpha=alpha,
                   correction=correction, can_separate=r.can_separate, reason=reason,
                   comparisons=comps)
