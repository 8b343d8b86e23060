"""``vnet_per_particle``: one binary small V-Net per particle type, merged by a conflict rule.

Source recipe: the per-particle scheme of ``unet_per_particle`` with a small
V-Net - residual blocks, 8-16-32 channels and 64 in the bottleneck, GroupNorm, PReLU,
strided-convolution downsampling, additive skips - trained with BCE, positive weight 5.
"""

from __future__ import annotations

from dataclasses import dataclass

from baselines._budgets import PER_PARTICLE_FULL, SMOKE
from cryobench.methods.config_checks import Rule, number
from cryobench.methods.engine.segmentation import PerParticleConfig, PerParticleSegmentation

__all__ = ["VNetPerParticle"]


@dataclass
class VNetPerParticleConfig(PerParticleConfig):
    """``cpu`` budget: the recipe's 8-16-32-64 V-Net per class at 20 Å, short training."""

    channels: tuple[int, ...] = (8, 16, 32, 64)
    pos_weight: float = 5.0
    """BCE weight of positive voxels."""

    def rules(self) -> dict[str, Rule]:
        return {**super().rules(), "pos_weight": number(0, 1e6, lo_open=True)}


class VNetPerParticle(PerParticleSegmentation):
    name = "vnet_per_particle"
    description = "one binary small V-Net per particle type (BCE, pos. weight 5), merged"
    tasks = ("particles",)
    Config = VNetPerParticleConfig
    budgets = {
        "smoke": {**SMOKE, "channels": (4, 8)},
        "cpu": {},
        "full": {**PER_PARTICLE_FULL, "lr": 1e-3},
    }

    def build_network(self, out_channels: int):
        from cryobench.methods.engine.models import VNet3D

        return VNet3D(1, out_channels, self.config.channels)

    def loss(self, logits, target):
        from cryobench.methods.engine.losses import bce_loss

        return bce_loss(logits, target, pos_weight=self.config.pos_weight)
