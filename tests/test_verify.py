"""`cryobench verify`: a record reruns to byte-identical predictions; a changed file is caught
with its first differing line."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cryobench.cli import cli
from cryobench.runner.run import run
from cryobench.runner.verify import _package_note, first_difference, verify_record

pytest.importorskip("torch")


def test_first_difference():
    assert first_difference(b"a\nb\n", b"a\nb\n") is None
    assert first_difference(b"a\nb\nc\n", b"a\nB\nc\n") == (2, "b", "B")
    assert first_difference(b"a\n", b"a\nb\n") == (2, "<end of file>", "b")


@pytest.mark.parametrize("method, split", [("unet3d", "tiny"), ("cnn_regressor", "tiny-motor")])
def test_a_record_verifies_and_a_changed_one_does_not(method, split, tmp_path):
    res = run(method, split, budget="smoke", out=tmp_path, progress=False, write_copick=False)
    v = verify_record(res.directory)
    assert v.identical and v.rerun_score == res.record.score and v.line is None
    out = CliRunner().invoke(cli, ["verify", "--no-progress", str(res.path)])
    assert out.exit_code == 0 and "byte-identical" in out.output, out.output
    pred = res.directory / "predictions.csv"
    lines = pred.read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace(",", ",9", 1)
    pred.write_text("".join(lines))
    v = verify_record(res.directory)
    assert not v.identical and v.line == 2
    assert v.note == ""  # same packages and CPU: nothing to blame but the change
    out = CliRunner().invoke(cli, ["verify", "--no-progress", str(res.directory)])
    assert out.exit_code == 1 and "differ from line 2" in out.output, out.output


def test_a_mismatch_names_the_package_versions_that_changed(tmp_path):
    import json

    import numpy as np

    res = run("unet3d", "tiny", budget="smoke", out=tmp_path, progress=False,
              write_copick=False, save_model=False)
    assert res.record.environment["packages"]["numpy"] == np.__version__
    assert res.record.environment["cpu_model"]
    pred = res.directory / "predictions.csv"
    lines = pred.read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace(",", ",9", 1)
    pred.write_text("".join(lines))
    rec = json.loads(res.path.read_text())
    rec["environment"]["packages"]["numpy"] = "1.0.0"
    res.path.write_text(json.dumps(rec))
    out = CliRunner().invoke(cli, ["verify", "--no-progress", str(res.directory)])
    assert out.exit_code == 1, out.output
    assert f"numpy 1.0.0 -> {np.__version__}" in out.output, out.output


def test_package_note():
    new = {"packages": {"numpy": "2.4", "ultralytics": "8.4"}, "cpu_model": "A"}
    assert _package_note(new, new) == ""
    assert "no package versions" in _package_note({"cpu_model": "A"}, new)
    old = {"packages": {"numpy": "2.3", "ultralytics": "8.4"}, "cpu_model": "B"}
    assert _package_note(old, new) == ("the rerun differs from the record in: numpy 2.3 -> 2.4, "
                                       "CPU B -> A")
    assert _package_note({"packages": {}, "cpu_model": "A"}, new) == (
        "the rerun differs from the record in: numpy None -> 2.4, ultralytics None -> 8.4")


def test_verify_without_predictions_is_one_line(tmp_path):
    res = run("unet3d", "tiny", budget="smoke", out=tmp_path, progress=False,
              write_copick=False, save_model=False)
    (res.directory / "predictions.csv").unlink()
    out = CliRunner().invoke(cli, ["verify", str(res.directory)])
    assert out.exit_code == 2 and "predictions.csv is missing" in out.output
    assert len(out.output.strip().splitlines()) == 1


def test_compressed_predictions_still_verify_and_rescore(tmp_path):
    """Official records with large predictions keep them as predictions.csv.gz (deterministic
    gzip): verify and the site's rescoring read it as the CSV."""
    import gzip

    from cryobench.io.picks import read_picks_csv
    from cryobench.runner.record import RunRecord
    from cryobench.runner.store import compress_predictions

    res = run("unet3d", "tiny", budget="smoke", out=tmp_path, progress=False, write_copick=False)
    plain = res.directory / "predictions.csv"
    data = plain.read_bytes()
    assert compress_predictions(res.directory) is None  # small: left as it is
    packed = compress_predictions(res.directory, min_bytes=0)
    assert packed is not None and not plain.exists()
    assert gzip.decompress(packed.read_bytes()) == data
    plain.write_bytes(data)
    again = compress_predictions(res.directory, min_bytes=0)
    assert again.read_bytes() == packed.read_bytes()  # the same bytes every time
    rec = RunRecord.load(res.path)
    assert rec.predictions_path == packed
    assert len(read_picks_csv(rec.predictions_path)) == res.record.n_predictions
    v = verify_record(res.directory)
    assert v.identical and v.line is None


def test_corrupt_compressed_predictions_are_one_line(tmp_path):
    res = run("unet3d", "tiny", budget="smoke", out=tmp_path, progress=False, write_copick=False)
    (res.directory / "predictions.csv").unlink()
    (res.directory / "predictions.csv.gz").write_bytes(b"\x1f\x8bnot really gzip")
    out = CliRunner().invoke(cli, ["verify", "--no-progress", str(res.directory)])
    assert out.exit_code == 2, out.output
    lines = out.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "unreadable" in lines[0]
    assert "Traceback" not in out.output
