"""Segmentation and detection losses (all return a scalar tensor, mean over the batch).

Conventions: ``logits`` are ``(B, C, ...)``; multi-class targets are integer labels ``(B, ...)``
(0 = background); binary targets are float ``(B, 1, ...)`` or the same shape as ``logits``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = [
    "dice_loss",
    "tversky_loss",
    "bce_loss",
    "focal_loss",
    "weighted_ce_loss",
    "one_hot",
]


def one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """``(B, ...)`` integer labels -> ``(B, C, ...)`` float one-hot."""
    oh = F.one_hot(labels.long(), num_classes)  # (B, ..., C)
    return oh.movedim(-1, 1).to(torch.float32)


def _probs_and_target(logits: torch.Tensor, target: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax + one-hot for integer targets, sigmoid for float (binary) targets."""
    if target.dtype in (torch.int64, torch.int32, torch.uint8, torch.int16):
        return logits.float().softmax(1), one_hot(target, logits.shape[1])
    return logits.float().sigmoid(), target.float().expand_as(logits)


def _class_weights(weights: Sequence[float] | torch.Tensor | None, n: int,
                   like: torch.Tensor) -> torch.Tensor:
    if weights is None:
        return torch.ones(n, dtype=torch.float32, device=like.device)
    w = torch.as_tensor(weights, dtype=torch.float32, device=like.device)
    if w.numel() != n:
        raise ValueError(f"expected {n} class weights, got {w.numel()}")
    return w


def tversky_loss(logits: torch.Tensor, target: torch.Tensor, *, alpha: float = 0.5,
                 beta: float = 0.5, class_weights: Sequence[float] | None = None,
                 smooth: float = 1.0) -> torch.Tensor:
    """Tversky loss ``1 - TP / (TP + alpha FP + beta FN)`` per class, weighted mean over classes.

    Sums run over the whole batch. ``alpha = beta = 0.5`` is the Dice loss; ``beta > alpha``
    penalises missed voxels more. Integer targets use softmax, float targets sigmoid.
    """
    probs, onehot = _probs_and_target(logits, target)
    dims = [0] + list(range(2, probs.ndim))
    tp = (probs * onehot).sum(dims)
    fp = (probs * (1 - onehot)).sum(dims)
    fn = ((1 - probs) * onehot).sum(dims)
    index = (tp + smooth) / (tp + alpha * fp + beta * fn + smooth)
    w = _class_weights(class_weights, probs.shape[1], probs)
    return ((1 - index) * w).sum() / w.sum().clamp_min(1e-12)


def dice_loss(logits: torch.Tensor, target: torch.Tensor, *,
              class_weights: Sequence[float] | None = None, smooth: float = 1.0) -> torch.Tensor:
    """Soft Dice loss (batch-global), weighted mean over classes; see :func:`tversky_loss`."""
    return tversky_loss(logits, target, alpha=0.5, beta=0.5, class_weights=class_weights,
                        smooth=smooth)


def bce_loss(logits: torch.Tensor, target: torch.Tensor, *, pos_weight: float = 1.0
             ) -> torch.Tensor:
    """Binary cross-entropy on logits; positives weighted by ``pos_weight``."""
    pw = torch.tensor(float(pos_weight), dtype=torch.float32, device=logits.device)
    return F.binary_cross_entropy_with_logits(logits.float(), target.float().expand_as(logits),
                                              pos_weight=pw)


def focal_loss(logits: torch.Tensor, target: torch.Tensor, *, gamma: float = 2.0,
               class_weights: Sequence[float] | None = None) -> torch.Tensor:
    """Focal loss ``-w_c (1 - p_t)^gamma log p_t`` (mean over voxels).

    Integer targets: softmax over classes (``class_weights`` per class). Float targets: binary
    sigmoid focal loss (``class_weights`` is ``[w_negative, w_positive]``).
    """
    if target.dtype in (torch.int64, torch.int32, torch.uint8, torch.int16):
        logp = F.log_softmax(logits.float(), 1)
        logp_t = logp.gather(1, target.long().unsqueeze(1)).squeeze(1)
        w = _class_weights(class_weights, logits.shape[1], logits)[target.long()]
    else:
        t = target.float().expand_as(logits)
        x = logits.float()
        logp_t = -F.binary_cross_entropy_with_logits(x, t, reduction="none")
        wn, wp = (1.0, 1.0) if class_weights is None else map(float, class_weights)
        w = t * wp + (1 - t) * wn
    pt = logp_t.exp()
    return (-w * (1 - pt) ** gamma * logp_t).mean()


def weighted_ce_loss(logits: torch.Tensor, target: torch.Tensor, *,
                     class_weights: Sequence[float] | None = None) -> torch.Tensor:
    """Cross-entropy over classes with per-class weights (weighted mean, as in torch)."""
    w = None if class_weights is None else _class_weights(class_weights, logits.shape[1], logits)
    return F.cross_entropy(logits.float(), target.long(), weight=w)
