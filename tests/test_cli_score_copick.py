"""`cryobench score --copick`: picks stored in a copick project against its ground truth."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cryobench.cli import cli
from cryobench.data import load_split


@pytest.fixture(scope="module")
def tiny_project():
    return load_split("tiny").project(progress=False)


def _score(*args):
    result = CliRunner().invoke(cli, ["score", *args])
    return result


def test_ground_truth_stored_as_predictions_scores_one(tiny_project, tmp_path):
    truth = tiny_project.read_picks()
    run = tiny_project.runs[0]
    picks = truth[truth["experiment"] == run].copy()
    picks["score"] = 1.0
    tiny_project.write_picks(run, picks, user="cryobench", session="perfect")
    # only the run with predictions is perfect; the others are all misses
    result = _score("--copick", str(tiny_project.config_path), "--session", "perfect", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["metric"] == "czii"
    n_run = {k: int((picks["particle_type"] == k).sum()) for k in out["per_class"]}
    for name, stats in out["per_class"].items():
        assert stats["tp"] == n_run[name] and stats["fp"] == 0


def test_csv_against_copick_truth(tiny_project, tmp_path):
    truth = tiny_project.read_picks()
    csv = tmp_path / "sub.csv"
    truth.to_csv(csv, index=False)
    result = _score(str(csv), "--copick", str(tiny_project.config_path), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["score"] == pytest.approx(1.0)


def test_copick_and_solution_are_exclusive(tiny_project, tmp_path):
    csv = tmp_path / "sub.csv"
    tiny_project.read_picks().to_csv(csv, index=False)
    result = _score(str(csv), "--copick", str(tiny_project.config_path), "--solution", str(csv))
    assert result.exit_code == 2 and "not both" in result.output


def test_missing_copick_config_is_one_line(tmp_path):
    result = _score("--copick", str(tmp_path / "nope.json"))
    assert result.exit_code == 2
    assert result.output.strip().startswith("error: ") and "nope.json" in result.output
    assert len(result.output.strip().splitlines()) == 1
