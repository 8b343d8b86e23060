"""Binning, normalisation and the patch dataset (alignment under augmentation)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cryobench.errors import ConfigError  # noqa: E402
from cryobench.methods.engine.data import (  # noqa: E402
    PatchDataset,
    PreparedRun,
    downsample,
    normalise,
    prepare_run,
)
from cryobench.testing.fakes import make_fake_runs  # noqa: E402


def test_downsample_keeps_voxel_centres():
    # f(z, y, x) = z + 10 y + 100 x is linear, so the [1, 2, 1]/4 filter leaves it unchanged
    # inside: binned voxel i must hold the value at level-0 voxel 2 i (not 2 i + 0.5).
    z, y, x = np.meshgrid(np.arange(12), np.arange(10), np.arange(8), indexing="ij")
    vol = (z + 10 * y + 100 * x).astype(np.float32)
    out = downsample(vol, 2)
    assert out.shape == (6, 5, 4)
    zi, yi, xi = np.meshgrid(np.arange(1, 6), np.arange(1, 5), np.arange(1, 4), indexing="ij")
    np.testing.assert_allclose(out[1:, 1:, 1:], 2 * zi + 20 * yi + 200 * xi, atol=1e-4)
    assert downsample(vol, 4).shape == (3, 3, 2)
    assert downsample(vol, 1) is not None and downsample(vol, 1).shape == vol.shape
    with pytest.raises(ConfigError):
        downsample(vol, 3)


def test_normalise():
    v = np.random.default_rng(0).normal(5, 3, size=(20, 20, 20)).astype(np.float32)
    n = normalise(v)
    assert abs(float(n.mean())) < 1e-3 and float(n.std()) == pytest.approx(1, abs=1e-3)


def test_prepare_run_spacing_and_centres():
    run = make_fake_runs(1, shape=(32, 48, 48), per_class=2, seed=3)[0]
    prep = prepare_run(run, 2, ["apo-ferritin", "ribosome"])
    assert prep.volume.shape == (16, 24, 24)
    assert prep.spacing == 2 * run.voxel_spacing
    truth = run.picks()
    np.testing.assert_allclose(prep.centres[:, ::-1] * prep.spacing,
                               truth[["x", "y", "z"]].to_numpy())
    assert set(prep.labels) == {1, 2}


def _marker_run(centre, shape=(24, 24, 24)):
    vol = np.zeros(shape, dtype=np.float32)
    vol[tuple(centre)] = 1.0
    return PreparedRun("m", vol, 10.0, np.asarray([centre], dtype=float), np.array([1]))


def test_points_target_follows_augmentation():
    run = _marker_run((11, 9, 13))
    ds = PatchDataset([run], 12, 64, kind="points", pos_fraction=1.0, seed=5, augment=True)
    seen_inside = 0
    for i in range(len(ds)):
        x, y = ds[i]
        x = x[0].numpy()
        if y[0] == 1:
            seen_inside += 1
            where = np.unravel_index(np.argmax(x), x.shape)
            np.testing.assert_allclose(y[1:].numpy() * 11, where, atol=1e-5)
        else:
            assert x.max() < 1.0  # the marker is not in the patch
    assert seen_inside > 20


def test_labels_follow_augmentation_and_reproducible():
    run = _marker_run((12, 12, 12))
    target = (run.volume * 3).astype(np.uint8)
    ds = PatchDataset([run], 10, 16, targets=[target], pos_fraction=1.0, seed=1)
    for i in range(len(ds)):
        x, y = ds[i]
        np.testing.assert_array_equal((x[0].numpy() * 3).astype(np.int64), y.numpy())
    a = ds[3]
    b = ds[3]
    assert torch.equal(a[0], b[0])
    ds.set_epoch(1)
    assert not torch.equal(ds[3][0], a[0]) or not torch.equal(ds[4][0], b[0])


def test_positive_labels_restrict_positive_patches():
    vol = np.zeros((40, 40, 40), dtype=np.float32)
    run = PreparedRun("m", vol, 10.0, np.array([[5.0, 5, 5], [34.0, 34, 34]]), np.array([1, 2]))
    ds = PatchDataset([run], 8, 30, targets=[np.zeros_like(vol, np.uint8)], pos_fraction=1.0,
                      augment=False, positive_labels=[2])
    # every patch is centred near the label-2 particle (jitter <= 2 voxels), in the bright corner
    run.volume[30:40, 30:40, 30:40] = 1.0
    assert all(float(ds[i][0].mean()) > 0.2 for i in range(len(ds)))
