"""Vectorised aggregates over run records: scores from counts, seed means, bootstrap intervals.

Every aggregate is recomputed from the per-(experiment, class) ``tp, fp, fn`` counts a run
record carries, never taken on trust from the record's summary. Counts live in a dense cube of
shape ``(seeds, experiments, classes, 3)``; a bootstrap resample of experiments is a vector of
multiplicities, so all resamples are scored with one matrix product instead of a Python loop.

The score follows the CZII rule (docs/metrics.md), which is also the BYU rule when there is
one class of weight 1 and ``beta = 2``: per class, counts are summed over experiments (micro),
``P = tp / (tp + fp)`` (0 when ``tp + fp == 0``), recall likewise, ``F = (1 + b²)PR / (b²P + R)``
(0 when ``P + R == 0``); the score is ``Σ weight · F`` over the classes with at least one reference
in the summed counts, divided by the sum of *all* weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "CountCube",
    "class_metrics",
    "scores_from_sums",
    "bootstrap_multiplicities",
    "bootstrap_seed_mean",
    "paired_bootstrap_difference",
    "percentile_interval",
]


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
