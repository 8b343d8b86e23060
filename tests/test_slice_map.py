"""Slice-box metrics of the slice detectors: COCO mAP and mAP@0.5/0.7/0.9 per class, equal to
pycocotools at those IoU thresholds; fixed box sides per class (the BYU study's 100 x 100
pixel motor boxes); configs without ``box_px`` keep their hash."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryobench.data.targets import slice_boxes
from cryobench.errors import ConfigError
from cryobench.methods.slices.dataset import volume_boxes
from cryobench.methods.slices.evaluation import metric_key, slice_map
from cryobench.particles import ParticleType

pytest.importorskip("pycocotools")
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402

A = ParticleType("alpha", 1, 50.0)
B = ParticleType("beta", 2, 100.0)


def coco_eval(dets: pd.DataFrame, gts: pd.DataFrame, iou_thrs=None):
    """pycocotools' mAP and per-category AP (area all, maxDets 100) at ``iou_thrs``."""
    images = sorted(set(dets.image_id) | set(gts.image_id))
    img_id = {k: i + 1 for i, k in enumerate(images)}
    cats = sorted(set(gts.label) | set(dets.label))
    cat_id = {k: i + 1 for i, k in enumerate(cats)}
    ds = {"images": [{"id": img_id[k]} for k in images],
          "categories": [{"id": cat_id[k]} for k in cats], "annotations": []}
    for n, r in enumerate(gts.itertuples()):
        w, h = r.x1 - r.x0, r.y1 - r.y0
        ds["annotations"].append({"id": n + 1, "image_id": img_id[r.image_id],
                                  "category_id": cat_id[r.label], "bbox": [r.x0, r.y0, w, h],
                                  "area": w * h, "iscrowd": 0})
    res = [{"image_id": img_id[r.image_id], "category_id": cat_id[r.label],
            "bbox": [r.x0, r.y0, r.x1 - r.x0, r.y1 - r.y0], "score": r.score}
           for r in dets.itertuples()]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = ds
        gt.createIndex()
        dt = gt.loadRes(res)
        ev = COCOeval(gt, dt, "bbox")
        if iou_thrs is not None:
            ev.params.iouThrs = np.asarray(iou_thrs, dtype=np.float64)
        ev.evaluate()
        ev.accumulate()
    prec = ev.eval["precision"][:, :, :, 0, 2]  # (T, R, K), area all, maxDets 100
    valid = prec[prec > -1]
    overall = float(np.mean(valid)) if valid.size else float("nan")
    per_cat = {}
    for k, c in enumerate(cats):
        s = prec[:, :, k]
        if (s > -1).any():
            per_cat[c] = float(np.mean(s[s > -1]))
    return overall, per_cat


def random_slices(seed: int):
    """Detections and ground truth over a few slices: jittered copies (so IoUs spread over
    0.5-0.95), false positives, ties in score and images without ground truth."""
    rng = np.random.default_rng(seed)
    n_gt, n_dt = int(rng.integers(1, 30)), int(rng.integers(1, 120))
    x, y = rng.uniform(0, 100, n_gt), rng.uniform(0, 100, n_gt)
    side = rng.uniform(6, 40, n_gt)
    gts = pd.DataFrame({"image_id": [f"run/z{z}" for z in rng.integers(0, 6, n_gt)],
                        "label": rng.integers(0, 3, n_gt), "x0": x, "y0": y, "x1": x + side,
                        "y1": y + side})
    dets = gts.iloc[rng.integers(0, n_gt, n_dt)].reset_index(drop=True)
    scale = rng.choice([0.5, 2.0, 5.0])
    coords = dets[["x0", "y0", "x1", "y1"]].to_numpy() + rng.normal(0, scale, (n_dt, 4))
    coords[:, 2] = np.maximum(coords[:, 2], coords[:, 0] + 1)
    coords[:, 3] = np.maximum(coords[:, 3], coords[:, 1] + 1)
    dets[["x0", "y0", "x1", "y1"]] = coords
    dets.loc[rng.random(n_dt) < 0.1, "image_id"] = "run/z99"
    dets["score"] = rng.integers(0, 10, n_dt) / 10 if seed % 2 else rng.random(n_dt)
    return dets, gts


NAMES = ["alpha", "beta", "gamma"]


def _check_equal(dets, gts):
    got = slice_map(dets, gts, (0.5, 0.7, 0.9), NAMES)
    for t in (None, 0.5, 0.7, 0.9):
        overall, per_cat = coco_eval(dets, gts, None if t is None else [t])
        assert got[metric_key(t)] == overall  # exact
        head = metric_key(t, "x").split("/")[0]
        per = {k: v for k, v in got.items() if "/" in k and k.split("/")[0] == head}
        assert per == {metric_key(t, NAMES[c]): v for c, v in per_cat.items()}


@pytest.mark.parametrize("seed", range(12))
def test_slice_map_equals_pycocotools_at_each_threshold(seed):
    _check_equal(*random_slices(seed))


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000))
def test_slice_map_equals_pycocotools_property(seed):
    _check_equal(*random_slices(seed))


def test_slice_map_keys_and_a_hand_worked_case():
    # one slice, one alpha box; two detections: IoU 0.8 ranked first, then an exact copy
    gts = pd.DataFrame({"image_id": ["r/z1"], "label": [0], "x0": [0.0], "y0": [0.0],
                        "x1": [10.0], "y1": [10.0]})
    dets = pd.DataFrame({"image_id": ["r/z1"] * 2, "label": [0, 0], "x0": [0.0, 0.0],
                         "y0": [0.0, 0.0], "x1": [8.0, 10.0], "y1": [10.0, 10.0],
                         "score": [0.9, 0.8]})
    m = slice_map(dets, gts, (0.5, 0.7, 0.9), ["alpha", "beta"])
    assert set(m) == {"slice_map", "slice_map50", "slice_map70", "slice_map90", "slice_ap/alpha",
                      "slice_ap50/alpha", "slice_ap70/alpha", "slice_ap90/alpha"}
    # IoU 0.8 matches at 0.5 and 0.7 (AP 1); at 0.9 the first is an FP, the copy a TP at
    # precision 1/2, so AP 0.5; COCO: thresholds 0.5..0.8 (7 of 10) give 1, 0.85..0.95 give
    # 0.5 (up to COCO's epsilon in tp / (tp + fp + eps))
    assert (m["slice_map50"], m["slice_map70"], m["slice_map90"]) == pytest.approx((1, 1, 0.5))
    assert m["slice_map"] == pytest.approx((7 * 1.0 + 3 * 0.5) / 10)
    assert m["slice_ap90/alpha"] == m["slice_map90"]
    empty = slice_map(dets.iloc[:0], gts.iloc[:0])
    assert np.isnan(empty["slice_map50"]) and set(empty) == {
        "slice_map", "slice_map50", "slice_map70", "slice_map90"}


# ----- fixed box sides ----------------------------------------------------------------------
def _picks(rows):
    return pd.DataFrame(rows, columns=["experiment", "particle_type", "x", "y", "z"]).astype(
        {"x": float, "y": float, "z": float})


def test_fixed_sides_replace_the_cross_section_in_the_same_slices():
    p = _picks([("r", "alpha", 300.0, 200.0, 100.0), ("r", "beta", 600.0, 600.0, 300.0)])
    plain = volume_boxes(p, 10.0, (40, 96, 96), [A, B], 0.6)
    fixed = volume_boxes(p, 10.0, (40, 96, 96), [A, B], 0.6, sides={"alpha": 20.0})
    assert fixed["z"].tolist() == plain["z"].tolist()
    a = fixed[fixed["label"] == 0]
    # alpha at voxel (x 30, y 20): a 20-pixel square centred on 30.5, 20.5 in every slice
    assert (a[["x0", "y0", "x1", "y1"]].to_numpy() == [20.5, 10.5, 40.5, 30.5]).all()
    pd.testing.assert_frame_equal(fixed[fixed["label"] == 1], plain[plain["label"] == 1])
    # clipped at the image border like the cross-section boxes
    edge = slice_boxes(_picks([("r", "alpha", 20.0, 20.0, 0.0)]), 0, 10.0, [A], 0.5,
                       (8, 64, 64), sides={"alpha": 100.0})
    assert edge[["x0", "y0", "x1", "y1"]].iloc[0].tolist() == [-0.5, -0.5, 52.0, 52.0]


def test_box_px_is_in_tomogram_pixels_and_checked():
    pytest.importorskip("torchvision")
    from baselines.centernet_slices import CenterNetSlices
    from baselines.faster_rcnn import FasterRCNN

    m = CenterNetSlices(CenterNetSlices.default_config("cpu", box_px={"alpha": 100}))
    assert m.config.box_px == {"alpha": 100.0} and m.config.bin == 2
    assert m.box_sides() == {"alpha": 50.0}  # pixels of the 2x binned slices
    assert CenterNetSlices.default_config("full").box_px == {"flagellar-motor": 100.0}
    for bad in ({"alpha": 0}, {"alpha": "wide"}, {"alpha": float("nan")}):
        with pytest.raises(ConfigError, match="box_px"):
            CenterNetSlices.default_config("cpu", box_px=bad)
    with pytest.raises(ConfigError, match="box_px"):
        FasterRCNN.default_config("cpu", box_px={"alpha": -1})


def test_configs_without_box_px_keep_their_hash():
    """``box_px`` is left out of the config dict while empty, so the committed records of
    faster_rcnn / yolo_unet (made before it existed) still match a fresh default config."""
    pytest.importorskip("torchvision")
    import json
    from pathlib import Path

    from baselines.faster_rcnn import FasterRCNN
    from cryobench.runner.record import config_hash, jsonable

    m = FasterRCNN(FasterRCNN.default_config("cpu"))
    assert "box_px" not in m.config_dict()
    with_box = FasterRCNN(FasterRCNN.default_config("cpu", box_px={"ribosome": 30}))
    assert with_box.config_dict()["box_px"] == {"ribosome": 30.0}
    root = (Path(__file__).parents[1] / "leaderboards" / "archive" / "v1" / "results"
            / "czii-synth" / "faster_rcnn")
    records = sorted(root.glob("*/seed-*/record.json"))
    if not records:
        pytest.skip("no committed faster_rcnn record")
    rec = json.loads(records[0].read_text())
    fresh = FasterRCNN(FasterRCNN.make_config(dict(rec["config"]))).config_dict()
    assert config_hash(jsonable(fresh)) == rec["config_hash"]
