"""Fuzzing every CLI entry point with hostile files, configs, records and names.

The property, for any input: the command either succeeds (exit 0) or fails with exit 2, exactly
one stderr line ``error: <file>: <problem>`` naming an input it was given, nothing on stdout, no
output file left behind; and whatever happens, nothing is written outside the output folder.
The default set runs a few dozen derandomized examples per entry point; the ``slow`` variant
runs many more, freshly drawn.
"""

from __future__ import annotations

import json
import os
import string
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cryobench.cli import cli
from cryobench.testing.records import fake_record, write_fake_results

EX = Path(__file__).resolve().parents[1] / "cryobench" / "examples"
SUB, SOL = EX / "czii_submission.csv", EX / "czii_solution.csv"

FAST = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SLOW = settings(max_examples=300, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PROFILES = [pytest.param(FAST, id="fast"),
            pytest.param(SLOW, id="slow", marks=pytest.mark.slow)]


# --------------------------------------------------------------------------------------------
# strategies
# --------------------------------------------------------------------------------------------

HOSTILE_TEXT = ["", " ", "nan", "NaN", "inf", "-inf", "1e400", "-1e400", "1" + "0" * 400,
                "1e155", "-5e200", "True", "False", "0x10", "1,5", "abc", "\x1b[31mred",
                "\x1b]0;title\x07", "../..", "../../etc/passwd", "/abs/path", "a/b", "..", ".",
                "a b", " TS_1 ", "é", "\u202e", "\x00", "\r", '"', "'", "x" * 300, "-1", "0",
                "1.5", "ribosome", "apo-ferritin", "TS_1", "{}", "[]", "null"]
CSV_COLUMNS = ["experiment", "particle_type", "x", "y", "z", "score", "id", "tomo_id",
               "Motor axis 0", "Motor axis 1", "Motor axis 2", "Voxel spacing", "Has motor",
               "image_id", "label", "x0", "y0", "x1", "y1", "rot_xx", "rlnCoordinateX", ""]

cells = st.one_of(st.sampled_from(HOSTILE_TEXT),
                  st.floats(allow_nan=True, allow_infinity=True).map(repr),
                  st.integers(min_value=-(10**30), max_value=10**30).map(str),
                  st.text(alphabet=string.printable + "é\x1b\x07", max_size=12))


def _csv_cell(value: str) -> str:
    if any(c in value for c in ',"\n\r'):
        return '"' + value.replace('"', '""') + '"'
    return value


@st.composite
def csv_texts(draw) -> str:
    """A CSV that looks like a pick table: real and odd column names, hostile cells."""
    base = draw(st.sampled_from([
        ["experiment", "particle_type", "x", "y", "z"],
        ["experiment", "particle_type", "x", "y", "z", "score"],
        ["tomo_id", "Motor axis 0", "Motor axis 1", "Motor axis 2"],
        ["image_id", "label", "x0", "y0", "x1", "y1", "score"],
        []]))
    extra = draw(st.lists(st.sampled_from(CSV_COLUMNS), max_size=3))
    header = base + extra
    if header and draw(st.booleans()):
        del header[draw(st.integers(0, len(header) - 1))]
    if not header:
        return draw(st.text(max_size=200))
    rows = draw(st.lists(st.lists(cells, min_size=len(header) - 1, max_size=len(header) + 1),
                         max_size=6))
    body = [",".join(_csv_cell(c) for c in header)]
    body += [",".join(_csv_cell(c) for c in row) for row in rows]
    return "\n".join(body) + draw(st.sampled_from(["\n", "", "\n\n", "\r\n"]))


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.floats(allow_nan=True, allow_infinity=True),
              st.integers(min_value=-(10**40), max_value=10**40), st.sampled_from(HOSTILE_TEXT)),
    lambda children: st.one_of(st.lists(children, max_size=3),
                               st.dictionaries(st.sampled_from(HOSTILE_TEXT), children,
                                               max_size=3)),
    max_leaves=12)

hostile_names = st.one_of(st.sampled_from(HOSTILE_TEXT),
                          st.text(alphabet=string.printable + "é\x1b", min_size=1, max_size=20))


@st.composite
def copick_configs(draw) -> dict:
    """A copick filesystem config with some fields replaced by hostile values."""
    cfg = {"config_type": "filesystem", "name": "p", "version": "0.5.0",
           "pickable_objects": [{"name": "ribosome", "is_particle": True, "label": 1,
                                 "radius": 150.0}],
           "overlay_root": "local://OVERLAY", "overlay_fs_args": {"auto_mkdir": True},
           "cryobench": {"voxel_spacing": 10.0}}
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(["name", "pickable_objects", "overlay_root",
                                      "config_type", "cryobench", "static_root", "obj"]))
        value = draw(json_values)
        if where == "obj":
            cfg["pickable_objects"][0][draw(st.sampled_from(["name", "radius", "label",
                                                             "is_particle"]))] = value
        elif where == "cryobench" and draw(st.booleans()):
            cfg["cryobench"] = {draw(st.sampled_from(["voxel_spacing", "tomo_type", "task",
                                                      "symmetry"])): value}
        else:
            cfg[where] = value
    return cfg


# --------------------------------------------------------------------------------------------
# the property
# --------------------------------------------------------------------------------------------

def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def check_cli(args: list[str], *, work: Path, out: Path | None, inputs: list[Path],
              allowed: Callable[[str], bool] = lambda line: False) -> int:
    """Run ``cryobench ARGS`` in ``work`` and assert the contract; return the exit code.

    ``out`` is the output folder (the only place new files may appear); ``inputs`` are the
    paths the error line may name; ``allowed`` accepts other first words of the problem (an
    option name, say) for errors about options rather than files.
    """
    before = _tree(work)
    cwd = os.getcwd()
    os.chdir(work)
    try:
        res = CliRunner().invoke(cli, args, catch_exceptions=True)
    finally:
        os.chdir(cwd)
    assert res.exception is None or isinstance(res.exception, SystemExit), (
        args, repr(res.exception))
    assert res.exit_code in (0, 2), (args, res.exit_code, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout
    new = {p for p in _tree(work) - before
           if out is None or not (work / p).resolve().is_relative_to(out.resolve())}
    assert not new, (args, sorted(new))
    if res.exit_code == 2:
        lines = res.stderr.strip("\n").split("\n")
        assert len(lines) == 1, (args, res.stderr)
        line = lines[0]
        assert line.startswith("error: "), (args, line)
        assert "\x1b" not in line and "\x07" not in line, line
        assert res.stdout == "", (args, res.stdout)
        named = any(line.startswith(f"error: {p}") for p in inputs)
        assert named or allowed(line), (args, line)
    return res.exit_code


def _output_absent_on_error(code: int, path: Path) -> None:
    if code == 2:
        assert not path.exists(), f"{path} left behind by a failed command"


# --------------------------------------------------------------------------------------------
# score, convert: hostile pick files
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("role", ["submission", "solution"])
def test_score_survives_any_csv(profile, role):
    @profile
    @given(text=csv_texts(), flags=st.sampled_from([[], ["--json"], ["--per-experiment"],
                                                    ["--bootstrap", "3"]]))
    def prop(text, flags):
        with tempfile.TemporaryDirectory() as d:
            work = Path(d)
            bad = work / "in.csv"
            bad.write_text(text, encoding="utf-8", errors="surrogatepass")
            sub, sol = (bad, SOL) if role == "submission" else (SUB, bad)
            check_cli(["score", str(sub), "--solution", str(sol), *flags], work=work,
                      out=None, inputs=[bad, SUB, SOL],
                      allowed=lambda line: any(f in line for f in flags if f.startswith("--")))
    prop()


@pytest.mark.parametrize("profile", PROFILES)
def test_convert_survives_any_input(profile):
    @profile
    @given(text=csv_texts(), suffix=st.sampled_from([".csv", ".star", ".tbl"]),
           to=st.sampled_from([".csv", ".star", ".tbl", ".em"]),
           extra=st.sampled_from([[], ["--particle-type", "ribosome"],
                                  ["--voxel-spacing", "10"], ["--experiment", "../x"]]))
    def prop(text, suffix, to, extra):
        with tempfile.TemporaryDirectory() as d:
            work = Path(d)
            src = work / f"in{suffix}"
            if suffix == ".star":
                text = "data_particles\n\nloop_\n" + "".join(
                    f"_{c} #{i + 1}\n" for i, c in enumerate(text.split("\n")[0].split(",")))\
                    + "\n".join(text.split("\n")[1:]).replace(",", " ")
            elif suffix == ".tbl":
                text = text.replace(",", " ")
            src.write_text(text, encoding="utf-8", errors="surrogatepass")
            out = work / "out"
            out.mkdir()
            dst = out / f"picks{to}"
            code = check_cli(["convert", str(src), "-o", str(dst), *extra], work=work, out=out,
                             inputs=[src, dst], allowed=lambda line: "--" in line)
            _output_absent_on_error(code, dst)
    prop()


# --------------------------------------------------------------------------------------------
# copick configs: score --copick, data init-split, data show, convert --copick
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("profile", PROFILES)
def test_copick_entry_points_survive_any_config(profile):
    @profile
    @given(cfg=copick_configs(), which=st.sampled_from(["score", "init-split", "show",
                                                        "convert"]))
    def prop(cfg, which):
        with tempfile.TemporaryDirectory() as d:
            work = Path(d)
            (work / "OVERLAY").mkdir()
            text = json.dumps(cfg).replace("OVERLAY", str(work / "OVERLAY"))
            config = work / "copick.json"
            config.write_text(text)
            out = work / "out"
            out.mkdir()
            target = out / "x.png" if which == "show" else out / "split.json"
            args = {"score": ["score", "--copick", str(config)],
                    "init-split": ["data", "init-split", str(config), "--out", str(target),
                                   "--fractions", "0.6,0.2,0.2"],
                    "show": ["data", "show", str(config), "--run", "TS_1", "-o", str(target)],
                    "convert": ["convert", str(SOL), "-o", str(out / "p.star"),
                                "--copick", str(config)]}[which]
            code = check_cli(args, work=work, out=out, inputs=[config, target, SOL, out])
            _output_absent_on_error(code, target)
            # the config has no runs (or a hostile one): nothing here may succeed silently
            if which in ("init-split", "show"):
                assert code == 2
    prop()


# --------------------------------------------------------------------------------------------
# records: leaderboard build, report, verify
# --------------------------------------------------------------------------------------------

RECORD_KEYS = ["schema_version", "method", "split", "seed", "budget", "config", "config_hash",
               "metrics", "counts", "params", "environment", "timing", "model", "precision",
               "task", "metric", "score", "created"]


@st.composite
def broken_records(draw) -> dict:
    rec = fake_record(draw(st.sampled_from(["unet3d", "vnet"])), seed=draw(st.integers(0, 2)))
    data = rec.to_dict()
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(RECORD_KEYS + list(data)))
        if draw(st.booleans()) and isinstance(data.get(key), dict) and data[key]:
            sub = draw(st.sampled_from(sorted(data[key])))
            data[key][sub] = draw(json_values)
        elif draw(st.integers(0, 4)) == 0:
            data.pop(key, None)
        else:
            data[key] = draw(json_values)
    return data


@pytest.mark.parametrize("profile", PROFILES)
def test_site_and_report_survive_any_record(profile):
    @profile
    @given(data=broken_records(), kind=st.sampled_from(["site", "md", "report"]))
    def prop(data, kind):
        with tempfile.TemporaryDirectory() as d:
            work = Path(d)
            results = work / "results"
            write_fake_results(results, methods=[("unet3d", 0.7)], seeds=[0, 1])
            path = results / "czii-synth" / "evil" / "h" / "seed-0" / "record.json"
            path.parent.mkdir(parents=True)
            path.write_text(json.dumps(data, allow_nan=True))
            out = work / "out"
            out.mkdir()
            args = {"site": ["leaderboard", "build", str(results), "-o", str(out / "site")],
                    "md": ["leaderboard", "build", str(results), "--format", "md",
                           "-o", str(out / "board.md")],
                    "report": ["report", str(results), "-o", str(out / "report.md"),
                               "--no-data", "--split", "czii-synth"]}[kind]
            code = check_cli([*args, "--flips", "0"], work=work, out=out,
                             inputs=[path, results, out])
            # one malformed record never aborts a build: it is listed and skipped
            assert code == 0
    prop()


@pytest.mark.parametrize("profile", PROFILES)
def test_verify_refuses_any_broken_record(profile):
    @profile
    @given(data=st.one_of(json_values, broken_records().filter(
        lambda r: not isinstance(r.get("seed"), int) or not isinstance(r.get("config"), dict))))
    def prop(data):
        with tempfile.TemporaryDirectory() as d:
            work = Path(d)
            path = work / "run" / "record.json"
            path.parent.mkdir()
            path.write_text(json.dumps(data, allow_nan=True))
            code = check_cli(["verify", str(path), "--no-progress"], work=work,
                             out=None, inputs=[path, path.parent])
            assert code == 2
    prop()


# --------------------------------------------------------------------------------------------
# names: split JSON names and run names, ablation names, --set values, copick users, tomo_ids
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("profile", PROFILES)
def test_hostile_names_in_a_split_file(profile):
    @profile
    @given(name=hostile_names, run=hostile_names,
           which=st.sampled_from(["solution", "ablate", "run-set"]))
    def prop(name, run, which):
        with tempfile.TemporaryDirectory() as d:
            work = Path(d)
            split = work / "split.json"
            split.write_text(json.dumps({
                "name": name, "task": "particles", "metric": "czii",
                "source": {"kind": "synth", "preset": "tiny"},
                "train": [run], "val": ["TS_2"], "test": ["TS_3"]}))
            out = work / "out"
            out.mkdir()
            args = {"solution": ["data", "solution", str(split), "-o", str(out / "s.csv"),
                                 "--quiet"],
                    "ablate": ["ablate", "--method", "unet3d", "--split", str(split),
                               "--vary", "lr=0.1,0.2", "--results", str(out), "--dry-run",
                               "--name", name],
                    "run-set": ["run", "--method", "unet3d", "--split", str(split),
                                "--budget", "smoke", "--out", str(out),
                                "--set", f"{run}={name}"]}[which]
            check_cli(args, work=work, out=out, inputs=[split, out],
                      allowed=lambda line: "--" in line or "config key" in line
                      or "method 'unet3d'" in line)
    prop()


# --------------------------------------------------------------------------------------------
# importers: hostile train_labels.csv (tomo_ids, numbers) and CZII picks files
# --------------------------------------------------------------------------------------------

BYU_HEADER = ["row_id", "tomo_id", "Motor axis 0", "Motor axis 1", "Motor axis 2",
              "Array shape (axis 0)", "Array shape (axis 1)", "Array shape (axis 2)",
              "Voxel spacing", "Number of motors"]


def _byu_stack(root: Path, tomo_id: str = "tomo_a") -> None:
    import numpy as np
    from PIL import Image

    (root / "train" / tomo_id).mkdir(parents=True)
    for z in range(3):
        Image.fromarray(np.full((8, 8), 40 * z, np.uint8)).save(
            root / "train" / tomo_id / f"slice_{z:04d}.jpg")


@pytest.mark.parametrize("profile", PROFILES)
def test_import_byu_survives_any_labels(profile):
    good = ["0", "tomo_a", "1", "2", "3", "3", "8", "8", "10.0", "1"]

    @profile
    @given(changes=st.lists(st.tuples(st.integers(0, len(good) - 1),
                                      st.one_of(cells, hostile_names)), min_size=1, max_size=3),
           drop=st.booleans())
    def prop(changes, drop):
        with tempfile.TemporaryDirectory() as d:
            work = Path(d)
            kaggle = work / "kaggle"
            _byu_stack(kaggle)
            row = list(good)
            for i, v in changes:
                row[i] = v
            header = BYU_HEADER[:-1] if drop else BYU_HEADER
            row = row[:len(header)]
            labels = kaggle / "train_labels.csv"
            labels.write_text(",".join(header) + "\n" + ",".join(_csv_cell(c) for c in row)
                              + "\n", encoding="utf-8", errors="surrogatepass")
            out = work / "out"
            out.mkdir()
            project = out / "byu"
            code = check_cli(["data", "import-byu", str(kaggle), "--out", str(project),
                              "--quiet"], work=work, out=out,
                             inputs=[kaggle, labels, project, kaggle / "train"])
            _output_absent_on_error(code, project)
    prop()


@pytest.mark.parametrize("profile", PROFILES)
def test_import_czii_survives_any_picks_file(profile):
    @profile
    @given(points=st.one_of(json_values, st.lists(st.fixed_dictionaries(
        {"location": st.dictionaries(st.sampled_from(["x", "y", "z", "w"]),
                                     st.one_of(json_values, st.floats()), max_size=4)}),
        max_size=3)), wrap=st.booleans(), run=st.sampled_from(["TS_1_1", "..", "a b", ".hidden"]))
    def prop(points, wrap, run):
        import numpy as np

        from cryobench.data.project import create_project
        from cryobench.particles import CZII_PARTICLES

        with tempfile.TemporaryDirectory() as d:
            work = Path(d)
            scratch = work / "scratch"
            w = create_project(scratch / "copick.json", scratch / "overlay", CZII_PARTICLES)
            w.add_run("TS_1_1", np.ones((8, 8, 8), np.float32), 10.0, None)
            train = work / "kaggle" / "train"
            (train / "static").mkdir(parents=True)
            (scratch / "overlay" / "ExperimentRuns").rename(train / "static" / "ExperimentRuns")
            for f in (train / "static" / "ExperimentRuns" / "TS_1_1" / "Picks").iterdir():
                f.unlink()
            if run != "TS_1_1" and run != "..":
                (train / "static" / "ExperimentRuns" / "TS_1_1").rename(
                    train / "static" / "ExperimentRuns" / run)
            else:
                run = "TS_1_1"
            picks = train / "overlay" / "ExperimentRuns" / run / "Picks"
            picks.mkdir(parents=True)
            f = picks / "ribosome.json"
            f.write_text(json.dumps({"points": points} if wrap else points, allow_nan=True))
            out = work / "out"
            out.mkdir()
            project = out / "czii"
            code = check_cli(["data", "import-czii", str(train), "--out", str(project)],
                             work=work, out=out, inputs=[f, train, project, picks.parent,
                                                         train / "static" / "ExperimentRuns"])
            _output_absent_on_error(code, project)
    prop()


# --------------------------------------------------------------------------------------------
# options carrying names or values: --set, methods info/validate, predict, ablation specs
# --------------------------------------------------------------------------------------------

SET_KEYS = ["lr", "epochs", "batch_size", "patch_size", "channels", "sw_batch_size",
            "weight_decay", "schedule", "threshold", "nonsense", "", "lr.x"]


@pytest.mark.parametrize("profile", PROFILES)
def test_run_refuses_bad_set_values_before_writing(profile):
    @profile
    @given(key=st.sampled_from(SET_KEYS), value=st.one_of(cells, hostile_names))
    def prop(key, value):
        with tempfile.TemporaryDirectory() as d:
            work = Path(d)
            out = work / "runs"
            # a bad value must be refused before anything is written or trained; the good
            # ones are caught by --set on a method that does not exist, so nothing runs
            code = check_cli(["run", "--method", "unet3d", "--split", "tiny", "--budget",
                              "smoke", "--out", str(out), "--set", f"{key}={value}",
                              "--set", "nonsense=1"], work=work, out=None, inputs=[out],
                             allowed=lambda line: "--set" in line or "config key" in line
                             or "method 'unet3d'" in line)
            assert code == 2 and not out.exists()
    prop()


@pytest.mark.parametrize("profile", PROFILES)
def test_name_options_survive_hostile_names(profile):
    @profile
    @given(name=hostile_names, which=st.sampled_from(["info", "validate", "run", "predict",
                                                      "score-user", "synth"]))
    def prop(name, which):
        with tempfile.TemporaryDirectory() as d:
            work = Path(d)
            out = work / "out"
            out.mkdir()
            model = work / "model"
            model.mkdir()
            (model / "config.json").write_text(json.dumps({"method": name}))
            args = {"info": ["methods", "info", name],
                    "validate": ["methods", "validate", name, "--split", name],
                    "run": ["run", "--method", name, "--split", "tiny", "--out", str(out)],
                    "predict": ["predict", "--model", str(model), "--data", name, "-o",
                                str(out / "p.csv"), "--no-progress"],
                    "score-user": ["score", "--copick", str(work / "nope.json"), "--user",
                                   name, "--session", name],
                    "synth": ["data", "synth", "--preset", name, "--out", str(out / "s")]
                    }[which]
            check_cli(args, work=work, out=out, inputs=[model, out, work / "nope.json"],
                      allowed=lambda line: "--" in line or "method" in line
                      or "split" in line or "preset" in line or "No such" in line)
    prop()


@pytest.mark.parametrize("profile", PROFILES)
def test_ablate_survives_any_spec_file(profile):
    @profile
    @given(spec=st.dictionaries(st.sampled_from(["name", "method", "split", "seeds", "vary",
                                                 "base", "budget", "labels", "title"]),
                                json_values, max_size=6),
           valid=st.booleans())
    def prop(spec, valid):
        with tempfile.TemporaryDirectory() as d:
            work = Path(d)
            if valid:
                spec = {"name": "a", "method": "unet3d", "split": "tiny",
                        "vary": {"lr": [0.1, 0.2]}, **spec}
            path = work / "spec.toml"
            path.write_text("".join(f"{_toml_key(k)} = {_toml(v)}\n" for k, v in spec.items()
                                    if v is not None), encoding="utf-8",
                            errors="surrogatepass")
            out = work / "results"
            out.mkdir()
            check_cli(["ablate", str(path), "--results", str(out), "--dry-run"], work=work,
                      out=out, inputs=[path, out])
    prop()


def _toml_key(key: str) -> str:
    return json.dumps(key)


def _toml(value) -> str:
    """A TOML value (inline tables and arrays; None, which TOML lacks, becomes an empty table)."""
    if value is None:
        return "{}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return "{" + ", ".join(f"{_toml_key(k)} = {_toml(v)}" for k, v in value.items()) + "}"
