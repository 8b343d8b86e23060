"""--set values out of range, or asking for absurd memory, fail when the config is built: one
ConfigError, nothing written."""

from __future__ import annotations

import importlib.util

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from cryobench.cli import cli
from cryobench.errors import ConfigError
from cryobench.methods.config_checks import MAX_CONFIG_GIB, conv3d_bytes, integer, number
from cryobench.methods.registry import get_method, list_methods

SEGMENTATION = ["unet3d", "deepfindet", "unet_per_particle", "vnet_per_particle"]
BAD_SEGMENTATION = {
    "sw_batch_size=0": ({"sw_batch_size": 0}, "sw_batch_size=0 (expected an integer in [1, "),
    "weight_decay=-1": ({"weight_decay": -1.0}, "weight_decay=-1.0 (expected a number in [0, "),
    "patch_size=100000": ({"patch_size": 100000}, "patch_size=100000"),
    "channels=100000,100000": ({"channels": (100000, 100000)}, "channels=(100000, 100000)"),
    "batch_size=100000": ({"batch_size": 100000}, "batch_size=100000"),
    "schedule=bogus": ({"schedule": "bogus"}, "schedule='bogus' (expected one of cosine"),
    "lr=nan": ({"lr": float("nan")}, "nan"),  # the type contract (methods/config.py) or a rule
    "overlap=1": ({"overlap": 1.0}, "overlap=1.0"),
    "channels not a list": ({"channels": 7}, "7"),
    "memory": ({"patch_size": 1024, "batch_size": 64, "channels": (64, 128)},
               "asks for about"),
    "inference memory": ({"roi_size": 2048, "sw_batch_size": 64}, "in inference"),
}


def _available(name: str) -> bool:
    info = {i.name: i for i in list_methods()}[name]
    return not info.extra_missing


@pytest.mark.parametrize("name", SEGMENTATION + ["cnn_regressor", "faster_rcnn", "yolo_unet"])
@pytest.mark.parametrize("budget", ["smoke", "cpu", "full"])
def test_every_budget_is_valid(name, budget):
    if name in ("faster_rcnn", "yolo_unet") and importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed")
    get_method(name).default_config(budget)


@pytest.mark.parametrize("name", SEGMENTATION)
@pytest.mark.parametrize("case", list(BAD_SEGMENTATION))
def test_segmentation_ranges(name, case):
    values, words = BAD_SEGMENTATION[case]
    with pytest.raises(ConfigError) as e:
        get_method(name).default_config("cpu", **values)
    assert words in e.value.message and "\n" not in e.value.message


def test_all_bad_fields_are_listed_at_once():
    with pytest.raises(ConfigError) as e:
        get_method("unet3d").default_config("cpu", sw_batch_size=0, weight_decay=-1.0)
    assert "sw_batch_size=0" in e.value.message and "weight_decay=-1.0" in e.value.message


@pytest.mark.parametrize("values,words", [
    ({"batch_windows": 0}, "batch_windows=0"),
    ({"patch_size": 8}, "patch_size=8 (expected an integer in [16, 1024]"),
    ({"dropout": 1.0}, "dropout=1.0"),
    ({"schedule": "bogus"}, "schedule='bogus'"),
])
def test_cnn_regressor_ranges(values, words):
    with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace("(", r"\(")):
        get_method("cnn_regressor").default_config("cpu", **values)


@pytest.mark.parametrize("name,values,words", [
    ("faster_rcnn", {"crop": 10}, "crop=10"),
    ("faster_rcnn", {"steps": 0}, "steps=0"),
    ("faster_rcnn", {"batch_size": 1000, "crop": 8192}, "asks for about"),
    ("yolo_unet", {"imgsz": 100}, "imgsz=100 (expected a multiple of 32"),
    ("yolo_unet", {"unet_sw_batch_size": 0}, "unet_sw_batch_size=0"),
    ("yolo_unet", {"unet_patch_size": 100000}, "unet_patch_size=100000"),
    ("yolo_unet", {"unet_strides": (2, 2)}, "unet_strides=(2, 2)"),
    ("yolo_unet", {"fusion_weights": (1.5,)}, "fusion_weights=(1.5,)"),
    ("yolo_unet", {"batch": 1024, "imgsz": 4096}, "YOLO training"),
])
def test_slice_detector_ranges(name, values, words):
    if not _available(name):
        pytest.skip(f"the extra of {name} is not installed")
    with pytest.raises(ConfigError) as e:
        get_method(name).default_config("cpu", **values)
    assert words in e.value.message


@pytest.mark.parametrize("setting", ["sw_batch_size=0", "weight_decay=-1", "patch_size=100000",
                                     "channels=100000,100000", "batch_size=100000",
                                     "schedule=bogus"])
def test_run_refuses_before_writing_anything(tmp_path, setting):
    res = CliRunner().invoke(cli, ["run", "--method", "unet3d", "--split", "tiny", "--budget",
                                   "smoke", "--set", setting, "--out", str(tmp_path / "runs"),
                                   "--no-progress"])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: invalid value for "), res.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.json"))


def test_memory_estimate_hand_worked():
    # channels (2, 4) on one 8^3 cube: 2*512 + 4*64 = 1280 activations; weights 27*(1*2 + 2*4)
    # = 270, times 4 (two convolutions per level, both paths); float32
    acts, weights = 1280, 4 * 270
    assert conv3d_bytes((2, 4), 8, 1, training=False) == 4 * (acts * 4 + weights)
    assert conv3d_bytes((2, 4), 8, 1, training=True) == 4 * (acts * 16 + weights * 4)
    assert conv3d_bytes((2, 4), 8, 3, training=False) == 4 * (3 * acts * 4 + weights)
    assert MAX_CONFIG_GIB == 64


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.integers(-10**30, 10**30), st.floats(allow_nan=True),
                 st.booleans(), st.text(max_size=5), st.none()))
def test_rules_never_crash_and_accept_only_their_range(value):
    ok, _ = integer(1, 10)
    assert ok(value) == (type(value) is int and 1 <= value <= 10)
    okf, _ = number(0, 1, lo_open=True)
    expected = (isinstance(value, (int, float)) and not isinstance(value, bool)
                and value == value and 0 < value <= 1)
    assert okf(value) == expected
