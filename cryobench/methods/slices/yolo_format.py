"""Write a slice dataset in YOLO's own format (images, label text files, ``data.yaml``).

Layout under ``out_dir``::

    images/{train,val}/<run>_z<z>.png     uint8 grayscale slices
    labels/{train,val}/<run>_z<z>.txt     one line per box: "class xc yc w h" (fractions of size)
    data.yaml                             path, train, val, names

``data.yaml`` is written as JSON, which is valid YAML. Run names are sanitised for file names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from cryobench.methods.slices.dataset import SliceSample

__all__ = ["yolo_label_lines", "write_yolo_dataset"]


def yolo_label_lines(sample: SliceSample) -> list[str]:
    """YOLO label lines of one slice (class, centre and size as fractions of the image)."""
    h, w = sample.image.shape
    lines = []
    for (x0, y0, x1, y1), c in zip(sample.boxes, sample.labels, strict=True):
        xc, yc = (x0 + x1) / 2 / w, (y0 + y1) / 2 / h
        lines.append(f"{int(c)} {xc:.6f} {yc:.6f} {(x1 - x0) / w:.6f} {(y1 - y0) / h:.6f}")
    return lines


def _stem(sample: SliceSample) -> str:
    return f"{re.sub(r'[^A-Za-z0-9.-]+', '-', sample.run)}_z{sample.z:04d}"


def write_yolo_dataset(
    train: Sequence[SliceSample],
    val: Sequence[SliceSample],
    out_dir: str | Path,
    class_names: Sequence[str],
) -> Path:
    """Write ``train``/``val`` slices under ``out_dir``; returns the path of ``data.yaml``.

    When ``val`` is empty the training slices double as YOLO's (unused) validation set.
    """
    out = Path(out_dir)
    for split, samples in (("train", train), ("val", val or train)):
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        for s in samples:
            stem = _stem(s)
            Image.fromarray(np.ascontiguousarray(s.image)).save(out / "images" / split /
                                                                f"{stem}.png")
            (out / "labels" / split / f"{stem}.txt").write_text(
                "".join(line + "\n" for line in yolo_label_lines(s)))
    data = {
        "path": str(out.resolve()),
        "train": "images/train",
        "val": "images/val",
        "names": {i: n for i, n in enumerate(class_names)},
    }
    path = out / "data.yaml"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path
