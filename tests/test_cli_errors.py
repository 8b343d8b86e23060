"""Every failure of a command is one line on stderr: user errors (bad options, seeds, OS
errors on outputs) exit 2, interruptions 130, bugs 1; nothing is written on the way."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cryobench.cli import cli

EX = Path(__file__).resolve().parents[1] / "cryobench" / "examples"
SUB, SOL = str(EX / "czii_submission.csv"), str(EX / "czii_solution.csv")


def _one_line_error(res, code: int = 2, text: str = "") -> str:
    assert res.exit_code == code, (res.exit_code, res.output)
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    assert text in lines[0], lines[0]
    assert "Traceback" not in res.output
    return lines[0]


@pytest.mark.parametrize("args, text", [
    (["score", SUB, "--solution", SOL, "--bootstrap", "5", "--seed", "-1"], "--seed"),
    (["score", SUB, "--solution", SOL, "--bootstrap", "5", "--seed", str(2**64)], "--seed"),
    (["score", SUB, "--solution", SOL, "--bootstrap", "1000000000"], "--bootstrap"),
    (["data", "synth", "--preset", "tiny", "--out", "{tmp}/o", "--seed", "-1"], "--seed"),
    (["run", "--method", "unet3d", "--split", "tiny", "--seed", str(2**64),
      "--out", "{tmp}/r"], "--seed"),
    (["ablate", "--method", "unet3d", "--split", "tiny", "--vary", "lr=0.1,0.2",
      "--seeds", "0-100000000", "--results", "{tmp}/a", "--dry-run"], "at most 1000"),
    (["nosuchcommand"], "No such command"),
    (["score"], "missing argument SUBMISSION"),
])
def test_bad_options_are_one_line_and_write_nothing(args, text, tmp_path):
    args = [a.format(tmp=tmp_path) for a in args]
    res = CliRunner().invoke(cli, args)
    _one_line_error(res, 2, text)
    assert not any(tmp_path.iterdir())


def test_an_output_that_is_a_directory_or_read_only(tmp_path):
    (tmp_path / "adir").mkdir()
    res = CliRunner().invoke(cli, ["leaderboard", "build", str(Path(__file__).resolve().parents[1]
                                                              / "leaderboards" / "results"),
                                   "--format", "md", "-o", str(tmp_path / "adir"),
                                   "--flips", "0"])
    _one_line_error(res, 2, str(tmp_path / "adir"))


def test_stdout_on_a_full_disk_is_one_line():
    if not os.path.exists("/dev/full"):  # pragma: no cover - Linux has it
        pytest.fail("/dev/full is missing")
    with open("/dev/full", "w") as full:
        out = subprocess.run([sys.executable, "-m", "cryobench", "score", SUB, "--solution", SOL],
                             stdout=full, stderr=subprocess.PIPE, text=True, timeout=300)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert lines == ["error: <stdout>: No space left on device"], out.stderr


def test_a_bug_is_one_line_with_exit_1(monkeypatch):
    from cryobench.cli import score as score_mod

    def boom(*args, **kwargs):
        raise TypeError("an unexpected thing")

    monkeypatch.setattr(score_mod, "score_tables", boom)
    res = CliRunner().invoke(cli, ["score", SUB, "--solution", SOL])
    line = _one_line_error(res, 1, "unexpected TypeError: an unexpected thing")
    assert "CRYOBENCH_DEBUG=1" in line
    monkeypatch.setenv("CRYOBENCH_DEBUG", "1")
    res = CliRunner().invoke(cli, ["score", SUB, "--solution", SOL])
    assert isinstance(res.exception, TypeError)
