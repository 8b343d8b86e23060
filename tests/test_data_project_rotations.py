"""Orientations through copick: rot_* columns <-> the 4x4 point transforms of copick picks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryobench.coords import ROTATION_COLUMNS, has_rotations, picks_rotations, with_rotations
from cryobench.data import load_split, open_project
from cryobench.data.project import create_project
from cryobench.errors import InputError
from cryobench.particles import CZII_PARTICLES


def _rotations(n: int, seed: int = 0) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, 3, 3)))
    return q * np.sign(np.linalg.det(q))[:, None, None]  # proper rotations


def _truth(run: str, rotated: bool = True) -> pd.DataFrame:
    df = pd.DataFrame({
        "experiment": [run] * 3,
        "particle_type": ["ribosome", "apo-ferritin", "apo-ferritin"],
        "x": [100.5, 200.25, 310.0], "y": [50.0, 60.125, 400.0], "z": [30.0, 40.0, 150.0],
    })
    return with_rotations(df, _rotations(3)) if rotated else df


def _project(tmp_path: Path, rotated: bool = True):
    w = create_project(tmp_path / "copick.json", tmp_path / "overlay", CZII_PARTICLES,
                       defaults={"tomo_type": "denoised"})
    w.add_run("TS_1_1", np.zeros((8, 16, 16), np.float32), 10.0, _truth("TS_1_1", rotated))
    return open_project(tmp_path / "copick.json")


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values("x").reset_index(drop=True)


def test_ground_truth_rotations_round_trip(tmp_path: Path):
    project = _project(tmp_path)
    got = _sorted(project.run("TS_1_1").picks())
    want = _sorted(_truth("TS_1_1"))
    assert list(got.columns) == ["experiment", "particle_type", "x", "y", "z",
                                 *ROTATION_COLUMNS]
    np.testing.assert_array_equal(picks_rotations(got), picks_rotations(want))
    np.testing.assert_array_equal(got[["x", "y", "z"]], want[["x", "y", "z"]])
    # copick itself sees them as the 3x3 block of each point's transform, no translation
    cp = project.root.get_run("TS_1_1").get_picks(object_name="ribosome", user_id="curation")[0]
    points, transforms = cp.numpy()
    np.testing.assert_array_equal(transforms[0, :3, :3], picks_rotations(want.iloc[[0]])[0])
    np.testing.assert_array_equal(transforms[0, :3, 3], [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(points[0], [100.5, 50.0, 30.0])


def test_predictions_with_rotations_round_trip(tmp_path: Path):
    project = _project(tmp_path, rotated=False)
    preds = _truth("TS_1_1").assign(score=[0.9, 0.8, 0.7])
    project.write_picks("TS_1_1", preds, session="tm")
    got = _sorted(project.read_picks(["TS_1_1"], user="cryobench", session="tm",
                                     with_score=True, with_rotations=True))
    np.testing.assert_array_equal(picks_rotations(got), picks_rotations(_sorted(preds)))
    np.testing.assert_array_equal(got["score"], [0.9, 0.8, 0.7])


def test_identity_transforms_give_no_rotation_columns(tmp_path: Path):
    project = _project(tmp_path, rotated=False)
    got = project.run("TS_1_1").picks()
    assert not has_rotations(got) and len(got) == 3


def test_incomplete_or_bad_rotation_columns_are_refused(tmp_path: Path):
    project = _project(tmp_path, rotated=False)
    preds = _truth("TS_1_1").drop(columns=["rot_zz"])
    with pytest.raises(InputError, match="missing rot_zz"):
        project.write_picks("TS_1_1", preds, session="tm")
    preds = _truth("TS_1_1")
    preds.loc[1, "rot_xy"] = np.nan  # one NaN entry (a row all NaN means "no orientation")
    with pytest.raises(InputError, match="not a rotation"):
        project.write_picks("TS_1_1", preds, session="tm")


def test_phantom_splits_carry_the_placement_rotations():
    split = load_split("tiny")
    truth = split.solution("all")
    assert has_rotations(truth) and len(truth) > 0
    rot = picks_rotations(truth)
    np.testing.assert_allclose(rot @ rot.transpose(0, 2, 1),
                               np.broadcast_to(np.eye(3), rot.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(rot), 1.0)
    run = split.runs("train")[0]
    assert has_rotations(run.picks())
