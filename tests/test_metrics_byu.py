"""BYU motor score: the official docstring example, each rule, scikit-learn and the script."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import fbeta_score

from cryobench.errors import ConfigError, InputError
from cryobench.io.byu import read_byu_csv
from cryobench.metrics import byu_score

AXES = ["Motor axis 0", "Motor axis 1", "Motor axis 2"]


def sol_df(rows, spacing=10.0):
    """rows: (tomo_id, z, y, x) with -1 for no motor."""
    df = pd.DataFrame(rows, columns=["tomo_id", *AXES])
    df["Voxel spacing"] = spacing
    df["Has motor"] = (~(df[AXES] == -1).any(axis=1)).astype(int)
    return df


def sub_df(rows):
    return pd.DataFrame(rows, columns=["tomo_id", *AXES])


def official_reference(solution, submission, min_radius=1000, beta=2):
    """A port of the official BYU metric script (sort, -1 rule, distance filter, sklearn)."""
    solution = solution.sort_values("tomo_id").reset_index(drop=True)
    submission = submission.sort_values("tomo_id").reset_index(drop=True)
    submission["Has motor"] = 1
    submission.loc[(submission[AXES] == -1).any(axis="columns"), "Has motor"] = 0
    label = solution[AXES].values.reshape(len(solution), -1, 3)
    pred = submission[AXES].values.reshape(len(submission), -1, 3)
    distance = np.linalg.norm(label - pred, axis=2).min(axis=1)
    thresholds = solution["Voxel spacing"].apply(lambda x: (min_radius * 1.0) / x)
    predictions = submission["Has motor"].values.copy()
    predictions[(distance > thresholds.values) & (solution["Has motor"].values == 1)
                & (submission["Has motor"].values == 1)] = 0
    return fbeta_score(solution["Has motor"].values, predictions, beta=beta, zero_division=0.0)


def test_official_docstring_example_scores_exactly():
    solution = pd.DataFrame({
        "tomo_id": [0, 1, 2, 3],
        "Motor axis 0": [-1, 250, 100, 200], "Motor axis 1": [-1, 250, 100, 200],
        "Motor axis 2": [-1, 250, 100, 200], "Voxel spacing": [10, 10, 10, 10],
        "Has motor": [0, 1, 1, 1]})
    submission = pd.DataFrame({
        "tomo_id": [0, 1, 2, 3],
        "Motor axis 0": [100, 251, 600, -1], "Motor axis 1": [100, 251, 600, -1],
        "Motor axis 2": [100, 251, 600, -1]})
    rep = byu_score(submission, solution)
    assert rep.score == 0.35714285714285715
    assert (rep.tp, rep.fp, rep.fn) == (1, 1, 2)
    assert rep.precision == 0.5 and rep.recall == pytest.approx(1 / 3)


def test_close_prediction_of_a_motor_is_a_true_positive():
    rep = byu_score(sub_df([("t", 100, 100, 100)]), sol_df([("t", 100, 150, 100)]))
    assert (rep.tp, rep.fp, rep.fn) == (1, 0, 0) and rep.score == 1.0


def test_threshold_is_inclusive_and_in_voxels_of_that_tomogram():
    # 1000 Å at 10 Å/voxel = 100 voxels: exactly 100 voxels away still matches
    at = byu_score(sub_df([("t", 100, 100, 200)]), sol_df([("t", 100, 100, 100)]))
    assert at.tp == 1
    # the same 100 voxels at 12 Å/voxel is 1200 Å: too far
    far = byu_score(sub_df([("t", 100, 100, 200)]), sol_df([("t", 100, 100, 100)], 12.0))
    assert (far.tp, far.fn) == (0, 1)


def test_motor_predicted_too_far_away_is_a_false_negative_not_a_false_positive():
    rep = byu_score(sub_df([("t", 500, 500, 500)]), sol_df([("t", 100, 100, 100)]))
    assert (rep.tp, rep.fp, rep.fn) == (0, 0, 1)


def test_missing_motor_prediction_is_a_false_negative():
    rep = byu_score(sub_df([("t", -1, -1, -1)]), sol_df([("t", 100, 100, 100)]))
    assert (rep.tp, rep.fp, rep.fn) == (0, 0, 1)


def test_any_axis_equal_to_minus_one_means_no_motor():
    rep = byu_score(sub_df([("t", 100, -1, 100)]), sol_df([("t", -1, -1, -1)]))
    assert (rep.tp, rep.fp, rep.fn) == (0, 0, 0)
    assert rep.per_tomo["outcome"].tolist() == ["tn"]


def test_prediction_in_a_tomogram_without_motor_is_a_false_positive():
    rep = byu_score(sub_df([("t", 5, 5, 5)]), sol_df([("t", -1, -1, -1)]))
    assert (rep.tp, rep.fp, rep.fn) == (0, 1, 0) and rep.score == 0.0


def test_has_motor_is_derived_when_the_solution_lacks_it():
    sol = sol_df([("a", 100, 100, 100), ("b", -1, -1, -1)]).drop(columns="Has motor")
    rep = byu_score(sub_df([("a", 100, 100, 100), ("b", 3, 3, 3)]), sol)
    assert (rep.tp, rep.fp, rep.fn) == (1, 1, 0)


def test_mismatched_tomo_ids_are_an_error():
    with pytest.raises(InputError, match="do not match") as err:
        byu_score(sub_df([("a", 1, 1, 1), ("c", 1, 1, 1)]),
                  sol_df([("a", 1, 1, 1), ("b", 1, 1, 1)]))
    assert err.value.path == "submission"
    with pytest.raises(InputError, match="missing"):
        byu_score(sub_df([("a", 1, 1, 1)]), sol_df([("a", 1, 1, 1), ("b", 1, 1, 1)]))


def test_duplicate_tomo_ids_are_an_error():
    with pytest.raises(InputError, match="more than once"):
        byu_score(sub_df([("a", 1, 1, 1), ("a", 2, 2, 2)]), sol_df([("a", 1, 1, 1)]))


def test_bad_values_and_columns_are_input_errors():
    sol = sol_df([("a", 1, 1, 1)])
    with pytest.raises(InputError, match="Voxel spacing"):
        byu_score(sub_df([("a", 1, 1, 1)]), sol.drop(columns="Voxel spacing"))
    with pytest.raises(InputError, match="NaN"):
        byu_score(sub_df([("a", np.nan, 1, 1)]), sol)
    with pytest.raises(InputError, match="non-numeric"):
        byu_score(sub_df([("a", "x", 1, 1)]), sol)
    with pytest.raises(InputError, match="missing column.*Motor axis 2"):
        byu_score(sub_df([("a", 1, 1, 1)]).drop(columns="Motor axis 2"), sol)
    with pytest.raises(ConfigError):
        byu_score(sub_df([("a", 1, 1, 1)]), sol, beta=-1)


def test_row_order_does_not_matter():
    rng = np.random.default_rng(0)
    sol, sub = _random_case(rng, 60)
    a = byu_score(sub, sol)
    b = byu_score(sub.sample(frac=1, random_state=1), sol.sample(frac=1, random_state=2))
    assert a.score == b.score


def _random_case(rng, n):
    ids = [f"tomo_{i:03d}" for i in range(n)]
    has = rng.random(n) < 0.6
    pos = rng.integers(0, 400, (n, 3)).astype(float)
    pos[~has] = -1
    sol = pd.DataFrame({"tomo_id": ids, **{a: pos[:, i] for i, a in enumerate(AXES)},
                        "Voxel spacing": rng.choice([6.5, 10.0, 13.1, 19.7], n),
                        "Has motor": has.astype(int)})
    pred = pos + rng.integers(-150, 150, (n, 3))
    none = rng.random(n) < 0.3
    pred[none] = -1
    sub = pd.DataFrame({"tomo_id": ids, **{a: pred[:, i] for i, a in enumerate(AXES)}})
    return sol, sub


@pytest.mark.parametrize("seed", range(8))
def test_equals_the_official_script_and_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    sol, sub = _random_case(rng, int(rng.integers(1, 80)))
    for beta in (2, 1, 0.5):
        assert byu_score(sub, sol, beta=beta).score == official_reference(sol, sub, beta=beta)


def test_read_byu_csv_validates(tmp_path):
    p = tmp_path / "sol.csv"
    sol_df([("a", 1, 2, 3)]).to_csv(p, index=False)
    df = read_byu_csv(p, solution=True)
    assert df["Has motor"].tolist() == [1]
    with pytest.raises(InputError) as err:
        read_byu_csv(tmp_path / "missing.csv")
    assert err.value.path.endswith("missing.csv")
