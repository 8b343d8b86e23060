"""Orientation conversions in cryobench.coords: zyx <-> xyz rotations and copick transforms."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryobench import coords

unit = st.floats(-1.0, 1.0, allow_nan=False, allow_infinity=False)


def _rotation(q: tuple[float, float, float, float]) -> np.ndarray:
    """A rotation matrix from a (not necessarily unit) quaternion; identity for q ~ 0."""
    q = np.asarray(q, dtype=np.float64)
    n = np.linalg.norm(q)
    if n < 1e-3:
        return np.eye(3)
    w, x, y, z = q / n
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


quaternions = st.tuples(unit, unit, unit, unit)


def test_zyx_to_xyz_by_hand():
    # 90 degrees about z (zyx frame, axis 0): rotates y into x. In the xyz frame that is the
    # rotation about the last axis, x -> y, y -> -x.
    r_zyx = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    r_xyz = coords.rotation_zyx_to_xyz(r_zyx)
    np.testing.assert_array_equal(r_xyz, [[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    # the zyx point (z, y, x) = (0, 1, 0) goes to (0, 0, 1): y -> x; in xyz (0, 1, 0) -> (1, 0, 0)
    np.testing.assert_array_equal(r_xyz @ [0.0, 1.0, 0.0], [1.0, 0.0, 0.0])


@given(quaternions, st.tuples(unit, unit, unit))
def test_zyx_and_xyz_rotations_move_points_alike(q, p):
    r_zyx = _rotation(q)
    p_zyx = np.asarray(p)
    r_xyz = coords.rotation_zyx_to_xyz(r_zyx)
    np.testing.assert_allclose(r_xyz @ p_zyx[::-1], (r_zyx @ p_zyx)[::-1], atol=1e-12)
    assert np.linalg.det(r_xyz) == pytest.approx(1.0)


@settings(max_examples=50, deadline=None)
@given(st.lists(quaternions, min_size=1, max_size=5))
def test_rotation_round_trips(qs):
    rots = np.stack([_rotation(q) for q in qs])
    np.testing.assert_array_equal(coords.rotation_xyz_to_zyx(coords.rotation_zyx_to_xyz(rots)),
                                  rots)
    tr = coords.rotation_to_transform(rots)
    assert tr.shape == (len(rots), 4, 4)
    np.testing.assert_array_equal(tr[:, 3], np.tile([0.0, 0.0, 0.0, 1.0], (len(rots), 1)))
    np.testing.assert_array_equal(coords.transform_to_rotation(tr), rots)
    n = len(rots)
    picks = pd.DataFrame({"experiment": ["a"] * n, "particle_type": ["ribosome"] * n,
                          "x": 0.0, "y": 0.0, "z": 0.0})
    with_rot = coords.with_rotations(picks, rots)
    assert coords.has_rotations(with_rot) and not coords.has_rotations(picks)
    np.testing.assert_array_equal(coords.picks_rotations(with_rot), rots)
    assert with_rot.loc[0, "rot_xy"] == rots[0, 0, 1]  # row-major: row x, column y


def test_rotation_conversion_rejects_bad_shapes():
    with pytest.raises(ValueError, match="3, 3"):
        coords.rotation_zyx_to_xyz(np.eye(4))
