"""``cryobench data``: synth, splits, show; bad input gives one line and exit code 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from cryobench.cli import cli
from cryobench.data import open_project


def invoke(*args: str):
    return CliRunner().invoke(cli, ["data", *args])


@pytest.fixture(scope="module")
def tiny_project(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "proj"
    res = invoke("synth", "--preset", "tiny", "--out", str(out), "--runs", "2", "--seed", "3",
                 "--quiet")
    assert res.exit_code == 0, res.output
    assert "wrote 2 runs (TS_synth_1 .. TS_synth_2)" in res.output
    return out / "copick.json"


def test_synth_writes_a_complete_deterministic_project(tiny_project: Path, tmp_path: Path):
    project = open_project(tiny_project)
    assert project.runs == ["TS_synth_1", "TS_synth_2"]
    run = project.run("TS_synth_1")
    assert run.levels == 3 and run.tomo_type == "denoised"
    gt = run.picks()
    assert len(gt) > 0 and set(gt["particle_type"]) <= {p.name for p in project.particles}
    pick_dir = tiny_project.parent / "overlay" / "ExperimentRuns" / "TS_synth_1" / "Picks"
    assert (pick_dir / "curation_0_ribosome.json").exists()
    # same seed -> bit-identical arrays and picks; different runs differ
    res = invoke("synth", "--preset", "tiny", "--out", str(tmp_path / "again"), "--runs", "2",
                 "--seed", "3", "--quiet")
    assert res.exit_code == 0, res.output
    again = open_project(tmp_path / "again" / "copick.json").run("TS_synth_1")
    np.testing.assert_array_equal(again.tomogram(), run.tomogram())
    pd.testing.assert_frame_equal(again.picks(), gt)
    other = project.run("TS_synth_2")
    assert not np.array_equal(other.tomogram(), run.tomogram())
    # --snr changes the noise, not the scene
    res = invoke("synth", "--preset", "tiny", "--out", str(tmp_path / "snr"), "--runs", "1",
                 "--seed", "3", "--snr", "50", "--quiet")
    assert res.exit_code == 0, res.output
    clean = open_project(tmp_path / "snr" / "copick.json").run("TS_synth_1")
    pd.testing.assert_frame_equal(clean.picks(), gt)
    assert not np.array_equal(clean.tomogram(), run.tomogram())


def test_synth_bad_input(tiny_project: Path, tmp_path: Path):
    res = invoke("synth", "--preset", "tiny", "--out", str(tiny_project.parent), "--quiet")
    assert res.exit_code == 2 and "not empty" in res.output
    assert res.output.startswith(f"error: {tiny_project.parent}: ")
    res = invoke("synth", "--preset", "ciii", "--out", str(tmp_path / "x"))
    assert res.exit_code == 2 and "unknown phantom preset 'ciii'" in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_splits_lists_all(tmp_path: Path):
    res = invoke("splits")
    assert res.exit_code == 0, res.output
    for name in ("czii", "czii-synth", "byu", "byu-synth", "tiny"):
        assert any(line.startswith(name + " ") for line in res.output.splitlines())
    assert "4/1/2" in res.output


def test_show_writes_a_png_with_predictions(tiny_project: Path, tmp_path: Path):
    project = open_project(tiny_project)
    gt = project.run("TS_synth_1").picks()
    pred = gt.iloc[:3].assign(x=gt["x"].iloc[:3] + 20.0, score=0.9)
    pred.to_csv(tmp_path / "pred.csv", index=False)
    out = tmp_path / "slice.png"
    res = invoke("show", str(tiny_project), "--run", "TS_synth_1", "--predictions",
                 str(tmp_path / "pred.csv"), "-o", str(out))
    assert res.exit_code == 0, res.output
    img = np.asarray(Image.open(out))
    assert img.ndim == 3 and img.shape[0] > 300 and img.shape[1] > 300
    res = invoke("show", str(tiny_project), "--run", "TS_synth_1", "--z", "5", "-o",
                 str(tmp_path / "z5.png"))
    assert res.exit_code == 0 and "z=5" in res.output


@pytest.mark.parametrize("args,message", [
    (["--run", "TS_synth_1"], None),
    (["--run", "TS_nope"], "unknown run 'TS_nope'"),
    (["--run", "TS_synth_1", "--tomo-type", "wbp"], "no tomogram type 'wbp'"),
    (["--run", "TS_synth_1", "--voxel-spacing", "7.77"], "no voxel spacing 7.77"),
    (["--run", "TS_synth_1", "--z", "999"], "z=999 is outside"),
])
def test_show_errors_are_one_line_exit_2(tiny_project: Path, tmp_path: Path, args, message):
    if message is None:  # a missing config
        res = invoke("show", str(tmp_path / "missing.json"), *args, "-o", str(tmp_path / "a.png"))
        message = "copick config not found"
    else:
        res = invoke("show", str(tiny_project), *args, "-o", str(tmp_path / "a.png"))
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert not (tmp_path / "a.png").exists()


def test_show_invalid_config_and_corrupt_zarr(tiny_project: Path, tmp_path: Path):
    bad = tmp_path / "bad.json"
    bad.write_text("{]")
    res = invoke("show", str(bad), "--run", "x", "-o", str(tmp_path / "a.png"))
    assert res.exit_code == 2 and res.output.startswith(f"error: {bad}: invalid JSON")
    # corrupt a copy's zarr metadata
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_project.parent, copy)
    cfg = (copy / "copick.json").read_text().replace(str(tiny_project.parent), str(copy))
    (copy / "copick.json").write_text(cfg)
    run_dir = copy / "overlay" / "ExperimentRuns" / "TS_synth_1"
    zarr_dir = next(run_dir.glob("VoxelSpacing*/denoised.zarr"))
    (zarr_dir / "0" / ".zarray").write_text("not json")
    res = invoke("show", str(copy / "copick.json"), "--run", "TS_synth_1", "-o",
                 str(tmp_path / "a.png"))
    assert res.exit_code == 2 and "denoised.zarr" in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_busiest_slice_prefers_particle_centres():
    from cryobench.data.show import busiest_slice
    from cryobench.particles import BYU_MOTOR

    picks = pd.DataFrame({"experiment": ["r"], "particle_type": ["flagellar-motor"],
                          "x": [100.0], "y": [100.0], "z": [790.0]})
    assert busiest_slice(picks, 10.0, (BYU_MOTOR,), 128) == 79
    assert busiest_slice(picks.iloc[:0], 10.0, (BYU_MOTOR,), 128) == 64
