"""``cryobench score``: the quick start, outputs, and one-line errors for every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import cryobench
from cryobench.cli import cli
from cryobench.metrics import byu_score, czii_score

EXAMPLES = Path(cryobench.__file__).parent / "examples"
CZII_SUB = EXAMPLES / "czii_submission.csv"
CZII_SOL = EXAMPLES / "czii_solution.csv"
BYU_SUB = EXAMPLES / "byu_submission.csv"
BYU_SOL = EXAMPLES / "byu_solution.csv"


def run(*args):
    return CliRunner().invoke(cli, ["score", *map(str, args)])


def test_quick_start_example_scores_the_bundled_files():
    res = run(CZII_SUB, "--solution", CZII_SOL)
    assert res.exit_code == 0, res.output
    expected = czii_score(pd.read_csv(CZII_SUB), pd.read_csv(CZII_SOL)).score
    last = res.stdout.strip().splitlines()[-1]
    assert last.startswith("score") and last.endswith(f"{expected:.6f}")
    assert "apo-ferritin" in res.stdout and "diagnostics:" in res.stdout


def test_json_output_has_score_per_class_and_diagnostics():
    res = run(CZII_SUB, "--solution", CZII_SOL, "--json")
    assert res.exit_code == 0
    out = json.loads(res.stdout)
    assert out["score"] == czii_score(pd.read_csv(CZII_SUB), pd.read_csv(CZII_SOL)).score
    for stats in out["per_class"].values():
        assert {"tp", "fp", "fn", "precision", "recall", "fbeta"} <= set(stats)
    assert {"duplicate_rate", "unmatched_rate", "score_deduplicated"} <= set(out["diagnostics"])
    assert out["params"]["beta"] == 4 and out["params"]["matching"] == "kaggle"
    assert "per_experiment" not in out


def test_options_reach_the_metric():
    res = run(CZII_SUB, "--solution", CZII_SOL, "--json", "--beta", "2",
              "--distance-multiplier", "0.8", "--matching", "one-to-one", "--per-experiment")
    out = json.loads(res.stdout)
    expected = czii_score(pd.read_csv(CZII_SUB), pd.read_csv(CZII_SOL), beta=2,
                          distance_multiplier=0.8, matching="one-to-one")
    assert out["score"] == expected.score
    assert out["per_experiment"][0].keys() == {"experiment", "particle_type", "tp", "fp", "fn"}


def test_bootstrap_is_seeded_and_reported():
    a = json.loads(run(CZII_SUB, "--solution", CZII_SOL, "--json", "--bootstrap", "50",
                       "--seed", "3").stdout)
    b = json.loads(run(CZII_SUB, "--solution", CZII_SOL, "--json", "--bootstrap", "50",
                       "--seed", "3").stdout)
    assert a["bootstrap"] == b["bootstrap"]
    assert a["bootstrap"]["n_resamples"] == 50 and a["bootstrap"]["n_groups"] == 3
    text = run(CZII_SUB, "--solution", CZII_SOL, "--bootstrap", "20").stdout
    assert "95% CI" in text


def test_per_experiment_table():
    res = run(CZII_SUB, "--solution", CZII_SOL, "--per-experiment")
    assert "TS_69_2" in res.stdout


def test_byu_is_inferred_from_the_columns():
    res = run(BYU_SUB, "--solution", BYU_SOL, "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["metric"] == "byu"
    assert out["score"] == byu_score(pd.read_csv(BYU_SUB), pd.read_csv(BYU_SOL)).score
    assert "flagellar-motor" in out["per_class"]


def test_map_on_picks_with_scores(tmp_path):
    sub = pd.read_csv(CZII_SUB)
    sub["score"] = 1.0 / (1 + sub.index)
    path = tmp_path / "scored.csv"
    sub.to_csv(path, index=False)
    res = run(path, "--solution", CZII_SOL, "--metric", "map", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["metric"] == "map_picks" and 0 < out["map50"] <= 1
    assert "AP50" in run(path, "--solution", CZII_SOL, "--metric", "map").stdout


# --------------------------------------------------------------------------- bad input
def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


GOOD_SOL = "experiment,particle_type,x,y,z\nTS_1,ribosome,0,0,0\nTS_1,apo-ferritin,500,0,0\n"


def bad_cases(tmp_path: Path):
    sol = write(tmp_path, "sol.csv", GOOD_SOL)
    yield "missing file", tmp_path / "nope.csv", sol, "nope.csv", "not found"
    yield "empty file", write(tmp_path, "empty.csv", ""), sol, "empty.csv", "empty"
    yield ("malformed CSV", write(tmp_path, "bad.csv", 'experiment,x\n"unclosed,1\n'), sol,
           "bad.csv", "")
    yield ("misspelled column", write(tmp_path, "typo.csv",
                                      "experimnt,particle_type,x,y,z\nTS_1,ribosome,0,0,0\n"),
           sol, "typo.csv", "missing column(s) experiment")
    yield ("NaN coordinate", write(tmp_path, "nan.csv",
                                   "experiment,particle_type,x,y,z\nTS_1,ribosome,nan,0,0\n"),
           sol, "nan.csv", "NaN")
    yield ("non-numeric coordinate", write(tmp_path, "text.csv",
                                           "experiment,particle_type,x,y,z\nTS_1,ribosome,"
                                           "ten,0,0\n"), sol, "text.csv", "non-numeric")
    yield ("unknown particle type", write(tmp_path, "unk.csv",
                                          "experiment,particle_type,x,y,z\nTS_1,ribosom,0,0,0\n"),
           sol, "unk.csv", "unknown particle type")
    yield ("duplicate solution rows", write(tmp_path, "ok.csv", GOOD_SOL),
           write(tmp_path, "dup.csv", GOOD_SOL + "TS_1,ribosome,0,0,0\n"), "dup.csv",
           "duplicate solution row")
    yield ("solution of another format", write(tmp_path, "ok2.csv", GOOD_SOL), BYU_SOL,
           "byu_solution.csv", "missing column")
    byu_sub = write(tmp_path, "byu_sub.csv", "tomo_id,Motor axis 0,Motor axis 1,Motor axis 2\n"
                    "tomo_000,1,2,3\ntomo_999,1,2,3\n")
    yield "mismatched tomo ids", byu_sub, BYU_SOL, "byu_sub.csv", "do not match"
    yield ("unknown columns", write(tmp_path, "what.csv", "a,b\n1,2\n"), sol, "what.csv",
           "cannot tell the metric")


def test_every_bad_input_is_one_line_on_stderr_with_exit_code_2(tmp_path):
    n = 0
    for label, sub, sol, culprit, words in bad_cases(tmp_path):
        res = run(sub, "--solution", sol)
        assert res.exit_code == 2, (label, res.output)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1, (label, res.stderr)
        assert lines[0].startswith("error: ") and culprit in lines[0], (label, lines[0])
        assert words in lines[0], (label, lines[0])
        assert res.stdout == "", label
        assert "Traceback" not in res.output
        n += 1
    assert n == 11


@pytest.mark.parametrize("threads", ["1", "2"])
def test_with_both_files_bad_the_submission_error_comes_first(tmp_path, monkeypatch, threads):
    """The solution is read beside the submission; errors keep the order sub, metric, sol."""
    monkeypatch.setenv("CRYOBENCH_NUM_THREADS", threads)
    bad_sol = write(tmp_path, "bad_sol.csv", "")
    cases = [(tmp_path / "nope.csv", "nope.csv"),
             (write(tmp_path, "what.csv", "a,b\n1,2\n"), "cannot tell the metric"),
             (write(tmp_path, "good.csv", GOOD_SOL), "bad_sol.csv")]
    for sub, words in cases:
        res = run(sub, "--solution", bad_sol)
        assert res.exit_code == 2
        assert res.stderr.count("\n") == 1 and words in res.stderr, res.stderr


def test_missing_solution_option_is_a_usage_error():
    res = run(CZII_SUB)
    assert res.exit_code == 2 and "--solution" in res.output


@pytest.mark.parametrize("args", [["--beta", "0"], ["--distance-multiplier", "-1"]])
def test_bad_parameters_exit_2_without_traceback(args):
    res = run(CZII_SUB, "--solution", CZII_SOL, *args)
    assert res.exit_code == 2 and res.stderr.startswith("error: ")
    assert "Traceback" not in res.output


def test_numeric_looking_experiment_names_stay_text(tmp_path):
    rows = "experiment,particle_type,x,y,z\n001,ribosome,0,0,0\n010,ribosome,0,0,0\n"
    sol = write(tmp_path, "sol.csv", rows)
    sub = write(tmp_path, "sub.csv", rows.replace("010,", "10,"))  # "10" is not "010"
    out = json.loads(run(sub, "--solution", sol, "--json", "--per-experiment").stdout)
    assert {r["experiment"] for r in out["per_experiment"]} == {"001", "010"}
    assert out["per_class"]["ribosome"]["tp"] == 1
    assert out["params"]["n_dropped_foreign_experiment_rows"] == 1


def test_box_detections_give_map(tmp_path):
    gt = write(tmp_path, "gt.csv", "image_id,label,x0,y0,x1,y1\nimg1,cell,0,0,10,10\n")
    dt = write(tmp_path, "dt.csv", "image_id,label,x0,y0,x1,y1,score\nimg1,cell,0,0,10,10,0.9\n"
               "img1,cell,50,50,60,60,0.8\n")
    out = json.loads(run(dt, "--solution", gt, "--json").stdout)
    assert out["metric"] == "map_boxes" and out["map"] == pytest.approx(1.0, abs=1e-12)
