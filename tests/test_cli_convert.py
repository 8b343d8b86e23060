"""``cryobench convert`` and ``cryobench data solution``: conversions that score as the CSV does,
and one-line errors (exit 2, nothing written) for bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import starfile
from click.testing import CliRunner

import cryobench
from cryobench.cli import cli
from cryobench.io.byu import read_byu_csv
from cryobench.io.formats import read_picks
from cryobench.io.picks import read_picks_csv
from cryobench.metrics import byu_score, czii_score

EXAMPLES = Path(cryobench.__file__).parent / "examples"
SUB = EXAMPLES / "czii_submission.csv"
SOL = EXAMPLES / "czii_solution.csv"


def run(*args):
    return CliRunner().invoke(cli, [*map(str, args)])


def _one_line_error(res, *fragments):
    assert res.exit_code == 2, res.output
    assert res.stdout == ""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    for f in fragments:
        assert f in lines[0], lines[0]
    assert "Traceback" not in res.output


def test_convert_chain_scores_as_the_csv(tmp_path):
    expected = czii_score(read_picks_csv(SUB), read_picks_csv(SOL)).score
    res = run("convert", SUB, "-o", tmp_path / "a.star", "--voxel-spacing", "10")
    assert res.exit_code == 0, res.output
    assert "as relion4" in res.stdout and "86 picks" in res.stdout
    res = run("convert", tmp_path / "a.star", "-o", tmp_path / "b.star", "--to", "relion5",
              "--tomogram-shape", "184,630,630", "--voxel-spacing", "10")
    assert res.exit_code == 0, res.output
    res = run("convert", tmp_path / "b.star", "-o", tmp_path / "c.csv", "--to", "copick-csv",
              "--tomogram-shape", "184,630,630", "--voxel-spacing", "10")
    assert res.exit_code == 0, res.output
    res = run("convert", tmp_path / "c.csv", "-o", tmp_path / "d.csv")
    assert res.exit_code == 0, res.output
    assert czii_score(read_picks_csv(tmp_path / "d.csv"), read_picks_csv(SOL)).score == expected
    assert list(pd.read_csv(tmp_path / "d.csv").columns[:6]) == ["id", "experiment",
                                                                 "particle_type", "x", "y", "z"]


def test_convert_to_dynamo_one_type_with_its_tomogram_list(tmp_path):
    res = run("convert", SUB, "-o", tmp_path / "r.tbl", "--voxel-spacing", "10",
              "--particle-type", "ribosome")
    assert res.exit_code == 0, res.output
    assert str(tmp_path / "r.doc") in res.stdout
    back = read_picks(tmp_path / "r.tbl", particle_type="ribosome")  # apix + r.doc
    sub = read_picks_csv(SUB)
    assert len(back) == (sub.particle_type == "ribosome").sum()
    res = run("convert", tmp_path / "r.tbl", "-o", tmp_path / "r.em", "--particle-type",
              "ribosome", "--voxel-spacing", "10")
    assert res.exit_code == 0, res.output
    res = run("convert", tmp_path / "r.em", "-o", tmp_path / "r.csv", "--particle-type",
              "ribosome", "--voxel-spacing", "10")
    assert res.exit_code == 0, res.output
    got = read_picks_csv(tmp_path / "r.csv")
    ref = sub[sub.particle_type == "ribosome"]
    np.testing.assert_allclose(np.sort(got["x"]), np.sort(ref["x"]), atol=1e-9)


def test_convert_errors_are_one_line(tmp_path):
    _one_line_error(run("convert", SUB, "-o", tmp_path / "a.tbl", "--voxel-spacing", "10"),
                    "one particle type", "--particle-type NAME")
    _one_line_error(run("convert", SUB, "-o", tmp_path / "a.star"), "--voxel-spacing A")
    _one_line_error(run("convert", SUB, "-o", tmp_path / "a.star", "--to", "relion5",
                        "--voxel-spacing", "10"), "--tomogram-shape Z,Y,X")
    _one_line_error(run("convert", SUB, "-o", tmp_path / "a.xyz"), "cannot tell the format")
    _one_line_error(run("convert", tmp_path / "none.csv", "-o", tmp_path / "a.csv"),
                    "file not found")
    _one_line_error(run("convert", SUB, "-o", SUB), "same file")
    _one_line_error(run("convert", SUB, "-o", tmp_path / "a.star", "--to", "relion5",
                        "--voxel-spacing", "10", "--tomogram-shape", "1,2"), "tomogram shape")
    _one_line_error(run("convert", SUB, "-o", tmp_path / "a.csv", "--copick",
                        tmp_path / "missing.json"), "missing.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_nan_and_inf_values(tmp_path, value):
    df = pd.read_csv(SUB)
    df["x"] = df["x"].astype(object)
    df.loc[4, "x"] = value
    df.to_csv(tmp_path / "bad.csv", index=False)
    _one_line_error(run("convert", tmp_path / "bad.csv", "-o", tmp_path / "out.star",
                        "--voxel-spacing", "10"), "bad.csv", "NaN or infinite", "data row 5")
    star = pd.DataFrame({"rlnTomoName": ["TS_1"], "rlnCoordinateX": [float(value)],
                         "rlnCoordinateY": [1.0], "rlnCoordinateZ": [1.0]})
    starfile.write(star, tmp_path / "bad.star")
    _one_line_error(run("convert", tmp_path / "bad.star", "-o", tmp_path / "out.csv",
                        "--voxel-spacing", "10", "--particle-type", "ribosome"),
                    "bad.star", "NaN or infinite")
    assert not (tmp_path / "out.star").exists() and not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("name", ["TS 5", "data_TS", "_x", "a'b"])
def test_hostile_names(tmp_path, name):
    df = pd.read_csv(SUB)
    df.loc[0, "experiment"] = name
    df.to_csv(tmp_path / "in.csv", index=False)
    _one_line_error(run("convert", tmp_path / "in.csv", "-o", tmp_path / "out.star",
                        "--voxel-spacing", "10"), "cannot be written")
    assert not (tmp_path / "out.star").exists()


def test_control_characters_in_names(tmp_path):
    df = pd.read_csv(SUB)
    df.loc[0, "particle_type"] = "ribo\x1bsome"
    df.to_csv(tmp_path / "in.csv", index=False)
    _one_line_error(run("convert", tmp_path / "in.csv", "-o", tmp_path / "out.csv"),
                    "control character")


def test_data_solution_czii_split(tmp_path):
    from cryobench.data import load_split

    res = run("data", "solution", "tiny", "--part", "all", "-o", tmp_path / "sol.csv",
              "--quiet")
    assert res.exit_code == 0, res.output
    sol = pd.read_csv(tmp_path / "sol.csv")
    assert list(sol.columns) == ["id", "experiment", "particle_type", "x", "y", "z"]
    truth = load_split("tiny").solution("all")
    assert len(sol) == len(truth)
    assert czii_score(sol, truth).score == czii_score(truth, truth).score
    res = run("score", tmp_path / "sol.csv", "--solution", tmp_path / "sol.csv", "--json")
    assert res.exit_code == 0, res.output


def test_data_solution_byu_split(tmp_path):
    from cryobench.data import load_split

    res = run("data", "solution", "tiny-motor", "-o", tmp_path / "sol.csv", "--quiet")
    assert res.exit_code == 0, res.output
    sol = pd.read_csv(tmp_path / "sol.csv")
    assert list(sol.columns) == ["tomo_id", "Motor axis 0", "Motor axis 1", "Motor axis 2",
                                 "Voxel spacing", "Has motor"]
    split = load_split("tiny-motor")
    assert sol["tomo_id"].tolist() == split.test
    table = read_byu_csv(tmp_path / "sol.csv", solution=True)
    assert byu_score(table.drop(columns=["Voxel spacing", "Has motor"]), table).score == 1.0


def test_data_solution_errors(tmp_path):
    _one_line_error(run("data", "solution", "nosuchsplit", "-o", tmp_path / "s.csv"),
                    "nosuchsplit")
    res = run("data", "solution", "czii", "--data", tmp_path / "absent", "-o",
              tmp_path / "s.csv")
    assert res.exit_code == 2 and "error:" in res.stderr
    assert not (tmp_path / "s.csv").exists()
