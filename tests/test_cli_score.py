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
CZII_HEAD = "experiment,particle_type,x,y,z\n"
BYU_HEAD = "tomo_id,Motor axis 0,Motor axis 1,Motor axis 2\n"
BOX_HEAD = "image_id,label,x0,y0,x1,y1"
GOOD_GT = BOX_HEAD + "\nimg1,cell,0,0,10,10\n"
GOOD_DT = BOX_HEAD + ",score\nimg1,cell,0,0,10,10,0.9\n"


def czii_sub(rows: str):
    """A CZII case: the submission has ``rows`` (the culprit), the solution is good."""
    return lambda t: (write(t, "sub.csv", CZII_HEAD + rows), write(t, "sol.csv", GOOD_SOL),
                      "sub")


# id -> (builder(tmp_path) giving (submission, solution, "sub" or "sol": the file the error
# must name), words the problem must contain)
BAD_INPUTS = {
    # CZII
    "missing submission file": (lambda t: (t / "nope.csv", write(t, "sol.csv", GOOD_SOL),
                                           "sub"), "not found"),
    "missing solution file": (lambda t: (write(t, "sub.csv", GOOD_SOL), t / "nosol.csv",
                                         "sol"), "not found"),
    "empty file": (lambda t: (write(t, "sub.csv", ""), write(t, "sol.csv", GOOD_SOL),
                              "sub"), "file is empty"),
    "malformed CSV (unclosed quote)": (lambda t: (write(t, "sub.csv", 'experiment,x\n"a,1\n'),
                                                  write(t, "sol.csv", GOOD_SOL), "sub"),
                                       "malformed CSV"),
    "malformed CSV (one row too long)": (czii_sub("TS_1,ribosome,0,0,0\nTS_1,ribosome,0,0,0,9\n"),
                                         "malformed CSV"),
    "malformed CSV (every row too long)": (czii_sub("TS_1,ribosome,0,0,0,9\n"),
                                           "malformed CSV (the data rows have 1 more field"),
    "misspelled column": (lambda t: (write(t, "sub.csv", "experimnt,particle_type,x,y,z\n"
                                                         "TS_1,ribosome,0,0,0\n"),
                                     write(t, "sol.csv", GOOD_SOL), "sub"),
                          "missing column(s) experiment"),
    "missing column": (lambda t: (write(t, "sub.csv", "experiment,particle_type,x,y\n"
                                                      "TS_1,ribosome,0,0\n"),
                                  write(t, "sol.csv", GOOD_SOL), "sub"),
                       "missing column(s) z"),
    "NaN coordinate": (czii_sub("TS_1,ribosome,nan,0,0\n"), "NaN"),
    "empty coordinate": (czii_sub("TS_1,ribosome,,0,0\n"), "NaN"),
    "infinite coordinate": (czii_sub("TS_1,ribosome,0,inf,0\n"), "infinite"),
    "negative infinite coordinate": (czii_sub("TS_1,ribosome,0,0,-inf\n"), "infinite"),
    "non-numeric coordinate": (czii_sub("TS_1,ribosome,ten,0,0\n"), "non-numeric"),
    "unknown particle type": (czii_sub("TS_1,ribosom,0,0,0\n"), "unknown particle type"),
    "NaN in the solution": (lambda t: (write(t, "sub.csv", GOOD_SOL),
                                       write(t, "sol.csv", GOOD_SOL + "TS_1,ribosome,1,nan,0\n"),
                                       "sol"), "NaN"),
    "duplicate solution rows": (lambda t: (write(t, "sub.csv", GOOD_SOL),
                                           write(t, "sol.csv", GOOD_SOL + "TS_1,ribosome,0,0,0\n"),
                                           "sol"), "duplicate solution row"),
    "header-only solution": (lambda t: (write(t, "sub.csv", GOOD_SOL),
                                        write(t, "sol.csv", CZII_HEAD), "sol"),
                             "no data rows"),
    "solution of another format": (lambda t: (write(t, "sub.csv", GOOD_SOL), BYU_SOL,
                                              "sol"), "missing column"),
    "unknown columns": (lambda t: (write(t, "sub.csv", "a,b\n1,2\n"),
                                   write(t, "sol.csv", GOOD_SOL), "sub"),
                        "cannot tell the metric"),
    # BYU
    "BYU mismatched tomo ids": (lambda t: (write(t, "sub.csv", BYU_HEAD + "tomo_000,1,2,3\n"
                                                               "tomo_999,1,2,3\n"),
                                           BYU_SOL, "sub"), "do not match"),
    "BYU NaN motor coordinate": (lambda t: (write(t, "sub.csv", BYU_HEAD + "tomo_000,1,2,3\n"
                                                                "tomo_001,nan,2,3\n"),
                                            BYU_SOL, "sub"), "NaN"),
    "BYU misspelled column": (lambda t: (write(t, "sub.csv", "tomo_id,Motor axis 0,Motor axis 1,"
                                                             "Motor axis3\ntomo_000,1,2,3\n"
                                                             "tomo_001,1,2,3\n"),
                                         BYU_SOL, "sub"), "Motor axis 2"),
    "BYU header-only solution": (lambda t: (write(t, "sub.csv", BYU_HEAD),
                                            write(t, "sol.csv", BYU_HEAD.strip()
                                                  + ",Voxel spacing,Has motor\n"), "sol"),
                                 "no data rows"),
    # mAP of boxes
    "boxes NaN in detections": (lambda t: (write(t, "dt.csv", BOX_HEAD + ",score\n"
                                                              "img1,cell,0,0,nan,10,0.9\n"),
                                           write(t, "gt.csv", GOOD_GT), "sub"), "NaN"),
    "boxes infinite score": (lambda t: (write(t, "dt.csv", BOX_HEAD + ",score\n"
                                                          "img1,cell,0,0,10,10,inf\n"),
                                        write(t, "gt.csv", GOOD_GT), "sub"), "infinite"),
    "boxes NaN in ground truth": (lambda t: (write(t, "dt.csv", GOOD_DT),
                                             write(t, "gt.csv", BOX_HEAD + "\n"
                                                   "img1,cell,0,nan,10,10\n"), "sol"),
                                  "NaN"),
    "boxes misspelled column": (lambda t: (write(t, "dt.csv", "image_id,label,x0,y0,x1,y2,score"
                                                              "\nimg1,cell,0,0,10,10,0.9\n"),
                                           write(t, "gt.csv", GOOD_GT), "sub"),
                                "missing column(s) y1"),
    "boxes without scores": (lambda t: (write(t, "dt.csv", GOOD_GT), write(t, "gt.csv", GOOD_GT),
                                        "sub"), "missing column(s) score"),
}


@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_on_stderr_with_exit_code_2(tmp_path, case, as_json):
    build, words = BAD_INPUTS[case]
    sub, sol, culprit = build(tmp_path)
    res = run(sub, "--solution", sol, *(["--json"] if as_json else []))
    assert res.exit_code == 2, res.output
    assert res.stdout == ""
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(f"error: {sub if culprit == 'sub' else sol}: "), lines[0]
    assert words in lines[0], lines[0]
    assert "Traceback" not in res.output


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


@pytest.mark.parametrize("args", [["--beta", "0"], ["--beta", "nan"],
                                  ["--distance-multiplier", "-1"]])
def test_bad_parameters_exit_2_without_traceback(args):
    res = run(CZII_SUB, "--solution", CZII_SOL, *args)
    assert res.exit_code == 2 and res.stdout == ""
    assert len(res.stderr.splitlines()) == 1 and res.stderr.startswith("error: ")
    assert "Traceback" not in res.output


@pytest.mark.parametrize("metric, args", [
    ("byu", ["--matching", "one-to-one"]), ("byu", ["--distance-multiplier", "0.8"]),
    ("czii", ["--distance-angstrom", "500"]), ("map", ["--beta", "2"]),
    ("map", ["--per-experiment"]),
])
def test_an_option_of_another_metric_is_refused_not_ignored(tmp_path, metric, args):
    sub, sol = {"czii": (CZII_SUB, CZII_SOL), "byu": (BYU_SUB, BYU_SOL),
                "map": (write(tmp_path, "dt.csv", GOOD_DT), write(tmp_path, "gt.csv",
                                                                  GOOD_GT))}[metric]
    res = run(sub, "--solution", sol, *args)
    assert res.exit_code == 2 and res.stdout == ""
    assert f"{args[0]} does not apply to the {metric} metric" in res.stderr
    assert "Traceback" not in res.output


def test_one_to_one_diagnostics_agree_with_the_score(tmp_path):
    # one candidate in range of two references: the footer must not report the Kaggle score
    sol = write(tmp_path, "sol.csv", CZII_HEAD + "A,apo-ferritin,0,0,0\nA,apo-ferritin,40,0,0\n")
    sub = write(tmp_path, "sub.csv", CZII_HEAD + "A,apo-ferritin,20,0,0\n")
    out = json.loads(run(sub, "--solution", sol, "--matching", "one-to-one", "--json").stdout)
    assert out["diagnostics"]["score"] == out["score"]
    assert out["diagnostics"]["score_deduplicated"] == out["score"]
    assert out["diagnostics"]["params"]["matching"] == "one-to-one"


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
