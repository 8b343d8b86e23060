"""Intensity preparation and augmentation of 2D slices with their boxes (NumPy / SciPy /
scikit-image; deterministic for a NumPy generator).

* :func:`prepare_slice`: uint8 slice -> ``[0, 1]`` float, optionally CLAHE (scikit-image's
  ``exposure.equalize_adapthist``); :func:`zscore` then normalises each slice to mean 0, std 1.
* :func:`random_affine` / :func:`warp`: a random rotation, scale and translation (and, when
  the output is smaller than the slice, a random crop window) applied to the image with
  ``scipy.ndimage.affine_transform`` (bilinear, padded with the slice mean) and to the box
  centres; box sides scale with the scale factor.
* :func:`poisson_noise`, :func:`gaussian_blur`: shot noise at a random dose and a random blur.

Array index ``(i, j)`` is the pixel whose centre has image coordinates ``(j + 0.5, i + 0.5)``
(:data:`~cryobench.methods.slices.dataset.PIXEL_OFFSET`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from cryobench.methods.slices.dataset import PIXEL_OFFSET

__all__ = ["prepare_slice", "zscore", "Affine", "random_affine", "warp", "warp_boxes",
           "poisson_noise", "gaussian_blur"]


def prepare_slice(image: np.ndarray, clahe: bool = True, clip_limit: float = 0.01
                  ) -> np.ndarray:
    """A uint8 slice as float32 in ``[0, 1]``, after CLAHE when ``clahe`` (kernel 1/8 of the
    slice, ``clip_limit`` as scikit-image's). A constant slice is left as it is (scikit-image
    would stretch an all-zero slice into a pattern)."""
    img = np.asarray(image)
    if clahe and img.size and img.max() > img.min():
        from skimage import exposure

        return exposure.equalize_adapthist(img, clip_limit=float(clip_limit)).astype(np.float32)
    return (img.astype(np.float32) / 255.0).astype(np.float32)


def zscore(image: np.ndarray) -> np.ndarray:
    """Per-slice z-score (float32); a constant slice becomes zeros."""
    img = np.asarray(image, dtype=np.float64)
    sd = img.std()
    out = (img - img.mean()) / sd if sd > 1e-8 else np.zeros_like(img)
    return out.astype(np.float32)


@dataclass(frozen=True)
class Affine:
    """Output pixel ``o`` (index ``(row, col)``) shows input pixel
    ``i = matrix @ (o - out_centre) + in_point``; see :func:`random_affine`."""

    matrix: np.ndarray
    """``(2, 2)``: rotation by ``-angle`` divided by ``scale`` (output -> input)."""
    in_point: np.ndarray
    """Input index that lands on the output centre."""
    out_shape: tuple[int, int]
    scale: float

    @property
    def out_centre(self) -> np.ndarray:
        return (np.asarray(self.out_shape, np.float64) - 1) / 2

    def forward(self, points: np.ndarray) -> np.ndarray:
        """Input indices ``(N, 2)`` (row, col) -> output indices."""
        inv = np.linalg.inv(self.matrix)
        return (np.asarray(points, np.float64) - self.in_point) @ inv.T + self.out_centre


def random_affine(rng: np.random.Generator, in_shape: tuple[int, int],
                  out_shape: tuple[int, int], rotation: float = 15.0, scale: float = 0.1,
                  translate: float = 0.1) -> Affine:
    """Rotation uniform in ``±rotation`` degrees, scale uniform in ``1 ± scale``, translation
    uniform in ``±translate`` of the input size; when the output is smaller than the input the
    window is placed uniformly over the slice, otherwise the slice is centred (padded)."""
    angle = np.deg2rad(rng.uniform(-rotation, rotation)) if rotation else 0.0
    s = float(rng.uniform(1 - scale, 1 + scale)) if scale else 1.0
    c, sn = np.cos(angle), np.sin(angle)
    rot_inv = np.array([[c, sn], [-sn, c]])  # rotation by -angle in (row, col)
    size_in = np.asarray(in_shape, np.float64)
    slack = np.maximum(size_in - np.asarray(out_shape, np.float64), 0.0) / 2
    shift = np.array([rng.uniform(-a, a) if a > 0 else 0.0 for a in slack])
    jitter = (np.array([rng.uniform(-translate, translate) for _ in range(2)]) * size_in
              if translate else np.zeros(2))
    in_point = (size_in - 1) / 2 + shift + jitter
    return Affine(rot_inv / s, in_point, (int(out_shape[0]), int(out_shape[1])), s)


def warp(image: np.ndarray, affine: Affine, cval: float | None = None) -> np.ndarray:
    """The image under ``affine`` (bilinear; outside the slice: ``cval``, default its mean)."""
    img = np.asarray(image, np.float32)
    offset = affine.in_point - affine.matrix @ affine.out_centre
    fill = float(img.mean()) if cval is None else float(cval)
    return ndimage.affine_transform(img, affine.matrix, offset=offset,
                                    output_shape=affine.out_shape, order=1, mode="constant",
                                    cval=fill).astype(np.float32)


def warp_boxes(boxes: np.ndarray, labels: np.ndarray, affine: Affine
               ) -> tuple[np.ndarray, np.ndarray]:
    """Boxes ``x0, y0, x1, y1`` (image coordinates) under ``affine``: centres mapped, sides
    times the scale; boxes whose centre leaves the output are dropped."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    centre = np.column_stack([(b[:, 1] + b[:, 3]) / 2, (b[:, 0] + b[:, 2]) / 2]) - PIXEL_OFFSET
    out = affine.forward(centre) + PIXEL_OFFSET  # (y, x) image coordinates
    half_w = (b[:, 2] - b[:, 0]) / 2 * affine.scale
    half_h = (b[:, 3] - b[:, 1]) / 2 * affine.scale
    h, w = affine.out_shape
    inside = (out[:, 0] >= 0) & (out[:, 0] < h) & (out[:, 1] >= 0) & (out[:, 1] < w)
    new = np.column_stack([out[:, 1] - half_w, out[:, 0] - half_h, out[:, 1] + half_w,
                           out[:, 0] + half_h])
    return new[inside].astype(np.float32), np.asarray(labels).reshape(-1)[inside]


def poisson_noise(image: np.ndarray, rng: np.random.Generator,
                  counts: tuple[float, float] = (20.0, 200.0)) -> np.ndarray:
    """Shot noise: a ``[0, 1]`` image as Poisson counts at a dose uniform in ``counts``
    (counts per pixel at intensity 1), divided back by the dose."""
    dose = float(rng.uniform(*counts))
    img = np.clip(np.asarray(image, np.float64), 0.0, None)
    return (rng.poisson(img * dose) / dose).astype(np.float32)


def gaussian_blur(image: np.ndarray, rng: np.random.Generator,
                  sigma: tuple[float, float] = (0.3, 1.2)) -> np.ndarray:
    """A Gaussian blur with sigma (pixels) uniform in ``sigma``."""
    s = float(rng.uniform(*sigma))
    return ndimage.gaussian_filter(np.asarray(image, np.float32), s, mode="nearest")
