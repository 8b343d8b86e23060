"""Bootstrap CIs over experiments: seeded, the fast counts path equals rescoring, paired."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest

from cryobench.errors import ConfigError, InputError
from cryobench.metrics import (
    bootstrap_ci,
    byu_score,
    czii_score,
    map_picks,
    paired_bootstrap,
)
from cryobench.metrics.bootstrap import bootstrap_czii_report, resample_indices
from cryobench.particles import czii_radii

TYPES = list(czii_radii())


def case(seed=0, n_exp=6, n_ref=300):
    rng = np.random.default_rng(seed)
    sol = pd.DataFrame({"experiment": [f"TS_{i}" for i in rng.integers(0, n_exp, n_ref)],
                        "particle_type": rng.choice(TYPES, n_ref),
                        "x": rng.uniform(0, 3000, n_ref), "y": rng.uniform(0, 3000, n_ref),
                        "z": rng.uniform(0, 800, n_ref)})
    sub = sol.iloc[rng.integers(0, n_ref, 2 * n_ref)].reset_index(drop=True)
    sub[["x", "y", "z"]] += rng.normal(0, 25, (2 * n_ref, 3))
    sub["score"] = rng.random(len(sub))
    return sol, sub


def test_resampling_is_seeded():
    a = resample_indices(5, 10, seed=3)
    assert a.shape == (10, 5) and (a == resample_indices(5, 10, seed=3)).all()
    assert not (a == resample_indices(5, 10, seed=4)).all()


def test_fast_counts_path_equals_rescoring_resampled_tables():
    sol, sub = case()
    fast = bootstrap_ci(czii_score, sub, sol, n_resamples=40, seed=1, return_samples=True)
    slow = bootstrap_ci(czii_score, sub, sol, n_resamples=40, seed=1, return_samples=True,
                        fast=False)
    # identical counts; classes may be summed in another order: equal up to rounding
    np.testing.assert_allclose(fast.samples, slow.samples, rtol=0, atol=1e-12)
    assert fast.estimate == slow.estimate == czii_score(sub, sol).score


def test_partial_keywords_reach_the_metric():
    sol, sub = case(2)
    fn = functools.partial(czii_score, beta=1, distance_multiplier=0.8)
    fast = bootstrap_ci(fn, sub, sol, n_resamples=20, return_samples=True)
    slow = bootstrap_ci(fn, sub, sol, n_resamples=20, return_samples=True, fast=False)
    assert fast.estimate == czii_score(sub, sol, beta=1, distance_multiplier=0.8).score
    np.testing.assert_allclose(fast.samples, slow.samples, atol=1e-12)


def test_interval_is_ordered_and_recorded():
    sol, sub = case(3)
    res = bootstrap_ci(czii_score, sub, sol, n_resamples=300, seed=7)
    assert res.low <= res.estimate <= res.high
    assert (res.n_resamples, res.seed, res.n_groups, res.confidence) == (300, 7, 6, 0.95)
    d = res.to_dict()
    assert d["low"] == res.low and "samples" not in d
    wider = bootstrap_ci(czii_score, sub, sol, n_resamples=300, seed=7, confidence=0.99)
    assert wider.low <= res.low and wider.high >= res.high


def test_the_metric_and_its_arguments_are_recorded():
    sol, sub = case(3)
    fn = functools.partial(functools.partial(czii_score, beta=1, distance_multiplier=0.8),
                           beta=2)  # the outer keyword wins, as in the call
    res = bootstrap_ci(fn, sub, sol, n_resamples=20)
    assert res.metric == "czii_score"
    assert res.metric_params == {"beta": 2, "distance_multiplier": 0.8}
    assert res.estimate == czii_score(sub, sol, beta=2, distance_multiplier=0.8).score
    assert res.to_dict()["metric_params"] == {"beta": 2, "distance_multiplier": 0.8}
    rep = bootstrap_czii_report(czii_score(sub, sol, beta=3, per_experiment=True),
                                n_resamples=10)
    assert rep.metric == "czii_score" and rep.metric_params["beta"] == 3
    paired = paired_bootstrap(fn, sub, sub, sol, n_resamples=10)
    assert (paired.metric, paired.metric_params) == (res.metric, res.metric_params)


def test_resamples_without_a_finite_score_are_counted_and_left_out():
    sol, sub = case(4)
    seen = []

    def every_third_nan(s, o):
        seen.append(1)
        return float("nan") if len(seen) % 3 == 0 else czii_score(s, o).score

    res = bootstrap_ci(every_third_nan, sub, sol, n_resamples=30, fast=False,
                       return_samples=True)
    assert res.metric == "test_resamples_without_a_finite_score_are_counted_and_left_out" \
        ".<locals>.every_third_nan"
    assert res.n_nonfinite == int(np.isnan(res.samples).sum()) == 10
    finite = res.samples[np.isfinite(res.samples)]
    assert (res.low, res.high) == tuple(np.percentile(finite, [2.5, 97.5]))


def test_one_experiment_gives_a_degenerate_interval():
    sol, sub = case(4, n_exp=1)
    res = bootstrap_ci(czii_score, sub, sol, n_resamples=50)
    assert res.low == res.high == pytest.approx(res.estimate, abs=1e-15)


def test_report_counts_give_the_same_interval():
    sol, sub = case(5)
    rep = czii_score(sub, sol, per_experiment=True)
    a = bootstrap_czii_report(rep, n_resamples=100, seed=2)
    b = bootstrap_ci(czii_score, sub, sol, n_resamples=100, seed=2)
    assert (a.estimate, a.low, a.high) == (b.estimate, b.low, b.high)
    with pytest.raises(ConfigError, match="per_experiment"):
        bootstrap_czii_report(czii_score(sub, sol), n_resamples=10)


def test_byu_fast_path_equals_rescoring():
    rng = np.random.default_rng(0)
    n = 30
    axes = ["Motor axis 0", "Motor axis 1", "Motor axis 2"]
    pos = rng.integers(0, 300, (n, 3)).astype(float)
    has = rng.random(n) < 0.6
    pos[~has] = -1
    sol = pd.DataFrame({"tomo_id": [f"t{i}" for i in range(n)],
                        **{a: pos[:, i] for i, a in enumerate(axes)}, "Voxel spacing": 10.0,
                        "Has motor": has.astype(int)})
    pred = pos + rng.integers(-120, 120, (n, 3))
    sub = pd.DataFrame({"tomo_id": sol["tomo_id"], **{a: pred[:, i] for i, a in enumerate(axes)}})
    kw = {"n_resamples": 60, "group_col": "tomo_id", "return_samples": True}
    fast = bootstrap_ci(byu_score, sub, sol, **kw)
    slow = bootstrap_ci(byu_score, sub, sol, fast=False, **kw)
    np.testing.assert_array_equal(fast.samples, slow.samples)


def test_any_metric_can_be_bootstrapped():
    sol, sub = case(6)
    res = bootstrap_ci(map_picks, sub, sol, n_resamples=5, seed=0)
    assert res.estimate == map_picks(sub, sol).map
    assert res.low <= res.high


def test_paired_identical_submissions_differ_by_zero():
    sol, sub = case(7)
    res = paired_bootstrap(czii_score, sub, sub, sol, n_resamples=100)
    assert res.difference == 0.0 and res.low == res.high == 0.0
    assert res.p_value == 1.0


def test_paired_detects_a_clearly_worse_submission():
    sol, sub = case(8)
    worse = sub.sample(frac=0.5, random_state=0)
    res = paired_bootstrap(czii_score, sub, worse, sol, n_resamples=200, seed=1)
    assert res.difference == res.estimate_a - res.estimate_b > 0
    assert 0 < res.low <= res.difference <= res.high
    assert res.p_value < 0.05


def test_bad_arguments():
    sol, sub = case(9)
    with pytest.raises(ConfigError):
        bootstrap_ci(czii_score, sub, sol, n_resamples=0)
    with pytest.raises(ConfigError):
        bootstrap_ci(czii_score, sub, sol, confidence=1.5)
    with pytest.raises(InputError, match="tomo"):
        bootstrap_ci(czii_score, sub, sol, group_col="tomo")
