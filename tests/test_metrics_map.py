"""mAP: pycocotools as the oracle for 2D boxes, hand-worked cases, sphere IoU for 3D picks."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pandas as pd
import pytest

from cryobench.errors import ConfigError, InputError
from cryobench.metrics import map_boxes, map_picks, sphere_iou

pycocotools = pytest.importorskip("pycocotools")
from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402


def coco_stats(dets: pd.DataFrame, gts: pd.DataFrame):
    """pycocotools' (AP, AP50, AP75) and per-category AP on the same boxes."""
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
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    prec = ev.eval["precision"][:, :, :, 0, 2]  # (T, R, K) at area "all", maxDets 100
    per_cat = {}
    for k, c in enumerate(cats):
        s = prec[:, :, k]
        if (s > -1).any():
            per_cat[str(c)] = float(np.mean(s[s > -1]))
    return ev.stats[:3], per_cat


def random_boxes(seed: int, float_coords: bool = False):
    rng = np.random.default_rng(seed)
    n_gt, n_dt = int(rng.integers(1, 40)), int(rng.integers(1, 160))
    x = rng.integers(0, 100, n_gt).astype(float)
    y = rng.integers(0, 100, n_gt).astype(float)
    gts = pd.DataFrame({"image_id": rng.integers(0, 5, n_gt), "label": rng.integers(0, 3, n_gt),
                        "x0": x, "y0": y, "x1": x + rng.integers(4, 30, n_gt),
                        "y1": y + rng.integers(4, 30, n_gt)})
    dets = gts.iloc[rng.integers(0, n_gt, n_dt)].reset_index(drop=True)
    jitter = rng.normal(0, 3, (n_dt, 4)) if float_coords else rng.integers(-4, 5, (n_dt, 4))
    dets[["x0", "y0", "x1", "y1"]] = dets[["x0", "y0", "x1", "y1"]].to_numpy() + jitter
    dets["x1"] = np.maximum(dets["x1"], dets["x0"] + 1)
    dets["y1"] = np.maximum(dets["y1"], dets["y0"] + 1)
    # some detections of a label or image without ground truth, ties in score
    dets.loc[rng.random(n_dt) < 0.1, "label"] = 7
    dets.loc[rng.random(n_dt) < 0.1, "image_id"] = 9
    dets["score"] = rng.integers(0, 12, n_dt) / 12 if not float_coords else rng.random(n_dt)
    return dets, gts


@pytest.mark.parametrize("seed", range(15))
def test_boxes_equal_pycocotools(seed):
    dets, gts = random_boxes(seed, float_coords=seed % 3 == 0)
    (ap, ap50, ap75), per_cat = coco_stats(dets, gts)
    rep = map_boxes(dets, gts)
    assert (rep.map, rep.map50, rep.map75) == (ap, ap50, ap75)  # exact
    assert {k: v["ap"] for k, v in rep.per_class.items()} == per_cat


def test_boxes_keep_only_max_dets_per_image_and_class():
    gts = pd.DataFrame({"image_id": [0], "label": [0], "x0": [0.0], "y0": [0.0], "x1": [10.0],
                        "y1": [10.0]})
    dets = pd.DataFrame({"image_id": [0] * 3, "label": [0] * 3, "x0": [50.0, 60.0, 0.0],
                         "y0": [50.0, 60.0, 0.0], "x1": [60.0, 70.0, 10.0],
                         "y1": [60.0, 70.0, 10.0], "score": [0.9, 0.8, 0.1]})
    assert map_boxes(dets, gts, max_dets=2).map == 0.0  # the true box ranks third
    assert map_boxes(dets, gts, max_dets=None).map == pytest.approx(1 / 3)


def test_perfect_detection_has_ap_one():
    gts = pd.DataFrame({"image_id": [0, 0, 1], "label": ["a", "b", "a"],
                        "x0": [0.0, 20, 5], "y0": [0.0, 20, 5], "x1": [10.0, 30, 9],
                        "y1": [10.0, 30, 9]})
    rep = map_boxes(gts.assign(score=1.0), gts)
    assert rep.map == 1.0 and rep.per_class["a"]["ap"] == 1.0


def test_false_positive_ranked_first_halves_precision():
    # one ground truth; a wrong box scored higher than the right one: P = 1/2 at recall 1
    gts = pd.DataFrame({"image_id": [0], "label": [0], "x0": [0.0], "y0": [0.0], "x1": [10.0],
                        "y1": [10.0]})
    dets = pd.DataFrame({"image_id": [0, 0], "label": [0, 0], "x0": [50.0, 0.0],
                         "y0": [50.0, 0.0], "x1": [60.0, 10.0], "y1": [60.0, 10.0],
                         "score": [0.9, 0.5]})
    rep = map_boxes(dets, gts)
    assert rep.map == pytest.approx(0.5, abs=1e-12)  # 0.5 at all 101 recall points


def test_iou_thresholds_are_a_parameter_and_recorded():
    gts = pd.DataFrame({"image_id": [0], "label": [0], "x0": [0.0], "y0": [0.0], "x1": [10.0],
                        "y1": [10.0]})
    dets = gts.assign(x1=[14.0], score=[1.0])  # IoU 100/140 = 0.714
    # COCO's precision is tp / (tp + fp + eps): a perfect single hit is 1 - 2.2e-16
    assert map_boxes(dets, gts, iou_thresholds=[0.5]).map == pytest.approx(1.0, abs=1e-12)
    rep = map_boxes(dets, gts, iou_thresholds=[0.75])
    assert rep.map == 0.0 and np.isnan(rep.map50)
    assert rep.params["iou_thresholds"] == [0.75]
    with pytest.raises(ConfigError):
        map_boxes(dets, gts, iou_thresholds=[])


def test_boxes_missing_score_is_an_input_error():
    gts = pd.DataFrame({"image_id": [0], "label": [0], "x0": [0.0], "y0": [0.0], "x1": [1.0],
                        "y1": [1.0]})
    with pytest.raises(InputError, match="score"):
        map_boxes(gts, gts)


# --------------------------------------------------------------------------- 3D picks
def test_sphere_iou_known_values():
    r = 10.0
    assert sphere_iou(0.0, r) == 1.0
    assert sphere_iou(2 * r, r) == 0.0 and sphere_iou(3 * r, r) == 0.0
    # d = r: V∩ = 5πr³/12, union = 8πr³/3 − 5πr³/12 = 27πr³/12 -> 5/27
    assert sphere_iou(r, r) == pytest.approx(5 / 27)
    d = np.linspace(0, 2 * r, 50)
    assert np.all(np.diff(sphere_iou(d, r)) <= 0)  # decreasing with distance


def test_sphere_iou_matches_monte_carlo():
    rng = np.random.default_rng(0)
    r, d = 1.0, 0.7
    pts = rng.uniform(-1, 1.7, (400_000, 3))
    in_a = (pts**2).sum(1) <= r * r
    in_b = ((pts - [d, 0, 0]) ** 2).sum(1) <= r * r
    mc = (in_a & in_b).sum() / (in_a | in_b).sum()
    assert sphere_iou(d, r) == pytest.approx(mc, abs=5e-3)


def picks(rows):
    return pd.DataFrame(rows, columns=["experiment", "particle_type", "x", "y", "z", "score"])


def test_picks_perfect_submission_has_map_one():
    sol = picks([("A", "ribosome", 0.0, 0, 0, 1), ("A", "ribosome", 900.0, 0, 0, 1),
                 ("B", "apo-ferritin", 0.0, 0, 0, 1)])
    rep = map_picks(sol, sol.drop(columns="score"))
    assert rep.map == pytest.approx(1.0, abs=1e-12)
    assert set(rep.per_class) == {"ribosome", "apo-ferritin"}


def test_picks_iou_decides_the_match_per_threshold():
    # ribosome r = 150 Å; a pick 37.5 Å off has IoU ≈ 0.686: a hit at 0.50 ... 0.65 only
    iou = float(sphere_iou(37.5, 150.0))
    assert 0.65 < iou < 0.7
    sol = picks([("A", "ribosome", 0.0, 0, 0, 1)])
    rep = map_picks(sol.assign(x=37.5), sol)
    assert rep.map50 == pytest.approx(1.0, abs=1e-12) and rep.map75 == 0.0
    assert rep.map == pytest.approx(4 / 10)


def test_picks_rank_by_score_and_duplicates_are_false_positives():
    sol = picks([("A", "ribosome", 0.0, 0, 0, 1)])
    sub = picks([("A", "ribosome", 5.0, 0, 0, 0.4), ("A", "ribosome", 0.0, 0, 0, 0.9)])
    # the exact copy ranks first; the duplicate comes after all true positives: AP 1
    assert map_picks(sub, sol).map == pytest.approx(1.0, abs=1e-12)
    # ranked the other way, the 5 Å pick takes the reference
    # at every threshold it reaches; at the others the exact copy matches second: P = 1/2
    iou5 = float(sphere_iou(5.0, 150.0))
    n_hit = int((np.linspace(0.5, 0.95, 10) <= iou5).sum())
    rep = map_picks(sub.assign(score=[0.9, 0.4]), sol)
    assert rep.map == pytest.approx((n_hit * 1.0 + (10 - n_hit) * 0.5) / 10, abs=1e-12)


def test_picks_max_dets_and_foreign_experiments():
    sol = picks([("A", "ribosome", 0.0, 0, 0, 1)])
    sub = picks([("A", "ribosome", 2000.0, 0, 0, 0.9), ("A", "ribosome", 0.0, 0, 0, 0.5),
                 ("Z", "ribosome", 0.0, 0, 0, 1.0)])
    assert map_picks(sub, sol, max_dets=1).map == 0.0
    assert map_picks(sub, sol).map == pytest.approx(0.5, abs=1e-12)
    assert map_picks(sub, sol).params["n_experiments"] == 1


def test_picks_need_a_score_column():
    sol = picks([("A", "ribosome", 0.0, 0, 0, 1)])
    with pytest.raises(InputError, match="score"):
        map_picks(sol.drop(columns="score"), sol)


def test_picks_agree_with_boxes_when_reduced_to_one_dimension():
    # the same greedy matching and accumulation: check via a monotone IoU mapping on a line,
    # where sphere IoU and interval IoU rank matches identically for one reference per image
    rng = np.random.default_rng(3)
    sol = picks([(f"E{i}", "ribosome", 0.0, 0, 0, 1) for i in range(6)])
    sub = picks([(f"E{rng.integers(0, 6)}", "ribosome", float(rng.uniform(-200, 200)), 0, 0,
                  float(rng.random())) for _ in range(30)])
    rep = map_picks(sub, sol)
    d = np.abs(sub["x"].to_numpy())
    iou = sphere_iou(d, 150.0)
    # the equivalent boxes: a 1x1 ground truth and detections with the same IoU
    gts = pd.DataFrame({"image_id": sol["experiment"], "label": 0, "x0": 0.0, "y0": 0.0,
                        "x1": 1.0, "y1": 1.0})
    dets = pd.DataFrame({"image_id": sub["experiment"], "label": 0, "x0": 0.0, "y0": 0.0,
                         "x1": np.where(iou > 0, np.maximum(iou, 1e-9), 0.0), "y1": 1.0,
                         "score": sub["score"]})
    dets.loc[iou == 0, ["x0", "x1"]] = [5.0, 6.0]
    box = map_boxes(dets, gts, max_dets=None)
    assert rep.map == pytest.approx(box.map, abs=1e-12)


def test_report_to_dict_is_json_ready():
    sol = picks([("A", "ribosome", 0.0, 0, 0, 1)])
    d = json.loads(json.dumps(map_picks(sol, sol).to_dict(), allow_nan=False))
    assert d["score"] == pytest.approx(1.0, abs=1e-12)
    assert d["per_class"]["ribosome"]["n_gt"] == 1


def test_picks_do_not_depend_on_row_order():
    rng = np.random.default_rng(5)
    sol = picks([(f"E{i % 4}", "ribosome", float(x), 0, 0, 1)
                 for i, x in enumerate(rng.uniform(0, 5000, 40))])
    sub = sol.iloc[rng.integers(0, 40, 60)].reset_index(drop=True)
    sub["x"] += rng.normal(0, 40, 60)
    sub["score"] = rng.integers(0, 5, 60) / 5  # many ties, across experiments too
    a = map_picks(sub, sol.drop(columns="score"))
    b = map_picks(sub, sol.drop(columns="score").iloc[::-1])
    assert a.map == b.map and a.per_class == b.per_class
