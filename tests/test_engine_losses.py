"""Losses on hand-computed examples."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from cryobench.methods.engine.losses import (  # noqa: E402
    bce_loss,
    dice_loss,
    focal_loss,
    tversky_loss,
    weighted_ce_loss,
)


def logit(p):
    p = torch.as_tensor(p, dtype=torch.float32)
    return torch.log(p / (1 - p))


def binary(p, t):
    """(1, 1, n, 1, 1) logits and float target from lists."""
    x = logit(p).reshape(1, 1, -1, 1, 1)
    y = torch.tensor(t, dtype=torch.float32).reshape(1, 1, -1, 1, 1)
    return x, y


def test_tversky_hand_example():
    x, y = binary([0.8, 0.2, 0.6, 0.1], [1, 0, 1, 1])
    # tp = 0.8 + 0.6 + 0.1 = 1.5; fp = 0.2; fn = 0.2 + 0.4 + 0.9 = 1.5
    expected = 1 - 1.5 / (1.5 + 0.3 * 0.2 + 0.7 * 1.5)
    got = tversky_loss(x, y, alpha=0.3, beta=0.7, smooth=0.0)
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_dice_is_tversky_half_half_and_bounds():
    x, y = binary([0.8, 0.2, 0.6, 0.1], [1, 0, 1, 1])
    expected = 1 - 2 * 1.5 / (2 * 1.5 + 0.2 + 1.5)
    assert float(dice_loss(x, y, smooth=0.0)) == pytest.approx(expected, rel=1e-5)
    perfect = torch.tensor([20.0, -20.0, 20.0]).reshape(1, 1, 3, 1, 1)
    target = torch.tensor([1.0, 0.0, 1.0]).reshape(1, 1, 3, 1, 1)
    assert float(dice_loss(perfect, target, smooth=0.0)) == pytest.approx(0.0, abs=1e-6)
    assert float(dice_loss(-perfect, target, smooth=0.0)) == pytest.approx(1.0, abs=1e-6)


def test_multiclass_tversky_class_weights():
    # Two classes, softmax; class 1 perfectly predicted, class 0 too: weights cannot matter.
    labels = torch.tensor([[0, 1, 1, 0]]).reshape(1, 4, 1, 1)
    logits = torch.stack([(labels == 0).float() * 30, (labels == 1).float() * 30], dim=1)
    assert float(tversky_loss(logits, labels, class_weights=[1, 5], smooth=0)) < 1e-6
    # Uniform probabilities: per-class index = 1 (tp) ... compute by hand for class weights.
    flat = torch.zeros(1, 2, 4, 1, 1)
    # class 0: tp = 1, fp = 1, fn = 1 -> index 1 / (1 + .5 + .5) = .5; class 1 the same.
    assert float(tversky_loss(flat, labels, class_weights=[1, 3], smooth=0)) == pytest.approx(0.5)


def test_bce_positive_weight():
    x = torch.zeros(1, 1, 2, 1, 1)
    y = torch.tensor([1.0, 0.0]).reshape(1, 1, 2, 1, 1)
    # mean of 5 * log 2 (positive) and log 2 (negative)
    assert float(bce_loss(x, y, pos_weight=5.0)) == pytest.approx(3 * math.log(2), rel=1e-6)


def test_focal_reduces_to_ce_and_downweights_easy_examples():
    logits = torch.tensor([[2.0, 0.5, -1.0]]).reshape(1, 3, 1, 1, 1)
    labels = torch.tensor([0]).reshape(1, 1, 1, 1)
    ce = torch.nn.functional.cross_entropy(logits, labels)
    assert float(focal_loss(logits, labels, gamma=0.0)) == pytest.approx(float(ce), rel=1e-6)
    p = torch.softmax(logits, 1)[0, 0, 0, 0, 0]
    expected = -((1 - p) ** 2) * torch.log(p)
    assert float(focal_loss(logits, labels, gamma=2.0)) == pytest.approx(float(expected))
    # binary: p_t = 0.9 -> -(0.1)^2 log 0.9
    x, y = binary([0.9], [1])
    want = -(0.1 ** 2) * math.log(0.9)
    assert float(focal_loss(x, y, gamma=2.0)) == pytest.approx(want, rel=1e-4)


def test_weighted_ce_matches_definition():
    logits = torch.tensor([[1.0, 0.0], [0.0, 2.0]]).T.reshape(1, 2, 2, 1, 1)  # two voxels
    labels = torch.tensor([0, 0]).reshape(1, 2, 1, 1)
    lp = torch.log_softmax(logits, 1)[0, 0, :, 0, 0]
    # both voxels are class 0 (weight 3): the weighted mean equals the plain mean
    expected = -(lp[0] + lp[1]) / 2
    got = weighted_ce_loss(logits, labels, class_weights=[3.0, 1.0])
    assert float(got) == pytest.approx(float(expected), rel=1e-6)
    labels2 = torch.tensor([0, 1]).reshape(1, 2, 1, 1)
    lp1 = torch.log_softmax(logits, 1)[0, 1, 1, 0, 0]
    expected2 = -(3 * lp[0] + 1 * lp1) / 4
    got2 = weighted_ce_loss(logits, labels2, class_weights=[3.0, 1.0])
    assert float(got2) == pytest.approx(float(expected2), rel=1e-6)


def test_wrong_number_of_class_weights():
    logits = torch.zeros(1, 3, 2, 2, 2)
    labels = torch.zeros(1, 2, 2, 2, dtype=torch.long)
    with pytest.raises(ValueError):
        tversky_loss(logits, labels, class_weights=[1.0, 2.0])
