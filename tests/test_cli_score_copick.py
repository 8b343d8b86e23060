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


def test_runs_restrict_what_is_scored(tiny_project):
    truth = tiny_project.read_picks()
    run = tiny_project.runs[0]
    picks = truth[truth["experiment"] == run].assign(score=1.0)
    tiny_project.write_picks(run, picks, user="cryobench", session="onerun")
    cfg = str(tiny_project.config_path)
    everything = json.loads(_score("--copick", cfg, "--session", "onerun", "--json").output)
    only = json.loads(_score("--copick", cfg, "--session", "onerun", "--runs", run,
                             "--json").output)
    assert only["score"] == pytest.approx(1.0) and everything["score"] < 0.9
    assert "1 run(s)" in only["solution"]


def test_split_part_restricts_to_the_test_runs(tiny_project):
    split = load_split("tiny")
    test_runs = split.role_runs("test")
    truth = tiny_project.read_picks(test_runs)
    for run in test_runs:
        mine = truth[truth["experiment"] == run].assign(score=1.0)
        tiny_project.write_picks(run, mine, user="cryobench", session="testonly")
    result = _score("--copick", str(tiny_project.config_path), "--session", "testonly",
                    "--split", "tiny", "--part", "test", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["score"] == pytest.approx(1.0)


@pytest.mark.parametrize("args, message", [
    (["--session", "no-such-session"], "users/sessions with picks"),
    (["--user", "nobody"], "users/sessions with picks"),
    (["--runs", "TS_not_there"], "unknown run(s) 'TS_not_there'"),
    (["--split", "tiny", "--part", "nope"], "nope"),
])
def test_wrong_selection_is_one_line_not_a_zero_score(tiny_project, args, message):
    result = _score("--copick", str(tiny_project.config_path), *args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines


def test_runs_need_copick(tmp_path):
    csv = tmp_path / "sub.csv"
    csv.write_text("experiment,particle_type,x,y,z\na,ribosome,1,2,3\n")
    result = _score(str(csv), "--solution", str(csv), "--runs", "a")
    assert result.exit_code == 2 and "apply to --copick" in result.output


def test_a_motor_project_is_scored_with_the_byu_rule(tmp_path):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from copick_builders import copick_project

    objects = [{"name": "flagellar-motor", "is_particle": True, "radius": 250, "label": 1}]
    # the ground truth sits at (100 + k, 120, 50) Å in run k; predict runs a and b there, c far
    cfg = copick_project(tmp_path, objects, picks={("cryobench", "guess"): {
        "flagellar-motor": [101.0, 120.0, 50.0]}})
    result = _score("--copick", str(cfg), "--session", "guess", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["metric"] == "byu"
    assert out["per_class"]["flagellar-motor"]["tp"] == 3  # within 1000 Å in every run
