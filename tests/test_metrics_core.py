"""The counting core, the parameter object and the metric registry (the one dispatcher)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryobench import metrics as M
from cryobench.errors import ConfigError, InputError
from cryobench.metrics.counts import (
    class_counts,
    czii_threshold_curve,
    fbeta,
    motor_outcomes,
    summarise_counts,
)
from cryobench.metrics.params import DEFAULT_BETA, MetricParams
from cryobench.metrics.registry import METRIC_REGISTRY, get_metric, infer_metric
from cryobench.vocab import METRICS


def picks(rows, with_score=True):
    cols = ["experiment", "particle_type", "x", "y", "z"] + (["score"] if with_score else [])
    return pd.DataFrame(rows, columns=cols)


# ----- parameters ---------------------------------------------------------------------------------
def test_params_defaults_are_the_official_values():
    p = MetricParams()
    assert p.beta_for("czii") == 4.0 and p.beta_for("byu") == 2.0 == DEFAULT_BETA["byu"]
    assert p.distance_multiplier == 0.5 and p.matching == "kaggle"
    assert p.distance_angstrom == 1000.0 and p.radii is None and p.weights is None


@pytest.mark.parametrize("kwargs, message", [
    ({"beta": 0}, "beta must be a finite number > 0"),
    ({"beta": float("nan")}, "beta must be a finite number"),
    ({"beta": "4"}, "beta must be a number"),
    ({"distance_multiplier": -1}, "distance multiplier"),
    ({"distance_angstrom": float("inf")}, "distance"),
    ({"matching": "greedy"}, "unknown matching 'greedy'"),
    ({"radii": {"ribosome": float("nan")}}, "radius of 'ribosome'"),
    ({"weights": {"ribosome": "heavy"}}, "weight of 'ribosome' must be a number"),
    ({"weights": [1, 2]}, "weights must map"),
])
def test_params_are_validated_once(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        MetricParams(**kwargs)


def test_params_from_a_record_ignore_bookkeeping_and_empty_tables():
    rec = {"beta": 4, "distance_multiplier": 0.5, "matching": "one-to-one", "radii": {},
           "weights": {"ribosome": 1.0}, "n_candidates": 12, "thresholds": {"ribosome": 75.0}}
    p = MetricParams.from_record(rec)
    assert p.matching == "one-to-one" and p.radii is None and p.weights == {"ribosome": 1.0}


# ----- the counting core --------------------------------------------------------------------------
def test_fbeta_rules_agree_and_each_is_its_scripts():
    tp, fp, fn = np.array([3, 0, 5]), np.array([1, 0, 0]), np.array([2, 4, 0])
    p1, r1, f1 = fbeta(tp, fp, fn, 2.0, "czii")
    p2, r2, f2 = fbeta(tp, fp, fn, 2.0, "byu")
    np.testing.assert_allclose(f1, f2, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(p1, p2)
    assert f1[1] == 0.0 and f1[2] == 1.0
    with pytest.raises(ValueError, match="unknown F-beta rule"):
        fbeta(tp, fp, fn, 2.0, "f1")


def test_class_counts_follow_the_kaggle_rule():
    truth = picks([("a", "ribosome", 0, 0, 0), ("a", "ribosome", 100, 0, 0),
                   ("b", "ribosome", 0, 0, 0)], with_score=False)
    cand = picks([("a", "ribosome", 10, 0, 0, 1.0), ("a", "ribosome", -10, 0, 0, 1.0),
                  ("a", "ribosome", 500, 0, 0, 1.0), ("b", "ribosome", 0, 75, 0, 1.0)])
    # ref a/0 hit twice (one tp, the duplicate is an fp); ref a/100 missed; b: d = 75 <= 75
    assert class_counts(cand, truth, 75.0) == (2, 2, 1)
    # a candidate of another experiment never matches
    assert class_counts(cand.assign(experiment="c"), truth, 75.0) == (0, 4, 3)


_coord = st.integers(0, 12).map(lambda v: 25.0 * v)


@settings(max_examples=60, deadline=None)
@given(refs=st.lists(st.tuples(st.sampled_from("ab"), _coord, _coord), min_size=0, max_size=8,
                     unique=True),
       cands=st.lists(st.tuples(st.sampled_from("ab"), _coord, _coord,
                                st.integers(0, 5).map(float)), min_size=1, max_size=10))
def test_threshold_curve_equals_the_official_score_at_every_level(refs, cands):
    """At each score level the curve's counts are those czii_score gives the kept picks (the
    tuners hand it candidates and references of the same runs, so the solution has them all)."""
    truth = picks([(e, "ribosome", x, y, 0.0) for e, x, y in refs], with_score=False)
    cand = picks([(e, "ribosome", x, y, 0.0, s) for e, x, y, s in cands])
    cand = cand[cand["experiment"].isin(set(truth["experiment"]))]
    if len(cand) == 0:
        return
    levels, tp, kept = czii_threshold_curve(cand, truth, 75.0)
    assert list(levels) == sorted(set(cand["score"]), reverse=True)
    if len(truth) == 0:
        assert (tp == 0).all()
        return
    radii, weights = {"ribosome": 150.0}, {"ribosome": 1.0}
    for level, t, k in zip(levels, tp, kept, strict=True):
        sub = cand[cand["score"] >= level]
        rep = M.czii_score(sub, truth, radii=radii, weights=weights)
        c = rep.per_class["ribosome"]
        assert (c.tp, c.tp + c.fp, c.fn) == (t, k, len(truth) - t)


def test_motor_outcomes_are_the_byu_rule():
    has = [True, True, True, False, False]
    pred = [True, True, False, True, False]
    within = [True, False, False, False, False]
    assert list(motor_outcomes(has, pred, within)) == ["tp", "fn", "fn", "fp", "tn"]


def test_summarise_counts_reproduces_the_scorer():
    rng = np.random.default_rng(1)
    truth = picks([(f"e{i % 3}", t, *rng.uniform(0, 3000, 3))
                   for i, t in enumerate(["ribosome", "apo-ferritin", "thyroglobulin"] * 7)],
                  with_score=False)
    sub = truth.sample(frac=0.7, random_state=1).assign(score=1.0)
    sub[["x", "y", "z"]] += rng.normal(0, 20, (len(sub), 3))
    rep = M.czii_score(sub, truth, per_experiment=True)
    score, per_class = summarise_counts(rep.per_experiment, M.czii_score(sub, truth)
                                        .params["weights"], 4.0)
    assert score == rep.score
    for name, stats in rep.per_class.items():
        assert per_class[name]["fbeta"] == stats.fbeta and per_class[name]["tp"] == stats.tp


# ----- the registry ----------------------------------------------------------------------------
def test_registry_names_are_the_vocabulary():
    assert tuple(METRIC_REGISTRY) == METRICS
    with pytest.raises(ConfigError, match="unknown metric 'f1'; choose one of czii, byu, map"):
        get_metric("f1")


def test_evaluate_equals_the_scorers_it_dispatches_to():
    from importlib import resources

    ex = resources.files("cryobench").joinpath("examples")
    sub = pd.read_csv(ex / "czii_submission.csv")
    sol = pd.read_csv(ex / "czii_solution.csv")
    params = MetricParams(matching="one-to-one", distance_multiplier=0.7)
    ev = get_metric("czii").evaluate(sub, sol, params)
    direct = M.czii_score(sub, sol, matching="one-to-one", distance_multiplier=0.7)
    assert ev.score == direct.score and ev.counts is not None
    assert ev.diagnostics.params["matching"] == "one-to-one"  # diagnostics follow the params
    bsub = pd.read_csv(ex / "byu_submission.csv")
    bsol = pd.read_csv(ex / "byu_solution.csv")
    ev = get_metric("byu").evaluate(bsub, bsol, MetricParams(distance_angstrom=500))
    assert ev.score == M.byu_score(bsub, bsol, distance_angstrom=500).score
    assert list(ev.counts.columns) == ["experiment", "particle_type", "tp", "fp", "fn"]


@pytest.mark.parametrize("columns, metric", [
    (["experiment", "particle_type", "x", "y", "z"], "czii"),
    (["tomo_id", "Motor axis 0", "Motor axis 1", "Motor axis 2"], "byu"),
    (["image_id", "label", "x0", "y0", "x1", "y1", "score"], "map"),
])
def test_infer_metric(columns, metric):
    assert infer_metric(columns) == metric


def test_infer_metric_refuses_unknown_columns():
    with pytest.raises(InputError, match="cannot tell the metric"):
        infer_metric(["a", "b"], "x.csv")
