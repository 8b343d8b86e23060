"""The CenterNet-style slice network and its loss (torch; torchvision imported inside).

Network (:func:`build_centernet`): a torchvision ResNet with random initialisation
(``weights=None``) and a one-channel stem, its stages C2-C4 (strides 4, 8, 16; C5 is not
computed) merged top-down into one stride-4 map by torchvision's ``FeaturePyramidNetwork``, and
four heads: the per-class heatmap (logits; bias -2.19 so it starts at probability 0.1, as in
CenterNet), box width/height and sub-cell offset (two channels each, in cells), and an image
level presence logit (global average of C4 -> linear): does the slice hold any object (for the
motor task, a motor)?

Loss (:func:`centernet_loss`): CenterNet's penalty-reduced focal loss on the heatmap
(:func:`penalty_reduced_focal_loss`, ``alpha`` 2, ``beta`` 4), L1 on size and offset at the
centre cells (:func:`masked_l1`), optionally the GIoU loss (``torchvision.ops``) of the decoded
box at each centre cell against its target box, and the presence BCE.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from cryobench.errors import ConfigError

__all__ = ["BACKBONES", "CenterNetNet", "build_centernet", "LossWeights",
           "penalty_reduced_focal_loss", "masked_l1", "centre_giou_loss", "centernet_loss"]

BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet101")
"""torchvision ResNets the network can use (random init)."""

HEAT_BIAS = -2.19
"""Initial heatmap bias: ``-log((1 - 0.1) / 0.1)``, a prior probability of 0.1 (CenterNet)."""


def _head(in_channels: int, mid: int, out: int, bias: float = 0.0) -> nn.Sequential:
    head = nn.Sequential(nn.Conv2d(in_channels, mid, 3, padding=1), nn.ReLU(inplace=True),
                         nn.Conv2d(mid, out, 1))
    nn.init.constant_(head[-1].bias, bias)
    return head


class CenterNetNet(nn.Module):
    """ResNet C2-C4 + FPN neck (stride 4) + heatmap / size / offset / presence heads.

    ``forward(x)`` with ``x`` ``(B, 1, H, W)`` returns ``(heat_logits (B, C, h, w),
    size (B, 2, h, w), offset (B, 2, h, w), presence_logit (B,))`` with ``h = ceil(H / 4)``.
    """

    def __init__(self, backbone: str, num_classes: int, neck_channels: int = 64,
                 head_channels: int = 64) -> None:
        super().__init__()
        if backbone not in BACKBONES:
            raise ConfigError(f"unknown backbone {backbone!r}; choose one of "
                              f"{', '.join(BACKBONES)}")
        import torchvision
        from torchvision.ops import FeaturePyramidNetwork

        net = getattr(torchvision.models, backbone)(weights=None)
        self.stem = nn.Sequential(nn.Conv2d(1, 64, 7, stride=2, padding=3, bias=False),
                                  net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2, self.layer3 = net.layer1, net.layer2, net.layer3
        e = type(net.layer1[0]).expansion
        c4 = 256 * e
        self.neck = FeaturePyramidNetwork([64 * e, 128 * e, c4], neck_channels)
        self.heat = _head(neck_channels, head_channels, num_classes, HEAT_BIAS)
        self.size = _head(neck_channels, head_channels, 2)
        self.offset = _head(neck_channels, head_channels, 2)
        self.presence = nn.Linear(c4, 1)

    def forward(self, x: torch.Tensor):
        c2 = self.layer1(self.stem(x))
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        p2 = self.neck(OrderedDict([("c2", c2), ("c3", c3), ("c4", c4)]))["c2"]
        presence = self.presence(torch.flatten(F.adaptive_avg_pool2d(c4, 1), 1))[:, 0]
        return self.heat(p2), self.size(p2), self.offset(p2), presence


def build_centernet(backbone: str, num_classes: int, neck_channels: int = 64,
                    head_channels: int = 64) -> CenterNetNet:
    """A randomly initialised :class:`CenterNetNet` (no download, ever)."""
    return CenterNetNet(backbone, num_classes, neck_channels, head_channels)


@dataclass
class LossWeights:
    """Weights and parameters of :func:`centernet_loss` (CenterNet: size 0.1, offset 1)."""

    alpha: float = 2.0
    beta: float = 4.0
    size: float = 0.1
    offset: float = 1.0
    giou: float = 1.0
    """0 switches the GIoU term off (plain focal + L1)."""
    presence: float = 0.5


def penalty_reduced_focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0,
                               beta: float = 4.0) -> torch.Tensor:
    """CenterNet's heatmap focal loss, summed and divided by the number of centres (min 1).

    At centres (``target == 1``): ``-(1 - p)^alpha log p``; elsewhere
    ``-(1 - target)^beta p^alpha log(1 - p)``: negatives near a centre are penalised less.
    ``log p`` and ``log(1 - p)`` are computed as log-sigmoids of the logits (stable).
    """
    p = torch.sigmoid(logits)
    pos = target.eq(1).float()
    neg = 1.0 - pos
    pos_term = (1 - p).pow(alpha) * F.logsigmoid(logits) * pos
    neg_term = (1 - target).pow(beta) * p.pow(alpha) * F.logsigmoid(-logits) * neg
    n = pos.sum().clamp(min=1.0)
    return -(pos_term.sum() + neg_term.sum()) / n


def masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L1 at the masked cells, divided by the number of masked values (CenterNet's RegL1Loss).

    ``pred``/``target`` ``(B, 2, h, w)``, ``mask`` ``(B, 1, h, w)``.
    """
    m = mask.expand_as(pred)
    return (torch.abs(pred - target) * m).sum() / (m.sum() + 1e-4)


def _centre_boxes(size: torch.Tensor, offset: torch.Tensor, idx: tuple[torch.Tensor, ...]
                  ) -> torch.Tensor:
    b, y, x = idx
    cx = x.to(size.dtype) + offset[b, 0, y, x]
    cy = y.to(size.dtype) + offset[b, 1, y, x]
    w = size[b, 0, y, x].clamp(min=1e-3)
    h = size[b, 1, y, x].clamp(min=1e-3)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=1)


def centre_giou_loss(size: torch.Tensor, offset: torch.Tensor, size_t: torch.Tensor,
                     offset_t: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean GIoU loss (``torchvision.ops.generalized_box_iou_loss``) of the predicted box at
    each centre cell against its target box (both in cells); 0 without centres."""
    from torchvision.ops import generalized_box_iou_loss

    b, _, y, x = torch.nonzero(mask > 0, as_tuple=True)
    if b.numel() == 0:
        return size.sum() * 0.0
    idx = (b, y, x)
    return generalized_box_iou_loss(_centre_boxes(size, offset, idx),
                                    _centre_boxes(size_t, offset_t, idx), reduction="mean")


def centernet_loss(out: tuple[torch.Tensor, ...], targets: tuple[torch.Tensor, ...],
                   w: LossWeights) -> torch.Tensor:
    """The total loss of one batch.

    ``out``: :class:`CenterNetNet` outputs; ``targets``: ``(heatmap, size, offset, mask,
    presence)`` batched from :class:`~cryobench.methods.slices.keypoints.KeypointTargets` and a
    ``(B,)`` float 0/1 presence.
    """
    heat, size, offset, presence = out
    heat_t, size_t, offset_t, mask, presence_t = targets
    loss = penalty_reduced_focal_loss(heat, heat_t, w.alpha, w.beta)
    loss = loss + w.size * masked_l1(size, size_t, mask) + w.offset * masked_l1(offset,
                                                                                 offset_t, mask)
    if w.giou:
        loss = loss + w.giou * centre_giou_loss(size, offset, size_t, offset_t, mask)
    if w.presence:
        loss = loss + w.presence * F.binary_cross_entropy_with_logits(presence, presence_t)
    return loss
