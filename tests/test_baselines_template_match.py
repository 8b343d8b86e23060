"""The ``template_match`` baseline on in-memory phantoms whose picks carry rotations.

The conformance suite (tests/test_conformance.py) runs it on ``tiny``; here an oriented phantom
(the CZII phantom bodies stamped at known rotations) checks what ``tiny`` cannot: aligned
averages, the symmetry found in a template, and that picked orientations are right.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

pytest.importorskip("torch")  # the baselines extra
mrcfile = pytest.importorskip("mrcfile")

from baselines.template_match import TemplateMatch, read_mrc_template  # noqa: E402
from cryobench.coords import ROTATION_COLUMNS, voxels_to_picks, with_rotations  # noqa: E402
from cryobench.data.phantom.shapes import CZII_TEMPLATES, body_radius, random_rotation, stamp_body  # noqa: E402
from cryobench.errors import ConfigError, InputError, MethodError  # noqa: E402
from cryobench.methods.base import RunContext  # noqa: E402
from cryobench.metrics import czii_score  # noqa: E402
from cryobench.metrics.localization import localization_orientation_report  # noqa: E402
from cryobench.particles import CZII_PARTICLES, by_name  # noqa: E402
from cryobench.testing.fakes import FakeRun  # noqa: E402

CLASSES = tuple(by_name(CZII_PARTICLES)[n] for n in ("ribosome", "thyroglobulin"))
SPACING = 20.0


def oriented_runs(n: int, *, shape=(36, 72, 72), per_class: int = 3, noise: float = 0.25,
                  seed: int = 0, rotations: bool = True) -> list[FakeRun]:
    """Runs with ``per_class`` copies of the phantom ribosome and thyroglobulin bodies at
    random rotations (recorded in the picks' rot_* columns when ``rotations``)."""
    runs = []
    for k in range(n):
        rng = np.random.default_rng([seed, k])
        vol = np.zeros(shape, np.float32)
        zyx, names, rots, placed = [], [], [], []
        for p in CLASSES:
            r = body_radius(CZII_TEMPLATES[p.name]) / SPACING
            for _ in range(per_class):
                for _ in range(500):
                    c = np.array([rng.uniform(r * 0.6, s - 1 - r * 0.6) for s in shape])
                    if all(np.linalg.norm(c - q) > r + qr for q, qr in placed):
                        break
                rot_zyx = random_rotation(rng)
                stamp_body(vol, CZII_TEMPLATES[p.name], c, rot_zyx, SPACING)
                placed.append((c, r))
                zyx.append(c)
                names.append(p.name)
                rots.append(rot_zyx[::-1, ::-1])  # the same rotation on x, y, z vectors
        vol = ndimage.gaussian_filter(vol, 0.7)
        vol += noise * rng.standard_normal(shape).astype(np.float32)
        name = f"orient{k}"
        truth = voxels_to_picks(np.asarray(zyx), SPACING, name, names)
        if rotations:
            truth = with_rotations(truth, np.asarray(rots))
        runs.append(FakeRun(name, vol, SPACING, CLASSES, truth))
    return runs


def context(tmp_path, **kw) -> RunContext:
    return RunContext(work_dir=tmp_path, budget="cpu", progress=False, particles=CLASSES, **kw)


FAST = {"bin": 1, "max_bin": 1, "angular_step": 60.0, "max_peaks": 20, "threads": 1}
COARSE = {**FAST, "angular_step": 90.0}


def test_aligned_templates_and_the_symmetry_found_in_them(tmp_path):
    runs = oriented_runs(2)
    method = TemplateMatch(TemplateMatch.default_config("cpu", **FAST))
    method.fit(runs, [], context(tmp_path))  # no validation runs: default cut-offs
    assert method.template_source["ribosome"] == "average of 6 subtomograms"
    # the phantom thyroglobulin is two lobes related by a half turn about y
    assert method.search_symmetry["thyroglobulin"] == "C2 about y"
    assert method.search_symmetry["ribosome"] == "C1"
    assert len(method.rotations["thyroglobulin"]) < 0.75 * len(method.rotations["ribosome"])
    assert method.thresholds == {"ribosome": 0.3, "thyroglobulin": 0.3}


@pytest.mark.slow
def test_aligned_templates_find_the_particles_and_report_orientations(tmp_path):
    runs = oriented_runs(4)
    method = TemplateMatch(TemplateMatch.default_config("cpu", **FAST))
    method.fit(runs[:2], runs[2:3], context(tmp_path))
    picks = method.predict(runs[3], context(tmp_path))
    assert list(picks.columns) == ["experiment", "particle_type", "x", "y", "z", "score",
                                   *ROTATION_COLUMNS]
    truth = runs[3].truth
    report = czii_score(picks, truth, radii={p.name: p.radius for p in CLASSES},
                        weights={p.name: 1.0 for p in CLASSES})
    assert report.per_class["ribosome"].recall == 1.0
    # the phantom ribosome is nearly symmetric under a half turn about its long (z) axis
    # (self-correlation 0.98 at 20 A), so its orientation is scored up to that turn here
    pseudo_c2 = np.stack([np.eye(3), np.diag([-1.0, -1.0, 1.0])])
    loc = localization_orientation_report(picks, truth, radii={p.name: p.radius
                                                               for p in CLASSES},
                                          symmetries={"ribosome": pseudo_c2})
    rib = loc.per_class["ribosome"]
    assert rib.distance.median < SPACING  # within a working voxel
    # a 60 degree grid is within 50 degrees of any orientation
    assert rib.orientation.n == 3 and rib.orientation.median < 45.0


def test_each_class_is_searched_at_the_coarsest_binning_its_radius_allows(tmp_path):
    """At 20 A data, bin 1..4, 3 voxels and 70 % of the power at least: the ribosome (150 A)
    and the thyroglobulin (130 A) at 40 A (3.75 and 3.25 voxels; solid bodies keep their
    power); with 3.5 voxels the thyroglobulin stays at 20 A."""
    runs = oriented_runs(3)
    m = TemplateMatch(TemplateMatch.default_config("cpu", **{**FAST, "max_bin": 4}))
    m.fit(runs[:2], [], context(tmp_path))
    assert m.class_bin == {"ribosome": 2, "thyroglobulin": 2}
    assert min(m.power_kept.values()) >= 0.7
    assert m.templates["ribosome"].shape == (11, 11, 11)  # 1.25 x 3.75 voxels: half-edge 5
    picks = m.predict(runs[2], context(tmp_path))
    truth = runs[2].truth
    rib = picks[picks["particle_type"] == "ribosome"][["x", "y", "z"]].to_numpy()
    ref = truth[truth["particle_type"] == "ribosome"][["x", "y", "z"]].to_numpy()
    d = np.sqrt(((rib[:, None] - ref[None]) ** 2).sum(-1)).min(axis=0)
    assert (d < 75).all()  # every ribosome within the CZII threshold, in A
    m2 = TemplateMatch(TemplateMatch.default_config(
        "cpu", **{**FAST, "max_bin": 4, "min_radius_voxels": 3.5}))
    m2.fit(runs[:2], [], context(tmp_path))
    assert m2.class_bin == {"ribosome": 2, "thyroglobulin": 1}
    m3 = TemplateMatch(TemplateMatch.default_config(
        "cpu", **{**FAST, "max_bin": 4, "min_power_kept": 0.95}))
    m3.fit(runs[:2], [], context(tmp_path))
    assert m3.class_bin == {"ribosome": 1, "thyroglobulin": 1}


def test_picks_without_rotations_give_rotational_averages(tmp_path):
    runs = oriented_runs(3, rotations=False, per_class=2)
    method = TemplateMatch(TemplateMatch.default_config("cpu", **FAST))
    method.fit(runs[:2], runs[2:], context(tmp_path))
    assert method.template_source["ribosome"].endswith("(rotational average)")
    assert method.search_symmetry == {"ribosome": "isotropic", "thyroglobulin": "isotropic"}
    assert all(len(r) == 1 for r in method.rotations.values())


def test_the_seed_is_ignored_and_state_reloads_without_pickles(tmp_path):
    runs = oriented_runs(2, shape=(24, 48, 48), per_class=1)
    fits = []
    for seed in (0, 7):
        m = TemplateMatch(TemplateMatch.default_config("cpu", **COARSE))
        m.fit(runs[:1], [], context(tmp_path / str(seed), seed=seed))
        fits.append((m, m.predict(runs[1], context(tmp_path, seed=seed))))
    pd.testing.assert_frame_equal(fits[0][1], fits[1][1])
    m, before = fits[0]
    assert "ribosome" in set(before["particle_type"])  # something to compare
    m.save(tmp_path / "saved")
    with np.load(tmp_path / "saved" / "templates.npz", allow_pickle=False) as z:
        assert sorted(z.files) == ["rotations_0", "rotations_1", "template_0", "template_1"]
    state = json.loads((tmp_path / "saved" / "state.json").read_text())
    assert state["n_rotations"]["ribosome"] == len(m.rotations["ribosome"])
    loaded = TemplateMatch.load(tmp_path / "saved")
    pd.testing.assert_frame_equal(before, loaded.predict(runs[1], context(tmp_path)))
    (tmp_path / "saved" / "templates.npz").write_bytes(b"not a zip")
    with pytest.raises(MethodError, match="cannot load"):
        TemplateMatch.load(tmp_path / "saved")


def write_mrc(path, data, voxel):
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(np.asarray(data, dtype=np.float32))
        mrc.voxel_size = voxel


def test_mrc_templates_are_read_resampled_and_used(tmp_path):
    # the ribosome body at 10 A (half the working spacing), no thyroglobulin file
    body = np.zeros((41, 41, 41), np.float32)
    stamp_body(body, CZII_TEMPLATES["ribosome"], np.full(3, 20.0), np.eye(3), 10.0)
    d = tmp_path / "maps"
    d.mkdir()
    write_mrc(d / "ribosome.mrc", body, 10.0)
    data, voxel = read_mrc_template(d / "ribosome.mrc")
    assert voxel == 10.0 and data.shape == (41, 41, 41)
    runs = oriented_runs(3, shape=(28, 56, 56), per_class=2)
    cfg = TemplateMatch.default_config("cpu", **COARSE, templates=str(d))
    method = TemplateMatch(cfg)
    method.fit(runs[:1], runs[1:2], context(tmp_path))
    import hashlib

    digest = hashlib.sha256((d / "ribosome.mrc").read_bytes()).hexdigest()[:16]
    assert method.template_source["ribosome"] == f"file:ribosome.mrc sha256:{digest}"
    assert method.template_source["thyroglobulin"].startswith("average of")
    t = method.templates["ribosome"]
    assert t.shape == (21, 21, 21)  # 1.25 x 150 A at 20 A: half-edge 10
    com = np.array(ndimage.center_of_mass(np.clip(t, 0, None)))
    # the body's centre of mass sits 28 A * (volume share) towards +z: near the centre voxel
    assert np.abs(com - 10).max() < 1.5
    picks = method.predict(runs[2], context(tmp_path))
    rib = picks[picks["particle_type"] == "ribosome"]
    truth = runs[2].truth[runs[2].truth["particle_type"] == "ribosome"]
    d2 = ((rib[["x", "y", "z"]].to_numpy()[:, None] - truth[["x", "y", "z"]].to_numpy()[None])
          ** 2).sum(-1)
    assert (np.sqrt(d2.min(axis=0)) < 75).all()  # every ribosome found within 0.5 r


def test_bad_template_files_and_config_values(tmp_path):
    write_mrc(tmp_path / "ribosome.mrc", np.zeros((8, 8, 8)), 0.0)
    with pytest.raises(InputError, match="pixel size"):
        read_mrc_template(tmp_path / "ribosome.mrc")
    (tmp_path / "thyroglobulin.mrc").write_bytes(b"junk" * 100)
    with pytest.raises(InputError, match="cannot read MRC"):
        read_mrc_template(tmp_path / "thyroglobulin.mrc")
    runs = oriented_runs(2, per_class=1)
    with pytest.raises(ConfigError, match="directory"):
        TemplateMatch(TemplateMatch.default_config("cpu", templates=str(tmp_path / "no"))).fit(
            runs[:1], runs[1:], context(tmp_path))
    for bad in ({"bin": 3}, {"angular_step": 0.0}, {"max_tilt": 0.0}, {"mask_fraction": 2.0}):
        with pytest.raises(ConfigError):
            TemplateMatch.default_config("cpu", **bad)
    with pytest.raises(MethodError, match="not fitted"):
        TemplateMatch().predict(runs[0], context(tmp_path))


@pytest.mark.slow
def test_a_30_degree_search_orients_ribosomes_within_its_grid(tmp_path):
    runs = oriented_runs(4, shape=(40, 80, 80))
    cfg = TemplateMatch.default_config("cpu", bin=1, angular_step=30.0, max_peaks=20)
    method = TemplateMatch(cfg)
    method.fit(runs[:2], runs[2:3], context(tmp_path))
    picks = method.predict(runs[3], context(tmp_path))
    pseudo_c2 = np.stack([np.eye(3), np.diag([-1.0, -1.0, 1.0])])
    loc = localization_orientation_report(picks, runs[3].truth,
                                          radii={p.name: p.radius for p in CLASSES},
                                          symmetries={"ribosome": pseudo_c2,
                                                      "thyroglobulin": "C1"})
    rib = loc.per_class["ribosome"].orientation
    assert rib.n == 3 and rib.median < 20.0
    thy = loc.per_class["thyroglobulin"]
    assert thy.distance.n >= 2
