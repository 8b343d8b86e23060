"""COCO-style mean average precision for 2D boxes and for 3D picks (sphere IoU).

Both follow ``pycocotools.cocoeval.COCOeval`` step by step (no crowd regions, one area range
covering everything):

* per (image, class), detections are ranked by score (stable: ties keep row order) and only the
  first ``max_dets`` are kept;
* at each IoU threshold ``t`` every detection, in rank order, takes the not yet matched ground
  truth with the highest IoU ≥ ``t`` (ties: the later ground-truth row);
* per class, detections of all images are ranked by score (ties: image order, then rank),
  precision is made monotone from the right and read at 101 recall points
  ``0, 0.01, …, 1`` (0 beyond the highest recall reached);
* AP averages over recall points and IoU thresholds; mAP averages over classes that have ground
  truth (classes without ground truth are excluded, as in COCO).

For boxes (``x0, y0, x1, y1``) the IoU is pycocotools' ``bbIou`` evaluated on ``x, y, w, h``
boxes, so results equal pycocotools bit for bit. For picks the IoU is that of two spheres of
the class radius ``r`` whose centres are ``d`` apart:
``V∩ = π(4r + d)(2r − d)²/12`` for ``d < 2r``, ``IoU = V∩ / (2·(4/3)πr³ − V∩)``. Each
experiment plays the role of an image.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from cryobench.errors import ConfigError, InputError
from cryobench.metrics._matching import pairs_within
from cryobench.metrics.results import MapReport

__all__ = ["map_boxes", "map_picks", "sphere_iou", "box_iou", "COCO_IOU_THRESHOLDS",
           "COCO_RECALL_THRESHOLDS"]

COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1)
COCO_RECALL_THRESHOLDS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1)
BOX_COLUMNS = ("image_id", "label", "x0", "y0", "x1", "y1")


def sphere_iou(d: np.ndarray, r: float | np.ndarray) -> np.ndarray:
    """IoU of two spheres of radius ``r`` whose centres are ``d`` apart (0 for ``d >= 2r``)."""
    d = np.asarray(d, dtype=np.float64)
    r = np.asarray(r, dtype=np.float64)
    lens = (4 * r + d) * (2 * r - d) ** 2  # 12/π · V∩
    union = 32 * r**3 - lens  # 12/π · (2V − V∩)
    out = np.where(d < 2 * r, lens / np.where(union > 0, union, 1.0), 0.0)
    return np.clip(out, 0.0, 1.0)


def box_iou(dt_xywh: np.ndarray, gt_xywh: np.ndarray) -> np.ndarray:
    """``(n_dt, n_gt)`` IoU matrix of ``x, y, w, h`` boxes, exactly as pycocotools' bbIou."""
    d = np.asarray(dt_xywh, dtype=np.float64)[:, None, :]
    g = np.asarray(gt_xywh, dtype=np.float64)[None, :, :]
    da = d[..., 2] * d[..., 3]
    ga = g[..., 2] * g[..., 3]
    w = np.fmin(d[..., 2] + d[..., 0], g[..., 2] + g[..., 0]) - np.fmax(d[..., 0], g[..., 0])
    h = np.fmin(d[..., 3] + d[..., 1], g[..., 3] + g[..., 1]) - np.fmax(d[..., 1], g[..., 1])
    inter = w * h
    union = da + ga - inter
    ok = (w > 0) & (h > 0)
    return np.where(ok, inter / np.where(ok, union, 1.0), 0.0)


def _greedy_match(ious: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """COCOeval.evaluateImg matching; ``ious`` rows are detections in rank order.

    Returns a ``(T, n_dt)`` boolean matrix: detection matched at threshold t.
    """
    n_dt, n_gt = ious.shape
    matched_dt = np.zeros((len(thresholds), n_dt), dtype=bool)
    if n_dt == 0 or n_gt == 0:
        return matched_dt
    rev = slice(None, None, -1)
    row_max = ious.max(axis=1)
    for ti, t in enumerate(thresholds):
        thr = min(float(t), 1 - 1e-10)
        taken = np.zeros(n_gt, dtype=bool)
        n_taken = 0
        # a detection without any IoU >= thr can match nothing: only the others are visited,
        # in rank order, until every ground truth is taken
        for di in np.flatnonzero(row_max >= thr):
            row = ious[di]
            ok = (~taken) & (row >= thr)
            if not ok.any():
                continue
            vals = np.where(ok, row, -np.inf)[rev]
            m = n_gt - 1 - int(np.argmax(vals))  # last index among the maxima
            taken[m] = True
            matched_dt[ti, di] = True
            n_taken += 1
            if n_taken == n_gt:
                break
    return matched_dt


def _greedy_match_sparse(n_dt: int, dt_idx: np.ndarray, gt_idx: np.ndarray, iou: np.ndarray,
                         thresholds: np.ndarray) -> np.ndarray:
    """The same matching from sparse (detection, ground truth, IoU) triples."""
    matched_dt = np.zeros((len(thresholds), n_dt), dtype=bool)
    if len(dt_idx) == 0:
        return matched_dt
    order = np.lexsort((gt_idx, dt_idx))
    dt_idx, gt_idx, iou = dt_idx[order], gt_idx[order], iou[order]
    bounds = np.searchsorted(dt_idx, np.arange(n_dt + 1))
    has = np.flatnonzero(bounds[1:] > bounds[:-1])
    for ti, t in enumerate(thresholds):
        thr = min(float(t), 1 - 1e-10)
        taken: set[int] = set()
        for di in has:
            best, m = thr, -1
            for k in range(bounds[di], bounds[di + 1]):
                g = int(gt_idx[k])
                if g in taken or iou[k] < best:
                    continue
                best, m = iou[k], g
            if m >= 0:
                taken.add(m)
                matched_dt[ti, di] = True
    return matched_dt


def _accumulate(per_image: list[tuple[np.ndarray, np.ndarray, int]], thresholds: np.ndarray,
                recall_thresholds: np.ndarray) -> np.ndarray | None:
    """COCOeval.accumulate for one class. ``per_image``: (scores, matched (T, n), n_gt)
    in image order. Returns the ``(T, R)`` precision table or None without ground truth."""
    n_gt = sum(e[2] for e in per_image)
    if n_gt == 0:
        return None
    scores = np.concatenate([e[0] for e in per_image]) if per_image else np.empty(0)
    matched = (np.concatenate([e[1] for e in per_image], axis=1) if per_image
               else np.zeros((len(thresholds), 0), dtype=bool))
    inds = np.argsort(-scores, kind="mergesort")
    matched = matched[:, inds]
    tp_sum = np.cumsum(matched, axis=1).astype(dtype=float)
    fp_sum = np.cumsum(~matched, axis=1).astype(dtype=float)
    out = np.zeros((len(thresholds), len(recall_thresholds)))
    nd = matched.shape[1]
    for ti in range(len(thresholds)):
        tp, fp = tp_sum[ti], fp_sum[ti]
        rc = tp / n_gt
        pr = tp / (fp + tp + np.spacing(1))
        if nd:
            pr = np.maximum.accumulate(pr[::-1])[::-1]
        idx = np.searchsorted(rc, recall_thresholds, side="left")
        valid = idx < nd
        out[ti, valid] = pr[idx[valid]]
    return out


def _summarise(precision: dict, thresholds: np.ndarray, kind: str,
               params: dict, n_gt: dict, n_det: dict) -> MapReport:
    classes = list(precision)
    stack = (np.stack([precision[c] for c in classes], axis=-1) if classes
             else np.zeros((len(thresholds), len(COCO_RECALL_THRESHOLDS), 0)))  # (T, R, K)

    def mean(s: np.ndarray) -> float:
        s = s[s > -1]
        return float(np.mean(s)) if s.size else float("nan")

    def at(t: float, s: np.ndarray) -> float:
        hit = np.flatnonzero(np.isclose(thresholds, t, rtol=0, atol=1e-12))
        return mean(s[hit]) if len(hit) else float("nan")

    per_class = {}
    for k, c in enumerate(classes):
        s = stack[:, :, k]
        per_class[str(c)] = {"ap": mean(s), "ap50": at(0.5, s), "ap75": at(0.75, s),
                             "n_gt": int(n_gt[c]), "n_det": int(n_det[c])}
    return MapReport(map=mean(stack), map50=at(0.5, stack), map75=at(0.75, stack),
                     per_class=per_class, params={"kind": kind, **params})


def _check_thresholds(iou_thresholds) -> np.ndarray:
    t = np.asarray(iou_thresholds, dtype=np.float64).ravel()
    if t.size == 0 or not np.all((t > 0) & (t <= 1)):
        raise ConfigError("IoU thresholds must be numbers in (0, 1]")
    return t


def _require(df: pd.DataFrame, cols: Sequence[str], source: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}; expected "
                         f"{', '.join(cols)}", source)


def _numeric_block(df: pd.DataFrame, cols: Sequence[str], source: str) -> np.ndarray:
    arr = np.empty((len(df), len(cols)))
    for i, c in enumerate(cols):
        v = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=np.float64)
        if not np.isfinite(v).all():
            row = int(np.flatnonzero(~np.isfinite(v))[0]) + 1
            raise InputError(f"column {c!r} has a NaN, infinite or non-numeric value "
                             f"(data row {row})", source)
        arr[:, i] = v
    return arr


def _sorted_keys(values) -> list:
    uniq = pd.unique(pd.Series(values))
    try:
        return sorted(uniq)
    except TypeError:
        return sorted(uniq, key=str)


def map_boxes(
    detections: pd.DataFrame,
    ground_truth: pd.DataFrame,
    *,
    iou_thresholds: Sequence[float] | np.ndarray = COCO_IOU_THRESHOLDS,
    max_dets: int | None = 100,
) -> MapReport:
    """COCO mAP of 2D boxes; equals ``pycocotools`` (``iouType="bbox"``, area "all").

    Args:
        detections: ``image_id, label, x0, y0, x1, y1, score``.
        ground_truth: ``image_id, label, x0, y0, x1, y1``.
        iou_thresholds: IoU thresholds (COCO: 0.50:0.05:0.95).
        max_dets: detections kept per (image, class), best first (COCO: 100); None keeps all.

    Images are the union of ``image_id`` values of both tables, visited in sorted order
    (pycocotools visits sorted image ids). Detections of a label without ground truth are
    ignored.
    """
    thresholds = _check_thresholds(iou_thresholds)
    _require(detections, (*BOX_COLUMNS, "score"), "detections")
    _require(ground_truth, BOX_COLUMNS, "ground_truth")
    dbox = _numeric_block(detections, ("x0", "y0", "x1", "y1", "score"), "detections")
    gbox = _numeric_block(ground_truth, ("x0", "y0", "x1", "y1"), "ground_truth")
    d_xywh = np.column_stack([dbox[:, 0], dbox[:, 1], dbox[:, 2] - dbox[:, 0],
                              dbox[:, 3] - dbox[:, 1]])
    g_xywh = np.column_stack([gbox[:, 0], gbox[:, 1], gbox[:, 2] - gbox[:, 0],
                              gbox[:, 3] - gbox[:, 1]])
    d_img, d_lab = detections["image_id"].to_numpy(), detections["label"].to_numpy()
    g_img, g_lab = ground_truth["image_id"].to_numpy(), ground_truth["label"].to_numpy()
    images = _sorted_keys(np.concatenate([d_img, g_img]))
    classes = _sorted_keys(g_lab)
    d_groups = pd.DataFrame({"i": d_img, "l": d_lab}).groupby(["i", "l"], sort=False).indices
    g_groups = pd.DataFrame({"i": g_img, "l": g_lab}).groupby(["i", "l"], sort=False).indices

    precision, n_gt, n_det = {}, {}, {}
    for c in classes:
        per_image = []
        n_det[c] = 0
        n_gt[c] = 0
        for im in images:
            di = d_groups.get((im, c), np.empty(0, dtype=np.int64))
            gi = g_groups.get((im, c), np.empty(0, dtype=np.int64))
            if len(di) == 0 and len(gi) == 0:
                continue
            di = di[np.argsort(-dbox[di, 4], kind="mergesort")]
            if max_dets is not None:
                di = di[:max_dets]
            ious = box_iou(d_xywh[di], g_xywh[gi])
            per_image.append((dbox[di, 4], _greedy_match(ious, thresholds), len(gi)))
            n_det[c] += len(di)
            n_gt[c] += len(gi)
        precision[c] = _accumulate(per_image, thresholds, COCO_RECALL_THRESHOLDS)
    precision = {c: p for c, p in precision.items() if p is not None}
    params = {"iou_thresholds": thresholds.tolist(), "max_dets": max_dets,
              "recall_points": len(COCO_RECALL_THRESHOLDS), "n_images": len(images)}
    return _summarise(precision, thresholds, "map_boxes", params, n_gt, n_det)


def map_picks(
    submission: pd.DataFrame,
    solution: pd.DataFrame,
    *,
    radii: Mapping[str, float] | None = None,
    iou_thresholds: Sequence[float] | np.ndarray = COCO_IOU_THRESHOLDS,
    max_dets: int | None = None,
) -> MapReport:
    """COCO-style mAP of 3D picks ranked by ``score``, with sphere IoU at the class radius.

    Experiments play the role of images (those of the solution; other experiments are
    dropped, as in the CZII score). ``radii`` defaults to the CZII radii (Å).
    """
    from cryobench.metrics.czii import prepare, resolve_radii_weights

    thresholds = _check_thresholds(iou_thresholds)
    r, _ = resolve_radii_weights(radii, None)
    prep = prepare(submission, solution, r, 1.0, need_score=True)
    class_r = prep.class_radius  # the particle radius itself (multiplier 1)
    # IoU > 0 only below 2r: find those pairs
    ri, ci, d2 = pairs_within(prep.ref_xyz, prep.ref_group, prep.cand_xyz, prep.cand_group,
                              np.tile(2 * class_r, len(prep.experiments)))
    n_cls = len(prep.classes)
    iou = sphere_iou(np.sqrt(d2), class_r[prep.ref_group[ri] % n_cls])
    keep = iou > 0
    ri, ci, iou = ri[keep], ci[keep], iou[keep]

    score = prep.cand_score
    g = prep.n_groups
    c_order = np.lexsort((-score, prep.cand_group))  # by group, then score desc, stable
    c_bounds = np.searchsorted(prep.cand_group[c_order], np.arange(g + 1))
    n_ref = np.bincount(prep.ref_group, minlength=g)
    # rank of each candidate inside its group
    rank = np.empty(len(score), dtype=np.int64)
    rank[c_order] = np.arange(len(score)) - np.repeat(c_bounds[:-1], np.diff(c_bounds))
    # local index of each reference inside its group (row order)
    r_order = np.argsort(prep.ref_group, kind="stable")
    r_bounds = np.searchsorted(prep.ref_group[r_order], np.arange(g + 1))
    rlocal = np.empty(len(prep.ref_group), dtype=np.int64)
    rlocal[r_order] = np.arange(len(r_order)) - np.repeat(r_bounds[:-1], np.diff(r_bounds))
    pair_group = prep.cand_group[ci]
    p_order = np.argsort(pair_group, kind="stable")
    p_bounds = np.searchsorted(pair_group[p_order], np.arange(g + 1))

    # experiments are visited in sorted order (pycocotools sorts image ids), so the result
    # does not depend on the row order of the solution
    exp_order = sorted(range(len(prep.experiments)), key=lambda i: prep.experiments[i])
    precision, n_gt, n_det = {}, {}, {}
    for k, c in enumerate(prep.classes):
        per_image = []
        n_gt[c] = 0
        n_det[c] = 0
        for e in exp_order:
            grp = e * n_cls + k
            cand = c_order[c_bounds[grp]:c_bounds[grp + 1]]
            if max_dets is not None:
                cand = cand[:max_dets]
            if len(cand) == 0 and n_ref[grp] == 0:
                continue
            sel = p_order[p_bounds[grp]:p_bounds[grp + 1]]
            dt_rank = rank[ci[sel]]
            ok = dt_rank < len(cand)
            matched = _greedy_match_sparse(len(cand), dt_rank[ok], rlocal[ri[sel]][ok],
                                           iou[sel][ok], thresholds)
            per_image.append((score[cand], matched, int(n_ref[grp])))
            n_gt[c] += int(n_ref[grp])
            n_det[c] += len(cand)
        precision[c] = _accumulate(per_image, thresholds, COCO_RECALL_THRESHOLDS)
    precision = {c: p for c, p in precision.items() if p is not None}
    params = {"iou_thresholds": thresholds.tolist(), "max_dets": max_dets, "radii": r,
              "recall_points": len(COCO_RECALL_THRESHOLDS),
              "n_experiments": len(prep.experiments)}
    return _summarise(precision, thresholds, "map_picks", params, n_gt, n_det)
