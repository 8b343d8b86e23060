"""Every registered method passes the conformance suite on its tiny split (smoke budget).

This is the same ``cryobench.testing.check_method`` that ``cryobench methods validate`` and
third-party packages run: fit on ``tiny`` (``tiny-motor`` for motor-only methods), valid picks
for every test run, deterministic for a seed on CPU, identical predictions after save/load.
"""

from __future__ import annotations

import pytest

from cryobench.methods.registry import get_method, list_methods
from cryobench.testing import check_method

BUILTIN = ["centernet_slices", "cnn_regressor", "deepfindet", "faster_rcnn", "unet3d",
           "unet_per_particle", "vnet_per_particle", "yolo_unet"]


def test_every_builtin_method_is_registered_and_importable():
    infos = {info.name: info for info in list_methods()}
    assert set(BUILTIN) <= set(infos)
    for name in BUILTIN:
        assert infos[name].error is None, infos[name]


@pytest.mark.parametrize("name", BUILTIN)
def test_conformance_suite_on_tiny(name, tmp_path):
    info = {i.name: i for i in list_methods()}[name]
    if info.extra_missing:
        pytest.skip(f"extra {info.extra!r} not installed (missing {info.extra_missing})")
    cls = get_method(name)
    passed = check_method(cls, work_dir=tmp_path)
    assert len(passed) == 5, passed


@pytest.mark.parametrize("name", ["centernet_slices"])
def test_conformance_suite_on_tiny_motor(name, tmp_path):
    """Methods for both tasks whose first task is ``particles`` also pass on ``tiny-motor``."""
    info = {i.name: i for i in list_methods()}[name]
    if info.extra_missing:
        pytest.skip(f"extra {info.extra!r} not installed (missing {info.extra_missing})")
    passed = check_method(get_method(name), split="tiny-motor", work_dir=tmp_path)
    assert len(passed) == 5, passed


@pytest.mark.parametrize("name", ["cnn_regressor", "unet3d"])
def test_default_precision_is_fp32_on_a_bf16_cpu(name, tmp_path, monkeypatch):
    """On a CPU with bfloat16 units the defaults still compute in float32 (no CPU autocast), so
    records reproduce across CPUs; before, ``precision="auto"`` trained in bf16 there and
    cnn_regressor was not even repeatable."""
    import torch

    from cryobench.methods.engine import training

    monkeypatch.setattr(training, "native_bf16", lambda: True)
    real = torch.autocast

    def no_cpu_autocast(device_type, *args, **kwargs):
        if device_type == "cpu":
            raise AssertionError("the default config entered CPU autocast")
        return real(device_type, *args, **kwargs)

    monkeypatch.setattr(torch, "autocast", no_cpu_autocast)
    passed = check_method(get_method(name), work_dir=tmp_path)
    assert len(passed) == 5, passed
