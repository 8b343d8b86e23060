"""CenterNet-style keypoint targets and peak decoding on 2D slices (Zhou et al., "Objects as
Points", 2019).

A box becomes a peak at its centre in a per-class heatmap of ``stride`` times lower resolution,
a width/height and a sub-pixel offset at that cell:

* the centre ``p = ((x0 + x1) / 2, (y0 + y1) / 2) / stride`` (image coordinates, pixel edges at
  integers) sits in cell ``floor(p)``; the offset is ``p - floor(p)`` in ``[0, 1)``, the size
  ``((x1 - x0), (y1 - y0)) / stride``;
* the heatmap holds a Gaussian of peak 1 at that cell, radius
  :func:`gaussian_radius` of the box in cells (CenterNet's rule: the largest corner shift that
  keeps IoU >= ``min_overlap``), ``sigma = (2 radius + 1) / 6``; Gaussians of one class combine
  by maximum (CenterNet's ``draw_umich_gaussian``).

:func:`decode` inverts this: a cell is a peak when it equals the maximum of its 3x3
neighbourhood (max-pool NMS) and scores at least ``floor``; the ``k`` best peaks of all classes
give boxes centred at ``(cell + offset) * stride``. Everything here is NumPy except the
max-pool, which runs on the torch tensors the network returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["STRIDE", "KeypointTargets", "gaussian_radius", "draw_gaussian", "output_size",
           "encode_boxes", "decode", "peaks_to_boxes"]

STRIDE = 4
"""Output stride of the heatmap (the stride-4 map of the FPN neck)."""


@dataclass
class KeypointTargets:
    """Dense training targets of one image at the output resolution ``(h, w)``."""

    heatmap: np.ndarray
    """``(C, h, w)`` float32 in ``[0, 1]``, exactly 1 at each object's centre cell."""
    size: np.ndarray
    """``(2, h, w)`` float32 box width, height in cells (at centre cells, else 0)."""
    offset: np.ndarray
    """``(2, h, w)`` float32 sub-cell offset x, y in ``[0, 1)`` (at centre cells, else 0)."""
    mask: np.ndarray
    """``(1, h, w)`` float32: 1 at centre cells."""


def output_size(n: int, stride: int = STRIDE) -> int:
    """Cells along an axis of ``n`` pixels (a ResNet stem maps ``n`` to ``ceil(n / stride)``)."""
    return -(-int(n) // int(stride))


def gaussian_radius(height: float, width: float, min_overlap: float = 0.7) -> float:
    """CenterNet's Gaussian radius of a ``height x width`` box (cells), as in its reference code.

    The smallest of the three corner-shift radii of CornerNet's rule, computed exactly as the
    CenterNet code does (``r = (b + sqrt(b^2 - 4ac)) / 2``); e.g. a 10 x 10 box at overlap
    0.7 gives 2.733.
    """
    h, w, o = float(height), float(width), float(min_overlap)
    b1 = h + w
    c1 = w * h * (1 - o) / (1 + o)
    r1 = (b1 + np.sqrt(b1**2 - 4 * c1)) / 2
    b2 = 2 * (h + w)
    c2 = (1 - o) * w * h
    r2 = (b2 + np.sqrt(b2**2 - 16 * c2)) / 2
    a3 = 4 * o
    b3 = -2 * o * (h + w)
    c3 = (o - 1) * w * h
    r3 = (b3 + np.sqrt(b3**2 - 4 * a3 * c3)) / 2
    return float(min(r1, r2, r3))


def draw_gaussian(heatmap: np.ndarray, centre: tuple[int, int], radius: int) -> None:
    """Max a Gaussian of peak 1, ``sigma = (2 radius + 1) / 6``, into ``heatmap`` (``(h, w)``)
    at integer cell ``centre = (x, y)``, clipped at the borders (in place)."""
    r = max(int(radius), 0)
    sigma = (2 * r + 1) / 6.0
    g = np.arange(-r, r + 1, dtype=np.float64)
    kernel = np.exp(-(g[:, None] ** 2 + g[None, :] ** 2) / (2 * sigma * sigma))
    kernel[kernel < np.finfo(np.float64).eps * kernel.max()] = 0.0
    x, y = int(centre[0]), int(centre[1])
    h, w = heatmap.shape
    left, right = min(x, r), min(w - x, r + 1)
    top, bottom = min(y, r), min(h - y, r + 1)
    if left + right <= 0 or top + bottom <= 0:
        return
    region = heatmap[y - top:y + bottom, x - left:x + right]
    patch = kernel[r - top:r + bottom, r - left:r + right].astype(heatmap.dtype)
    np.maximum(region, patch, out=region)


def encode_boxes(boxes: np.ndarray, labels: np.ndarray, image_shape: Sequence[int],
                 num_classes: int, stride: int = STRIDE, min_overlap: float = 0.7
                 ) -> KeypointTargets:
    """Targets of the boxes ``(N, 4)`` ``x0, y0, x1, y1`` (image coordinates) of an image of
    ``image_shape`` ``(H, W)``; boxes whose centre lies outside the image are skipped. Where two
    centres share a cell, the later box's size and offset win."""
    hh, ww = output_size(image_shape[0], stride), output_size(image_shape[1], stride)
    heat = np.zeros((num_classes, hh, ww), np.float32)
    size = np.zeros((2, hh, ww), np.float32)
    offset = np.zeros((2, hh, ww), np.float32)
    mask = np.zeros((1, hh, ww), np.float32)
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    for (x0, y0, x1, y1), label in zip(b, np.asarray(labels).reshape(-1), strict=True):
        cx, cy = (x0 + x1) / 2 / stride, (y0 + y1) / 2 / stride
        ix, iy = int(np.floor(cx)), int(np.floor(cy))
        if not (0 <= ix < ww and 0 <= iy < hh):
            continue
        bw, bh = (x1 - x0) / stride, (y1 - y0) / stride
        radius = int(gaussian_radius(np.ceil(bh), np.ceil(bw), min_overlap))
        draw_gaussian(heat[int(label)], (ix, iy), radius)
        heat[int(label), iy, ix] = 1.0
        size[:, iy, ix] = (bw, bh)
        offset[:, iy, ix] = (cx - ix, cy - iy)
        mask[0, iy, ix] = 1.0
    return KeypointTargets(heat, size, offset, mask)


def peaks_to_boxes(heatmap: np.ndarray, peaks: np.ndarray, size: np.ndarray, offset: np.ndarray,
                   k: int, floor: float, stride: int = STRIDE
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes of the ``k`` best peak cells of one image.

    Args:
        heatmap: ``(C, h, w)`` scores in ``[0, 1]``.
        peaks: ``(C, h, w)`` bool, the cells that are their 3x3 neighbourhood's maximum.
        size, offset: ``(2, h, w)`` predicted width/height and offset (cells).
        k: most boxes returned; ``floor``: lowest score kept.

    Returns:
        ``(N, 4)`` float64 boxes ``x0, y0, x1, y1`` (image coordinates), ``(N,)`` int64 labels,
        ``(N,)`` float64 scores, by decreasing score (ties: class, then row-major cell order).
    """
    c, h, w = heatmap.shape
    flat = np.where(peaks & (heatmap >= floor), heatmap, -1.0).reshape(-1)
    cand = np.flatnonzero(flat >= 0)
    order = cand[np.argsort(-flat[cand], kind="stable")][: max(int(k), 0)]
    label, rest = np.divmod(order, h * w)
    iy, ix = np.divmod(rest, w)
    cx = (ix + offset[0, iy, ix].astype(np.float64)) * stride
    cy = (iy + offset[1, iy, ix].astype(np.float64)) * stride
    bw = np.maximum(size[0, iy, ix].astype(np.float64), 0.0) * stride
    bh = np.maximum(size[1, iy, ix].astype(np.float64), 0.0) * stride
    boxes = np.column_stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2])
    return boxes.reshape(-1, 4), label.astype(np.int64), flat[order].astype(np.float64)


def decode(heatmap, size, offset, k: int = 100, floor: float = 0.05, stride: int = STRIDE
           ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Boxes, labels and scores per image from a batch of network outputs (torch tensors).

    ``heatmap`` ``(B, C, h, w)`` holds probabilities (after the sigmoid); peaks are the cells
    equal to the maximum of their 3x3 neighbourhood (``max_pool2d``, the CenterNet NMS). See
    :func:`peaks_to_boxes`.
    """
    import torch.nn.functional as F

    hm = heatmap.detach().float()
    peaks = (hm == F.max_pool2d(hm, 3, stride=1, padding=1)).cpu().numpy()
    hm_np = hm.cpu().numpy()
    size_np = size.detach().float().cpu().numpy()
    off_np = offset.detach().float().cpu().numpy()
    return [peaks_to_boxes(hm_np[i], peaks[i], size_np[i], off_np[i], k, floor, stride)
            for i in range(hm_np.shape[0])]
