"""``deepfindet``: one multi-class residual 3D U-Net (DeepFindET).

Source recipe: filters 48-64-80, BatchNorm, LeakyReLU, softmax over the classes
plus background, Tversky loss with class weights, 72^3 patches in the full budget.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from baselines._budgets import SMOKE
from cryobench.methods.config_checks import Rule, number
from cryobench.methods.engine.segmentation import SegmentationConfig, SegmentationMethod

__all__ = ["DeepFindET"]


@dataclass
class DeepFindETConfig(SegmentationConfig):
    """``cpu`` budget: a half-width 24-32-40 network at 20 Å."""

    channels: tuple[int, ...] = (24, 32, 40)
    epochs: int = 8
    loss: Literal["tversky", "dice", "bce", "focal"] = "tversky"
    """Main segmentation loss (the recipe: Tversky). ``dice`` is Tversky with alpha = beta =
    0.5; ``bce`` is per-class sigmoid BCE on one-hot targets (particle classes weighted by
    ``ce_pos_weight``); ``focal`` is softmax focal loss (gamma 2). All use the class weights
    below; the loss ablation (leaderboards/ablations/loss.toml) varies this field."""
    tversky_alpha: float = 0.3
    """Weight of false positives in the Tversky index."""
    tversky_beta: float = 0.7
    """Weight of false negatives in the Tversky index."""
    background_weight: float = 0.1
    """Class weight of the background in the Tversky loss (particle classes: 1)."""
    ce_weight: float = 1.0
    """Weight of an added class-weighted cross-entropy term (0 in the full budget, the pure
    recipe). With a few hundred CPU steps, Tversky alone leaves the small classes at zero."""
    ce_pos_weight: float = 32.0
    """Cross-entropy weight of the particle classes (background: 1)."""

    def rules(self) -> dict[str, Rule]:
        return {**super().rules(), "tversky_alpha": number(0, 1), "tversky_beta": number(0, 1),
                "background_weight": number(0, 1e3), "ce_weight": number(0, 1e3),
                "ce_pos_weight": number(0, 1e6, lo_open=True)}


class DeepFindET(SegmentationMethod):
    name = "deepfindet"
    description = "multi-class residual 3D U-Net 48-64-80 (DeepFindET), Tversky loss"
    tasks = ("particles",)
    Config = DeepFindETConfig
    multiclass = True
    budgets = {
        "smoke": {**SMOKE, "channels": (4, 8)},
        "cpu": {},
        "full": {"bin": 1, "channels": (48, 64, 80), "patch_size": 72, "batch_size": 8,
                 "epochs": 60, "steps_per_epoch": 100, "lr": 1e-3, "patience": 15,
                 "val_patches": 32, "roi_size": 120, "sw_batch_size": 8, "threads": 0,
                 "ce_weight": 0.0},
    }

    def build_network(self, out_channels: int):
        from cryobench.methods.engine.models import UNet3D

        return UNet3D(1, out_channels, self.config.channels, norm="batch", act="leakyrelu",
                      residual=True)

    def loss(self, logits, target):
        from cryobench.methods.engine import losses as L

        cfg = self.config
        k = logits.shape[1]
        weights = [cfg.background_weight] + [1.0] * (k - 1)
        if cfg.loss == "tversky":
            loss = L.tversky_loss(logits, target, alpha=cfg.tversky_alpha,
                                  beta=cfg.tversky_beta, class_weights=weights)
        elif cfg.loss == "dice":
            loss = L.dice_loss(logits, target, class_weights=weights)
        elif cfg.loss == "bce":
            loss = L.bce_loss(logits, L.one_hot(target, k), pos_weight=cfg.ce_pos_weight)
        else:
            loss = L.focal_loss(logits, target, class_weights=weights)
        if cfg.ce_weight:
            ce = L.weighted_ce_loss(logits, target,
                                    class_weights=[1.0] + [cfg.ce_pos_weight] * (k - 1))
            loss = loss + cfg.ce_weight * ce
        return loss
