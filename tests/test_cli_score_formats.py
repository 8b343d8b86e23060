"""`cryobench score` on the files the field writes: STAR/Dynamo/EM/copick CSV submissions and
solutions (read through their libraries), raw BYU labels, and particle catalogues."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from cryobench.cli import cli
from cryobench.io.formats import write_picks
from cryobench.metrics import czii_score

EX = Path(__file__).resolve().parents[1] / "cryobench" / "examples"


def _score(*args):
    return CliRunner().invoke(cli, ["score", *map(str, args), "--json"])


@pytest.fixture(scope="module")
def tables():
    sub = pd.read_csv(EX / "czii_submission.csv")
    sol = pd.read_csv(EX / "czii_solution.csv")
    return sub[["experiment", "particle_type", "x", "y", "z"]], sol


@pytest.mark.parametrize("fmt, ext, extra", [
    ("relion4", ".star", ["--voxel-spacing", "10"]),
    ("pytom", ".star", ["--voxel-spacing", "10"]),
    ("copick-csv", ".csv", []),
])
def test_a_pick_file_scores_exactly_like_the_csv(tables, tmp_path, fmt, ext, extra):
    sub, sol = tables
    path = tmp_path / f"sub{ext}"
    write_picks(sub.assign(score=1.0), path, fmt, voxel_spacing=10.0)
    res = _score(path, "--solution", EX / "czii_solution.csv", *extra)
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["score"] == czii_score(sub, sol).score


def test_a_solution_in_a_pick_format(tables, tmp_path):
    sub, sol = tables
    path = tmp_path / "truth.star"
    write_picks(sol, path, "relion4", voxel_spacing=10.0)
    res = _score(EX / "czii_submission.csv", "--solution", path, "--voxel-spacing", "10")
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["score"] == czii_score(sub, sol).score


def test_a_missing_option_names_itself(tables, tmp_path):
    sub, _ = tables
    path = tmp_path / "sub.tbl"
    write_picks(sub[sub["particle_type"] == "ribosome"], path, "dynamo", voxel_spacing=10.0)
    (tmp_path / "sub.doc").unlink(missing_ok=True)
    res = CliRunner().invoke(cli, ["score", str(path), "--solution",
                                   str(EX / "czii_solution.csv")])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}") and "--" in lines[0]


def test_raw_byu_labels_are_a_solution(tmp_path):
    labels = pd.DataFrame({
        "row_id": range(4), "tomo_id": ["a", "b", "b", "c"],
        "Motor axis 0": [100, 50, 150, -1], "Motor axis 1": [200, 50, 400, -1],
        "Motor axis 2": [300, 50, 400, -1], "Voxel spacing": [10.0, 20.0, 20.0, 15.0],
        "Number of motors": [1, 2, 2, 0]})
    labels.to_csv(tmp_path / "train_labels.csv", index=False)
    sub = pd.DataFrame({"tomo_id": ["a", "b", "c"], "Motor axis 0": [101, 151, -1],
                        "Motor axis 1": [200, 401, -1], "Motor axis 2": [300, 400, -1]})
    sub.to_csv(tmp_path / "sub.csv", index=False)
    res = _score(tmp_path / "sub.csv", "--solution", tmp_path / "train_labels.csv")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    # b's prediction is near its second motor: a TP (a multi-motor tomogram is one positive)
    assert out["metric"] == "byu" and out["score"] == 1.0


def test_a_particle_catalogue_scores_other_classes(tmp_path):
    sol = pd.DataFrame({"experiment": ["e"] * 3, "particle_type": ["proteasome"] * 3,
                        "x": [0.0, 1000, 2000], "y": 0.0, "z": 0.0})
    sub = sol.iloc[:2].copy()
    sub["x"] += 10
    sol.to_csv(tmp_path / "sol.csv", index=False)
    sub.to_csv(tmp_path / "sub.csv", index=False)
    res = CliRunner().invoke(cli, ["score", str(tmp_path / "sub.csv"), "--solution",
                                   str(tmp_path / "sol.csv")])
    assert res.exit_code == 2 and "unknown particle type" in res.output
    (tmp_path / "p.toml").write_text('[particles.proteasome]\nradius = 100\nweight = 2\n')
    res = _score(tmp_path / "sub.csv", "--solution", tmp_path / "sol.csv", "--particles",
                 tmp_path / "p.toml")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["per_class"]["proteasome"]["tp"] == 2
    expected = czii_score(sub, sol, radii={"proteasome": 100.0}, weights={"proteasome": 2.0})
    assert np.isclose(out["score"], expected.score, rtol=0, atol=0)
