"""The training loop: it learns, is deterministic on CPU, stops early and checkpoints."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from cryobench.errors import ConfigError  # noqa: E402
from cryobench.methods.base import RunContext  # noqa: E402
from cryobench.methods.engine.training import (  # noqa: E402
    TrainSettings,
    make_scheduler,
    train_model,
)


def problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(4, 1, generator=g)
    xs = torch.randn(64, 4, generator=g)
    ys = xs @ w

    def batches(epoch):
        for i in range(0, 64, 8):
            yield xs[i:i + 8], ys[i:i + 8]

    return batches, xs, ys


def fit(tmp_path, seed=0, **kw):
    torch.manual_seed(seed)
    model = torch.nn.Linear(4, 1)
    batches, xs, ys = problem()
    ctx = RunContext(work_dir=tmp_path, progress=False, seed=seed)
    settings = TrainSettings(**{"epochs": 6, "steps_per_epoch": 8, "lr": 0.05, **kw})
    res = train_model(model, batches, torch.nn.functional.mse_loss, settings, ctx,
                      validate=kw.pop("validate", None))
    return model, res, xs, ys


def test_learns_and_is_deterministic(tmp_path):
    m1, r1, xs, ys = fit(tmp_path)
    m2, r2, _, _ = fit(tmp_path)
    assert r1.history[-1]["loss"] < 0.2 * r1.history[0]["loss"]
    assert r1.steps == 48 and len(r1.history) == 6
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_early_stopping_restores_best_and_checkpoints(tmp_path):
    scores = iter([1.0, 0.5, 0.6, 0.7, 0.8, 0.9])
    snapshots = []

    def validate(model):
        snapshots.append(model.weight.detach().clone())
        return next(scores)

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    batches, _, _ = problem()
    ctx = RunContext(work_dir=tmp_path, progress=False)
    settings = TrainSettings(epochs=6, steps_per_epoch=8, lr=0.05, patience=2,
                             checkpoint_dir=tmp_path / "ckpt")
    res = train_model(model, batches, torch.nn.functional.mse_loss, settings, ctx,
                      validate=validate)
    assert res.stopped_early and len(res.history) == 4
    assert res.best_epoch == 1 and res.best_val == 0.5
    assert torch.equal(model.weight, snapshots[1])  # the best weights are back
    assert (tmp_path / "ckpt" / "last.pt").exists() and (tmp_path / "ckpt" / "best.pt").exists()
    best = torch.load(tmp_path / "ckpt" / "best.pt", weights_only=True)
    assert best["epoch"] == 1


@pytest.mark.parametrize("schedule", ["cosine", "onecycle", "constant"])
def test_schedules(schedule):
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=1.0)
    s = TrainSettings(lr=1.0, schedule=schedule, warmup_fraction=0.1)
    sched = make_scheduler(opt, s, 100)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    if schedule == "constant":
        assert set(lrs) == {1.0}
    else:
        assert max(lrs) == pytest.approx(1.0, rel=0.05) and lrs[-1] < 0.05
        assert lrs[0] < 0.5  # warm-up


def test_bad_settings():
    p = torch.nn.Parameter(torch.zeros(1))
    with pytest.raises(ConfigError):
        make_scheduler(torch.optim.AdamW([p]), TrainSettings(schedule="linear"), 10)
    with pytest.raises(ConfigError):
        train_model(torch.nn.Linear(1, 1), lambda e: [], torch.nn.functional.mse_loss,
                    TrainSettings(epochs=0), RunContext(work_dir=".", progress=False))


def test_resolve_precision(monkeypatch):
    from cryobench.methods.engine import training

    assert training.resolve_precision("auto", "cuda:0", amp=True) == "fp16"
    assert training.resolve_precision("auto", "cuda", amp=False) == "fp32"
    monkeypatch.setattr(training, "native_bf16", lambda: True)  # a CPU with bf16 units
    assert training.resolve_precision("auto", "cpu", amp=True) == "fp32"
    assert training.resolve_precision("auto", "cpu") == "fp32"
    monkeypatch.setattr(training, "native_bf16", lambda: False)
    assert training.resolve_precision("auto", "cpu") == "fp32"
    assert training.resolve_precision("bf16", "cpu") == "bf16"
    with pytest.raises(ConfigError):
        training.resolve_precision("fp16", "cpu")
    with pytest.raises(ConfigError):
        training.resolve_precision("half", "cpu")


def test_bf16_channels_last_training_learns(tmp_path):
    model = torch.nn.Sequential(torch.nn.Conv3d(1, 4, 3, padding=1), torch.nn.ReLU(),
                                torch.nn.Conv3d(4, 1, 1))
    g = torch.Generator().manual_seed(0)
    xs = torch.randn(8, 1, 6, 6, 6, generator=g)
    ys = 2 * xs

    def batches(epoch):
        yield xs, ys

    settings = TrainSettings(epochs=30, steps_per_epoch=1, lr=0.05, precision="bf16",
                             channels_last=True)
    res = train_model(model, batches, torch.nn.functional.mse_loss, settings,
                      RunContext(work_dir=tmp_path, progress=False))
    assert res.precision == "bf16"
    assert res.history[-1]["loss"] < 0.3 * res.history[0]["loss"]
    assert next(model.parameters()).is_contiguous()  # layout restored


def test_the_first_epoch_gives_a_time_estimate(tmp_path):
    said = []
    torch.manual_seed(0)
    batches, _, _ = problem()
    ctx = RunContext(work_dir=tmp_path, progress=False, log=said.append)
    train_model(torch.nn.Linear(4, 1), batches, torch.nn.functional.mse_loss,
                TrainSettings(epochs=3, steps_per_epoch=2, desc="toy"), ctx)
    assert len(said) == 1 and said[0].startswith("toy: the first of 3 epochs took")
    assert "more to train" in said[0]


def test_multi_head_outputs_and_targets(tmp_path):
    """A model may return a tuple of tensors and targets may be tuples or dicts (moved to the
    device, outputs cast to float32 for the loss), as the CenterNet heads do."""

    class TwoHeads(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = torch.nn.Linear(4, 1), torch.nn.Linear(4, 1)

        def forward(self, x):
            return self.a(x), {"b": self.b(x)}

    batches, _, _ = problem()

    def paired(epoch):
        for x, y in batches(epoch):
            yield x, (y, {"b": -y})

    seen = []

    def loss_fn(out, y):
        seen.append((out[0].dtype, out[1]["b"].dtype))
        return (torch.nn.functional.mse_loss(out[0], y[0])
                + torch.nn.functional.mse_loss(out[1]["b"], y[1]["b"]))

    torch.manual_seed(0)
    model = TwoHeads()
    ctx = RunContext(work_dir=tmp_path, progress=False)
    res = train_model(model, paired, loss_fn, TrainSettings(epochs=10, steps_per_epoch=8,
                                                            lr=0.05), ctx)
    assert res.history[-1]["loss"] < 0.3 * res.history[0]["loss"]
    assert set(seen) == {(torch.float32, torch.float32)}
