"""Slice-detector building blocks: slice boxes, lifting to 3D, post-processing variants."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cryobench.errors import ConfigError, MethodError
from cryobench.methods.slices import postprocess_variants as pv
from cryobench.methods.slices.dataset import (
    build_slice_dataset,
    normalise_slice,
    slice_indices,
    volume_boxes,
)
from cryobench.methods.slices.extras import require
from cryobench.methods.slices.lift import DETECTION_COLUMNS, lift_detections, top_per_run
from cryobench.particles import ParticleType

A = ParticleType("alpha", 1, 50.0)  # 5 voxels at 10 Å
B = ParticleType("beta", 2, 100.0)  # 10 voxels at 10 Å
RADII = {"alpha": 50.0, "beta": 100.0, "beta-galactosidase": 90.0, "thyroglobulin": 130.0,
         "ribosome": 150.0}


def picks(rows, score=True):
    df = pd.DataFrame(rows, columns=["experiment", "particle_type", "x", "y", "z", "score"][
        : 6 if score else 5])
    return df.astype({"x": float, "y": float, "z": float} | ({"score": float} if score else {}))


# ----- slice boxes ----------------------------------------------------------------------------
def test_volume_boxes_hand_example():
    # alpha at voxel (z=10, y=20, x=30): radius 5 voxels; min_fraction 0.6 -> |dz| <= 4.
    p = picks([("r", "alpha", 300.0, 200.0, 100.0)], score=False)
    b = volume_boxes(p, 10.0, (40, 64, 64), [A, B], min_fraction=0.6)
    assert b["z"].tolist() == [6, 7, 8, 9, 10, 11, 12, 13, 14]
    assert set(b["label"]) == {0}
    centre = b[b["z"] == 10].iloc[0]
    assert centre[["x0", "y0", "x1", "y1"]].tolist() == pytest.approx([25.5, 15.5, 35.5, 25.5])
    edge = b[b["z"] == 14].iloc[0]  # rho = sqrt(25 - 16) = 3
    assert edge[["x0", "x1"]].tolist() == pytest.approx([27.5, 33.5])
    # the same particle at 20 Å spacing is 2.5 voxels wide at voxel (5, 10, 15)
    b2 = volume_boxes(p, 20.0, (20, 32, 32), [A, B], min_fraction=0.6)
    assert b2["z"].tolist() == [3, 4, 5, 6, 7]


def test_volume_boxes_clip_and_unknown_types():
    p = picks([("r", "beta", 0.0, 0.0, 0.0), ("r", "gamma", 100.0, 100.0, 100.0)], score=False)
    b = volume_boxes(p, 10.0, (30, 30, 30), [A, B], min_fraction=0.5)
    assert set(b["label"]) == {1}
    assert b["z"].min() == 0 and b["z"].max() == 8  # 10 * sqrt(0.75) = 8.66
    assert (b[["x0", "y0"]] >= 0).all().all()
    assert volume_boxes(p.iloc[0:0], 10.0, (5, 5, 5), [A]).shape == (0, 6)


def test_normalise_and_indices():
    img = np.linspace(-3, 5, 10000, dtype=np.float32).reshape(100, 100)
    out = normalise_slice(img)
    assert out.dtype == np.uint8 and out.min() == 0 and out.max() == 255
    assert normalise_slice(np.ones((4, 4))).max() == 0
    assert slice_indices(10, 1).tolist() == list(range(10))
    assert slice_indices(10, 3).tolist() == [0, 3, 6, 9]
    assert slice_indices(12, 3).tolist() == [1, 4, 7, 10]


def test_build_slice_dataset_empty_ratio():
    vol = np.random.default_rng(0).normal(size=(40, 32, 32)).astype(np.float32)
    run = ("r", vol, 10.0, picks([("r", "alpha", 150.0, 150.0, 100.0)], score=False))
    s = build_slice_dataset([run], [A, B], min_fraction=0.6, empty_ratio=0.5)
    with_boxes = [x for x in s if len(x.boxes)]
    assert [x.z for x in with_boxes] == list(range(6, 15))
    assert len(s) - len(with_boxes) == 5  # ceil(0.5 * 9)
    assert all(x.image.dtype == np.uint8 and x.image.shape == (32, 32) for x in s)
    s0 = build_slice_dataset([run], [A, B], min_fraction=0.6, empty_ratio=0.0)
    assert len(s0) == 9


# ----- lifting ------------------------------------------------------------------------------
def _dets(particles_vox, zs_of, score=0.9, label_of=None, rng=None):
    """Boxes of side 8 around (x, y) voxel centres in the given slices."""
    rows = []
    for k, (x, y) in enumerate(particles_vox):
        for z in zs_of[k]:
            jx, jy = (rng.normal(0, 0.3, 2) if rng is not None else (0.0, 0.0))
            u, v = x + 0.5 + jx, y + 0.5 + jy
            rows.append((z, label_of[k] if label_of else 0, u - 4, v - 4, u + 4, v + 4, score))
    return pd.DataFrame(rows, columns=DETECTION_COLUMNS)


def test_lift_recovers_3d_centres():
    rng = np.random.default_rng(1)
    # two alphas (r = 5 voxels) and one beta (r = 10): slice spans around the true centre z.
    dets = _dets([(20, 20), (40, 22), (20, 21)],
                 [range(8, 17), range(28, 33), range(30, 45)], label_of=[0, 0, 1], rng=rng)
    out = lift_detections(dets, [A, B], 10.0, "run1", depth=64)
    assert len(out) == 3
    a = out[out["particle_type"] == "alpha"].sort_values("x")
    assert a[["x", "y", "z"]].to_numpy() == pytest.approx(
        np.array([[200, 200, 120], [400, 220, 300]]), abs=3.0)
    b = out[out["particle_type"] == "beta"].iloc[0]
    assert [b.x, b.y, b.z] == pytest.approx([200, 210, 370], abs=3.0)
    assert (out["experiment"] == "run1").all()
    # alpha 1 is seen in all 9 slices it spans -> its mean score; alpha 2 in 5 of 9 -> lower
    assert a["score"].iloc[0] == pytest.approx(0.9)
    assert a["score"].iloc[1] == pytest.approx(0.9 * 5 / 9)


def test_lift_splits_stacked_particles_and_respects_stride():
    # two alphas at the same (x, y), centres at z = 10 and z = 20 (spans 6-14 and 16-24) are
    # linked across the one-slice gap, then cut by the particle's slice span
    dets = _dets([(30, 30)], [[*range(6, 15), *range(16, 25)]])
    out = lift_detections(dets, [A], 10.0, "r")
    assert sorted(out["z"].round()) == [100.0, 200.0]
    # every 3rd slice inspected: gap of 3 slices still links
    dets3 = _dets([(30, 30)], [[6, 9, 12]])
    out3 = lift_detections(dets3, [A], 10.0, "r", stride=3)
    assert len(out3) == 1 and out3["z"].iloc[0] == pytest.approx(90.0)
    assert out3["score"].iloc[0] == pytest.approx(0.9)  # 3 of the 3 expected inspected slices
    # far apart in xy -> separate picks
    dets_far = _dets([(10, 10), (30, 10)], [range(5, 10), range(5, 10)])
    assert len(lift_detections(dets_far, [A], 10.0, "r")) == 2


def test_lift_empty_and_top_per_run():
    out = lift_detections(pd.DataFrame(columns=DETECTION_COLUMNS), [A], 10.0, "r")
    assert len(out) == 0 and {"x", "y", "z", "score"} <= set(out.columns)
    p = picks([("a", "m", 1, 1, 1, 0.2), ("a", "m", 2, 2, 2, 0.7), ("b", "m", 3, 3, 3, 0.1)])
    top = top_per_run(p)
    assert sorted(zip(top["experiment"], top["score"], strict=True)) == [("a", 0.7), ("b", 0.1)]


# ----- post-processing variants -----------------------------------------------------------
def test_none_is_identity_copy():
    p = picks([("e", "alpha", 1, 2, 3, 0.5)])
    out = pv.none(p)
    pd.testing.assert_frame_equal(out, p)
    assert out is not p


def test_light_merge_within_ten_percent():
    # beta radius 100 Å -> merge distance 10 Å
    p = picks([
        ("e", "beta", 0, 0, 0, 0.9), ("e", "beta", 8, 0, 0, 0.5),   # 8 Å: merged
        ("e", "beta", 100, 0, 0, 0.4), ("e", "beta", 111, 0, 0, 0.3),  # 11 Å: kept apart
        ("e", "alpha", 4, 0, 0, 0.8),  # other class: untouched
        ("f", "beta", 4, 0, 0, 0.7),  # other experiment: untouched
    ])
    out = pv.light_merge(p, RADII)
    beta_e = out[(out.experiment == "e") & (out.particle_type == "beta")].sort_values("x")
    assert beta_e["x"].tolist() == pytest.approx([4.0, 100.0, 111.0])
    assert beta_e["score"].tolist() == pytest.approx([0.9, 0.4, 0.3])
    assert len(out) == 5 and list(out.columns) == list(p.columns)
    # alpha radius 50 -> 5 Å: 4 Å apart merges, 6 Å does not
    q = picks([("e", "alpha", 0, 0, 0, 0.1), ("e", "alpha", 0, 4, 0, 0.2),
               ("e", "alpha", 0, 10, 0, 0.3)])
    assert len(pv.light_merge(q, RADII)) == 2


def test_hard_particle_offsets_and_room_rule():
    off = pv.hard_particle_offsets()
    norms = np.linalg.norm(off, axis=1)
    assert len(off) == 14
    assert norms[:6] == pytest.approx([0.116] * 6) and norms[6:] == pytest.approx([0.10] * 8)
    r = RADII["thyroglobulin"]
    p = picks([
        ("e", "thyroglobulin", 0, 0, 0, 0.9),      # isolated: gets all 14 copies
        ("e", "ribosome", 0, 0, 0, 0.8),           # not a hard class: no copies
        ("e", "beta-galactosidase", 1000, 0, 0, 0.7),
        # a neighbour 0.55 r to the +x side blocks copies within r/2 of it
        ("e", "beta-galactosidase", 1000 + 0.55 * 90, 0, 0, 0.6),
    ])
    out = pv.hard_particle(p, RADII)
    pd.testing.assert_frame_equal(out.iloc[:4], p)  # originals first, unchanged
    thy = out[out.particle_type == "thyroglobulin"]
    assert len(thy) == 15
    d = np.linalg.norm(thy[["x", "y", "z"]].to_numpy()[1:], axis=1) / r
    assert sorted(np.round(d, 3)) == [0.1] * 8 + [0.116] * 6
    assert (thy["score"] == 0.9).all()
    assert (out.particle_type == "ribosome").sum() == 1
    bg = out[out.particle_type == "beta-galactosidase"].to_numpy()[2:]
    srcs = p[p.particle_type == "beta-galactosidase"][["x", "y", "z"]].to_numpy()
    for row in bg:  # every kept copy is further than r/2 from the other original
        x = np.asarray(row[2:5], dtype=float)
        src = np.argmin(np.linalg.norm(srcs - x, axis=1))
        other = srcs[1 - src]
        assert np.linalg.norm(other - x) > 0.5 * 90
    assert 0 < len(bg) < 28  # some copies blocked, some kept


def test_intensity_filter_threshold_and_spacing():
    vol = np.zeros((40, 40, 40), dtype=np.float32)
    vol[5:15, 5:15, 5:15] = 5.0  # a bright cube around voxel (10, 10, 10)
    p = picks([
        ("e", "alpha", 100, 100, 100, 0.9),  # bright
        ("e", "alpha", 300, 300, 300, 0.8),  # dark background
        ("e", "alpha", 120, 100, 100, 0.7),  # bright but 20 Å < r/2 = 25 Å from the first
        ("e", "beta", 300, 300, 300, 0.6),   # no threshold for beta: kept
    ])
    z = pv.local_intensity(p, vol, 10.0, RADII)
    assert z[0] > 2 and z[1] < 0
    out = pv.intensity_filter(p, vol, 10.0, RADII, {"alpha": 1.0})
    assert sorted(zip(out.particle_type, out.score, strict=True)) == [
        ("alpha", 0.9), ("beta", 0.6)]
    # inverted polarity (dark particles) keeps the dark one instead
    out2 = pv.intensity_filter(p, vol, 10.0, RADII, {"alpha": 0.0}, polarity=-1.0)
    assert out2[out2.particle_type == "alpha"]["score"].tolist() == [0.8]
    assert len(pv.intensity_filter(p.iloc[0:0], vol, 10.0, RADII, {})) == 0


def test_apply_variant_dispatch_and_errors():
    p = picks([("e", "beta", 0, 0, 0, 0.9), ("e", "beta", 5, 0, 0, 0.5)])
    assert len(pv.apply_variant("none", p, RADII)) == 2
    assert len(pv.apply_variant("light_merge", p, RADII)) == 1
    with pytest.raises(ConfigError, match="intensity"):
        pv.apply_variant("intensity", p, RADII)
    with pytest.raises(ConfigError, match="choose one of"):
        pv.apply_variant("magic", p, RADII)
    assert set(pv.VARIANTS) == {"none", "intensity", "light_merge", "hard_particle"}


def test_missing_extra_message():
    with pytest.raises(MethodError, match=r"pip install 'cryobench\[detection\]'"):
        require("no_such_module_cryobench", "detection", "faster_rcnn")
    assert require("json", "detection", "x").__name__ == "json"


# ----- fusion ---------------------------------------------------------------------------------
def test_fusion_weighted_vote_refines_score_and_position():
    from cryobench.methods.slices.fusion import fuse, unet_votes

    probs = np.zeros((2, 30, 30, 30), dtype=np.float32)
    probs[0, 9:12, 9:12, 11:14] = 1.0          # alpha blob centred at voxel (10, 10, 12)
    probs[1, 20:23, 20:23, 20:23] = 0.95       # beta blob with no YOLO proposal
    votes, cen = unet_votes(np.array([[10, 10, 10]]), probs[0], 1.0)
    assert votes[0] == pytest.approx(1 / 7) and cen[0] == pytest.approx([10, 10, 11])
    proposals = picks([("e", "alpha", 100.0, 100.0, 100.0, 0.6)])   # x=10, y=10, z=10 voxels
    peaks = picks([("e", "beta", 210.0, 210.0, 210.0, 0.95), ("e", "alpha", 110, 100, 100, 0.99),
                   ("e", "beta", 0.0, 0.0, 0.0, 0.5)])
    out = fuse(proposals, probs, 10.0, ["alpha", "beta"], RADII, weight=0.5,
               region_fraction=0.3, unet_peaks=peaks, unet_threshold=0.9)
    a = out[out.particle_type == "alpha"]
    assert len(a) == 1  # the alpha peak lies within one radius of the proposal: not added
    vote_a, cen_a = unet_votes(np.array([[10, 10, 10]]), probs[0], 0.3 * 5)
    assert a["score"].iloc[0] == pytest.approx(0.5 * 0.6 + 0.5 * vote_a[0])
    assert a[["x", "y", "z"]].to_numpy()[0] == pytest.approx(
        10 * (0.5 * np.array([10, 10, 10]) + 0.5 * cen_a[0])[::-1])
    b = out[out.particle_type == "beta"]
    assert len(b) == 1 and b["score"].iloc[0] == pytest.approx(0.5 * 0.95)  # below 0.9: dropped
    only_yolo = fuse(proposals, probs, 10.0, ["alpha", "beta"], RADII, weight=1.0)
    pd.testing.assert_frame_equal(only_yolo, proposals)


def test_yolo_label_lines(tmp_path):
    from cryobench.methods.slices.dataset import SliceSample
    from cryobench.methods.slices.yolo_format import write_yolo_dataset, yolo_label_lines

    s = SliceSample("TS_1/a", 3, np.zeros((20, 40), np.uint8),
                    np.array([[10, 5, 20, 15]], np.float32), np.array([1]))
    assert yolo_label_lines(s) == ["1 0.375000 0.500000 0.250000 0.500000"]
    data = write_yolo_dataset([s], [], tmp_path / "ds", ["alpha", "beta"])
    import json

    meta = json.loads(data.read_text())
    assert meta["names"] == {"0": "alpha", "1": "beta"} and meta["train"] == "images/train"
    assert (tmp_path / "ds/images/train/TS-1-a_z0003.png").exists()
    assert (tmp_path / "ds/labels/val/TS-1-a_z0003.txt").read_text().startswith("1 0.375")


def test_faster_rcnn_crop_and_augment_keep_boxes_on_the_particles():
    from baselines.faster_rcnn import _augment, _crop

    rng = np.random.default_rng(0)
    img = np.zeros((64, 80), np.uint8)
    img[10:20, 30:50] = 255  # a bright box x 30-50, y 10-20
    boxes = np.array([[30, 10, 50, 20], [0, 60, 10, 64]], np.float32)
    labels = np.array([0, 1])
    seen = 0
    for _ in range(40):
        c_img, c_boxes, c_lab = _crop(img, boxes, labels, 32, rng)
        assert c_img.shape == (32, 32)
        a_img, a_boxes = _augment(c_img, c_boxes, rng)
        for (x0, y0, x1, y1), lab in zip(a_boxes, c_lab, strict=True):
            if lab == 0:  # the crop of the bright box is bright and its border is not
                seen += 1
                inside = a_img[int(y0):int(np.ceil(y1)), int(x0):int(np.ceil(x1))]
                assert inside.min() == 255
                assert (a_img == 255).sum() == inside.size
    assert seen > 5
    same = _crop(img, boxes, labels, 0, rng)
    assert same[0] is img and len(same[1]) == 2
