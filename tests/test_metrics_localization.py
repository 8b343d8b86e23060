"""Localization (centre distance) and orientation error of matched picks."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from cryobench.coords import ROTATION_COLUMNS, with_rotations
from cryobench.errors import ConfigError, InputError
from cryobench.metrics import czii_score
from cryobench.metrics.localization import (
    byu_localization_report,
    localization_orientation_report,
    matched_pairs,
)
from cryobench.particles import czii_radii

TYPES = list(czii_radii())


def picks(rows) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["experiment", "particle_type", "x", "y", "z"])
    df[["x", "y", "z"]] = df[["x", "y", "z"]].astype(float)
    return df


def rot(axis: str, degrees: float) -> np.ndarray:
    return Rotation.from_euler(axis, degrees, degrees=True).as_matrix()


# ----- hand-worked pairs ----------------------------------------------------------------------
def test_kaggle_rule_matches_each_reference_to_its_nearest_candidate():
    # apo-ferritin threshold 0.5 x 60 = 30 A
    sol = picks([("a", "apo-ferritin", 0, 0, 0), ("a", "apo-ferritin", 500, 0, 0)])
    sub = picks([("a", "apo-ferritin", 20, 0, 0), ("a", "apo-ferritin", 0, 10, 0),
                 ("a", "apo-ferritin", 500, 0, 31)])  # the last is out of range
    pairs = matched_pairs(sub, sol)
    assert pairs[["reference_row", "candidate_row"]].values.tolist() == [[0, 1]]
    assert pairs["distance"].tolist() == [10.0]
    rep = localization_orientation_report(sub, sol)
    d = rep.per_class["apo-ferritin"].distance
    assert (d.n, d.median, d.p90) == (1, 10.0, 10.0)
    assert rep.per_class["apo-ferritin"].orientation is None  # no rotation columns
    assert not rep.has_orientations


def test_one_candidate_near_two_references_counts_twice_under_kaggle_only():
    """References at x = 0 and 40, candidates at 20 and 65 (threshold 30 A).
    Kaggle: each reference takes its nearest candidate, both the one at 20 (20 A each).
    One-to-one: 0 - 20 (20 A) and 40 - 65 (25 A)."""
    sol = picks([("a", "apo-ferritin", 0, 0, 0), ("a", "apo-ferritin", 40, 0, 0)])
    sub = picks([("a", "apo-ferritin", 20, 0, 0), ("a", "apo-ferritin", 65, 0, 0)])
    k = matched_pairs(sub, sol, matching="kaggle")
    assert k["candidate_row"].tolist() == [0, 0] and k["distance"].tolist() == [20.0, 20.0]
    o = matched_pairs(sub, sol, matching="one-to-one")
    assert o[["reference_row", "candidate_row"]].values.tolist() == [[0, 0], [1, 1]]
    assert o["distance"].tolist() == [20.0, 25.0]
    rep = localization_orientation_report(sub, sol, matching="one-to-one")
    d = rep.per_class["apo-ferritin"].distance
    assert (d.n, d.median) == (2, 22.5)
    assert d.p90 == pytest.approx(24.5)  # 20 + 0.9 x 5


def test_threshold_is_inclusive_and_classes_do_not_mix():
    sol = picks([("a", "apo-ferritin", 0, 0, 0), ("a", "ribosome", 40, 0, 0)])
    sub = picks([("a", "ribosome", 70, 0, 0), ("a", "apo-ferritin", 0, 0, 30)])
    pairs = matched_pairs(sub, sol)
    assert sorted(pairs["particle_type"]) == ["apo-ferritin", "ribosome"]
    assert pairs["distance"].tolist() == [30.0, 30.0]  # exactly at 0.5 x 60 A: a match
    rep = localization_orientation_report(sub, sol, distance_multiplier=0.49)
    assert rep.per_class["apo-ferritin"].distance.n == 0
    assert rep.per_class["apo-ferritin"].distance.to_dict() == {"n": 0, "median": None,
                                                                "p90": None}
    assert rep.per_class["ribosome"].distance.n == 1


def test_candidate_rows_index_the_submission_as_given():
    sol = picks([("a", "ribosome", 0, 0, 0)])
    sub = picks([("elsewhere", "anything", 0, 0, 0), ("a", "thyroglobulin", 0, 0, 0),
                 ("a", "ribosome", 5, 0, 0)])  # a foreign row and a type absent from sol
    pairs = matched_pairs(sub, sol)
    assert pairs["candidate_row"].tolist() == [2]


def test_bad_input_is_reported_like_the_czii_score():
    sol = picks([("a", "ribosome", 0, 0, 0)])
    with pytest.raises(InputError, match="unknown particle type"):
        matched_pairs(picks([("a", "rhinovirus", 0, 0, 0)]), sol)
    with pytest.raises(ConfigError, match="matching"):
        matched_pairs(sol, sol, matching="greedy")
    with pytest.raises(ConfigError, match="unknown symmetry"):
        localization_orientation_report(sol, sol, symmetries={"ribosome": "Q7"})


# ----- agreement with the CZII counts -------------------------------------------------------
coords = st.integers(0, 6).map(lambda v: v * 30.0)
rows = st.lists(st.tuples(st.sampled_from(["e1", "e2"]), st.sampled_from(TYPES[:3]), coords,
                          coords, st.just(0.0)), max_size=25)


@settings(max_examples=30, deadline=None)
@given(rows, rows, st.sampled_from(["kaggle", "one-to-one"]))
def test_pairs_per_class_equal_the_czii_true_positives(sol_rows, sub_rows, matching):
    sol = picks(sol_rows).drop_duplicates(["experiment", "x", "y", "z"]).reset_index(drop=True)
    if sol.empty:
        return
    sub = picks(sub_rows)
    rep = localization_orientation_report(sub, sol, matching=matching)
    score = czii_score(sub, sol, matching=matching)
    for name, stats in score.per_class.items():
        assert rep.per_class[name].distance.n == stats.tp
    pairs = rep.pairs
    assert (pairs["distance"] <= pairs["particle_type"].map(czii_radii()) * 0.5).all()
    if matching == "one-to-one":  # each candidate and each reference at most once
        assert not pairs.duplicated(["candidate_row"]).any()
    assert not pairs.duplicated(["reference_row"]).any()


# ----- orientations ---------------------------------------------------------------------------
def test_orientation_errors_of_matched_picks_with_symmetry():
    sol = picks([("a", "thyroglobulin", 0, 0, 0), ("a", "thyroglobulin", 1000, 0, 0),
                 ("a", "ribosome", 0, 2000, 0)])
    sol = with_rotations(sol, np.stack([np.eye(3), rot("x", 90), np.eye(3)]))
    sub = picks([("a", "thyroglobulin", 10, 0, 0), ("a", "thyroglobulin", 1000, 0, 10),
                 ("a", "ribosome", 0, 2000, 5)])
    # a C2 flip (about z) of the first, 30 degrees off for the second, the ribosome (C1) flipped
    sub = with_rotations(sub, np.stack([rot("z", 180), rot("x", 90) @ rot("y", 30),
                                        rot("z", 180)]))
    rep = localization_orientation_report(sub, sol)
    thy = rep.per_class["thyroglobulin"]
    assert thy.symmetry == "C2"
    np.testing.assert_allclose(sorted(rep.pairs.loc[rep.pairs.particle_type == "thyroglobulin",
                                                    "angular_error"]), [0.0, 30.0], atol=1e-6)
    assert thy.orientation.n == 2
    assert thy.orientation.median == pytest.approx(15.0)
    assert (thy.orientation.within_10, thy.orientation.within_30) == (0.5, 1.0)
    rib = rep.per_class["ribosome"].orientation
    assert rib.median == pytest.approx(180.0)
    # the same with C1 for thyroglobulin: the flip costs 180 degrees
    plain = localization_orientation_report(sub, sol, symmetries={})
    assert plain.per_class["thyroglobulin"].orientation.p90 == pytest.approx(165.0)
    out = json.loads(json.dumps(rep.to_dict(with_pairs=True)))
    assert out["per_class"]["thyroglobulin"]["orientation"]["n"] == 2
    assert out["has_orientations"] is True and len(out["pairs"]) == 3


def test_orientation_is_absent_when_either_table_lacks_rotations():
    sol = with_rotations(picks([("a", "ribosome", 0, 0, 0)]), np.eye(3)[None])
    sub = picks([("a", "ribosome", 1, 0, 0)])
    for a, b in ((sub, sol), (sol, sub.assign(**{c: 0.0 for c in ROTATION_COLUMNS[:8]}))):
        rep = localization_orientation_report(a, b)
        assert rep.per_class["ribosome"].orientation is None
        assert rep.to_dict()["per_class"]["ribosome"]["orientation"] is None
        assert rep.per_class["ribosome"].distance.n == 1


def test_rotation_columns_that_are_not_rotations_are_input_errors():
    sol = with_rotations(picks([("a", "ribosome", 0, 0, 0)]), np.eye(3)[None])
    sub = with_rotations(picks([("a", "ribosome", 1, 0, 0)]), 2 * np.eye(3)[None])
    with pytest.raises(InputError, match="submission.*not a rotation"):
        localization_orientation_report(sub, sol)


def test_non_numeric_rotation_entries_name_the_column_and_row():
    sol = with_rotations(picks([("a", "ribosome", 0, 0, 0)]), np.eye(3)[None])
    sub = with_rotations(picks([("a", "ribosome", 1, 0, 0)]), np.eye(3)[None]).astype(
        {"rot_yz": object})
    sub.loc[0, "rot_yz"] = "north"
    with pytest.raises(InputError, match="submission: column 'rot_yz' has a non-numeric value "
                                         r"\(data row 1\)"):
        localization_orientation_report(sub, sol)


def test_rows_without_an_orientation_are_left_out_of_the_angular_figures():
    sol = with_rotations(picks([("a", "ribosome", 0, 0, 0), ("a", "ribosome", 900, 0, 0)]),
                         np.stack([np.eye(3), np.eye(3)]))
    sub = with_rotations(picks([("a", "ribosome", 1, 0, 0), ("a", "ribosome", 901, 0, 0)]),
                         np.stack([rot("z", 12), np.full((3, 3), np.nan)]))
    rep = localization_orientation_report(sub, sol)
    o = rep.per_class["ribosome"].orientation
    assert o.n == 1 and o.median == pytest.approx(12.0)
    assert rep.per_class["ribosome"].distance.n == 2


# ----- BYU ------------------------------------------------------------------------------------
def test_byu_distance_of_found_motors_in_angstrom():
    sol = pd.DataFrame({"tomo_id": ["t1", "t2", "t3", "t4"],
                        "Motor axis 0": [10, 10, -1, 50], "Motor axis 1": [20, 20, -1, 50],
                        "Motor axis 2": [30, 30, -1, 50],
                        "Voxel spacing": [15.0, 10.0, 10.0, 10.0], "Has motor": [1, 1, 0, 1]})
    sub = pd.DataFrame({"tomo_id": ["t1", "t2", "t3", "t4"],
                        "Motor axis 0": [10, 10, 5, -1], "Motor axis 1": [20, 23, 5, -1],
                        "Motor axis 2": [34, 34, 5, -1]})
    rep = byu_localization_report(sub, sol)
    d = rep.per_class["flagellar-motor"].distance
    assert d.n == 2  # t1 (4 voxels x 15 A) and t2 (5 voxels x 10 A); t3 is an fp, t4 an fn
    assert sorted(rep.pairs["distance"]) == [50.0, 60.0]
    assert d.median == 55.0
    assert rep.per_class["flagellar-motor"].orientation is None


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 8), st.integers(0, 3)),
                max_size=60, unique_by=lambda t: (t[0], t[1])))
def test_nearest_candidate_per_reference_matches_a_three_key_sort(pairs):
    """The scatter-minimum selection equals the plain rule: per reference, the smallest
    distance, then the lowest candidate index (many exact ties here)."""
    from cryobench.metrics.localization import _nearest_per_reference

    arr = np.asarray(pairs, dtype=np.int64).reshape(-1, 3)
    ri, ci, d2 = arr[:, 0], arr[:, 1], arr[:, 2].astype(np.float64)
    got = _nearest_per_reference(ri, ci, d2)
    order = np.lexsort((ci, d2, ri))
    first = np.ones(len(order), dtype=bool)
    first[1:] = ri[order][1:] != ri[order][:-1]
    want = ri[order][first], ci[order][first], d2[order][first]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)
