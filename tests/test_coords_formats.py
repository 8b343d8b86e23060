"""coords: Euler conventions of RELION, Dynamo and TOM, pixel and RELION 5 centred coordinates.

Hand-worked cases, published equivalent pairs, scipy's Rotation as an oracle where its convention
matches, and round trips (hypothesis).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from cryobench import coords

CONVENTIONS = coords.EULER_CONVENTIONS


def _rz(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])


# ----- hand-worked cases -------------------------------------------------------------------------
def test_relion_rot_90_turns_the_template_clockwise_about_z():
    # RELION: positive angles turn the object clockwise, R = Rz(-psi) Ry(-tilt) Rz(-rot)
    r = coords.euler_to_rotation([90, 0, 0], "relion")[0]
    np.testing.assert_allclose(r, [[0, 1, 0], [-1, 0, 0], [0, 0, 1]], atol=1e-15)
    # the template's x axis ends up along -y of the tomogram
    np.testing.assert_allclose(r @ [1, 0, 0], [0, -1, 0], atol=1e-15)


def test_relion_tilt_90_lays_the_template_z_axis_along_minus_x():
    r = coords.euler_to_rotation([0, 90, 0], "relion")[0]
    np.testing.assert_allclose(r, [[0, 0, -1], [0, 1, 0], [1, 0, 0]], atol=1e-15)
    np.testing.assert_allclose(r @ [0, 0, 1], [-1, 0, 0], atol=1e-15)


def test_relion_matrix_is_relions_euler_angles2matrix():
    # RELION's Euler_angles2matrix, written out (rot=a, tilt=b, psi=g), is our R itself
    a, b, g = np.deg2rad([20.0, 35.0, -50.0])
    ca, sa, cb, sb, cg, sg = np.cos(a), np.sin(a), np.cos(b), np.sin(b), np.cos(g), np.sin(g)
    cc, cs, sc, ss = cb * ca, cb * sa, sb * ca, sb * sa
    a_relion = np.array([[cg * cc - sg * sa, cg * cs + sg * ca, -cg * sb],
                         [-sg * cc - cg * sa, -sg * cs + cg * ca, sg * sb],
                         [sc, ss, cb]])
    np.testing.assert_allclose(coords.euler_to_rotation([20, 35, -50], "relion")[0], a_relion,
                               atol=1e-15)


def test_dynamo_matrix_of_dynamo_euler2matrix():
    # Dynamo's dynamo_euler2matrix([30, 60, 75]) as printed by Dynamo (4 decimals), the
    # template -> particle rotation is its transpose
    dynamo = np.array([[-0.0173, -0.5477, 0.8365],
                       [0.9012, -0.3709, -0.2241],
                       [0.4330, 0.7500, 0.5000]])
    np.testing.assert_allclose(coords.euler_to_rotation([30, 60, 75], "dynamo")[0].T, dynamo,
                               atol=6e-5)


def test_published_dynamo_relion_pair_is_one_rotation():
    # a pair that gives the same reconstruction in Dynamo and RELION (eulerangles' tests)
    d = coords.euler_to_rotation([-47.2730, 1.1777, -132.3000], "dynamo")
    r = coords.euler_to_rotation([137.7000, 1.1777, 42.7270], "relion")
    np.testing.assert_allclose(d, r, atol=1e-12)


def test_tom_matrix_is_rz_psi_rx_theta_rz_phi():
    r = coords.euler_to_rotation([90, 0, 0], "tom")[0]  # phi = 90: counter-clockwise about z
    np.testing.assert_allclose(r, _rz(90), atol=1e-15)
    r = coords.euler_to_rotation([0, 90, 0], "tom")[0]  # theta = 90 about x
    np.testing.assert_allclose(r, [[1, 0, 0], [0, 0, -1], [0, 1, 0]], atol=1e-15)


@given(st.floats(-180, 180), st.floats(0, 180), st.floats(-180, 180))
@settings(max_examples=60, deadline=None)
def test_tom_is_dynamo_with_negated_reversed_angles(tdrot, tilt, narot):
    # dynamo__table2motl: phi = -narot, psi = -tdrot, theta = -tilt
    d = coords.euler_to_rotation([tdrot, tilt, narot], "dynamo")
    t = coords.euler_to_rotation([-narot, -tilt, -tdrot], "tom")
    np.testing.assert_allclose(d, t, atol=1e-12)


@given(st.floats(-180, 180), st.floats(0, 180), st.floats(-180, 180))
@settings(max_examples=60, deadline=None)
def test_relion_as_tom_angles(rot, tilt, psi):
    r = coords.euler_to_rotation([rot, tilt, psi], "relion")
    t = coords.euler_to_rotation([90 - rot, tilt, -90 - psi], "tom")
    np.testing.assert_allclose(r, t, atol=1e-12)


# ----- scipy as the oracle -----------------------------------------------------------------------
ORACLE = {
    # upper case: intrinsic, lower case: extrinsic; scipy's matrices are active rotations
    "relion": lambda a: Rotation.from_euler("ZYZ", a, degrees=True).inv().as_matrix(),
    "dynamo": lambda a: Rotation.from_euler("zxz", a, degrees=True).inv().as_matrix(),
    "tom": lambda a: Rotation.from_euler("zxz", a, degrees=True).as_matrix(),
}


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_matches_scipy(convention):
    rng = np.random.default_rng(3)
    angles = np.column_stack([rng.uniform(-180, 180, 200), rng.uniform(0, 180, 200),
                              rng.uniform(-180, 180, 200)])
    np.testing.assert_allclose(coords.euler_to_rotation(angles, convention),
                               ORACLE[convention](angles), atol=1e-14)


# ----- round trips -------------------------------------------------------------------------------
angle = st.floats(-179.999, 180, allow_nan=False)
second = st.floats(0.01, 179.99, allow_nan=False)


@pytest.mark.parametrize("convention", CONVENTIONS)
@given(a=angle, b=second, c=angle)
@settings(max_examples=150, deadline=None)
def test_angles_survive_a_matrix_round_trip(convention, a, b, c):
    back = coords.rotation_to_euler(coords.euler_to_rotation([a, b, c], convention), convention)
    assert np.abs(back[0] - [a, b, c]).max() < 1e-9


@pytest.mark.parametrize("convention", CONVENTIONS)
@given(seed=st.integers(0, 2**32 - 1))
@settings(max_examples=80, deadline=None)
def test_matrices_survive_an_angle_round_trip(convention, seed):
    r = Rotation.random(random_state=seed).as_matrix()
    angles = coords.rotation_to_euler(r, convention)
    assert 0 <= angles[0, 1] <= 180
    assert np.all((angles[0, [0, 2]] > -180) & (angles[0, [0, 2]] <= 180))
    np.testing.assert_allclose(coords.euler_to_rotation(angles, convention)[0], r, atol=1e-12)


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("second_angle", [0.0, 180.0])
def test_gimbal_lock_keeps_the_rotation(convention, second_angle):
    r = coords.euler_to_rotation([30, second_angle, 20], convention)
    angles = coords.rotation_to_euler(r, convention)
    assert angles[0, 1] == second_angle
    np.testing.assert_allclose(coords.euler_to_rotation(angles, convention), r, atol=1e-12)


def test_identity_gives_zero_angles():
    for convention in CONVENTIONS:
        assert coords.rotation_to_euler(np.eye(3), convention).tolist() == [[0.0, 0.0, 0.0]]


def test_unknown_convention():
    with pytest.raises(ValueError, match="unknown Euler convention"):
        coords.euler_to_rotation([0, 0, 0], "xmipp")


def test_is_rotation():
    good = Rotation.random(3, random_state=0).as_matrix()
    bad = np.stack([np.diag([1.0, 1, -1]), 2 * np.eye(3), np.full((3, 3), np.nan)])
    assert coords.is_rotation(good).all()
    assert not coords.is_rotation(bad).any()


# ----- pixels and centred coordinates ------------------------------------------------------------
def test_pixels_counted_from_one_or_zero():
    # Dynamo/TOM: the first voxel is pixel 1 -> 0 Å; RELION/pytom: pixel 0 -> 0 Å
    np.testing.assert_allclose(coords.pixels_to_angstrom([[1, 11, 2.5]], 10.0, first=1),
                               [[0, 100, 15]])
    np.testing.assert_allclose(coords.pixels_to_angstrom([[0, 10, 1.5]], 10.0), [[0, 100, 15]])
    np.testing.assert_allclose(coords.angstrom_to_pixels([[0, 100, 15]], 10.0, first=1),
                               [[1, 11, 2.5]])
    # one pixel size per row
    np.testing.assert_allclose(coords.pixels_to_angstrom([[1, 1, 1], [1, 1, 1]], [2.0, 3.0]),
                               [[2, 2, 2], [3, 3, 3]])
    with pytest.raises(ValueError):
        coords.pixels_to_angstrom([[1, 1, 1]], 0.0)


def test_relion5_centre_is_half_the_shape():
    # a 184 x 630 x 630 (z, y, x) tomogram at 10 Å: centre (x, y, z) = (3150, 3150, 920) Å
    np.testing.assert_allclose(coords.tomogram_centre_angstrom((184, 630, 630), 10.0),
                               [3150, 3150, 920])
    np.testing.assert_allclose(coords.centred_to_angstrom([[0, 0, 0], [-3150, 100, -920]],
                                                          (184, 630, 630), 10.0),
                               [[3150, 3150, 920], [0, 3250, 0]])
    with pytest.raises(ValueError):
        coords.tomogram_centre_angstrom((184, 630), 10.0)


@given(st.lists(st.floats(-1e4, 1e4), min_size=3, max_size=3),
       st.tuples(st.integers(1, 2000), st.integers(1, 2000), st.integers(1, 2000)),
       st.floats(0.5, 50), st.sampled_from([0, 1]))
@settings(max_examples=100, deadline=None)
def test_pixel_and_centred_round_trips(xyz, shape, spacing, first):
    pts = np.asarray([xyz])
    back = coords.pixels_to_angstrom(coords.angstrom_to_pixels(pts, spacing, first=first),
                                     spacing, first=first)
    np.testing.assert_allclose(back, pts, rtol=1e-12, atol=1e-9)
    back = coords.centred_to_angstrom(coords.angstrom_to_centred(pts, shape, spacing), shape,
                                      spacing)
    np.testing.assert_allclose(back, pts, rtol=1e-12, atol=1e-9)
