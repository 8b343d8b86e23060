"""``cryobench run``: fit/predict/score on an in-memory split, records, reruns, bad input.

The split here is a fake with the :class:`cryobench.data.Split` interface (tiny arrays, no
copick), so these tests take seconds; the real ``tiny`` split is exercised in test_plugins.py.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from cryobench.cli import cli
from cryobench.errors import ConfigError, MethodError, ResultsError
from cryobench.io import read_picks_csv
from cryobench.methods import PickingMethod, registry
from cryobench.methods import config as overrides
from cryobench.particles import BYU_MOTOR, CZII_PARTICLES
from cryobench.runner import record, store
from cryobench.runner import run as run_mod
from cryobench.runner.run import run

SPACING = 10.0
SHAPE = (40, 60, 60)  # z, y, x


class FakeRun:
    def __init__(self, name: str, gt: pd.DataFrame) -> None:
        self.name = name
        self.voxel_spacing = SPACING
        self.particles = CZII_PARTICLES
        self.shape = SHAPE
        self._gt = gt

    def tomogram(self, level: int = 0, crop=None) -> np.ndarray:
        rng = np.random.default_rng(zlib.crc32(self.name.encode()))
        vol = rng.normal(size=SHAPE).astype(np.float32)
        return vol if crop is None else vol[crop]

    def picks(self) -> pd.DataFrame:
        return self._gt.copy()


class FakeProject:
    def __init__(self) -> None:
        self.written: list[tuple[str, int, str, str]] = []

    def write_picks(self, run_name, picks, user="cryobench", session="predictions"):
        self.written.append((run_name, len(picks), user, session))


class FakeSplit:
    """Three-role split whose runs hold one particle of each CZII class."""

    task = "particles"
    metric = "czii"

    def __init__(self, name: str = "fake", task: str = "particles") -> None:
        self.name = name
        self.task = task
        self.particles = CZII_PARTICLES
        self.fingerprint = "f" * 64
        self.roles = {"train": ["TS_a", "TS_b"], "val": ["TS_c"], "test": ["TS_d", "TS_e"]}
        self._project = FakeProject()
        self._runs = {}
        for k, name_ in enumerate(n for names in self.roles.values() for n in names):
            rows = [{"experiment": name_, "particle_type": p.name,
                     "x": 100.0 + 60 * i + k, "y": 150.0 + 40 * i, "z": 200.0}
                    for i, p in enumerate(CZII_PARTICLES)]
            self._runs[name_] = FakeRun(name_, pd.DataFrame(rows))

    writes_predictions = True

    def prepare(self, progress: bool = True) -> None:
        pass

    def write_predictions(self, run, picks, *, user, session):
        self._project.write_picks(run, picks, user=user, session=session)

    def runs(self, role: str) -> list[FakeRun]:
        return [self._runs[n] for n in self.roles[role]]

    def solution(self, role: str = "test") -> pd.DataFrame:
        return pd.concat([r.picks() for r in self.runs(role)], ignore_index=True)


@dataclass
class RandomConfig:
    n_per_class: int = 3
    jitter: float = 0.0
    classes: tuple[str, ...] = ()
    note: str | None = None


class RandomPicker(PickingMethod):
    """GT-independent random picks (seeded), n per class."""

    name = "random-picker"
    description = "uniform random picks"
    Config = RandomConfig
    budgets = {"smoke": {"n_per_class": 1}}
    fits = 0
    interrupt = False  # simulate Ctrl-C during prediction

    def fit(self, train_runs, val_runs, ctx):
        type(self).fits += 1
        self.types = [p.name for p in ctx.particles]
        self.offset = float(ctx.rng(1).uniform(0, 5))

    def predict(self, run, ctx):
        if type(self).interrupt:
            raise KeyboardInterrupt
        rng = np.random.default_rng([ctx.seed, zlib.crc32(run.name.encode())])
        n = self.config.n_per_class
        ext = np.array(SHAPE[::-1]) * SPACING - SPACING
        rows = []
        for t in self.types:
            xyz = rng.uniform(0, 1, size=(n, 3)) * ext
            for p in xyz:
                rows.append({"experiment": run.name, "particle_type": t, "x": p[0], "y": p[1],
                             "z": p[2], "score": float(rng.uniform())})
        return pd.DataFrame(rows, columns=["experiment", "particle_type", "x", "y", "z", "score"])

    def save_state(self, directory: Path) -> None:
        (directory / "state.json").write_text(json.dumps({"types": self.types,
                                                          "offset": self.offset}))

    def load_state(self, directory: Path) -> None:
        state = json.loads((directory / "state.json").read_text())
        self.types, self.offset = state["types"], state["offset"]


@dataclass
class OracleConfig:
    pass


class Oracle(PickingMethod):
    """Cheats (test-only): returns the ground truth; proves scoring is wired to the test runs."""

    name = "oracle"
    description = "returns the ground truth"
    Config = OracleConfig
    split: FakeSplit | None = None

    def fit(self, train_runs, val_runs, ctx):
        pass

    def predict(self, run, ctx):
        gt = self.split.solution("test")
        return gt[gt["experiment"] == run.name].assign(score=1.0)

    def save_state(self, directory):
        pass

    def load_state(self, directory):
        pass


class MotorOnly(RandomPicker):
    name = "motor-only"
    tasks = ("motor",)


@pytest.fixture()
def split():
    return FakeSplit()


def test_run_writes_a_valid_record_predictions_and_copick_picks(tmp_path, split):
    res = run(RandomPicker, split, seed=3, budget="smoke", out=tmp_path, progress=False)
    assert not res.skipped
    rec = res.record.to_dict()
    chash = record.config_hash(rec["config"])
    assert res.path == store.run_dir(tmp_path, "fake", "random-picker", chash, 3) / "record.json"
    assert record.load(res.path).to_dict() == rec
    assert rec["method"] == "random-picker" and rec["split"] == "fake" and rec["seed"] == 3
    assert rec["budget"] == "smoke" and rec["device"] == "cpu" and rec["task"] == "particles"
    assert rec["config"]["n_per_class"] == 1  # the smoke budget's override
    assert rec["dataset_fingerprint"] == split.fingerprint
    assert rec["metric"] == "czii" and 0 <= rec["score"] <= 1
    assert rec["metrics"]["czii"]["score"] == rec["score"]
    assert rec["params"]["beta"] == 4 and rec["params"]["matching"] == "kaggle"
    assert rec["params"]["radii"]["ribosome"] == 150
    # counts: one row per (test experiment, class), references sum to the solution size
    assert {(c["experiment"]) for c in rec["counts"]} == {"TS_d", "TS_e"}
    assert sum(c["tp"] + c["fn"] for c in rec["counts"]) == len(split.solution("test"))
    assert sum(c["tp"] + c["fp"] for c in rec["counts"]) == 2 * 6  # 1 pick/class/run
    preds = read_picks_csv(res.directory / rec["predictions"])
    assert len(preds) == 12 and set(preds["experiment"]) == {"TS_d", "TS_e"}
    assert "score" in preds.columns
    session = rec["copick"]["session"]
    assert "_" not in session
    assert split._project.written == [("TS_d", 6, "cryobench", session),
                                       ("TS_e", 6, "cryobench", session)]
    assert (res.directory / "model" / "state.json").exists()
    assert not (res.directory / "work").exists()
    assert rec["timings"]["total_s"] >= rec["timings"]["fit_s"]
    assert rec["peak_memory_mb"] > 0 and rec["environment"]["cpu_count"] >= 1


def test_the_record_names_the_commit_the_run_started_from(tmp_path, split, monkeypatch):
    from cryobench.runner import env

    head = ["a" * 40]
    fit = RandomPicker.fit

    def fit_while_a_commit_lands(self, *args):
        fit(self, *args)
        head[0] = "b" * 40

    monkeypatch.setattr(env, "git_sha", lambda path=None: head[0])
    monkeypatch.setattr(RandomPicker, "fit", fit_while_a_commit_lands)
    rec = run(RandomPicker, split, out=tmp_path, progress=False).record
    assert head[0] == "b" * 40 and rec.git_sha == "a" * 40


def test_oracle_scores_one(tmp_path, split):
    Oracle.split = split
    rec = run(Oracle, split, out=tmp_path, progress=False).record.to_dict()
    assert rec["score"] == pytest.approx(1.0)
    assert all(c["fp"] == 0 and c["fn"] == 0 for c in rec["counts"])


def test_same_seed_same_picks_and_reruns_skip(tmp_path, split):
    RandomPicker.fits = 0
    a = run(RandomPicker, split, seed=1, out=tmp_path / "a", progress=False)
    b = run(RandomPicker, split, seed=1, out=tmp_path / "b", progress=False)
    pa = pd.read_csv(a.directory / "predictions.csv")
    pd.testing.assert_frame_equal(pa, pd.read_csv(b.directory / "predictions.csv"))
    assert a.record.config_hash == b.record.config_hash
    assert RandomPicker.fits == 2
    again = run(RandomPicker, split, seed=1, out=tmp_path / "a", progress=False)
    assert again.skipped and again.record == a.record and RandomPicker.fits == 2
    forced = run(RandomPicker, split, seed=1, out=tmp_path / "a", rerun=True, progress=False)
    assert not forced.skipped and RandomPicker.fits == 3
    other_seed = run(RandomPicker, split, seed=2, out=tmp_path / "a", progress=False)
    assert other_seed.directory.parent == a.directory.parent  # same config, sibling seed dir
    assert not pd.read_csv(other_seed.directory / "predictions.csv").equals(pa)


def test_an_interrupted_run_leaves_no_record_and_can_be_rerun(tmp_path, split, monkeypatch):
    monkeypatch.setattr(RandomPicker, "interrupt", True)
    with pytest.raises(KeyboardInterrupt):
        run(RandomPicker, split, out=tmp_path, progress=False)
    assert list(tmp_path.rglob("record.json")) == []
    assert list(store.iter_records(tmp_path)) == []
    partial = next(tmp_path.rglob("config.json")).parent
    # rerunning the same cell (no --rerun needed) completes it in the same directory
    monkeypatch.setattr(RandomPicker, "interrupt", False)
    res = run(RandomPicker, split, out=tmp_path, progress=False)
    assert not res.skipped and res.directory == partial and res.path.exists()


def test_existing_directory_with_another_config_or_data_is_an_error(tmp_path, split):
    res = run(RandomPicker, split, budget="cpu", out=tmp_path, progress=False)
    # same directory, different config (a hash-prefix collision or a hand-edited config.json)
    (res.directory / "record.json").unlink()
    (res.directory / "config.json").write_text(json.dumps({"n_per_class": 99}))
    with pytest.raises(ConfigError, match="different config"):
        run(RandomPicker, split, budget="cpu", out=tmp_path, progress=False)
    run(RandomPicker, split, budget="cpu", out=tmp_path, rerun=True, progress=False)
    split.fingerprint = "e" * 64
    with pytest.raises(ResultsError, match="different data"):
        run(RandomPicker, split, budget="cpu", out=tmp_path, progress=False)
    (res.directory / "record.json").write_text("{broken")
    with pytest.raises(ResultsError, match="not valid JSON.*--rerun"):
        run(RandomPicker, split, budget="cpu", out=tmp_path, progress=False)


def test_bad_input(tmp_path, split):
    with pytest.raises(ConfigError, match="no config key 'n_per_klass'"):
        run(RandomPicker, split, overrides={"n_per_klass": 2}, out=tmp_path)
    with pytest.raises(ConfigError, match="config key 'n_per_class': expected an integer"):
        run(RandomPicker, split, overrides={"n_per_class": "two"}, out=tmp_path)
    with pytest.raises(MethodError, match="supports task.*motor.*'particles' task"):
        run(MotorOnly, split, out=tmp_path)
    with pytest.raises(ConfigError, match="unknown budget"):
        run(RandomPicker, split, budget="huge", out=tmp_path)
    with pytest.raises(ConfigError, match="CUDA is not available|unknown device"):
        run(RandomPicker, split, device="cuda:7" if not _cuda() else "tpu", out=tmp_path)
    assert not any(tmp_path.iterdir())  # nothing written for bad input


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def test_bad_predictions_are_a_method_error(tmp_path, split):
    class Wrong(RandomPicker):
        name = "wrong"

        def predict(self, run, ctx):
            df = super().predict(run, ctx)
            return df.assign(experiment="elsewhere")

    with pytest.raises(MethodError, match="experiment should be"):
        run(Wrong, split, out=tmp_path, progress=False)

    class UnknownType(RandomPicker):
        name = "unknown-type"

        def predict(self, run, ctx):
            return super().predict(run, ctx).assign(particle_type="proteasome")

    with pytest.raises(MethodError, match="unknown particle type"):
        run(UnknownType, split, out=tmp_path, progress=False)
    assert list(tmp_path.rglob("record.json")) == []


# ----- typed overrides ------------------------------------------------------------------------
@dataclass
class TypedConfig:
    epochs: int = 1
    lr: float = 1e-3
    amp: bool = False
    loss: str = "dice"
    channels: tuple[int, ...] = (32, 64)
    pair: tuple[int, float] = (1, 0.5)
    threshold: float | None = None


@pytest.mark.parametrize("assignment, expected", [
    ("epochs=5", {"epochs": 5}),
    ("lr=3e-4", {"lr": 3e-4}),
    ("lr=2", {"lr": 2.0}),
    ("amp=true", {"amp": True}),
    ("amp=0", {"amp": False}),
    ("loss=tversky", {"loss": "tversky"}),
    ("channels=16,32,64", {"channels": (16, 32, 64)}),
    ("channels=[8, 16]", {"channels": (8, 16)}),
    ("pair=2,0.25", {"pair": (2, 0.25)}),
    ("threshold=none", {"threshold": None}),
    ("threshold=0.4", {"threshold": 0.4}),
])
def test_set_values_are_parsed_with_the_field_type(assignment, expected):
    assert overrides.parse_assignments(TypedConfig, [assignment]) == expected


@pytest.mark.parametrize("assignment, message", [
    ("epochs=1.5", "expected an integer"),
    ("epochs=true", "expected an integer"),
    ("lr=fast", "expected a number"),
    ("lr=nan", "finite"),
    ("amp=maybe", "expected a boolean"),
    ("channels=8,x", "expected an integer"),
    ("pair=1,2,3", "expected 2 values"),
    ("epochs", "key=value"),
    ("nope=1", "no config key 'nope'"),
])
def test_bad_set_values(assignment, message):
    with pytest.raises(ConfigError, match=message):
        overrides.parse_assignments(TypedConfig, [assignment])


def test_programmatic_overrides_are_type_checked():
    assert overrides.validate_overrides(TypedConfig, {"lr": 1, "channels": [1, 2]}) == \
        {"lr": 1.0, "channels": (1, 2)}
    with pytest.raises(ConfigError, match="expected an integer"):
        overrides.validate_overrides(TypedConfig, {"epochs": True})


# ----- the CLI ------------------------------------------------------------------------------------
@pytest.fixture()
def cli_env(monkeypatch, split):
    registry.register(RandomPicker)
    monkeypatch.setattr(run_mod, "resolve_split",
                        lambda name, data_dir=None: split if name == "fake"
                        else _unknown_split(name))
    yield split
    registry.unregister("random-picker")


def _unknown_split(name):
    raise ConfigError(f"unknown split {name!r}")


def test_cli_run_prints_the_table_and_json(tmp_path, cli_env):
    runner = CliRunner()
    args = ["run", "--method", "random-picker", "--split", "fake", "--out", str(tmp_path),
            "--no-progress", "--seed", "4", "--set", "n_per_class=2"]
    res = runner.invoke(cli, args)
    assert res.exit_code == 0, res.output
    assert "particle_type" in res.output and "ribosome" in res.output
    assert "czii score:" in res.output and "record: " in res.output
    rec_path = next(tmp_path.rglob("record.json"))
    rec = record.load(rec_path).to_dict()
    assert rec["config"]["n_per_class"] == 2 and rec["budget"] == "cpu"
    # rerun: skipped, says where the record is
    res = runner.invoke(cli, args)
    assert res.exit_code == 0 and f"already complete: {rec_path}" in res.output
    # --json prints exactly the record
    res = runner.invoke(cli, [*args, "--json"])
    assert res.exit_code == 0
    assert json.loads(res.stdout) == rec


@pytest.mark.parametrize("extra, message", [
    (["--method", "random-pickr"], "unknown method 'random-pickr'; did you mean random-picker"),
    (["--split", "nope"], "unknown split 'nope'"),
    (["--set", "n_per_class=lots"], "config key 'n_per_class': expected an integer"),
    (["--set", "bogus=1"], "no config key 'bogus'"),
    (["--set", "bogus"], "--set expects key=value"),
    (["--device", "quantum"], "unknown device 'quantum'"),
])
def test_cli_bad_input_is_one_line_exit_2(tmp_path, cli_env, extra, message):
    base = {"--method": "random-picker", "--split": "fake"}
    for flag, value in zip(extra[::2], extra[1::2], strict=True):
        if flag in base:
            base[flag] = value
    args = ["run", "--out", str(tmp_path), "--no-progress"]
    for flag, value in base.items():
        args += [flag, value]
    if extra[0] not in base:
        args += extra
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], res.output
    assert not any(tmp_path.iterdir())


# ----- the motor task (BYU metric) ------------------------------------------------------------
class FakeMotorSplit(FakeSplit):
    """Motor task: runs TS_d (motor) and TS_e (no motor) are the test runs."""

    task = "motor"
    metric = "byu"

    def __init__(self) -> None:
        super().__init__("fake-motor", "motor")
        self.particles = (BYU_MOTOR,)
        for name_, run_ in self._runs.items():
            has = name_ != "TS_e"
            run_._gt = pd.DataFrame([{"experiment": name_, "particle_type": BYU_MOTOR.name,
                                      "x": 300.0, "y": 200.0, "z": 100.0}][: int(has)],
                                    columns=["experiment", "particle_type", "x", "y", "z"])
            run_.particles = self.particles

    def byu_solution(self, role: str = "test") -> pd.DataFrame:
        rows = []
        for r in self.runs(role):
            gt = r.picks()
            z, y, x = ((gt.z[0] / SPACING, gt.y[0] / SPACING, gt.x[0] / SPACING) if len(gt)
                       else (-1.0, -1.0, -1.0))
            rows.append({"tomo_id": r.name, "Motor axis 0": z, "Motor axis 1": y,
                         "Motor axis 2": x, "Voxel spacing": SPACING, "Has motor": int(len(gt))})
        return pd.DataFrame(rows)


class MotorGuess(PickingMethod):
    """Predicts a motor at the ground truth where there is one, plus one in every motor-free run
    (a false positive), with a weaker decoy pick that the BYU conversion must ignore."""

    name = "motor-guess"
    description = "test double"
    tasks = ("motor",)
    Config = OracleConfig
    split: FakeMotorSplit | None = None

    def fit(self, train_runs, val_runs, ctx):
        pass

    def predict(self, run, ctx):
        gt = self.split._runs[run.name]._gt
        best = gt.assign(score=0.9) if len(gt) else pd.DataFrame(
            [{"experiment": run.name, "particle_type": BYU_MOTOR.name, "x": 10.0, "y": 10.0,
              "z": 10.0, "score": 0.9}])
        decoy = best.assign(x=best.x + 5000.0, score=0.1)
        return pd.concat([decoy, best], ignore_index=True)

    def save_state(self, directory):
        pass

    def load_state(self, directory):
        pass


def test_motor_task_is_scored_with_the_byu_metric(tmp_path):
    split = FakeMotorSplit()
    MotorGuess.split = split
    rec = run(MotorGuess, split, out=tmp_path, progress=False).record.to_dict()
    assert rec["metric"] == "byu" and rec["task"] == "motor"
    counts = {c["experiment"]: (c["tp"], c["fp"], c["fn"]) for c in rec["counts"]}
    assert counts == {"TS_d": (1, 0, 0), "TS_e": (0, 1, 0)}
    # F2 with tp 1, fp 1, fn 0: P 0.5, R 1 -> 5 * 0.5 / (4 * 0.5 + 1)
    assert rec["score"] == pytest.approx(2.5 / 3)
    assert rec["metrics"]["byu"]["score"] == rec["score"]
    with pytest.raises(MethodError, match="supports task"):
        run(RandomPicker, split, out=tmp_path)


# ----- the real thing -----------------------------------------------------------------------------
def test_default_method_runs_end_to_end_on_tiny(tmp_path):
    """The README's command at the smoke budget: the registered unet3d on the tiny split."""
    args = ["run", "--method", "unet3d", "--split", "tiny", "--budget", "smoke", "--out",
            str(tmp_path), "--no-progress", "--json"]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    rec = json.loads(res.stdout)
    path = next(tmp_path.rglob("record.json"))
    assert record.load(path).to_dict() == rec
    assert rec["method"] == "unet3d" and rec["split"] == "tiny" and rec["metric"] == "czii"
    assert rec["n_test_runs"] >= 1 and 0 <= rec["score"] <= 1
    assert {c["experiment"] for c in rec["counts"]} == {"TS_tiny_4"}
    assert "map" in rec["metrics"]
    again = CliRunner().invoke(cli, args[:-1])
    assert again.exit_code == 0 and f"already complete: {path}" in again.output


def test_records_hold_diagnostics_and_figures_the_method_reports(tmp_path, split):
    class Reporting(RandomPicker):
        name = "reporting-picker"

        def fit(self, train_runs, val_runs, ctx):
            super().fit(train_runs, val_runs, ctx)
            self.extra_metrics = {"val_objective": np.float64(0.25)}

        def slice_metrics(self, runs):
            return {"slice_map50": 0.5, "n_runs": len(runs)}

    rec = run(Reporting, split, out=tmp_path, progress=False).record.to_dict()
    assert rec["metrics"]["method"] == {"val_objective": 0.25, "slice_map50": 0.5, "n_runs": 2.0}
    diag = rec["metrics"]["diagnostics"]
    assert 0 <= diag["duplicate_rate"] <= 1 and 0 <= diag["unmatched_rate"] <= 1
    assert diag["score"] == pytest.approx(rec["score"])
