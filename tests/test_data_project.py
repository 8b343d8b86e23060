"""copick access: round trips, crops and levels, atomic pick writes, one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryobench.data import RunHandle, load_copick_ground_truth, load_copick_picks, open_project
from cryobench.data.project import copick_name, create_project
from cryobench.errors import DataError, InputError
from cryobench.methods.base import RunLike
from cryobench.particles import CZII_PARTICLES


def _truth(run: str) -> pd.DataFrame:
    return pd.DataFrame({
        "experiment": [run] * 3,
        "particle_type": ["ribosome", "apo-ferritin", "apo-ferritin"],
        "x": [100.5, 200.25, 310.0], "y": [50.0, 60.125, 400.0], "z": [30.0, 40.0, 150.0],
    })


@pytest.fixture()
def project_dir(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    w = create_project(tmp_path / "copick.json", tmp_path / "overlay", CZII_PARTICLES,
                       defaults={"tomo_type": "denoised"})
    for name in ("TS_1_1", "TS_2_1"):
        vol = rng.standard_normal((20, 40, 36)).astype(np.float32)
        w.add_run(name, vol, 10.0, _truth(name))
        np.save(tmp_path / f"{name}.npy", vol)
    return tmp_path


def test_round_trip_volume_levels_crop_and_picks(project_dir: Path):
    project = open_project(project_dir / "copick.json")
    assert project.runs == ["TS_1_1", "TS_2_1"]
    assert [p.name for p in project.particles] == [p.name for p in CZII_PARTICLES]
    assert {p.name: p.weight for p in project.particles}["beta-amylase"] == 0.0
    run = project.run("TS_1_1")
    assert isinstance(run, RunHandle) and isinstance(run, RunLike)
    vol = np.load(project_dir / "TS_1_1.npy")
    assert run.shape == (20, 40, 36) and run.voxel_spacing == 10.0 and run.tomo_type == "denoised"
    assert run.levels == 3 and run.level_shape(1) == (10, 20, 18)
    np.testing.assert_array_equal(run.tomogram(), vol)
    crop = (slice(2, 7), slice(10, 30), slice(0, 5))
    np.testing.assert_array_equal(run.tomogram(crop=crop), vol[crop])
    lvl1 = run.tomogram(level=1)
    assert lvl1.dtype == np.float32 and lvl1.shape == (10, 20, 18)
    np.testing.assert_allclose(lvl1[0, 0, 0], vol[:2, :2, :2].mean(), rtol=1e-5)
    picks = run.picks().sort_values(["x"]).reset_index(drop=True)
    want = _truth("TS_1_1").sort_values(["x"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(picks[want.columns], want, check_dtype=False)
    allp = project.read_picks()
    assert len(allp) == 6 and set(allp["experiment"]) == {"TS_1_1", "TS_2_1"}


def test_write_picks_round_trip_with_scores(project_dir: Path):
    project = open_project(project_dir / "copick.json")
    pred = _truth("TS_1_1").assign(score=[0.9, 0.2, 0.55])
    project.write_picks("TS_1_1", pred, session="unet_per_particle")
    got = load_copick_picks(project_dir / "copick.json", session="unet_per_particle")
    got = got.sort_values("x").reset_index(drop=True)
    want = pred.sort_values("x").reset_index(drop=True)
    pd.testing.assert_frame_equal(got[want.columns], want, check_dtype=False)
    pick_dir = project_dir / "overlay" / "ExperimentRuns" / "TS_1_1" / "Picks"
    assert (pick_dir / "cryobench_unet-per-particle_ribosome.json").exists()
    # every class gets a file; no temporary files are left behind
    assert len(list(pick_dir.glob("cryobench_*.json"))) == len(CZII_PARTICLES)
    assert not [p for p in pick_dir.iterdir() if p.name.startswith(".")]
    # a rewrite with fewer picks replaces the session completely
    project.write_picks("TS_1_1", pred.iloc[:1], session="unet_per_particle")
    assert len(load_copick_picks(project_dir / "copick.json", session="unet_per_particle")) == 1
    gt = load_copick_ground_truth(project_dir / "copick.json")
    assert len(gt) == 6


def test_write_picks_validates_before_writing(project_dir: Path):
    project = open_project(project_dir / "copick.json")
    pick_dir = project_dir / "overlay" / "ExperimentRuns" / "TS_1_1" / "Picks"
    before = sorted(p.name for p in pick_dir.iterdir())
    bad = _truth("TS_1_1")
    bad.loc[2, "particle_type"] = "proteasome"
    with pytest.raises(InputError, match="proteasome"):
        project.write_picks("TS_1_1", bad, session="m")
    with pytest.raises(InputError, match="other experiments"):
        project.write_picks("TS_1_1", _truth("TS_2_1"), session="m")
    nan = _truth("TS_1_1")
    nan.loc[0, "x"] = np.nan
    with pytest.raises(InputError, match="NaN"):
        project.write_picks("TS_1_1", nan, session="m")
    assert sorted(p.name for p in pick_dir.iterdir()) == before


def test_several_sessions_need_a_choice(project_dir: Path):
    project = open_project(project_dir / "copick.json")
    project.write_picks("TS_1_1", _truth("TS_1_1"), session="a")
    project.write_picks("TS_1_1", _truth("TS_1_1").iloc[:2], session="b")
    with pytest.raises(DataError, match="several sessions"):  # same object, two sessions
        project.read_picks(["TS_1_1"], user="cryobench")
    assert len(project.read_picks(["TS_1_1"], user="cryobench", session="b")) == 2
    # one session per object (as synced from the CryoET Data Portal) is not ambiguous
    truth = _truth("TS_2_1")
    for k, obj in enumerate(["ribosome", "apo-ferritin"]):
        run = project.root.get_run("TS_2_1")
        sel = truth[truth.particle_type == obj]
        cp = run.new_picks(obj, f"7418{k}", "data-portal")
        cp.from_numpy(sel[["x", "y", "z"]].to_numpy())
    portal = project.read_picks(["TS_2_1"], user="data-portal")
    assert len(portal) == 3 and sorted(portal["particle_type"]) == sorted(truth["particle_type"])


def test_copick_name():
    assert copick_name("unet_per_particle") == "unet-per-particle"
    assert copick_name("yolo") == "yolo"


def test_missing_and_invalid_config(tmp_path: Path):
    with pytest.raises(DataError) as e:
        open_project(tmp_path / "nope.json")
    assert e.value.path == str(tmp_path / "nope.json") and "not found" in e.value.message
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="invalid JSON") as e:
        open_project(bad)
    assert e.value.path == str(bad)
    bad.write_text(json.dumps({"name": "x"}))
    with pytest.raises(DataError, match="not a copick config"):
        open_project(bad)
    bad.write_text(json.dumps({"config_type": "filesystem", "overlay_root": "local:///tmp",
                               "pickable_objects": [{"name": "a_b", "is_particle": True}]}))
    with pytest.raises(DataError, match="invalid copick config"):
        open_project(bad)


def test_unknown_run_tomo_type_and_spacing(project_dir: Path):
    project = open_project(project_dir / "copick.json")
    with pytest.raises(DataError, match="unknown run 'TS_1_2'.*did you mean TS_1_1") as e:
        project.run("TS_1_2")
    assert e.value.path == str(project_dir / "copick.json")
    with pytest.raises(DataError, match="no tomogram type 'wbp'.*available: denoised"):
        project.run("TS_1_1", tomo_type="wbp")
    with pytest.raises(DataError, match="no voxel spacing 7.5"):
        project.run("TS_1_1", voxel_spacing=7.5)
    assert project.run("TS_1_1", voxel_spacing=10.0004).voxel_spacing == 10.0
    assert project.run("TS_1_1", voxel_spacing=10.012).voxel_spacing == 10.0  # portal spacing
    with pytest.raises(DataError, match="no pyramid level 5"):
        project.run("TS_1_1").tomogram(level=5)


def test_corrupt_zarr_is_a_data_error(project_dir: Path):
    zroot = (project_dir / "overlay" / "ExperimentRuns" / "TS_1_1" / "VoxelSpacing10.000" /
             "denoised.zarr")
    chunk = next(p for p in (zroot / "0").rglob("*") if p.is_file() and not p.name.startswith("."))
    chunk.write_bytes(b"garbage" * 10)
    project = open_project(project_dir / "copick.json")
    with pytest.raises(DataError, match="corrupt") as e:
        project.run("TS_1_1").tomogram()
    assert "denoised.zarr" in e.value.path
    (zroot / "0" / ".zarray").write_text("{broken")
    with pytest.raises(DataError) as e:
        open_open = open_project(project_dir / "copick.json")
        open_open.run("TS_1_1")
    assert "denoised.zarr" in e.value.path
    shutil.rmtree(zroot)
    with pytest.raises(DataError, match="no tomogram"):
        open_project(project_dir / "copick.json").run("TS_1_1")


def test_corrupt_picks_file_is_a_data_error(project_dir: Path):
    f = project_dir / "overlay" / "ExperimentRuns" / "TS_1_1" / "Picks" / "curation_0_ribosome.json"
    f.write_text("{oops")
    with pytest.raises(DataError, match="invalid picks file") as e:
        open_project(project_dir / "copick.json").run("TS_1_1").picks()
    assert e.value.path.endswith("curation_0_ribosome.json")
