"""Slice-level mAP of a slice detector (mAP@0.5/0.7/0.9, as slice detection papers tabulate it)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

__all__ = ["slice_map"]


def slice_map(detections: pd.DataFrame, ground_truth: pd.DataFrame,
              ious: Sequence[float] = (0.5, 0.7, 0.9)) -> dict[str, float]:
    """COCO AP of slice boxes at each IoU in ``ious`` (:func:`cryobench.metrics.map_boxes`).

    Args:
        detections: ``image_id, label, x0, y0, x1, y1, score`` (one image per inspected slice).
        ground_truth: ``image_id, label, x0, y0, x1, y1``.

    Returns:
        ``{"slice_map50": ..., "slice_map70": ..., "slice_map90": ...}`` (NaN without ground
        truth).
    """
    from cryobench.metrics.map import map_boxes

    out = {}
    for t in ious:
        report = map_boxes(detections, ground_truth, iou_thresholds=[float(t)])
        out[f"slice_map{int(round(100 * t))}"] = float(report.map)
    return out
