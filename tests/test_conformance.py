"""Every registered method passes the conformance suite on its tiny split (smoke budget).

This is the same ``cryobench.testing.check_method`` that ``cryobench methods validate`` and
third-party packages run: fit on ``tiny`` (``tiny-motor`` for motor-only methods), valid picks
for every test run, deterministic for a seed on CPU, identical predictions after save/load.
"""

from __future__ import annotations

import pytest

from cryobench.methods.registry import get_method, list_methods
from cryobench.testing import check_method

BUILTIN = ["cnn_regressor", "deepfindet", "faster_rcnn", "unet3d", "unet_per_particle",
           "vnet_per_particle", "yolo_unet"]


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
