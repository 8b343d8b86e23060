"""`cryobench predict`: a run's saved model predicts the same picks as the run, written as the
task's Kaggle submission; bad inputs are one line."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

from cryobench.cli import cli
from cryobench.data import load_split
from cryobench.metrics import byu_score, czii_score
from cryobench.runner.run import run

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def unet_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return run("unet3d", "tiny", budget="smoke", out=out, progress=False, write_copick=False)


def _invoke(*args):
    return CliRunner().invoke(cli, ["predict", "--no-progress", *args])


def test_predict_reproduces_the_run_and_writes_a_czii_submission(unet_run, tmp_path):
    out = tmp_path / "submission.csv"
    res = _invoke("--model", str(unet_run.directory), "--data", "tiny", "--part", "test",
                  "-o", str(out))
    assert res.exit_code == 0, res.output
    sub = pd.read_csv(out)
    assert list(sub.columns) == ["id", "experiment", "particle_type", "x", "y", "z"]
    assert sub["id"].tolist() == list(range(len(sub)))
    recorded = pd.read_csv(unet_run.directory / "predictions.csv")
    pd.testing.assert_frame_equal(sub, recorded[list(sub.columns)])
    solution = load_split("tiny").solution("test")
    assert czii_score(sub, solution).score == unet_run.record.score


def test_model_folder_and_copick_project_work_too(unet_run, tmp_path):
    sp = load_split("tiny")
    cfg = sp.project().config_path
    run_name = sp.role_runs("test")[0]
    out = tmp_path / "sub.csv"
    res = _invoke("--model", str(unet_run.directory / "model"), "--data", str(cfg),
                  "--runs", run_name, "-o", str(out), "--with-score",
                  "--copick-user", "someone", "--copick-session", "try1")
    assert res.exit_code == 0, res.output
    sub = pd.read_csv(out)
    assert set(sub["experiment"]) <= {run_name} and "score" in sub.columns
    stored = sp.project().read_picks([run_name], user="someone", session="try1")
    assert len(stored) == len(sub)


def test_motor_model_writes_a_byu_submission(tmp_path):
    rec = run("cnn_regressor", "tiny-motor", budget="smoke", out=tmp_path / "runs",
              progress=False, write_copick=False)
    out = tmp_path / "byu.csv"
    res = _invoke("--model", str(rec.directory), "--data", "tiny-motor", "-o", str(out))
    assert res.exit_code == 0, res.output
    sub = pd.read_csv(out)
    assert list(sub.columns) == ["tomo_id", "Motor axis 0", "Motor axis 1", "Motor axis 2"]
    solution = load_split("tiny-motor").byu_solution("test")
    assert byu_score(sub, solution).score == rec.record.score


@pytest.mark.parametrize("args, message", [
    (["--model", "{tmp}/nothing", "--data", "tiny"], "no saved model"),
    (["--model", "{run}", "--data", "no-such-split"], "unknown split"),
    (["--model", "{run}", "--data", "tiny", "--part", "nope"], "unknown role 'nope'"),
    (["--model", "{run}", "--data", "tiny", "--runs", "TS_x"], "not in part 'test'"),
    (["--model", "{run}", "--data", "tiny-motor"], "is a 'motor' task"),
])
def test_bad_input_is_one_line(unet_run, tmp_path, args, message):
    args = [a.format(tmp=tmp_path, run=unet_run.directory) for a in args]
    out = tmp_path / "never.csv"
    res = _invoke(*args, "-o", str(out))
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not out.exists()
