"""A shared model directory is never unpickled: a .pt file whose pickle would run code is refused
before anything runs, for every method that loads weights."""

from __future__ import annotations

import importlib.util
import json
import pickle
from pathlib import Path

import pytest
import torch

from cryobench.errors import MethodError
from cryobench.methods.weights import load_tensors
from cryobench.particles import CZII_PARTICLES


class _Payload:
    """Unpickling this writes a marker file (what an attacker's code would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def _malicious(path: Path, marker: Path, how: str = "torch") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if how == "torch":
        torch.save({"weight": _Payload(marker)}, path)
    else:
        path.write_bytes(pickle.dumps(_Payload(marker)))
    return path


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("how", ["torch", "pickle"])
def test_the_payload_is_live_and_load_tensors_refuses_it(tmp_path, how):
    marker = tmp_path / "marker"
    f = _malicious(tmp_path / "w.pt", marker, how)
    if how == "torch":
        torch.load(f, weights_only=False)  # what ultralytics did with yolo.pt: the code runs
    else:
        pickle.loads(f.read_bytes())
    assert marker.read_text() == "pwned"
    marker.unlink()
    with pytest.raises(MethodError, match="refusing saved weights: not a tensors-only file") as e:
        load_tensors(f)
    assert e.value.path == str(f) and not marker.exists()


def test_load_tensors_reads_plain_state_dicts(tmp_path):
    sd = {"a": torch.arange(3.0), "b": [torch.ones(2)]}
    torch.save(sd, tmp_path / "ok.pt")
    out = load_tensors(tmp_path / "ok.pt")
    assert torch.equal(out["a"], sd["a"]) and torch.equal(out["b"][0], sd["b"][0])
    with pytest.raises(MethodError, match="not found"):
        load_tensors(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(MethodError, match="refusing"):
        load_tensors(tmp_path / "junk.pt")


def _method_dir(tmp_path: Path, cls, files: dict[str, object]) -> Path:
    d = tmp_path / "model"
    d.mkdir()
    method = cls(cls.default_config("smoke"))
    (d / "method.json").write_text(json.dumps({"name": cls.name,
                                               "config": method.config_dict()}, default=str))
    for name, content in files.items():
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_text(json.dumps(content))
    return d


_SLICE_STATE = {"task": "particles", "classes": [
    {"name": p.name, "label": p.label, "radius": p.radius, "weight": p.weight,
     "color": list(p.color)} for p in CZII_PARTICLES], "thresholds": {},
    "motor_threshold": None, "train_spacing": 10.0, "extra_metrics": {}}


def _cases():
    from baselines.cnn_regressor import CNNRegressor
    from baselines.unet3d import UNet3D

    seg_state = {"class_names": ["ribosome"], "radii": {"ribosome": 150.0},
                 "thresholds": {"ribosome": 0.5}}
    cases = {
        "unet3d": (UNet3D, {"state.json": seg_state}, "weights.pt"),
        "cnn_regressor": (CNNRegressor, {"state.json": {"particle_type": "flagellar-motor",
                                                        "threshold": 0.5}}, "weights.pt"),
    }
    if importlib.util.find_spec("torchvision") is not None:
        from baselines.faster_rcnn import FasterRCNN

        cases["faster_rcnn"] = (FasterRCNN, {"slice_detector.json": _SLICE_STATE,
                                             "faster_rcnn.json": {"anchors": [[16.0]],
                                                                  "image_size": 64}},
                                "faster_rcnn.pt")
    if importlib.util.find_spec("ultralytics") is not None:
        from baselines.yolo_unet import YOLO_WEIGHTS, YoloUNet

        meta = {"yolo": {"architecture": "yolov8n.yaml", "classes": 6}, "fusion_weight": 0.5,
                "unet_threshold": None, "intensity_thresholds": {}, "polarity": {}}
        cases["yolo_unet"] = (YoloUNet, {"slice_detector.json": _SLICE_STATE,
                                         "yolo_unet.json": meta}, YOLO_WEIGHTS)
        cases["yolo_unet (U-Net half)"] = (YoloUNet, {"slice_detector.json": _SLICE_STATE,
                                                      "yolo_unet.json": meta,
                                                      "unet/state.json": seg_state},
                                           "unet/weights.pt")
    return cases


@pytest.mark.parametrize("case", ["unet3d", "cnn_regressor", "faster_rcnn", "yolo_unet",
                                  pytest.param("yolo_unet (U-Net half)",
                                               marks=pytest.mark.slow)])
def test_a_malicious_weights_file_is_refused_and_never_run(tmp_path, case):
    cases = _cases()
    if case not in cases:
        pytest.skip(f"the extra of {case} is not installed")
    cls, files, weights = cases[case]
    d = _method_dir(tmp_path, cls, files)
    marker = tmp_path / "marker"
    if case == "yolo_unet (U-Net half)":
        from baselines.yolo_unet import YOLO_WEIGHTS, YoloUNet

        # a genuine YOLO state dict of the right architecture, so loading reaches the U-Net
        from cryobench.methods.slices.yolo_runtime import (
            build_yolo,
            import_ultralytics,
            yolo_state_dict,
        )

        import_ultralytics(tmp_path / "ucfg", YoloUNet.name)
        torch.save(yolo_state_dict(_random_yolo(tmp_path)), d / YOLO_WEIGHTS)
        build_yolo(6, d / YOLO_WEIGHTS)  # sanity: the real file loads
        method = YoloUNet(YoloUNet.default_config("smoke"))
        (d / "unet" / "method.json").write_text(json.dumps(
            {"name": "yolo_unet-unet", "config": method._unet_config().__dict__}, default=str))
    _malicious(d / weights, marker)
    with pytest.raises(MethodError, match="refusing") as e:
        cls.load(d)
    assert e.value.path == str(d / weights)
    assert not marker.exists()


def _random_yolo(tmp_path):
    from ultralytics import YOLO
    from ultralytics.nn.tasks import DetectionModel

    from cryobench.methods.slices.yolo_runtime import MODEL_YAML, offline

    with offline():
        y = YOLO(MODEL_YAML, task="detect")
        y.model = DetectionModel(y.model.yaml, ch=3, nc=6, verbose=False)
    return y


def test_yolo_unet_refuses_a_pickled_ultralytics_checkpoint(tmp_path):
    if importlib.util.find_spec("ultralytics") is None:
        pytest.skip("ultralytics is not installed (the yolo extra)")
    from baselines.yolo_unet import YoloUNet

    meta = {"fusion_weight": 0.5, "unet_threshold": None, "intensity_thresholds": {},
            "polarity": {}}  # the format before tensors-only weights
    d = _method_dir(tmp_path, YoloUNet, {"slice_detector.json": _SLICE_STATE,
                                         "yolo_unet.json": meta})
    marker = tmp_path / "marker"
    _malicious(d / "yolo.pt", marker)
    with pytest.raises(MethodError, match="pickled ultralytics checkpoint") as e:
        YoloUNet.load(d)
    assert e.value.path == str(d / "yolo.pt") and not marker.exists()


def test_yolo_state_of_another_shape_is_a_method_error(tmp_path):
    if importlib.util.find_spec("ultralytics") is None:
        pytest.skip("ultralytics is not installed (the yolo extra)")
    from cryobench.methods.slices.yolo_runtime import build_yolo, import_ultralytics

    import_ultralytics(tmp_path / "ucfg")
    torch.save({"model.0.conv.weight": torch.zeros(1)}, tmp_path / "w.pt")
    with pytest.raises(MethodError, match="do not fit yolov8n.yaml with 6 classes"):
        build_yolo(6, tmp_path / "w.pt")
