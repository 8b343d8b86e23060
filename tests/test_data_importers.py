"""Importers: miniature fake Kaggle CZII and BYU trees built on disk, imported and read back."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from cryobench.cli import cli
from cryobench.data import load_split, open_project
from cryobench.data.importers import import_byu, import_czii
from cryobench.data.project import create_project
from cryobench.errors import DataError, DataUnavailableError, InputError
from cryobench.particles import CZII_PARTICLES

CZII_RUNS = ["TS_5_4", "TS_69_2", "TS_6_4", "TS_6_6", "TS_73_6", "TS_86_3", "TS_99_9"]


def make_fake_czii(root: Path, runs=CZII_RUNS, shape=(12, 20, 24)) -> Path:
    """A Kaggle-like ``train/`` tree: static zarr tomograms, overlay picks named <object>.json."""
    rng = np.random.default_rng(1)
    scratch = root / "scratch"
    w = create_project(scratch / "copick.json", scratch / "overlay", CZII_PARTICLES)
    for run in runs:
        w.add_run(run, rng.standard_normal(shape).astype(np.float32), 10.0, None)
    train = root / "train"
    (train / "static").mkdir(parents=True)
    shutil.copytree(scratch / "overlay" / "ExperimentRuns", train / "static" / "ExperimentRuns")
    for run in runs:
        shutil.rmtree(train / "static" / "ExperimentRuns" / run / "Picks")
        pick_dir = train / "overlay" / "ExperimentRuns" / run / "Picks"
        pick_dir.mkdir(parents=True)
        for k, p in enumerate(CZII_PARTICLES):
            pts = [{"location": {"x": 10.0 * (k + 1) + i, "y": 20.0 + i, "z": 30.0 + k},
                    "transformation_": np.eye(4).tolist(), "instance_id": 0}
                   for i in range(k % 3 + 1)]
            (pick_dir / f"{p.name}.json").write_text(json.dumps({
                "pickable_object_name": p.name, "user_id": "curation", "session_id": "0",
                "run_name": run, "voxel_spacing": None, "unit": "angstrom",
                "points": pts, "trust_orientation": True}))
        (pick_dir / "membrane.json").write_text("{}")  # not a particle class: skipped
    shutil.rmtree(scratch)
    return train


def test_import_czii_and_split(tmp_path: Path, monkeypatch):
    train = make_fake_czii(tmp_path)
    summary = import_czii(train, tmp_path / "czii")
    assert summary.runs == sorted(CZII_RUNS)
    assert summary.picks["apo-ferritin"] == 7 and summary.picks["beta-amylase"] == 14
    assert len(summary.skipped) == 7
    cfg = json.loads((tmp_path / "czii" / "copick.json").read_text())
    assert cfg["config_type"] == "filesystem"
    assert cfg["static_root"].endswith(str(train / "static"))
    picks_dir = tmp_path / "czii" / "overlay" / "ExperimentRuns" / "TS_5_4" / "Picks"
    assert (picks_dir / "curation_0_ribosome.json").exists()
    project = open_project(tmp_path / "czii" / "copick.json")
    assert project.runs == sorted(CZII_RUNS)
    run = project.run("TS_6_4")
    assert run.tomo_type == "denoised" and run.shape == (12, 20, 24)
    gt = run.picks()
    assert len(gt) == sum(k % 3 + 1 for k in range(6))
    ribo = gt[gt.particle_type == "ribosome"].sort_values("x")
    np.testing.assert_allclose(ribo[["x", "y", "z"]].to_numpy()[0], [40.0, 20.0, 33.0])

    # the named split finds the data through --data or CRYOBENCH_CZII
    split = load_split("czii", data_dir=tmp_path / "czii")
    assert split.train == ["TS_6_4", "TS_6_6", "TS_73_6", "TS_99_9"]
    assert split.val == ["TS_86_3"] and split.test == ["TS_5_4", "TS_69_2"]
    assert len(split.folds) == 7
    assert sorted(t for _, _, (t,) in split.folds) == sorted(CZII_RUNS)
    assert [r.name for r in split.runs("test")] == ["TS_5_4", "TS_69_2"]
    assert set(split.solution("test")["experiment"]) == {"TS_5_4", "TS_69_2"}
    fp = split.fingerprint
    monkeypatch.setenv("CRYOBENCH_CZII", str(tmp_path / "czii"))
    again = load_split("czii")
    assert again.fingerprint == fp
    fold = load_split("czii/fold3")
    assert fold.test == [CZII_RUNS[3]] and fold.val == [CZII_RUNS[4]] and len(fold.train) == 5
    assert fold.fingerprint != fp
    # the data changes -> the fingerprint changes
    moved = gt.assign(experiment="TS_5_4", x=gt["x"] + 1.0)
    project.write_picks("TS_5_4", moved, user="curation", session="0")
    assert load_split("czii").fingerprint != fp


def test_czii_split_without_data_says_how_to_get_it(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("CRYOBENCH_CZII", raising=False)
    with pytest.raises(DataUnavailableError, match="czii-synth.*offline"):
        load_split("czii")
    with pytest.raises(DataUnavailableError, match="does not exist"):
        load_split("czii", data_dir=tmp_path / "missing")
    train = make_fake_czii(tmp_path, runs=CZII_RUNS[:2])
    with pytest.raises(DataUnavailableError, match="import-czii"):
        load_split("czii", data_dir=train)
    import_czii(train, tmp_path / "partial")
    with pytest.raises(DataUnavailableError, match="lacks run"):
        load_split("czii", data_dir=tmp_path / "partial")


def test_import_czii_bad_input(tmp_path: Path):
    with pytest.raises(DataError, match="not found"):
        import_czii(tmp_path / "nothing", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="not a Kaggle CZII train directory"):
        import_czii(tmp_path / "empty", tmp_path / "out")
    train = make_fake_czii(tmp_path, runs=["TS_1_1"])
    bad = train / "overlay" / "ExperimentRuns" / "TS_1_1" / "Picks" / "ribosome.json"
    bad.write_text("[1, 2")
    with pytest.raises(DataError) as e:
        import_czii(train, tmp_path / "out")
    assert e.value.path == str(bad)
    assert not (tmp_path / "out").exists()  # nothing half-written


def make_fake_byu(root: Path, spec: dict[str, tuple[tuple[int, int, int], float, list]]) -> Path:
    """``root/train/<tomo_id>/slice_NNNN.jpg`` + ``root/train_labels.csv``."""
    rng = np.random.default_rng(2)
    rows = []
    for tomo_id, (shape, spacing, motors) in spec.items():
        d = root / "train" / tomo_id
        d.mkdir(parents=True)
        for z in range(shape[0]):
            img = rng.integers(0, 255, size=shape[1:], dtype=np.uint8)
            Image.fromarray(img).save(d / f"slice_{z:04d}.jpg", quality=95)
        for m in motors or [(-1, -1, -1)]:
            rows.append({"row_id": len(rows), "tomo_id": tomo_id, "Motor axis 0": m[0],
                         "Motor axis 1": m[1], "Motor axis 2": m[2],
                         "Array shape (axis 0)": shape[0], "Array shape (axis 1)": shape[1],
                         "Array shape (axis 2)": shape[2], "Voxel spacing": spacing,
                         "Number of motors": len(motors)})
    pd.DataFrame(rows).to_csv(root / "train_labels.csv", index=False)
    return root


BYU_SPEC = {
    "tomo_003acc": ((6, 16, 20), 6.5, []),
    "tomo_00e047": ((5, 18, 16), 15.6, [(2, 7, 9)]),
    "tomo_01a877": ((4, 16, 16), 13.1, [(1, 3, 4), (3, 10, 12)]),
}


def test_import_byu(tmp_path: Path):
    root = make_fake_byu(tmp_path / "kaggle", BYU_SPEC)
    summary = import_byu(root, tmp_path / "byu", progress=False)
    assert summary.runs == list(BYU_SPEC) and summary.picks == {"flagellar-motor": 3}
    project = open_project(tmp_path / "byu" / "copick.json")
    assert [p.name for p in project.particles] == ["flagellar-motor"]
    run = project.run("tomo_00e047")
    assert run.voxel_spacing == 15.6 and run.shape == (5, 18, 16) and run.tomo_type == "byu"
    first = np.asarray(Image.open(root / "train" / "tomo_00e047" / "slice_0000.jpg"))
    np.testing.assert_array_equal(run.tomogram()[0], first.astype(np.float32))
    np.testing.assert_allclose(run.picks()[["x", "y", "z"]].to_numpy(),
                               [[9 * 15.6, 7 * 15.6, 2 * 15.6]])
    assert len(project.run("tomo_003acc").picks()) == 0
    assert len(project.run("tomo_01a877").picks()) == 2


def test_import_byu_label_file_errors(tmp_path: Path):
    root = make_fake_byu(tmp_path / "kaggle", BYU_SPEC)
    labels = root / "train_labels.csv"
    df = pd.read_csv(labels)
    df.drop(columns=["Voxel spacing"]).to_csv(labels, index=False)
    with pytest.raises(InputError, match="missing column.*Voxel spacing") as e:
        import_byu(root, tmp_path / "out", progress=False)
    assert e.value.path == str(labels)
    df.assign(**{"Array shape (axis 0)": 99}).to_csv(labels, index=False)
    with pytest.raises(DataError, match="says"):
        import_byu(root, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
    pd.concat([df, df.iloc[:1].assign(tomo_id="tomo_missing")]).to_csv(labels, index=False)
    with pytest.raises(DataError, match="tomo_missing"):
        import_byu(root, tmp_path / "out", progress=False)


def test_import_cli_errors_exit_2(tmp_path: Path):
    root = make_fake_byu(tmp_path / "kaggle", {"tomo_a": ((3, 8, 8), 10.0, [])})
    labels = root / "train_labels.csv"
    pd.read_csv(labels).drop(columns=["Motor axis 1"]).to_csv(labels, index=False)
    res = CliRunner().invoke(cli, ["data", "import-byu", str(root), "--out",
                                   str(tmp_path / "o"), "--quiet"])
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [
        f"error: {labels}: missing column(s) 'Motor axis 1'; expected tomo_id, Motor axis 0, "
        "Motor axis 1, Motor axis 2, Voxel spacing"]
    res = CliRunner().invoke(cli, ["data", "import-czii", str(tmp_path / "nope"), "--out",
                                   str(tmp_path / "o")])
    assert res.exit_code == 2 and res.output.startswith(f"error: {tmp_path / 'nope'}: ")
    train = make_fake_czii(tmp_path, runs=["TS_1_1"])
    res = CliRunner().invoke(cli, ["data", "import-czii", str(train), "--out",
                                   str(tmp_path / "c")])
    assert res.exit_code == 0, res.output
    assert "imported 1 runs" in res.output
