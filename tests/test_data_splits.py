"""Named splits: tiny generates once and is reused, fingerprints are stable, errors are clear."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import cryobench.data.synth as synth
from cryobench.coords import ROTATION_COLUMNS
from cryobench.data import list_splits, load_split
from cryobench.data.splits import BYU_SOLUTION_COLUMNS
from cryobench.errors import ConfigError
from cryobench.particles import CZII_PARTICLES


def test_builtin_splits_listed():
    assert {"czii", "czii-synth", "byu", "byu-synth", "tiny"} <= set(list_splits())
    cs = load_split("czii-synth")
    assert (len(cs.train), len(cs.val)) == (4, 1) and len(cs.test) > 2
    assert cs.task == "particles" and cs.metric == "czii" and cs.voxel_spacing == 10.0
    bs = load_split("byu-synth")
    assert bs.task == "motor" and bs.metric == "byu"


def test_tiny_generates_is_reused_and_fingerprint_is_stable(monkeypatch):
    split = load_split("tiny")
    project = split.project(progress=False)
    assert project.config_path.parent == split.cache_path()
    assert split.cache_path().parent.parent == Path(os.environ["CRYOBENCH_CACHE"])
    runs = split.runs("train")
    assert [r.name for r in runs] == split.train and all(r.shape == runs[0].shape for r in runs)
    present = set().union(*(set(r.picks()["particle_type"]) for r in split.runs("all")))
    assert present == {p.name for p in CZII_PARTICLES}
    fp = split.fingerprint
    assert len(fp) == 64

    def boom(*a, **k):
        raise AssertionError("regenerated a cached split")

    monkeypatch.setattr(synth, "write_synthetic_project", boom)
    again = load_split("tiny")
    assert again.fingerprint == fp
    sol = again.solution("test")
    # the phantoms record each particle's rotation: the solution carries the rot_* columns
    assert list(sol.columns) == ["experiment", "particle_type", "x", "y", "z",
                                 *ROTATION_COLUMNS]
    assert set(sol["experiment"]) == set(again.test) and len(sol) > 0
    assert [p.name for p in again.particles] == [p.name for p in CZII_PARTICLES]


def test_tampered_cache_regenerates_identically(tmp_path, monkeypatch):
    monkeypatch.setenv("CRYOBENCH_CACHE", str(tmp_path))
    stale = tmp_path / "splits" / "tiny-0123456789abcdef"  # an older generator's entry
    stale.mkdir(parents=True)
    split = load_split("tiny")
    split.project(progress=False)
    assert not stale.exists()
    fp = split.fingerprint
    run = split.runs("train")[0]
    vol = run.tomogram()
    picks_file = next((split.cache_path() / "overlay" / "ExperimentRuns" / run.name / "Picks")
                      .glob("curation_0_ribosome.json"))
    data = json.loads(picks_file.read_text())
    data["points"][0]["location"]["x"] += 50.0
    picks_file.write_text(json.dumps(data))
    with pytest.warns(RuntimeWarning, match="regenerating"):
        regenerated = load_split("tiny")
        assert regenerated.fingerprint == fp  # deterministic generation: same data again
    np.testing.assert_array_equal(regenerated.runs("train")[0].tomogram(), vol)


def test_unknown_split_and_bad_roles():
    with pytest.raises(ConfigError, match="unknown split 'czi'.*did you mean czii"):
        load_split("czi")
    split = load_split("tiny")
    with pytest.raises(ConfigError, match="unknown role"):
        split.role_runs("training")
    with pytest.raises(ConfigError, match="no fold 0"):
        load_split("tiny/fold0")


def test_custom_split_file_and_byu_solution(tmp_path):
    definition = {
        "name": "mini-byu", "task": "motor", "metric": "byu",
        "source": {"kind": "synth", "preset": "byu", "seed": 4, "snr": None,
                   "run_options": {"tomo_synth_1": {"has_motor": True},
                                   "tomo_synth_2": {"has_motor": False}}},
        "tomo_type": "denoised", "voxel_spacing": None,
        "train": [], "val": [], "test": ["tomo_synth_1", "tomo_synth_2"], "folds": None,
    }
    path = tmp_path / "mini-byu.json"
    path.write_text(json.dumps(definition))
    split = load_split(str(path))
    sol = split.byu_solution("test")
    assert list(sol.columns) == list(BYU_SOLUTION_COLUMNS)
    assert sol["tomo_id"].tolist() == ["tomo_synth_1", "tomo_synth_2"]
    assert sol["Has motor"].tolist() == [1, 0]
    assert (sol.iloc[1][["Motor axis 0", "Motor axis 1", "Motor axis 2"]] == -1).all()
    runs = split.runs("test")
    motor = runs[0].picks()
    assert len(motor) == 1 and motor["particle_type"].iloc[0] == "flagellar-motor"
    z, y, x = (sol.iloc[0][f"Motor axis {k}"] for k in range(3))
    np.testing.assert_allclose([x, y, z], motor[["x", "y", "z"]].to_numpy()[0]
                               / runs[0].voxel_spacing)
    assert sol["Voxel spacing"].tolist() == [r.voxel_spacing for r in runs]
    bad = dict(definition, task="segmentation")
    path.write_text(json.dumps(bad))
    with pytest.raises(ConfigError, match="unknown task"):
        load_split(str(path))


@pytest.mark.slow
def test_czii_synth_generates_full_size(tmp_path, monkeypatch):
    monkeypatch.setenv("CRYOBENCH_CACHE", str(tmp_path))
    split = load_split("czii-synth")
    split.project(progress=False)
    runs = split.runs("test")
    assert len(runs) == 4 and runs[0].shape == (184, 630, 630) and runs[0].levels == 3
    counts = split.solution("train").groupby("particle_type").size()
    assert set(counts.index) == {p.name for p in CZII_PARTICLES}
    assert load_split("czii-synth").fingerprint == split.fingerprint


def test_tiny_motor_split_has_motors_and_a_byu_solution():
    split = load_split("tiny-motor")
    assert split.task == "motor" and split.metric == "byu"
    sol = split.byu_solution("test")
    assert sorted(sol["tomo_id"]) == sorted(split.test)
    assert set(sol["Has motor"]) == {0, 1}
    with_motor = sol[sol["Has motor"] == 1].iloc[0]
    assert with_motor["Motor axis 0"] >= 0
