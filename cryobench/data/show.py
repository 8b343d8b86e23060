"""Draw a tomogram slice and an orthogonal view with picks (``cryobench data show``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from cryobench.coords import picks_to_voxels
from cryobench.data.project import RunHandle
from cryobench.errors import ConfigError
from cryobench.io.atomic import atomic_path
from cryobench.particles import ParticleType

__all__ = ["render_run", "busiest_slice"]


def _rgb(p: ParticleType) -> tuple[float, ...]:
    c = tuple(p.color) + (255,) * (4 - len(p.color))
    return tuple(v / 255.0 for v in c[:3])


def busiest_slice(picks: pd.DataFrame, spacing: float, particles: tuple[ParticleType, ...],
                  n: int, axis: int = 0) -> int:
    """The index along ``axis`` (0 = z, 1 = y) that shows the most particle cross-section: each
    particle adds ``1 - (d / r)²`` to the planes it cuts (so centres win ties); middle if none."""
    radii = {p.name: p.radius for p in particles}
    if len(picks) == 0:
        return n // 2
    centres = picks_to_voxels(picks, spacing)[:, axis]
    r = picks["particle_type"].map(radii).fillna(0).to_numpy(np.float64) / spacing
    score = np.zeros(n, dtype=np.float64)
    planes = np.arange(n, dtype=np.float64)
    for c, rr in zip(centres, r, strict=True):
        if rr > 0:
            score += np.clip(1.0 - ((planes - c) / rr) ** 2, 0.0, None)
    return int(np.argmax(score)) if score.max() > 0 else n // 2


def _circles(ax, picks: pd.DataFrame, spacing: float, particles: tuple[ParticleType, ...],
             cut: float, cut_axis: int, style: str) -> dict[str, int]:
    """Draw the cross-section circle of each pick cut by the plane ``cut_axis == cut``."""
    from matplotlib.patches import Circle

    byname = {p.name: p for p in particles}
    shown: dict[str, int] = {}
    if len(picks) == 0:
        return shown
    zyx = picks_to_voxels(picks, spacing)
    for t, c in zip(picks["particle_type"].astype(str), zyx, strict=True):
        p = byname.get(t)
        if p is None:
            continue
        d = (c[cut_axis] - cut) * spacing
        if abs(d) >= p.radius:
            continue
        rr = np.sqrt(p.radius ** 2 - d * d) / spacing
        col, row = (c[2], c[1]) if cut_axis == 0 else (c[2], c[0])
        kw = (dict(fill=False, lw=1.4, ls="-") if style == "truth"
              else dict(fill=False, lw=1.2, ls="--"))
        ax.add_patch(Circle((col, row), rr, edgecolor=_rgb(p), **kw))
        if style != "truth":
            ax.plot([col], [row], marker="x", ms=4, color=_rgb(p))
        shown[t] = shown.get(t, 0) + 1
    return shown


def render_run(run: RunHandle, out: str | os.PathLike[str], *, z: int | None = None,
               y: int | None = None, predictions: pd.DataFrame | None = None,
               level: int = 0, dpi: int = 110) -> dict[str, object]:
    """Write a PNG: the xy slice at ``z`` and the xz slice at ``y`` with ground-truth circles
    (solid) and predictions (dashed, ``x`` at the centre), coloured by class, with a legend.

    ``z`` / ``y`` default to the plane cutting the most ground-truth particles. Returns what was
    drawn (planes and counts). The file is written atomically.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.lines import Line2D

    out = Path(out)
    fmt = out.suffix.lstrip(".").lower() or "png"
    formats = FigureCanvasAgg.get_supported_filetypes()
    if fmt not in formats:
        raise ConfigError(f"cannot draw a {out.suffix!r} file; use one of "
                          f"{', '.join('.' + f for f in sorted(formats))}", out)
    if out.is_dir():
        raise ConfigError("is a directory; give the output image file", out)
    particles = run.particles
    spacing = run.voxel_spacing * 2 ** level
    shape = run.level_shape(level)
    truth = run.picks()
    if z is None:
        z = busiest_slice(truth, spacing, particles, shape[0], axis=0)
    if y is None:
        y = busiest_slice(truth, spacing, particles, shape[1], axis=1)
    if not 0 <= z < shape[0]:
        raise ConfigError(f"z={z} is outside the tomogram (0..{shape[0] - 1})")
    if not 0 <= y < shape[1]:
        raise ConfigError(f"y={y} is outside the tomogram (0..{shape[1] - 1})")
    xy = run.tomogram(level, (slice(z, z + 1), slice(None), slice(None)))[0]
    xz = run.tomogram(level, (slice(None), slice(y, y + 1), slice(None)))[:, 0, :]
    lo, hi = np.percentile(xy, [1, 99])
    if predictions is not None:
        predictions = predictions[predictions["experiment"].astype(str) == run.name]

    height_ratio = max(shape[0] / shape[1], 0.15)
    fig, axes = plt.subplots(2, 1, figsize=(7.5, 7.5 * (1 + height_ratio) * shape[1] / shape[2]
                                            * 0.9 + 0.8),
                             gridspec_kw={"height_ratios": [1, height_ratio]})
    info: dict[str, object] = {"z": z, "y": y, "level": level}
    for ax, img, cut, cut_axis, label in ((axes[0], xy, z, 0, f"xy slice z={z}"),
                                          (axes[1], xz, y, 1, f"xz slice y={y}")):
        ax.imshow(img, cmap="gray", vmin=lo, vmax=hi, origin="upper", interpolation="nearest")
        gt = _circles(ax, truth, spacing, particles, cut, cut_axis, "truth")
        info[f"truth_{label.split()[0]}"] = gt
        if predictions is not None:
            pr = _circles(ax, predictions, spacing, particles, cut, cut_axis, "pred")
            info[f"pred_{label.split()[0]}"] = pr
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("x (voxels)", fontsize=8)
        ax.set_ylabel("y (voxels)" if cut_axis == 0 else "z (voxels)", fontsize=8)
        ax.tick_params(labelsize=7)
    counts = truth["particle_type"].value_counts().to_dict() if len(truth) else {}
    handles = [Line2D([], [], color=_rgb(p), lw=2, label=f"{p.name} ({counts.get(p.name, 0)})")
               for p in particles]
    if predictions is not None:
        handles += [Line2D([], [], color="k", lw=1.4, label="ground truth"),
                    Line2D([], [], color="k", lw=1.2, ls="--", marker="x", label="predictions")]
    fig.legend(handles=handles, loc="lower center", ncol=min(4, len(handles)), fontsize=7,
               frameon=False)
    fig.suptitle(f"{run.name}  ({run.tomo_type}, {spacing:g} Å/voxel, shape {shape})",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 0.97))
    try:
        with atomic_path(out, suffix=out.suffix or ".png") as tmp:
            fig.savefig(tmp, dpi=dpi, format=fmt)
    finally:
        plt.close(fig)
    return info
