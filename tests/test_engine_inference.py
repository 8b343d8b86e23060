"""Sliding-window inference against direct inference."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from cryobench.methods.engine.inference import (  # noqa: E402
    direct_predict,
    sliding_window_predict,
)
from cryobench.methods.engine.models import UNet3D  # noqa: E402


@pytest.fixture(scope="module")
def unet():
    torch.manual_seed(0)
    return UNet3D(1, 3, channels=(4, 8)).eval()


def test_one_window_equals_direct(unet):
    vol = np.random.default_rng(0).normal(size=(16, 16, 16)).astype(np.float32)
    sw = sliding_window_predict(unet, vol, 16, overlap=0.25, activation="softmax")
    direct = direct_predict(unet, vol, activation="softmax")
    assert sw.shape == (3, 16, 16, 16)
    np.testing.assert_allclose(sw, direct, atol=1e-5)
    np.testing.assert_allclose(sw.sum(0), 1.0, atol=1e-5)


def test_pointwise_model_is_exact_over_many_windows():
    # A 1x1x1 convolution has no context: blending overlapping windows must reproduce it.
    torch.manual_seed(1)
    conv = torch.nn.Conv3d(1, 2, 1).eval()
    vol = np.random.default_rng(1).normal(size=(19, 33, 26)).astype(np.float32)
    sw = sliding_window_predict(conv, vol, (8, 12, 10), overlap=0.5, sw_batch_size=3,
                                activation="sigmoid")
    direct = direct_predict(conv, vol, activation="sigmoid")
    assert sw.shape == (2, 19, 33, 26)
    np.testing.assert_allclose(sw, direct, atol=1e-5)


def test_volume_smaller_than_window_and_channels_first(unet):
    vol = np.random.default_rng(2).normal(size=(1, 6, 20, 9)).astype(np.float32)
    out = sliding_window_predict(unet, vol, 16, activation=None)
    assert out.shape == (3, 6, 20, 9)


def test_bad_activation(unet):
    with pytest.raises(ValueError):
        sliding_window_predict(unet, np.zeros((8, 8, 8), np.float32), 8, activation="relu6")


def test_channels_last_and_bf16_match_fp32(unet):
    vol = np.random.default_rng(3).normal(size=(20, 24, 24)).astype(np.float32)
    ref = sliding_window_predict(unet, vol, 16, activation="softmax")
    cl = sliding_window_predict(unet, vol, 16, activation="softmax", channels_last=True)
    np.testing.assert_allclose(cl, ref, atol=1e-5)
    bf = sliding_window_predict(unet, vol, 16, activation="softmax", precision="bf16")
    np.testing.assert_allclose(bf, ref, atol=0.05)


def test_fit_roi_shrinks_thin_axes():
    from cryobench.methods.engine.inference import fit_roi

    assert fit_roi((92, 315, 315), 128, 4) == [92, 128, 128]
    assert fit_roi((1, 90, 31, 200), 64, 8) == [64, 32, 64]
    assert fit_roi((10, 10, 10), (4, 16, 8)) == [4, 10, 8]
