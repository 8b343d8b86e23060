"""``faster_rcnn``: torchvision Faster R-CNN on z-slices, boxes lifted to 3D picks.

Training data are the z-slices of the training runs at the working resolution with one box per
particle whose cross-section is large enough (see :mod:`cryobench.methods.slices.dataset`);
the detector is torchvision's Faster R-CNN with random initialisation (``weights=None``,
``weights_backbone=None``, one class per particle type + background), anchors sized from the
particle radii, and no resizing of the slices (``min_size``/``max_size`` = the slice size).
Inference runs on every (``cpu``: every second) slice; boxes are lifted to 3D and thresholded
per class with thresholds tuned on the validation runs only. ``slice_metrics(runs)`` gives the
slice-level COCO mAP and mAP@0.5/0.7/0.9 (overall and per class) of the last predictions.
torchvision is imported only inside the method (extra ``detection``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cryobench.errors import ConfigError
from cryobench.methods.base import RunContext
from cryobench.methods.config_checks import check_config, check_memory, integer, number, one_of
from cryobench.methods.slices.dataset import SliceSample
from cryobench.methods.slices.detector import Detections, SliceConfigMixin, SliceDetector

__all__ = ["FasterRCNN", "FasterRCNNConfig", "BACKBONES"]

BACKBONES = {
    "mobilenet_v3_large_fpn": 3,
    "mobilenet_v3_large_fpn8": 5,
    "resnet50_fpn": 5,
}
"""Backbone name -> number of feature maps the anchors are spread over.

``mobilenet_v3_large_fpn`` is torchvision's ``fasterrcnn_mobilenet_v3_large_fpn`` (feature
strides 32, 32, 64); ``mobilenet_v3_large_fpn8`` the same MobileNet-v3-Large backbone with its
stride 8 and 16 stages also in the FPN (as ``mobilenet_backbone(returned_layers=[2, 3, 4, 5])``),
which small particles need, and ``fpn_channels`` FPN channels (a 256-channel FPN at stride 8
dominates a CPU step); ``resnet50_fpn`` is ``fasterrcnn_resnet50_fpn`` (strides 4 to 64).
"""


@dataclass
class FasterRCNNConfig(SliceConfigMixin):
    """``cpu`` budget defaults (minutes on 2 cores); see ``FasterRCNN.budgets``."""

    backbone: str = "mobilenet_v3_large_fpn8"
    steps: int = 800
    """Optimiser steps."""
    batch_size: int = 2
    lr: float = 5e-4
    weight_decay: float = 1e-4
    grad_clip: float = 10.0
    augment: bool = True
    """Random flips and 90-degree rotations of the slices (in-plane only)."""
    score_floor: float = 0.05
    """Lowest box score kept at inference (thresholds are tuned above it)."""
    detections_per_slice: int = 300
    box_head_dim: int = 256
    fpn_channels: int = 64
    """FPN width of ``mobilenet_v3_large_fpn8`` (torchvision's FPNs have 256)."""
    crop: int = 128
    """Train on random square crops of this size (0: whole slices); inference uses whole slices."""
    """Width of the two-layer RoI box head (torchvision's default 1024 in the full budget)."""
    threads: int = 1
    """torch CPU threads during fit/predict (0: leave as is). One by default: on a shared
    2-core machine two OpenMP threads made steps 2-60x slower and erratic (measured)."""

    def __post_init__(self) -> None:
        self.check_box_px()
        if self.backbone not in BACKBONES:
            raise ConfigError(f"unknown backbone {self.backbone!r}; choose one of "
                              f"{', '.join(BACKBONES)}")
        check_config(self, {
            **self.slice_rules(),
            "steps": integer(1, 10_000_000), "batch_size": integer(1, 1024),
            "lr": number(0, 10, lo_open=True), "weight_decay": number(0, 10),
            "grad_clip": number(0, None), "augment": one_of(True, False),
            "score_floor": number(0, 1, hi_open=True),
            "detections_per_slice": integer(1, 100_000), "box_head_dim": integer(1, 65_536),
            "fpn_channels": integer(1, 4096), "crop": integer(0, 8192),
            "threads": integer(0, 1024)})
        if 0 < self.crop < 32:
            raise ConfigError(f"invalid value for crop={self.crop!r} (expected 0 for whole "
                              "slices or at least 32 pixels)")
        # a rough 4 KiB of activations per pixel and image while training (backbone, FPN,
        # RPN and their gradients); whole slices (crop 0) are counted as 1024 px wide
        side = self.crop or 1024
        check_memory("this config", {"training (batch_size x crop^2)":
                                     4096.0 * self.batch_size * side * side})


def anchor_sizes(diameters_px: list[float], min_fraction: float, levels: int
                 ) -> tuple[tuple[float, ...], ...]:
    """Two square anchor sizes per feature map, geometric from the smallest cross-section
    (``min_fraction`` x the smallest diameter) to the largest diameter (in pixels)."""
    lo = max(2.0, min_fraction * min(diameters_px))
    hi = max(lo * 1.5, max(diameters_px))
    sizes = np.geomspace(lo, hi, 2 * levels)
    return tuple((float(sizes[2 * i]), float(sizes[2 * i + 1])) for i in range(levels))


def _no_resize_transform(model):
    """Replace the model's transform with one that never resizes (normalise + batch only)."""
    from torchvision.models.detection.transform import GeneralizedRCNNTransform

    class NoResize(GeneralizedRCNNTransform):
        def resize(self, image, target=None):  # noqa: D102 - the slice is used at its size
            return image, target

    old = model.transform
    model.transform = NoResize(old.min_size, old.max_size, old.image_mean, old.image_std,
                               size_divisible=old.size_divisible)
    return model


def _mobilenet_fpn8(fpn_channels: int):
    """MobileNet-v3-Large features (random init) with an FPN over its stride 8-32 stages."""
    from torchvision.models import mobilenet_v3_large
    from torchvision.models.detection.backbone_utils import BackboneWithFPN
    from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

    features = mobilenet_v3_large(weights=None).features
    stages = [0] + [i for i, b in enumerate(features) if getattr(b, "_is_cn", False)] + [
        len(features) - 1]
    returned = [2, 3, 4, 5]  # as torchvision's mobilenet_backbone(returned_layers=...)
    return BackboneWithFPN(features, {f"{stages[k]}": str(v) for v, k in enumerate(returned)},
                           [features[stages[i]].out_channels for i in returned], fpn_channels,
                           extra_blocks=LastLevelMaxPool())


def build_model(backbone: str, num_classes: int, sizes: tuple[tuple[float, ...], ...],
                image_size: int, score_floor: float, detections: int, box_head_dim: int = 1024,
                fpn_channels: int = 256):
    """A randomly initialised torchvision Faster R-CNN with square anchors of ``sizes``, a
    two-layer box head of width ``box_head_dim`` (torchvision: 1024) and, for
    ``mobilenet_v3_large_fpn8``, ``fpn_channels`` FPN channels (torchvision: 256)."""
    from torchvision.models import detection as D
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.models.detection.rpn import RPNHead

    common = dict(weights=None, weights_backbone=None, num_classes=num_classes,
                  min_size=image_size, max_size=image_size, image_mean=[0.5] * 3,
                  image_std=[0.25] * 3, box_score_thresh=score_floor,
                  box_detections_per_img=detections,
                  # a slice holds at most a few hundred particles: far fewer proposals and
                  # sampled RoIs than COCO's defaults (the RoI head dominates a CPU step)
                  rpn_pre_nms_top_n_train=1000, rpn_post_nms_top_n_train=max(300, detections),
                  rpn_pre_nms_top_n_test=1000, rpn_post_nms_top_n_test=max(300, detections),
                  rpn_batch_size_per_image=128, box_batch_size_per_image=128)
    if backbone == "mobilenet_v3_large_fpn":
        model = D.fasterrcnn_mobilenet_v3_large_fpn(**common)
    elif backbone == "resnet50_fpn":
        model = D.fasterrcnn_resnet50_fpn(**common)
    else:
        model = D.FasterRCNN(_mobilenet_fpn8(fpn_channels),
                             **{k: v for k, v in common.items() if "weights" not in k})
    gen = AnchorGenerator(sizes, ((1.0,),) * len(sizes))
    model.rpn.anchor_generator = gen
    model.rpn.head = RPNHead(model.backbone.out_channels, gen.num_anchors_per_location()[0])
    if box_head_dim != 1024:
        res = model.roi_heads.box_roi_pool.output_size
        res = res[0] if isinstance(res, (tuple, list)) else res
        model.roi_heads.box_head = TwoMLPHead(model.backbone.out_channels * res * res,
                                              box_head_dim)
        model.roi_heads.box_predictor = FastRCNNPredictor(box_head_dim, num_classes)
    return _no_resize_transform(model)


def _crop(image: np.ndarray, boxes: np.ndarray, labels: np.ndarray, size: int,
          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A random ``size`` crop (whole image if smaller) with the boxes that keep at least 40% of
    their area inside it (clipped to the crop)."""
    h, w = image.shape
    if size <= 0 or (h <= size and w <= size):
        return image, boxes, labels
    y0 = int(rng.integers(0, max(h - size, 0) + 1))
    x0 = int(rng.integers(0, max(w - size, 0) + 1))
    img = image[y0:y0 + size, x0:x0 + size]
    b = boxes - np.array([x0, y0, x0, y0], dtype=np.float32)
    c = b.copy()
    c[:, [0, 2]] = c[:, [0, 2]].clip(0, img.shape[1])
    c[:, [1, 3]] = c[:, [1, 3]].clip(0, img.shape[0])
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    kept = (c[:, 2] - c[:, 0]) * (c[:, 3] - c[:, 1])
    ok = ((kept >= 0.4 * np.maximum(area, 1e-9)) & (c[:, 2] - c[:, 0] >= 1)
          & (c[:, 3] - c[:, 1] >= 1))
    return img, c[ok], labels[ok]


def _augment(image: np.ndarray, boxes: np.ndarray, rng: np.random.Generator
             ) -> tuple[np.ndarray, np.ndarray]:
    """Random flips and a random 90-degree rotation of a slice and its boxes (image coords)."""
    h, w = image.shape
    b = boxes.copy().reshape(-1, 4)
    if rng.random() < 0.5:
        image = image[:, ::-1]
        b[:, [0, 2]] = w - b[:, [2, 0]]
    if rng.random() < 0.5:
        image = image[::-1, :]
        b[:, [1, 3]] = h - b[:, [3, 1]]
    if rng.random() < 0.5:  # transpose (with the flips: all 8 symmetries of the square)
        image = image.T
        b = b[:, [1, 0, 3, 2]]
    return np.ascontiguousarray(image), b


class FasterRCNN(SliceDetector):
    name = "faster_rcnn"
    description = ("torchvision Faster R-CNN on z-slices (random init), boxes lifted to 3D, "
                   "per-class thresholds tuned on validation runs")
    tasks = ("particles", "motor")
    extra = "detection"
    Config = FasterRCNNConfig
    budgets = {
        "smoke": {"backbone": "mobilenet_v3_large_fpn", "steps": 2, "batch_size": 1, "crop": 0,
                  "infer_stride": 2, "empty_ratio": 0.05, "train_stride": 2, "threads": 1,
                  "detections_per_slice": 50, "box_head_dim": 64},
        "cpu": {},
        "full": {"backbone": "resnet50_fpn", "bin": 1, "steps": 20000, "batch_size": 8,
                 "lr": 1e-4, "infer_stride": 1, "box_head_dim": 1024, "crop": 0, "threads": 0},
    }

    def __init__(self, config=None) -> None:
        super().__init__(config)
        self.model = None
        self.anchors: tuple[tuple[float, ...], ...] = ()
        self.image_size = 0
        self.history: list[float] = []

    # ----- model -------------------------------------------------------------------------------
    def require_extra(self) -> None:
        from cryobench.methods.slices.extras import require

        require("torchvision", self.extra, self.name)

    def _build(self):
        cfg = self.config
        return build_model(cfg.backbone, len(self.classes) + 1, self.anchors, self.image_size,
                           cfg.score_floor, cfg.detections_per_slice, cfg.box_head_dim,
                           cfg.fpn_channels)

    @staticmethod
    def _tensor(image: np.ndarray):
        import torch

        t = torch.from_numpy(np.ascontiguousarray(image)).to(torch.float32).div_(255.0)
        return t.expand(3, *t.shape)

    def train_detector(self, train: list[SliceSample], val: list[SliceSample],
                       ctx: RunContext) -> None:
        import torch
        from tqdm.auto import tqdm

        from cryobench.methods.engine.segmentation import torch_threads
        from cryobench.methods.engine.training import TrainSettings, deterministic, make_scheduler

        cfg = self.config
        spacing = self.train_spacing
        diam = [2 * p.radius / spacing for p in self.classes]
        self.anchors = anchor_sizes(diam, cfg.min_fraction, BACKBONES[cfg.backbone])
        self.image_size = int(max(max(s.image.shape) for s in train))
        rng = ctx.rng(3)
        with deterministic(ctx.device), torch_threads(cfg.threads):
            torch.manual_seed(ctx.seed)
            model = self._build().to(ctx.device)
            model.train()
            opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
            sched = make_scheduler(opt, TrainSettings(lr=cfg.lr, schedule="cosine"), cfg.steps)
            self.history = []
            bar = tqdm(range(cfg.steps), desc=self.name, leave=False, disable=not ctx.progress)
            for _ in bar:
                images, targets = [], []
                for i in rng.integers(0, len(train), cfg.batch_size):
                    s = train[int(i)]
                    img, boxes, labels = _crop(s.image, s.boxes, s.labels, cfg.crop, rng)
                    if cfg.augment:
                        img, boxes = _augment(img, boxes, rng)
                    images.append(self._tensor(img).to(ctx.device))
                    targets.append({
                        "boxes": torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)
                        .to(ctx.device),
                        "labels": torch.as_tensor(labels + 1, dtype=torch.int64)
                        .to(ctx.device)})
                losses = model(images, targets)
                loss = sum(losses.values())
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
                sched.step()
                self.history.append(float(loss.detach()))
                bar.set_postfix(loss=f"{self.history[-1]:.3f}")
            model.eval()
        self.model = model

    def detect(self, images: list[np.ndarray], ctx: RunContext) -> Detections:
        import torch

        from cryobench.methods.engine.segmentation import torch_threads
        from cryobench.methods.engine.training import deterministic

        model = self.model.to(ctx.device).eval()
        with deterministic(ctx.device), torch_threads(self.config.threads), \
                torch.inference_mode():
            outs = model([self._tensor(im).to(ctx.device) for im in images])
        return [(o["boxes"].cpu().numpy(), o["labels"].cpu().numpy() - 1,
                 o["scores"].cpu().numpy()) for o in outs]

    def detect_batch_size(self) -> int:
        return max(1, self.config.batch_size)

    # ----- persistence -------------------------------------------------------------------------
    def save_weights(self, directory: Path) -> None:
        import torch

        from cryobench.io.atomic import atomic_path

        with atomic_path(directory / "faster_rcnn.pt") as tmp:
            torch.save(self.model.state_dict(), tmp)
        (directory / "faster_rcnn.json").write_text(json.dumps(
            {"anchors": self.anchors, "image_size": self.image_size, "history": self.history}))

    def load_weights(self, directory: Path) -> None:
        from cryobench.methods.weights import load_tensors, state_error

        weights = load_tensors(directory / "faster_rcnn.pt", f"saved {self.name!r} weights")
        try:
            meta = json.loads((directory / "faster_rcnn.json").read_text())
            self.anchors = tuple(tuple(float(v) for v in a) for a in meta["anchors"])
            self.image_size = int(meta["image_size"])
            self.history = list(meta.get("history", []))
            self.model = self._build()
            self.model.load_state_dict(weights)
        except (OSError, ValueError, RuntimeError, KeyError, TypeError, AttributeError) as exc:
            raise state_error(self.name, exc, directory) from None
        self.model.eval()
