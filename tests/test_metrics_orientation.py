"""Orientation metrics: symmetry groups, symmetry-aware geodesic error, summaries."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from cryobench.errors import ConfigError, InputError
from cryobench.metrics.orientation import (
    check_rotations,
    geodesic_angle,
    summarize_angular_errors,
    symmetric_angular_error,
    symmetry_group,
)
from cryobench.particles import CZII_PARTICLES, ParticleType, czii_symmetries


def rot(axis: str, degrees: float) -> np.ndarray:
    return Rotation.from_euler(axis, degrees, degrees=True).as_matrix()


# ----- groups -------------------------------------------------------------------------------
@pytest.mark.parametrize("name, order", [("C1", 1), ("C2", 2), ("C7", 7), ("D2", 4),
                                         ("D6", 12), ("T", 12), ("O", 24), ("I", 60),
                                         ("d2", 4), (" o ", 24)])
def test_group_orders_identity_first_and_closure(name, order):
    g = symmetry_group(name)
    assert g.shape == (order, 3, 3)
    np.testing.assert_allclose(g[0], np.eye(3), atol=1e-12)
    prod = np.einsum("aij,bjk->abik", g, g).reshape(-1, 9)
    dist = np.abs(prod[:, None, :] - g.reshape(1, -1, 9)).max(axis=2).min(axis=1)
    assert dist.max() < 1e-9  # closed under products
    np.testing.assert_allclose(np.linalg.det(g), 1.0, atol=1e-12)


def test_group_axes_follow_the_documented_convention():
    # C2: the half turn about z; D2 adds x and y; O: quarter turns about x, y and z
    c2 = symmetry_group("C2")
    np.testing.assert_allclose(c2[1], rot("z", 180), atol=1e-12)
    d2 = symmetry_group("D2")
    for m in (rot("x", 180), rot("y", 180), rot("z", 180)):
        assert np.abs(d2 - m).max(axis=(1, 2)).min() < 1e-12
    o = symmetry_group("O")
    for axis in "xyz":
        assert np.abs(o - rot(axis, 90)).max(axis=(1, 2)).min() < 1e-12
    # I: 5-fold axis along (0, 1, phi)
    phi = (1 + 5**0.5) / 2
    axis = np.array([0.0, 1.0, phi]) / np.linalg.norm([0.0, 1.0, phi])
    five = Rotation.from_rotvec(axis * np.radians(72)).as_matrix()
    assert np.abs(symmetry_group("I") - five).max(axis=(1, 2)).min() < 1e-9


@pytest.mark.parametrize("bad", ["", "C0", "D0", "X", "C-2", "Oh", "I2"])
def test_unknown_symmetry_names_are_config_errors(bad):
    with pytest.raises(ConfigError, match="unknown symmetry"):
        symmetry_group(bad)


def test_explicit_matrices_must_form_a_group():
    g = np.stack([np.eye(3), rot("y", 180)])
    np.testing.assert_allclose(symmetry_group(g), g)
    with pytest.raises(ConfigError, match="identity"):
        symmetry_group(np.stack([rot("y", 180), rot("x", 180)]))
    with pytest.raises(ConfigError, match="closed"):
        symmetry_group(np.stack([np.eye(3), rot("z", 90)]))
    with pytest.raises(ConfigError, match="rotation"):
        symmetry_group(np.stack([np.eye(3), np.diag([1.0, 1.0, -1.0])]))


def test_czii_catalogue_symmetries_and_field_default():
    assert czii_symmetries() == {"apo-ferritin": "O", "beta-amylase": "D2",
                                 "beta-galactosidase": "D2", "ribosome": "C1",
                                 "thyroglobulin": "C2", "virus-like-particle": "I"}
    for p in CZII_PARTICLES:
        symmetry_group(p.symmetry)  # every catalogue name parses
    assert ParticleType("x-thing", 1, 10.0).symmetry is None  # unknown: scored as C1
    with pytest.raises(ValueError, match="symmetry"):
        ParticleType("x-thing", 1, 10.0, symmetry="C0")


def test_symmetry_field_changes_no_data_fingerprint(tmp_path):
    """The catalogue's symmetries reach no hash: the phantom generator fingerprint covers only
    the phantom package, and the data fingerprint covers runs, picks and voxels."""
    import inspect

    from cryobench.data import splits, synth

    assert "symmetry" not in inspect.getsource(splits.data_fingerprint)
    src = inspect.getsource(synth.generator_fingerprint)
    assert "_phantom()" in src and "particles" not in src


# ----- errors ---------------------------------------------------------------------------------
def test_known_angles_give_known_errors():
    r = np.stack([np.eye(3)] * 4)
    p = np.stack([rot("z", 10), rot("x", 45), rot("y", 90), rot("z", 180)])
    np.testing.assert_allclose(symmetric_angular_error(r, p, "C1"), [10, 45, 90, 180],
                               atol=1e-9)


def test_a_symmetry_element_scores_zero():
    base = Rotation.from_euler("ZYZ", [30, 50, 70], degrees=True).as_matrix()
    for name in ("C2", "D2", "O", "I"):
        g = symmetry_group(name)
        pred = base[None] @ g  # R S for every S of the group
        err = symmetric_angular_error(np.repeat(base[None], len(g), 0), pred, name)
        assert np.abs(err).max() < 1e-6, name
        # without the symmetry the same pairs are far apart (all but the identity)
        plain = symmetric_angular_error(np.repeat(base[None], len(g), 0), pred, "C1")
        assert plain[0] < 1e-6 and plain[1:].min() > 30.0


def test_hand_worked_c2_example():
    """Reference: identity. Prediction: a half turn about z, then 20 degrees about x.
    Under C1 that is angle(Rz180 Rx20) = 180 degrees; under C2 (about z) the half turn is
    free and 20 degrees remain."""
    pred = rot("z", 180) @ rot("x", 20)
    c1 = symmetric_angular_error(np.eye(3)[None], pred[None], "C1")[0]
    c2 = symmetric_angular_error(np.eye(3)[None], pred[None], "C2")[0]
    assert c1 == pytest.approx(180.0, abs=1e-6)
    assert c2 == pytest.approx(20.0, abs=1e-9)


def test_octahedral_error_is_at_most_62_8_degrees():
    # the farthest corner of the octahedral fundamental zone (the truncated cube in Rodrigues
    # space) is 62.8 degrees from the identity: no orientation is farther from the group
    q = Rotation.random(3000, random_state=1).as_matrix()
    err = symmetric_angular_error(np.repeat(np.eye(3)[None], len(q), 0), q, "O")
    assert err.max() <= 62.81
    assert err.max() > 55.0


def test_nan_rotations_give_nan_and_are_left_out_of_summaries():
    r = np.stack([np.eye(3), np.full((3, 3), np.nan)])
    p = np.stack([rot("z", 10), np.eye(3)])
    err = symmetric_angular_error(r, p, "C1")
    assert err[0] == pytest.approx(10.0) and np.isnan(err[1])
    s = summarize_angular_errors(err)
    assert s.n == 1 and s.median == pytest.approx(10.0)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from(["C1", "C2", "C5", "D2", "D3", "T", "O",
                                                     "I"]))
def test_properties_of_the_symmetric_error(seed, name):
    rng = np.random.default_rng(seed)
    r = Rotation.random(8, random_state=rng).as_matrix()
    p = Rotation.random(8, random_state=rng).as_matrix()
    g = symmetry_group(name)
    err = symmetric_angular_error(r, p, name)
    plain = geodesic_angle(r, p)
    assert np.all(err >= -1e-9) and np.all(err <= plain + 1e-6)  # symmetry only helps
    # symmetric in its arguments, invariant under a common rotation of the tomogram,
    # and under relabelling the prediction by a group element
    np.testing.assert_allclose(err, symmetric_angular_error(p, r, name), atol=1e-6)
    q = Rotation.random(random_state=rng).as_matrix()
    np.testing.assert_allclose(err, symmetric_angular_error(q @ r, q @ p, name), atol=1e-6)
    s = g[rng.integers(len(g))]
    np.testing.assert_allclose(err, symmetric_angular_error(r, p @ s, name), atol=1e-6)


def test_geodesic_angle_is_accurate_near_zero():
    tiny = rot("x", 1e-6)
    assert geodesic_angle(np.eye(3)[None], tiny[None])[0] == pytest.approx(1e-6, rel=1e-3)


# ----- input checks and summaries ----------------------------------------------------------
def test_check_rotations_names_the_bad_row():
    good = np.stack([np.eye(3), rot("z", 30)])
    np.testing.assert_allclose(check_rotations(good), good)
    bad = good.copy()
    bad[1] = np.diag([1.0, 1.0, -1.0])  # a reflection
    with pytest.raises(InputError, match="data row 2 is not a rotation"):
        check_rotations(bad, "submission")
    half = good.copy()
    half[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="data row 1"):
        check_rotations(half)
    # rounded to 4 decimals (a CSV) is still a rotation
    check_rotations(np.round(rot("y", 33)[None], 4))


def test_summary_hand_worked():
    s = summarize_angular_errors(np.array([5.0, 15.0, 25.0, 35.0]))
    assert s.n == 4
    assert s.median == 20.0
    assert s.p90 == pytest.approx(32.0)  # linear: 25 + 0.7 * 10
    assert (s.within_10, s.within_20, s.within_30) == (0.25, 0.5, 0.75)
    empty = summarize_angular_errors(np.zeros(0))
    assert empty.n == 0 and np.isnan(empty.median)
    assert empty.to_dict() == {"n": 0, "median": None, "p90": None, "within_10": None,
                               "within_20": None, "within_30": None}


def test_a_copick_project_gives_each_class_its_symmetry(tmp_path):
    """From the pickable object's metadata ``{"symmetry": ...}``, else the CZII catalogue's,
    else unknown (None, scored as C1); a bad name is a DataError naming the config."""
    import json

    from cryobench.data.project import create_project, open_project
    from cryobench.errors import DataError

    cfg = tmp_path / "copick.json"
    create_project(cfg, tmp_path / "overlay", CZII_PARTICLES[:2]
                   + (ParticleType("mystery-blob", 9, 40.0),))
    data = json.loads(cfg.read_text())
    data["pickable_objects"][1]["metadata"] = {"symmetry": "c4"}
    cfg.write_text(json.dumps(data))
    got = {p.name: p.symmetry for p in open_project(cfg).particles}
    assert got == {"apo-ferritin": "O", "beta-amylase": "C4", "mystery-blob": None}
    data["pickable_objects"][2]["symmetry"] = "d3"  # at the entry's top level, as a weight
    cfg.write_text(json.dumps(data))
    assert open_project(cfg).particles[2].symmetry == "D3"
    data["pickable_objects"][0]["metadata"] = {"symmetry": "Q2"}
    cfg.write_text(json.dumps(data))
    with pytest.raises(DataError, match="unknown symmetry"):
        _ = open_project(cfg).particles
