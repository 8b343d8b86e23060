"""The common frame of the slice detectors: slices in, 3D picks out, thresholds tuned on val.

:class:`SliceDetector` is a :class:`~cryobench.methods.base.PickingMethod` that leaves two hooks
to its subclasses, :meth:`SliceDetector.train_detector` (fit a 2D detector on
:class:`~cryobench.methods.slices.dataset.SliceSample` lists) and
:meth:`SliceDetector.detect` (boxes for a batch of uint8 slices). Around them it

* reads each run at the working resolution (level 0 binned by ``config.bin``) and builds the
  slice dataset (boxes from the ground truth of the *training* runs);
* detects on every ``config.infer_stride``-th slice and lifts the boxes to 3D picks
  (:func:`~cryobench.methods.slices.lift.lift_detections`);
* tunes per-class score thresholds on the validation runs only (CZII F-beta, or for the motor
  task the BYU F2 "no motor" threshold of the top-scoring pick), never on test runs;
* keeps the slice detections of the last prediction of each run so :meth:`slice_metrics` can
  report slice-level COCO mAP and mAP@0.5/0.7/0.9, overall and per class, beside the 3D scores
  (:func:`~cryobench.methods.slices.evaluation.slice_map`).

Boxes are each particle's cross-section square, or for the classes named in ``config.box_px``
a fixed square of that many tomogram pixels (level 0) around the centre, in training and in
the slice metrics alike.

The config dataclass of a subclass must have the fields of :class:`SliceConfigMixin`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryobench.errors import ConfigError, DataError
from cryobench.methods.base import PickingMethod, RunContext, RunLike
from cryobench.methods.config_checks import Rule, integer, number, power_of_two
from cryobench.methods.slices.dataset import (
    SliceSample,
    build_slice_dataset,
    normalise_slice,
    slice_indices,
    volume_boxes,
    working_volume,
)
from cryobench.methods.slices.lift import (
    DETECTION_COLUMNS,
    empty_detections,
    lift_detections,
    top_per_run,
)
from cryobench.particles import ParticleType

__all__ = ["SliceConfigMixin", "SliceDetector", "Detections", "MAP_IOUS"]

Detections = list[tuple[np.ndarray, np.ndarray, np.ndarray]]
"""Per image: ``(N, 4)`` boxes ``x0, y0, x1, y1`` (image coords), ``(N,)`` 0-based labels,
``(N,)`` scores."""

MAP_IOUS: tuple[float, ...] = (0.5, 0.7, 0.9)
"""IoU thresholds of the slice-level mAP table."""

MOTOR_DISTANCE = 1000.0
"""BYU match distance in Å."""


@dataclass
class SliceConfigMixin:
    """Fields every slice-detector config has (defaults: the ``cpu`` budget)."""

    bin: int = 2
    """Working resolution: level 0 binned by this power of two."""
    min_fraction: float = 0.5
    """Smallest particle cross-section (fraction of the radius) that gets a training box."""
    empty_ratio: float = 0.1
    """Empty training slices per slice with boxes."""
    train_stride: int = 1
    """Use every k-th slice of the training runs."""
    infer_stride: int = 2
    """Detect on every k-th slice at inference."""
    link_fraction: float = 0.5
    """Box centres in neighbouring slices closer than this fraction of the radius are linked."""
    max_gap: int = 1
    """Inspected slices a particle's chain of boxes may miss."""
    default_threshold: float = 0.5
    """Score threshold of a class the validation runs cannot tune (no references)."""
    box_px: dict[str, float] = field(default_factory=dict)
    """Fixed box side per class name, in pixels of the tomogram (level 0; divided by ``bin``
    at the working resolution), for training boxes and slice metrics; classes not named get
    their cross-section's square. The BYU study boxed each motor by 100 x 100 pixels:
    ``--set 'box_px={"flagellar-motor": 100}'``."""

    def check_box_px(self) -> None:
        """Normalise ``box_px`` to ``{str: float}``; raise :class:`ConfigError` unless every
        side is a positive number."""
        try:
            sides = {str(k): float(v) for k, v in dict(self.box_px).items()}
        except (TypeError, ValueError):
            raise ConfigError(f"box_px must map class names to numbers, got {self.box_px!r}"
                              ) from None
        bad = [k for k, v in sides.items() if not np.isfinite(v) or v <= 0]
        if bad:
            raise ConfigError(f"box_px sides must be positive numbers (class {bad[0]!r})")
        self.box_px = sides

    def slice_rules(self) -> dict[str, Rule]:
        """Ranges of the shared fields (each subclass checks them with its own)."""
        return {"bin": power_of_two(64), "min_fraction": number(0, 1, lo_open=True),
                "empty_ratio": number(0, 100), "train_stride": integer(1, 1000),
                "infer_stride": integer(1, 1000), "link_fraction": number(0, 10, lo_open=True),
                "max_gap": integer(0, 100), "default_threshold": number(0, 1)}


class SliceDetector(PickingMethod):
    """Base class of ``faster_rcnn`` and ``yolo_unet``; see the module docstring."""

    tasks = ("particles", "motor")
    extra = "detection"
    resumable_predictions = False  # slice_metrics needs each test run's slice detections

    def __init__(self, config: Any | None = None) -> None:
        super().__init__(config)
        self.classes: tuple[ParticleType, ...] = ()
        self.thresholds: dict[str, float] = {}
        self.motor_threshold: float | None = None
        self.task: str = "particles"
        self.train_spacing: float = 1.0
        """Working voxel spacing (Å) of the first training run (sizes anchors)."""
        self.extra_metrics: dict[str, float] = {}
        """Figures computed during :meth:`fit` (validation slice mAP, tuned F-beta)."""
        self._slices: dict[str, tuple[pd.DataFrame, np.ndarray, tuple[int, int, int], float]] = {}

    # ----- hooks for subclasses --------------------------------------------------------------
    def require_extra(self) -> None:
        """Raise :class:`~cryobench.errors.MethodError` when the method's extra is missing."""

    def train_detector(self, train: list[SliceSample], val: list[SliceSample],
                       ctx: RunContext) -> None:
        """Fit the 2D detector (labels are 0-based indices into :attr:`classes`)."""
        raise NotImplementedError

    def detect(self, images: list[np.ndarray], ctx: RunContext) -> Detections:
        """Boxes for a batch of ``(H, W)`` uint8 slices."""
        raise NotImplementedError

    def detect_batch_size(self) -> int:
        return 4

    def refine_candidates(self, picks: pd.DataFrame, run: RunLike, volume: np.ndarray,
                          spacing: float, ctx: RunContext) -> pd.DataFrame:
        """Hook between lifting and thresholds (``yolo_unet`` fuses its U-Net here)."""
        return picks

    def finalise(self, picks: pd.DataFrame, run: RunLike, volume: np.ndarray, spacing: float,
                 ctx: RunContext) -> pd.DataFrame:
        """Hook after thresholds (``yolo_unet`` applies its post-processing variant here)."""
        return picks

    # ----- helpers -----------------------------------------------------------------------------
    @property
    def radii(self) -> dict[str, float]:
        return {p.name: p.radius for p in self.classes}

    def config_dict(self) -> dict[str, Any]:
        """The config as a dict; ``box_px`` is left out while empty (its default), so configs
        from before the field existed keep their hash."""
        d = super().config_dict()
        if not d.get("box_px"):
            d.pop("box_px", None)
        return d

    def box_sides(self) -> dict[str, float]:
        """``config.box_px`` at the working resolution (pixels of the binned slices)."""
        cfg = self.config
        return {k: float(v) / cfg.bin for k, v in dict(getattr(cfg, "box_px", {}) or {}).items()}

    def _set_classes(self, runs: Sequence[RunLike], ctx: RunContext) -> None:
        particles = tuple(ctx.particles) or (tuple(runs[0].particles) if runs else ())
        if not particles:
            raise DataError(f"{self.name}: the split names no particle types")
        self.classes = particles
        self.task = ctx.task

    def _truth(self, run: RunLike) -> pd.DataFrame:
        picks = run.picks()
        names = {p.name for p in self.classes}
        return picks[picks["particle_type"].isin(names)].reset_index(drop=True)

    def _samples(self, runs: Sequence[RunLike], ctx: RunContext, salt: int) -> list[SliceSample]:
        cfg = self.config

        def volumes():
            for run in runs:
                vol, spacing = working_volume(run, cfg.bin)
                yield run.name, vol, spacing, self._truth(run)

        return build_slice_dataset(volumes(), self.classes, cfg.min_fraction, cfg.empty_ratio,
                                   cfg.train_stride, ctx.rng(salt), sides=self.box_sides())

    def detect_volume(self, volume: np.ndarray, ctx: RunContext) -> tuple[pd.DataFrame,
                                                                           np.ndarray]:
        """Detections on every ``infer_stride``-th slice of a working volume, and those slices."""
        zs = slice_indices(volume.shape[0], self.config.infer_stride)
        rows: list[pd.DataFrame] = []
        bs = max(1, self.detect_batch_size())
        from tqdm.auto import tqdm

        for start in tqdm(range(0, len(zs), bs), desc=f"{self.name} slices", leave=False,
                          disable=not ctx.progress):
            batch = zs[start:start + bs]
            images = [normalise_slice(volume[z]) for z in batch]
            for z, (boxes, labels, scores) in zip(batch, self.detect(images, ctx), strict=True):
                if len(scores) == 0:
                    continue
                df = pd.DataFrame(np.asarray(boxes, np.float64).reshape(-1, 4),
                                  columns=["x0", "y0", "x1", "y1"])
                df.insert(0, "label", np.asarray(labels, np.int64))
                df.insert(0, "z", int(z))
                df["score"] = np.asarray(scores, np.float64)
                rows.append(df)
        dets = pd.concat(rows, ignore_index=True)[DETECTION_COLUMNS] if rows \
            else empty_detections()
        return dets, zs

    def candidates(self, run: RunLike, ctx: RunContext) -> tuple[pd.DataFrame, np.ndarray,
                                                                   float]:
        """Unthresholded 3D picks of one run (and its working volume and spacing)."""
        cfg = self.config
        volume, spacing = working_volume(run, cfg.bin)
        dets, zs = self.detect_volume(volume, ctx)
        self._slices[run.name] = (dets, zs, tuple(volume.shape), spacing)
        picks = lift_detections(dets, self.classes, spacing, run.name, cfg.infer_stride,
                                volume.shape[0], cfg.link_fraction, cfg.max_gap,
                                cfg.min_fraction)
        picks = self.refine_candidates(picks, run, volume, spacing, ctx)
        return picks, volume, spacing

    # ----- PickingMethod -------------------------------------------------------------------------
    def fit(self, train_runs: Sequence[RunLike], val_runs: Sequence[RunLike],
            ctx: RunContext) -> None:
        self.require_extra()
        ctx.seed_everything()
        self._set_classes(train_runs, ctx)
        if not train_runs:
            raise DataError(f"{self.name}: fit() needs at least one training run")
        self.train_spacing = float(train_runs[0].voxel_spacing) * self.config.bin
        ctx.work_dir.mkdir(parents=True, exist_ok=True)
        train = self._samples(train_runs, ctx, salt=1)
        val = self._samples(val_runs, ctx, salt=2) if val_runs else []
        if not train:
            raise DataError(f"{self.name}: the training runs hold no slices")
        self.train_detector(train, val, ctx)
        self.tune(val_runs, ctx)

    def tune(self, val_runs: Sequence[RunLike], ctx: RunContext) -> None:
        """Tune thresholds on ``val_runs`` (validation only) and record validation figures."""
        self.reset_tuning()
        if not val_runs:
            return
        cands = [self.candidates(run, ctx)[0] for run in val_runs]
        truths = [self._truth(run) for run in val_runs]
        objective, state = self.tune_thresholds(val_runs, cands, truths)
        self.apply_tuning(state)
        self.extra_metrics["val_objective"] = objective
        self.after_tuning(val_runs, ctx)
        self.extra_metrics.update({f"val_{k}": v for k, v in self.slice_metrics(val_runs).items()})

    def reset_tuning(self) -> None:
        """Untuned thresholds (``config.default_threshold``)."""
        self.thresholds = {p.name: float(self.config.default_threshold) for p in self.classes}
        self.motor_threshold = float(self.config.default_threshold)

    def tune_thresholds(self, runs: Sequence[RunLike], cands: Sequence[pd.DataFrame],
                        truths: Sequence[pd.DataFrame]) -> tuple[float, dict[str, Any]]:
        """Best thresholds for candidates of validation ``runs``: ``(objective, state)``.

        The objective is the weighted mean of per-class F4 (CZII weights; a plain mean when all
        weights are zero) or, for the motor task, the BYU F2 of the top pick per run.
        """
        from cryobench.methods.engine.postprocess import (
            tune_motor_threshold,
            tune_thresholds,
        )

        default = self.config.default_threshold
        if self.task == "motor":
            best, ref = {}, {}
            for run, c, t in zip(runs, cands, truths, strict=True):
                top = top_per_run(c)
                best[run.name] = (None if len(top) == 0 else
                                  (float(top["score"].iloc[0]),
                                   top[["x", "y", "z"]].to_numpy(np.float64)[0]))
                ref[run.name] = (None if len(t) == 0
                                 else t[["x", "y", "z"]].to_numpy(np.float64)[0])
            tuned = tune_motor_threshold(best, ref, distance=MOTOR_DISTANCE, default=default)
            return float(tuned.fbeta), {"motor_threshold": float(tuned.threshold)}
        tuned = tune_thresholds(pd.concat(list(cands), ignore_index=True),
                                pd.concat(list(truths), ignore_index=True), self.radii,
                                default=default)
        weights = {p.name: p.weight for p in self.classes}
        if sum(weights.values()) <= 0:
            weights = {k: 1.0 for k in weights}
        objective = sum(weights[k] * tuned.fbeta.get(k, 0.0) for k in weights) / sum(
            weights.values())
        return float(objective), {"thresholds": {k: float(v)
                                                 for k, v in tuned.thresholds.items()},
                                  "fbeta": dict(tuned.fbeta)}

    def apply_tuning(self, state: dict[str, Any]) -> None:
        if "motor_threshold" in state:
            self.motor_threshold = state["motor_threshold"]
        if "thresholds" in state:
            self.thresholds = dict(state["thresholds"])
        for k, v in state.get("fbeta", {}).items():
            self.extra_metrics[f"val_fbeta/{k}"] = float(v)

    def after_tuning(self, val_runs: Sequence[RunLike], ctx: RunContext) -> None:
        """Hook to tune more on the validation runs (their candidates are cached)."""

    def threshold(self, picks: pd.DataFrame) -> pd.DataFrame:
        """Apply the tuned thresholds (motor: the top pick, if it clears the threshold)."""
        from cryobench.methods.engine.postprocess import apply_thresholds

        if self.task == "motor":
            top = top_per_run(picks)
            return top[top["score"] >= (self.motor_threshold or 0.0)].reset_index(drop=True)
        return apply_thresholds(picks, self.thresholds)

    def predict(self, run: RunLike, ctx: RunContext) -> pd.DataFrame:
        if not self.classes:
            raise DataError(f"{self.name}: predict() called before fit() or load()")
        picks, volume, spacing = self.candidates(run, ctx)
        picks = self.finalise(self.threshold(picks), run, volume, spacing, ctx)
        cols = ["experiment", "particle_type", "x", "y", "z", "score"]
        return picks[cols].reset_index(drop=True)

    # ----- slice-level mAP -----------------------------------------------------------------------
    def slice_metrics(self, runs: Sequence[RunLike]) -> dict[str, float]:
        """Slice-level box mAP of the last predictions of ``runs``: COCO mAP and mAP at IoU
        0.5/0.7/0.9, overall and per class (keys in
        :func:`~cryobench.methods.slices.evaluation.slice_map`).

        Ground-truth boxes come from each run's picks exactly as for training
        (:func:`~cryobench.methods.slices.dataset.volume_boxes`, ``config.box_px`` included);
        only the inspected slices count. Call after :meth:`predict` on the same runs; used by
        the runner beside the 3D scores.
        """
        from cryobench.methods.slices.evaluation import slice_map

        dets, gts = [], []
        for run in runs:
            if run.name not in self._slices:
                raise DataError(f"{self.name}: no slice detections for run {run.name!r}; "
                                "call predict() first")
            d, zs, shape, spacing = self._slices[run.name]
            boxes = volume_boxes(self._truth(run), spacing, shape, self.classes,
                                 self.config.min_fraction, self.box_sides())
            boxes = boxes[boxes["z"].isin(zs)]
            for frame, out in ((d, dets), (boxes, gts)):
                f = frame.copy()
                f.insert(0, "image_id", [f"{run.name}/z{int(z)}" for z in f["z"]])
                out.append(f)
            # images without any box or detection still count as inspected images
        return slice_map(pd.concat(dets, ignore_index=True), pd.concat(gts, ignore_index=True),
                         MAP_IOUS, [p.name for p in self.classes])

    # ----- persistence ---------------------------------------------------------------------------
    def save_state(self, directory: Path) -> None:
        state = {
            "task": self.task,
            "classes": [{"name": p.name, "label": p.label, "radius": p.radius,
                         "weight": p.weight, "color": list(p.color)} for p in self.classes],
            "thresholds": self.thresholds,
            "motor_threshold": self.motor_threshold,
            "train_spacing": self.train_spacing,
            "extra_metrics": self.extra_metrics,
        }
        (Path(directory) / "slice_detector.json").write_text(json.dumps(state, indent=2))
        self.save_weights(Path(directory))

    def load_state(self, directory: Path) -> None:
        state = json.loads((Path(directory) / "slice_detector.json").read_text())
        self.task = state["task"]
        self.classes = tuple(ParticleType(c["name"], c["label"], c["radius"], c["weight"],
                                          tuple(c["color"])) for c in state["classes"])
        self.thresholds = {k: float(v) for k, v in state["thresholds"].items()}
        self.motor_threshold = state["motor_threshold"]
        self.train_spacing = float(state.get("train_spacing", 1.0))
        self.extra_metrics = state.get("extra_metrics", {})
        self.require_extra()
        self.load_weights(Path(directory))

    def save_weights(self, directory: Path) -> None:
        raise NotImplementedError

    def load_weights(self, directory: Path) -> None:
        raise NotImplementedError
