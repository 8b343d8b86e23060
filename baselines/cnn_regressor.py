"""``cnn_regressor`` (motor task): a 3D CNN that regresses ``[confidence, z, y, x]`` per patch.

Source recipe: four conv blocks 16 -> 128 channels (BatchNorm, LeakyReLU, max
pooling), global average pooling, dense 128, dropout 0.3, outputs ``[confidence, z, y, x]``,
BCE + MSE loss. Inference by progressive sampling: a coarse pass over a grid of windows (a
fraction of the slices), then a fine pass of shifted windows around the best candidates, then
3D NMS; "no motor" when the best confidence is below a threshold tuned on the validation runs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryobench.coords import voxels_to_picks
from cryobench.errors import DataError, MethodError
from cryobench.io.atomic import atomic_path, atomic_write_text
from cryobench.methods.base import PickingMethod, RunContext, RunLike
from cryobench.methods.config_checks import (
    PRECISIONS,
    SCHEDULES,
    check_config,
    check_memory,
    conv3d_bytes,
    int_sequence,
    int_tuple,
    integer,
    number,
    one_of,
)

__all__ = ["CNNRegressor"]

PICK_COLUMNS = ["experiment", "particle_type", "x", "y", "z", "score"]


@dataclass
class CNNRegressorConfig:
    """``cpu`` budget: ~25 Å working resolution, 40^3 patches, 750 steps."""

    target_spacing: float = 25.0
    """Working voxel size in Å: level 0 is binned by the power of two closest to this."""
    channels: tuple[int, ...] = (16, 32, 64, 128)
    hidden: int = 128
    dropout: float = 0.3
    patch_size: int = 40
    batch_size: int = 8
    epochs: int = 30
    """Training epochs; 0 keeps the initial weights (an untrained reference)."""
    steps_per_epoch: int = 25
    lr: float = 2e-3
    weight_decay: float = 1e-2
    schedule: str = "cosine"
    grad_clip: float = 1.0
    patience: int = 0
    val_patches: int = 16
    pos_fraction: float = 0.5
    point_margin: int = 2
    """A motor counts as inside a patch when at least this many voxels from its faces."""
    coord_weight: float = 10.0
    """Weight of the MSE on the position (fractions of the patch) against the BCE."""
    augment: bool = True
    coarse_stride: float = 0.5
    """Coarse-pass window stride as a fraction of the patch (z too: a fraction of slices)."""
    n_candidates: int = 4
    fine_shift: float = 0.25
    """Fine-pass window shifts as a fraction of the patch (centre + 6 axis shifts)."""
    nms_distance: float = 1000.0
    """3D NMS radius in Å (the BYU match distance)."""
    default_threshold: float = 0.5
    batch_windows: int = 16
    threads: int = 0
    precision: str = "auto"
    """``auto`` (CUDA: float16 AMP when asked; CPU: bfloat16 where the CPU has native
    bfloat16 units, else float32), ``fp32``, ``bf16`` or ``fp16`` (CUDA)."""
    channels_last: bool = True

    def __post_init__(self) -> None:
        self.channels = int_sequence(self.channels, "channels")
        check_config(self, {
            "target_spacing": number(0, 1e4, lo_open=True),
            "channels": int_tuple(1, 8, 1, 4096), "hidden": integer(1, 65_536),
            "dropout": number(0, 1, hi_open=True),
            "patch_size": (lambda v: isinstance(v, int) and 2 ** len(self.channels) <= v <= 1024,
                           f"an integer in [{2 ** len(self.channels)}, 1024] (at least 2 to "
                           "the number of channels)"),
            "batch_size": integer(1, 4096), "epochs": integer(0, 100_000),
            "steps_per_epoch": integer(1, 1_000_000), "lr": number(0, 10, lo_open=True),
            "weight_decay": number(0, 10), "schedule": one_of(*SCHEDULES),
            "grad_clip": number(0, None), "patience": integer(0, 100_000),
            "val_patches": integer(0, 100_000), "pos_fraction": number(0, 1),
            "point_margin": integer(0, 512), "coord_weight": number(0, 1e6),
            "augment": one_of(True, False), "coarse_stride": number(0, 1, lo_open=True),
            "n_candidates": integer(1, 1000), "fine_shift": number(0, 1),
            "nms_distance": number(0, 1e6, lo_open=True), "default_threshold": number(0, 1),
            "batch_windows": integer(1, 4096), "threads": integer(0, 1024),
            "precision": one_of(*PRECISIONS), "channels_last": one_of(True, False)})
        check_memory("this config", {
            "training (batch_size x patch_size^3 x channels)": conv3d_bytes(
                self.channels, self.patch_size, self.batch_size, training=True),
            "inference (batch_windows x patch_size^3 x channels)": conv3d_bytes(
                self.channels, self.patch_size, self.batch_windows, training=False)})


def _bin_for(spacing: float, target: float) -> int:
    """The power of two closest (in log scale) to ``target / spacing``, at least 1."""
    ratio = max(target / float(spacing), 1.0)
    return int(2 ** round(np.log2(ratio)))


class CNNRegressor(PickingMethod):
    name = "cnn_regressor"
    description = ("3D CNN regressing [confidence, z, y, x] per patch, progressive sampling "
                   "(motor task)")
    tasks = ("motor",)
    extra = "baselines"
    Config = CNNRegressorConfig
    budgets = {
        "smoke": {"target_spacing": 40.0, "channels": (4, 8, 8, 8), "hidden": 16,
                  "patch_size": 16, "batch_size": 2, "epochs": 1, "steps_per_epoch": 2,
                  "val_patches": 1, "n_candidates": 2, "threads": 1},
        "cpu": {},
        "full": {"target_spacing": 20.0, "patch_size": 64, "batch_size": 16, "epochs": 60,
                 "steps_per_epoch": 100, "lr": 1e-3, "patience": 15, "val_patches": 64,
                 "coarse_stride": 0.25, "n_candidates": 8, "batch_windows": 64},
    }

    def __init__(self, config: Any | None = None) -> None:
        super().__init__(config)
        self.model = None
        self.particle_type: str = ""
        self.threshold: float = float(self.config.default_threshold)
        self.val_fbeta: float | None = None
        self.history: list[dict] = []
        self.precision_used: str = ""
        self._fused = None

    # ----- helpers ----------------------------------------------------------------------------
    def _network(self):
        from cryobench.methods.engine.models import CNNRegressor3D

        cfg = self.config
        return CNNRegressor3D(1, cfg.channels, cfg.hidden, cfg.dropout)

    def _prepare(self, run: RunLike, with_picks: bool):
        from cryobench.methods.engine.data import prepare_run

        names = [self.particle_type] if self.particle_type else None
        return prepare_run(run, _bin_for(run.voxel_spacing, self.config.target_spacing), names,
                           with_picks=with_picks)

    def _loss(self, out, target):
        import torch.nn.functional as F

        has = target[:, 0]
        bce = F.binary_cross_entropy_with_logits(out[:, 0], has)
        err = ((out[:, 1:].sigmoid() - target[:, 1:]) ** 2).mean(1)
        mse = (err * has).sum() / has.sum().clamp_min(1.0)
        return bce + self.config.coord_weight * mse

    def _windows(self, volume: np.ndarray, starts: np.ndarray, ctx: RunContext
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Confidence ``(N,)`` and absolute position ``(N, 3)`` (voxels) per window start."""
        import torch

        from cryobench.methods.engine.data import _crop
        from cryobench.methods.engine.training import autocast, resolve_precision

        cfg = self.config
        p = cfg.patch_size
        precision = resolve_precision(cfg.precision, ctx.device, ctx.amp)
        layout = torch.channels_last_3d if cfg.channels_last else torch.contiguous_format
        confs, pos = [], []
        if self._fused is None:
            from cryobench.methods.engine.models import fuse_batchnorm

            self._fused = fuse_batchnorm(self.model)
        model = self._fused.to(ctx.device)
        with torch.inference_mode(), autocast(ctx.device, precision):
            for i in range(0, len(starts), cfg.batch_windows):
                chunk = starts[i:i + cfg.batch_windows]
                x = np.stack([_crop(volume, s, p) for s in chunk])[:, None]
                x = torch.from_numpy(np.ascontiguousarray(x)).to(ctx.device)
                out = model(x.contiguous(memory_format=layout))
                out = out.float().cpu().numpy()
                confs.append(1 / (1 + np.exp(-out[:, 0])))
                pos.append(chunk + (1 / (1 + np.exp(-out[:, 1:]))) * (p - 1))
        if not confs:
            return np.zeros(0), np.zeros((0, 3))
        return np.concatenate(confs), np.concatenate(pos)

    def _best_candidate(self, volume: np.ndarray, spacing: float, ctx: RunContext
                        ) -> tuple[float, np.ndarray] | None:
        """Progressive sampling: coarse grid, fine pass around candidates, NMS; the best one."""
        from cryobench.methods.engine.postprocess import nms

        cfg = self.config
        p = cfg.patch_size
        stride = max(1, int(round(cfg.coarse_stride * p)))
        axes = []
        for s in volume.shape:
            last = max(s - p, 0)
            grid = list(range(0, last + 1, stride))
            if grid[-1] != last:
                grid.append(last)
            axes.append(grid)
        starts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
        conf, pos = self._windows(volume, starts, ctx)
        if len(conf) == 0:
            return None
        nms_vox = cfg.nms_distance / spacing
        keep = nms(pos, conf, None, nms_vox)[:cfg.n_candidates]
        shift = int(round(cfg.fine_shift * p))
        offsets = np.array([[0, 0, 0]] + [[s * d if a == ax else 0 for a in range(3)]
                                          for ax in range(3) for s in (-shift, shift)
                                          for d in (1,)])
        refined_conf, refined_pos = [], []
        for k in keep:
            centre = np.rint(pos[k] - (p - 1) / 2).astype(int)
            fstarts = centre[None, :] + offsets
            fc, fp = self._windows(volume, fstarts, ctx)
            w = fc / max(fc.sum(), 1e-12)
            refined_conf.append(float(fc.mean()))
            refined_pos.append((w[:, None] * fp).sum(0) if fc.sum() > 0 else fp.mean(0))
        rc, rp = np.asarray(refined_conf), np.asarray(refined_pos).reshape(-1, 3)
        order = nms(rp, rc, None, nms_vox)
        best = int(order[0])
        return float(rc[best]), rp[best]

    # ----- the interface ------------------------------------------------------------------------
    def fit(self, train_runs: Sequence[RunLike], val_runs: Sequence[RunLike],
            ctx: RunContext) -> None:
        import torch
        from torch.utils.data import DataLoader

        from cryobench.coords import voxel_to_angstrom
        from cryobench.methods.engine.data import PatchDataset
        from cryobench.methods.engine.postprocess import tune_motor_threshold
        from cryobench.methods.engine.segmentation import torch_threads
        from cryobench.methods.engine.training import deterministic, fit_or_keep_initial

        if not train_runs:
            raise DataError("fit() needs at least one training run")
        cfg = self.config
        particles = tuple(ctx.particles) or tuple(train_runs[0].particles)
        if len(particles) != 1:
            raise MethodError(f"{self.name} picks one object (the motor task); the data has "
                              f"{len(particles)} particle types")
        self.particle_type = particles[0].name
        ctx.seed_everything()
        with deterministic(ctx.device), torch_threads(cfg.threads):
            train = [self._prepare(r, True) for r in train_runs]
            val = [self._prepare(r, True) for r in val_runs]
            torch.manual_seed(ctx.seed)
            self.model, self._fused = self._network(), None
            ds = PatchDataset(train, cfg.patch_size, cfg.steps_per_epoch * cfg.batch_size,
                              kind="points", pos_fraction=cfg.pos_fraction, seed=ctx.seed,
                              augment=cfg.augment, point_margin=cfg.point_margin)
            vds = PatchDataset(val or train, cfg.patch_size, max(cfg.val_patches, 1),
                               kind="points", pos_fraction=cfg.pos_fraction,
                               seed=ctx.seed + 500, augment=False,
                               point_margin=cfg.point_margin)

            def batches(epoch):
                ds.set_epoch(epoch)
                return DataLoader(ds, batch_size=cfg.batch_size, shuffle=False, num_workers=0)

            def validate(m):
                return float(np.mean([float(self._loss(m(x.to(ctx.device)), y.to(ctx.device)))
                                      for x, y in DataLoader(vds, batch_size=cfg.batch_size)]))

            res = fit_or_keep_initial(self.model, batches, self._loss, cfg, ctx,
                                      validate=validate, desc=self.name,
                                      checkpoint_dir=ctx.work_dir / "checkpoints" / self.name)
            self.history, self.precision_used = res.history, res.precision

            # "No motor" threshold from the validation runs only.
            best, truth = {}, {}
            for r in val:
                cand = self._best_candidate(r.volume, r.spacing, ctx)
                best[r.name] = (None if cand is None else
                                (cand[0], voxel_to_angstrom(cand[1], r.spacing)[0]))
                truth[r.name] = (r.picks[["x", "y", "z"]].to_numpy(np.float64)[0]
                                 if len(r.picks) else None)
            if val:
                tuned = tune_motor_threshold(best, truth, distance=cfg.nms_distance, beta=2.0,
                                             default=cfg.default_threshold)
                self.threshold, self.val_fbeta = tuned.threshold, tuned.fbeta
            else:
                self.threshold, self.val_fbeta = float(cfg.default_threshold), None

    def predict(self, run: RunLike, ctx: RunContext) -> pd.DataFrame:
        from cryobench.methods.engine.segmentation import torch_threads
        from cryobench.methods.engine.training import deterministic

        if self.model is None:
            raise MethodError(f"method {self.name!r} is not fitted; call fit() or load() first")
        self.model.to(ctx.device)
        with deterministic(ctx.device), torch_threads(self.config.threads):
            prep = self._prepare(run, False)
            cand = self._best_candidate(prep.volume, prep.spacing, ctx)
        if cand is None or cand[0] < self.threshold:
            pos, score = np.zeros((0, 3)), np.zeros(0)
        else:
            pos, score = cand[1][None, :], np.array([cand[0]])
        return voxels_to_picks(pos, prep.spacing, run.name, self.particle_type,
                               score)[PICK_COLUMNS]

    def save_state(self, directory: Path) -> None:
        import torch

        if self.model is None:
            raise MethodError(f"method {self.name!r} is not fitted; nothing to save")
        with atomic_path(Path(directory) / "weights.pt") as tmp:
            torch.save(self.model.state_dict(), tmp)
        atomic_write_text(Path(directory) / "state.json", json.dumps(
            {"particle_type": self.particle_type, "threshold": self.threshold,
             "val_fbeta": self.val_fbeta, "history": self.history,
             "precision_used": self.precision_used}, indent=2))

    def load_state(self, directory: Path) -> None:
        from cryobench.methods.weights import load_tensors, state_error

        d = Path(directory)
        weights = load_tensors(d / "weights.pt", f"saved {self.name!r} weights")
        try:
            state = json.loads((d / "state.json").read_text())
            self.particle_type = str(state["particle_type"])
            self.threshold = float(state["threshold"])
            self.val_fbeta = state.get("val_fbeta")
            self.history = list(state.get("history", []))
            self.precision_used = str(state.get("precision_used", ""))
            self.model, self._fused = self._network(), None
            self.model.load_state_dict(weights)
        except (OSError, ValueError, RuntimeError, KeyError, TypeError, AttributeError) as exc:
            raise state_error(self.name, exc, d) from None
        self.model.eval()
