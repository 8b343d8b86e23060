"""Hostile input to the importers and to copick configs: one line naming the file (and the data
row), exit code 2 through the CLI, nothing written, nothing outside --out."""

from __future__ import annotations

import json
import socket
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from cryobench.cli import cli
from cryobench.data import open_project
from cryobench.data.importers import import_byu, import_czii
from cryobench.data.project import create_project
from cryobench.errors import DataError, InputError
from cryobench.particles import CZII_PARTICLES

# ----- BYU -----------------------------------------------------------------------------------

HEADER = ("row_id,tomo_id,Motor axis 0,Motor axis 1,Motor axis 2,Array shape (axis 0),"
          "Array shape (axis 1),Array shape (axis 2),Voxel spacing,Number of motors\n")
SHAPE = (3, 8, 8)


def _byu(root: Path, rows: str, tomo_ids=("tomo_a", "tomo_b"), header: str = HEADER) -> Path:
    rng = np.random.default_rng(0)
    for t in tomo_ids:
        (root / "train" / t).mkdir(parents=True)
        for z in range(SHAPE[0]):
            Image.fromarray(rng.integers(0, 255, SHAPE[1:], dtype=np.uint8)).save(
                root / "train" / t / f"slice_{z:04d}.jpg")
    (root / "train_labels.csv").write_text(header + rows)
    return root


GOOD_ROWS = "0,tomo_a,1,2,3,3,8,8,10.0,1\n1,tomo_b,-1,-1,-1,3,8,8,12.5,0\n"


def _run_cli(*args: str):
    return CliRunner().invoke(cli, ["data", *args])


def _one_line_error(res, path: Path | str) -> str:
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: "), res.output
    return lines[0]


def test_good_labels_import(tmp_path):
    root = _byu(tmp_path / "k", GOOD_ROWS)
    summary = import_byu(root, tmp_path / "out", progress=False)
    assert summary.picks == {"flagellar-motor": 1}


BAD_LABELS = {
    "nan coordinate": ("0,tomo_a,nan,2,3,3,8,8,10.0,1\n", "'Motor axis 0' has an empty, NaN or "
                                                          "infinite value (data row 1)"),
    "inf coordinate": ("0,tomo_a,1,inf,3,3,8,8,10.0,1\n", "'Motor axis 1' has a NaN or infinite"),
    "1e400 coordinate": ("0,tomo_a,1,2,3,3,8,8,10.0,1\n1,tomo_b,1,2,1e400,3,8,8,10.0,1\n",
                         "'Motor axis 2' has a NaN or infinite value inf (data row 2)"),
    "inf voxel spacing": ("0,tomo_a,1,2,3,3,8,8,inf,1\n", "'Voxel spacing' has a NaN or infinite"),
    "400-digit voxel spacing": (f"0,tomo_a,1,2,3,3,8,8,{'9' * 400},1\n", "'Voxel spacing'"),
    "huge voxel spacing": ("0,tomo_a,1,2,3,3,8,8,1e7,1\n", "voxel spacing 10000000.0 must be "
                                                          "in (0, 10000] Å (data row 1)"),
    "zero voxel spacing": ("0,tomo_a,1,2,3,3,8,8,0,1\n", "voxel spacing 0.0 must be in"),
    "path traversal in tomo_id": ("0,../../../evil,1,2,3,3,8,8,10.0,1\n",
                                  "tomo_id in data row 1 '../../../evil' contains '/'"),
    "control characters in tomo_id": ("0,tomo\x1b[2J,1,2,3,3,8,8,10.0,1\n", "U+001B"),
    "empty tomo_id": ("0,,1,2,3,3,8,8,10.0,1\n", "'tomo_id' is empty (data row 1)"),
    "partial -1": ("0,tomo_a,-1,2,3,3,8,8,10.0,1\n", "neither a position"),
    "negative coordinate": ("0,tomo_a,-5,2,3,3,8,8,10.0,1\n", "neither a position"),
    "motor outside the stack": ("0,tomo_a,1,2,30,3,8,8,10.0,1\n", "outside the (3, 8, 8) "
                                                                  "stack"),
    "two spacings for one tomogram": ("0,tomo_a,1,2,3,3,8,8,10.0,2\n"
                                      "1,tomo_a,1,2,4,3,8,8,11.0,2\n",
                                      "two different values of 'Voxel spacing' (data row 2)"),
    "no-motor row beside motor rows": ("0,tomo_a,1,2,3,3,8,8,10.0,1\n"
                                       "1,tomo_a,-1,-1,-1,3,8,8,10.0,1\n", "both a 'no motor'"),
    "fractional array shape": ("0,tomo_a,1,2,3,3.5,8,8,10.0,1\n", "whole number"),
    "no data rows": ("", "no data rows"),
}


@pytest.mark.parametrize("case", list(BAD_LABELS))
def test_bad_byu_labels_name_the_file_and_row(tmp_path, case):
    rows, words = BAD_LABELS[case]
    root = _byu(tmp_path / "k", rows)
    labels = root / "train_labels.csv"
    with pytest.raises((InputError, DataError)) as e:
        import_byu(root, tmp_path / "out", progress=False)
    assert e.value.path == str(labels)
    assert words in e.value.message
    assert not (tmp_path / "out").exists()
    line = _one_line_error(_run_cli("import-byu", str(root), "--out", str(tmp_path / "out"),
                                    "--quiet"), labels)
    assert words in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k"]  # nothing written anywhere
    assert not any(p.name.startswith("VoxelSpacing") for p in tmp_path.rglob("*"))


def test_true_false_coordinates_are_refused(tmp_path):
    root = _byu(tmp_path / "k", "0,tomo_a,True,2,3,3,8,8,10.0,1\n1,tomo_b,False,2,3,3,8,8,10.0,1\n")
    with pytest.raises(InputError, match="'Motor axis 0' holds True/False values"):
        import_byu(root, tmp_path / "out", progress=False)


def test_duplicated_header_column_is_refused(tmp_path):
    header = HEADER.replace("Number of motors", "Motor axis 0")
    root = _byu(tmp_path / "k", GOOD_ROWS, header=header)
    with pytest.raises(InputError, match="the header names column 'Motor axis 0' twice"):
        import_byu(root, tmp_path / "out", progress=False)


def test_has_motor_must_agree_with_the_axes(tmp_path):
    header = HEADER.replace("Number of motors", "Has motor")
    root = _byu(tmp_path / "k", "0,tomo_a,-1,-1,-1,3,8,8,10.0,1\n", header=header)
    with pytest.raises(InputError, match=r"'Has motor' is 1 but the motor axes are -1"):
        import_byu(root, tmp_path / "out", progress=False)


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A tiny PNG file whose header declares width x height (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1024)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat)
                     + chunk(b"IEND", b""))


@pytest.mark.parametrize("size", [(60000, 60000), (9000, 10)])
def test_decompression_bomb_png_is_refused_before_decoding(tmp_path, size):
    root = _byu(tmp_path / "k", GOOD_ROWS)
    bomb = root / "train" / "tomo_b" / "slice_0001.jpg"
    bomb.unlink()
    bomb = bomb.with_suffix(".png")
    _png_header_only(bomb, *size)
    t0 = time.perf_counter()
    with pytest.raises(DataError) as e:
        import_byu(root, tmp_path / "out", progress=False)
    assert time.perf_counter() - t0 < 10
    assert e.value.path == str(bomb)
    assert "too large" in e.value.message or "decompression bomb" in e.value.message
    assert not (tmp_path / "out").exists()


def test_byu_test_directory_is_for_prediction(tmp_path):
    root = _byu(tmp_path / "k", GOOD_ROWS)
    (root / "test" / "tomo_c").mkdir(parents=True)
    with pytest.raises(DataError, match="unlabelled data.*cryobench predict") as e:
        import_byu(root / "test", tmp_path / "out", progress=False)
    assert e.value.path == str(root / "test")


# ----- CZII ----------------------------------------------------------------------------------


def _czii(root: Path, picks: dict[str, str] | None = None, runs=("TS_1_1",)) -> Path:
    scratch = root / "scratch"
    w = create_project(scratch / "copick.json", scratch / "overlay", CZII_PARTICLES)
    for run in runs:
        w.add_run(run, np.ones((8, 8, 8), np.float32), 10.0, None)
    train = root / "train"
    (train / "static").mkdir(parents=True)
    (scratch / "overlay" / "ExperimentRuns").rename(train / "static" / "ExperimentRuns")
    for run in runs:
        for f in (train / "static" / "ExperimentRuns" / run / "Picks").iterdir():
            f.unlink()
        pick_dir = train / "overlay" / "ExperimentRuns" / run / "Picks"
        pick_dir.mkdir(parents=True)
        if picks is None:
            picks = {"ribosome": json.dumps(
                {"points": [{"location": {"x": 1.0, "y": 2.0, "z": 3.0}}]})}
        for name, text in picks.items():
            (pick_dir / f"{name}.json").write_text(text)
    return train


def _deep(n: int) -> str:
    return '{"points": ' + "[" * n + "]" * n + "}"


BAD_CZII = {
    "deeply nested JSON": (_deep(5000), "nested too deeply"),
    "moderately deep JSON": (_deep(200), "nested deeper than 64 levels"),
    "NaN location": ('{"points": [{"location": {"x": NaN, "y": 0, "z": 0}}]}',
                     "NaN is not a JSON number"),
    "1e400 location": ('{"points": [{"location": {"x": 1e400, "y": 0, "z": 0}}]}',
                       "number 1e400 is out of range"),
    "5000-digit integer": ('{"points": [{"location": {"x": ' + "1" * 5000 + ', "y": 0, '
                           '"z": 0}}]}', "5000 digits"),
    "400-digit integer": ('{"points": [{"location": {"x": ' + "1" * 400 + ', "y": 0, '
                          '"z": 0}}]}', "is not a finite coordinate"),
    "boolean location": ('{"points": [{"location": {"x": true, "y": 0, "z": 0}}]}',
                         "location.x = 'True'"),
    "location missing": ('{"points": [{"where": 1}]}', "point 0 has no location"),
    "points not a list": ('{"points": {"a": 1}}', "'points' must be a list"),
    "not an object": ("[1, 2]", "must be a JSON object"),
    "not JSON": ("{oops", "invalid JSON in CZII picks file (line 1"),
    "not UTF-8": (b"\xff\xfe\x00".decode("latin-1"), None),
}


@pytest.mark.parametrize("case", list(BAD_CZII))
def test_bad_czii_picks_files_are_one_line(tmp_path, case):
    text, words = BAD_CZII[case]
    train = _czii(tmp_path / "k", {"ribosome": text})
    bad = train / "overlay" / "ExperimentRuns" / "TS_1_1" / "Picks" / "ribosome.json"
    if words is None:
        bad.write_bytes(b"\xff\xfe\x00")
        words = "not UTF-8"
    with pytest.raises(DataError) as e:
        import_czii(train, tmp_path / "out")
    assert e.value.path == str(bad) and words in e.value.message
    line = _one_line_error(_run_cli("import-czii", str(train), "--out", str(tmp_path / "out")),
                           bad)
    assert words in line
    assert not (tmp_path / "out").exists()


def test_czii_run_folders_are_checked_and_hidden_ones_skipped(tmp_path):
    train = _czii(tmp_path / "k")
    (train / "static" / "ExperimentRuns" / ".ipynb_checkpoints").mkdir()
    summary = import_czii(train, tmp_path / "out")
    assert summary.runs == ["TS_1_1"] and ".ipynb_checkpoints" in summary.skipped
    bad = train / "static" / "ExperimentRuns" / "-TS\x1b[1m"
    bad.mkdir()
    with pytest.raises(DataError, match="run folder name") as e:
        import_czii(train, tmp_path / "out2")
    assert e.value.path == str(bad)


def test_czii_without_picks_is_for_prediction(tmp_path):
    train = _czii(tmp_path / "k", picks={})
    with pytest.raises(DataError, match="no ground-truth picks.*unlabelled.*cryobench predict"):
        import_czii(train, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ----- copick configs that open but break later ----------------------------------------------


@pytest.fixture()
def config(tmp_path) -> tuple[Path, dict]:
    w = create_project(tmp_path / "p" / "copick.json", tmp_path / "p" / "overlay",
                       CZII_PARTICLES, defaults={"tomo_type": "denoised"})
    w.add_run("TS_1", np.ones((8, 8, 8), np.float32), 10.0, None)
    path = tmp_path / "p" / "copick.json"
    return path, json.loads(path.read_text())


def _write(path: Path, data) -> None:
    path.write_text(data if isinstance(data, str) else json.dumps(data))


BAD_CONFIGS = {
    "non-numeric cryobench.voxel_spacing": (
        lambda d: {**d, "cryobench": {"voxel_spacing": "ten"}},
        "cryobench.voxel_spacing must be a positive number"),
    "boolean cryobench.voxel_spacing": (
        lambda d: {**d, "cryobench": {"voxel_spacing": True}}, "cryobench.voxel_spacing"),
    "non-object cryobench block": (lambda d: {**d, "cryobench": [1]},
                                   "the 'cryobench' block must be an object, not list"),
    "unknown cryobench key": (lambda d: {**d, "cryobench": {"tomo_typ": "wbp"}},
                              "unknown key(s) 'tomo_typ'"),
    "tomo_type with a separator": (lambda d: {**d, "cryobench": {"tomo_type": "../x"}},
                                   "cryobench.tomo_type"),
    "deeply nested JSON": (lambda d: json.dumps(d)[:-1] + ', "x": ' + "[" * 3000 + "]" * 3000
                           + "}", "nested too deeply"),
    "5000-digit integer": (lambda d: json.dumps(d)[:-1] + ', "x": ' + "7" * 5000 + "}",
                           "5000 digits"),
    "NaN radius": (lambda d: json.dumps(d).replace('"radius": 60.0', '"radius": NaN'),
                   "NaN is not a JSON number"),
    "huge radius": (lambda d: json.dumps(d).replace('"radius": 60.0', '"radius": 1e300'),
                    "radius"),
    "missing overlay root": (lambda d: {**d, "overlay_root": d["overlay_root"] + "-gone"},
                             "overlay root"),
    "400-digit radius": (lambda d: json.dumps(d).replace('"radius": 60.0', '"radius": '
                                                         + "9" * 400), "radius"),
    "400-digit label": (lambda d: json.dumps(d).replace('"label": 1,', '"label": ' + "9" * 400
                                                        + ","), "needs a label in [1, 255]"),
}


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_configs_that_would_break_later_fail_on_open(config, case):
    path, data = config
    change, words = BAD_CONFIGS[case]
    _write(path, change(data))
    with pytest.raises(DataError) as e:
        p = open_project(path)
        _ = p.particles  # the radius is checked when the catalogue is built
        p.run("TS_1")
    assert e.value.path == str(path) and words in e.value.message, e.value
    line = _one_line_error(_run_cli("show", str(path), "--run", "TS_1", "-o",
                                    str(path.parent / "a.png")), path)
    assert words in line
    assert not (path.parent / "a.png").exists()


def test_missing_overlay_root_says_so(config):
    path, data = config
    gone = data["overlay_root"].removeprefix("local://") + "-gone"
    _write(path, {**data, "overlay_root": "local://" + gone})
    with pytest.raises(DataError) as e:
        open_project(path).run("TS_1")
    assert e.value.message == f"overlay root {gone} not found"


def test_unreachable_s3_endpoint_fails_fast(config):
    path, data = config
    _write(path, {**data, "overlay_root": "s3://bucket/overlay",
                  "overlay_fs_args": {"client_kwargs": {"endpoint_url": "http://127.0.0.1:9"}}})
    t0 = time.perf_counter()
    with pytest.raises(DataError, match="needs the network") as e:
        open_project(path)
    assert time.perf_counter() - t0 < 10 and e.value.path == str(path)


def test_s3_root_offline_fails_fast(config, monkeypatch):
    """Offline (no DNS), an s3:// root took 29 s to fail inside botocore; now one line at once."""
    path, data = config
    _write(path, {**data, "overlay_root": "s3://some-bucket/overlay"})

    def offline(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", offline)
    t0 = time.perf_counter()
    res = _run_cli("show", str(path), "--run", "TS_1", "-o", str(path.parent / "a.png"))
    line = _one_line_error(res, path)
    assert "needs the network: cannot resolve some-bucket.s3.amazonaws.com" in line
    assert time.perf_counter() - t0 < 10


def test_config_not_utf8_or_unreadable(config):
    path, _ = config
    path.write_bytes(b"\xff\xfe{")
    with pytest.raises(DataError, match="not UTF-8"):
        open_project(path)


def test_pandas_frame_rows_for_reference():
    # the label rule applies to frames built in code too (validate_byu)
    from cryobench.io.byu import validate_byu

    df = pd.DataFrame({"tomo_id": ["a"], "Motor axis 0": [True], "Motor axis 1": [1.0],
                       "Motor axis 2": [1.0]})
    with pytest.raises(InputError, match="True/False"):
        validate_byu(df, "frame", solution=False)


# ----- data synth / data show ----------------------------------------------------------------


@pytest.mark.parametrize("seed", ["-1", str(2**64)])
def test_synth_seed_out_of_range_is_one_line(tmp_path, seed):
    res = _run_cli("synth", "--preset", "tiny", "--out", str(tmp_path / "o"), "--runs", "1",
                   "--seed", seed, "--quiet")
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "--seed" in lines[0]
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("seed", [-1, 2**32, 2**64, True, 1.5])
def test_synth_library_seed_out_of_range(tmp_path, seed):
    from cryobench.data.synth import write_synthetic_project
    from cryobench.errors import ConfigError

    with pytest.raises(ConfigError, match=r"seed must be an integer in \[0, 4294967295\]"):
        write_synthetic_project(tmp_path / "o", "tiny", ["TS_1"], seed=seed, progress=False)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("target,words", [("slice.txt", "cannot draw a '.txt' file"),
                                          ("adir", "is a directory")])
def test_show_output_problems_are_one_line(config, target, words):
    path, _ = config
    out = path.parent / target
    if target == "adir":
        out.mkdir()
    line = _one_line_error(_run_cli("show", str(path), "--run", "TS_1", "-o", str(out)), out)
    assert words in line
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(
        ["copick.json", "overlay"] + (["adir"] if target == "adir" else []))


def test_missing_overlay_beside_a_static_root_is_allowed(config):
    """copick creates an overlay on the first write; runs are read from the static root."""
    path, data = config
    static = data["overlay_root"]
    _write(path, {**data, "static_root": static, "overlay_root": static + "-new"})
    assert open_project(path).runs == ["TS_1"]
    _write(path, {**data, "static_root": static + "-gone"})
    with pytest.raises(DataError, match="static root .*-gone not found"):
        open_project(path)
