"""``unet_per_particle``: one binary 3D U-Net per particle type, merged by a conflict rule.

Source recipe: two resolution levels of 32 and 64 channels and a 128-channel
bottleneck, BatchNorm, ReLU, Dice loss, AdamW at 1e-4; predictions merged voxel-wise -
background when every network says background, a voxel claimed by several classes goes to the
class scoring highest on training frequency and validation recall, probability breaking ties.
"""

from __future__ import annotations

from dataclasses import dataclass

from baselines._budgets import PER_PARTICLE_FULL, SMOKE
from cryobench.methods.config_checks import Rule, number
from cryobench.methods.engine.segmentation import PerParticleConfig, PerParticleSegmentation

__all__ = ["UNetPerParticle"]


@dataclass
class UNetPerParticleConfig(PerParticleConfig):
    """``cpu`` budget: a 8-16-32 U-Net per class at 20 Å, short training, lr 2e-3."""

    channels: tuple[int, ...] = (8, 16, 32)
    bce_weight: float = 1.0
    """Weight of an added BCE term (0 in the full budget, the pure Dice recipe). In a few
    hundred CPU steps Dice alone barely moves on these sparse targets."""
    bce_pos_weight: float = 5.0

    def rules(self) -> dict[str, Rule]:
        return {**super().rules(), "bce_weight": number(0, 1e3),
                "bce_pos_weight": number(0, 1e6, lo_open=True)}


class UNetPerParticle(PerParticleSegmentation):
    name = "unet_per_particle"
    description = "one binary 3D U-Net per particle type (Dice), merged by a conflict rule"
    tasks = ("particles",)
    Config = UNetPerParticleConfig
    budgets = {
        "smoke": {**SMOKE, "channels": (4, 8)},
        "cpu": {},
        "full": {**PER_PARTICLE_FULL, "channels": (32, 64, 128), "lr": 1e-4, "bce_weight": 0.0},
    }

    def build_network(self, out_channels: int):
        from cryobench.methods.engine.models import UNet3D

        return UNet3D(1, out_channels, self.config.channels, norm="batch", act="relu")

    def loss(self, logits, target):
        from cryobench.methods.engine.losses import bce_loss, dice_loss

        loss = dice_loss(logits, target)
        if self.config.bce_weight:
            loss = loss + self.config.bce_weight * bce_loss(
                logits, target, pos_weight=self.config.bce_pos_weight)
        return loss
