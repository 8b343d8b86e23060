"""The five volumetric baselines on small in-memory runs (smoke budget).

Each one fits and predicts valid picks, is deterministic for a seed on CPU, round-trips
save/load with identical predictions, tunes thresholds on the validation runs only and never
reads a test run's ground truth.
"""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from cryobench.errors import ConfigError, MethodError
from cryobench.io import validate_picks
from cryobench.methods.base import RunContext
from cryobench.testing.fakes import make_fake_motor_runs, make_fake_runs

pytest.importorskip("torch")

from baselines.cnn_regressor import CNNRegressor  # noqa: E402
from baselines.deepfindet import DeepFindET  # noqa: E402
from baselines.unet3d import UNet3D  # noqa: E402
from baselines.unet_per_particle import UNetPerParticle  # noqa: E402
from baselines.vnet_per_particle import VNetPerParticle  # noqa: E402

SEGMENTATION = [UNet3D, UNetPerParticle, VNetPerParticle, DeepFindET]
ALL = SEGMENTATION + [CNNRegressor]


def runs_for(cls):
    if "motor" in cls.tasks:
        return make_fake_motor_runs(4, shape=(24, 48, 48), seed=2)
    return make_fake_runs(3, shape=(24, 48, 48), per_class=2, seed=2)


def ctx_for(cls, tmp_path, seed=0):
    task = "motor" if "motor" in cls.tasks else "particles"
    return RunContext(work_dir=tmp_path, budget="smoke", task=task, seed=seed, progress=False)


def fit_predict(cls, runs, ctx):
    method = cls(cls.default_config("smoke"))
    train, val, test = runs[:-2], runs[-2:-1], runs[-1:]
    method.fit(train, val, ctx)
    return method, method.predict(test[0], ctx)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.name)
def test_fit_predict_deterministic_and_round_trip(cls, tmp_path):
    runs = runs_for(cls)
    ctx = ctx_for(cls, tmp_path / "a")
    method, picks = fit_predict(cls, runs, ctx)
    known = [p.name for p in runs[0].particles]
    checked = validate_picks(picks, "picks", known_types=known)
    assert "score" in picks.columns and len(checked) == len(picks)
    assert set(picks["experiment"]) <= {runs[-1].name}
    if cls is CNNRegressor:
        assert len(picks) <= 1
    # same seed, fresh method: identical picks
    _, again = fit_predict(cls, runs, ctx_for(cls, tmp_path / "b"))
    pd.testing.assert_frame_equal(picks, again)
    # save / load: identical picks
    method.save(tmp_path / "saved")
    loaded = cls.load(tmp_path / "saved")
    pd.testing.assert_frame_equal(picks, loaded.predict(runs[-1], ctx))


@pytest.mark.parametrize("cls", [UNet3D, CNNRegressor], ids=lambda c: c.name)
def test_thresholds_from_validation_runs_only(cls, tmp_path):
    runs = runs_for(cls)
    method = cls(cls.default_config("smoke"))
    train, val, test = runs[:-2], runs[-2:-1], runs[-1]
    method.fit(train, val, ctx_for(cls, tmp_path))
    method.predict(test, ctx_for(cls, tmp_path))
    assert test.calls["picks"] == 0  # the test run's ground truth is never read
    assert all(r.calls["picks"] == 1 for r in val)
    # a different validation truth changes the tuned thresholds; the test run cannot
    tuned = (dict(method.thresholds) if hasattr(method, "thresholds")
             else method.threshold)
    again = cls(cls.default_config("smoke"))
    test.truth = test.truth.iloc[:0]
    again.fit(train, val, ctx_for(cls, tmp_path))
    assert (dict(again.thresholds) if hasattr(again, "thresholds") else again.threshold) == tuned


def test_per_particle_merge_state(tmp_path):
    runs = runs_for(UNetPerParticle)
    method, _ = fit_predict(UNetPerParticle, runs, ctx_for(UNetPerParticle, tmp_path))
    state = method.merge_state
    assert len(method.models) == 2
    assert len(state["priority"]) == 2 and sum(state["frequency"]) == pytest.approx(1.0)


def test_unfitted_and_bad_config(tmp_path):
    run = runs_for(UNet3D)[0]
    with pytest.raises(MethodError):
        UNet3D().predict(run, ctx_for(UNet3D, tmp_path))
    with pytest.raises(ConfigError):
        UNet3D.default_config("smoke", no_such_key=1)
    with pytest.raises(ConfigError):
        UNet3D.default_config("cpu", bin=3)
    with pytest.raises(ConfigError):
        CNNRegressor.default_config("cpu", coarse_stride=0)
    for cls in ALL:
        for budget in ("smoke", "cpu", "full"):
            cls.default_config(budget)


def test_motor_method_rejects_multi_class_data(tmp_path):
    runs = make_fake_runs(2, shape=(24, 48, 48), per_class=1)
    with pytest.raises(MethodError):
        CNNRegressor(CNNRegressor.default_config("smoke")).fit(runs[:1], runs[1:],
                                                                ctx_for(UNet3D, tmp_path))


def test_baseline_modules_do_not_import_torch():
    code = ("import sys\n"
            "import baselines.unet3d, baselines.unet_per_particle, baselines.vnet_per_particle,"
            " baselines.deepfindet, baselines.cnn_regressor\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n"
            "print(baselines.unet3d.UNet3D.name)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "unet3d"


@pytest.mark.slow
def test_unet3d_cpu_budget_learns_fake_particles(tmp_path):
    from cryobench.metrics import czii_score

    runs = make_fake_runs(5, shape=(48, 96, 96), per_class=5, noise=0.5, seed=11)
    method = UNet3D(UNet3D.default_config("cpu", epochs=4, steps_per_epoch=15))
    ctx = RunContext(work_dir=tmp_path, budget="cpu", progress=False)
    method.fit(runs[:3], runs[3:4], ctx)
    picks = method.predict(runs[4], ctx)
    radii = {p.name: p.radius for p in runs[0].particles}
    report = czii_score(picks, runs[4].picks(), radii=radii,
                        weights=dict.fromkeys(radii, 1.0))
    assert report.score > 0.8


@pytest.mark.parametrize("cls", [UNet3D, CNNRegressor], ids=lambda c: c.name)
def test_zero_epochs_is_an_untrained_reference(cls, tmp_path):
    import torch

    runs = runs_for(cls)
    ctx = ctx_for(cls, tmp_path)
    method = cls(cls.default_config("smoke", epochs=0))
    method.fit(runs[:-2], runs[-2:-1], ctx)
    torch.manual_seed(ctx.seed * 1000 if cls is UNet3D else ctx.seed)
    fresh = method._network_for_head() if cls is UNet3D else method._network()
    trained = method.models[0] if cls is UNet3D else method.model
    for a, b in zip(fresh.state_dict().values(), trained.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    validate_picks(method.predict(runs[-1], ctx), "picks",
                   known_types=[p.name for p in runs[0].particles])


@pytest.mark.parametrize("loss", ["tversky", "dice", "bce", "focal"])
def test_deepfindet_loss_choices_train(loss):
    import torch

    method = DeepFindET(DeepFindET.default_config("smoke", loss=loss))
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 8, 8, requires_grad=True)
    target = torch.randint(0, 3, (2, 4, 8, 8))
    value = method.loss(logits, target)
    value.backward()
    assert value.ndim == 0 and torch.isfinite(value)
    assert logits.grad is not None and logits.grad.abs().sum() > 0
    # A perfect prediction has a lower loss than a random one, whatever the loss.
    perfect = (torch.nn.functional.one_hot(target, 3).movedim(-1, 1).float() * 20 - 10)
    assert method.loss(perfect, target) < value


def test_deepfindet_loss_choice_is_validated():
    with pytest.raises(ConfigError, match="config key 'loss': expected one of 'tversky'"):
        DeepFindET.default_config("cpu", loss="hinge")
    assert DeepFindET.default_config("cpu").loss == "tversky"
