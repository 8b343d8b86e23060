"""``yolo_unet``: YOLOv8 on z-slices + a multi-class 3D U-Net, fused by weighted voting.

* YOLO (v8 family, built from ``yolov8n.yaml`` with random initialisation, fully offline; see
  :mod:`cryobench.methods.slices.yolo_runtime`) is trained on the slice dataset written in
  YOLO's own format in the run's work dir; it detects on every (``cpu``: every second) slice with
  a low confidence threshold (``conf``, 0.2) and the boxes are lifted to 3D.
* A multi-class 3D U-Net (MONAI ``UNet``, channels 48-64-80-80, strides 2-2-1, softmax over the
  classes + background; smaller in the ``cpu``/``smoke`` budgets) is trained on sphere targets with
  the shared engine and run with sliding windows.
* Fusion (:mod:`cryobench.methods.slices.fusion`): YOLO proposes, the U-Net probability around each
  proposal refines its score and position, U-Net-only peaks above a high threshold are added. The
  fusion weight, that threshold and the per-class score thresholds are tuned on the validation
  runs only.
* ``postprocess`` (``none`` | ``intensity`` | ``light_merge`` | ``hard_particle``) selects one of
  the top CZII solutions' post-processing variants
  (:mod:`cryobench.methods.slices.postprocess_variants`) for ablations with
  ``--set postprocess=...``; the ``intensity`` thresholds and polarity are tuned
  on the validation runs as well.

ultralytics (AGPL-3.0) is imported only inside the method (extra ``yolo``).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryobench.errors import ConfigError, MethodError
from cryobench.io.atomic import atomic_write_text
from cryobench.methods.base import RunContext, RunLike
from cryobench.methods.config_checks import (
    Rule,
    check_config,
    check_memory,
    float_tuple,
    int_sequence,
    integer,
    number,
    one_of,
)
from cryobench.methods.engine.segmentation import SegmentationConfig, SegmentationMethod
from cryobench.methods.slices.dataset import SliceSample
from cryobench.methods.slices.detector import Detections, SliceConfigMixin, SliceDetector
from cryobench.methods.slices.postprocess_variants import VARIANTS
from cryobench.methods.slices.yolo_runtime import MODEL_YAML

__all__ = ["YoloUNet", "YoloUNetConfig", "YOLO_WEIGHTS"]

YOLO_WEIGHTS = "yolo_weights.pt"
"""File of a saved model's YOLO tensors (``torch.save`` of a state dict, read with
``weights_only=True``)."""


@dataclass
class YoloUNetConfig(SliceConfigMixin):
    """``cpu`` budget defaults; see ``YoloUNet.budgets``."""

    # --- YOLO ---
    imgsz: int = 320
    """YOLO input size (slices are letterboxed to it); 640 in the full budget."""
    epochs: int = 20
    batch: int = 8
    yolo_lr: float = 0.002
    conf: float = 0.2
    """YOLO confidence threshold at inference (low: thresholds are tuned after fusion)."""
    iou: float = 0.5
    """YOLO's 2D NMS IoU."""
    max_det: int = 300
    # --- 3D U-Net ---
    unet: bool = True
    """Fuse with the U-Net (False: YOLO alone, for ablations)."""
    unet_channels: tuple[int, ...] = (24, 32, 40, 40)
    unet_strides: tuple[int, ...] = (2, 2, 1)
    unet_res_units: int = 1
    unet_patch_size: int = 48
    unet_batch_size: int = 4
    unet_epochs: int = 12
    unet_steps_per_epoch: int = 25
    unet_lr: float = 2e-3
    unet_pos_weight: float = 32.0
    unet_radius_fraction: float = 0.5
    unet_roi_size: int = 96
    unet_sw_batch_size: int = 2
    unet_floor: float = 0.1
    """Lowest U-Net peak probability considered for U-Net-only additions."""
    # --- fusion (tuned on validation runs over these grids) ---
    fusion_weights: tuple[float, ...] = (0.25, 0.5, 0.75)
    """Candidate weights of the YOLO score (the U-Net vote gets 1 - weight)."""
    unet_thresholds: tuple[float, ...] = (0.5, 0.7, 0.9)
    """Candidate probabilities above which U-Net-only peaks are added."""
    region_fraction: float = 0.5
    """Voting ball radius as a fraction of the particle radius."""
    # --- post-processing variant ---
    postprocess: str = "none"
    """``none`` | ``intensity`` | ``light_merge`` | ``hard_particle`` (the top CZII solutions'
    post-processing variants)."""
    threads: int = 1
    """torch CPU threads during fit/predict (0: leave as is). One by default: on a shared
    2-core machine two OpenMP threads made steps 2-60x slower and erratic (measured)."""

    def __post_init__(self) -> None:
        self.check_box_px()
        self.unet_channels = int_sequence(self.unet_channels, "unet_channels")
        self.unet_strides = int_sequence(self.unet_strides, "unet_strides")
        try:
            self.fusion_weights = tuple(float(w) for w in self.fusion_weights)
            self.unet_thresholds = tuple(float(t) for t in self.unet_thresholds)
        except (TypeError, ValueError):
            raise ConfigError(f"invalid value for fusion_weights={self.fusion_weights!r} or "
                              f"unet_thresholds={self.unet_thresholds!r} (expected lists of "
                              "numbers)") from None
        check_config(self, {
            **self.slice_rules(),
            "imgsz": (lambda v: isinstance(v, int) and 32 <= v <= 4096 and v % 32 == 0,
                      "a multiple of 32 in [32, 4096]"),
            "epochs": integer(1, 100_000), "batch": integer(1, 1024),
            "yolo_lr": number(0, 10, lo_open=True), "conf": number(0, 1, hi_open=True),
            "iou": number(0, 1, lo_open=True), "max_det": integer(1, 100_000),
            "unet": one_of(True, False),
            "unet_strides": (lambda v: len(v) == len(self.unet_channels) - 1,
                             "one stride fewer than unet_channels"),
            "fusion_weights": float_tuple(1, 100, 0, 1),
            "unet_thresholds": float_tuple(1, 100, 0, 1),
            "region_fraction": number(0, 10, lo_open=True),
            "postprocess": one_of(*VARIANTS), "threads": integer(0, 1024)})
        # YOLOv8n keeps roughly 400 bytes per input pixel and image while training, rough
        check_memory("this config", {"YOLO training (batch x imgsz^2)":
                                     400.0 * self.batch * self.imgsz**2})
        self.unet_config()  # the U-Net half's fields, checked now rather than at fit time

    def unet_config(self) -> _UNetConfig:
        """The config of the U-Net half (its ``unet_*`` fields, checked by its own rules;
        errors name the ``unet_*`` fields)."""
        try:
            return self._make_unet_config()
        except ConfigError as exc:
            names = "|".join(_UNET_FIELDS)
            raise ConfigError(re.sub(rf"(?<![\w])({names})=", r"unet_\1=", exc.message)
                              ) from None

    def _make_unet_config(self) -> _UNetConfig:
        return _UNetConfig(
            bin=self.bin, channels=self.unet_channels, strides=self.unet_strides,
            res_units=self.unet_res_units, patch_size=self.unet_patch_size,
            batch_size=self.unet_batch_size, epochs=self.unet_epochs,
            steps_per_epoch=self.unet_steps_per_epoch, lr=self.unet_lr,
            pos_weight=self.unet_pos_weight, radius_fraction=self.unet_radius_fraction,
            roi_size=self.unet_roi_size, sw_batch_size=self.unet_sw_batch_size,
            floor=self.unet_floor, threads=self.threads, val_patches=1)


_UNET_FIELDS = ("channels", "strides", "res_units", "patch_size", "batch_size", "epochs",
                "steps_per_epoch", "lr", "pos_weight", "radius_fraction", "roi_size",
                "sw_batch_size", "floor")
"""Fields of the U-Net half that ``YoloUNetConfig`` sets from its ``unet_<field>``."""


@dataclass
class _UNetConfig(SegmentationConfig):
    strides: tuple[int, ...] = (2, 2, 1)
    res_units: int = 1
    pos_weight: float = 16.0

    def __post_init__(self) -> None:
        self.strides = int_sequence(self.strides, "strides")
        super().__post_init__()

    def rules(self) -> dict[str, Rule]:
        return {**super().rules(),
                "strides": (lambda v: len(v) == len(self.channels) - 1
                            and all(s in (1, 2) for s in v),
                            "one stride (1 or 2) fewer than the channels"),
                "res_units": integer(0, 8), "pos_weight": number(0, 1e6, lo_open=True)}


class _FusionUNet(SegmentationMethod):
    """The U-Net half of ``yolo_unet``: MONAI ``UNet`` trained by the shared engine."""

    name = "yolo_unet-unet"
    description = "MONAI 3D U-Net of yolo_unet"
    Config = _UNetConfig
    multiclass = True

    def build_network(self, out_channels: int):
        return _padded_monai_unet(out_channels, self.config.channels, self.config.strides,
                                  self.config.res_units)

    def loss(self, logits, target):
        from cryobench.methods.engine.losses import dice_loss, weighted_ce_loss

        k = logits.shape[1]
        loss = weighted_ce_loss(logits, target,
                                class_weights=[1.0] + [self.config.pos_weight] * (k - 1))
        return loss + dice_loss(logits, target, class_weights=[0.0] + [1.0] * (k - 1))

    def probabilities(self, volume: np.ndarray, ctx: RunContext) -> np.ndarray:
        """``(C, z, y, x)`` class probabilities of a normalised working volume."""
        return self._probabilities(volume, ctx)


def _padded_monai_unet(out_channels: int, channels: Sequence[int], strides: Sequence[int],
                       res_units: int):
    """MONAI's 3D ``UNet``, with inputs padded to a multiple of its total stride."""
    import torch.nn.functional as F
    from monai.networks.nets import UNet
    from torch import nn

    class Padded(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = UNet(spatial_dims=3, in_channels=1, out_channels=out_channels,
                            channels=tuple(channels), strides=tuple(strides),
                            num_res_units=res_units)
            self.multiple = int(np.prod(strides))

        def forward(self, x):
            d, h, w = x.shape[-3:]
            m = self.multiple
            pad = [(-s) % m for s in (w, h, d)]
            if any(pad):
                x = F.pad(x, (0, pad[0], 0, pad[1], 0, pad[2]), mode="replicate")
            return self.net(x)[..., :d, :h, :w]

    return Padded()


@dataclass
class _Raw:
    """Everything fusion needs for one run, before the tuned parameters are applied."""

    proposals: pd.DataFrame
    probs: np.ndarray | None
    peaks: pd.DataFrame | None
    volume: np.ndarray
    spacing: float


class YoloUNet(SliceDetector):
    name = "yolo_unet"
    description = ("YOLOv8 on z-slices (random init, offline) + MONAI 3D U-Net, weighted-vote "
                   "fusion; post-processing variants none/intensity/light_merge/hard_particle")
    tasks = ("particles", "motor")
    extra = "yolo"
    Config = YoloUNetConfig
    budgets = {
        "smoke": {"imgsz": 64, "epochs": 1, "batch": 4, "train_stride": 2, "infer_stride": 2,
                  "empty_ratio": 0.05, "unet_channels": (4, 8, 8, 8), "unet_res_units": 0,
                  "unet_patch_size": 16, "unet_batch_size": 1, "unet_epochs": 1,
                  "unet_steps_per_epoch": 2, "unet_roi_size": 32, "unet_sw_batch_size": 1,
                  "fusion_weights": (0.5,), "unet_thresholds": (0.9,), "threads": 1},
        "cpu": {"train_stride": 2},
        "full": {"bin": 1, "imgsz": 640, "epochs": 100, "batch": 32, "infer_stride": 1,
                 "train_stride": 1, "threads": 0,
                 "unet_channels": (48, 64, 80, 80), "unet_patch_size": 96,
                 "unet_batch_size": 4, "unet_epochs": 60, "unet_steps_per_epoch": 100,
                 "unet_lr": 1e-3, "unet_roi_size": 128, "unet_sw_batch_size": 4,
                 "fusion_weights": (0.2, 0.35, 0.5, 0.65, 0.8),
                 "unet_thresholds": (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)},
    }

    def __init__(self, config=None) -> None:
        super().__init__(config)
        self.yolo = None
        self.yolo_weights: Path | None = None
        """The checkpoint this run's training wrote (in its work dir)."""
        self.yolo_state: dict[str, Any] | None = None
        """The trained YOLO's tensors: what :meth:`save_weights` stores."""
        self.unet_method: _FusionUNet | None = None
        self.fusion_weight = 1.0
        self.unet_threshold = float("inf")
        self.intensity_thresholds: dict[str, float] = {}
        self.polarity: dict[str, float] = {}
        self._fit_runs: tuple[Sequence[RunLike], Sequence[RunLike]] = ((), ())

    # ----- YOLO -------------------------------------------------------------------------------
    def require_extra(self) -> None:
        from cryobench.methods.slices.extras import require_spec

        require_spec("ultralytics", self.extra, self.name)

    def _config_dir(self, ctx: RunContext) -> Path:
        return Path(ctx.work_dir) / "ultralytics"

    def fit(self, train_runs: Sequence[RunLike], val_runs: Sequence[RunLike],
            ctx: RunContext) -> None:
        self._fit_runs = (train_runs, val_runs)
        try:
            super().fit(train_runs, val_runs, ctx)
        finally:
            self._fit_runs = ((), ())

    def train_detector(self, train: list[SliceSample], val: list[SliceSample],
                       ctx: RunContext) -> None:
        from cryobench.methods.engine.segmentation import torch_threads
        from cryobench.methods.slices.yolo_format import write_yolo_dataset
        from cryobench.methods.slices.yolo_runtime import (
            import_ultralytics,
            load_yolo,
            train_yolo,
            yolo_state_dict,
        )

        cfg = self.config
        import_ultralytics(self._config_dir(ctx), self.name)
        work = Path(ctx.work_dir)
        data_dir = work / "yolo_data"
        if data_dir.exists():
            shutil.rmtree(data_dir)
        data = write_yolo_dataset(train, val, data_dir, [p.name for p in self.classes])
        with torch_threads(cfg.threads):
            self.yolo_weights = train_yolo(
                data, work / "yolo_runs", epochs=cfg.epochs, imgsz=cfg.imgsz, batch=cfg.batch,
                seed=ctx.seed, device=ctx.device, amp=ctx.amp, num_classes=len(self.classes),
                lr0=cfg.yolo_lr, quiet=True, progress=ctx.progress, desc="train yolo")
        self.yolo = load_yolo(self.yolo_weights)  # this run's own checkpoint
        self.yolo_state = yolo_state_dict(self.yolo)
        if cfg.unet:
            self._train_unet(ctx)

    def detect(self, images: list[np.ndarray], ctx: RunContext) -> Detections:
        from cryobench.methods.engine.segmentation import torch_threads
        from cryobench.methods.slices.yolo_runtime import predict_yolo

        cfg = self.config
        with torch_threads(cfg.threads):
            return predict_yolo(self.yolo, images, imgsz=cfg.imgsz, conf=cfg.conf, iou=cfg.iou,
                                max_det=cfg.max_det, device=ctx.device)

    def detect_batch_size(self) -> int:
        return max(1, self.config.batch)

    # ----- U-Net ------------------------------------------------------------------------------
    def _unet_config(self) -> _UNetConfig:
        return self.config.unet_config()

    def _train_unet(self, ctx: RunContext) -> None:
        train_runs, val_runs = self._fit_runs
        self.unet_method = _FusionUNet(self._unet_config())
        unet_ctx = RunContext(work_dir=Path(ctx.work_dir) / "unet", device=ctx.device,
                              seed=ctx.seed, budget=ctx.budget, task=ctx.task, amp=ctx.amp,
                              progress=ctx.progress, particles=self.classes)
        unet_ctx.work_dir.mkdir(parents=True, exist_ok=True)
        self.unet_method.fit(train_runs, val_runs, unet_ctx)

    def _raw(self, run: RunLike, ctx: RunContext) -> _Raw:
        from cryobench.methods.engine.data import normalise
        from cryobench.methods.engine.segmentation import torch_threads

        proposals, volume, spacing = super().candidates(run, ctx)
        probs = peaks = None
        if self.unet_method is not None:
            with torch_threads(self.config.threads):
                probs = self.unet_method.probabilities(normalise(volume), ctx)
            peaks = self.unet_method._candidates(probs, spacing, run.name)
        return _Raw(proposals, probs, peaks, volume, spacing)

    def _fuse(self, raw: _Raw, weight: float, threshold: float) -> pd.DataFrame:
        from cryobench.methods.slices.fusion import fuse

        if raw.probs is None:
            return raw.proposals
        return fuse(raw.proposals, raw.probs, raw.spacing, [p.name for p in self.classes],
                    self.radii, weight=weight, region_fraction=self.config.region_fraction,
                    unet_peaks=raw.peaks, unet_threshold=threshold)

    def candidates(self, run: RunLike, ctx: RunContext) -> tuple[pd.DataFrame, np.ndarray,
                                                                   float]:
        raw = self._raw(run, ctx)
        return self._fuse(raw, self.fusion_weight, self.unet_threshold), raw.volume, raw.spacing

    # ----- tuning on validation runs -----------------------------------------------------------
    def tune(self, val_runs: Sequence[RunLike], ctx: RunContext) -> None:
        """Grid-search the fusion weight and U-Net threshold, then the score thresholds and the
        ``intensity`` variant's thresholds, all on the validation runs only."""
        self.reset_tuning()
        self.fusion_weight = 1.0 if self.unet_method is None else 0.5
        self.unet_threshold = float("inf")
        self.intensity_thresholds, self.polarity = {}, {}
        if not val_runs:
            return
        raws = [self._raw(run, ctx) for run in val_runs]
        truths = [self._truth(run) for run in val_runs]
        grid = ([(1.0, float("inf"))] if self.unet_method is None else
                [(w, t) for w in self.config.fusion_weights for t in self.config.unet_thresholds])
        best = None
        for w, t in grid:
            cands = [self._fuse(r, w, t) for r in raws]
            objective, state = self.tune_thresholds(val_runs, cands, truths)
            self.extra_metrics[f"val_objective/w={w:g},t={t:g}"] = objective
            if best is None or objective > best[0]:
                best = (objective, w, t, state, cands)
        objective, self.fusion_weight, self.unet_threshold, state, cands = best
        self.apply_tuning(state)
        self.extra_metrics["val_objective"] = objective
        self._tune_intensity(raws, cands, truths)
        self.extra_metrics.update({f"val_{k}": v for k, v in self.slice_metrics(val_runs).items()})

    def _tune_intensity(self, raws: list[_Raw], cands: list[pd.DataFrame],
                        truths: list[pd.DataFrame]) -> None:
        """Per-class polarity (sign of the mean intensity at true particles) and threshold
        (maximising that class's F4 after the score thresholds) for ``postprocess=intensity``."""
        from cryobench.methods.slices.postprocess_variants import local_intensity, min_spacing
        from cryobench.metrics.counts import class_counts, fbeta

        radii = self.radii
        kept = [self.threshold(c) for c in cands]
        zs = [local_intensity(k, r.volume, r.spacing, radii)
              for k, r in zip(kept, raws, strict=True)]
        zt = [local_intensity(t, r.volume, r.spacing, radii)
              for t, r in zip(truths, raws, strict=True)]
        picks = pd.concat(kept, ignore_index=True).assign(_z=np.concatenate(zs) if zs else [])
        truth = pd.concat(truths, ignore_index=True).assign(_z=np.concatenate(zt) if zt else [])
        for p in self.classes:
            ref = truth[truth["particle_type"] == p.name]
            mine = picks[picks["particle_type"] == p.name]
            pol = 1.0 if len(ref) == 0 or np.nanmean(ref["_z"]) >= 0 else -1.0
            self.polarity[p.name] = pol
            if len(ref) == 0 or len(mine) == 0:
                continue
            v = np.nan_to_num(pol * mine["_z"].to_numpy(np.float64), nan=-np.inf)
            levels = np.unique(np.quantile(v[np.isfinite(v)], np.linspace(0, 0.9, 19))) \
                if np.isfinite(v).any() else np.zeros(0)
            best_t, best_f = -np.inf, -1.0
            for t in [-np.inf, *levels.tolist()]:
                sub = min_spacing(mine[v >= t].drop(columns="_z"), radii)
                f = float(fbeta(*class_counts(sub, ref, 0.5 * p.radius), beta=4.0)[2])
                if f > best_f + 1e-12:
                    best_t, best_f = t, f
            self.intensity_thresholds[p.name] = float(best_t)
            self.extra_metrics[f"val_intensity_fbeta/{p.name}"] = float(best_f)

    def finalise(self, picks: pd.DataFrame, run: RunLike, volume: np.ndarray, spacing: float,
                 ctx: RunContext) -> pd.DataFrame:
        from cryobench.methods.slices.postprocess_variants import apply_variant

        return apply_variant(self.config.postprocess, picks, self.radii, volume, spacing,
                             self.intensity_thresholds, self.polarity)

    # ----- persistence -------------------------------------------------------------------------
    def save_weights(self, directory: Path) -> None:
        from cryobench.methods.slices.yolo_runtime import save_yolo_state

        if self.yolo_state is None:
            raise MethodError(f"method {self.name!r} is not fitted; call fit() or load() first")
        save_yolo_state(self.yolo_state, directory / YOLO_WEIGHTS)
        if self.unet_method is not None:
            (directory / "unet").mkdir(exist_ok=True)
            self.unet_method.save(directory / "unet")
        finite = {k: v for k, v in self.intensity_thresholds.items() if np.isfinite(v)}
        atomic_write_text(directory / "yolo_unet.json", json.dumps({
            "yolo": {"architecture": MODEL_YAML, "classes": len(self.classes)},
            "fusion_weight": self.fusion_weight,
            "unet_threshold": None if not np.isfinite(self.unet_threshold)
            else self.unet_threshold,
            "intensity_thresholds": finite,
            "polarity": self.polarity,
        }, indent=2))

    def load_weights(self, directory: Path) -> None:
        """Load a saved model without unpickling anything but tensors (see
        :func:`~cryobench.methods.slices.yolo_runtime.build_yolo`)."""
        from cryobench.methods.slices.yolo_runtime import (
            build_yolo,
            import_ultralytics,
            yolo_state_dict,
        )

        meta_path = directory / "yolo_unet.json"
        if not (directory / YOLO_WEIGHTS).exists() and (directory / "yolo.pt").exists():
            raise MethodError("this model directory holds a pickled ultralytics checkpoint "
                              "(yolo.pt), which cryobench does not load: a pickle can run any "
                              f"code. Models saved by cryobench hold {YOLO_WEIGHTS} (tensors "
                              "only); retrain to get one", directory / "yolo.pt")
        try:
            meta = json.loads(meta_path.read_text())
            yolo_meta = meta["yolo"]
            n_classes = int(yolo_meta["classes"])
            if yolo_meta["architecture"] != MODEL_YAML or n_classes != len(self.classes):
                raise ValueError(f"architecture {yolo_meta['architecture']!r} with "
                                 f"{n_classes} classes (expected {MODEL_YAML!r} with "
                                 f"{len(self.classes)})")
            self.fusion_weight = float(meta["fusion_weight"])
            t = meta["unet_threshold"]
            self.unet_threshold = float("inf") if t is None else float(t)
            self.intensity_thresholds = {str(k): float(v)
                                         for k, v in meta["intensity_thresholds"].items()}
            self.polarity = {str(k): float(v) for k, v in meta["polarity"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise MethodError(f"cannot load saved {self.name!r} state ({type(exc).__name__}: "
                              f"{exc})", meta_path) from None
        import_ultralytics(directory / "ultralytics", self.name)
        self.yolo = build_yolo(n_classes, directory / YOLO_WEIGHTS)
        self.yolo_state = yolo_state_dict(self.yolo)
        self.unet_method = (_FusionUNet.load(directory / "unet")
                            if (directory / "unet" / "method.json").exists() else None)
