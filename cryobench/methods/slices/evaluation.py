"""Slice-level box mAP of a slice detector: COCO mAP and mAP@0.5/0.7/0.9, overall and per class.

Every figure is :func:`cryobench.metrics.map_boxes` (which equals pycocotools: 101 recall
points, greedy matching by score, at most 100 detections per image and class, classes without
ground truth left out), once over COCO's IoU thresholds 0.50:0.05:0.95 and once at each single
IoU threshold, with each inspected slice as one image.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

__all__ = ["slice_map", "metric_key"]


def metric_key(iou: float | None, class_name: str | None = None) -> str:
    """The key of one figure: ``slice_map`` (COCO) or ``slice_map50`` (IoU 0.5) overall, and
    ``slice_ap/<class>`` or ``slice_ap50/<class>`` for one class."""
    suffix = "" if iou is None else str(int(round(100 * float(iou))))
    return f"slice_map{suffix}" if class_name is None else f"slice_ap{suffix}/{class_name}"


def slice_map(detections: pd.DataFrame, ground_truth: pd.DataFrame,
              ious: Sequence[float] = (0.5, 0.7, 0.9),
              class_names: Sequence[str] | None = None) -> dict[str, float]:
    """Box AP of slice detections, overall and per class.

    Args:
        detections: ``image_id, label, x0, y0, x1, y1, score`` (one image per inspected slice).
        ground_truth: ``image_id, label, x0, y0, x1, y1``.
        ious: the single IoU thresholds to report beside COCO's 0.50:0.95 average.
        class_names: names of the labels (label ``i`` is ``class_names[i]``); default the
            labels themselves.

    Returns:
        ``slice_map`` (COCO mAP) and ``slice_map50``, ``slice_map70``, ``slice_map90`` (NaN
        without ground truth), and for each class with ground truth ``slice_ap/<class>``,
        ``slice_ap50/<class>``... (AP of that class).
    """
    from cryobench.metrics.map import COCO_IOU_THRESHOLDS, map_boxes

    def name(label) -> str:
        if class_names is None:
            return str(label)
        return str(class_names[int(label)])

    out: dict[str, float] = {}
    per_class: dict[str, float] = {}
    for t in (None, *ious):
        thresholds = COCO_IOU_THRESHOLDS if t is None else [float(t)]
        report = map_boxes(detections, ground_truth, iou_thresholds=thresholds)
        out[metric_key(t)] = float(report.map)
        for label, row in report.per_class.items():
            per_class[metric_key(t, name(label))] = float(row["ap"])
    return {**out, **per_class}
