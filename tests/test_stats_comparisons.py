"""Intervals over experiments and seeds, the exact sign-flip comparison, ranks built on it."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryobench.errors import ConfigError
from cryobench.metrics import czii_score, paired_bootstrap
from cryobench.metrics.bootstrap import paired_sign_flip, sign_flip_counts
from cryobench.particles import czii_radii
from cryobench.report import stats
from cryobench.report.stats import CountCube
from cryobench.testing import simulation as sim


def f1_cube(tp_per_exp, refs=10, seeds=None):
    """One class of weight 1, F1, no false positives: the score is 2t/(R + t), t the summed tp."""
    tp = np.atleast_2d(np.asarray(tp_per_exp))
    s, n = tp.shape
    counts = np.stack([tp, np.zeros_like(tp), refs - tp], axis=-1)[:, :, None, :]
    return CountCube(list(range(s)) if seeds is None else list(seeds),
                     [f"TS_{i}" for i in range(n)], ["c"], counts.astype(np.int64),
                     np.array([1.0]), 1.0, 1.0)


def g(t, total=30):
    return 2 * t / (total + t)


# ----- the sign flip, worked by hand -----------------------------------------------------------
def test_sign_flip_by_hand_p_half():
    # refs 10 per tomogram; tp of A (10, 6, 9), of B (0, 8, 6); precision 1, so F1 = g(sum tp).
    # The flips that leave tomogram 0 alone (its complements give the negated difference):
    #   {}     A 25, B 14: g(25) - g(14) = 0.27273  (observed)
    #   {1}    A 27, B 12: 0.37594  >= observed
    #   {2}    A 22, B 17: 0.12275
    #   {1,2}  A 24, B 15: 0.22222
    # two of the four pairs reach |observed|: p = 2/4.
    a, b = f1_cube([10, 6, 9]), f1_cube([0, 8, 6])
    res = stats.sign_flip_test(a, b)
    assert res.statistic == pytest.approx(g(25) - g(14))
    assert res.exact and res.n_flips == 4 and res.min_p == 0.25
    assert res.p_value == 0.5


def test_sign_flip_winning_every_tomogram_gives_the_minimum_not_zero():
    # A finds all 10 on each of 3 tomograms, B 5: only the identity (and its complement) reach
    # the observed difference g(30) - g(15) = 1/3; {1}: 0, {2}: 0, {1,2}: g(20) - g(25) < 1/3.
    res = stats.sign_flip_test(f1_cube([10, 10, 10]), f1_cube([5, 5, 5]))
    assert res.statistic == pytest.approx(1 / 3)
    assert res.p_value == res.min_p == 2 / 2**3


def test_sign_flip_one_differing_tomogram_is_never_significant():
    # only tomogram 0 differs: every flip pair has |difference| = observed, so p = 1
    res = stats.sign_flip_test(f1_cube([10, 10, 10]), f1_cube([5, 10, 10]))
    assert res.p_value == 1.0


def test_sign_flip_identical_entries_p_is_one():
    rng = np.random.default_rng(0)
    a = CountCube([0, 1], ["a", "b", "c", "d", "e"], ["x", "y"],
                  rng.integers(0, 20, (2, 5, 2, 3)), np.array([1.0, 2.0]), 3.0, 4.0)
    assert stats.sign_flip_test(a, a).p_value == 1.0
    c = stats.paired_comparison(a, a)
    assert c.difference == 0.0 and c.p_value == 1.0 and c.p_t == 1.0


def test_sign_flip_monte_carlo_beyond_the_exact_limit():
    rng = np.random.default_rng(1)
    tp_a, tp_b = rng.integers(5, 10, 20), rng.integers(0, 6, 20)
    res = stats.sign_flip_test(f1_cube(tp_a), f1_cube(tp_b), max_exact=1000, n_flips=499)
    assert not res.exact and res.n_flips == 499 and res.min_p == 1 / 500
    assert res.p_value == pytest.approx(round(res.p_value * 500) / 500)  # (1 + hits) / 500
    assert res.p_value >= res.min_p
    again = stats.sign_flip_test(f1_cube(tp_a), f1_cube(tp_b), max_exact=1000, n_flips=499)
    assert again == res  # seeded


def test_sign_flip_counts_checks_shapes():
    with pytest.raises(ConfigError):
        sign_flip_counts(np.zeros((1, 3, 2, 3)), np.zeros((1, 4, 2, 3)), lambda s: s[..., 0, 0])


# ----- properties ------------------------------------------------------------------------------
@st.composite
def cube_pairs(draw, max_exp=6, max_seeds=3):
    n = draw(st.integers(1, max_exp))
    s = draw(st.integers(1, max_seeds))
    k = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    w = rng.integers(0, 3, k).astype(float)
    w[0] = max(w[0], 1.0)

    beta = draw(st.sampled_from([1.0, 2.0, 4.0]))

    def cube():
        counts = rng.integers(0, 15, (s, n, k, 3))
        return CountCube(list(range(s)), [f"e{i}" for i in range(n)], [f"c{j}" for j in range(k)],
                         counts, w, float(w.sum()), beta)

    return cube(), cube()


@settings(max_examples=60, deadline=None)
@given(cube_pairs())
def test_p_never_below_its_minimum(pair):
    a, b = pair
    c = stats.paired_comparison(a, b)
    n = len(a.experiments)
    assert c.min_p == 2 / 2**n
    assert c.min_p <= c.p_sign_flip <= 1.0
    assert c.p_value >= c.p_sign_flip >= c.min_p > 0
    assert c.p_value <= 1.0


@settings(max_examples=30, deadline=None)
@given(cube_pairs())
def test_identical_methods_give_p_one(pair):
    a, _ = pair
    c = stats.paired_comparison(a, a)
    assert c.p_value == c.p_sign_flip == 1.0 and c.difference == 0.0


@settings(max_examples=40, deadline=None)
@given(cube_pairs())
def test_comparison_is_antisymmetric_and_intervals_hold_the_estimate(pair):
    a, b = pair
    ab, ba = stats.paired_comparison(a, b), stats.paired_comparison(b, a)
    assert ab.difference == -ba.difference
    assert ab.p_sign_flip == ba.p_sign_flip
    assert ab.p_value == pytest.approx(ba.p_value, rel=1e-12)
    if ab.bounds is not None:
        assert ab.low <= ab.difference <= ab.high
        assert ab.low == pytest.approx(-ba.high) and ab.high == pytest.approx(-ba.low)
    for cube in (a, b):
        iv = stats.score_interval(cube)
        if iv.bounds is not None:
            assert iv.low <= iv.estimate <= iv.high
            assert iv.se >= 0


@settings(max_examples=40, deadline=None)
@given(cube_pairs(), st.randoms(use_true_random=False))
def test_relabelling_experiments_and_seeds_changes_nothing(pair, rnd):
    a, b = pair
    perm_e = list(range(len(a.experiments)))
    rnd.shuffle(perm_e)
    perm_s = list(range(len(a.seeds)))
    rnd.shuffle(perm_s)

    def relabel(c):
        return CountCube([c.seeds[i] for i in perm_s], [c.experiments[i] for i in perm_e],
                         c.classes, c.counts[perm_s][:, perm_e], c.weights, c.weight_total,
                         c.beta)

    x, y = stats.paired_comparison(a, b), stats.paired_comparison(relabel(a), relabel(b))
    assert x.p_value == pytest.approx(y.p_value, abs=1e-12)
    assert x.difference == pytest.approx(y.difference, abs=1e-12)
    assert x.se == pytest.approx(y.se, rel=1e-9, abs=1e-12) or (math.isnan(x.se)
                                                                and math.isnan(y.se))
    i1, i2 = stats.score_interval(a), stats.score_interval(relabel(a))
    assert i1.estimate == pytest.approx(i2.estimate, abs=1e-12)
    if i1.bounds is not None:
        assert i1.low == pytest.approx(i2.low, abs=1e-9)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=12))
def test_holm_adjustment(ps):
    adj = stats.holm_adjust(ps)
    assert np.all(adj >= np.asarray(ps) - 1e-15) and np.all(adj <= 1.0)
    order = np.argsort(ps, kind="stable")
    assert np.all(np.diff(adj[order]) >= -1e-15)  # monotone in the raw p


def test_holm_by_hand():
    # sorted p 0.01, 0.02, 0.04 with m = 3: 3·0.01 = 0.03, max(0.03, 2·0.02) = 0.04, max(.04, .04)
    np.testing.assert_allclose(stats.holm_adjust([0.04, 0.01, 0.02]), [0.04, 0.03, 0.04])


# ----- intervals ------------------------------------------------------------------------------
def test_one_seed_interval_is_a_jackknife_t_by_hand():
    cube = f1_cube([10, 6, 9])  # sum 25 of 30 references
    loo = [g(15, 20), g(19, 20), g(16, 20)]  # each tomogram left out (20 references remain)
    np.testing.assert_allclose(stats.jackknife_scores(cube)[0], loo)
    var = 2 / 3 * sum((x - np.mean(loo)) ** 2 for x in loo)
    iv = stats.score_interval(cube)
    assert not iv.includes_seed_spread and iv.df == 2 and iv.se_seeds is None
    assert iv.estimate == pytest.approx(g(25))
    assert iv.se == pytest.approx(math.sqrt(var))
    half = 4.302652729911275 * math.sqrt(var)
    assert iv.estimate - iv.low == pytest.approx(half)
    assert iv.high == min(1.0, iv.estimate + half)


def test_seed_part_of_the_interval():
    # every tomogram identical within a seed: no shared tomogram variation, only seed spread
    cube = f1_cube([[10, 10, 10], [8, 8, 8], [6, 6, 6]])
    scores = [g(30), g(24), g(18)]
    iv = stats.score_interval(cube)
    assert iv.includes_seed_spread and iv.se_experiments == 0.0
    assert iv.se_seeds == pytest.approx(np.std(scores, ddof=1) / math.sqrt(3))
    # with no experiment part the pivot is a t with S - 1 = 2 degrees of freedom
    half = 4.302652729911275 * iv.se_seeds
    assert iv.estimate - iv.low == pytest.approx(half, rel=1e-6)
    assert iv.high == pytest.approx(min(1.0, iv.estimate + half), rel=1e-6)


def test_pivot_quantile_matches_monte_carlo():
    rng = np.random.default_rng(3)
    x = 0.4 * rng.standard_t(23, 400_000) + 0.9 * rng.standard_t(2, 400_000)
    q = stats._pivot_quantile(0.95, 0.4, 23, 0.9, 2)
    assert np.mean(np.abs(x) <= q) == pytest.approx(0.95, abs=0.002)


def test_no_interval_from_one_experiment():
    iv = stats.score_interval(f1_cube([[5], [6]]))
    assert iv.bounds is None
    with pytest.raises(ConfigError):
        stats.score_interval(f1_cube([5, 6]), level=1.5)


def test_entries_scored_differently_cannot_be_compared():
    a = f1_cube([5, 6, 7])
    b = CountCube(a.seeds, a.experiments, a.classes, a.counts, a.weights, 1.0, 4.0)
    with pytest.raises(ConfigError, match="different parameters"):
        stats.paired_comparison(a, b)
    c = CountCube(a.seeds, ["x", "y", "z"], a.classes, a.counts, a.weights, 1.0, 1.0)
    with pytest.raises(ConfigError, match="share no test experiment"):
        stats.paired_comparison(a, c)


# ----- ranks ------------------------------------------------------------------------------------
def test_ranks_separate_only_significant_pairs():
    scores = [0.9, 0.8, 0.5]
    p = np.array([[np.nan, 0.2, 0.001], [0.2, np.nan, 0.004], [0.001, 0.004, np.nan]])
    r = stats.rank_by_comparisons(scores, p)
    # Holm over 3 pairs: 0.003, 0.008, 0.2 -> the third entry is beaten by both others
    assert r.ranks == [1, 1, 3] and r.order == [0, 1, 2]
    assert r.tied_with[0] == [1] and r.beaten_by[2] == [0, 1]
    assert r.can_separate


def test_rank_says_when_it_cannot_separate():
    rng = np.random.default_rng(4)
    cubes = [CountCube([0, 1, 2], [f"e{i}" for i in range(4)], ["c"],
                       np.stack([np.full((3, 4, 1), t), np.zeros((3, 4, 1)),
                                 np.full((3, 4, 1), 10 - t)], -1).astype(np.int64)
                       + rng.integers(0, 2, (3, 4, 1, 3)), np.array([1.0]), 1.0, 1.0)
             for t in (10, 5, 1)]
    r = stats.rank_cubes(cubes)
    assert not r.can_separate and r.ranks == [1, 1, 1]
    assert "smallest attainable p-value is 0.125" in r.reason


def test_rank_cubes_separates_clear_differences_with_enough_tomograms():
    rng = np.random.default_rng(5)
    n = 24
    cubes = []
    for hit in (0.95, 0.6, 0.2):
        tp = rng.binomial(20, np.clip(hit + rng.normal(0, 0.02, (3, 1)), 0, 1), (3, n))
        cubes.append(f1_cube(tp, refs=20))
    r = stats.rank_cubes(cubes, n_flips=1999)
    assert r.can_separate and r.ranks == [1, 2, 3]
    assert all(c.includes_seed_spread for c in r.comparisons.values())


def test_single_seed_entries_are_not_ranked_against_others():
    cubes = [f1_cube([10] * 10), f1_cube([1] * 10)]
    r = stats.rank_cubes(cubes)
    assert r.ranks == [1, 1] and "fewer than two seeds" in r.reason
    assert stats.rank_cubes(cubes, require_seed_spread=False).ranks == [1, 2]


# ----- the metrics-level test on pick tables ---------------------------------------------------
def test_paired_bootstrap_p_is_the_sign_flip_and_never_zero():
    # A picks every reference of 4 experiments, B half of them: A wins every experiment, where the
    # bootstrap p-value was 0; the sign flip gives its minimum 2/2^4
    rng = np.random.default_rng(6)
    types = list(czii_radii())
    n_ref = 200
    sol = pd.DataFrame({"experiment": [f"TS_{i}" for i in np.arange(n_ref) % 4],
                        "particle_type": rng.choice(types, n_ref),
                        "x": rng.uniform(0, 3000, n_ref), "y": rng.uniform(0, 3000, n_ref),
                        "z": rng.uniform(0, 800, n_ref)})
    a = sol.copy()
    a[["x", "y", "z"]] += rng.normal(0, 5, (n_ref, 3))
    b = a[np.arange(n_ref) % 8 < 4].reset_index(drop=True)  # half of each experiment
    res = paired_bootstrap(czii_score, a, b, sol, n_resamples=50, seed=0)
    assert res.difference > 0 and res.p_value == res.p_min == 2 / 2**4
    fast = paired_sign_flip(czii_score, a, b, sol)
    slow = paired_sign_flip(czii_score, a, b, sol, fast=False)
    assert fast.exact and slow.exact and fast.n_flips == slow.n_flips == 8
    assert fast.p_value == slow.p_value == res.p_value
    assert fast.statistic == pytest.approx(slow.statistic, abs=1e-12)
    same = paired_bootstrap(czii_score, a, a, sol, n_resamples=20)
    assert same.p_value == 1.0


# ----- the simulation and a seeded coverage check ------------------------------------------------
def test_simulated_pick_tables_score_to_the_simulated_counts():
    sc = sim.czii_scenario()
    rep = sim.simulate(sc, 3, 2, np.random.default_rng(8))
    sub, sol = sim.pick_tables(rep, np.random.default_rng(9))
    pe = czii_score(sub, sol, per_experiment=True).per_experiment
    names = [c.name for c in sc.classes]
    for row in pe.itertuples():
        model, tomo = row.experiment.split("|")
        mi, si = (int(x) for x in model[1:].split("s"))
        want = rep.counts[mi, si, int(tomo[3:]), names.index(row.particle_type)]
        assert (row.tp, row.fp, row.fn) == tuple(want)


def test_true_score_without_seed_spread_is_the_model_score():
    sc = sim.czii_scenario(seed_sd=0.0, seed_class_sd=0.0, seed_fp_sd=0.0)
    k = len(sc.classes)
    model = sim.model_true_scores(sc, np.zeros(k), np.zeros(k))
    assert sim.true_scores(sc, (0.0,), n_draws=10)[0] == pytest.approx(float(model))
    # and a large sample of tomograms scores close to it
    rep = sim.simulate(sc, 3000, 1, np.random.default_rng(10), (0.0,))
    assert sim.cube_of(rep, 0).seed_scores()[0] == pytest.approx(float(model), abs=0.01)


def test_coverage_and_false_positives_on_a_small_simulation():
    """Seeded (cannot flake): 120 replicates of 8 tomograms x 3 seeds."""
    sc = sim.czii_scenario()
    theta = sim.true_scores(sc, (0.0,), n_draws=5000)[0]
    rng = np.random.default_rng(11)
    new = old = fp_new = fp_old = 0
    reps = 120
    for r in range(reps):
        rep = sim.simulate(sc, 8, 3, rng)
        a, b = sim.cube_of(rep, 0), sim.cube_of(rep, 1)
        iv = stats.score_interval(a)
        new += iv.low <= theta <= iv.high
        lo, hi = stats.percentile_interval(stats.bootstrap_seed_mean(a, 300, r))
        old += lo <= theta <= hi
        fp_new += stats.paired_comparison(a, b).p_value <= 0.05
        _, d = stats.paired_bootstrap_difference(a, b, 300, r)
        fp_old += min(1.0, 2 * min(np.mean(d <= 0), np.mean(d >= 0))) <= 0.05
    assert new / reps >= 0.9
    assert old / reps <= 0.85  # the percentile bootstrap leaves out the seed spread
    assert fp_new / reps <= 0.1
    assert fp_old / reps >= 0.25


def test_interval_is_cut_to_the_score_range():
    # seeds score 1.0, 1.0 and 0.18 (F1 of 30, 30 and 3 tp of 30 references): the seed part
    # alone, 4.30 x 0.27, reaches past both ends of [0, 1]; the interval stops at them
    cube = f1_cube([[10, 10, 10], [10, 10, 10], [1, 1, 1]])
    iv = stats.score_interval(cube)
    assert iv.estimate - 4.302652729911275 * iv.se_seeds < 0.0
    assert iv.estimate + 4.302652729911275 * iv.se_seeds > 1.0
    assert (iv.low, iv.high) == (0.0, 1.0) == stats.SCORE_RANGE
    assert iv.low <= iv.estimate <= iv.high
