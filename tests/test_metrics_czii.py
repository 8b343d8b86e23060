"""CZII score: one hand-worked test per rule, the official script as an oracle, properties."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.spatial import KDTree

from cryobench.errors import ConfigError, InputError
from cryobench.metrics import czii_score, czii_score_from_counts
from cryobench.metrics._matching import pairs_within
from cryobench.particles import czii_radii, czii_weights

TYPES = list(czii_radii())


def picks(rows, score=None) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["experiment", "particle_type", "x", "y", "z"])
    df[["x", "y", "z"]] = df[["x", "y", "z"]].astype(float)
    if score is not None:
        df["score"] = score
    return df


# --------------------------------------------------------------------------- the oracle
def kaggle_reference(solution, submission, distance_multiplier=0.5, beta=4):
    """A faithful port of the official Kaggle CZII metric script (per-group loop, KDTree)."""
    particle_radius = {k: v * distance_multiplier for k, v in czii_radii().items()}
    weights = czii_weights()
    split_experiments = set(solution["experiment"].unique())
    submission = submission.loc[submission["experiment"].isin(split_experiments)]
    assert set(submission["particle_type"].unique()).issubset(set(weights))
    assert solution.duplicated(subset=["experiment", "x", "y", "z"]).sum() == 0
    results = {t: [0, 0, 0] for t in solution["particle_type"].unique()}
    for experiment in split_experiments:
        for particle_type in solution["particle_type"].unique():
            radius = particle_radius[particle_type]
            sel = (solution["experiment"] == experiment) & (solution["particle_type"] ==
                                                            particle_type)
            ref = solution.loc[sel, ["x", "y", "z"]].values
            sel = (submission["experiment"] == experiment) & (submission["particle_type"] ==
                                                              particle_type)
            cand = submission.loc[sel, ["x", "y", "z"]].values
            if len(ref) == 0:
                tp, fp, fn = 0, len(cand), 0
            elif len(cand) == 0:
                tp, fp, fn = 0, 0, len(ref)
            else:
                matches = KDTree(cand).query_ball_tree(KDTree(ref), r=radius)
                tp = len({m for ms in matches for m in ms})
                fp, fn = len(cand) - tp, len(ref) - tp
            results[particle_type][0] += tp
            results[particle_type][1] += fp
            results[particle_type][2] += fn
    aggregate = 0.0
    for particle_type, (tp, fp, fn) in results.items():
        precision = tp / (tp + fp) if tp + fp > 0 else 0
        recall = tp / (tp + fn) if tp + fn > 0 else 0
        fbeta = ((1 + beta**2) * (precision * recall) / (beta**2 * precision + recall)
                 if (precision + recall) > 0 else 0.0)
        aggregate += fbeta * weights.get(particle_type, 1.0)
    return aggregate / sum(weights.values()), results


def random_case(seed: int, grid: float = 10.0):
    """Solution/submission on a coarse grid, so many distances sit exactly on a threshold."""
    rng = np.random.default_rng(seed)
    n_ref = int(rng.integers(1, 250))
    sol = pd.DataFrame({
        "experiment": [f"TS_{i}" for i in rng.integers(0, 4, n_ref)],
        "particle_type": rng.choice(TYPES[: int(rng.integers(1, 7))], n_ref),
        "x": rng.integers(0, 40, n_ref) * grid, "y": rng.integers(0, 40, n_ref) * grid,
        "z": rng.integers(0, 15, n_ref) * grid,
    }).drop_duplicates(["experiment", "x", "y", "z"]).reset_index(drop=True)
    n_cand = int(rng.integers(0, 500))
    sub = sol.iloc[rng.integers(0, len(sol), n_cand)].reset_index(drop=True)
    jitter = rng.integers(-8, 9, (n_cand, 3)) * grid * rng.choice([0, 0.5, 1], (n_cand, 1))
    sub[["x", "y", "z"]] = sub[["x", "y", "z"]].to_numpy() + jitter
    swap = rng.random(n_cand) < 0.2
    sub.loc[swap, "particle_type"] = rng.choice(TYPES, int(swap.sum()))
    sub.loc[rng.random(n_cand) < 0.1, "experiment"] = "TS_foreign"
    return sol, sub


# --------------------------------------------------------------------------- hand-worked rules
def test_threshold_is_inclusive():
    # apo-ferritin: radius 60 Å, threshold 0.5 x 60 = 30 Å; a candidate exactly 30 Å away counts
    sol = picks([("A", "apo-ferritin", 0, 0, 0)])
    at = czii_score(picks([("A", "apo-ferritin", 30, 0, 0)]), sol)
    assert (at.per_class["apo-ferritin"].tp, at.per_class["apo-ferritin"].fp) == (1, 0)
    beyond = czii_score(picks([("A", "apo-ferritin", np.nextafter(30.0, 31.0), 0, 0)]), sol)
    c = beyond.per_class["apo-ferritin"]
    assert (c.tp, c.fp, c.fn) == (0, 1, 1)


def test_threshold_uses_the_squared_distance_like_scipy():
    # 3-4-5 triangle scaled: the squared distance 900 equals 30² exactly
    sol = picks([("A", "apo-ferritin", 0, 0, 0)])
    rep = czii_score(picks([("A", "apo-ferritin", 18, 24, 0)]), sol)
    assert rep.per_class["apo-ferritin"].tp == 1


def test_duplicates_near_one_reference_are_false_positives():
    sol = picks([("A", "ribosome", 1000, 1000, 1000)])
    sub = picks([("A", "ribosome", 1000, 1000, 1000), ("A", "ribosome", 1010, 1000, 1000),
                 ("A", "ribosome", 1000, 1020, 1000)])
    c = czii_score(sub, sol).per_class["ribosome"]
    assert (c.tp, c.fp, c.fn) == (1, 2, 0)
    assert c.precision == pytest.approx(1 / 3)


def test_one_candidate_near_two_references_is_two_true_positives():
    # two apo-ferritin references 40 Å apart, one candidate 20 Å from each (threshold 30 Å)
    sol = picks([("A", "apo-ferritin", 0, 0, 0), ("A", "apo-ferritin", 40, 0, 0)])
    c = czii_score(picks([("A", "apo-ferritin", 20, 0, 0)]), sol).per_class["apo-ferritin"]
    assert (c.tp, c.fp, c.fn) == (2, -1, 0)
    assert c.precision == 2.0  # tp / (tp + fp) = 2 / 1
    assert c.fbeta > 1.0  # the Kaggle rule lets a class's F-beta exceed 1


def test_counts_are_micro_summed_over_experiments():
    sol = picks([("A", "ribosome", 0, 0, 0)] + [("B", "ribosome", 1000 * i, 0, 0)
                                                 for i in range(3)])
    sub = picks([("A", "ribosome", 0, 0, 0), ("B", "ribosome", 0, 5000, 0)])
    c = czii_score(sub, sol).per_class["ribosome"]
    assert (c.tp, c.fp, c.fn) == (1, 1, 3)
    # micro: P = 1/2, R = 1/4 -> F4 = 17 * (1/8) / (16/2 + 1/4)
    assert c.fbeta == pytest.approx(17 * (1 / 8) / (8 + 0.25))


def test_fbeta_value_worked_by_hand():
    sol = picks([("A", "ribosome", 0, 0, 0), ("A", "ribosome", 1000, 0, 0),
                 ("A", "ribosome", 2000, 0, 0)])
    sub = picks([("A", "ribosome", 0, 0, 0), ("A", "ribosome", 1000, 0, 0),
                 ("A", "ribosome", 5000, 0, 0)])
    c = czii_score(sub, sol).per_class["ribosome"]
    # tp 2, fp 1, fn 1: P = R = 2/3, so F-beta = 2/3 for every beta
    assert (c.tp, c.fp, c.fn) == (2, 1, 1)
    assert c.fbeta == pytest.approx(2 / 3) and c.f1 == pytest.approx(2 / 3)


def test_denominator_is_the_sum_of_all_weights():
    # only ribosomes (weight 1) in the solution; perfect picks still give 1/7
    sol = picks([("A", "ribosome", 0, 0, 0)])
    assert czii_score(sol, sol).score == 1 / 7


def test_beta_amylase_has_weight_zero():
    sol = picks([("A", "beta-amylase", 0, 0, 0)])
    rep = czii_score(sol, sol)
    assert rep.per_class["beta-amylase"].fbeta == 1.0 and rep.score == 0.0


def test_types_absent_from_the_solution_are_ignored_not_false_positives():
    sol = picks([("A", "ribosome", 0, 0, 0)])
    sub = picks([("A", "ribosome", 0, 0, 0), ("A", "thyroglobulin", 500, 500, 500)])
    rep = czii_score(sub, sol)
    assert list(rep.per_class) == ["ribosome"]
    assert rep.per_class["ribosome"].fp == 0
    assert rep.params["n_ignored_rows_of_types_absent_from_solution"] == 1


def test_candidates_in_an_experiment_without_that_type_are_false_positives():
    sol = picks([("A", "ribosome", 0, 0, 0), ("B", "thyroglobulin", 0, 0, 0)])
    sub = picks([("A", "ribosome", 0, 0, 0), ("B", "ribosome", 0, 0, 0)])
    c = czii_score(sub, sol).per_class["ribosome"]
    assert (c.tp, c.fp, c.fn) == (1, 1, 0)


def test_submission_rows_of_foreign_experiments_are_dropped():
    sol = picks([("A", "ribosome", 0, 0, 0)])
    sub = picks([("A", "ribosome", 0, 0, 0), ("Z", "ribosome", 0, 0, 0),
                 ("Z", "not-a-particle", 0, 0, 0)])
    rep = czii_score(sub, sol)
    assert rep.per_class["ribosome"].fp == 0
    assert rep.params["n_dropped_foreign_experiment_rows"] == 2


def test_unknown_particle_type_is_an_error():
    sol = picks([("A", "ribosome", 0, 0, 0)])
    with pytest.raises(InputError, match="unknown particle type.*'ribosme'") as err:
        czii_score(picks([("A", "ribosme", 0, 0, 0)]), sol)
    assert err.value.path == "submission"


def test_unknown_particle_type_in_the_solution_is_an_error():
    with pytest.raises(InputError, match="unknown particle type") as err:
        czii_score(picks([]), picks([("A", "proteasome", 0, 0, 0)]))
    assert err.value.path == "solution"


def test_duplicate_solution_rows_are_an_error():
    sol = picks([("A", "ribosome", 1, 2, 3), ("A", "ribosome", 1, 2, 3)])
    with pytest.raises(InputError, match="duplicate solution row") as err:
        czii_score(picks([]), sol)
    assert err.value.path == "solution"


def test_duplicate_solution_row_names_the_later_row():
    sol = picks([("A", "ribosome", 1, 2, 3), ("A", "ribosome", 1, 5, 5), ("B", "ribosome", 1, 2, 3),
                 ("A", "apo-ferritin", 1, 2, 3)])
    with pytest.raises(InputError, match=r"experiment 'A'.*\(data row 4\)"):
        czii_score(picks([]), sol)


def test_same_position_with_different_types_is_also_a_duplicate():
    # the Kaggle check is on (experiment, x, y, z), whatever the type
    sol = picks([("A", "ribosome", 1, 2, 3), ("A", "thyroglobulin", 1, 2, 3)])
    with pytest.raises(InputError, match="duplicate"):
        czii_score(picks([]), sol)


def test_same_position_in_two_experiments_is_fine():
    sol = picks([("A", "ribosome", 1, 2, 3), ("B", "ribosome", 1, 2, 3)])
    assert czii_score(sol, sol).per_class["ribosome"].tp == 2


def test_empty_submission_scores_zero():
    sol = picks([("A", "ribosome", 0, 0, 0), ("A", "apo-ferritin", 9, 9, 9)])
    rep = czii_score(picks([]), sol)
    assert rep.score == 0.0
    assert rep.per_class["ribosome"].fn == 1 and rep.per_class["ribosome"].precision == 0.0


def test_missing_column_and_nan_coordinate_are_input_errors():
    sol = picks([("A", "ribosome", 0, 0, 0)])
    with pytest.raises(InputError, match="missing column.*experiment"):
        czii_score(sol.drop(columns="experiment"), sol)
    bad = sol.copy()
    bad.loc[0, "y"] = np.nan
    with pytest.raises(InputError, match="'y'.*NaN"):
        czii_score(bad, sol)
    text = sol.astype({"x": object})
    text.loc[0, "x"] = "abc"
    with pytest.raises(InputError, match="non-numeric"):
        czii_score(text, sol)


def test_distance_multiplier_scales_the_threshold():
    sol = picks([("A", "ribosome", 0, 0, 0)])  # radius 150 Å
    sub = picks([("A", "ribosome", 100, 0, 0)])
    assert czii_score(sub, sol).per_class["ribosome"].tp == 0  # 100 > 75
    assert czii_score(sub, sol, distance_multiplier=0.8).per_class["ribosome"].tp == 1


def test_beta_is_a_parameter():
    sol = picks([("A", "ribosome", 0, 0, 0), ("A", "ribosome", 1000, 0, 0)])
    sub = picks([("A", "ribosome", 0, 0, 0)])  # P = 1, R = 1/2
    assert czii_score(sub, sol, beta=1).per_class["ribosome"].fbeta == pytest.approx(2 / 3)
    # beta 4: 17 * (1/2) / (16 + 1/2)
    assert czii_score(sub, sol).per_class["ribosome"].fbeta == pytest.approx(8.5 / 16.5)


def test_custom_particle_set_radii_and_weights():
    radii = {"proteasome": 80.0, "ribosome": 150.0}
    sol = picks([("A", "proteasome", 0, 0, 0), ("A", "ribosome", 900, 0, 0)])
    sub = picks([("A", "proteasome", 35, 0, 0)])
    rep = czii_score(sub, sol, radii=radii, weights={"proteasome": 3, "ribosome": 1})
    assert rep.per_class["proteasome"].tp == 1
    assert rep.score == pytest.approx(3 / 4)
    # without weights: the CZII weight of CZII classes, 1 otherwise
    assert czii_score(sub, sol, radii=radii).params["weights"] == {"proteasome": 1.0,
                                                                    "ribosome": 1.0}


def test_radii_and_weights_must_name_the_same_types():
    sol = picks([("A", "ribosome", 0, 0, 0)])
    with pytest.raises(ConfigError, match="same particle types"):
        czii_score(sol, sol, weights={"ribosome": 1.0})
    with pytest.raises(ConfigError, match="sum to 0"):
        czii_score(sol, sol, radii={"ribosome": 150}, weights={"ribosome": 0})


def test_bad_parameters_are_config_errors():
    sol = picks([("A", "ribosome", 0, 0, 0)])
    for kwargs in ({"beta": 0}, {"distance_multiplier": -1}, {"matching": "greedy"}):
        with pytest.raises(ConfigError):
            czii_score(sol, sol, **kwargs)


def test_one_to_one_mode_assigns_each_candidate_once():
    sol = picks([("A", "apo-ferritin", 0, 0, 0), ("A", "apo-ferritin", 40, 0, 0)])
    c = czii_score(picks([("A", "apo-ferritin", 20, 0, 0)]), sol,
                   matching="one-to-one").per_class["apo-ferritin"]
    assert (c.tp, c.fp, c.fn) == (1, 0, 1)


def test_one_to_one_mode_finds_the_maximum_matching():
    # c1 is near both references, c2 only near the first: the best assignment uses both
    sol = picks([("A", "apo-ferritin", 0, 0, 0), ("A", "apo-ferritin", 40, 0, 0)])
    sub = picks([("A", "apo-ferritin", 20, 0, 0), ("A", "apo-ferritin", -10, 0, 0)])
    c = czii_score(sub, sol, matching="one-to-one").per_class["apo-ferritin"]
    assert (c.tp, c.fp, c.fn) == (2, 0, 0)


def test_one_to_one_counts_duplicates_like_kaggle():
    sol = picks([("A", "ribosome", 0, 0, 0)])
    sub = picks([("A", "ribosome", 0, 0, 0), ("A", "ribosome", 10, 0, 0)])
    k = czii_score(sub, sol).per_class["ribosome"]
    o = czii_score(sub, sol, matching="one-to-one").per_class["ribosome"]
    assert (k.tp, k.fp, k.fn) == (o.tp, o.fp, o.fn) == (1, 1, 0)


def test_report_records_every_parameter_and_is_json_ready():
    sol = picks([("A", "ribosome", 0, 0, 0)])
    rep = czii_score(sol, sol, beta=2, distance_multiplier=0.6, per_experiment=True)
    for key in ("radii", "weights", "beta", "distance_multiplier", "thresholds", "matching"):
        assert key in rep.params
    assert rep.params["thresholds"]["ribosome"] == 150 * 0.6
    d = json.loads(json.dumps(rep.to_dict(), allow_nan=False))
    assert d["score"] == rep.score
    assert d["per_class"]["ribosome"]["tp"] == 1
    assert d["per_experiment"][0] == {"experiment": "A", "particle_type": "ribosome", "tp": 1,
                                      "fp": 0, "fn": 0}


def test_recomputing_from_counts_reproduces_the_score_exactly():
    sol, sub = random_case(3)
    rep = czii_score(sub, sol, per_experiment=True)
    counts = rep.per_experiment
    assert list(counts.columns) == ["experiment", "particle_type", "tp", "fp", "fn"]
    again = czii_score_from_counts(counts)
    assert again.score == rep.score
    assert again.per_class == rep.per_class


def test_counts_with_an_unknown_type_are_rejected():
    counts = pd.DataFrame({"experiment": ["A"], "particle_type": ["x"], "tp": [1], "fp": [0],
                           "fn": [0]})
    with pytest.raises(InputError, match="unknown particle type"):
        czii_score_from_counts(counts, weights={"ribosome": 1})


# --------------------------------------------------------------------------- the official script
@pytest.mark.parametrize("seed", range(12))
def test_equals_the_official_script_bit_for_bit(seed):
    sol, sub = random_case(seed)
    expected, results = kaggle_reference(sol, sub)
    rep = czii_score(sub, sol)
    assert rep.score == expected  # exact, not approx
    for name, (tp, fp, fn) in results.items():
        c = rep.per_class[name]
        assert (c.tp, c.fp, c.fn) == (tp, fp, fn)


def test_equals_the_official_script_with_float_coordinates():
    rng = np.random.default_rng(7)
    n = 300
    sol = pd.DataFrame({"experiment": rng.choice(["a", "b"], n), "particle_type":
                        rng.choice(TYPES, n), "x": rng.uniform(0, 2000, n),
                        "y": rng.uniform(0, 2000, n), "z": rng.uniform(0, 500, n)})
    sub = sol.iloc[rng.integers(0, n, 900)].reset_index(drop=True)
    sub[["x", "y", "z"]] += rng.normal(0, 25, (900, 3))
    for mult in (0.5, 0.8, 1.0):
        expected, _ = kaggle_reference(sol, sub, distance_multiplier=mult)
        assert czii_score(sub, sol, distance_multiplier=mult).score == expected


def grouped_points(seed: int, n: int, m: int, g: int, half_span: int):
    """References and candidates on a 7.5 Å lattice in g groups: many distances on a radius."""
    rng = np.random.default_rng(seed)
    ref = rng.integers(-half_span, half_span, (n, 3)) * 7.5
    cand = rng.integers(-half_span, half_span, (m, 3)) * 7.5
    rg, cg = rng.integers(0, g, n), rng.integers(0, g, m)
    radius = rng.choice([15.0, 22.5, 30.0, 75.0], g)
    return ref, rg, cand, cg, radius


@pytest.mark.parametrize("seed", range(5))
def test_grid_and_kdtree_pair_search_agree(seed):
    ref, rg, cand, cg, radius = grouped_points(seed, 400, 2000, 12, 50)
    a = pairs_within(ref, rg, cand, cg, radius, method="grid")
    b = pairs_within(ref, rg, cand, cg, radius, method="kdtree")
    assert sorted(zip(a[0], a[1], strict=True)) == sorted(zip(b[0], b[1], strict=True))
    assert len(a[0]) > 0


@pytest.fixture
def threaded(monkeypatch):
    """Two threads and the parallel code paths even for tiny inputs."""
    from cryobench.metrics import _matching, czii

    monkeypatch.setenv("CRYOBENCH_NUM_THREADS", "2")
    monkeypatch.setattr(_matching, "_PARALLEL_MIN", 0)
    monkeypatch.setattr(czii, "_PARALLEL_MIN", 0)


@pytest.mark.parametrize("seed", range(4))
def test_threaded_pair_search_finds_the_same_pairs(seed, threaded, monkeypatch):
    ref, rg, cand, cg, radius = grouped_points(seed, 300, 1501, 9, 40)
    two = pairs_within(ref, rg, cand, cg, radius, method="grid")
    monkeypatch.setenv("CRYOBENCH_NUM_THREADS", "1")
    one = pairs_within(ref, rg, cand, cg, radius, method="grid")
    tree = pairs_within(ref, rg, cand, cg, radius, method="kdtree")
    as_set = [set(zip(a.tolist(), b.tolist(), d.tolist(), strict=True)) for a, b, d in
              (two, one, tree)]
    assert as_set[0] == as_set[1] == as_set[2]
    assert len(as_set[0]) > 0


@pytest.mark.parametrize("seed", range(4))
def test_threaded_score_equals_the_official_script(seed, threaded):
    sol, sub = random_case(seed)
    expected, _ = kaggle_reference(sol, sub)
    assert czii_score(sub, sol).score == expected


def test_threaded_prepare_reports_the_solution_error_first(threaded):
    sol = picks([("A", "ribosome", 0, 0, 0), ("A", "ribosome", 0, 0, 0)])
    sub = picks([("A", "ribosome", 0, 0, 0)]).drop(columns="z")
    with pytest.raises(InputError, match="duplicate solution row") as err:
        czii_score(sub, sol)
    assert err.value.path == "solution"
    with pytest.raises(InputError, match="missing column") as err:
        czii_score(sub, sol.iloc[:1])
    assert err.value.path == "submission"


@pytest.mark.parametrize("n, m", [(200, 5000), (5000, 200)])
def test_wide_coordinates_use_the_unpacked_sort(n, m):
    """Keys too wide to carry row numbers in their low bits: argsort paths, same pairs."""
    from cryobench.metrics import _matching

    rng = np.random.default_rng(3)
    ref = rng.uniform(0, 4e5, (n, 3))
    k = min(n, m)  # pairs near the smaller side
    near = ref[rng.integers(0, n, k)] + rng.normal(0, 0.4, (k, 3))
    cand = np.concatenate([near, rng.uniform(0, 4e5, (m - k, 3))])
    rg, cg = np.zeros(n, dtype=int), np.zeros(m, dtype=int)
    radius = np.array([1.0])
    _, dims, _ = _matching._grid_layout(ref, cand, radius)
    assert float(np.prod(dims)) * 2.0 ** _matching._bits(max(n, m)) >= _matching._MAX_KEY
    a = pairs_within(ref, rg, cand, cg, radius, method="grid")
    b = pairs_within(ref, rg, cand, cg, radius, method="kdtree")
    assert sorted(zip(a[0], a[1], strict=True)) == sorted(zip(b[0], b[1], strict=True))
    assert len(a[0]) > k // 2


# --------------------------------------------------------------------------- properties
coord = st.integers(-300, 300).map(float)
point = st.tuples(st.sampled_from(["A", "B"]), st.sampled_from(TYPES), coord, coord, coord)


@st.composite
def cases(draw):
    sol = picks(draw(st.lists(point, min_size=1, max_size=25)))
    sol = sol.drop_duplicates(["experiment", "x", "y", "z"]).reset_index(drop=True)
    sub = picks(draw(st.lists(point, max_size=40)))
    return sol, sub


FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(cases(), st.randoms(use_true_random=False))
def test_row_order_does_not_change_the_counts(case, rnd):
    sol, sub = case
    a = czii_score(sub, sol)
    perm_sub = sub.sample(frac=1, random_state=rnd.randint(0, 10**6))
    perm_sol = sol.sample(frac=1, random_state=rnd.randint(0, 10**6))
    b = czii_score(perm_sub, perm_sol)
    assert {k: (v.tp, v.fp, v.fn) for k, v in a.per_class.items()} == \
        {k: (v.tp, v.fp, v.fn) for k, v in b.per_class.items()}
    # classes are summed in order of first appearance (as Kaggle does): equal up to rounding
    assert b.score == pytest.approx(a.score, rel=1e-12, abs=1e-15)


@FAST
@given(cases(), st.tuples(coord, coord, coord).map(lambda t: np.array(t) * 64))
def test_translating_everything_leaves_the_score_unchanged(case, shift):
    sol, sub = case
    moved_sol, moved_sub = sol.copy(), sub.copy()
    moved_sol[["x", "y", "z"]] += shift
    moved_sub[["x", "y", "z"]] += shift
    assert czii_score(moved_sub, moved_sol).score == czii_score(sub, sol).score


@FAST
@given(cases(), st.sampled_from(TYPES))
def test_a_far_away_candidate_never_raises_precision(case, name):
    sol, sub = case
    before = czii_score(sub, sol)
    far = pd.concat([sub, picks([("A", name, 1e6, 1e6, 1e6)])], ignore_index=True)
    after = czii_score(far, sol)
    for k, v in after.per_class.items():
        assert v.precision <= before.per_class[k].precision
        assert v.tp == before.per_class[k].tp


@FAST
@given(cases())
def test_perfect_submission_scores_one_when_all_weighted_classes_are_present(case):
    sol, _ = case
    extra = picks([("C", t, 1000.0 * i, 0.0, 0.0) for i, t in enumerate(TYPES)])  # all classes
    sol = pd.concat([sol, extra], ignore_index=True)
    assert czii_score(sol, sol).score == 1.0
    assert czii_score(sol, sol, matching="one-to-one").score == 1.0


@FAST
@given(cases())
def test_one_to_one_never_beats_kaggle_true_positives(case):
    sol, sub = case
    k = czii_score(sub, sol)
    o = czii_score(sub, sol, matching="one-to-one")
    for name, v in o.per_class.items():
        assert v.tp <= k.per_class[name].tp
        assert v.fp >= 0
