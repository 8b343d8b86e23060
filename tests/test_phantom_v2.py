"""The second-generation phantoms: tilt-series imaging, crowded scene, rotations, storage."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from cryobench.coords import has_rotations, picks_rotations, rotation_xyz_to_zyx
from cryobench.data.phantom import PRESETS, generate_tomogram
from cryobench.data.phantom.crowd import CONFUSERS, build_crowded_scene
from cryobench.data.phantom.czii import build_scene
from cryobench.data.phantom.generate import _picks_frame
from cryobench.data.phantom.shapes import CZII_TEMPLATES, body_radius, stamp_body
from cryobench.data.phantom.spec import Crowding
from cryobench.data.phantom.tilt import (
    TiltSeries,
    acquisition_order,
    back_project,
    critical_exposure,
    image_tilt_series,
    project,
    projector,
    tilt_angles,
)
from cryobench.particles import CZII_PARTICLES

TINY2 = PRESETS["tiny-v2"]


# ----- tilt geometry ------------------------------------------------------------------------
def test_tilt_angles_and_dose_symmetric_order_by_hand():
    a = tilt_angles(60.0, 3.0)
    assert len(a) == 41 and a[0] == -60.0 and a[-1] == 60.0 and 0.0 in a
    # 0, +3, +6, -3, -6 (groups of two on each side, positive side first)
    angles = tilt_angles(6.0, 3.0)
    assert angles.tolist() == [-6.0, -3.0, 0.0, 3.0, 6.0]
    assert acquisition_order(angles, "dose-symmetric", 2).tolist() == [4, 3, 0, 1, 2]
    assert acquisition_order(angles, "dose-symmetric", 1).tolist() == [4, 2, 0, 1, 3]
    assert acquisition_order(angles, "sequential").tolist() == [0, 1, 2, 3, 4]


def test_critical_exposure_by_hand():
    # Grant & Grigorieff: 0.245 k^-1.665 + 2.81; at 10 A: 0.245 * 10^1.665 + 2.81 = 14.138
    assert critical_exposure(np.array([0.1]))[0] == pytest.approx(14.138, abs=1e-3)
    assert critical_exposure(np.array([0.05]))[0] > critical_exposure(np.array([0.1]))[0]


def test_projector_preserves_mass_and_places_points():
    nz, nx = 9, 21
    angles = tilt_angles(60.0, 30.0)  # -60, -30, 0, 30, 60
    a_mat, a_t, n_det = projector(nz, nx, angles)
    sl = np.zeros((nz, nx))
    sl[4, 10] = 1.0  # the centre voxel
    sino = (a_mat @ sl.ravel()).reshape(len(angles), n_det)
    centre = 0.5 * (n_det - 1)
    np.testing.assert_allclose(sino.sum(axis=1), 1.0, rtol=1e-6)
    # the centre projects onto the detector centre at every angle (linear weights about it)
    np.testing.assert_allclose(sino @ np.arange(n_det), centre, atol=1e-5)
    # x = +6 voxels at 60 degrees: u = 6 cos 60 + 0 = 3 bins from the centre
    sl[:] = 0.0
    sl[4, 16] = 1.0
    sino = (a_mat @ sl.ravel()).reshape(len(angles), n_det)
    assert sino[-1] @ np.arange(n_det) == pytest.approx(centre + 3.0, abs=1e-5)
    # z = +2 voxels (below the centre) at +30 degrees: u = 2 sin 30 = 1
    sl[:] = 0.0
    sl[6, 10] = 1.0
    sino = (a_mat @ sl.ravel()).reshape(len(angles), n_det)
    assert sino[3] @ np.arange(n_det) == pytest.approx(centre + 1.0, abs=1e-5)
    assert (a_t != a_mat.T).nnz == 0


def test_back_projection_is_the_adjoint_of_projection():
    rng = np.random.default_rng(1)
    shape = (6, 5, 11)
    angles = tilt_angles(60.0, 20.0)
    vol = rng.standard_normal(shape).astype(np.float32)
    images = project(vol, angles, workers=2)
    assert images.shape[:2] == (len(angles), shape[1])
    other = rng.standard_normal(images.shape).astype(np.float32)
    lhs = float(np.vdot(images.astype(np.float64), other))
    rhs = float(np.vdot(vol.astype(np.float64), back_project(other, shape, angles, workers=1)))
    assert lhs == pytest.approx(rhs, rel=1e-5)
    np.testing.assert_array_equal(project(vol, angles, workers=1), images)  # threads: same bytes


def _blob_volume(shape=(32, 24, 48), centre=(14, 12, 30), radius=4.0) -> np.ndarray:
    z, y, x = np.ogrid[:shape[0], :shape[1], :shape[2]]
    d2 = (z - centre[0]) ** 2 + (y - centre[1]) ** 2 + (x - centre[2]) ** 2
    return (d2 <= radius**2).astype(np.float32)


def test_reconstruction_finds_the_object_and_leaves_the_wedge_empty():
    vol = _blob_volume()
    tomos, clean, info = image_tilt_series(
        vol, 10.0, PRESETS["czii-v2"].optics, TiltSeries(shift_sigma_px=0.0, snr_spread=1.0),
        np.inf, np.random.default_rng(0), defocus_um=1.0, ice_thickness_angstrom=300.0,
        keep_clean=True)
    assert set(tomos) == {"wbp", "denoised"}
    np.testing.assert_array_equal(clean, tomos["wbp"])  # no noise: clean is the tomogram
    for t in tomos.values():
        assert t.dtype == np.float32 and t.shape == vol.shape
        assert abs(float(t.mean())) < 1e-4 and float(t.std()) == pytest.approx(1.0, abs=1e-3)
    # protein is dark: the darkest voxel of the denoised tomogram is in the blob
    z, y, x = np.unravel_index(np.argmin(tomos["denoised"]), vol.shape)
    assert abs(z - 14) <= 2 and abs(y - 12) <= 1 and abs(x - 30) <= 1
    # missing wedge: beyond 60 degrees from the x axis towards z there is (almost) no power
    rng = np.random.default_rng(2)
    noise_vol = rng.standard_normal((32, 8, 64)).astype(np.float32)
    tomos, _, _ = image_tilt_series(
        noise_vol, 10.0, PRESETS["czii-v2"].optics,
        TiltSeries(shift_sigma_px=0.0, snr_spread=1.0, bfactor=0.0, dose_per_tilt=0.0),
        np.inf, np.random.default_rng(0), defocus_um=1.0, ice_thickness_angstrom=300.0)
    power = np.abs(np.fft.fftn(tomos["wbp"])) ** 2
    kz = np.abs(np.fft.fftfreq(32))[:, None, None]
    kx = np.abs(np.fft.fftfreq(64))[None, None, :]
    kk = np.sqrt(kz**2 + kx**2)
    band = (kk > 0.08) & (kk < 0.3)
    inside = band & (kz < np.tan(np.deg2rad(50.0)) * kx)
    wedge = band & (kz > np.tan(np.deg2rad(72.0)) * kx)
    inside = np.broadcast_to(inside, power.shape)
    wedge = np.broadcast_to(wedge, power.shape)
    assert power[wedge].mean() < 0.05 * power[inside].mean()


def test_snr_is_the_untilted_images_and_spread_per_tomogram():
    ph = generate_tomogram(TINY2, 0)
    m = ph.meta
    assert m["signal_var_untilted"] / m["noise_var_untilted"] == pytest.approx(
        m["tomogram_snr"], rel=1e-9)
    spread = TINY2.tilt.snr_spread
    assert m["tomogram_snr"] == pytest.approx(TINY2.snr * m["snr_factor"])
    assert 1 / spread <= m["snr_factor"] <= spread
    factors = {generate_tomogram(TINY2, s).meta["snr_factor"] for s in range(1, 4)}
    assert len(factors) == 3
    assert len(m["defocus_um_per_tilt"]) == 41 and m["total_dose"] == pytest.approx(123.0)


# ----- the generator ------------------------------------------------------------------------
def test_tiny_v2_is_deterministic_and_snr_keeps_the_scene():
    a = generate_tomogram(TINY2, 7)
    b = generate_tomogram(TINY2, 7)
    assert list(a.tomograms) == ["denoised", "wbp"] and a.volume is a.tomograms["denoised"]
    for t in a.tomograms:
        np.testing.assert_array_equal(a.tomograms[t], b.tomograms[t])
    assert a.picks.equals(b.picks) and has_rotations(a.picks)
    c = generate_tomogram(TINY2, 7, snr=0.1)
    assert c.picks.equals(a.picks) and not np.array_equal(c.volume, a.volume)
    d = generate_tomogram(TINY2, 8)
    assert not d.picks.equals(a.picks)
    json.dumps(a.meta)
    assert a.meta["imaging"] == "tilt" and a.meta["tomogram_snr"] > 0


def _lonely(name: str, **crowd):
    """A tiny-v2-like spec holding exactly one particle of ``name`` and nothing else."""
    counts = tuple((1, 1) if p.name == name else (0, 0) for p in CZII_PARTICLES)
    return dataclasses.replace(
        TINY2, shape=(40, 64, 64), counts=counts, clutter=(0, 0), gold=(0, 0),
        amplitude_jitter=0.0,
        crowd=Crowding(confusers=(0, 0), sheet_probability=0.0, faint_fraction=0.0,
                       density_scale=(), **crowd))


@pytest.mark.parametrize("builder", ["crowd", "first-generation"])
@pytest.mark.parametrize("name", ["thyroglobulin", "ribosome", "beta-galactosidase"])
def test_recorded_rotation_reproduces_the_placed_particle(builder, name):
    spec = _lonely(name)
    if builder == "first-generation":
        spec = dataclasses.replace(spec, crowd=None, imaging="filter", tomo_types=("denoised",))
        density, picks, _ = build_scene(spec, spec.voxel_spacing, np.random.default_rng(3))
    else:
        density, picks, _ = build_crowded_scene(spec, spec.voxel_spacing,
                                                np.random.default_rng(3))
    df = _picks_frame(picks, spec.voxel_spacing)
    assert len(df) == 1 and has_rotations(df)
    rot_zyx = rotation_xyz_to_zyx(picks_rotations(df))[0]
    centre = df[["z", "y", "x"]].to_numpy()[0] / spec.voxel_spacing
    again = np.zeros_like(density)
    stamp_body(again, CZII_TEMPLATES[name], centre, rot_zyx, spec.voxel_spacing, soft=0.6)
    np.testing.assert_allclose(again, density, atol=1e-5)
    # and a wrong rotation does not (the classes are not spheres)
    wrong = np.zeros_like(density)
    stamp_body(wrong, CZII_TEMPLATES[name], centre, rot_zyx[:, [1, 0, 2]] * [1, 1, -1],
               spec.voxel_spacing, soft=0.6)
    assert np.abs(wrong - density).max() > 0.3


def test_faint_particles_and_class_density_scale():
    spec = dataclasses.replace(
        _lonely("beta-galactosidase"),
        crowd=Crowding(confusers=(0, 0), sheet_probability=0.0, faint_fraction=1.0,
                       faint_density=(0.2, 0.2), density_scale=(("beta-galactosidase", 1.5),)))
    density, picks, meta = build_crowded_scene(spec, spec.voxel_spacing,
                                               np.random.default_rng(3))
    assert meta["faint_picks"] == [0]
    df = _picks_frame(picks, spec.voxel_spacing)
    again = np.zeros_like(density)
    stamp_body(again, CZII_TEMPLATES["beta-galactosidase"],
               df[["z", "y", "x"]].to_numpy()[0] / spec.voxel_spacing,
               rotation_xyz_to_zyx(picks_rotations(df))[0], spec.voxel_spacing,
               amplitude=0.2 * 1.5, soft=0.6)
    np.testing.assert_allclose(again, density, atol=1e-5)


def test_crowded_scene_has_confusers_edges_and_surface_gold():
    spec = dataclasses.replace(TINY2, shape=(48, 128, 128), gold=(3, 3),
                               crowd=Crowding(confusers=(2, 2), edge_fraction=1.0,
                                              sheet_probability=1.0))
    density, picks, meta = build_crowded_scene(spec, spec.voxel_spacing,
                                               np.random.default_rng(0))
    assert sum(meta["confusers"].values()) > 0 and meta["membrane_sheet"] is True
    assert meta["particles_cut_by_edges"] > 0
    assert meta["gold"] == 3
    z0, z1 = meta["ice_z"]
    assert density.max() >= 0.9 * spec.crowd.gold_amplitude
    gold_z = np.nonzero(density >= 0.9 * spec.crowd.gold_amplitude)[0]
    r = 50.0 / spec.voxel_spacing
    assert np.all((np.abs(gold_z - (z0 + r)) <= r + 1) | (np.abs(gold_z - (z1 - r)) <= r + 1))
    for name, make in CONFUSERS.items():  # every look-alike is about its class's size
        size = body_radius(make(np.random.default_rng(5)))
        true = max(p.radius for p in CZII_PARTICLES if p.name == name)
        assert 0.5 * true < size < 2.0 * true, name


def test_byu_v2_motor_pick_has_a_rotation():
    spec = dataclasses.replace(PRESETS["byu-v2"], shape=(48, 96, 96), voxel_spacing=40.0,
                               spacing_range=(36.0, 44.0), clutter=(2, 4))
    ph = generate_tomogram(spec, 0, has_motor=True)
    assert len(ph.picks) == 1 and has_rotations(ph.picks)
    rot = picks_rotations(ph.picks)[0]
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)
    assert list(ph.tomograms) == ["denoised", "wbp"]
    assert len(generate_tomogram(spec, 0, has_motor=False).picks) == 0
