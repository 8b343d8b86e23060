"""Hostile input at the scoring, report and leaderboard entry points: one line, exit 2, nothing
raw reaches a terminal or a Markdown page, one label rule on every path."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from cryobench.cli import cli
from cryobench.metrics import czii_score
from cryobench.testing.records import fake_record, record_path, write_fake_results

EX = Path(__file__).resolve().parents[1] / "cryobench" / "examples"


def _csv(path: Path, rows, cols=("experiment", "particle_type", "x", "y", "z")) -> Path:
    pd.DataFrame(rows, columns=list(cols)).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("value", ["1e200", "-5e155", "1" + "0" * 400])
def test_huge_coordinates_are_one_line(tmp_path, value):
    sub = tmp_path / "sub.csv"
    sub.write_text(f"experiment,particle_type,x,y,z\nTS_1,ribosome,{value},0,0\n")
    sol = _csv(tmp_path / "sol.csv", [("TS_1", "ribosome", 0.0, 0.0, 0.0)])
    res = CliRunner().invoke(cli, ["score", str(sub), "--solution", str(sol)])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {sub}"), lines


def test_labels_follow_one_rule_through_the_api_and_the_cli(tmp_path):
    sol = _csv(tmp_path / "sol.csv", [("001", "ribosome", 0.0, 0.0, 0.0),
                                      ("TS_2", "ribosome", 0.0, 0.0, 0.0)])
    sub = _csv(tmp_path / "sub.csv", [(" 001 ", " ribosome", 5.0, 0.0, 0.0),
                                      ("TS_2 ", "ribosome", 5.0, 0.0, 0.0)])
    api = czii_score(pd.read_csv(sub, dtype={"experiment": str}),
                     pd.read_csv(sol, dtype={"experiment": str})).score
    res = CliRunner().invoke(cli, ["score", str(sub), "--solution", str(sol), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["score"] == api
    assert json.loads(res.output)["per_class"]["ribosome"]["tp"] == 2
    # "1" is not "001": labels are text
    other = _csv(tmp_path / "one.csv", [("1", "ribosome", 5.0, 0.0, 0.0)])
    res = CliRunner().invoke(cli, ["score", str(other), "--solution", str(sol), "--json"])
    assert json.loads(res.output)["per_class"]["ribosome"]["tp"] == 0


def test_terminal_escapes_are_not_printed_raw(tmp_path):
    name = "TS\x1b[31m\x1b]0;pwned\x07"
    sol = _csv(tmp_path / "sol.csv", [(name, "ribosome", 0.0, 0.0, 0.0)])
    sub = _csv(tmp_path / "sub.csv", [(name, "ribosome", 0.0, 0.0, 0.0)])
    res = CliRunner().invoke(cli, ["score", str(sub), "--solution", str(sol),
                                   "--per-experiment"])
    assert res.exit_code == 0, res.output
    assert "\x1b" not in res.output and "\x07" not in res.output and "\\x1b" in res.output
    bad = _csv(tmp_path / "bad.csv", [(name, "ribo\x1b[2Jsome", 0.0, 0.0, 0.0)])
    res = CliRunner().invoke(cli, ["score", str(bad), "--solution", str(sol)])
    assert res.exit_code == 2 and "\x1b" not in res.output and "\\x1b" in res.output


def test_a_csv_above_the_size_bound_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("CRYOBENCH_MAX_CSV_MB", "0.001")
    rows = [("TS_1", "ribosome", float(i), 0.0, 0.0) for i in range(200)]
    sub = _csv(tmp_path / "sub.csv", rows)
    res = CliRunner().invoke(cli, ["score", str(sub), "--solution", str(EX / "czii_solution.csv")])
    assert res.exit_code == 2 and "CRYOBENCH_MAX_CSV_MB" in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_record_text_is_inert_in_markdown(tmp_path):
    results = tmp_path / "r"
    write_fake_results(results, methods=[("unet3d", 0.7)], seeds=[0, 1])
    rec = fake_record("evil<script>alert(1)</script>|x", seed=0)
    rec.save(record_path(results, rec))
    res = CliRunner().invoke(cli, ["leaderboard", "build", str(results), "--format", "md",
                                   "--flips", "0"])
    assert res.exit_code == 0, res.output
    assert "<script>" not in res.output and "&lt;script&gt;" in res.output
    out = tmp_path / "report.md"
    res = CliRunner().invoke(cli, ["report", str(results), "-o", str(out), "--no-data",
                                   "--flips", "0"])
    assert res.exit_code == 0, res.output
    assert "<script>" not in out.read_text()


@pytest.mark.parametrize("change", [
    {"counts": [{"experiment": "e", "particle_type": "ribosome", "tp": 10**40, "fp": 0,
                 "fn": 0}]},
    {"counts": [{"experiment": "e", "particle_type": "ribosome", "tp": 1e30, "fp": 0,
                 "fn": 0}]},
    {"params": {"weights": {"ribosome": "heavy"}}},
    {"params": {"weights": [1, 2]}},
    {"params": {"beta": float("nan")}},
    {"metrics": "not an object"},
    {"environment": []},
])
def test_one_malformed_record_never_aborts_the_build(tmp_path, change):
    results = tmp_path / "r"
    write_fake_results(results, methods=[("unet3d", 0.7)], seeds=[0, 1])
    bad = fake_record("deepfindet", seed=0).to_dict()
    bad.update(change)
    path = results / "czii-synth" / "deepfindet" / "x" / "seed-0" / "record.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(bad, allow_nan=True))
    res = CliRunner().invoke(cli, ["leaderboard", "build", str(results), "-o",
                                   str(tmp_path / "site"), "--flips", "0"])
    assert res.exit_code == 0, res.output
    assert f"warning: {path}: skipped" in res.output
    index = (tmp_path / "site" / "index.html").read_text()
    assert "flagged and skipped" in index and "deepfindet" not in index.split("<tbody>")[1]
