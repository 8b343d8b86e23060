"""The template-matching core: angular grids, templates, the local-normalised FFT search."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # the baselines extra

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from scipy import ndimage  # noqa: E402
from scipy.spatial.transform import Rotation  # noqa: E402

from cryobench.symmetry import point_group  # noqa: E402
from cryobench.template_matching.angles import (  # noqa: E402
    covering_radius,
    reduce_by_symmetry,
    rotation_angles,
    so3_grid,
)
from cryobench.template_matching.search import fast_size, prepare_volume, search  # noqa: E402
from cryobench.template_matching.templates import (  # noqa: E402
    average_subtomograms,
    box_size,
    detect_symmetry,
    fourier_filter,
    is_isotropic,
    resample,
    rotate_templates,
    sphere_mask,
    spherical_average,
    symmetry_variants,
    zyx_matrix,
)


@pytest.fixture(autouse=True)
def _one_thread():
    """Small FFTs run fastest on one thread (and a shared machine's cores are contended)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def lobes(box: int, spec) -> np.ndarray:
    """Gaussian lobes ``(centre zyx, sigma, amplitude)`` in a ``box^3`` template."""
    c = (box - 1) / 2
    g = np.stack(np.meshgrid(*[np.arange(box) - c] * 3, indexing="ij"))
    out = np.zeros((box,) * 3)
    for (z, y, x), s, a in spec:
        out += a * np.exp(-((g[0] - z) ** 2 + (g[1] - y) ** 2 + (g[2] - x) ** 2) / (2 * s * s))
    return out.astype(np.float32)


ASYM = [((0, 0, 3), 2.0, 1.0), ((0, 3, -2), 1.5, 1.0), ((3, 0, 0), 1.2, 0.7)]


# ----- angles ---------------------------------------------------------------------------------
def test_grid_sizes_follow_8_pi2_over_step_cubed():
    for step, expected in ((30, 553), (20, 1855)):
        g = so3_grid(step)
        assert len(g) == expected
        assert abs(len(g) - 8 * np.pi**2 / np.radians(step) ** 3) / len(g) < 0.05
        np.testing.assert_allclose(g[0], np.eye(3))
        np.testing.assert_allclose(np.einsum("nji,njk->nik", g, g), np.broadcast_to(
            np.eye(3), g.shape), atol=1e-12)
    assert len(so3_grid(360)) == 1
    with pytest.raises(ValueError):
        so3_grid(0)


def test_grid_covers_so3_at_about_its_step():
    assert covering_radius(so3_grid(30), n_samples=1500) < 30.0
    assert covering_radius(so3_grid(20), n_samples=1500) < 20.0


@pytest.mark.parametrize("name", ["C2", "D2", "O", "I"])
def test_symmetry_reduction_keeps_coverage_with_about_a_group_order_fewer(name):
    grid = so3_grid(30)
    group = point_group(name)
    reduced = reduce_by_symmetry(grid, group, 0.25 * 30)
    assert len(reduced) < 1.8 * len(grid) / len(group) + 6
    full = covering_radius(grid, n_samples=800)
    assert covering_radius(reduced, group, n_samples=800) <= full + 1.5
    np.testing.assert_allclose(reduce_by_symmetry(grid, np.eye(3)[None], 5.0), grid)


def test_rotation_angles():
    r = Rotation.from_rotvec([[0, 0, 0], [0, np.pi / 2, 0], [np.pi, 0, 0]]).as_matrix()
    np.testing.assert_allclose(rotation_angles(r), [0, 90, 180], atol=1e-9)


# ----- templates ------------------------------------------------------------------------------
def test_box_and_mask():
    assert box_size(60, 10) == 17 and box_size(10, 10) == 5
    m = sphere_mask(9, 3)
    assert m[4, 4, 4] == 1 and m[4, 4, 8] == 0 and m[4, 4, 7] == 1 and m.sum() == 123


def test_rotation_matches_scipy_and_the_xyz_convention():
    t = lobes(15, ASYM)
    r = Rotation.from_euler("ZYZ", [40, 70, -20], degrees=True).as_matrix()
    ours = rotate_templates(torch.as_tensor(t), r[None])[0].numpy()
    # the same with scipy: output voxel u (zyx) reads the input at R_zyx^T u
    rz = zyx_matrix(r)[0]
    c = np.full(3, 7.0)
    ref = ndimage.affine_transform(t, rz.T, offset=c - rz.T @ c, order=1, mode="grid-constant")
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    # a lobe on the template's +x axis goes where R sends (1, 0, 0)
    one = lobes(15, [((0, 0, 5), 0.8, 1.0)])
    quarter = Rotation.from_euler("z", 90, degrees=True).as_matrix()  # x -> y
    moved = rotate_templates(torch.as_tensor(one), quarter[None])[0].numpy()
    assert np.unravel_index(moved.argmax(), moved.shape) == (7, 12, 7)


def test_aligned_average_recovers_the_template_and_unaligned_does_not():
    rng = np.random.default_rng(0)
    t = lobes(15, ASYM)
    rots = Rotation.random(12, random_state=1).as_matrix()
    vol = np.zeros((40, 60, 200), np.float32)
    centres = np.array([[20, 30, 16 + 14 * k] for k in range(12)], dtype=float)
    for c, r in zip(centres, rots, strict=True):
        rt = rotate_templates(torch.as_tensor(t), r[None])[0].numpy()
        z, y, x = c.astype(int)
        vol[z - 7:z + 8, y - 7:y + 8, x - 7:x + 8] += rt
    vol += 0.2 * rng.standard_normal(vol.shape).astype(np.float32)
    aligned = average_subtomograms(vol, centres, 15, rots)
    plain = average_subtomograms(vol, centres, 15, None)
    mask = sphere_mask(15, 7)

    def corr(a, b):
        a, b = a[mask > 0] - a[mask > 0].mean(), b[mask > 0] - b[mask > 0].mean()
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    assert corr(aligned, t) > 0.9
    assert corr(plain, t) < 0.7
    assert average_subtomograms(vol, np.zeros((0, 3)), 15).sum() == 0


def test_spherical_average_is_isotropic_and_keeps_a_sphere():
    t = lobes(15, ASYM)
    iso = spherical_average(t)
    m = sphere_mask(15, 7)
    assert is_isotropic(iso, m, 0.95)
    assert not is_isotropic(t, m, 0.95)
    ball = lobes(15, [((0, 0, 0), 3.0, 1.0)])
    # (linear shells on a voxel grid smooth the profile a little)
    np.testing.assert_allclose(spherical_average(ball), ball, atol=0.05)


def test_detect_symmetry_finds_the_group_and_its_axis():
    m = sphere_mask(17, 8)
    # four equal lobes in the z = 0 plane at (+-y, +-x): D2 (and more) about z
    quad = lobes(17, [((0, sy * 4, sx * 4), 1.5, 1.0) for sy in (-1, 1) for sx in (-1, 1)])
    assert detect_symmetry(quad, m, "D2", 0.9)[0] == "D2"
    # two lobes related by a half turn about y, not about z: C2 about y
    pair = lobes(17, [((2, 3, -4), 1.5, 1.0), ((-2, 3, 4), 1.5, 1.0)])
    label, group = detect_symmetry(pair, m, "C2", 0.9)
    assert label == "C2 about y" and len(group) == 2
    np.testing.assert_allclose(group[1], Rotation.from_euler("y", 180, degrees=True)
                               .as_matrix(), atol=1e-12)
    # the asymmetric body has none of it
    assert detect_symmetry(lobes(17, ASYM), m, "C2", 0.9)[0] == "C1"
    assert [v[0] for v in symmetry_variants("C1")] == ["C1"]
    assert len(symmetry_variants("I")) == 2


def test_fourier_filter_wedge_and_lowpass():
    f = fourier_filter((16, 16, 16), 10.0, 40.0, 60.0)
    assert f.shape == (16, 16, 9)
    assert f[0, 0, 0] == 1.0
    assert f[0, 0, 8] == 0.0  # 0.5 cycles/voxel is above the 0.25 cut-off
    assert f[4, 0, 0] == 0.0 and f[1, 0, 2] == 1.0  # the missing wedge about y
    assert np.all(fourier_filter((8, 8, 8), 1.0, 0.0, 90.0) == 1.0)


def test_resample_keeps_the_centre_and_the_scale():
    ball = lobes(41, [((0, 0, 0), 4.0, 1.0)])  # sigma 4 voxels at 5 A = 20 A
    out = resample(ball, 5.0, 10.0, 21)
    assert out.shape == (21, 21, 21)
    assert np.unravel_index(out.argmax(), out.shape) == (10, 10, 10)
    prof = out[10, 10, 10:]
    sigma = np.sqrt(-1 / (2 * np.polyfit(np.arange(4) ** 2, np.log(prof[:4] / prof[0]), 1)[0]))
    assert sigma == pytest.approx(2.0, rel=0.15)  # 20 A at 10 A per voxel


# ----- the search -----------------------------------------------------------------------------
def test_fast_size():
    assert [fast_size(n) for n in (1, 11, 97, 101, 325)] == [1, 12, 98, 105, 336]


def test_a_noise_free_copy_scores_one_at_its_centre_and_rotation():
    t = lobes(11, [((0, 0, 2), 1.5, 1.0), ((0, 2, -2), 1.0, 0.8), ((2, 0, 0), 1.0, 0.6)])
    grid = so3_grid(60)
    k = 7
    vol = np.zeros((30, 34, 38), np.float32)
    vol[9:20, 12:23, 15:26] = rotate_templates(torch.as_tensor(t), grid[k:k + 1])[0].numpy()
    prep = prepare_volume(vol, 5, whiten=False)
    res = search(prep, t, sphere_mask(11, 5), grid, batch_size=3)
    assert res.score.shape == vol.shape and res.n_rotations == len(grid)
    assert np.unravel_index(res.score.argmax(), res.score.shape) == (14, 17, 20)
    assert res.rotation_index[14, 17, 20] == k
    assert res.score[14, 17, 20] == pytest.approx(1.0, abs=1e-4)
    assert res.score.max() <= 1.0 + 1e-4 and res.score.min() >= -1.0 - 1e-4


def test_search_finds_rotated_copies_in_noise_with_whitening_and_wedge():
    rng = np.random.default_rng(3)
    t = lobes(15, ASYM)
    grid = so3_grid(60)
    truth = [((10, 20, 30), 17), ((25, 40, 12), 40), ((26, 12, 44), 61)]
    vol = np.zeros((36, 54, 54), np.float32)
    for (z, y, x), k in truth:
        vol[z - 7:z + 8, y - 7:y + 8, x - 7:x + 8] += rotate_templates(
            torch.as_tensor(t), grid[k:k + 1])[0].numpy()
    vol += 0.3 * rng.standard_normal(vol.shape).astype(np.float32)
    prep = prepare_volume(vol, 7, whiten=True)
    res = search(prep, t, sphere_mask(15, 7), grid, max_tilt_deg=60.0, batch_size=16)
    for (z, y, x), k in truth:
        around = res.score[z - 2:z + 3, y - 2:y + 3, x - 2:x + 3]
        peak = np.array(np.unravel_index(around.argmax(), around.shape)) - 2
        assert np.abs(peak).max() <= 1  # the wedge stretches the peak along z
        pz, py, px = np.array([z, y, x]) + peak
        assert res.rotation_index[pz, py, px] == k
    # the three copies hold the three best scores, far from each other
    first = np.array(np.unravel_index(res.score.argmax(), vol.shape))
    assert min(np.abs(first - np.array(c)).max() for c, _ in truth) <= 1


def test_batches_do_not_change_the_result():
    rng = np.random.default_rng(1)
    vol = rng.standard_normal((20, 24, 28)).astype(np.float32)
    t = lobes(9, ASYM)
    prep = prepare_volume(vol, 4)
    grid = so3_grid(90)
    a = search(prep, t, sphere_mask(9, 4), grid, batch_size=1)
    b = search(prep, t, sphere_mask(9, 4), grid, batch_size=7)
    np.testing.assert_allclose(a.score, b.score, atol=1e-5)
    assert (a.rotation_index == b.rotation_index).mean() > 0.999


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_scores_are_correlations(seed):
    rng = np.random.default_rng(seed)
    vol = rng.standard_normal((12, 14, 16)).astype(np.float32)
    t = rng.standard_normal((7, 7, 7)).astype(np.float32)
    res = search(prepare_volume(vol, 3, whiten=bool(seed % 2)), t, sphere_mask(7, 3),
                 so3_grid(120))
    assert np.isfinite(res.score).all()
    assert res.score.max() <= 1.0 + 1e-4 and res.score.min() >= -1.0 - 1e-4


def test_power_kept_separates_solid_bodies_from_thin_shells():
    from cryobench.template_matching.templates import power_kept

    m = sphere_mask(21, 10)
    solid = lobes(21, [((0, 0, 0), 3.5, 1.0)])
    c = 10.0
    g = np.stack(np.meshgrid(*[np.arange(21) - c] * 3, indexing="ij"))
    r = np.sqrt((g * g).sum(0))
    shell = (np.abs(r - 7.0) <= 0.7).astype(np.float32)  # a one-voxel capsid
    assert power_kept(solid, m, 0.2, 0.4) > 0.9
    assert power_kept(shell, m, 0.2, 0.4) < 0.6
    assert power_kept(np.zeros((9, 9, 9)), sphere_mask(9, 4), 0.2, 0.4) == 1.0
    assert power_kept(shell, m, 0.4, 0.4) == pytest.approx(1.0)
