"""The shared pipeline of the segmentation baselines (torch is imported only when used).

:class:`SegmentationMethod` trains one multi-class network (softmax over background + classes)
or one binary network per class on sphere targets at a working resolution (level 0 binned by
``bin``), predicts whole tomograms by sliding windows, extracts candidates (peaks or component
centroids, per-class NMS) and keeps those above per-class thresholds tuned on the validation
runs only. Subclasses choose the network, the loss and, for per-class networks, how overlapping
claims are merged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from cryobench.coords import voxels_to_picks
from cryobench.errors import DataError, MethodError
from cryobench.io.atomic import atomic_write_text
from cryobench.methods.base import PickingMethod, RunContext, RunLike
from cryobench.methods.config_checks import (
    PRECISIONS,
    SCHEDULES,
    Rule,
    check_config,
    check_memory,
    conv3d_bytes,
    int_sequence,
    int_tuple,
    integer,
    number,
    one_of,
    power_of_two,
)
from cryobench.particles import ParticleType

__all__ = [
    "SegmentationConfig",
    "SegmentationMethod",
    "PerParticleConfig",
    "PerParticleSegmentation",
    "merge_by_priority",
    "torch_threads",
]

PICK_COLUMNS = ["experiment", "particle_type", "x", "y", "z", "score"]


@dataclass
class SegmentationConfig:
    """Settings shared by the segmentation baselines (defaults: the ``cpu`` budget)."""

    bin: int = 2
    """Working resolution: level 0 downsampled by this power of two."""
    channels: tuple[int, ...] = (16, 32, 64)
    patch_size: int = 48
    """Training patch edge in working voxels."""
    batch_size: int = 4
    epochs: int = 10
    """Training epochs; 0 keeps the initial weights (an untrained reference)."""
    steps_per_epoch: int = 25
    lr: float = 2e-3
    weight_decay: float = 1e-2
    schedule: str = "cosine"
    grad_clip: float = 1.0
    patience: int = 0
    """Early stopping on the validation loss after this many epochs without gain (0: off)."""
    val_patches: int = 8
    pos_fraction: float = 0.7
    """Share of training patches centred on a particle."""
    radius_fraction: float = 0.5
    """Sphere-target radius as a fraction of the particle radius."""
    augment: bool = True
    roi_size: int = 128
    """Sliding-window edge in working voxels (shrunk per axis to the volume, see
    :func:`~cryobench.methods.engine.inference.fit_roi`)."""
    overlap: float = 0.25
    sw_batch_size: int = 2
    decode: str = "peaks"
    """Candidate extraction: ``peaks`` (smoothed local maxima) or ``components``."""
    floor: float = 0.05
    """Lowest probability kept as a candidate (thresholds are tuned above it)."""
    sigma_fraction: float = 0.25
    peak_fraction: float = 0.5
    nms_fraction: float = 1.0
    default_threshold: float = 0.5
    """Threshold of a class that the validation runs cannot tune (no references)."""
    threads: int = 0
    """torch CPU threads during fit/predict (0: leave as is)."""
    precision: str = "auto"
    """``auto`` (CUDA: float16 AMP when asked; CPU: bfloat16 where the CPU has native
    bfloat16 units, else float32), ``fp32``, ``bf16`` or ``fp16`` (CUDA)."""
    channels_last: bool = True
    """Channels-last-3d memory layout (faster 3D convolutions on the CPU)."""

    def __post_init__(self) -> None:
        self.channels = int_sequence(self.channels, "channels")
        check_config(self, self.rules())
        check_memory("this config", self.memory_estimates())

    def rules(self) -> dict[str, Rule]:
        """Range of every checked field (subclasses add theirs)."""
        return {
            "bin": power_of_two(64),
            "channels": int_tuple(2, 8, 1, 4096),
            "patch_size": integer(8, 1024),
            "batch_size": integer(1, 4096),
            "epochs": integer(0, 100_000),
            "steps_per_epoch": integer(1, 1_000_000),
            "lr": number(0, 10, lo_open=True),
            "weight_decay": number(0, 10),
            "schedule": one_of(*SCHEDULES),
            "grad_clip": number(0, None),
            "patience": integer(0, 100_000),
            "val_patches": integer(0, 100_000),
            "pos_fraction": number(0, 1),
            "radius_fraction": number(0, 2, lo_open=True),
            "augment": one_of(True, False),
            "roi_size": integer(8, 2048),
            "overlap": number(0, 1, hi_open=True),
            "sw_batch_size": integer(1, 1024),
            "decode": one_of("peaks", "components"),
            "floor": number(0, 1, hi_open=True),
            "sigma_fraction": number(0, 4, lo_open=True),
            "peak_fraction": number(0, 4, lo_open=True),
            "nms_fraction": number(0, 10),
            "default_threshold": number(0, 1),
            "threads": integer(0, 1024),
            "precision": one_of(*PRECISIONS),
            "channels_last": one_of(True, False),
        }

    def memory_estimates(self) -> dict[str, float]:
        """Rough upper estimates (bytes) of training and sliding-window inference."""
        return {"training (batch_size x patch_size^3 x channels)": conv3d_bytes(
                    self.channels, self.patch_size, self.batch_size, training=True),
                "inference (sw_batch_size x roi_size^3 x channels)": conv3d_bytes(
                    self.channels, self.roi_size, self.sw_batch_size, training=False)}


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Use ``n`` torch CPU threads inside the block (``n <= 0``: unchanged)."""
    import torch

    if n <= 0:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def merge_by_priority(probs: np.ndarray, priority: Sequence[float], threshold: float = 0.5
                      ) -> np.ndarray:
    """Resolve voxels claimed (``p >= threshold``) by several per-class maps.

    A voxel no map claims stays as it is (background). A voxel claimed by several classes goes
    to the claiming class of highest ``priority``; equal priorities are broken by probability.
    The other classes' probabilities are zeroed there. Returns a new ``(C, z, y, x)`` array.
    """
    p = np.asarray(probs, dtype=np.float32)
    claimed = p >= threshold
    contested = claimed.sum(0) >= 2
    if not contested.any():
        return p.copy()
    pr = np.asarray(priority, dtype=np.float64)
    rank = np.searchsorted(np.unique(pr), pr).astype(np.float32)  # dense rank, ties equal
    sub = p[:, contested]
    key = np.where(claimed[:, contested], rank[:, None] * 2 + sub, -1.0)
    winner = key.argmax(0)
    out = p.copy()
    keep = np.arange(len(p))[:, None] == winner[None, :]
    out[:, contested] = np.where(keep, sub, 0.0)
    return out


class SegmentationMethod(PickingMethod):
    """Base of the segmentation baselines; see the module docstring.

    Subclasses set ``Config`` (a :class:`SegmentationConfig` subclass), ``multiclass`` and
    implement :meth:`build_network` and :meth:`loss`; per-class methods may override
    :meth:`fit_merge` and :meth:`merge`.
    """

    tasks: ClassVar[tuple[str, ...]] = ("particles",)
    extra: ClassVar[str | None] = "baselines"
    Config: ClassVar[type] = SegmentationConfig
    multiclass: ClassVar[bool] = True
    """One softmax network over background + classes (True) or one binary network per class."""

    def __init__(self, config: Any | None = None) -> None:
        super().__init__(config)
        self.models: list = []
        self.class_names: list[str] = []
        self.radii: dict[str, float] = {}
        self.thresholds: dict[str, float] = {}
        self.val_fbeta: dict[str, float] = {}
        self.merge_state: dict[str, Any] = {}
        self.history: list[list[dict]] = []
        self.precision_used: str = ""
        self._fused: list = []

    # ----- hooks ----------------------------------------------------------------------------
    def build_network(self, out_channels: int):
        """The network mapping ``(B, 1, D, H, W)`` to ``(B, out_channels, D, H, W)`` logits."""
        raise NotImplementedError

    def loss(self, logits, target):
        """Training loss: ``target`` is integer labels (multi-class) or float ``(B, 1, ...)``."""
        raise NotImplementedError

    def fit_merge(self, probs: Sequence[np.ndarray], val: Sequence, train: Sequence) -> None:
        """Learn how to merge per-class maps (called after training, on validation maps)."""

    def merge(self, probs: np.ndarray) -> np.ndarray:
        """Per-class maps -> per-class maps with conflicts resolved (identity by default)."""
        return probs

    # ----- helpers --------------------------------------------------------------------------
    def _particles(self, runs: Sequence[RunLike], ctx: RunContext) -> tuple[ParticleType, ...]:
        particles = tuple(ctx.particles) or (tuple(runs[0].particles) if runs else ())
        if not particles:
            raise DataError("no particle types: the runs and the context list none")
        return particles

    def _heads(self) -> list[int | None]:
        return [None] if self.multiclass else list(range(1, len(self.class_names) + 1))

    def _radii_voxels(self, spacing: float) -> np.ndarray:
        return np.array([self.radii[n] / spacing for n in self.class_names])

    def _check_fitted(self) -> None:
        if not self.models:
            raise MethodError(f"method {self.name!r} is not fitted; call fit() or load() first")

    def _inference_models(self) -> list:
        """The networks with BatchNorm folded into their convolutions (cached)."""
        from cryobench.methods.engine.models import fuse_batchnorm

        if len(self._fused) != len(self.models):
            self._fused = [fuse_batchnorm(m) for m in self.models]
        return self._fused

    def _probabilities(self, volume: np.ndarray, ctx: RunContext) -> np.ndarray:
        """``(C, z, y, x)`` per-class probabilities (background dropped)."""
        from cryobench.methods.engine.inference import fit_roi, sliding_window_predict

        cfg = self.config
        outs = []
        roi = fit_roi(volume.shape, cfg.roi_size, 2 ** (len(cfg.channels) - 1))
        for model in self._inference_models():
            model.to(ctx.device)
            prob = sliding_window_predict(
                model, volume, roi, overlap=cfg.overlap,
                sw_batch_size=cfg.sw_batch_size,
                activation="softmax" if self.multiclass else "sigmoid",
                device=ctx.device, amp=ctx.amp, precision=cfg.precision,
                channels_last=cfg.channels_last)
            outs.append(prob[1:] if self.multiclass else prob)
        return outs[0] if self.multiclass else np.concatenate(outs, 0)

    def _candidates(self, probs: np.ndarray, spacing: float, experiment: str,
                    floor: float | None = None) -> pd.DataFrame:
        from cryobench.methods.engine.postprocess import extract_candidates

        cfg = self.config
        pos, score, cls = extract_candidates(
            probs, self._radii_voxels(spacing), floor=cfg.floor if floor is None else floor,
            sigma_fraction=cfg.sigma_fraction, peak_fraction=cfg.peak_fraction,
            nms_fraction=cfg.nms_fraction, mode=cfg.decode)
        names = np.asarray(self.class_names, dtype=object)[cls]
        return voxels_to_picks(pos, spacing, experiment, list(names), score)

    def _network_for_head(self):
        return self.build_network(len(self.class_names) + 1 if self.multiclass else 1)

    # ----- the interface --------------------------------------------------------------------
    def fit(self, train_runs: Sequence[RunLike], val_runs: Sequence[RunLike],
            ctx: RunContext) -> None:
        import torch
        from torch.utils.data import DataLoader

        from cryobench.data.targets import sphere_labels
        from cryobench.methods.engine.data import PatchDataset, prepare_run
        from cryobench.methods.engine.postprocess import tune_thresholds
        from cryobench.methods.engine.training import deterministic, fit_or_keep_initial

        if not train_runs:
            raise DataError("fit() needs at least one training run")
        cfg = self.config
        ctx.seed_everything()
        with deterministic(ctx.device), torch_threads(cfg.threads):
            particles = self._particles(train_runs, ctx)
            self.class_names = [p.name for p in particles]
            self.radii = {p.name: float(p.radius) for p in particles}
            train = [prepare_run(r, cfg.bin, self.class_names) for r in train_runs]
            val = [prepare_run(r, cfg.bin, self.class_names) for r in val_runs]

            # Label i + 1 for class i of this method (whatever the catalogue's labels are).
            labelled = [dataclasses.replace(p, label=i + 1) for i, p in enumerate(particles)]

            def targets_of(runs):
                return [sphere_labels(r.picks, r.volume.shape, r.spacing, labelled,
                                      cfg.radius_fraction) for r in runs]

            train_t = targets_of(train)
            val_src, val_t = (val, targets_of(val)) if val else (train, train_t)
            self.models, self.history, self._fused = [], [], []
            for h, head in enumerate(self._heads()):
                torch.manual_seed(ctx.seed * 1000 + h)
                model = self._network_for_head()
                positive = None if head is None else [head]
                ds = PatchDataset(train, cfg.patch_size, cfg.steps_per_epoch * cfg.batch_size,
                                  targets=train_t, pos_fraction=cfg.pos_fraction,
                                  seed=ctx.seed * 1000 + h, augment=cfg.augment,
                                  positive_labels=positive)
                vds = PatchDataset(val_src, cfg.patch_size, max(cfg.val_patches, 1),
                                   targets=val_t, pos_fraction=cfg.pos_fraction,
                                   seed=ctx.seed * 1000 + h + 500, augment=False,
                                   positive_labels=positive)

                def to_target(y, head=head):
                    return y if head is None else (y == head).float().unsqueeze(1)

                def batches(epoch, ds=ds):
                    ds.set_epoch(epoch)
                    return DataLoader(ds, batch_size=cfg.batch_size, shuffle=False,
                                      num_workers=0)

                def loss_fn(out, y, to_target=to_target):
                    return self.loss(out, to_target(y))

                def validate(m, vds=vds, to_target=to_target):
                    losses = [float(self.loss(m(x.to(ctx.device)), to_target(y.to(ctx.device))))
                              for x, y in DataLoader(vds, batch_size=cfg.batch_size)]
                    return float(np.mean(losses))

                name = "all" if head is None else self.class_names[head - 1]
                res = fit_or_keep_initial(
                    model, batches, loss_fn, cfg, ctx, validate=validate,
                    checkpoint_dir=ctx.work_dir / "checkpoints" / f"{self.name}-{name}",
                    desc=f"{self.name} {name}")
                self.history.append(res.history)
                self.precision_used = res.precision
                self.models.append(model)

            # Thresholds (and merge rules) from the validation runs only.
            probs = [self._probabilities(r.volume, ctx).astype(np.float16) for r in val]
            self.merge_state = {}
            self.fit_merge(probs, val, train)
            cands = [self._candidates(self.merge(p.astype(np.float32)), r.spacing, r.name)
                     for p, r in zip(probs, val, strict=True)]
            del probs
            if val:
                truth = pd.concat([r.picks for r in val], ignore_index=True)
                tuned = tune_thresholds(pd.concat(cands, ignore_index=True), truth, self.radii,
                                        beta=4.0, default=cfg.default_threshold)
                self.thresholds, self.val_fbeta = tuned.thresholds, tuned.fbeta
            else:
                self.thresholds = {n: cfg.default_threshold for n in self.class_names}
                self.val_fbeta = {}

    def predict(self, run: RunLike, ctx: RunContext) -> pd.DataFrame:
        from cryobench.methods.engine.data import prepare_run
        from cryobench.methods.engine.postprocess import apply_thresholds
        from cryobench.methods.engine.training import deterministic

        self._check_fitted()
        cfg = self.config
        with deterministic(ctx.device), torch_threads(cfg.threads):
            prep = prepare_run(run, cfg.bin, with_picks=False)
            probs = self.merge(self._probabilities(prep.volume, ctx))
            cands = self._candidates(probs, prep.spacing, run.name)
        picks = apply_thresholds(cands, self.thresholds)
        return picks.sort_values(["particle_type", "score"], ascending=[True, False],
                                 kind="stable").reset_index(drop=True)[PICK_COLUMNS]

    def save_state(self, directory: Path) -> None:
        import torch

        self._check_fitted()
        from cryobench.io.atomic import atomic_path

        with atomic_path(Path(directory) / "weights.pt") as tmp:
            torch.save([m.state_dict() for m in self.models], tmp)
        state = {"class_names": self.class_names, "radii": self.radii,
                 "thresholds": self.thresholds, "val_fbeta": self.val_fbeta,
                 "merge_state": self.merge_state, "history": self.history,
                 "precision_used": self.precision_used}
        atomic_write_text(Path(directory) / "state.json", json.dumps(state, indent=2))

    def load_state(self, directory: Path) -> None:
        from cryobench.methods.weights import load_tensors, state_error

        d = Path(directory)
        weights = load_tensors(d / "weights.pt", f"saved {self.name!r} weights")
        try:
            state = json.loads((d / "state.json").read_text())
            self.class_names = [str(n) for n in state["class_names"]]
            self.radii = {str(k): float(v) for k, v in state["radii"].items()}
            self.thresholds = {str(k): float(v) for k, v in state["thresholds"].items()}
            self.val_fbeta = dict(state.get("val_fbeta", {}))
            self.merge_state = dict(state.get("merge_state", {}))
            self.history = list(state.get("history", []))
            self.precision_used = str(state.get("precision_used", ""))
            self.models, self._fused = [], []
            for sd in weights:
                model = self._network_for_head()
                model.load_state_dict(sd)
                self.models.append(model.eval())
        except (OSError, ValueError, RuntimeError, KeyError, TypeError, AttributeError) as exc:
            raise state_error(self.name, exc, d) from None
        if len(self.models) != len(self._heads()):
            raise MethodError(f"saved {self.name!r} state has {len(self.models)} networks, "
                              f"expected {len(self._heads())}", d)



@dataclass
class PerParticleConfig(SegmentationConfig):
    """Settings of the one-network-per-class baselines (``cpu`` budget: short training on 40^3
    patches, one small network per class)."""

    epochs: int = 10
    steps_per_epoch: int = 20
    batch_size: int = 4
    patch_size: int = 40
    claim_threshold: float = 0.5
    """A class's network claims a voxel when its probability reaches this."""
    prior: float = 0.01
    """Initial foreground probability: the output bias starts at ``logit(prior)`` so training
    does not begin from 0.5 everywhere on very sparse targets."""

    def rules(self) -> dict[str, Rule]:
        return {**super().rules(), "claim_threshold": number(0, 1, lo_open=True, hi_open=True),
                "prior": number(0, 1, lo_open=True, hi_open=True)}


class PerParticleSegmentation(SegmentationMethod):
    """One binary network per class, merged by the per-particle recipe's conflict rule.

    A voxel no network claims is background; a voxel claimed by several classes goes to the
    class with the highest priority = training frequency (share of training particles) +
    validation recall (of that class's network alone, peaks above ``claim_threshold``), with the
    probability as tie-breaker (:func:`merge_by_priority`).
    """

    Config: ClassVar[type] = PerParticleConfig
    multiclass: ClassVar[bool] = False

    def _network_for_head(self):
        import torch

        model = super()._network_for_head()
        head = getattr(model, "head", None)
        prior = float(self.config.prior)
        if isinstance(head, torch.nn.Conv3d) and head.bias is not None and 0 < prior < 1:
            with torch.no_grad():
                head.bias.fill_(float(np.log(prior / (1 - prior))))
        return model

    def fit_merge(self, probs: Sequence[np.ndarray], val: Sequence, train: Sequence) -> None:
        from cryobench.metrics.counts import class_counts

        k = len(self.class_names)
        labels = np.concatenate([r.labels for r in train]) if train else np.zeros(0, int)
        counts = np.bincount(labels, minlength=k + 1)[1:].astype(float)
        frequency = counts / counts.sum() if counts.sum() else np.zeros(k)
        recall = np.zeros(k)
        if val:
            cands = pd.concat([self._candidates(p.astype(np.float32), r.spacing, r.name,
                                                floor=self.config.claim_threshold)
                               for p, r in zip(probs, val, strict=True)], ignore_index=True)
            truth = pd.concat([r.picks for r in val], ignore_index=True)
            for i, n in enumerate(self.class_names):
                tp, _, fn = class_counts(cands[cands["particle_type"] == n],
                                         truth[truth["particle_type"] == n], 0.5 * self.radii[n])
                recall[i] = tp / (tp + fn) if tp + fn else 0.0
        self.merge_state = {"frequency": frequency.tolist(), "recall": recall.tolist(),
                            "priority": (frequency + recall).tolist()}

    def merge(self, probs: np.ndarray) -> np.ndarray:
        if not self.merge_state:
            return probs
        return merge_by_priority(probs, self.merge_state["priority"],
                                 self.config.claim_threshold)
