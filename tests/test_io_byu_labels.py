"""Raw BYU training labels (several rows for a multi-motor tomogram, ``Number of motors`` /
``Has motor``) as a one-row-per-tomogram solution, scored with the official rule."""

from __future__ import annotations

import pandas as pd
import pytest

from cryobench.errors import InputError
from cryobench.io.byu import (
    BYU_SOLUTION_COLUMNS,
    byu_solution_from_labels,
    is_byu_labels,
    read_byu_solution,
)
from cryobench.metrics import byu_score

AXES = ["Motor axis 0", "Motor axis 1", "Motor axis 2"]


def _labels(with_count: bool = True, with_has: bool = False) -> pd.DataFrame:
    # train_labels.csv as Kaggle ships it: tomo_b has two motors (two rows), tomo_c none
    rows = [
        ("tomo_a", 100, 200, 300, 10.0, 1),
        ("tomo_b", 50, 50, 50, 20.0, 2),
        ("tomo_b", 150, 400, 400, 20.0, 2),
        ("tomo_c", -1, -1, -1, 15.0, 0),
    ]
    df = pd.DataFrame(rows, columns=["tomo_id", *AXES, "Voxel spacing", "Number of motors"])
    df.insert(0, "row_id", range(len(df)))
    for k in range(3):
        df[f"Array shape (axis {k})"] = 500
    if with_has:
        df["Has motor"] = (df["Number of motors"] > 0).astype(int)
    if not with_count:
        df = df.drop(columns="Number of motors")
    return df


def _submission(b_motor):
    return pd.DataFrame([("tomo_a", 101, 200, 300), ("tomo_b", *b_motor),
                         ("tomo_c", -1, -1, -1)], columns=["tomo_id", *AXES])


def test_one_row_per_tomogram_first_motor_without_submission():
    sol = byu_solution_from_labels(_labels())
    assert list(sol.columns) == list(BYU_SOLUTION_COLUMNS)
    assert sol["tomo_id"].tolist() == ["tomo_a", "tomo_b", "tomo_c"]
    assert sol.loc[1, AXES].tolist() == [50, 50, 50]
    assert sol["Has motor"].tolist() == [1, 1, 0]
    assert sol["Voxel spacing"].tolist() == [10.0, 20.0, 15.0]


@pytest.mark.parametrize("with_count,with_has", [(True, False), (False, True), (True, True),
                                                  (False, False)])
def test_number_of_motors_and_has_motor_either_way(with_count, with_has):
    sol = byu_solution_from_labels(_labels(with_count, with_has))
    assert sol["Has motor"].tolist() == [1, 1, 0]


def test_a_prediction_near_any_motor_of_a_tomogram_is_a_tp():
    labels = _labels()
    # tomo_b: threshold 1000 Å / 20 Å = 50 voxels. Near the second motor: TP
    sub = _submission((150, 390, 400))
    sol = byu_solution_from_labels(labels, submission=sub)
    assert sol.loc[1, AXES].tolist() == [150, 400, 400]
    report = byu_score(sub, sol)
    assert (report.tp, report.fp, report.fn) == (2, 0, 0)
    assert report.score == 1.0
    # far from both motors: one FN for the tomogram (not two)
    far = _submission((450, 100, 100))
    report = byu_score(far, byu_solution_from_labels(labels, submission=far))
    assert (report.tp, report.fp, report.fn) == (1, 0, 1)
    # F2 with tp 1, fn 1: 5 * 1 / (4 * 2 + 1) = 5/9
    assert report.score == pytest.approx(5 / 9, abs=1e-15)


def test_read_byu_solution_accepts_raw_labels_and_solutions(tmp_path):
    _labels().to_csv(tmp_path / "train_labels.csv", index=False)
    raw = read_byu_solution(tmp_path / "train_labels.csv")
    assert is_byu_labels(pd.read_csv(tmp_path / "train_labels.csv"))
    raw.to_csv(tmp_path / "solution.csv", index=False)
    assert not is_byu_labels(pd.read_csv(tmp_path / "solution.csv"))
    again = read_byu_solution(tmp_path / "solution.csv")
    pd.testing.assert_frame_equal(raw.reset_index(drop=True), again, check_dtype=False)


@pytest.mark.parametrize("change,message", [
    (lambda d: d.assign(**{"Number of motors": [1, 2, 2, 1]}), "Number of motors"),
    (lambda d: d.assign(**{"Voxel spacing": [10.0, 20.0, 21.0, 15.0]}), "different"),
    (lambda d: d.assign(**{"Number of motors": [1, 1, 1, 0]}), "lists 2 motors"),
    (lambda d: d.assign(**{"Has motor": [1, 1, 0, 0]}), "Has motor"),
    (lambda d: d.assign(**{"Has motor": [1, 1, 1, 2]}), "0 or 1"),
    (lambda d: d.assign(**{"Motor axis 1": [1.0, float("nan"), 2.0, -1.0]}), "NaN"),
    (lambda d: d.assign(**{"Voxel spacing": [10.0, 0.0, 0.0, 15.0]}), "positive"),
    (lambda d: d.drop(columns="Voxel spacing"), "missing column"),
    (lambda d: pd.concat([d, d.iloc[[3]].assign(**{"Motor axis 0": 5, "Motor axis 1": 5,
                                                    "Motor axis 2": 5,
                                                    "Number of motors": 1})]),
     "different"),
])
def test_inconsistent_labels_are_refused(change, message):
    with pytest.raises(InputError, match=message):
        byu_solution_from_labels(change(_labels()), "train_labels.csv")


def test_motor_and_no_motor_rows_of_one_tomogram_are_refused():
    df = _labels(with_count=False)
    extra = pd.DataFrame([("tomo_a", -1, -1, -1, 10.0)], columns=["tomo_id", *AXES,
                                                                  "Voxel spacing"])
    with pytest.raises(InputError, match="a motor and a no-motor"):
        byu_solution_from_labels(pd.concat([df, extra], ignore_index=True))
