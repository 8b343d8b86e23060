"""``centernet_slices``: a CenterNet-style keypoint detector on z-slices, lifted to 3D picks.

The recipe of a BYU flagellar-motor study: a torchvision ResNet (random init) whose C2-C4
stages an FPN-style neck merges into one stride-4 map, heads for a per-class heatmap (sigmoid),
box width/height and sub-pixel offset, and an auxiliary presence head (does the slice hold an
object: for the motor task, a motor); CenterNet's penalty-reduced focal loss on the heatmap
(alpha 2, beta 4), masked L1 on size and offset, GIoU on the decoded centre boxes
(``torchvision.ops``), BCE on presence; CLAHE and per-slice z-score normalisation; rotation
±15°, scale ±10 %, translation, Poisson noise and Gaussian blur; AdamW, cosine schedule,
gradient clipping at 5 and early stopping on the validation slices' mAP@0.5, all through the
shared training loop (:mod:`cryobench.methods.engine.training`).

Peaks are decoded with a 3x3 max-pool NMS (:mod:`cryobench.methods.slices.keypoints`) on every
``infer_stride``-th slice and lifted to 3D by the slice detectors' shared clustering over z
(:class:`~cryobench.methods.slices.detector.SliceDetector`): per-class thresholds tuned on the
validation runs, or for the motor task the top cluster per tomogram with a "no motor" threshold
tuned on the validation runs only. torchvision and scikit-image are imported only inside the
method (extra ``detection``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cryobench.errors import ConfigError
from cryobench.methods.base import RunContext
from cryobench.methods.slices.dataset import SliceSample
from cryobench.methods.slices.detector import Detections, SliceConfigMixin, SliceDetector

__all__ = ["CenterNetSlices", "CenterNetConfig"]

BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet101")


@dataclass
class CenterNetConfig(SliceConfigMixin):
    """``cpu`` budget defaults (minutes on 2 cores); see ``CenterNetSlices.budgets``."""

    backbone: str = "resnet18"
    """torchvision ResNet (random init): resnet18 | resnet34 | resnet50 | resnet101."""
    neck_channels: int = 64
    head_channels: int = 64
    epochs: int = 10
    steps_per_epoch: int = 100
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    grad_clip: float = 5.0
    patience: int = 4
    """Stop after this many epochs without a better validation mAP@0.5 (0: never)."""
    precision: str = "auto"
    crop: int = 96
    """Train on square windows of this size (0: whole slices, padded to the largest)."""
    empty_ratio: float = 0.3
    # --- input and augmentation ---
    clahe: bool = True
    """CLAHE (scikit-image ``equalize_adapthist``) before the per-slice z-score."""
    clahe_clip: float = 0.01
    rotation: float = 15.0
    """Random rotation in ± degrees."""
    scale: float = 0.1
    """Random scale in 1 ± this."""
    translate: float = 0.1
    """Random translation in ± this fraction of the slice."""
    noise_blur: bool = True
    """Poisson noise and Gaussian blur, each on half of the training slices."""
    noise_counts: tuple[float, float] = (20.0, 200.0)
    """Dose range (counts per pixel at intensity 1) of the Poisson noise."""
    blur_sigma: tuple[float, float] = (0.3, 1.2)
    # --- loss ---
    focal_alpha: float = 2.0
    focal_beta: float = 4.0
    size_weight: float = 0.1
    offset_weight: float = 1.0
    giou: bool = True
    """Add the GIoU loss of the decoded centre boxes (False: plain focal + L1)."""
    giou_weight: float = 1.0
    presence_weight: float = 0.5
    min_overlap: float = 0.7
    """CenterNet's Gaussian-radius overlap."""
    # --- decoding ---
    max_dets: int = 100
    """Most peaks kept per slice."""
    score_floor: float = 0.05
    threads: int = 1
    """torch CPU threads during fit/predict (0: leave as is); one on a shared 2-core machine."""

    def __post_init__(self) -> None:
        self.check_box_px()
        self.noise_counts = tuple(float(v) for v in self.noise_counts)
        self.blur_sigma = tuple(float(v) for v in self.blur_sigma)
        if self.backbone not in BACKBONES:
            raise ConfigError(f"unknown backbone {self.backbone!r}; choose one of "
                              f"{', '.join(BACKBONES)}")
        checks = {
            "bin": self.bin >= 1 and not self.bin & (self.bin - 1),
            "epochs": self.epochs >= 0, "steps_per_epoch": self.steps_per_epoch >= 1,
            "batch_size": self.batch_size >= 1, "lr": self.lr > 0,
            "neck_channels": self.neck_channels >= 1, "head_channels": self.head_channels >= 1,
            "crop": self.crop == 0 or self.crop >= 16, "patience": self.patience >= 0,
            "infer_stride": self.infer_stride >= 1, "train_stride": self.train_stride >= 1,
            "max_dets": self.max_dets >= 1, "score_floor": 0 <= self.score_floor < 1,
            "min_overlap": 0 < self.min_overlap < 1,
            "noise_counts": 0 < self.noise_counts[0] <= self.noise_counts[1],
            "blur_sigma": 0 <= self.blur_sigma[0] <= self.blur_sigma[1],
            "clahe_clip": self.clahe_clip > 0,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ConfigError("invalid value for " + ", ".join(
                f"{k}={getattr(self, k)!r}" for k in bad))


@dataclass
class _Prepared:
    """A training/validation slice after CLAHE (``[0, 1]`` float32) with its boxes."""

    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray


class CenterNetSlices(SliceDetector):
    name = "centernet_slices"
    description = ("CenterNet-style keypoint detector on z-slices (ResNet + FPN neck, focal + "
                   "GIoU, CLAHE), peaks lifted to 3D; thresholds tuned on validation runs")
    tasks = ("particles", "motor")
    extra = "detection"
    Config = CenterNetConfig
    budgets = {
        "smoke": {"neck_channels": 16, "head_channels": 16, "epochs": 1, "steps_per_epoch": 2,
                  "batch_size": 2, "patience": 0, "crop": 0, "train_stride": 2,
                  "infer_stride": 2, "empty_ratio": 0.1, "max_dets": 20, "threads": 1},
        "cpu": {},
        "full": {"backbone": "resnet101", "bin": 1, "neck_channels": 256, "head_channels": 64,
                 "epochs": 60, "steps_per_epoch": 200, "batch_size": 16, "lr": 5e-4,
                 "patience": 10, "crop": 0, "infer_stride": 1, "threads": 0,
                 "box_px": {"flagellar-motor": 100.0}},
    }

    def __init__(self, config=None) -> None:
        super().__init__(config)
        self.model = None
        self.history: list[dict] = []
        self.train_size: tuple[int, int] = (0, 0)

    # ----- model -------------------------------------------------------------------------------
    def require_extra(self) -> None:
        from cryobench.methods.slices.extras import require

        require("torchvision", self.extra, self.name)
        require("skimage", self.extra, self.name)

    def _build(self):
        from cryobench.methods.slices.centernet import build_centernet

        cfg = self.config
        return build_centernet(cfg.backbone, len(self.classes), cfg.neck_channels,
                               cfg.head_channels)

    def _loss_weights(self):
        from cryobench.methods.slices.centernet import LossWeights

        cfg = self.config
        return LossWeights(alpha=cfg.focal_alpha, beta=cfg.focal_beta, size=cfg.size_weight,
                           offset=cfg.offset_weight, giou=cfg.giou_weight if cfg.giou else 0.0,
                           presence=cfg.presence_weight)

    def _prepare(self, image: np.ndarray) -> np.ndarray:
        from cryobench.methods.slices.augment import prepare_slice

        return prepare_slice(image, self.config.clahe, self.config.clahe_clip)

    # ----- training ------------------------------------------------------------------------------
    def _example(self, s: _Prepared, rng: np.random.Generator):
        """One augmented, z-scored training image ``(1, S, S)`` and its targets."""
        from cryobench.methods.slices import augment as A
        from cryobench.methods.slices.keypoints import encode_boxes

        cfg = self.config
        aff = A.random_affine(rng, s.image.shape, self.train_size, cfg.rotation, cfg.scale,
                              cfg.translate)
        img = A.warp(s.image, aff)
        boxes, labels = A.warp_boxes(s.boxes, s.labels, aff)
        if cfg.noise_blur:
            if rng.random() < 0.5:
                img = A.poisson_noise(img, rng, cfg.noise_counts)
            if rng.random() < 0.5:
                img = A.gaussian_blur(img, rng, cfg.blur_sigma)
        t = encode_boxes(boxes, labels, img.shape, len(self.classes),
                         min_overlap=cfg.min_overlap)
        return A.zscore(img)[None], t, float(len(boxes) > 0)

    def _batches(self, samples: list[_Prepared], seed: int):
        import torch

        cfg = self.config

        def batches(epoch: int):
            rng = np.random.default_rng([seed, 11, epoch])
            for _ in range(cfg.steps_per_epoch):
                parts = [self._example(samples[int(i)], rng)
                         for i in rng.integers(0, len(samples), cfg.batch_size)]
                x = torch.from_numpy(np.stack([p[0] for p in parts]))
                ts = [p[1] for p in parts]
                y = tuple(torch.from_numpy(np.stack([getattr(t, f) for t in ts]))
                          for f in ("heatmap", "size", "offset", "mask"))
                presence = torch.tensor([p[2] for p in parts], dtype=torch.float32)
                yield x, (*y, presence)

        return batches

    def _validator(self, val: list[_Prepared], ctx: RunContext):
        """``model -> slice mAP@0.5`` of the validation slices (None without any box)."""
        if not val or not any(len(s.boxes) for s in val):
            return None
        from cryobench.metrics.map import map_boxes

        gts = pd.concat([pd.DataFrame({"image_id": i, "label": s.labels,
                                       "x0": s.boxes[:, 0], "y0": s.boxes[:, 1],
                                       "x1": s.boxes[:, 2], "y1": s.boxes[:, 3]})
                         for i, s in enumerate(val)], ignore_index=True)

        def validate(model) -> float:
            dets = []
            for i, (boxes, labels, scores) in enumerate(
                    self._forward([s.image for s in val], model, ctx)):
                dets.append(pd.DataFrame({"image_id": i, "label": labels, "x0": boxes[:, 0],
                                          "y0": boxes[:, 1], "x1": boxes[:, 2],
                                          "y1": boxes[:, 3], "score": scores}))
            rep = map_boxes(pd.concat(dets, ignore_index=True), gts, iou_thresholds=[0.5])
            return float(rep.map)

        return validate

    def train_detector(self, train: list[SliceSample], val: list[SliceSample],
                       ctx: RunContext) -> None:
        import torch

        from cryobench.methods.engine.segmentation import torch_threads
        from cryobench.methods.engine.training import TrainSettings, deterministic, train_model
        from cryobench.methods.slices.centernet import centernet_loss

        cfg = self.config

        def prepared(samples):
            return [_Prepared(self._prepare(s.image), s.boxes, s.labels) for s in samples]

        tr, va = prepared(train), prepared(val)
        if cfg.crop:
            self.train_size = (cfg.crop, cfg.crop)
        else:
            side = max(max(s.image.shape) for s in tr)
            self.train_size = (side, side)
        weights = self._loss_weights()
        with deterministic(ctx.device), torch_threads(cfg.threads):
            torch.manual_seed(ctx.seed)
            model = self._build()
            self.history = []
            if cfg.epochs > 0:
                settings = TrainSettings(
                    epochs=cfg.epochs, steps_per_epoch=cfg.steps_per_epoch, lr=cfg.lr,
                    weight_decay=cfg.weight_decay, schedule=cfg.schedule,
                    grad_clip=cfg.grad_clip, patience=cfg.patience, maximize=True,
                    checkpoint_dir=Path(ctx.work_dir) / "centernet", desc=self.name,
                    precision=cfg.precision)
                validate = self._validator(va, ctx)
                result = train_model(model, self._batches(tr, ctx.seed),
                                     lambda out, y: centernet_loss(out, y, weights), settings,
                                     ctx, validate=validate)
                self.history = result.history
                if result.best_val is not None:
                    self.extra_metrics["train_best_val_slice_map50"] = float(result.best_val)
                    self.extra_metrics["train_best_epoch"] = float(result.best_epoch)
                self.extra_metrics["train_epochs"] = float(len(result.history))
        self.model = model.to(ctx.device).eval()

    # ----- inference -----------------------------------------------------------------------------
    def _forward(self, images: list[np.ndarray], model, ctx: RunContext) -> Detections:
        """Detections of prepared (``[0, 1]``) images; images of one shape share a batch."""
        import torch

        from cryobench.methods.slices.augment import zscore
        from cryobench.methods.slices.keypoints import decode

        cfg = self.config
        out: list = [None] * len(images)
        bs = max(1, cfg.batch_size)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, im in enumerate(images):
            by_shape.setdefault(tuple(im.shape), []).append(i)
        for idx in by_shape.values():
            for start in range(0, len(idx), bs):
                chunk = idx[start:start + bs]
                x = torch.from_numpy(np.stack([zscore(images[i])[None] for i in chunk]))
                with torch.no_grad():
                    heat, size, offset, _ = model(x.to(ctx.device))
                    dets = decode(torch.sigmoid(heat.float()), size, offset, cfg.max_dets,
                                  cfg.score_floor)
                for i, d in zip(chunk, dets, strict=True):
                    out[i] = d
        return out

    def detect(self, images: list[np.ndarray], ctx: RunContext) -> Detections:
        import torch

        from cryobench.methods.engine.segmentation import torch_threads
        from cryobench.methods.engine.training import deterministic

        model = self.model.to(ctx.device).eval()
        with deterministic(ctx.device), torch_threads(self.config.threads), \
                torch.inference_mode():
            return self._forward([self._prepare(im) for im in images], model, ctx)

    def detect_batch_size(self) -> int:
        return max(1, self.config.batch_size)

    # ----- persistence -------------------------------------------------------------------------
    def save_weights(self, directory: Path) -> None:
        import torch

        from cryobench.io.atomic import atomic_path

        with atomic_path(directory / "centernet.pt") as tmp:
            torch.save(self.model.state_dict(), tmp)
        (directory / "centernet.json").write_text(json.dumps(
            {"train_size": list(self.train_size), "history": self.history}))

    def load_weights(self, directory: Path) -> None:
        import torch

        meta = json.loads((directory / "centernet.json").read_text())
        self.train_size = tuple(int(v) for v in meta["train_size"])
        self.history = list(meta.get("history", []))
        self.model = self._build()
        self.model.load_state_dict(torch.load(directory / "centernet.pt", map_location="cpu",
                                              weights_only=True))
        self.model.eval()
