"""Targets on hand examples and the patch sampler's xy-only augmentation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cryobench.data.sampling import PatchSampler, augment_xy
from cryobench.data.targets import gaussian_heatmaps, slice_boxes, sphere_labels
from cryobench.particles import CZII_PARTICLES, ParticleType

APO, RIBO = CZII_PARTICLES[0], CZII_PARTICLES[3]  # radius 60 Å and 150 Å


def _picks(rows):
    return pd.DataFrame(rows, columns=["particle_type", "x", "y", "z"]).assign(experiment="r")


def _lattice_ball_count(r: float) -> int:
    n = int(np.ceil(r)) + 1
    g = np.arange(-n, n + 1)
    return int(((g[:, None, None] ** 2 + g[None, :, None] ** 2 + g[None, None, :] ** 2)
                <= r * r).sum())


def test_sphere_voxel_count_and_label():
    # apo-ferritin at voxel (10, 12, 14) (Å = index * 10): 0.5 * 60 Å = 3 voxels -> 123 voxels
    lab = sphere_labels(_picks([("apo-ferritin", 140.0, 120.0, 100.0)]), (24, 24, 24), 10.0,
                        CZII_PARTICLES)
    assert lab.dtype == np.uint8
    assert (lab == APO.label).sum() == 123 == _lattice_ball_count(3)
    assert lab[10, 12, 14] == APO.label and lab[10, 12, 18] == 0 and lab[10, 12, 17] == APO.label
    # radius_fraction 1 -> 6 voxels
    full = sphere_labels(_picks([("apo-ferritin", 140.0, 120.0, 100.0)]), (24, 24, 24), 10.0,
                         CZII_PARTICLES, radius_fraction=1.0)
    assert (full > 0).sum() == _lattice_ball_count(6)


def test_sphere_fractional_centre_matches_brute_force():
    picks = _picks([("ribosome", 103.0, 77.0, 51.0), ("apo-ferritin", 10.0, 200.0, 5.0)])
    shape = (16, 30, 20)
    lab = sphere_labels(picks, shape, 10.0, CZII_PARTICLES, radius_fraction=0.6)
    z, y, x = np.indices(shape)
    ribo = (z - 5.1) ** 2 + (y - 7.7) ** 2 + (x - 10.3) ** 2 <= (0.6 * 15) ** 2
    apo = (z - 0.5) ** 2 + (y - 20.0) ** 2 + (x - 1.0) ** 2 <= (0.6 * 6) ** 2  # clipped at edge
    want = np.where(apo, APO.label, np.where(ribo, RIBO.label, 0))
    np.testing.assert_array_equal(lab, want)


def test_sphere_overlap_smaller_wins_and_unknown_ignored():
    picks = _picks([("apo-ferritin", 100.0, 100.0, 100.0), ("ribosome", 110.0, 100.0, 100.0),
                    ("proteasome", 50.0, 50.0, 50.0)])
    lab = sphere_labels(picks, (20, 20, 20), 10.0, CZII_PARTICLES)
    assert lab[10, 10, 10] == APO.label and lab[10, 10, 15] == RIBO.label


def test_sphere_origin_shifts_the_frame():
    picks = _picks([("ribosome", 300.0, 250.0, 200.0)])
    full = sphere_labels(picks, (40, 40, 40), 10.0, CZII_PARTICLES)
    crop = sphere_labels(picks, (10, 12, 14), 10.0, CZII_PARTICLES, origin=(15, 20, 25))
    np.testing.assert_array_equal(crop, full[15:25, 20:32, 25:39])


def test_gaussian_heatmaps():
    picks = _picks([("ribosome", 200.0, 200.0, 200.0)])
    hm = gaussian_heatmaps(picks, (40, 40, 40), 10.0, CZII_PARTICLES, sigma_fraction=0.2)
    assert hm.shape == (6, 40, 40, 40) and hm.dtype == np.float32
    sigma = 0.2 * 150 / 10  # 3 voxels
    assert hm[3, 20, 20, 20] == pytest.approx(1.0)
    assert hm[3, 20, 20, 23] == pytest.approx(np.exp(-0.5), rel=1e-5)
    assert hm[3, 20, 20, 20 + int(3 * sigma) + 1] == 0.0  # truncated at 3 sigma
    assert hm[[0, 1, 2, 4, 5]].max() == 0.0
    two = gaussian_heatmaps(_picks([("ribosome", 200.0, 200.0, 200.0),
                                    ("ribosome", 220.0, 200.0, 200.0)]),
                            (40, 40, 40), 10.0, CZII_PARTICLES, sigma_fraction=0.2)
    assert two[3].max() == pytest.approx(1.0)  # combined by maximum, not summed


def test_slice_boxes_cross_section():
    picks = _picks([("ribosome", 300.0, 200.0, 500.0)])  # centre voxel z=50, y=20, x=30
    at = slice_boxes(picks, 50, 10.0, CZII_PARTICLES)
    assert list(at.columns) == ["label", "particle_type", "x0", "y0", "x1", "y1"]
    row = at.iloc[0]
    assert (row.label, row.particle_type) == (RIBO.label, "ribosome")
    np.testing.assert_allclose([row.x0, row.y0, row.x1, row.y1], [15, 5, 45, 35])
    off = slice_boxes(picks, 59, 10.0, CZII_PARTICLES).iloc[0]  # dz 90 Å -> r' = 120 Å
    np.testing.assert_allclose([off.x1 - off.x0, off.y1 - off.y0], [24, 24])
    assert len(slice_boxes(picks, 65, 10.0, CZII_PARTICLES)) == 0  # dz = r
    # min_fraction: dz 145 Å leaves a 38 Å disc, under 0.3 * 150 = 45 Å
    assert len(slice_boxes(picks, 35.5, 10.0, CZII_PARTICLES, min_fraction=0.3)) == 0
    assert len(slice_boxes(picks, 35.5, 10.0, CZII_PARTICLES, min_fraction=0.2)) == 1
    clipped = slice_boxes(picks, 50, 10.0, CZII_PARTICLES, shape=(30, 40)).iloc[0]
    np.testing.assert_allclose([clipped.x1, clipped.y1], [39.5, 29.5])
    assert len(slice_boxes(_picks([("ribosome", 2000.0, 200.0, 500.0)]), 50, 10.0,
                           CZII_PARTICLES, shape=(30, 40))) == 0


class FakeRun:
    """A RunLike backed by an in-memory array."""

    def __init__(self, name, volume, picks, spacing=10.0, particles=CZII_PARTICLES):
        self.name, self._vol, self._picks = name, volume, picks
        self.voxel_spacing, self.particles, self.shape = spacing, particles, volume.shape

    def tomogram(self, level=0, crop=None):
        return self._vol if crop is None else self._vol[crop]

    def picks(self):
        return self._picks


def _labelled_run(seed=0, shape=(20, 48, 48)):
    rng = np.random.default_rng(seed)
    n = 12
    picks = _picks([(CZII_PARTICLES[i % 6].name, *(rng.uniform(0, s * 10) for s in shape[::-1]))
                    for i in range(n)])
    lab = sphere_labels(picks, shape, 10.0, CZII_PARTICLES)
    # image = label volume + a z ramp: z must survive augmentation untouched
    z = np.arange(shape[0], dtype=np.float32)[:, None, None]
    vol = (lab.astype(np.float32) * 1000 + z + np.zeros(shape, np.float32)).astype(np.float32)
    return FakeRun("r", vol, picks)


def test_sampler_targets_follow_image_through_xy_augmentation():
    run = _labelled_run()
    sampler = PatchSampler([run], (8, 16, 16), pos_fraction=0.7, rng=np.random.default_rng(3),
                           targets=("labels", "heatmaps"))
    seen = set()
    for _ in range(40):
        p = sampler.sample()
        seen.add(p.augment)
        np.testing.assert_array_equal(np.floor(p.image / 1000).astype(np.uint8), p.labels)
        # z is never flipped or moved: the ramp is intact along axis 0
        ramp = p.image % 1000
        oz = p.origin[0]
        want = np.arange(oz, oz + 8, dtype=np.float32)
        inside = (want >= 0) & (want < run.shape[0])
        np.testing.assert_array_equal(ramp[:, 0, 0][inside], want[inside])
        assert p.heatmaps.shape == (6, 8, 16, 16)
        # heatmap peaks sit inside label spheres of the same class
        for c, part in enumerate(CZII_PARTICLES):
            peak = p.heatmaps[c] > 0.99
            if peak.any():
                assert (p.labels[peak] == part.label).all()
    assert len({a[0] for a in seen}) == 4 and len(seen) > 6  # rot90 k and flips all occur


def test_sampler_positive_fraction_and_determinism():
    run = _labelled_run(1, shape=(24, 64, 64))
    pos = PatchSampler([run], 8, pos_fraction=1.0, rng=np.random.default_rng(0), augment=False)
    assert all((pos.sample().labels > 0).any() for _ in range(20))
    a = PatchSampler([run], 8, rng=np.random.default_rng(5), targets=())
    b = PatchSampler([run], 8, rng=np.random.default_rng(5), targets=())
    for _ in range(5):
        pa, pb = a.sample(), b.sample()
        np.testing.assert_array_equal(pa.image, pb.image)
        assert pa.origin == pb.origin and pa.labels is None


def test_sampler_pads_small_volumes_and_rejects_bad_args():
    run = _labelled_run(2, shape=(6, 10, 12))
    p = PatchSampler([run], (8, 16, 16), rng=np.random.default_rng(0), augment=False).sample()
    assert p.image.shape == (8, 16, 16) and p.labels.shape == (8, 16, 16)
    with pytest.raises(ValueError, match="unknown target"):
        PatchSampler([run], 8, targets=("boxes",))
    with pytest.raises(ValueError, match="pos_fraction"):
        PatchSampler([run], 8, pos_fraction=2)


def test_augment_xy_is_a_symmetry_of_the_plane():
    a = np.arange(2 * 3 * 3).reshape(2, 3, 3)
    np.testing.assert_array_equal(augment_xy(a, 1, False, False), np.rot90(a, 1, axes=(1, 2)))
    np.testing.assert_array_equal(augment_xy(a, 0, True, True), a[:, ::-1, ::-1])
    c = np.stack([a, a + 100])  # channel axis left alone
    np.testing.assert_array_equal(augment_xy(c, 3, True, False)[1],
                                  augment_xy(a + 100, 3, True, False))


def test_particle_type_helper_consistency():
    p = ParticleType("x-y", 1, 50.0)
    lab = sphere_labels(_picks([("x-y", 50.0, 50.0, 50.0)]), (11, 11, 11), 10.0, (p,), 0.4)
    assert (lab == 1).sum() == _lattice_ball_count(2)
