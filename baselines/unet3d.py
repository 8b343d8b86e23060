"""``unet3d``: a multi-class 3D U-Net on sphere targets with heavy positive weighting and
local-maximum picking - the common core of the top CZII solutions, and the default method.
"""

from __future__ import annotations

from dataclasses import dataclass

from baselines._budgets import SMOKE
from cryobench.methods.config_checks import Rule, number
from cryobench.methods.engine.segmentation import SegmentationConfig, SegmentationMethod

__all__ = ["UNet3D"]


@dataclass
class UNet3DConfig(SegmentationConfig):
    """``cpu`` budget: 20 Å working resolution, a 16-32-64 U-Net, 500 steps."""

    epochs: int = 20

    pos_weight: float = 32.0
    """Cross-entropy weight of every particle class (background: 1)."""
    dice_weight: float = 1.0
    """Weight of the soft Dice term over the particle classes."""

    def rules(self) -> dict[str, Rule]:
        return {**super().rules(), "pos_weight": number(0, 1e6, lo_open=True),
                "dice_weight": number(0, 1e3)}


class UNet3D(SegmentationMethod):
    name = "unet3d"
    description = ("multi-class 3D U-Net, sphere targets with heavy positive weighting, "
                   "local-maximum picking (default)")
    tasks = ("particles",)
    Config = UNet3DConfig
    multiclass = True
    budgets = {
        "smoke": {**SMOKE, "channels": (4, 8)},
        "cpu": {},
        "full": {"bin": 1, "channels": (32, 64, 128, 256), "patch_size": 96, "batch_size": 8,
                 "epochs": 60, "steps_per_epoch": 100, "lr": 1e-3, "patience": 15,
                 "val_patches": 32, "roi_size": 128, "sw_batch_size": 8, "threads": 0},
    }

    def build_network(self, out_channels: int):
        from cryobench.methods.engine.models import UNet3D as Net

        return Net(1, out_channels, self.config.channels, norm="batch", act="relu")

    def loss(self, logits, target):
        from cryobench.methods.engine.losses import dice_loss, weighted_ce_loss

        k = logits.shape[1]
        weights = [1.0] + [self.config.pos_weight] * (k - 1)
        loss = weighted_ce_loss(logits, target, class_weights=weights)
        if self.config.dice_weight:
            loss = loss + self.config.dice_weight * dice_loss(
                logits, target, class_weights=[0.0] + [1.0] * (k - 1))
        return loss
