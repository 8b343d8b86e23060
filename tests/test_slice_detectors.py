"""The slice detectors end to end: faster_rcnn and yolo_unet on small in-memory runs.

Smoke budgets on bright balls in noise (cryobench.testing.fakes): fit, predict, save, load
give identical picks; the missing-extra error names the pip command; YOLO never touches the
network. The conformance suite on the ``tiny`` split runs for every method elsewhere.
"""

from __future__ import annotations

import importlib.util
import socket
import sys

import numpy as np
import pandas as pd
import pytest

from cryobench.errors import ConfigError, MethodError
from cryobench.io.picks import validate_picks
from cryobench.methods.base import RunContext
from cryobench.testing.fakes import make_fake_motor_runs, make_fake_runs

pytest.importorskip("torchvision")


@pytest.fixture(scope="module")
def runs():
    return make_fake_runs(4, shape=(32, 64, 64), per_class=3, seed=3)


def _ctx(tmp_path, runs, task="particles", name="w"):
    return RunContext(work_dir=tmp_path / name, budget="smoke", progress=False, task=task,
                      particles=tuple(runs[0].particles))


def _check(picks, run):
    assert list(picks.columns) == ["experiment", "particle_type", "x", "y", "z", "score"]
    validate_picks(picks, "test", known_types=[p.name for p in run.particles])
    assert (picks["experiment"] == run.name).all()
    assert np.isfinite(picks["score"]).all()


def _no_truth(run):
    class Blind:
        name, voxel_spacing, particles = run.name, run.voxel_spacing, run.particles

        def tomogram(self, level=0, crop=None):
            return run.tomogram(level, crop)

        def picks(self):
            raise AssertionError("predict read the test run's ground truth")

    return Blind()


# ----- extras ---------------------------------------------------------------------------------
def test_missing_extras_name_the_pip_command(monkeypatch, tmp_path, runs):
    from baselines.faster_rcnn import FasterRCNN
    from baselines.yolo_unet import YoloUNet

    monkeypatch.setitem(sys.modules, "torchvision", None)
    with pytest.raises(MethodError, match=r"pip install 'cryobench\[detection\]'"):
        FasterRCNN(FasterRCNN.default_config("smoke")).fit(runs[:1], [], _ctx(tmp_path, runs))
    monkeypatch.setitem(sys.modules, "ultralytics", None)
    with pytest.raises(MethodError, match=r"pip install 'cryobench\[yolo\]'"):
        YoloUNet(YoloUNet.default_config("smoke")).fit(runs[:1], [], _ctx(tmp_path, runs))


def test_configs_and_metadata():
    from baselines.faster_rcnn import FasterRCNN
    from baselines.yolo_unet import YoloUNet

    for cls, extra in ((FasterRCNN, "detection"), (YoloUNet, "yolo")):
        assert cls.extra == extra and set(cls.tasks) == {"particles", "motor"}
        for budget in ("smoke", "cpu", "full"):
            cls.default_config(budget)
    assert FasterRCNN.default_config("full").backbone == "resnet50_fpn"
    assert YoloUNet.default_config("full").imgsz == 640
    assert YoloUNet.default_config("full").unet_channels == (48, 64, 80, 80)
    assert YoloUNet.default_config("cpu").conf == 0.2
    with pytest.raises(ConfigError, match="postprocess"):
        YoloUNet.default_config("smoke", postprocess="magic")
    with pytest.raises(ConfigError, match="backbone"):
        FasterRCNN.default_config("smoke", backbone="vgg")


# ----- faster_rcnn ----------------------------------------------------------------------------
def test_faster_rcnn_fit_predict_save_load(tmp_path, runs):
    from baselines.faster_rcnn import FasterRCNN

    ctx = _ctx(tmp_path, runs)
    m = FasterRCNN(FasterRCNN.default_config("smoke", bin=1))
    m.fit(runs[:2], runs[2:3], ctx)
    assert set(m.thresholds) == {p.name for p in runs[0].particles}
    test = runs[3]
    picks = m.predict(_no_truth(test), ctx)
    _check(picks, test)
    metrics = m.slice_metrics([test])
    assert {"slice_map", "slice_map50", "slice_map70", "slice_map90"} <= set(metrics)
    per_class = {k for k in metrics if "/" in k}
    assert per_class and {k.split("/")[1] for k in per_class} <= {p.name for p in test.particles}
    assert all(0.0 <= v <= 1.0 for v in metrics.values())
    assert {"val_slice_map50", "val_objective"} <= set(m.extra_metrics)
    m.save(tmp_path / "saved")
    loaded = FasterRCNN.load(tmp_path / "saved")
    pd.testing.assert_frame_equal(loaded.predict(test, ctx), picks, check_exact=True)


def test_faster_rcnn_motor_task_at_most_one_pick(tmp_path):
    from baselines.faster_rcnn import FasterRCNN

    motor = make_fake_motor_runs(4, seed=1)
    ctx = _ctx(tmp_path, motor, task="motor")
    m = FasterRCNN(FasterRCNN.default_config("smoke", bin=1))
    m.fit(motor[:2], motor[2:3], ctx)
    assert m.task == "motor" and m.motor_threshold is not None
    picks = m.predict(_no_truth(motor[3]), ctx)
    _check(picks, motor[3])
    assert len(picks) <= 1
    assert set(picks["particle_type"]) <= {"flagellar-motor"}


# ----- yolo_unet ------------------------------------------------------------------------------
@pytest.fixture
def no_network(monkeypatch):
    """Every socket connection or name lookup fails, and is recorded."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


def test_yolo_unet_offline_fit_predict_save_load_and_variants(tmp_path, runs, no_network):
    if importlib.util.find_spec("ultralytics") is None:  # not importorskip: that imports it
        pytest.skip("ultralytics is not installed (the yolo extra)")
    from baselines.yolo_unet import YoloUNet
    from cryobench.methods.slices import postprocess_variants as pv

    ctx = _ctx(tmp_path, runs)
    m = YoloUNet(YoloUNet.default_config("smoke", bin=1, conf=0.001))
    m.fit(runs[:2], runs[2:3], ctx)
    test = runs[3]
    picks = m.predict(_no_truth(test), ctx)
    _check(picks, test)
    assert (ctx.work_dir / "yolo_data" / "data.yaml").exists()
    assert m.unet_method is not None and 0.0 <= m.fusion_weight <= 1.0
    m.save(tmp_path / "saved")
    # nothing but tensors-only files: every .pt loads with weights_only=True, no pickled
    # ultralytics checkpoint is shipped
    import torch

    saved = sorted(p.relative_to(tmp_path / "saved").as_posix()
                   for p in (tmp_path / "saved").rglob("*.pt"))
    assert saved == ["unet/weights.pt", "yolo_weights.pt"]
    for f in saved:
        torch.load(tmp_path / "saved" / f, weights_only=True)
    loaded = YoloUNet.load(tmp_path / "saved")
    pd.testing.assert_frame_equal(loaded.predict(test, ctx), picks, check_exact=True)
    assert no_network == [], f"ultralytics attempted network access: {no_network}"

    # every variant is the pure function applied to the same thresholded candidates (all
    # candidates and all U-Net peaks kept, so that the smoke model has picks to work on)
    m.thresholds = {k: -1.0 for k in m.thresholds}
    m.unet_threshold = 0.0
    cands, volume, spacing = m.candidates(test, ctx)
    base = m.threshold(cands)
    assert len(base) > 0
    sizes = {}
    for variant in pv.VARIANTS:
        m.config.postprocess = variant
        out = m.predict(test, ctx)
        _check(out, test)
        expected = pv.apply_variant(variant, base, m.radii, volume, spacing,
                                    m.intensity_thresholds, m.polarity)
        pd.testing.assert_frame_equal(out, expected[out.columns].reset_index(drop=True))
        sizes[variant] = len(out)
    assert sizes["none"] == len(base)
    assert sizes["light_merge"] <= sizes["none"] <= sizes["hard_particle"]
    assert sizes["intensity"] <= sizes["none"]


# ----- the conformance suite on the tiny split (CI runs it for every method) -----------------
@pytest.mark.slow
@pytest.mark.parametrize("name", ["faster_rcnn", "yolo_unet"])
def test_conformance_on_tiny(name, no_network):
    from cryobench.testing import check_method

    if name == "yolo_unet":
        if importlib.util.find_spec("ultralytics") is None:
            pytest.skip("ultralytics is not installed (the yolo extra)")
        from baselines.yolo_unet import YoloUNet as cls
    else:
        from baselines.faster_rcnn import FasterRCNN as cls
    assert len(check_method(cls)) == 5
    assert no_network == []
