"""Speed of the slice detectors' box metrics: cryobench's ``slice_map`` against pycocotools.

Builds the slice detections of a CZII-sized test set (default 4 tomograms x 92 inspected
slices, six classes, up to 15 boxes and 40 detections per slice and class: 60 % of detections
jittered around a box, the rest anywhere), then times

* ``slice_map``: COCO mAP and mAP@0.5/0.7/0.9, overall and per class (four
  :func:`cryobench.metrics.map_boxes` evaluations), what ``method.slice_metrics`` computes;
* ``pycocotools``: ``COCOeval`` (evaluate + accumulate) for the same four IoU settings, after
  building its index.

The figures must agree exactly (every one is checked). Prints wall and CPU seconds of both and
their ratio.

Usage::

    python benchmarks/bench_slice_map.py               # 368 slices
    python benchmarks/bench_slice_map.py --slices 40   # smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import io
import time

import numpy as np
import pandas as pd

from cryobench.methods.slices.evaluation import metric_key, slice_map

CLASSES = 6
IOUS = (0.5, 0.7, 0.9)


def make_tables(n_slices: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    g_rows, d_rows = [], []
    for z in range(n_slices):
        for c in range(CLASSES):
            n = int(rng.integers(0, 16))
            xy = rng.uniform(0, 300, (n, 2))
            side = rng.uniform(6, 30, n)
            g = np.column_stack([xy, xy + side[:, None]])
            g_rows += [(f"run/z{z}", c, *b) for b in g]
            m = 40
            near = rng.random(m) < 0.6
            d = np.column_stack([rng.uniform(0, 300, (m, 2)), np.zeros((m, 2))])
            s = rng.uniform(6, 30, m)
            d[:, 2:] = d[:, :2] + s[:, None]
            if n:
                src = g[rng.integers(0, n, m)] + rng.normal(0, 2, (m, 4))
                d[near] = src[near]
            d[:, 2] = np.maximum(d[:, 2], d[:, 0] + 1)
            d[:, 3] = np.maximum(d[:, 3], d[:, 1] + 1)
            d_rows += [(f"run/z{z}", c, *b, float(rng.random())) for b in d]
    gts = pd.DataFrame(g_rows, columns=["image_id", "label", "x0", "y0", "x1", "y1"])
    dets = pd.DataFrame(d_rows, columns=["image_id", "label", "x0", "y0", "x1", "y1", "score"])
    return dets, gts


def pycocotools_figures(dets: pd.DataFrame, gts: pd.DataFrame) -> dict[str, float]:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images = sorted(set(dets.image_id) | set(gts.image_id))
    img_id = {k: i + 1 for i, k in enumerate(images)}
    ds = {"images": [{"id": i} for i in img_id.values()],
          "categories": [{"id": c + 1} for c in range(CLASSES)], "annotations": []}
    for n, r in enumerate(gts.itertuples()):
        w, h = r.x1 - r.x0, r.y1 - r.y0
        ds["annotations"].append({"id": n + 1, "image_id": img_id[r.image_id],
                                  "category_id": int(r.label) + 1, "bbox": [r.x0, r.y0, w, h],
                                  "area": w * h, "iscrowd": 0})
    res = [{"image_id": img_id[r.image_id], "category_id": int(r.label) + 1,
            "bbox": [r.x0, r.y0, r.x1 - r.x0, r.y1 - r.y0], "score": r.score}
           for r in dets.itertuples()]
    out = {}
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = ds
        gt.createIndex()
        dt = gt.loadRes(res)
        for t in (None, *IOUS):
            ev = COCOeval(gt, dt, "bbox")
            if t is not None:
                ev.params.iouThrs = np.array([t])
            ev.evaluate()
            ev.accumulate()
            prec = ev.eval["precision"][:, :, :, 0, 2]
            out[metric_key(t)] = float(np.mean(prec[prec > -1]))
            for k in range(CLASSES):
                s = prec[:, :, k]
                if (s > -1).any():
                    out[metric_key(t, str(k))] = float(np.mean(s[s > -1]))
    return out


def timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    value = fn()
    return value, time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slices", type=int, default=368)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    dets, gts = make_tables(args.slices, args.seed)
    print(f"{args.slices} slices, {len(gts)} ground-truth boxes, {len(dets)} detections")
    ours, w1, c1 = timed(lambda: slice_map(dets, gts, IOUS, [str(k) for k in range(CLASSES)]))
    ref, w2, c2 = timed(lambda: pycocotools_figures(dets, gts))
    assert ours == ref, {k: (ours.get(k), ref.get(k)) for k in set(ours) | set(ref)
                         if ours.get(k) != ref.get(k)}
    print(f"slice_map    wall {w1:7.2f} s   cpu {c1:7.2f} s")
    print(f"pycocotools  wall {w2:7.2f} s   cpu {c2:7.2f} s")
    print(f"ratio (pycocotools / slice_map, cpu): {c2 / max(c1, 1e-9):.2f}; "
          f"all {len(ours)} figures equal")


if __name__ == "__main__":
    main()
