"""Peak finding, component centroids, NMS and threshold tuning on hand examples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cryobench.methods.engine.postprocess import (
    apply_thresholds,
    component_centroids,
    extract_candidates,
    find_peaks,
    nms,
    tune_motor_threshold,
    tune_thresholds,
)
from cryobench.metrics.counts import class_counts
from cryobench.metrics.counts import fbeta as _fbeta


def fbeta(tp, fp, fn, beta):
    return float(_fbeta(tp, fp, fn, beta)[2])


def gaussian(shape, centre, sigma, amp=1.0):
    grids = np.meshgrid(*[np.arange(s) for s in shape], indexing="ij")
    d2 = sum((g - c) ** 2 for g, c in zip(grids, centre, strict=True))
    return amp * np.exp(-d2 / (2 * sigma**2))


def test_find_peaks_two_blobs_subvoxel():
    vol = gaussian((20, 20, 20), (5, 6, 7), 1.5) + gaussian((20, 20, 20), (14.5, 12, 10), 1.5,
                                                           amp=0.6)
    pos, score = find_peaks(vol, threshold=0.2, min_distance=3)
    assert len(pos) == 2
    assert score[0] == pytest.approx(1.0, abs=1e-3) and score[0] > score[1]
    np.testing.assert_allclose(pos[0], [5, 6, 7], atol=0.05)
    np.testing.assert_allclose(pos[1], [14.5, 12, 10], atol=0.15)
    # the threshold drops the weaker one
    assert len(find_peaks(vol, threshold=0.7, min_distance=3)[0]) == 1


def test_find_peaks_plateau_gives_one_peak_at_its_centre():
    vol = np.zeros((9, 9, 9), dtype=np.float32)
    vol[3:6, 4:5, 2:7] = 1.0
    pos, score = find_peaks(vol, threshold=0.5, min_distance=1, refine=False)
    assert len(pos) == 1
    np.testing.assert_allclose(pos[0], [4, 4, 4])


def test_component_centroids():
    vol = np.zeros((10, 10, 10), dtype=np.float32)
    vol[1:3, 1:3, 1:3] = 0.9
    vol[6:9, 6:9, 5:8] = 0.7
    vol[0, 9, 9] = 0.8  # a single voxel, dropped by min_size
    pos, score, size = component_centroids(vol, 0.5, min_size=2)
    assert len(pos) == 2
    np.testing.assert_allclose(pos[0], [1.5, 1.5, 1.5])
    np.testing.assert_allclose(pos[1], [7, 7, 6])
    assert list(size) == [8, 27]
    np.testing.assert_allclose(score, [0.9, 0.7])


def test_nms_is_class_aware_with_per_class_radius():
    pts = np.array([[0, 0, 0], [0, 0, 2], [0, 0, 5], [0, 0, 1], [0, 0, 1.5]], dtype=float)
    sc = np.array([0.9, 0.8, 0.7, 0.95, 0.5])
    lab = np.array([0, 0, 0, 1, 1])
    keep = nms(pts, sc, lab, {0: 2.5, 1: 1.0})
    # class 0: 0 (0.9) suppresses 1 (d=2), keeps 2 (d=5); class 1: 3 suppresses 4 (d=0.5)
    assert list(keep) == [3, 0, 2]
    # a single radius, no labels: everything within 2.5 of the best goes
    assert list(nms(pts, sc, None, 2.5)) == [3, 2]
    assert len(nms(np.zeros((0, 3)), np.zeros(0))) == 0


def test_extract_candidates_per_class():
    shape = (16, 32, 32)
    probs = np.stack([gaussian(shape, (8, 8, 8), 1.0), gaussian(shape, (8, 20, 24), 2.0)])
    pos, score, cls = extract_candidates(probs, [2.0, 4.0], floor=0.3)
    assert sorted(cls.tolist()) == [0, 1]
    np.testing.assert_allclose(pos[cls == 0][0], [8, 8, 8], atol=0.1)
    np.testing.assert_allclose(pos[cls == 1][0], [8, 20, 24], atol=0.1)
    pos2, _, _ = extract_candidates(probs, [2.0, 4.0], floor=0.5, mode="components")
    assert len(pos2) == 2


def picks(rows, with_score=True):
    cols = ["experiment", "particle_type", "x", "y", "z"] + (["score"] if with_score else [])
    return pd.DataFrame(rows, columns=cols)


def test_class_counts_follow_kaggle_semantics():
    truth = picks([("a", "ribosome", 0, 0, 0), ("a", "ribosome", 100, 0, 0),
                   ("b", "ribosome", 0, 0, 0)], with_score=False)
    cand = picks([("a", "ribosome", 10, 0, 0, 1.0), ("a", "ribosome", -10, 0, 0, 1.0),
                  ("a", "ribosome", 500, 0, 0, 1.0), ("b", "ribosome", 0, 75, 0, 1.0)])
    # ref a/0 hit twice (one tp, the duplicate is an fp); ref a/100 missed; b: d = 75 <= 75
    assert class_counts(cand, truth, 75.0) == (2, 2, 1)
    assert fbeta(2, 2, 1, 4) == pytest.approx(17 * 0.5 * (2 / 3) / (16 * 0.5 + 2 / 3))


def test_tune_thresholds_hand_example():
    truth = picks([("a", "ribosome", 0, 0, 0), ("a", "ribosome", 1000, 0, 0),
                   ("a", "apo-ferritin", 0, 500, 0)], with_score=False)
    cand = picks([
        ("a", "ribosome", 5, 0, 0, 0.9),       # tp
        ("a", "ribosome", 3000, 0, 0, 0.8),    # fp
        ("a", "ribosome", 1010, 0, 0, 0.4),    # tp
        ("a", "ribosome", 5000, 0, 0, 0.2),    # fp
        ("a", "apo-ferritin", 0, 900, 0, 0.7),  # fp
    ])
    tuned = tune_thresholds(cand, truth, {"ribosome": 150, "apo-ferritin": 60,
                                          "thyroglobulin": 130}, default=0.33)
    # ribosome thresholds: 0.9 -> F4(1,0,1)=17/33*... ; 0.4 -> tp 2, fp 1 -> best recall
    f_at = {0.9: fbeta(1, 0, 1, 4), 0.8: fbeta(1, 1, 1, 4), 0.4: fbeta(2, 1, 0, 4),
            0.2: fbeta(2, 2, 0, 4)}
    assert tuned.fbeta["ribosome"] == pytest.approx(max(f_at.values()))
    assert tuned.fbeta["ribosome"] == pytest.approx(f_at[0.4])
    assert 0.2 < tuned.thresholds["ribosome"] <= 0.4
    assert tuned.thresholds["ribosome"] == pytest.approx(0.3)
    # a class whose candidates all miss, and a class without references, keep the default
    assert tuned.fbeta["apo-ferritin"] == 0.0
    assert tuned.thresholds["apo-ferritin"] == 0.33
    assert tuned.thresholds["thyroglobulin"] == 0.33
    kept = apply_thresholds(cand, tuned.thresholds)
    assert set(kept["score"]) == {0.9, 0.8, 0.4, 0.7}


def test_tuned_fbeta_equals_the_official_metric():
    metrics = pytest.importorskip("cryobench.metrics")
    rng = np.random.default_rng(3)
    truth = picks([("e", "ribosome", *rng.uniform(0, 2000, 3)) for _ in range(20)],
                  with_score=False)
    ref = truth[["x", "y", "z"]].to_numpy()
    rows = [("e", "ribosome", *(ref[i] + rng.normal(0, 30, 3)), rng.uniform(0.3, 1))
            for i in range(15)]
    rows += [("e", "ribosome", *rng.uniform(0, 2000, 3), rng.uniform(0, 0.8)) for _ in range(30)]
    cand = picks(rows)
    tuned = tune_thresholds(cand, truth, {"ribosome": 150.0})
    kept = apply_thresholds(cand, tuned.thresholds)
    report = metrics.czii_score(kept, truth, radii={"ribosome": 150.0},
                                weights={"ribosome": 1.0})
    assert report.per_class["ribosome"].fbeta == pytest.approx(tuned.fbeta["ribosome"])
    # and no other threshold does better on this set
    for t in np.unique(cand["score"]):
        other = metrics.czii_score(cand[cand["score"] >= t], truth,
                                   radii={"ribosome": 150.0}, weights={"ribosome": 1.0})
        assert other.per_class["ribosome"].fbeta <= tuned.fbeta["ribosome"] + 1e-12


def test_tune_motor_threshold():
    truth = {"r1": np.array([0.0, 0, 0]), "r2": np.array([0.0, 0, 0]), "r3": None, "r4": None}
    best = {"r1": (0.9, np.array([100.0, 0, 0])),   # tp at any threshold <= .9
            "r2": (0.3, np.array([5000.0, 0, 0])),  # too far: fn whatever
            "r3": (0.6, np.zeros(3)),               # fp when kept
            "r4": (0.2, np.zeros(3))}
    tuned = tune_motor_threshold(best, truth, distance=1000, beta=2)
    # t in (0.6, 0.9]: tp 1, fn 1, fp 0 -> F2 = 5 / (5 + 4) ; lower thresholds add fps
    assert tuned.fbeta == pytest.approx(5 / 9)
    assert 0.6 < tuned.threshold <= 0.9
    assert tuned.threshold == pytest.approx(0.75)
    # nothing worth predicting: threshold above every confidence
    none = tune_motor_threshold({"r3": (0.6, np.zeros(3))}, {"r3": None})
    assert none.threshold > 0.6 and none.fbeta == 0.0


def test_merge_by_priority_conflict_rule():
    from cryobench.methods.engine.segmentation import merge_by_priority

    # four voxels, three classes
    probs = np.array([
        [0.9, 0.6, 0.2, 0.7],   # class 0, priority 1.0
        [0.8, 0.9, 0.1, 0.7],   # class 1, priority 1.5 (wins every contest it enters)
        [0.1, 0.7, 0.3, 0.9],   # class 2, priority 1.0 (ties class 0: probability decides)
    ], dtype=np.float32).reshape(3, 1, 1, 4)
    out = merge_by_priority(probs, [1.0, 1.5, 1.0]).reshape(3, 4)
    # voxel 0: classes 0, 1 claim -> 1; voxel 1: 0, 1, 2 claim -> 1; voxel 2: nobody claims,
    # unchanged; voxel 3: 0, 1, 2 claim -> 1 (priority beats the higher probability of 2)
    np.testing.assert_allclose(out[:, 0], [0, 0.8, 0])
    np.testing.assert_allclose(out[:, 1], [0, 0.9, 0])
    np.testing.assert_allclose(out[:, 2], [0.2, 0.1, 0.3])
    np.testing.assert_allclose(out[:, 3], [0, 0.7, 0])
    # equal priorities: the probability breaks the tie
    tie = merge_by_priority(probs[[0, 2]], [1.0, 1.0]).reshape(2, 4)
    np.testing.assert_allclose(tie[:, 1], [0, 0.7])
    np.testing.assert_allclose(tie[:, 3], [0, 0.9])
    np.testing.assert_allclose(tie[:, 0], [0.9, 0.1])  # only class 0 claims voxel 0
