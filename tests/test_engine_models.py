"""Shapes and sizes of the engine's networks."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from cryobench.methods.engine.models import (  # noqa: E402
    CNNRegressor3D,
    UNet3D,
    VNet3D,
    count_parameters,
    fuse_batchnorm,
)


@pytest.mark.parametrize("shape", [(16, 16, 16), (12, 20, 18)])
def test_unet_maps_input_to_same_size(shape):
    net = UNet3D(1, 3, channels=(4, 8, 16)).eval()
    out = net(torch.zeros(2, 1, *shape))
    assert out.shape == (2, 3, *shape)


def test_residual_unet_and_leaky_relu():
    net = UNet3D(1, 7, channels=(6, 8, 10), act="leakyrelu", residual=True).eval()
    assert net(torch.randn(1, 1, 8, 8, 8)).shape == (1, 7, 8, 8, 8)


@pytest.mark.parametrize("shape", [(16, 16, 16), (10, 17, 9)])
def test_vnet_maps_input_to_same_size(shape):
    net = VNet3D(1, 1, channels=(4, 8, 8, 16)).eval()
    assert net(torch.randn(1, 1, *shape)).shape == (1, 1, *shape)


def test_cnn_regressor_outputs_four_values():
    net = CNNRegressor3D(1, channels=(4, 8, 8, 8), hidden=16).eval()
    assert net(torch.randn(3, 1, 16, 16, 16)).shape == (3, 4)


def test_recipe_sizes():
    # The seed recipes: a two-level 32-64 U-Net with a 128 bottleneck is far smaller than
    # MONAI's 45 M-parameter VNet; the small V-Net is tiny.
    assert 0.5e6 < count_parameters(UNet3D(1, 1, (32, 64, 128))) < 2e6
    assert count_parameters(VNet3D(1, 1, (8, 16, 32, 64))) < 1e6
    assert count_parameters(UNet3D(1, 7, (48, 64, 80), residual=True)) < 2e6


def test_bad_architecture_is_rejected():
    with pytest.raises(ValueError):
        UNet3D(1, 1, channels=(8,))
    with pytest.raises(ValueError):
        UNet3D(1, 1, channels=(8, 16), norm="nope")


def test_fused_batchnorm_matches_eval_model():
    torch.manual_seed(0)
    for net in (UNet3D(1, 3, (4, 8)), CNNRegressor3D(1, (4, 8, 8, 8), hidden=8)):
        net.train()
        for _ in range(3):  # non-trivial running statistics
            net(torch.randn(2, 1, 16, 16, 16) * 3 + 1)
        net.eval()
        x = torch.randn(1, 1, 16, 16, 16)
        fused = fuse_batchnorm(net)
        assert not any(isinstance(m, torch.nn.BatchNorm3d) for m in fused.modules())
        assert any(isinstance(m, torch.nn.BatchNorm3d) for m in net.modules())  # untouched
        with torch.no_grad():
            torch.testing.assert_close(fused(x), net(x), atol=1e-5, rtol=1e-4)
